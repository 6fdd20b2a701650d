/**
 * The linear layer y = x @ W + b (W stored [in, out]) as one native GEMM with the bias folded in
 * (the `_FusedMatMul` kernel of ./native_matmul: rows pre-filled with b, beta = 1), and a backward
 * pass that hands BLAS its transpose flags instead of copying transposes:
 *   dx = dy @ W^T,  dW = x^T @ dy,  db = column sums of dy (C library if loaded, else ones @ dy).
 * Only meaningful while the native BLAS kernels are registered (`nativeBlas()`); the tfjs
 * composite in src/model/ is the fallback.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { addFusedKernels, fusedLib, recordingGradients } from "./fused";
import type { FusedLib } from "./fused_lib";
import { KernelArgs, f32 } from "./kernel_util";
import { nativeBlas } from "./native";

export const COLUMN_SUM = "CliplabColumnSum";

addFusedKernels((lib: FusedLib) => [
  {
    kernelName: COLUMN_SUM,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend }: KernelArgs) => {
      const b = backend as BackendWasm;
      const x = inputs.x as tf.TensorInfo;
      if (x.shape.length !== 2 || x.dtype !== "float32") throw new Error(`${COLUMN_SUM}: x must be float32 [R, C], got ${x.dtype} [${x.shape}]`);
      const [rows, cols] = x.shape;
      const out = b.makeOutput([cols], "float32");
      if (cols > 0) {
        if (rows === 0) f32(b, out).fill(0);
        else lib.colsum(f32(b, x), rows, cols, f32(b, out));
      }
      return out;
    },
  },
]);

/** True while the wasm backend runs the native BLAS kernels. */
export function nativeMatMulActive(): boolean {
  return nativeBlas() !== undefined && tf.getBackend() === "wasm";
}

/** Sums over the rows of dy [N, C] -> [C], without tfjs' transposing reduction. */
function columnSum(dy: tf.Tensor2D): tf.Tensor1D {
  if (fusedLib()) return tf.engine().runKernel(COLUMN_SUM, { x: dy }, {}) as tf.Tensor1D;
  return tf.reshape(tf.matMul(tf.ones([1, dy.shape[0]]) as tf.Tensor2D, dy), [dy.shape[1]]);
}

function forward(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = bias ? { a: x, b: w, bias } : { a: x, b: w };
  return tf.engine().runKernel(tf._FusedMatMul, inputs, { transposeA: false, transposeB: false, activation: "linear" } as never) as tf.Tensor2D; // [N, out]
}

/** x [N, in] @ w [in, out] (+ bias [out]), differentiable. Needs `nativeMatMulActive()`. */
export function nativeLinear(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  if (!nativeMatMulActive()) throw new Error("nativeLinear: the native BLAS kernels are not active (check nativeMatMulActive() first)");
  if (!recordingGradients()) return forward(x, w, bias);
  if (bias) {
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [xi, wi, bi, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
      save([xi, wi]);
      return {
        value: forward(xi, wi, bi),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sw] = saved as tf.Tensor2D[];
          const g = dy as tf.Tensor2D;
          return [tf.matMul(g, sw, false, true), tf.matMul(sx, g, true, false), columnSum(g)]; // [N, in], [in, out], [out]
        },
      };
    }) as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;
    return op(x, w, bias);
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, wi, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([xi, wi]);
    return {
      value: forward(xi, wi),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as tf.Tensor2D[];
        const g = dy as tf.Tensor2D;
        return [tf.matMul(g, sw, false, true), tf.matMul(sx, g, true, false)]; // [N, in], [in, out]
      },
    };
  }) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;
  return op(x, w);
}
