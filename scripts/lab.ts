/**
 * `npm run lab [-- --port N] [--quick]`: starts the Jupyter Notebook front end (Debian's
 * `jupyter-notebook`, 6.4; JupyterLab is not packaged in bookworm) on 127.0.0.1 with the
 * repository's tslab kernelspec, and prints the URL with its token. No browser is opened; Ctrl-C
 * shuts the kernels and the server down.
 *
 * Nothing is fetched from the network: the page's own scripts (require.js, jQuery, CodeMirror) and
 * MathJax are served by the server from Debian's packages (libjs-*, libjs-mathjax), and plotly.js is
 * inlined by the notebooks themselves (src/notebook/display.ts). The server runs on a private config
 * directory, so no user or system nbextension loads; the ipywidgets extension notebook 6.4 asks for
 * on every page is answered by an empty module (cliplab uses no widgets) instead of a 404.
 * `--quick` sets CLIPLAB_QUICK=1 for the kernels, as `npm run notebooks -- --quick` does.
 *
 * `startLab` is the same server as a function (test/notebooks/lab.test.ts drives it in Chromium).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { JUPYTER, KERNEL_NAME, REPO_ROOT } from "./lib/nbconvert";

export interface LabOptions {
  /** The first port to try (the next free one is taken); default 8888. */
  port?: number;
  /** Config, runtime and log files of this server; default `.jupyter/lab/` (git-ignored). */
  stateDir?: string;
  /** Added to the server's environment, which its kernels inherit (e.g. CLIPLAB_QUICK=1). */
  env?: Record<string, string>;
  /** What the notebook tree shows; default the repository (kernels start in the repository whatever this is). */
  notebookDir?: string;
  /** Give up when the server has not answered after this long; default 60 s. */
  startTimeoutMs?: number;
}

export interface LabServer {
  /** The notebook tree, token included: open this. */
  url: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  token: string;
  port: number;
  /** The page of one notebook, `rel` relative to the notebook directory (e.g. "notebooks/01-train.ipynb"). */
  notebookUrl(rel: string): string;
  /** The server's process id. */
  pid: number;
  /** Where the server logs (kernel starts, errors). */
  logFile: string;
  /** The server's runtime directory: every kernel's connection file (and command line) names it. */
  runtimeDir: string;
  /** Shuts every kernel down, stops the server and waits for both; idempotent. */
  stop(): Promise<void>;
  /** Resolves when the server process has exited (for whatever reason). */
  exited: Promise<number | null>;
}

const NOTEBOOK_BIN = path.join(path.dirname(JUPYTER), "jupyter-notebook");
const KERNELSPEC = path.join(REPO_ROOT, ".jupyter", "kernels", KERNEL_NAME, "kernel.json");

export class LabError extends Error {
  override name = "LabError";
}

