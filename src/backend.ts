/**
 * Backend selection for cliplab: pick the fastest TensorFlow.js backend that actually works on this
 * machine, say which one and why, and make the WebAssembly backend usable for training.
 *
 * Order, first that starts wins:
 *   1. `@tensorflow/tfjs-node-gpu` (native libtensorflow; its `tensorflow` backend also runs on a
 *      machine without a GPU). An optional dependency that is often absent, because its install
 *      downloads libtensorflow.
 *   2. `@tensorflow/tfjs-node` (same backend name, CPU build). Not a dependency; present only if the
 *      user installed it. A package resolving under that NAME proves nothing (an override may alias it
 *      to plain `@tensorflow/tfjs`), so success means "a `tensorflow` backend registered with OUR
 *      tfjs-core and ran an op", never "require() did not throw".
 *      Native addons can abort the process (a CHECK in libtensorflow, a CUDA loader crash), which no
 *      try/catch can catch. So when a package is installed, it is first loaded in a short-lived child
 *      process; only if that probe passes is it loaded here.
 *   3. `wasm` (XNNPACK, WebAssembly SIMD), optionally multi-threaded, see below.
 *   4. `cpu` (pure JavaScript), always works, slowest.
 * `CLIPLAB_BACKEND=tensorflow|wasm|cpu` or `initBackend({prefer})` (which wins over the env) forces
 * one; a forced backend that cannot start is an Error with the reason, never a silent fallback.
 * The library never prints: the choice, the reason and every attempt are returned for the CLI.
 *
 * WASM threads. tfjs-backend-wasm 4.22 ships a threaded build (`tfjs-backend-wasm-threaded-simd`,
 * emscripten pthreads on worker threads) but never uses it in Node:
 *   - the flag `WASM_HAS_MULTITHREAD_SUPPORT` is hard-wired to false when `IS_NODE`;
 *   - forced on, start-up dies: the pthread worker script is handed to `new Worker()` as a `blob:`
 *     URL, which node:worker_threads rejects (ERR_WORKER_PATH), and the main script is posted to each
 *     worker as a Blob that the worker then tries to read with fs.readFileSync(blob URL);
 *   - the main script is `factory.toString()` of the Node bundle, whose body refers to bundle-scope
 *     names (`require$$0..4`, `commonjsGlobal`, tslib's `__values`/`__read`/`__spreadArray`) that do
 *     not exist inside a worker;
 *   - the C++ side caps the pool at `emscripten_num_logical_cores() / 2` (it assumes
 *     hyper-threading), i.e. 1 thread on this 2-core machine, whatever `setThreadsCount` says.
 * What we do, only for the threaded start-up (see `startThreadedWasm`): `globalThis.Worker` becomes
 * `PthreadWorker`, a subclass of node's Worker that turns tfjs' `blob:` URL back into its Blob and
 * starts our own small bootstrap (eval'd, no temp files) which reads the Blob, runs emscripten's
 * worker glue unchanged, defines the missing bundle-scope names, and serves the posted main-script
 * Blob to the glue's importScripts. For the duration of WebAssembly instantiation, the
 * `emscripten_num_logical_cores` import of that one module reports 2 x the requested threads, so
 * the C++ cap equals the request. Emscripten `ref()`s a worker while it runs a pthread, and XNNPACK's
 * pool threads run forever, so a threaded process would never exit on its own (the caveat found
 * earlier): `PthreadWorker.ref()` is a no-op, which is safe because the main thread always waits
 * synchronously for pool work. `shutdownBackend()` terminates the workers explicitly if wanted.
 * Start-up failures (a worker error or exit, 30 s without the module becoming ready) are caught,
 * instead of emscripten's rethrow on the main thread (which kills the process), the half-started
 * module is discarded, and the request fails with a one-line Error saying why (a default thread count
 * above 1 would instead fall back to 1 thread and say so in the reason). The shim is validated against tfjs-backend-wasm 4.22.0 only; with any
 * other version threads stay at 1 and the reason says so.
 * Threads: `threads` / CLIPLAB_THREADS, 1..8, default 2 (or the cores if fewer); `defaultThreads`
 * has the measurements behind that default.
 *
 * Missing WASM kernels (registered from src/backend/kernels.ts). tfjs-backend-wasm has no `UnsortedSegmentSum` (the gradient of tf.gather,
 * i.e. of every embedding lookup) and no `Conv2DBackpropFilter` (the gradient of conv2d weights),
 * so training would throw. We register both for the `wasm` backend:
 *   - UnsortedSegmentSum: one pass over the input on views of the WASM heap, O(N*D), written straight
 *     into the output's heap memory (tfjs' cpu kernel loops over segments: O(numSegments*N*D)).
 *   - Conv2DBackpropFilter: im2col in JS, written straight into WASM heap memory (chunks of <= 32 MB),
 *     then one untransposed matmul per chunk, dW^T = dy^T x patches, so the heavy part runs in
 *     XNNPACK (SIMD, threaded). tfjs-backend-wasm's BatchMatMul takes XNNPACK only without transpose
 *     flags and with batch 1; otherwise a naive single-threaded loop (about 12x slower for A x B^T,
 *     60x for A^T x B at 1024^3), which is also why src/model/matmul.ts avoids them.
 * A kernel already registered for wasm (a future tfjs version) is left alone.
 *
 * Native matrix kernels (src/backend/native.ts). On the wasm backend, a system BLAS found at run
 * time (OpenBLAS on Linux, Accelerate on macOS; src/backend/blas.ts) takes over BatchMatMul,
 * _FusedMatMul and the convolutions and their gradients, working on the WASM heap in place; the
 * wasm kernels stay underneath as the fallback. It runs with the same thread count as asked for
 * the backend. `CLIPLAB_BLAS=off` or `initBackend({blas: false})` keeps the wasm kernels,
 * `CLIPLAB_BLAS=/path/lib.so` names the library. `BackendChoice.blas` says which BLAS is used (and
 * `blasReason` why, or why none).
 *
 * Fused kernels (src/backend/fused*.ts). With the BLAS kernels on, cliplab's own C library
 * (src/backend/csrc, built by `bash scripts/build-native.sh`) adds fused attention, LayerNorm,
 * bias + GELU/QuickGELU and the bias gradient, used by src/model when present;
 * `CLIPLAB_NATIVE_LIB=off|/path` turns it off or names it; `BackendChoice.fused` / `fusedReason`.
 */
