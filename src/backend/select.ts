/**
 * Backend selection for cliplab: pick the fastest TensorFlow.js backend that actually works on this
 * machine, say which one and why, and start it.
 *
 * Order, first that starts wins:
 *   1. `@tensorflow/tfjs-node-gpu`, 2. `@tensorflow/tfjs-node`: the native `tensorflow` backend,
 *      each loaded in a child process first (./node_probe);
 *   3. `wasm` (XNNPACK, WebAssembly SIMD), optionally multi-threaded, with native BLAS and fused
 *      kernels when they load (./wasm, ./wasm_threads);
 *   4. `cpu` (pure JavaScript), always works, slowest.
 * `CLIPLAB_BACKEND=tensorflow|wasm|cpu` or `initBackend({prefer})` (which wins over the env) forces
 * one (./request checks what is asked for); a forced backend that cannot start is an Error with the
 * reason, never a silent fallback. The library never prints: the choice, the reason and every
 * attempt are returned for the CLI.
 */
import * as tf from "@tensorflow/tfjs";
import { UnmetRequestError, oneLine } from "./errors";
import { unregisterFusedKernels } from "./fused";
import { registerCpuKernels } from "./kernels";
import { unregisterNativeKernels } from "./native";
import { TF_PACKAGES, tryTensorflow } from "./node_probe";
import { BACKEND_ORDER, logicalCores, parseRequest, type BackendName, type InitOptions, type Request } from "./request";
import { startWasm } from "./wasm";
import { terminateWorkers } from "./wasm_threads";

export type { BackendName, InitOptions };

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

let choice: BackendChoice | undefined;
let inFlight: Promise<BackendChoice> | undefined;

/** The backend chosen by `initBackend`, or undefined before (or after `shutdownBackend`). */
export function currentBackend(): BackendChoice | undefined {
  return choice;
}

/**
 * Selects and starts a backend (see the header above for the order and the overrides). Idempotent:
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

function assertCompatible(c: BackendChoice, req: Request): void {
  if (req.prefer && req.prefer !== c.name) {
    throw new Error(`${req.preferSource} asks for ${req.prefer}, but the ${c.name} backend is already running in this process (backends are global; call shutdownBackend() first)`);
  }
  if (c.name === "wasm" && req.threadsExplicit && req.threads !== c.threads) {
    throw new Error(`${req.threadsSource} asks for ${req.threads} threads, but the wasm backend already runs with ${c.threads} (call shutdownBackend() first)`);
  }
}

type Attempt = { name: string; ok: boolean; reason: string };

/** What starting one backend gave (./wasm fills in the BLAS and fused-kernel fields). */
export type Started = { threads: number; simd: boolean; detail: string; blas?: BackendChoice["blas"]; blasReason?: string; fused?: BackendChoice["fused"]; fusedReason?: string };

async function select(req: Request): Promise<BackendChoice> {
  const tried: Attempt[] = [];
  const order: BackendName[] = req.prefer ? [req.prefer] : [...BACKEND_ORDER];
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
