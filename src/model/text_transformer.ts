/**
 * CLIP's text encoder (https://arxiv.org/abs/2103.00020, §2.4): token + position embeddings, a
 * causal transformer, ln_final, the features at the first end-of-text token (the first argmax
 * of the ids, since EOT has the largest id), projected `@ text_projection`.
 */
import * as tf from "@tensorflow/tfjs";
import { ClipConfig } from "./config";
import { Activation, Weights, layerNorm } from "./layers";
import { causalMask, transformer } from "./attention";
import { matMul2d } from "./matmul";

/** `eotPositions[b]` is where row b is pooled (see `argmaxRows` in src/util/argmax.ts). */
export function encodeTextTransformer(
  tokens: tf.Tensor2D,
  eotPositions: Int32Array,
  w: Weights,
  cfg: ClipConfig,
  act: Activation,
  mask: tf.Tensor2D,
): tf.Tensor2D {
  const t = cfg.text_cfg;
  const [batch, length] = tokens.shape;
  const ids = tokens.dtype === "int32" ? tokens : tf.cast(tokens, "int32");
  const embedded = tf.gather(w("token_embedding.weight"), tf.reshape(ids, [-1])); // [B*T, D]
  return encodeTextFromEmbeddings(tf.reshape(embedded, [batch, length, t.width]), eotPositions, w, cfg, act, mask);
}

/**
 * The text encoder from token embeddings [B, T, D] instead of ids (prompt tuning, CoOp:
 * https://arxiv.org/abs/2109.01134): adds position embeddings, runs the causal transformer,
 * ln_final, pools row b at `eotPositions[b]` and projects. Differentiable in `embeddings`.
 */
export function encodeTextFromEmbeddings(
  embeddings: tf.Tensor3D,
  eotPositions: Int32Array,
  w: Weights,
  cfg: ClipConfig,
  act: Activation,
  mask: tf.Tensor2D,
): tf.Tensor2D {
  const t = cfg.text_cfg;
  const [batch, length] = embeddings.shape;
  // Shorter inputs than the context are fine: under the causal mask, padding never changes
  // the earlier positions, so this equals running the zero-padded sequence.
  const positions = length === t.context_length ? w("positional_embedding") : tf.slice(w("positional_embedding"), [0, 0], [length, t.width]);
  let x = tf.add(embeddings, positions) as tf.Tensor3D; // [B, T, D]
  x = transformer(x, w, "transformer", t.layers, t.heads, act, mask);
  const normed = layerNorm(x, w("ln_final.weight"), w("ln_final.bias")); // [B, T, D]
  const rowIndex = Int32Array.from(eotPositions, (pos, b) => b * length + pos);
  const pooled = tf.gather(tf.reshape(normed, [batch * length, t.width]), tf.tensor1d(rowIndex, "int32")); // [B, D]
  return matMul2d(pooled as tf.Tensor2D, w("text_projection") as tf.Tensor2D); // [B, embed]
}
