/**
 * The small building blocks shared by the encoders: linear maps, LayerNorm, BatchNorm
 * (Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167) in inference and training mode,
 * activations and padded convolutions, written so that PyTorch's numbers come out (explicit
 * symmetric padding, eps 1e-5, BatchNorm momentum 0.1 with an unbiased running variance).
 */
import * as tf from "@tensorflow/tfjs";
import { matMul2d } from "./matmul";
import { fusedLib } from "../backend/fused";
import { fusedBiasActivation } from "../backend/fused_activation";
import { fusedLayerNorm } from "../backend/fused_layernorm";
import { fusedBatchNormTrain } from "../backend/fused_batchnorm";
import { nativeLinear, nativeMatMulActive } from "../backend/native_linear";


/** Looks up a weight by its OpenAI state_dict name. */
export type Weights = (name: string) => tf.Tensor;

export type Activation = "quick_gelu" | "gelu";

export const NORM_EPS = 1e-5;

/**
 * `x @ W + b` over the last axis; W is stored [in, out]. Flattening to 2-D keeps the matmul
 * unbatched. With the native BLAS kernels (src/backend/native.ts) it is one GEMM with the bias
 * folded in.
 */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const inF = x.shape[x.shape.length - 1];
  const outF = weight.shape[1];
  const flat = x.rank === 2 ? x : tf.reshape(x, [-1, inF]); // [N, in]
  let y: tf.Tensor;
  if (nativeMatMulActive()) {
    y = nativeLinear(flat as tf.Tensor2D, weight as tf.Tensor2D, bias as tf.Tensor1D | undefined); // [N, out]
  } else {
    y = matMul2d(flat as tf.Tensor2D, weight as tf.Tensor2D); // [N, out]
    if (bias) y = addBias(y as tf.Tensor2D, bias as tf.Tensor1D);
  }
  return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outF as number]);
}

/** `act(x @ W + b)`: with the fused kernels, the bias and the activation are one pass after the GEMM. */
export function linearActivation(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | undefined, kind: Activation): tf.Tensor {
  if (!fusedLib()) return activate(linear(x, weight, bias), kind);
  const pre = linear(x, weight); // [..., out]
  return fusedBiasActivation(pre, bias, kind);
}

/**
 * `y + b` for y [N, out] and b [out], whose bias gradient is ones[1, N] @ dy (one XNNPACK pass)
 * instead of tfjs' sum over axis 0, which on WASM transposes dy first.
 */