import * as tf from "@tensorflow/tfjs";
import { resolveObjectURL } from "node:buffer";
import { execFile } from "node:child_process";
import * as os from "node:os";
import { Worker as NodeWorker, type WorkerOptions } from "node:worker_threads";
import { loadBlas } from "./backend/blas";
import { registerCpuKernels, registerWasmKernels } from "./backend/kernels";
import { registerNativeKernels, unregisterNativeKernels } from "./backend/native";
import { registerFusedKernels, unregisterFusedKernels } from "./backend/fused";
import { loadFusedLib } from "./backend/fused_lib";
// The fused ops register their kernels with ./backend/fused when loaded.
import "./backend/fused_attention";
import "./backend/fused_layernorm";
import "./backend/fused_activation";
import "./backend/fused_batchnorm";
import "./backend/native_linear";

export { registerCpuKernels };

export type BackendName = "tensorflow" | "wasm" | "cpu";

export interface BackendChoice {
  name: BackendName;
  /** One line: why this backend (forced by what, or first working in the automatic order). */
  reason: string;
  /** Compute threads: XNNPACK pool size for wasm, 1 for cpu, logical cores for tensorflow. */
  threads: number;
  /** WebAssembly SIMD in use (only the wasm backend can say true). */
  simd: boolean;
  /** Every backend attempted, in order, with a one-line reason. */
  tried: { name: string; ok: boolean; reason: string }[];
  /** The BLAS running the wasm backend's matrix kernels, if one loaded (wasm only). */
  blas?: { name: string; path: string; threads: number };
  /** One line: which BLAS runs the matrix kernels, or why none does ("" off the wasm backend). */
  blasReason: string;
  /** cliplab's fused-kernel C library, if loaded (wasm with a BLAS only). */
  fused?: { path: string; openmp: boolean };
  /** One line: the fused-kernel library in use, or why none ("" off the wasm backend). */
  fusedReason: string;
}

export interface InitOptions {
  /** Backend to force (else CLIPLAB_BACKEND, else the automatic order). */
  prefer?: BackendName;
  /** Compute threads, 1..8 (else CLIPLAB_THREADS, else 2 or the cores if fewer): the WASM pool and the BLAS. */
  threads?: number;
  /** Native BLAS matrix kernels on the wasm backend when a BLAS loads (default true; CLIPLAB_BLAS=off also turns them off). */
  blas?: boolean;
}

