/**
 * ViT image encoder (Dosovitskiy et al. 2020, https://arxiv.org/abs/2010.11929) as in OpenAI's
 * `VisionTransformer`: patch embedding, class token, ln_pre, transformer, ln_post on the class
 * token, projection `@ visual.proj`.
 */
import * as tf from "@tensorflow/tfjs";
import { ClipConfig, visionHeads } from "./config";
import { Activation, Weights, layerNorm } from "./layers";
import { transformer } from "./attention";
import { matMul2d } from "./matmul";

/**
 * Non-overlapping patches as rows: [B, H, W, C] -> [B * g * g, P * P * C], each row ordered
 * (row, column, channel) so that it matches an HWIO conv filter reshaped to [P*P*C, width].
 * The patch conv becomes one matmul, which is fast on every backend and needs no conv gradient.
 */
export function patchify(images: tf.Tensor4D, patch: number): tf.Tensor2D {
  const [batch, height, width, channels] = images.shape;
  const gh = height / patch;
  const gw = width / patch;
  const rows = tf.reshape(images, [batch * gh, patch, gw, patch * channels]); // [B*gh, P, gw, P*C]
  const grouped = tf.transpose(rows, [0, 2, 1, 3]); // [B*gh, gw, P, P*C]
  return tf.reshape(grouped, [batch * gh * gw, patch * patch * channels]);
}

export function encodeImageViT(images: tf.Tensor4D, w: Weights, cfg: ClipConfig, act: Activation): tf.Tensor2D {
  const v = cfg.vision_cfg;
  const patch = v.patch_size as number;
  const batch = images.shape[0];
  const grid = v.image_size / patch;
  // The embedding in its own tidy: its intermediates are freed before the first block runs.
  let x = tf.tidy(() => {
    const filter = w("visual.conv1.weight"); // [P, P, 3, width] (HWIO)
    const patches = patchify(images, patch); // [B*g*g, P*P*3]
    const embedded = matMul2d(patches, tf.reshape(filter, [patch * patch * 3, v.width]) as tf.Tensor2D); // [B*g*g, width]
    const tokens = tf.reshape(embedded, [batch, grid * grid, v.width]); // [B, g*g, width]
    const cls = tf.broadcastTo(tf.reshape(w("visual.class_embedding"), [1, 1, v.width]), [batch, 1, v.width]); // [B, 1, width]
    const joined = tf.add(tf.concat([cls, tokens], 1), w("visual.positional_embedding")); // [B, g*g+1, width]
    return layerNorm(joined, w("visual.ln_pre.weight"), w("visual.ln_pre.bias")) as tf.Tensor3D;
  });
  x = transformer(x, w, "visual.transformer", v.layers as number, visionHeads(cfg), act);
  const clsOut = tf.reshape(tf.slice(x, [0, 0, 0], [batch, 1, v.width]), [batch, v.width]); // [B, width]
  const pooled = layerNorm(clsOut, w("visual.ln_post.weight"), w("visual.ln_post.bias")); // [B, width]
  return matMul2d(pooled as tf.Tensor2D, w("visual.proj") as tf.Tensor2D); // [B, embed]
}