const addBias = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [y, b] = args as [tf.Tensor2D, tf.Tensor1D];
  return {
    value: tf.add(y, b), // [N, out]
    gradFunc: (dy: tf.Tensor) => {
      const [n, out] = dy.shape;
      return [dy, tf.reshape(tf.matMul(tf.ones([1, n]) as tf.Tensor2D, dy as tf.Tensor2D), [out])]; // [N, out], [out]
    },
  };
}) as (y: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/** LayerNorm over the last axis (biased variance, like torch). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = NORM_EPS): tf.Tensor {
  if (fusedLib()) return fusedLayerNorm(x, gamma, beta, eps);
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

/** BatchNorm with running statistics (eval mode), NHWC; `relu` applies a ReLU after it. */
export function batchNormEval(x: tf.Tensor4D, w: Weights, prefix: string, relu = false, eps = NORM_EPS): tf.Tensor4D {
  const scale = tf.mul(w(`${prefix}.weight`), tf.rsqrt(tf.add(w(`${prefix}.running_var`), eps))); // [C]
  const shift = tf.sub(w(`${prefix}.bias`), tf.mul(w(`${prefix}.running_mean`), scale)); // [C]
  const y = tf.add(tf.mul(x, scale), shift) as tf.Tensor4D;
  return relu ? tf.relu(y) : y;
}

/** PyTorch's default BatchNorm momentum: running = (1 - m) * running + m * batch statistic. */
export const BN_MOMENTUM = 0.1;

/**
 * BatchNorm in training mode (torch `nn.BatchNorm2d.train()`), NHWC: normalises with the batch's
 * mean and biased variance over (N, H, W), and moves the running statistics `prefix.running_mean`
 * and `prefix.running_var` (tf.Variables, not trainable) towards the batch mean and the
 * unbiased batch variance with momentum 0.1. The statistic update happens once per call.
 *
 * The gradient is written out (tf.customGrad) instead of taped through mean/sub/square/mean:
 * with x̂ = (x - μ)·r, r = 1/sqrt(σ² + eps), g = γ·r and N = B·H·W values per channel,
 *   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = g·(dy - dβ/N - x̂·dγ/N)
 * (Ioffe & Szegedy §3), which is 5 passes over the activation instead of about 15. `relu`
 * applies a ReLU after it. With cliplab's fused C kernels (src/backend/fused_batchnorm.ts) the
 * normalisation, the ReLU and the gradient are one kernel each way.
 */
export function batchNormTrain(x: tf.Tensor4D, w: Weights, prefix: string, relu = false, eps = NORM_EPS): tf.Tensor4D {
  const [batch, height, width] = x.shape;
  const count = batch * height * width;
  if (count < 2) throw new Error(`batchNormTrain: ${prefix} needs more than one value per channel in training mode, got input [${x.shape}]`);
  const runningMean = w(`${prefix}.running_mean`) as tf.Variable;
  const runningVar = w(`${prefix}.running_var`) as tf.Variable;
  if (fusedLib()) {
    const running = { mean: runningMean, variance: runningVar, momentum: BN_MOMENTUM };
    return fusedBatchNormTrain(x, w(`${prefix}.weight`), w(`${prefix}.bias`), eps, relu, running) as tf.Tensor4D;
  }
  const channels = x.shape[3];
  // Per-channel sums over (N, H, W) as ones[1, N·H·W] @ x[N·H·W, C]: one XNNPACK pass, where a
  // tfjs reduction over leading axes first transposes the whole activation on WASM.
  const channelSum = (t: tf.Tensor): tf.Tensor1D =>
    tf.reshape(tf.matMul(tf.ones([1, count]) as tf.Tensor2D, tf.reshape(t, [count, channels]) as tf.Tensor2D), [channels]); // [C]
  const bn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, gamma, beta, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const mean = tf.div(channelSum(xIn), count); // [C]
    const centered = tf.sub(xIn, mean); // [B, H, W, C]
    const variance = tf.div(channelSum(tf.square(centered)), count); // [C], biased
    const rstd = tf.rsqrt(tf.add(variance, eps)); // [C]
    const y = tf.add(tf.mul(centered, tf.mul(gamma, rstd)), beta) as tf.Tensor4D; // [B, H, W, C]
    runningMean.assign(tf.add(tf.mul(runningMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
    runningVar.assign(tf.add(tf.mul(runningVar, 1 - BN_MOMENTUM), tf.mul(variance, (BN_MOMENTUM * count) / (count - 1))));
    save([centered, rstd, gamma]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xc, r, gam] = saved;
        const xhat = tf.mul(xc, r); // [B, H, W, C]
        const dBeta = channelSum(dy); // [C]
        const dGamma = channelSum(tf.mul(dy, xhat)); // [C]
        const inner = tf.sub(tf.sub(dy, tf.div(dBeta, count)), tf.mul(xhat, tf.div(dGamma, count))); // [B, H, W, C]
        return [tf.mul(inner, tf.mul(gam, r)), dGamma, dBeta];
      },
    };
  }) as (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor4D;
  const y = bn(x, w(`${prefix}.weight`), w(`${prefix}.bias`));
  return relu ? tf.relu(y) : y;
}

/**
 * Conv with PyTorch's symmetric zero padding; filter HWIO. The padding is the convolution's own
 * (tfjs' numeric `pad`: the same on every side), not a separate tf.pad, whose copy and gradient
 * slice cost as much as a small convolution.
 */
export function conv2d(x: tf.Tensor4D, filter: tf.Tensor, stride: number, padding: number): tf.Tensor4D {
  return tf.conv2d(x, filter as tf.Tensor4D, stride, padding > 0 ? padding : "valid");
}
