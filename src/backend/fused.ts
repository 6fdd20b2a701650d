/**
 * Fused ops on cliplab's C library (./fused_lib): which are active, and their registration as
 * kernels of the tfjs wasm backend (so that tf.profile, tf.tidy and the gradient tape see them
 * like any other kernel). The ops themselves live in ./fused_attention, ./fused_layernorm and
 * ./fused_activation; each falls back to nothing — callers check `fusedLib()` first and otherwise
 * run their tfjs composite.
 */
import * as tf from "@tensorflow/tfjs";
import { setActiveFusedLib, type FusedLib } from "./fused_lib";
import { nativeBlas } from "./native";

/**
 * Kernel configs contributed by the fused-op modules, registered together. A config may also
 * replace a standard wasm kernel (e.g. AvgPoolGrad); `previous(name)` is the kernel it replaces
 * (its fallback), which comes back on unregister.
 */
export type FusedKernelFactory = (lib: FusedLib, previous: (kernelName: string) => tf.KernelFunc | undefined) => tf.KernelConfig[];

const factories: FusedKernelFactory[] = [];
let active: FusedLib | undefined;
let registered: string[] = [];
const replaced = new Map<string, tf.KernelConfig>();

/** Called by each fused-op module at load time. */
export function addFusedKernels(factory: FusedKernelFactory): void {
  factories.push(factory);
  if (active) registerFrom(factory, active);
}

function previousKernel(name: string): tf.KernelFunc | undefined {
  return (replaced.get(name) ?? tf.getKernel(name, "wasm"))?.kernelFunc;
}

function registerFrom(factory: FusedKernelFactory, lib: FusedLib): void {
  for (const c of factory(lib, previousKernel)) {
    const existing = tf.getKernel(c.kernelName, c.backendName);
    if (existing) {
      if (!replaced.has(c.kernelName)) replaced.set(c.kernelName, existing);
      tf.unregisterKernel(c.kernelName, c.backendName);
    }
    tf.registerKernel({ ...c, setupFunc: c.setupFunc ?? existing?.setupFunc });
    registered.push(c.kernelName);
  }
}

/** Registers every fused kernel on the wasm backend (idempotent for the same library). */
export function registerFusedKernels(lib: FusedLib): void {
  if (active === lib) return;
  unregisterFusedKernels();
  active = lib;
  setActiveFusedLib(lib);
  for (const f of factories) registerFrom(f, lib);
}

export function unregisterFusedKernels(): void {
  for (const name of registered) if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
  for (const config of replaced.values()) tf.registerKernel(config);
  replaced.clear();
  registered = [];
  active = undefined;
  setActiveFusedLib(undefined);
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
