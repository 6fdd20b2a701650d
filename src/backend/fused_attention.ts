/**
 * Fused multi-head self-attention (Vaswani et al. 2017, https://arxiv.org/abs/1706.03762) from
 * the packed q,k,v projection: qkv [B, T, 3D] -> [B, T, D], as torch's
 * `multi_head_attention_forward` computes it (q scaled by 1/sqrt(D/H), additive mask, softmax,
 * heads concatenated), in one C kernel per call (cl_attention_fwd: per batch and head two GEMMs
 * on strided views, no head split/merge copies). Under a gradient scope the softmax is kept
 * ([B, H, T, T]) and the backward pass (cl_attention_bwd) gives d(qkv) in the packed layout.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { addFusedKernels, fusedLib, recordingGradients } from "./fused";
import type { FusedLib } from "./fused_lib";
import { KernelArgs, f32, sizeOf } from "./kernel_util";

export const ATTENTION = "CliplabAttention";
export const ATTENTION_GRAD = "CliplabAttentionGrad";

interface AttentionAttrs {
  heads: number;
  scale: number;
  saveProbs: boolean;
}

function geometry(qkv: tf.TensorInfo, heads: number): { B: number; T: number; D: number } {
  const [B, T, D3] = qkv.shape;
  if (qkv.shape.length !== 3 || D3 % 3 !== 0) throw new Error(`${ATTENTION}: qkv must be [B, T, 3D], got [${qkv.shape}]`);
  const D = D3 / 3;
  if (!Number.isInteger(heads) || heads < 1 || D % heads !== 0) throw new Error(`${ATTENTION}: heads must divide the width ${D}, got ${heads}`);
  return { B, T, D };
}

addFusedKernels((lib: FusedLib) => [
  {
    kernelName: ATTENTION,
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs, backend }: KernelArgs) => {
      const b = backend as BackendWasm;
      const qkv = inputs.qkv as tf.TensorInfo;
      const mask = inputs.mask as tf.TensorInfo | undefined;
      const { heads, scale, saveProbs } = attrs as unknown as AttentionAttrs;
      const { B, T, D } = geometry(qkv, heads);
      if (qkv.dtype !== "float32") throw new Error(`${ATTENTION}: qkv must be float32, got ${qkv.dtype}`);
      if (mask && (mask.dtype !== "float32" || mask.shape.length !== 2 || mask.shape[0] !== T || mask.shape[1] !== T)) {
        throw new Error(`${ATTENTION}: mask must be float32 [${T}, ${T}], got ${mask.dtype} [${mask.shape}]`);
      }
      const out = b.makeOutput([B, T, D], "float32");
      const probs = saveProbs ? b.makeOutput([B, heads, T, T], "float32") : undefined;
      if (sizeOf(out.shape) > 0) {
        lib.attentionFwd(f32(b, qkv), B, T, D, heads, mask ? f32(b, mask) : null, scale, f32(b, out), probs ? f32(b, probs) : null);
      }
      return probs ? [out, probs] : out;
    },
  },
  {
    kernelName: ATTENTION_GRAD,
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs, backend }: KernelArgs) => {
      const b = backend as BackendWasm;
      const qkv = inputs.qkv as tf.TensorInfo;
      const probs = inputs.probs as tf.TensorInfo;
      const dy = inputs.dy as tf.TensorInfo;
      const { heads, scale } = attrs as unknown as AttentionAttrs;
      const { B, T, D } = geometry(qkv, heads);
      const dqkv = b.makeOutput([B, T, 3 * D], "float32");
      if (sizeOf(dqkv.shape) > 0) lib.attentionBwd(f32(b, qkv), f32(b, probs), f32(b, dy), B, T, D, heads, scale, f32(b, dqkv));
      return dqkv;
    },
  },
]);

/**
 * softmax(q_h k_h^T / sqrt(D/H) + mask) v_h for every head h, concatenated: qkv [B, T, 3D]
 * (q | k | v on the last axis), mask [T, T] of 0 / -inf (not differentiated). Needs `fusedLib()`.
 */
export function fusedAttention(qkv: tf.Tensor3D, heads: number, mask?: tf.Tensor2D): tf.Tensor3D {
  if (!fusedLib()) throw new Error("fusedAttention: the fused kernels are not active (check fusedLib() first)");
  const scale = (qkv.shape[2] / 3 / heads) ** -0.5;
  const inputs = (x: tf.Tensor): tf.NamedTensorMap => (mask ? { qkv: x, mask } : { qkv: x });
  if (!recordingGradients()) {
    return tf.engine().runKernel(ATTENTION, inputs(qkv), { heads, scale, saveProbs: false } as never) as tf.Tensor3D; // [B, T, D]
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor3D, tf.GradSaveFunc];
    const [out, probs] = tf.engine().runKernel(ATTENTION, inputs(x), { heads, scale, saveProbs: true } as never) as tf.Tensor[]; // [B, T, D], [B, H, T, T]
    save([x, probs]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.engine().runKernel(ATTENTION_GRAD, { qkv: saved[0], probs: saved[1], dy }, { heads, scale } as never) as tf.Tensor, // [B, T, 3D]
      ],
    };
  }) as (x: tf.Tensor3D) => tf.Tensor3D;
  return op(qkv);
}
