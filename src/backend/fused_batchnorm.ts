/**
 * BatchNorm in training mode (Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167), NHWC,
 * optionally fused with the ReLU that follows it in a ResNet, on cliplab's C library: one kernel
 * for the batch statistics and the normalisation (cl_bn_train_fwd), one for dx, dgamma and dbeta
 * (cl_bn_train_bwd), instead of ~12 tfjs kernels and 2 ones-matmuls each way. The running
 * statistics are the caller's (src/model/layers.ts), from the batch mean and biased variance
 * returned here.
 *
 * Also the gradient of a 'valid' average pool (AvgPoolGrad, the ResNet-D downsampling of
 * ModifiedResNet), whose wasm kernel is a generic loop: replaced while the library is active,
 * other paddings go to the wasm kernel.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { addFusedKernels, fusedLib, recordingGradients } from "./fused";
import type { FusedLib } from "./fused_lib";
import { KernelArgs, f32, sizeOf } from "./kernel_util";

export const BATCH_NORM_TRAIN = "CliplabBatchNormTrain";
export const BATCH_NORM_TRAIN_GRAD = "CliplabBatchNormTrainGrad";

function channelsOf(x: tf.TensorInfo, gamma: tf.TensorInfo): { rows: number; c: number } {
  const c = x.shape[x.shape.length - 1];
  if (x.dtype !== "float32" || x.shape.length < 2) throw new Error(`${BATCH_NORM_TRAIN}: x must be float32 [..., C], got ${x.dtype} [${x.shape}]`);
  if (gamma.shape.length !== 1 || gamma.shape[0] !== c) throw new Error(`${BATCH_NORM_TRAIN}: gamma and beta must be [${c}], got [${gamma.shape}]`);
  return { rows: c === 0 ? 0 : sizeOf(x.shape) / c, c };
}

addFusedKernels((lib: FusedLib, previous) => {
  const wasmAvgPoolGrad = previous(tf.AvgPoolGrad);
  return [
    {
      kernelName: BATCH_NORM_TRAIN,
      backendName: "wasm",
      kernelFunc: ({ inputs, attrs, backend }: KernelArgs) => {
        const b = backend as BackendWasm;
        const { x, gamma, beta } = inputs as Record<string, tf.TensorInfo>;
        const { eps, relu } = attrs as unknown as { eps: number; relu: boolean };
        const { rows, c } = channelsOf(x, gamma);
        if (rows < 2) throw new Error(`${BATCH_NORM_TRAIN}: needs more than one value per channel, got x [${x.shape}]`);
        const y = b.makeOutput(x.shape.slice(), "float32");
        const mean = b.makeOutput([c], "float32");
        const variance = b.makeOutput([c], "float32");
        const rstd = b.makeOutput([c], "float32");
        lib.bnTrainFwd(f32(b, x), rows, c, f32(b, gamma), f32(b, beta), eps, relu ? 1 : 0, f32(b, y), f32(b, mean), f32(b, variance), f32(b, rstd));
        return [y, mean, variance, rstd];
      },
    },
    {
      kernelName: BATCH_NORM_TRAIN_GRAD,
      backendName: "wasm",
      kernelFunc: ({ inputs, attrs, backend }: KernelArgs) => {
        const b = backend as BackendWasm;
        const { dy, x, y, mean, rstd, gamma } = inputs as Record<string, tf.TensorInfo>;
        const { relu } = attrs as unknown as { relu: boolean };
        const { rows, c } = channelsOf(x, gamma);
        const dx = b.makeOutput(x.shape.slice(), "float32");
        const dgamma = b.makeOutput([c], "float32");
        const dbeta = b.makeOutput([c], "float32");
        lib.bnTrainBwd(f32(b, dy), f32(b, x), relu ? f32(b, y) : null, f32(b, mean), f32(b, rstd), f32(b, gamma), rows, c, relu ? 1 : 0, f32(b, dx), f32(b, dgamma), f32(b, dbeta));
        return [dx, dgamma, dbeta];
      },
    },
    {
      kernelName: tf.AvgPoolGrad,
      backendName: "wasm",
      kernelFunc: (args: KernelArgs) => {
        const { inputs, attrs, backend } = args;
        const b = backend as BackendWasm;
        const dy = inputs.dy as tf.TensorInfo;
        const x = inputs.input as tf.TensorInfo;
        const { filterSize, strides, pad } = attrs as unknown as tf.AvgPoolGradAttrs;
        const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad);
        const valid = info.padInfo.top === 0 && info.padInfo.left === 0 && info.padInfo.bottom === 0 && info.padInfo.right === 0;
        if (!valid || dy.dtype !== "float32" || x.shape.length !== 4) {
          if (wasmAvgPoolGrad) return wasmAvgPoolGrad(args);
          throw new Error(`AvgPoolGrad: only 'valid' float32 NHWC pooling here, got pad ${JSON.stringify(pad)}`);
        }
        const dx = b.makeOutput(x.shape.slice(), "float32");
        if (sizeOf(x.shape) === 0) return dx;
        const [n, h, w, c] = x.shape;
        lib.avgPoolGrad(f32(b, dy), n, h, w, c, info.outHeight, info.outWidth, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, f32(b, dx));
        return dx;
      },
    },
  ];
});

/** Running statistics to move towards the batch's (torch: running = (1 - m) running + m batch). */
export interface RunningStats {
  mean: tf.Variable;
  variance: tf.Variable;
  /** m (torch's default 0.1). The variance moves towards the unbiased batch variance. */
  momentum: number;
}

/**
 * relu?((x - mean) / sqrt(var + eps) * gamma + beta) with the batch's statistics over every axis
 * but the last; gamma, beta [C]. `running`, when given, moves once per call. Needs `fusedLib()`.
 */
export function fusedBatchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number, relu: boolean, running?: RunningStats): tf.Tensor {
  if (!fusedLib()) throw new Error("fusedBatchNormTrain: the fused kernels are not active (check fusedLib() first)");
  const attrs = { eps, relu } as never;
  const count = x.size / (x.shape[x.shape.length - 1] || 1);
  const moveRunning = (mean: tf.Tensor, variance: tf.Tensor) => {
    if (!running) return;
    const m = running.momentum;
    running.mean.assign(tf.add(tf.mul(running.mean, 1 - m), tf.mul(mean, m)));
    running.variance.assign(tf.add(tf.mul(running.variance, 1 - m), tf.mul(variance, (m * count) / (count - 1))));
  };
  if (!recordingGradients()) {
    return tf.tidy(() => {
      const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN, { x, gamma, beta }, attrs) as tf.Tensor[];
      moveRunning(mean, variance);
      return y;
    });
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, bt, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [y, mean, variance, rstd] = tf.engine().runKernel(BATCH_NORM_TRAIN, { x: xi, gamma: g, beta: bt }, attrs) as tf.Tensor[];
    moveRunning(mean, variance);
    save([xi, y, mean, rstd, g]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sy, sm, sr, sg] = saved;
        return tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, { dy, x: sx, y: sy, mean: sm, rstd: sr, gamma: sg }, { relu } as never) as tf.Tensor[]; // dx, dgamma, dbeta
      },
    };
  }) as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  return op(x, gamma, beta);
}
