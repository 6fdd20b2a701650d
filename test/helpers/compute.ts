/**
 * The compute configurations a parity test runs on: tfjs' pure-JS cpu backend, the wasm backend
 * with its own kernels, the wasm backend with the native BLAS kernels (src/backend/native.ts),
 * and with cliplab's fused C kernels on top (src/backend/fused*.ts). Switching is process-global;
 * `useCompute` returns a skip reason when the configuration cannot run here (no BLAS, the C
 * library not built, or turned off by CLIPLAB_BLAS / CLIPLAB_NATIVE_LIB).
 */
import "@tensorflow/tfjs-backend-wasm";
import { loadBlas } from "../../src/backend/blas";
import { registerFusedKernels, unregisterFusedKernels } from "../../src/backend/fused";
import { loadFusedLib } from "../../src/backend/fused_lib";
import { registerNativeKernels, unregisterNativeKernels } from "../../src/backend/native";
// Importing the op modules registers their kernels.
import "../../src/backend/fused_attention";
import "../../src/backend/fused_layernorm";
import "../../src/backend/fused_activation";
import "../../src/backend/fused_batchnorm";
import "../../src/backend/native_linear";
import { useBackend } from "./fixtures";

export const COMPUTE = ["cpu", "wasm", "wasm+blas", "wasm+fused"] as const;
export type Compute = (typeof COMPUTE)[number];

/** Switches to `c`; returns undefined when it runs, else why it cannot here. */
export async function useCompute(c: Compute): Promise<string | undefined> {
  if (c === "cpu") {
    await useBackend("cpu");
    return undefined;
  }
  await useBackend("wasm");
  if (c === "wasm") {
    unregisterFusedKernels();
    unregisterNativeKernels();
    return undefined;
  }
  const blas = loadBlas(1);
  if (!blas.blas) return `no native BLAS: ${blas.reason}`;
  registerNativeKernels(blas.blas);
  if (c === "wasm+blas") {
    unregisterFusedKernels();
    return undefined;
  }
  const fused = loadFusedLib(blas.blas, 1);
  if (!fused.lib) return `no fused-kernel library: ${fused.reason}`;
  registerFusedKernels(fused.lib);
  return undefined;
}
