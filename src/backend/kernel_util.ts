/**
 * Helpers shared by the kernels cliplab registers on the tfjs wasm backend: typed views of a
 * tensor's WASM heap memory, and moving between kernel-level TensorInfos and op-level Tensors.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

export type KernelArgs = Parameters<tf.KernelFunc>[0];

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A Float32Array view of a float32 tensor's WASM heap memory. Take views only after the last
 * `makeOutput` of a kernel: its malloc may grow the heap, which detaches every older view.
 */
export function f32(b: BackendWasm, info: tf.TensorInfo): Float32Array {
  const v = b.typedArrayFromHeap(info);
  if (!(v instanceof Float32Array)) throw new Error(`expected a float32 tensor, got ${info.dtype} [${info.shape}]`);
  return v;
}

/** Hands a tensor computed with tf ops back to the engine as a kernel output. */
export function asKernelOutput(b: BackendWasm, t: tf.Tensor): tf.TensorInfo {
  b.incRef(t.dataId);
  const info = { dataId: t.dataId, shape: t.shape.slice(), dtype: t.dtype };
  t.dispose();
  return info;
}

/** A tf.Tensor view of a kernel input (shares the data; disposing it leaves the input intact). */
export function asTensor(b: BackendWasm, info: tf.TensorInfo): tf.Tensor {
  b.incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info, b);
}

/** A freshly made kernel output turned into a Tensor the caller owns. */
export function ownTensor(b: BackendWasm, info: tf.TensorInfo): tf.Tensor {
  return tf.engine().makeTensorFromTensorInfo(info, b);
}

/** JS-side scratch memory reused across kernel calls (outside the 4 GiB WASM heap). */
let scratch = new Float32Array(0);

/** A Float32Array of at least `n` elements, valid until the next call. Contents are garbage. */
export function scratchF32(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(Math.max(n, Math.ceil(scratch.length * 1.5)));
  return scratch.length === n ? scratch : scratch.subarray(0, n);
}

/** Frees the scratch memory (tests, or after a large convolution). */
export function releaseScratch(): void {
  scratch = new Float32Array(0);
}
