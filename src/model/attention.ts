/**
 * Multi-head attention and the residual attention block of CLIP's transformers
 * (Vaswani et al. 2017, https://arxiv.org/abs/1706.03762; pre-LN blocks as in OpenAI's
 * `ResidualAttentionBlock`, https://github.com/openai/CLIP/blob/main/clip/model.py).
 */
import * as tf from "@tensorflow/tfjs";
import { Activation, Weights, layerNorm, linear, linearActivation } from "./layers";
import { fusedLib } from "../backend/fused";
import { fusedAttention } from "../backend/fused_attention";
import { checkpointed, gradCheckpointingActive } from "./grad_checkpoint";

/** [B, T, D] -> [B, H, T, D/H] */
function splitHeads(x: tf.Tensor, batch: number, tokens: number, heads: number): tf.Tensor4D {
  const headDim = x.shape[x.shape.length - 1] / heads;
  return tf.transpose(tf.reshape(x, [batch, tokens, heads, headDim]), [0, 2, 1, 3]);
}

/** [B, H, T, hd] -> [B, T, H * hd] */
function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [batch, heads, tokens, headDim] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [batch, tokens, heads * headDim]);
}

/**
 * Scaled dot-product attention over already projected q [B,Tq,D], k and v [B,Tk,D].
 * q is scaled before the product, as torch's multi_head_attention_forward does.
 */
export function attend(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, mask?: tf.Tensor): tf.Tensor3D {
  const [batch, tq] = q.shape;
  const tk = k.shape[1];
  const headDim = q.shape[2] / heads;
  const qh = tf.mul(splitHeads(q, batch, tq, heads), headDim ** -0.5); // [B, H, Tq, hd]
  const kh = splitHeads(k, batch, tk, heads); // [B, H, Tk, hd]
  const vh = splitHeads(v, batch, tk, heads); // [B, H, Tk, hd]
  let scores = tf.matMul(qh, kh, false, true); // [B, H, Tq, Tk]
  if (mask) scores = tf.add(scores, mask); // mask [Tq, Tk] of 0 / -inf
  const probs = tf.softmax(scores); // [B, H, Tq, Tk]
  return mergeHeads(tf.matMul(probs, vh) as tf.Tensor4D); // [B, Tq, D]
}

/** torch.nn.MultiheadAttention self-attention with the fused q,k,v input projection. */
export function selfAttention(x: tf.Tensor3D, w: Weights, prefix: string, heads: number, mask?: tf.Tensor): tf.Tensor3D {
  const [batch, tokens, width] = x.shape;
  const qkv = linear(x, w(`${prefix}.in_proj_weight`), w(`${prefix}.in_proj_bias`)) as tf.Tensor3D; // [B, T, 3D]
  let out: tf.Tensor3D;
  if (fusedLib()) {
    // One kernel straight from the packed projection: no split, no head transposes.
    out = fusedAttention(qkv, heads, mask as tf.Tensor2D | undefined); // [B, T, D]
  } else {
    const [q, k, v] = tf.split(qkv, 3, 2) as tf.Tensor3D[]; // 3 x [B, T, D]
    out = attend(q, k, v, heads, mask); // [B, T, D]
  }
  return tf.reshape(linear(out, w(`${prefix}.out_proj.weight`), w(`${prefix}.out_proj.bias`)), [batch, tokens, width]);
}

/** x + attn(ln_1(x)), then x + mlp(ln_2(x)). */
export function residualAttentionBlock(
  x: tf.Tensor3D,
  w: Weights,
  prefix: string,
  heads: number,
  act: Activation,
  mask?: tf.Tensor,
): tf.Tensor3D {
  const attnIn = layerNorm(x, w(`${prefix}.ln_1.weight`), w(`${prefix}.ln_1.bias`)) as tf.Tensor3D;
  const h = tf.add(x, selfAttention(attnIn, w, `${prefix}.attn`, heads, mask)) as tf.Tensor3D; // [B, T, D]
  const mlpIn = layerNorm(h, w(`${prefix}.ln_2.weight`), w(`${prefix}.ln_2.bias`));
  const hidden = linearActivation(mlpIn, w(`${prefix}.mlp.c_fc.weight`), w(`${prefix}.mlp.c_fc.bias`), act); // [B, T, 4D]
  return tf.add(h, linear(hidden, w(`${prefix}.mlp.c_proj.weight`), w(`${prefix}.mlp.c_proj.bias`))) as tf.Tensor3D;
}

/** The weights `residualAttentionBlock` reads under `prefix`. */
export function blockWeightNames(prefix: string): string[] {
  const parts = ["attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias", "ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"];
  return parts.map((p) => `${prefix}.${p}`);
}

/** OpenAI's `Transformer`: `layers` residual attention blocks under `prefix.resblocks.{i}`. */
export function transformer(
  x: tf.Tensor3D,
  w: Weights,
  prefix: string,
  layers: number,
  heads: number,
  act: Activation,
  mask?: tf.Tensor,
): tf.Tensor3D {
  let h = x;
  // A tidy per block frees its intermediates as soon as the block is done; without a gradient
  // tape the block's input (the previous block's output, ours to free; never the caller's x) goes
  // too, so inference peaks at one block's activations whatever the depth. Under a tape the
  // tensors the backward pass needs are kept.
  const freeInputs = !tf.engine().isTapeOn();
  for (let i = 0; i < layers; i++) {
    const input = h;
    const block = `${prefix}.resblocks.${i}`;
    const run = (xb: tf.Tensor3D, wb: Weights) => residualAttentionBlock(xb, wb, block, heads, act, mask);
    // Gradient checkpointing (src/model/grad_checkpoint.ts): the block is recomputed in the backward pass.
    h = gradCheckpointingActive() ? checkpointed(input, w, blockWeightNames(block), run) : tf.tidy(() => run(input, w));
    if (freeInputs && i > 0) input.dispose();
  }
  return h;
}

/** Additive causal mask [T, T]: 0 on and below the diagonal, -inf above. */
export function causalMask(tokens: number): tf.Tensor2D {
  const data = new Float32Array(tokens * tokens);
  for (let i = 0; i < tokens; i++) for (let j = i + 1; j < tokens; j++) data[i * tokens + j] = -Infinity;
  return tf.tensor2d(data, [tokens, tokens]);
}
