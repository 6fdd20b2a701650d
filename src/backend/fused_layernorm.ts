/**
 * Fused LayerNorm over the last axis (Ba et al. 2016, https://arxiv.org/abs/1607.06450), like
 * torch.nn.LayerNorm: biased variance, eps inside the square root. One pass of the C library per
 * call (cl_layernorm_fwd) instead of tfjs' mean/sub/square/mean/add/rsqrt/mul/mul/add; under a
 * gradient scope the per-row mean and 1/std are kept for cl_layernorm_bwd (dx, dgamma, dbeta).
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { addFusedKernels, fusedLib, recordingGradients } from "./fused";
import type { FusedLib } from "./fused_lib";
import { KernelArgs, f32, sizeOf } from "./kernel_util";

export const LAYER_NORM = "CliplabLayerNorm";
export const LAYER_NORM_GRAD = "CliplabLayerNormGrad";

function rowsOf(x: tf.TensorInfo, gamma: tf.TensorInfo, beta: tf.TensorInfo): { rows: number; d: number } {
  const d = x.shape[x.shape.length - 1];
  if (x.shape.length < 1 || x.dtype !== "float32") throw new Error(`${LAYER_NORM}: x must be float32 of rank >= 1, got ${x.dtype} [${x.shape}]`);
  if (gamma.shape.length !== 1 || gamma.shape[0] !== d || beta.shape.length !== 1 || beta.shape[0] !== d) {
    throw new Error(`${LAYER_NORM}: gamma and beta must be [${d}], got [${gamma.shape}] and [${beta.shape}]`);
  }
  return { rows: d === 0 ? 0 : sizeOf(x.shape) / d, d };
}

addFusedKernels((lib: FusedLib) => [
  {
    kernelName: LAYER_NORM,
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs, backend }: KernelArgs) => {
      const b = backend as BackendWasm;
      const x = inputs.x as tf.TensorInfo;
      const gamma = inputs.gamma as tf.TensorInfo;
      const beta = inputs.beta as tf.TensorInfo;
      const { eps, save } = attrs as unknown as { eps: number; save: boolean };
      const { rows, d } = rowsOf(x, gamma, beta);
      const y = b.makeOutput(x.shape.slice(), "float32");
      const mean = save ? b.makeOutput([rows], "float32") : undefined;
      const rstd = save ? b.makeOutput([rows], "float32") : undefined;
      if (rows * d > 0) {
        lib.layerNormFwd(f32(b, x), f32(b, gamma), f32(b, beta), rows, d, eps, f32(b, y), mean ? f32(b, mean) : null, rstd ? f32(b, rstd) : null);
      }
      return save ? [y, mean as tf.TensorInfo, rstd as tf.TensorInfo] : y;
    },
  },
  {
    kernelName: LAYER_NORM_GRAD,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend }: KernelArgs) => {
      const b = backend as BackendWasm;
      const { dy, x, mean, rstd, gamma } = inputs as Record<string, tf.TensorInfo>;
      const { rows, d } = rowsOf(x, gamma, gamma);
      const dx = b.makeOutput(x.shape.slice(), "float32");
      const dgamma = b.makeOutput([d], "float32");
      const dbeta = b.makeOutput([d], "float32");
      if (rows * d > 0) {
        lib.layerNormBwd(f32(b, dy), f32(b, x), f32(b, mean), f32(b, rstd), f32(b, gamma), rows, d, f32(b, dx), f32(b, dgamma), f32(b, dbeta));
      } else if (d > 0) {
        f32(b, dgamma).fill(0);
        f32(b, dbeta).fill(0);
      }
      return [dx, dgamma, dbeta];
    },
  },
]);

/** (x - mean) / sqrt(var + eps) * gamma + beta over the last axis; gamma, beta [D]. Needs `fusedLib()`. */
export function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  if (!fusedLib()) throw new Error("fusedLayerNorm: the fused kernels are not active (check fusedLib() first)");
  if (!recordingGradients()) return tf.engine().runKernel(LAYER_NORM, { x, gamma, beta }, { eps, save: false } as never) as tf.Tensor;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, bt, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [y, mean, rstd] = tf.engine().runKernel(LAYER_NORM, { x: xi, gamma: g, beta: bt }, { eps, save: true } as never) as tf.Tensor[]; // [..., D], [R], [R]
    save([xi, mean, rstd, g]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sm, sr, sg] = saved;
        return tf.engine().runKernel(LAYER_NORM_GRAD, { dy, x: sx, mean: sm, rstd: sr, gamma: sg }, {}) as tf.Tensor[]; // dx, dgamma, dbeta
      },
    };
  }) as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  return op(x, gamma, beta);
}
