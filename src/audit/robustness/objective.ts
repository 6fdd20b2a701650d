/**
 * What the robustness audit attacks and measures: CLIP's zero-shot classifier on images in [0, 1]
 * pixel space, with CLIP's preprocessing inside the differentiable path (Radford et al. 2021,
 * https://arxiv.org/abs/2103.00020, §3.1.4 for the classifier):
 *
 *   input  = (pad(tile3(x)) - CLIP_MEAN) / CLIP_STD                 [B, S, S, 3]
 *   logits = exp(logitScale) * n(encodeImage(input)) @ W^T            [B, C]
 *   untargeted loss = sum_b CE(logits_b, y_b)       (the attack raises it: away from the label)
 *   targeted loss   = -sum_b CE(logits_b, t_b)      (raises the similarity to the wrong text t_b)
 *
 * A grey image [B, h, w, 1] is replicated to three channels and a smaller image centred on a
 * black canvas of the model's size, exactly as the Fashion-MNIST Batcher prepares model input, so
 * attacks and corruptions act on the dataset's own pixels. W is the [C, D] matrix of unit class
 * embeddings (the text side stays fixed).
 */
import * as tf from "@tensorflow/tfjs";
import { CLIP_MEAN, CLIP_STD } from "../../image/preprocess";
import type { ZeroShotImageModel } from "../../eval/zero_shot";
import type { AttackLoss } from "./attacks";

/**
 * Images in [0, 1], [B, h, w, 1 or 3] with h, w <= S -> CLIP-normalised model input [B, S, S, 3].
 * Differentiable; call inside a tidy (or dispose the result).
 */
export function toModelInput(images01: tf.Tensor4D, imageSize: number): tf.Tensor4D {
  const [, h, w, c] = images01.shape;
  if (c !== 1 && c !== 3) throw new RangeError(`toModelInput: images must have 1 (grey) or 3 (RGB) channels, got shape [${images01.shape.join(", ")}]`);
  if (h > imageSize || w > imageSize) throw new RangeError(`toModelInput: images of ${h}x${w} are larger than the model's ${imageSize}x${imageSize} input`);
  return tf.tidy(() => {
    let x: tf.Tensor4D = c === 1 ? tf.tile(images01, [1, 1, 1, 3]) : images01; // [B, h, w, 3]
    if (h < imageSize || w < imageSize) {
      const top = Math.floor((imageSize - h) / 2);
      const left = Math.floor((imageSize - w) / 2);
      x = tf.pad(x, [[0, 0], [top, imageSize - h - top], [left, imageSize - w - left], [0, 0]]); // [B, S, S, 3]
    }
    const mean = tf.tensor1d([...CLIP_MEAN]); // [3]
    const std = tf.tensor1d([...CLIP_STD]); // [3]
    return tf.div(tf.sub(x, mean), std) as tf.Tensor4D; // [B, S, S, 3]
  });
}

/** Unit-norm image embeddings of images in [0, 1], [B, D]. The caller disposes them. */
export function unitImageEmbeddings(model: ZeroShotImageModel, images01: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const f = model.encodeImage(toModelInput(images01, model.config.vision_cfg.image_size)); // [B, D]
    return tf.div(f, tf.norm(f, 2, 1, true)) as tf.Tensor2D; // [B, D]
  });
}

/** Zero-shot logits of images in [0, 1] against unit class embeddings `classWeights` [C, D], [B, C]. */
export function zeroShotLogits01(model: ZeroShotImageModel, classWeights: tf.Tensor2D, images01: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const img = unitImageEmbeddings(model, images01); // [B, D]
    return tf.mul(tf.exp(model.logitScale), tf.matMul(img, tf.transpose(classWeights))) as tf.Tensor2D; // [B, C]
  });
}

export interface ZeroShotLossOptions {
  /** Targeted attack: raise the logit of these classes (one per image) instead of lowering the label's. */
  targets?: Int32Array | readonly number[];
}

/**
 * The attack objective of the zero-shot classifier for one batch: untargeted (cross-entropy with
 * `labels`, summed) or, with `targets`, targeted (minus the cross-entropy with the targets).
 * `classWeights` [C, D] and the labels are captured; the loss reads the model each call.
 */
export function zeroShotLoss(
  model: ZeroShotImageModel,
  classWeights: tf.Tensor2D,
  labels: Int32Array | readonly number[],
  opts: ZeroShotLossOptions = {},
): AttackLoss {
  const fn = "zeroShotLoss";
  const c = classWeights.shape[0];
  const check = (name: string, ys: Int32Array | readonly number[]) => {
    for (let i = 0; i < ys.length; i++) {
      if (!Number.isInteger(ys[i]) || ys[i] < 0 || ys[i] >= c) throw new RangeError(`${fn}: ${name}[${i}] = ${ys[i]} is not a class index in [0, ${c})`);
    }
  };
  check("labels", labels);
  const targeted = opts.targets !== undefined;
  const ys = Int32Array.from(targeted ? opts.targets! : labels);
  if (targeted) check("targets", ys);
  return (images01) => {
    if (images01.shape[0] !== ys.length) throw new RangeError(`${fn}: ${images01.shape[0]} images but ${ys.length} ${targeted ? "targets" : "labels"}`);
    return tf.tidy(() => {
      const logits = zeroShotLogits01(model, classWeights, images01); // [B, C]
      const oneHot = tf.oneHot(tf.tensor1d(ys, "int32"), c); // [B, C]
      const ce = tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)))); // [] summed over the batch
      return (targeted ? tf.neg(ce) : ce) as tf.Scalar;
    });
  };
}
