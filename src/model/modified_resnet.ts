/**
 * OpenAI's ModifiedResNet image encoder (CLIP paper, https://arxiv.org/abs/2103.00020, §2.4):
 * a 3-conv stem with an average pool, anti-aliased strided bottlenecks (avgpool before the
 * stride-1 conv, "ResNet-D"-style, https://arxiv.org/abs/1812.01187), and an attention pool
 * in place of global average pooling. BatchNorm (https://arxiv.org/abs/1502.03167) uses the
 * running statistics in inference, the batch's in training (which also updates the running ones).
 */
import * as tf from "@tensorflow/tfjs";
import { ClipConfig, visionHeads } from "./config";
import { Weights, batchNormEval, batchNormTrain, conv2d, linear } from "./layers";
import { attend } from "./attention";
import { resnetPlan } from "./params";

/** BatchNorm (eval or train mode), then a ReLU when `relu` (fused in training with the C kernels). */
type Norm = (x: tf.Tensor4D, w: Weights, prefix: string, relu?: boolean) => tf.Tensor4D;

function convBnRelu(x: tf.Tensor4D, w: Weights, norm: Norm, conv: string, bn: string, padding: number): tf.Tensor4D {
  return norm(conv2d(x, w(`${conv}.weight`), 1, padding), w, bn, true);
}

function avgPool(x: tf.Tensor4D, size: number): tf.Tensor4D {
  return size > 1 ? tf.avgPool(x, size, size, "valid") : x;
}

/** One bottleneck: 1x1 -> 3x3 -> avgpool(stride) -> 1x1 (x4), plus the (pooled) shortcut. */
function bottleneck(x: tf.Tensor4D, w: Weights, norm: Norm, prefix: string, stride: number, downsample: boolean): tf.Tensor4D {
  let out = convBnRelu(x, w, norm, `${prefix}.conv1`, `${prefix}.bn1`, 0); // [B, H, W, planes]
  out = convBnRelu(out, w, norm, `${prefix}.conv2`, `${prefix}.bn2`, 1);
  out = avgPool(out, stride); // [B, H/s, W/s, planes]
  out = norm(conv2d(out, w(`${prefix}.conv3.weight`), 1, 0), w, `${prefix}.bn3`); // [B, H/s, W/s, 4 planes]
  let identity = x;
  if (downsample) {
    identity = avgPool(x, stride);
    identity = norm(conv2d(identity, w(`${prefix}.downsample.0.weight`), 1, 0), w, `${prefix}.downsample.1`);
  }
  return tf.relu(tf.add(out, identity)) as tf.Tensor4D;
}

/**
 * Attention pooling: the mean token attends over all spatial tokens (plus itself), with
 * learned positions; only that one query is computed.
 */
function attentionPool(x: tf.Tensor4D, w: Weights, heads: number): tf.Tensor2D {
  const [batch, height, width, channels] = x.shape;
  const flat = tf.reshape(x, [batch, height * width, channels]); // [B, HW, C]
  const tokens = tf.add(tf.concat([tf.mean(flat, 1, true), flat], 1), w("visual.attnpool.positional_embedding")); // [B, HW+1, C]
  const query = tf.slice(tokens, [0, 0, 0], [batch, 1, channels]); // [B, 1, C]
  const q = linear(query as tf.Tensor3D, w("visual.attnpool.q_proj.weight"), w("visual.attnpool.q_proj.bias")); // [B, 1, C]
  const k = linear(tokens as tf.Tensor3D, w("visual.attnpool.k_proj.weight"), w("visual.attnpool.k_proj.bias")); // [B, HW+1, C]
  const v = linear(tokens, w("visual.attnpool.v_proj.weight"), w("visual.attnpool.v_proj.bias")); // [B, HW+1, C]
  const pooled = tf.reshape(attend(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, heads), [batch, channels]); // [B, C]
  return linear(pooled, w("visual.attnpool.c_proj.weight"), w("visual.attnpool.c_proj.bias")) as tf.Tensor2D; // [B, embed]
}

/**
 * `training`: BatchNorm normalises with batch statistics and updates the running statistics
 * (torch's `model.train()`); otherwise it uses the running statistics (`model.eval()`).
 */
export function encodeImageResNet(images: tf.Tensor4D, w: Weights, cfg: ClipConfig, training = false, frozenBatchNorm?: ReadonlySet<string>): tf.Tensor2D {
  // `frozenBatchNorm`: layers kept in inference mode while training (a locked tower's, src/train/lock.ts).
  const norm: Norm = !training
    ? batchNormEval
    : frozenBatchNorm?.size
      ? (...args: Parameters<Norm>) => (frozenBatchNorm.has(args[2]) ? batchNormEval : batchNormTrain)(...args)
      : batchNormTrain;
  // The stem in its own tidy, then one per block; without a gradient tape each block's input
  // (ours: the stem's or the previous block's output) is freed as soon as the block is done, so
  // inference peaks at one block's working set. Under a tape the saved tensors are kept.
  let x = tf.tidy(() => {
    let s = norm(conv2d(images, w("visual.conv1.weight"), 2, 1), w, "visual.bn1", true); // [B, H/2, W/2, w/2]
    s = convBnRelu(s, w, norm, "visual.conv2", "visual.bn2", 1);
    s = convBnRelu(s, w, norm, "visual.conv3", "visual.bn3", 1); // [B, H/2, W/2, width]
    return avgPool(s, 2); // [B, H/4, W/4, width]
  });
  const freeInputs = !tf.engine().isTapeOn();
  for (const block of resnetPlan(cfg)) {
    const input = x;
    x = tf.tidy(() => bottleneck(input, w, norm, block.prefix, block.stride, block.downsample));
    if (freeInputs) input.dispose();
  }
  return attentionPool(x, w, visionHeads(cfg)); // [B, embed]
}
