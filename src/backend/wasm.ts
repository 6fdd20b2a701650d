/**
 * The `wasm` backend (XNNPACK, WebAssembly SIMD), multi-threaded when asked (./wasm_threads), with
 * the kernels cliplab adds for training (./kernels) and, when a BLAS loads, native kernels on top.
 *
 * Threads: a thread count above 1 starts the threaded build; if that cannot start, an explicit
 * request (`threads` / CLIPLAB_THREADS) is an Error saying why, while the default falls back to 1
 * thread and says so in the reason.
 *
 * Native matrix kernels (./native). On the wasm backend, a system BLAS found at run time (OpenBLAS
 * on Linux, Accelerate on macOS; ./blas) takes over BatchMatMul, _FusedMatMul and the convolutions
 * and their gradients, working on the WASM heap in place; the wasm kernels stay underneath as the
 * fallback. It runs with the same thread count as asked for the backend. `CLIPLAB_BLAS=off` or
 * `initBackend({blas: false})` keeps the wasm kernels, `CLIPLAB_BLAS=/path/lib.so` names the
 * library. `BackendChoice.blas` says which BLAS is used (and `blasReason` why, or why none).
 *
 * Fused kernels (./fused*.ts). With the BLAS kernels on, cliplab's own C library (./csrc, built by
 * `bash scripts/build-native.sh`) adds fused attention, LayerNorm, bias + GELU/QuickGELU and the
 * bias gradient, used by src/model when present; `CLIPLAB_NATIVE_LIB=off|/path` turns it off or
 * names it; `BackendChoice.fused` / `fusedReason`.
 */
import * as tf from "@tensorflow/tfjs";
import { loadBlas } from "./blas";
import { UnmetRequestError, oneLine } from "./errors";
import { registerFusedKernels, unregisterFusedKernels } from "./fused";
import { loadFusedLib } from "./fused_lib";
import { registerCpuKernels, registerWasmKernels } from "./kernels";
import { registerNativeKernels, unregisterNativeKernels } from "./native";
import type { Request } from "./request";
import type { BackendChoice, Started } from "./select";
import { startThreadedWasm, threadsUnsupportedReason, type WasmModule } from "./wasm_threads";
// The fused ops register their kernels with ./fused when loaded.
import "./fused_attention";
import "./fused_layernorm";
import "./fused_activation";
import "./fused_batchnorm";
import "./native_linear";

/** Starts the wasm backend for `req`; an Error (UnmetRequestError for an explicit request) if it cannot. */
export async function startWasm(req: Request): Promise<Started> {
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

/** Native BLAS kernels over the wasm ones, when asked for and a BLAS loads (see the header above). */
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
