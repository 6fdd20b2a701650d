/**
 * Multi-threaded start-up of the wasm backend. tfjs-backend-wasm 4.22 ships a threaded build
 * (`tfjs-backend-wasm-threaded-simd`, emscripten pthreads on worker threads) but never uses it in
 * Node:
 *   - the flag `WASM_HAS_MULTITHREAD_SUPPORT` is hard-wired to false when `IS_NODE`;
 *   - forced on, start-up dies: the pthread worker script is handed to `new Worker()` as a `blob:`
 *     URL, which node:worker_threads rejects (ERR_WORKER_PATH), and the main script is posted to each
 *     worker as a Blob that the worker then tries to read with fs.readFileSync(blob URL);
 *   - the main script is `factory.toString()` of the Node bundle, whose body refers to bundle-scope
 *     names (`require$$0..4`, `commonjsGlobal`, tslib's `__values`/`__read`/`__spreadArray`) that do
 *     not exist inside a worker;
 *   - the C++ side caps the pool at `emscripten_num_logical_cores() / 2` (it assumes
 *     hyper-threading), i.e. 1 thread on this 2-core machine, whatever `setThreadsCount` says.
 * What we do, only for the threaded start-up (`startThreadedWasm`): `globalThis.Worker` becomes
 * `PthreadWorker`, a subclass of node's Worker that turns tfjs' `blob:` URL back into its Blob and
 * starts our own small bootstrap (eval'd, no temp files) which reads the Blob, runs emscripten's
 * worker glue unchanged, defines the missing bundle-scope names, and serves the posted main-script
 * Blob to the glue's importScripts. For the duration of WebAssembly instantiation, the
 * `emscripten_num_logical_cores` import of that one module reports 2 x the requested threads, so
 * the C++ cap equals the request. Emscripten `ref()`s a worker while it runs a pthread, and XNNPACK's
 * pool threads run forever, so a threaded process would never exit on its own:
 * `PthreadWorker.ref()` is a no-op, which is safe because the main thread always waits
 * synchronously for pool work. `shutdownBackend()` terminates the workers explicitly if wanted
 * (`terminateWorkers`).
 * Start-up failures (a worker error or exit, 30 s without the module becoming ready) are caught,
 * instead of emscripten's rethrow on the main thread (which kills the process), the half-started
 * module is discarded, and `startThreadedWasm` rejects with a one-line Error saying why. The shim is
 * validated against tfjs-backend-wasm 4.22.0 only; with any other version
 * `threadsUnsupportedReason` says so (and threads stay at 1).
 */
import * as tf from "@tensorflow/tfjs";
import { resolveObjectURL } from "node:buffer";
import { Worker as NodeWorker, type WorkerOptions } from "node:worker_threads";
import { oneLine } from "./errors";

export type WasmModule = typeof import("@tensorflow/tfjs-backend-wasm");

/** The threaded start-up shim depends on this exact bundle (names inside factory.toString()). */
const SHIM_VALIDATED_WASM_VERSION = "4.22.0";
const THREADED_INIT_TIMEOUT_MS = 30_000;

/** Why the threaded build cannot start here, or undefined when it may. */
export function threadsUnsupportedReason(wasm: WasmModule, simd: boolean): string | undefined {
  if (wasm.version_wasm !== SHIM_VALIDATED_WASM_VERSION) {
    return `the threaded start-up shim is validated against tfjs-backend-wasm ${SHIM_VALIDATED_WASM_VERSION} only (found ${wasm.version_wasm})`;
  }
  if (!simd) return "the threaded build needs WebAssembly SIMD";
  if (typeof SharedArrayBuffer === "undefined") return "SharedArrayBuffer is unavailable";
  if (typeof resolveObjectURL !== "function" || typeof Blob === "undefined") return "this Node.js lacks Blob/resolveObjectURL";
  return undefined;
}

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

/** Terminates every pthread worker still alive (shutdownBackend, or a failed start-up). */
export async function terminateWorkers(): Promise<void> {
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

/**
 * Starts the threaded wasm build with `threads` XNNPACK threads, through the shim above; on any
 * failure the half-started module is discarded (so a 1-thread start can follow) and this rejects.
 */
export async function startThreadedWasm(wasm: WasmModule, threads: number): Promise<void> {
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