const VALID: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];
const TF_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;
/** tfjs-backend-wasm compiles a pool of 8 pthread workers and XNNPACK caps its pool at 8. */
const MAX_THREADS = 8;
/** The threaded start-up shim depends on this exact bundle (names inside factory.toString()). */
const SHIM_VALIDATED_WASM_VERSION = "4.22.0";
const THREADED_INIT_TIMEOUT_MS = 30_000;
const PROBE_TIMEOUT_MS = 120_000;

/**
 * Default thread count when neither `opts.threads` nor CLIPLAB_THREADS is given: 2, or the logical
 * cores if fewer. With the native BLAS and fused kernels the default recipe's step is mostly sgemm
 * and fused C loops, which split across cores: measured on the quiet 2-core VM, `cliplab train`
 * (936 steps) took 230.6 s of training at 1 thread (520 pairs/s) and 153.9 s at 2 (779 pairs/s),
 * zero-shot 88.19% and 88.35% (bench/RESULTS.md). On a machine other jobs keep busy, 1 thread can
 * be faster (a pool thread waits for a core): CLIPLAB_THREADS=1. More than 2 is opt-in (it did not
 * pay on the machines this was measured on, and each thread costs a worker isolate, ~10 MB RSS).
 */
function defaultThreads(): number {
  return Math.max(1, Math.min(2, logicalCores()));
}

let choice: BackendChoice | undefined;
let inFlight: Promise<BackendChoice> | undefined;

/** The backend chosen by `initBackend`, or undefined before (or after `shutdownBackend`). */
export function currentBackend(): BackendChoice | undefined {
  return choice;
}

/**
 * Selects and starts a backend (see the file header for the order and the overrides). Idempotent:
 * later calls return the same choice; asking for a different backend or thread count than the one
 * already running is an Error (tfjs backends are process-global).
 */
export async function initBackend(opts: InitOptions = {}): Promise<BackendChoice> {
  const req = parseRequest(opts);
  if (inFlight) {
    const c = await inFlight;
    assertCompatible(c, req);
    return c;
  }
  const p = select(req);
  inFlight = p;
  try {
    const c = await p;
    choice = c;
    return c;
  } catch (e) {
    inFlight = undefined;
    throw e;
  }
}

/**
 * Stops the backend's worker threads (only the multi-threaded wasm backend has any) and forgets the
 * choice, so the next `initBackend` starts afresh. Tensors on the old backend are invalid afterwards.
 * Not needed for the process to exit (pthread workers never keep it alive), but gives a clean,
 * deterministic teardown.
 */
export async function shutdownBackend(): Promise<void> {
  const pending = inFlight;
  if (pending) await pending.catch(() => undefined);
  if (choice?.name === "wasm") {
    unregisterNativeKernels();
    unregisterFusedKernels();
    const factory = tf.engine().registryFactory["wasm"];
    // removeBackend disposes BackendWasm, which terminates the emscripten pthreads.
    if (factory) {
      tf.removeBackend("wasm");
      tf.registerBackend("wasm", factory.factory, factory.priority);
    }
  }
  await terminateWorkers();
  choice = undefined;
  inFlight = undefined;
}

// ---------------------------------------------------------------------------------------------
// Request parsing

interface Request {
  prefer?: BackendName;
  preferSource: string;
  threads: number;
  threadsExplicit: boolean;
  threadsSource: string;
  blas: boolean;
}

