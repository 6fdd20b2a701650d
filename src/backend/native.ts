/**
 * Native kernels for the tfjs wasm backend: the matrix products and convolutions that dominate
 * CLIP, replaced by a system BLAS (./blas) working on the WASM heap in place. The wasm kernels
 * they replace stay registered underneath as the fallback for what the native ones do not cover
 * (other dtypes, channels-first layouts, unusual bias shapes), and come back entirely with
 * `unregisterNativeKernels()` (or when no BLAS loads: `CLIPLAB_BLAS=off`).
 *
 * Replaced: BatchMatMul, _FusedMatMul (./native_matmul); Conv2D, FusedConv2D,
 * Conv2DBackpropInput (strides above 1; stride 1 runs ./kernels' flipped-filter convolution on the
 * native Conv2D), Conv2DBackpropFilter (./native_conv).
 */
import * as tf from "@tensorflow/tfjs";
import type { Blas } from "./blas";
import { makeConv2D, makeConv2DBackpropFilter, makeConv2DBackpropInput, makeFusedConv2D } from "./native_conv";
import { makeBatchMatMul, makeFusedMatMul } from "./native_matmul";

type Maker = (blas: Blas, fallback: tf.KernelFunc | undefined) => tf.KernelFunc;

const NATIVE: [string, Maker][] = [
  [tf.BatchMatMul, makeBatchMatMul],
  [tf._FusedMatMul, makeFusedMatMul],
  [tf.Conv2D, makeConv2D],
  [tf.FusedConv2D, makeFusedConv2D],
  [tf.Conv2DBackpropInput, makeConv2DBackpropInput],
  [tf.Conv2DBackpropFilter, makeConv2DBackpropFilter],
];

/** The kernel configs that were registered before ours, to restore. */
const replaced = new Map<string, tf.KernelConfig | undefined>();
let active: Blas | undefined;

/** The BLAS behind the wasm backend's matrix kernels, or undefined when the wasm kernels run. */
export function nativeBlas(): Blas | undefined {
  return active;
}

/** Replaces the wasm matrix kernels by BLAS ones (idempotent; a second BLAS is an Error). */
export function registerNativeKernels(blas: Blas): void {
  if (active) {
    if (active !== blas) throw new Error(`registerNativeKernels: native kernels already run on ${active.name}`);
    return;
  }
  for (const [name, make] of NATIVE) {
    const existing = tf.getKernel(name, "wasm");
    replaced.set(name, existing);
    if (existing) tf.unregisterKernel(name, "wasm");
    // The old setupFunc (emscripten cwrap of the wasm kernel) keeps the fallback callable after a
    // backend re-initialisation.
    tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: make(blas, existing?.kernelFunc), setupFunc: existing?.setupFunc });
  }
  active = blas;
}

/** Puts the wasm kernels back (idempotent). */
export function unregisterNativeKernels(): void {
  if (!active) return;
  for (const [name] of NATIVE) {
    tf.unregisterKernel(name, "wasm");
    const old = replaced.get(name);
    if (old) tf.registerKernel(old);
  }
  replaced.clear();
  active = undefined;
}