function checkSetup(): void {
  if (!fs.existsSync(NOTEBOOK_BIN)) {
    throw new LabError(`lab: ${NOTEBOOK_BIN} is missing; run \`bash scripts/setup.sh\` (installs Debian's jupyter-notebook)`);
  }
  if (!fs.existsSync(KERNELSPEC)) throw new LabError(`lab: kernelspec ${KERNELSPEC} is missing; run \`node scripts/install-kernel.js\``);
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** The first free port from `first` on (within 50), as Jupyter's own port retries would pick. */
export async function freePort(first = 8888): Promise<number> {
  for (let p = first; p < first + 50; p++) if (await portIsFree(p)) return p;
  throw new LabError(`lab: no free port in ${first}-${first + 49}; pass --port N`);
}

/** Config paths Jupyter reads besides ours (user and system), from `jupyter --paths --json`. */
function otherConfigDirs(env: NodeJS.ProcessEnv, ours: string): string[] {
  const out = spawnSync(JUPYTER, ["--paths", "--json"], { env, encoding: "utf8" });
  if (out.status !== 0) return [];
  const paths = (JSON.parse(out.stdout) as { config?: string[] }).config ?? [];
  return paths.filter((p) => path.resolve(p) !== path.resolve(ours));
}

/** Every front-end nbextension that another config directory enables (notebook.json, notebook.d/*.json). */
function enabledNbextensions(configDirs: string[]): string[] {
  const names = new Set<string>();
  for (const dir of configDirs) {
    const nbconfig = path.join(dir, "nbconfig");
    const files = [path.join(nbconfig, "notebook.json")];
    const dropIns = path.join(nbconfig, "notebook.d");
    if (fs.existsSync(dropIns)) for (const f of fs.readdirSync(dropIns)) if (f.endsWith(".json")) files.push(path.join(dropIns, f));
    for (const f of files) {
      if (!fs.existsSync(f)) continue;
      try {
        const ext = (JSON.parse(fs.readFileSync(f, "utf8")) as { load_extensions?: Record<string, boolean> }).load_extensions ?? {};
        for (const [name, on] of Object.entries(ext)) if (on) names.add(name);
      } catch {
        // A broken file of someone else's is Jupyter's to report; it cannot enable anything here.
      }
    }
  }
  return [...names].sort();
}

/**
 * The private config directory: nbextensions enabled elsewhere switched off (the first config
 * directory wins when Jupyter merges them), and the empty ipywidgets module.
 */
function writeConfig(stateDir: string, env: NodeJS.ProcessEnv): { configDir: string; runtimeDir: string; nbextensionsDir: string } {
  const configDir = path.join(stateDir, "config");
  const runtimeDir = path.join(stateDir, "runtime");
  const nbextensionsDir = path.join(stateDir, "nbextensions");
  for (const d of [configDir, runtimeDir, nbextensionsDir]) fs.mkdirSync(d, { recursive: true });
  const off = Object.fromEntries(enabledNbextensions(otherConfigDirs({ ...env, JUPYTER_CONFIG_DIR: configDir }, configDir)).map((n) => [n, false]));
  fs.mkdirSync(path.join(configDir, "nbconfig"), { recursive: true });
  fs.writeFileSync(path.join(configDir, "nbconfig", "notebook.json"), JSON.stringify({ load_extensions: off }, null, 2) + "\n");
  const widgets = path.join(nbextensionsDir, "widgets", "notebook", "js");
  fs.mkdirSync(widgets, { recursive: true });
  fs.writeFileSync(
    path.join(widgets, "extension.js"),
    "// cliplab uses no ipywidgets: notebook 6.4 asks for this module on every page, and a 404 would be a console error.\n" +
      "define([], function () { return { load_ipython_extension: function () {} }; });\n",
  );
  return { configDir, runtimeDir, nbextensionsDir };
}

/** Processes whose command line names `runtimeDir`: the server's kernels (their connection files live there). */
export function processesUsing(runtimeDir: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(runtimeDir)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function logTail(file: string, lines = 8): string {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Starts the notebook server and resolves once it answers its API. */
export async function startLab(opts: LabOptions = {}): Promise<LabServer> {
  checkSetup();
  const stateDir = path.resolve(opts.stateDir ?? path.join(REPO_ROOT, ".jupyter", "lab"));
  const port = await freePort(opts.port ?? 8888);
  const token = crypto.randomBytes(24).toString("hex");
  const notebookDir = path.resolve(opts.notebookDir ?? REPO_ROOT);
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, ...opts.env, JUPYTER_PATH: path.join(REPO_ROOT, ".jupyter") };
  const { configDir, runtimeDir, nbextensionsDir } = writeConfig(stateDir, baseEnv);
  const env: NodeJS.ProcessEnv = { ...baseEnv, JUPYTER_CONFIG_DIR: configDir, JUPYTER_RUNTIME_DIR: runtimeDir };
  const logFile = path.join(stateDir, "server.log");
  const log = fs.openSync(logFile, "w");
  const args = [
    "--no-browser",
    "--ip=127.0.0.1",
    `--port=${port}`,
    "--port-retries=0",
    `--NotebookApp.token=${token}`,
    `--NotebookApp.notebook_dir=${notebookDir}`,
    `--NotebookApp.extra_nbextensions_path=${nbextensionsDir}`,
    // A figure's output carries plotly.js once (~4.8 MB): over the default 1 MB/s the server would
    // drop it ("IOPub data rate exceeded") and the figure would never draw.
    "--NotebookApp.iopub_data_rate_limit=1e12",
    "--NotebookApp.iopub_msg_rate_limit=1e6",
    ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
  ];
  // Its own process group with no terminal on stdin: Ctrl-C reaches only us, and we shut down in
  // order (kernels, then the server) instead of Jupyter asking "Shutdown this notebook server?".
  const child: ChildProcess = spawn(NOTEBOOK_BIN, args, { cwd: REPO_ROOT, env, stdio: ["ignore", log, log], detached: true });
  fs.closeSync(log);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let alive = true;
  void exited.then(() => (alive = false));
  const origin = `http://127.0.0.1:${port}`;
  const api = (p: string) => `${origin}${p}${p.includes("?") ? "&" : "?"}token=${token}`;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (alive) {
        // Kernels first, through the API, so that each one shuts down cleanly.
        try {
          const kernels = JSON.parse((await get(api("/api/kernels"))).body) as { id: string }[];
          await Promise.all(kernels.map((k) => fetch(api(`/api/kernels/${k.id}`), { method: "DELETE", signal: AbortSignal.timeout(10_000) }).catch(() => undefined)));
        } catch {
          // The server is going anyway; its own shutdown stops the kernels too.
        }
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }
      // A kernel the server failed to stop is still ours: it runs on this server's runtime directory.
      for (let i = 0; i < 20 && processesUsing(runtimeDir).length; i++) await sleep(250);
      for (const pid of processesUsing(runtimeDir)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    })());

  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (!alive) throw new LabError(`lab: jupyter notebook exited before it served anything:\n${logTail(logFile)}`);
    try {
      if ((await get(api("/api/status"))).status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new LabError(`lab: jupyter notebook did not answer on ${origin} within ${((opts.startTimeoutMs ?? 60_000) / 1000).toFixed(0)} s:\n${logTail(logFile)}`);
    }
    await sleep(200);
  }
  const inRepo = notebookDir === REPO_ROOT && fs.existsSync(path.join(REPO_ROOT, "notebooks"));
  const encode = (rel: string) => rel.split(/[\\/]/).map(encodeURIComponent).join("/");
  return {
    url: `${origin}/tree${inRepo ? "/notebooks" : ""}?token=${token}`,
    origin,
    token,
    port,
    notebookUrl: (rel) => `${origin}/notebooks/${encode(rel)}?token=${token}`,
    pid: child.pid!,
    logFile,
    runtimeDir,
    stop,
    exited,
  };
}

