/**
 * Fused ops on cliplab's C library (./fused_lib): which are active, and their registration as
 * kernels of the tfjs wasm backend (so that tf.profile, tf.tidy and the gradient tape see them
 * like any other kernel). The ops themselves live in ./fused_attention, ./fused_layernorm and
 * ./fused_activation; each falls back to nothing — callers check `fusedLib()` first and otherwise
 * run their tfjs composite.
 */
import * as tf from "@tensorflow/tfjs";
import type { FusedLib } from "./fused_lib";
import { nativeBlas } from "./native";

/** Kernel configs contributed by the fused-op modules, registered together. */
export type FusedKernelFactory = (lib: FusedLib) => tf.KernelConfig[];

const factories: FusedKernelFactory[] = [];
let active: FusedLib | undefined;
let registered: string[] = [];

/** Called by each fused-op module at load time. */
export function addFusedKernels(factory: FusedKernelFactory): void {
  factories.push(factory);
  if (active) registerConfigs(factory(active));
}

function registerConfigs(configs: tf.KernelConfig[]): void {
  for (const c of configs) {
    if (tf.getKernel(c.kernelName, c.backendName)) tf.unregisterKernel(c.kernelName, c.backendName);
    tf.registerKernel(c);
    registered.push(c.kernelName);
  }
}

/** Registers every fused kernel on the wasm backend (idempotent for the same library). */
export function registerFusedKernels(lib: FusedLib): void {
  if (active === lib) return;
  unregisterFusedKernels();
  active = lib;
  for (const f of factories) registerConfigs(f(lib));
}

export function unregisterFusedKernels(): void {
  for (const name of registered) if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
  registered = [];
  active = undefined;
}

/**
 * The library when the fused ops can run right now: kernels registered, the wasm backend current
 * and the BLAS kernels on (the attention GEMMs use the same BLAS); else undefined.
 */
export function fusedLib(): FusedLib | undefined {
  return active && nativeBlas() && tf.getBackend() === "wasm" ? active : undefined;
}

/** True inside a gradient scope (tf.grad, tf.variableGrads, optimizer.minimize): save for backward. */
export function recordingGradients(): boolean {
  return tf.engine().state.gradientDepth > 0;
}
