/**
 * The `tensorflow` backend (native libtensorflow), from the first of these packages that works:
 *   1. `@tensorflow/tfjs-node-gpu`; its `tensorflow` backend also runs on a machine without a GPU.
 *      An optional dependency that is often absent, because its install downloads libtensorflow.
 *   2. `@tensorflow/tfjs-node` (same backend name, CPU build). Not a dependency; present only if the
 *      user installed it.
 * A package resolving under that NAME proves nothing (an override may alias it to plain
 * `@tensorflow/tfjs`), so success means "a `tensorflow` backend registered with OUR tfjs-core and
 * ran an op", never "require() did not throw".
 * Native addons can abort the process (a CHECK in libtensorflow, a CUDA loader crash), which no
 * try/catch can catch. So when a package is installed, it is first loaded in a short-lived child
 * process; only if that probe passes is it loaded here.
 */
import * as tf from "@tensorflow/tfjs";
import { execFile } from "node:child_process";
import { oneLine } from "./errors";

/** The packages that provide the `tensorflow` backend, in the order tried. */
export const TF_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;
const PROBE_TIMEOUT_MS = 120_000;

/** Starts the `tensorflow` backend from `pkg`, after a child-process probe; never throws. */
export async function tryTensorflow(pkg: string): Promise<{ ok: boolean; reason: string }> {
  let resolved: string;
  try {
    resolved = require.resolve(pkg);
  } catch {
    return { ok: false, reason: "not installed" + (pkg.endsWith("-gpu") ? " (optional dependency; its install downloads libtensorflow)" : "") };
  }
  try {
    // libtensorflow logs to stderr from C++; keep it quiet unless the user asked otherwise.
    process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
    if (!tf.engine().registryFactory["tensorflow"]) {
      const probe = await probeTensorflow(resolved);
      if (!probe.ok) return probe;
      require(resolved);
    }
    if (!tf.engine().registryFactory["tensorflow"]) {
      return { ok: false, reason: `loaded, but no 'tensorflow' backend registered with this @tensorflow/tfjs-core (the name is probably aliased to plain @tensorflow/tfjs, or the package uses its own tfjs-core copy)` };
    }
    if (!(await tf.setBackend("tensorflow"))) return { ok: false, reason: "the 'tensorflow' backend failed to initialise" };
    const v = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]);
    if (v !== 3) return { ok: false, reason: `the 'tensorflow' backend computed 1+2=${v}` };
    return { ok: true, reason: `tensorflow: native libtensorflow via ${pkg}` };
  } catch (e) {
    return { ok: false, reason: oneLine(e) };
  }
}

/** Loads the package in a child process first: a native abort there cannot take us down. */
function probeTensorflow(resolved: string): Promise<{ ok: boolean; reason: string }> {
  const core = require.resolve("@tensorflow/tfjs-core");
  const code = `
const [pkg, core] = JSON.parse(process.argv[1]);
const say = (r) => process.stdout.write("\\nCLIPLAB_PROBE " + JSON.stringify(r) + "\\n");
(async () => {
  require(pkg);
  const tf = require(core);
  if (!tf.findBackendFactory("tensorflow")) return say({ ok: true, reason: "no backend" });
  if (!(await tf.setBackend("tensorflow"))) return say({ ok: false, reason: "the 'tensorflow' backend failed to initialise (in a probe process)" });
  const v = tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0];
  say(v === 3 ? { ok: true, reason: "ok" } : { ok: false, reason: "the 'tensorflow' backend computed 1+2=" + v });
})().catch((e) => say({ ok: false, reason: String((e && e.message) || e).split("\\n")[0] }));
`;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["-e", code, JSON.stringify([resolved, core])],
      { timeout: PROBE_TIMEOUT_MS, maxBuffer: 16 << 20, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? "2" } },
      (err, stdout, stderr) => {
        const line = String(stdout).split("\n").reverse().find((l) => l.startsWith("CLIPLAB_PROBE "));
        if (line) {
          try {
            const r = JSON.parse(line.slice("CLIPLAB_PROBE ".length)) as { ok: boolean; reason: string };
            // {ok: true, reason: "no backend"}: loading is safe; the in-process check then reports
            // the missing backend.
            return resolve({ ok: r.ok, reason: String(r.reason) });
          } catch {
            /* fall through */
          }
        }
        const how = err && (err as { killed?: boolean }).killed ? `timed out after ${PROBE_TIMEOUT_MS / 1000} s` : err && (err as { signal?: string }).signal ? `killed by ${(err as { signal?: string }).signal}` : `exited with code ${(err as { code?: unknown } | null)?.code ?? 0}`;
        const last = String(stderr).split("\n").map((s) => s.trim()).filter((s) => s !== "").pop();
        resolve({ ok: false, reason: `a probe process loading it gave no answer (${how})${last ? `: ${oneLine(last)}` : ""}` });
      },
    );
  });
}
