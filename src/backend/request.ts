/**
 * What `initBackend` is asked for: the backend (`initBackend({prefer})`, which wins over
 * `CLIPLAB_BACKEND=tensorflow|wasm|cpu`, else the automatic order), the compute threads
 * (`threads` / CLIPLAB_THREADS, 1..8, default 1) and the native BLAS kernels
 * (`blas`). Each value is checked here; an invalid one is a one-line Error naming where it came
 * from and the valid values.
 */
import * as os from "node:os";

export type BackendName = "tensorflow" | "wasm" | "cpu";

export interface InitOptions {
  /** Backend to force (else CLIPLAB_BACKEND, else the automatic order). */
  prefer?: BackendName;
  /** Compute threads, 1..8 (else CLIPLAB_THREADS, else 1): the WASM pool and the BLAS. */
  threads?: number;
  /** Native BLAS matrix kernels on the wasm backend when a BLAS loads (default true; CLIPLAB_BLAS=off also turns them off). */
  blas?: boolean;
}

/** The backends, in the automatic order (first that starts wins). */
export const BACKEND_ORDER: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];
/** tfjs-backend-wasm compiles a pool of 8 pthread workers and XNNPACK caps its pool at 8. */
const MAX_THREADS = 8;

/** A checked request, with where each value came from (for the reasons and errors). */
export interface Request {
  prefer?: BackendName;
  preferSource: string;
  threads: number;
  threadsExplicit: boolean;
  threadsSource: string;
  blas: boolean;
}

/**
 * Default thread count when neither `opts.threads` nor CLIPLAB_THREADS is given: 1. Measured on
 * the quiet 2-core VM (2026-12-02, native BLAS and fused kernels on): `cliplab train`, 936 steps of
 * the default recipe, trained in 103.9 s at 1 thread (1153 pairs/s, 88.31% zero-shot) and 153.9 s at
 * 2 (779 pairs/s, 88.35%); the training-step bench gives the same order (1110 against 822 pairs/s at
 * batch 128). The second thread is shared by three pools (XNNPACK's, OpenBLAS's, the fused
 * kernels' OpenMP), whose hand-offs cost more than the split gains at these sizes. Inference of
 * real-size models does gain from 2 (`npm run bench -- --only=inference` runs with 2): ask for it
 * with CLIPLAB_THREADS=2 or `initBackend({ threads: 2 })`.
 */
function defaultThreads(): number {
  return 1;
}

export function logicalCores(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

export function parseRequest(opts: InitOptions): Request {
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
  if ((BACKEND_ORDER as readonly string[]).includes(v)) return v as BackendName;
  throw new Error(`${what} is not a valid backend; valid values: ${BACKEND_ORDER.join(", ")} (or unset/auto for automatic selection)`);
}

function checkThreads(v: number, what: string): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= MAX_THREADS) return v;
  throw new Error(`${what} is not a valid thread count; valid values: integers 1..${MAX_THREADS} (or unset/auto for the default)`);
}
