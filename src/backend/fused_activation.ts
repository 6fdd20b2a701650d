/**
 * Fused bias + activation, act(y + b) over the last axis, for the MLP of CLIP's transformer
 * blocks: QuickGELU x*sigmoid(1.702x) (OpenAI's CLIP, https://github.com/openai/CLIP) or exact
 * GELU 0.5x(1 + erf(x/sqrt 2)) (Hendrycks & Gimpel 2016, https://arxiv.org/abs/1606.08415).
 * One C pass (cl_act_fwd) instead of tfjs' add + mul + sigmoid + mul (or erf and four more);
 * the backward pass (cl_act_bwd) gives dy * act'(y + b) and the bias gradient in one more.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { addFusedKernels, fusedLib, recordingGradients } from "./fused";
import { ACTIVATION_KIND, type FusedLib } from "./fused_lib";
import { KernelArgs, f32, sizeOf } from "./kernel_util";

export const BIAS_ACTIVATION = "CliplabBiasActivation";
export const BIAS_ACTIVATION_GRAD = "CliplabBiasActivationGrad";

export type FusedActivation = keyof typeof ACTIVATION_KIND;

function columns(x: tf.TensorInfo, bias: tf.TensorInfo | undefined): { rows: number; cols: number } {
  const cols = x.shape[x.shape.length - 1] ?? 1;
  if (x.dtype !== "float32") throw new Error(`${BIAS_ACTIVATION}: x must be float32, got ${x.dtype}`);
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== cols)) throw new Error(`${BIAS_ACTIVATION}: bias must be [${cols}], got [${bias.shape}]`);
  return { rows: cols === 0 ? 0 : sizeOf(x.shape) / cols, cols };
}

function kindOf(name: unknown): number {
  const k = ACTIVATION_KIND[name as FusedActivation];
  if (k === undefined) throw new Error(`${BIAS_ACTIVATION}: activation ${JSON.stringify(name)} is not one of ${Object.keys(ACTIVATION_KIND).join(", ")}`);
  return k;
}

addFusedKernels((lib: FusedLib) => [
  {
    kernelName: BIAS_ACTIVATION,
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs, backend }: KernelArgs) => {
      const b = backend as BackendWasm;
      const x = inputs.x as tf.TensorInfo;
      const bias = inputs.bias as tf.TensorInfo | undefined;
      const kind = kindOf((attrs as { activation?: unknown }).activation);
      const { rows, cols } = columns(x, bias);
      const y = b.makeOutput(x.shape.slice(), "float32");
      if (rows * cols > 0) lib.actFwd(f32(b, x), bias ? f32(b, bias) : null, rows, cols, kind, f32(b, y));
      return y;
    },
  },
  {
    kernelName: BIAS_ACTIVATION_GRAD,
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs, backend }: KernelArgs) => {
      const b = backend as BackendWasm;
      const x = inputs.x as tf.TensorInfo;
      const bias = inputs.bias as tf.TensorInfo | undefined;
      const dy = inputs.dy as tf.TensorInfo;
      const kind = kindOf((attrs as { activation?: unknown }).activation);
      const { rows, cols } = columns(x, bias);
      const dx = b.makeOutput(x.shape.slice(), "float32");
      const db = bias ? b.makeOutput([cols], "float32") : undefined;
      if (rows * cols > 0) lib.actBwd(f32(b, x), bias ? f32(b, bias) : null, f32(b, dy), rows, cols, kind, f32(b, dx), db ? f32(b, db) : null);
      else if (db && cols > 0) f32(b, db).fill(0);
      return db ? [dx, db] : dx;
    },
  },
]);

/** act(y + bias) over the last axis (bias [C] optional). Needs `fusedLib()`. */
export function fusedBiasActivation(y: tf.Tensor, bias: tf.Tensor | undefined, activation: FusedActivation): tf.Tensor {
  if (!fusedLib()) throw new Error("fusedBiasActivation: the fused kernels are not active (check fusedLib() first)");
  kindOf(activation);
  const attrs = { activation } as never;
  if (!recordingGradients()) return tf.engine().runKernel(BIAS_ACTIVATION, bias ? { x: y, bias } : { x: y }, attrs) as tf.Tensor;
  if (bias) {
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [x, bb, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      save([x, bb]);
      return {
        value: tf.engine().runKernel(BIAS_ACTIVATION, { x, bias: bb }, attrs) as tf.Tensor,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(BIAS_ACTIVATION_GRAD, { x: saved[0], bias: saved[1], dy }, attrs) as tf.Tensor[], // dx, dbias
      };
    }) as (x: tf.Tensor, b: tf.Tensor) => tf.Tensor;
    return op(y, bias);
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([x]);
    return {
      value: tf.engine().runKernel(BIAS_ACTIVATION, { x }, attrs) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.engine().runKernel(BIAS_ACTIVATION_GRAD, { x: saved[0], dy }, attrs) as tf.Tensor],
    };
  }) as (x: tf.Tensor) => tf.Tensor;
  return op(y);
}