function parseRequest(opts: InitOptions): Request {
  let prefer: BackendName | undefined;
  let preferSource = "";
  const envB = process.env.CLIPLAB_BACKEND;
  if (opts.prefer !== undefined && String(opts.prefer) !== "auto") {
    prefer = checkBackendName(String(opts.prefer), `initBackend({prefer: ${JSON.stringify(opts.prefer)}})`);
    preferSource = `initBackend({prefer: "${prefer}"})`;
  } else if (envB !== undefined && envB.trim() !== "" && envB.trim().toLowerCase() !== "auto") {
    prefer = checkBackendName(envB.trim().toLowerCase(), `CLIPLAB_BACKEND=${JSON.stringify(envB)}`);
    preferSource = `CLIPLAB_BACKEND=${prefer}`;
  }
  let threads = defaultThreads();
  let threadsExplicit = false;
  let threadsSource = "default";
  const envT = process.env.CLIPLAB_THREADS;
  if (opts.threads !== undefined) {
    threads = checkThreads(opts.threads, `initBackend({threads: ${JSON.stringify(opts.threads)}})`);
    threadsExplicit = true;
    threadsSource = `initBackend({threads: ${threads}})`;
  } else if (envT !== undefined && envT.trim() !== "" && envT.trim().toLowerCase() !== "auto") {
    threads = checkThreads(Number(envT.trim()), `CLIPLAB_THREADS=${JSON.stringify(envT)}`);
    threadsExplicit = true;
    threadsSource = `CLIPLAB_THREADS=${threads}`;
  }
  if (opts.blas !== undefined && typeof opts.blas !== "boolean") throw new Error(`initBackend({blas: ${JSON.stringify(opts.blas)}}) is not valid; valid values: true, false`);
  return { prefer, preferSource, threads, threadsExplicit, threadsSource, blas: opts.blas ?? true };
}

function checkBackendName(v: string, what: string): BackendName {
  if ((VALID as readonly string[]).includes(v)) return v as BackendName;
  throw new Error(`${what} is not a valid backend; valid values: ${VALID.join(", ")} (or unset/auto for automatic selection)`);
}

function checkThreads(v: number, what: string): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= MAX_THREADS) return v;
  throw new Error(`${what} is not a valid thread count; valid values: integers 1..${MAX_THREADS} (or unset/auto for the default)`);
}

