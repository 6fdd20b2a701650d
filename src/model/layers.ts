/**
 * The small building blocks shared by the encoders: linear maps, LayerNorm, BatchNorm in
 * inference mode, activations and padded convolutions, written so that PyTorch's numbers
 * come out (explicit symmetric padding, eps 1e-5).
 */
import * as tf from "@tensorflow/tfjs";
import { matMul2d } from "./matmul";

/** Looks up a weight by its OpenAI state_dict name. */
export type Weights = (name: string) => tf.Tensor;

export type Activation = "quick_gelu" | "gelu";

export const NORM_EPS = 1e-5;

/** `x @ W + b` over the last axis; W is stored [in, out]. Flattening to 2-D keeps the matmul unbatched. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const inF = x.shape[x.shape.length - 1];
  const outF = weight.shape[1];
  const flat = x.rank === 2 ? x : tf.reshape(x, [-1, inF]); // [N, in]
  let y: tf.Tensor = matMul2d(flat as tf.Tensor2D, weight as tf.Tensor2D); // [N, out]
  if (bias) y = tf.add(y, bias);
  return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outF as number]);
}

/** LayerNorm over the last axis (biased variance, like torch). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = NORM_EPS): tf.Tensor {
  const axis = x.rank - 1;
  const mean = tf.mean(x, axis, true);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centered), axis, true);
  const normed = tf.mul(centered, tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, gamma), beta);
}

export function activate(x: tf.Tensor, kind: Activation): tf.Tensor {
  if (kind === "quick_gelu") return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
  // Exact GELU (torch's default), not the tanh approximation.
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

/** BatchNorm with running statistics (eval mode), NHWC. */
export function batchNormEval(x: tf.Tensor4D, w: Weights, prefix: string, eps = NORM_EPS): tf.Tensor4D {
  const scale = tf.mul(w(`${prefix}.weight`), tf.rsqrt(tf.add(w(`${prefix}.running_var`), eps))); // [C]
  const shift = tf.sub(w(`${prefix}.bias`), tf.mul(w(`${prefix}.running_mean`), scale)); // [C]
  return tf.add(tf.mul(x, scale), shift);
}

/** Conv with PyTorch's symmetric zero padding; filter HWIO. */
export function conv2d(x: tf.Tensor4D, filter: tf.Tensor, stride: number, padding: number): tf.Tensor4D {
  const padded =
    padding > 0
      ? tf.pad(x, [
          [0, 0],
          [padding, padding],
          [padding, padding],
          [0, 0],
        ])
      : x;
  return tf.conv2d(padded, filter as tf.Tensor4D, stride, "valid");
}