async function main(argv: string[]): Promise<number> {
  const at = argv.indexOf("--port");
  const port = at >= 0 ? Number(argv[at + 1]) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    console.error(`lab: --port takes a port number (1-65535), got ${argv[at + 1] ?? "nothing"}`);
    return 2;
  }
  const unknown = argv.filter((a, i) => a.startsWith("--") && !["--port", "--quick"].includes(a) && i !== at + 1);
  if (unknown.length) {
    console.error(`lab: unknown option ${unknown[0]} (options: --port N, --quick)`);
    return 2;
  }
  const quick = argv.includes("--quick") || process.env.CLIPLAB_QUICK === "1";
  const lab = await startLab({ port, env: quick ? { CLIPLAB_QUICK: "1" } : {} });
  console.log(`cliplab lab: Jupyter Notebook with the TypeScript (cliplab) kernel${quick ? ", quick mode (CLIPLAB_QUICK=1)" : ""}`);
  console.log(`  open ${lab.url}`);
  console.log(`  server log: ${path.relative(process.cwd(), lab.logFile)}; Ctrl-C stops the server and its kernels`);
  let asked = false;
  const requested = new Promise<void>((resolve) => {
    const shutDown = () => {
      asked = true;
      console.log("cliplab lab: stopping the kernels and the server ...");
      resolve();
    };
    process.once("SIGINT", shutDown);
    process.once("SIGTERM", shutDown);
    process.once("SIGHUP", shutDown);
  });
  await Promise.race([requested, lab.exited]);
  await lab.stop();
  if (asked) return 0;
  const code = await lab.exited;
  console.error(`cliplab lab: the server exited (code ${code}); see ${lab.logFile}:\n${logTail(lab.logFile)}`);
  return 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