function assertCompatible(c: BackendChoice, req: Request): void {
  if (req.prefer && req.prefer !== c.name) {
    throw new Error(`${req.preferSource} asks for ${req.prefer}, but the ${c.name} backend is already running in this process (backends are global; call shutdownBackend() first)`);
  }
  if (c.name === "wasm" && req.threadsExplicit && req.threads !== c.threads) {
    throw new Error(`${req.threadsSource} asks for ${req.threads} threads, but the wasm backend already runs with ${c.threads} (call shutdownBackend() first)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Selection

type Attempt = { name: string; ok: boolean; reason: string };

/** A request that was explicit and cannot be met: fails initBackend instead of trying the next backend. */
class UnmetRequestError extends Error {}
type Started = { threads: number; simd: boolean; detail: string; blas?: BackendChoice["blas"]; blasReason?: string; fused?: BackendChoice["fused"]; fusedReason?: string };

async function select(req: Request): Promise<BackendChoice> {
  const tried: Attempt[] = [];
  const order: BackendName[] = req.prefer ? [req.prefer] : [...VALID];
  for (const name of order) {
    const started = await startBackend(name, req, tried);
    if (started) {
      const why = req.prefer ? `forced by ${req.preferSource}` : `first backend that started, in the order tfjs-node-gpu, tfjs-node, wasm, cpu`;
      const blas = started.blas;
      const fused = started.fused;
      return {
        name,
        reason: `${started.detail}; ${why}`,
        threads: started.threads,
        simd: started.simd,
        tried,
        ...(blas ? { blas } : {}),
        blasReason: started.blasReason ?? "",
        ...(fused ? { fused } : {}),
        fusedReason: started.fusedReason ?? "",
      };
    }
  }
  // Only reachable when forced: the automatic order ends with cpu, which always starts.
  const failures = tried.filter((t) => !t.ok).map((t) => `${t.name}: ${t.reason}`).join("; ");
  throw new Error(`${req.preferSource}: the ${req.prefer} backend cannot start: ${failures}`);
}

async function startBackend(name: BackendName, req: Request, tried: Attempt[]): Promise<Started | undefined> {
  if (name === "tensorflow") {
    for (const pkg of TF_PACKAGES) {
      const r = await tryTensorflow(pkg);
      tried.push({ name: pkg, ok: r.ok, reason: r.reason });
      if (r.ok) return { threads: logicalCores(), simd: false, detail: r.reason };
    }
    return undefined;
  }
  if (name === "wasm") {
    try {
      const s = await startWasm(req);
      tried.push({ name: "wasm", ok: true, reason: s.detail });
      return s;
    } catch (e) {
      if (e instanceof UnmetRequestError) throw e;
      tried.push({ name: "wasm", ok: false, reason: oneLine(e) });
      return undefined;
    }
  }
  try {
    registerCpuKernels();
    if (!(await tf.setBackend("cpu"))) throw new Error("tf.setBackend('cpu') returned false");
    // The cpu backend prints a "install tfjs-node" banner on first use; the library never prints.
    const b = tf.backend() as unknown as { firstUse?: boolean };
    if (b.firstUse !== undefined) b.firstUse = false;
    const detail = "cpu: pure-JavaScript kernels, 1 thread";
    tried.push({ name: "cpu", ok: true, reason: detail });
    return { threads: 1, simd: false, detail };
  } catch (e) {
    tried.push({ name: "cpu", ok: false, reason: oneLine(e) });
    return undefined;
  }
}

function logicalCores(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e);
  const line = msg.split("\n").map((s) => s.trim()).find((s) => s !== "") ?? "unknown error";
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

// ---------------------------------------------------------------------------------------------
// tensorflow (tfjs-node-gpu / tfjs-node)

async function tryTensorflow(pkg: string): Promise<{ ok: boolean; reason: string }> {
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

// ---------------------------------------------------------------------------------------------
// wasm

type WasmModule = typeof import("@tensorflow/tfjs-backend-wasm");

async function startWasm(req: Request): Promise<Started> {
  const wasm = require("@tensorflow/tfjs-backend-wasm") as WasmModule;
  const simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
  registerWasmKernels();
  // So that a later switch to the cpu backend (tests, debugging) can train too.
  registerCpuKernels();
  let threads = req.threads;
  let note = "";

  if (tf.engine().registry["wasm"]) {
    // Started by other code before initBackend: its thread count is fixed now.
    if (!(await tf.setBackend("wasm"))) throw new Error("tf.setBackend('wasm') returned false");
    threads = wasm.getThreadsCount();
    if (req.threadsExplicit && threads !== req.threads) {
      throw new UnmetRequestError(`${req.threadsSource}: the wasm backend was already started (outside initBackend) with ${threads} thread(s)`);
    }
    note = " (started outside initBackend)";
  } else if (threads > 1) {
    const why = threadsUnsupportedReason(wasm, simd);
    let failure: string | undefined = why;
    if (!why) {
      try {
        await startThreadedWasm(wasm, threads);
      } catch (e) {
        failure = oneLine(e);
      }
    }
    if (failure !== undefined) {
      if (req.threadsExplicit) throw new UnmetRequestError(`${req.threadsSource}: cannot start multi-threaded wasm: ${failure}`);
      note = ` (multi-threading unavailable: ${failure})`;
      threads = 1;
    }
  }
  if (threads <= 1 && !tf.engine().registry["wasm"]) {
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    wasm.setThreadsCount(1);
    if (!(await tf.setBackend("wasm"))) throw new Error("tf.setBackend('wasm') returned false (WebAssembly module failed to load)");
    threads = wasm.getThreadsCount();
  }
  if (tf.getBackend() !== "wasm" && !(await tf.setBackend("wasm"))) throw new Error("tf.setBackend('wasm') returned false");
  const native = startNative(req);
  const detail = `wasm: XNNPACK WebAssembly${simd ? " with SIMD" : " without SIMD"}, ${threads} thread${threads === 1 ? "" : "s"}${note}; matrix kernels: ${native.blas ? native.reason : `wasm (${native.reason})`}; fused kernels: ${native.fused ? native.fusedReason : `none (${native.fusedReason})`}`;
  return { threads, simd, detail, blas: native.blas, blasReason: native.reason, fused: native.fused, fusedReason: native.fusedReason };
}

/** Native BLAS kernels over the wasm ones, when asked for and a BLAS loads (see the file header). */
function startNative(req: Request): { blas?: BackendChoice["blas"]; reason: string; fused?: BackendChoice["fused"]; fusedReason: string } {
  if (!req.blas) {
    unregisterNativeKernels();
    unregisterFusedKernels();
    return { reason: "native BLAS kernels turned off by initBackend({blas: false})", fusedReason: "they need the BLAS kernels" };
  }
  let load;
  try {
    load = loadBlas(req.threads);
  } catch (e) {
    // Only an explicit CLIPLAB_BLAS path throws: asked for, so not a silent fallback.
    throw new UnmetRequestError(oneLine(e));
  }
  if (!load.blas) {
    unregisterNativeKernels();
    unregisterFusedKernels();
    return { reason: load.reason, fusedReason: "they need a BLAS" };
  }
  registerNativeKernels(load.blas);
  const blas = { name: load.blas.name, path: load.blas.path, threads: load.blas.threads };
  const f = loadFusedLib(load.blas, req.threads);
  if (!f.lib) {
    unregisterFusedKernels();
    return { blas, reason: load.reason, fusedReason: f.reason };
  }
  registerFusedKernels(f.lib);
  return { blas, reason: load.reason, fused: { path: f.lib.path, openmp: f.lib.openmp }, fusedReason: f.reason };
}

function threadsUnsupportedReason(wasm: WasmModule, simd: boolean): string | undefined {
  if (wasm.version_wasm !== SHIM_VALIDATED_WASM_VERSION) {
    return `the threaded start-up shim is validated against tfjs-backend-wasm ${SHIM_VALIDATED_WASM_VERSION} only (found ${wasm.version_wasm})`;
  }
  if (!simd) return "the threaded build needs WebAssembly SIMD";
  if (typeof SharedArrayBuffer === "undefined") return "SharedArrayBuffer is unavailable";
  if (typeof resolveObjectURL !== "function" || typeof Blob === "undefined") return "this Node.js lacks Blob/resolveObjectURL";
  return undefined;
}

// ----- threaded start-up shim

/**
 * Runs inside each pthread worker (eval'd). Reads emscripten's worker glue from the Blob that tfjs
 * made for it, runs it, and feeds it the messages in order; a "load" message carrying the main
 * script as a Blob is read first (async) and served to the glue's importScripts under a key.
 */
const PTHREAD_BOOTSTRAP = `"use strict";
const { parentPort, workerData } = require("worker_threads");
globalThis.require = require;
const scripts = new Map();
let nextKey = 0;
let glueOnMessage = null;
const addListener = parentPort.on.bind(parentPort);
const crash = (e) => setImmediate(() => { throw e; });
let queue = workerData.glue.text().then((glue) => {
  parentPort.on = (ev, fn) => { if (ev === "message" && glueOnMessage === null) { glueOnMessage = fn; return parentPort; } return addListener(ev, fn); };
  (0, eval)(glue);
  parentPort.on = addListener;
  if (typeof glueOnMessage !== "function") throw new Error("cliplab: emscripten pthread glue registered no message handler");
  const glueImportScripts = globalThis.importScripts;
  globalThis.importScripts = (key) => {
    const src = scripts.get(key);
    if (src === undefined) return glueImportScripts(key);
    scripts.delete(key);
    (0, eval)(workerData.prelude + src);
    if (typeof globalThis.WasmBackendModuleThreadedSimd !== "function") throw new Error("cliplab: main script did not define WasmBackendModuleThreadedSimd");
  };
});
addListener("message", (data) => {
  queue = queue.then(async () => {
    if (data && data.cmd === "load" && data.urlOrBlob instanceof Blob) {
      const key = "cliplab-main-script-" + nextKey++;
      scripts.set(key, await data.urlOrBlob.text());
      data.urlOrBlob = key;
    }
    glueOnMessage(data);
  }).catch(crash);
});
`;

/**
 * Bundle-scope names that `factory.toString()` of tf-backend-wasm.node.js 4.22.0 refers to (found
 * by type-checking the extracted main script for unresolved names), defined as worker globals.
 * The tslib helpers are re-implemented for exactly the uses in that script.
 */
const MAIN_SCRIPT_PRELUDE = `var require$$0 = require("fs"), require$$1 = require("path"), require$$3 = require("perf_hooks"), require$$4 = require("os");
var commonjsGlobal = globalThis, _scriptDir = undefined;
var __values = function (o) { return o[Symbol.iterator](); };
var __read = function (o, n) { var a = []; for (var v of o) { if (n !== undefined && a.length >= n) break; a.push(v); } return a; };
var __spreadArray = function (to, from) { return to.concat(Array.prototype.slice.call(from)); };
`;

const liveWorkers = new Set<PthreadWorker>();
let startupWatch: ((e: Error) => void) | undefined;

/**
 * node:worker_threads Worker that understands tfjs' blob: pthread script and never pins the process.
 * Any other URL gives an ordinary Worker.
 */
class PthreadWorker extends NodeWorker {
  private readonly pthread: boolean;

  constructor(url: string | URL, options?: WorkerOptions) {
    const isBlob = typeof url === "string" && url.startsWith("blob:");
    const blob = isBlob ? resolveObjectURL(url) : undefined;
    if (isBlob && !blob) throw new Error(`cannot resolve the pthread script ${url}`);
    if (blob) super(PTHREAD_BOOTSTRAP, { eval: true, workerData: { glue: blob, prelude: MAIN_SCRIPT_PRELUDE } });
    else super(url, options);
    this.pthread = isBlob;
    if (!isBlob) return;
    liveWorkers.add(this);
    super.on("exit", (code: number) => {
      liveWorkers.delete(this);
      startupWatch?.(new Error(`a pthread worker exited with code ${code} during start-up`));
    });
  }

  /** Emscripten refs a worker while it runs a pthread, and XNNPACK's pool threads never end. */
  override ref(): void {
    if (!this.pthread) super.ref();
  }

  /** Terminates and waits for the exit, keeping the event loop alive until then. */
  async stop(): Promise<void> {
    super.ref();
    await this.terminate().catch(() => 0);
  }

  // Emscripten's 'error' handler rethrows on the main thread, which kills the process; during our
  // start-up an error is a reportable failure instead.
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event !== "error" || !this.pthread) return super.on(event, listener);
    return super.on("error", (e: unknown) => {
      if (startupWatch) startupWatch(e instanceof Error ? e : new Error(oneLine(e)));
      else listener(e);
    });
  }
}

async function terminateWorkers(): Promise<void> {
  const ws = [...liveWorkers];
  liveWorkers.clear();
  await Promise.all(ws.map((w) => w.stop()));
}

function installWorkerGlobal(): void {
  // The emscripten factory assigns `commonjsGlobal.Worker = worker_threads.Worker` and then calls
  // `new Worker(...)`: keep ours in place through that assignment.
  Object.defineProperty(globalThis, "Worker", { configurable: true, enumerable: false, get: () => PthreadWorker, set: () => undefined });
}

/**
 * After start-up `Worker` stays ours as a plain value (the factory had set worker_threads.Worker):
 * should emscripten ever grow its pool later it again gets a working blob: worker, and for any other
 * URL the class is an ordinary worker_threads Worker.
 */
function settleWorkerGlobal(): void {
  Object.defineProperty(globalThis, "Worker", { configurable: true, enumerable: false, writable: true, value: PthreadWorker });
}

interface WasmGlobal {
  instantiate: (...args: unknown[]) => Promise<unknown>;
}

async function startThreadedWasm(wasm: WasmModule, threads: number): Promise<void> {
  const WA = (globalThis as unknown as { WebAssembly: WasmGlobal }).WebAssembly;
  const instantiate = WA.instantiate;
  let failed: ((e: Error) => void) | undefined;
  const failure = new Promise<never>((_, reject) => {
    failed = reject;
  });
  failure.catch(() => undefined);
  let firstError: Error | undefined;
  startupWatch = (e) => {
    firstError ??= e;
    failed?.(e);
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the threaded module was not ready after ${THREADED_INIT_TIMEOUT_MS / 1000} s`)), THREADED_INIT_TIMEOUT_MS);
  });
  timeout.catch(() => undefined);
  installWorkerGlobal();
  WA.instantiate = function (this: unknown, ...args: unknown[]) {
    const env = (args[1] as { env?: Record<string, unknown> } | undefined)?.env;
    if (env && typeof env.emscripten_num_logical_cores === "function") {
      // backend.cc: pool = min(requested, 8, logical_cores / 2)
      env.emscripten_num_logical_cores = () => 2 * threads;
    }
    return instantiate.apply(this, args);
  };
  try {
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    wasm.setThreadsCount(threads);
    const ok = await Promise.race([tf.setBackend("wasm"), failure, timeout]);
    if (!ok) throw firstError ?? new Error("tf.setBackend('wasm') returned false for the threaded build");
    const got = wasm.getThreadsCount();
    if (got !== threads) throw new Error(`XNNPACK started ${got} threads instead of ${threads}`);
  } catch (e) {
    // Abandon the half-started module: make its pending init stale and stop its workers.
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    // removeBackend disposes a started module, or bumps the engine's pending-init id so a late
    // success of a hung one is ignored; re-registering the factory allows the 1-thread retry.
    const factory = tf.engine().registryFactory["wasm"];
    tf.removeBackend("wasm");
    tf.registerBackend("wasm", factory.factory, factory.priority);
    await terminateWorkers();
    throw e;
  } finally {
    clearTimeout(timer);
    WA.instantiate = instantiate;
    startupWatch = undefined;
    settleWorkerGlobal();
  }
}
