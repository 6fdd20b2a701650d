/**
 * The compute configurations a parity test runs on: tfjs' pure-JS cpu backend, the wasm backend
 * with its own kernels, and the wasm backend with the native BLAS kernels (src/backend/native.ts).
 * Switching is process-global; `useCompute` returns a skip reason when the configuration cannot
 * run here (no BLAS, or CLIPLAB_BLAS=off).
 */
import "@tensorflow/tfjs-backend-wasm";
import { loadBlas } from "../../src/backend/blas";
import { nativeBlas, registerNativeKernels, unregisterNativeKernels } from "../../src/backend/native";
import { useBackend } from "./fixtures";

export const COMPUTE = ["cpu", "wasm", "wasm+blas"] as const;
export type Compute = (typeof COMPUTE)[number];

/** Switches to `c`; returns undefined when it runs, else why it cannot here. */
export async function useCompute(c: Compute): Promise<string | undefined> {
  if (c === "cpu") {
    await useBackend("cpu");
    return undefined;
  }
  await useBackend("wasm");
  if (c === "wasm") {
    unregisterNativeKernels();
    return undefined;
  }
  if (nativeBlas()) return undefined;
  const load = loadBlas(1);
  if (!load.blas) return `no native BLAS: ${load.reason}`;
  registerNativeKernels(load.blas);
  return undefined;
}
