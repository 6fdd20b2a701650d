/**
 * A 2-D matmul whose backward pass avoids transpose flags.
 *
 * The WASM backend runs `matMul` through XNNPACK only when neither operand is transposed (and
 * the batch is 1); with transpose flags it falls back to a scalar loop about 20x slower. tfjs's
 * built-in matMul gradient uses exactly those flags (dA = dY·Bᵀ, dB = Aᵀ·dY). Transposing the
 * operand explicitly first costs one copy and keeps both products on the fast path; on the cpu
 * and native backends the result is the same. With cliplab's native BLAS kernels
 * (src/backend/native.ts) the flags cost nothing, and the gradient uses them.
 */
import * as tf from "@tensorflow/tfjs";
import { nativeMatMulActive } from "../backend/native_linear";

const fastMatMul = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b), // [M, N]
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as tf.Tensor2D[];
      if (nativeMatMulActive()) {
        // BLAS takes transposes as flags at full speed: no copies.
        return [tf.matMul(dy as tf.Tensor2D, sb, false, true), tf.matMul(sa, dy as tf.Tensor2D, true, false)]; // [M, K], [K, N]
      }
      return [
        tf.matMul(dy as tf.Tensor2D, tf.transpose(sb)), // [M, K]
        tf.matMul(tf.transpose(sa), dy as tf.Tensor2D), // [K, N]
      ];
    },
  };
}) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** `a @ b` for a [M, K] and b [K, N], differentiable, fast on every backend. */
export function matMul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return fastMatMul(a, b);
}
