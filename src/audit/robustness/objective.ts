/**
 * What the robustness audit attacks and measures: CLIP's zero-shot classifier on the model's
 * preprocessed input in [0, 1] pixel space, with the normalisation inside the differentiable path
 * (Radford et al. 2021, https://arxiv.org/abs/2103.00020, §3.1.4 for the classifier):
 *
 *   input  = (x - mean) / std                                        [B, S, S, 3]
 *   logits = exp(logitScale) * n(encodeImage(input)) @ W^T            [B, C]
 *   untargeted loss = sum_b CE(logits_b, y_b)       (the attack raises it: away from the label)
 *   targeted loss   = -sum_b CE(logits_b, t_b)      (raises the similarity to the wrong text t_b)
 *
 * x is what the data pipeline gives the model (resized, cropped or padded to S by the model's
 * transform, RGB), divided by 255: corruptions and attacks act on exactly what the model sees.
 * mean and std are the model transform's (`modelTransform(config)`: the config's preprocess_cfg,
 * else CLIP's). W is the [C, D] matrix of unit class embeddings (the text side stays fixed).
 */
import * as tf from "@tensorflow/tfjs";
import type { ZeroShotImageModel } from "../../eval/zero_shot";
import { resolveTransform, type PreprocessCfg } from "../../image/transform";
import type { AttackLoss } from "./attacks";

/** Per-channel RGB normalisation of model input (an `ImageTransform` has these fields). */
export interface Normalisation {
  mean: readonly number[];
  std: readonly number[];
}

/** The image model the objective differentiates; `Clip` satisfies it. */
export type ObjectiveModel = ZeroShotImageModel & { readonly config: { readonly preprocess_cfg?: PreprocessCfg } };

/** The model transform's mean and std (its preprocess_cfg, else CLIP's). */
export function modelNormalisation(model: ObjectiveModel): Normalisation {
  const t = resolveTransform(model.config.vision_cfg.image_size, model.config.preprocess_cfg ?? {});
  return { mean: t.mean, std: t.std };
}

function check3(fn: string, v: readonly number[], name: string): void {
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
    throw new RangeError(`${fn}: ${name} must be 3 finite numbers (R, G, B), got ${JSON.stringify(v)}`);
  }
}

/**
 * RGB images in [0, 1], [B, S, S, 3] -> normalised model input [B, S, S, 3]: (x - mean) / std.
 * Nothing else (no padding, no resizing: the data pipeline did that). Differentiable; the caller
 * disposes the result.
 */
export function toModelInput(images01: tf.Tensor4D, norm: Normalisation): tf.Tensor4D {
  const fn = "toModelInput";
  if (!(images01 instanceof tf.Tensor) || images01.rank !== 4 || images01.shape[3] !== 3) {
    const got = images01 instanceof tf.Tensor ? `shape [${images01.shape.join(", ")}]` : typeof images01;
    throw new RangeError(`${fn}: images must be RGB [B, S, S, 3] in [0, 1] (the preprocessed model input), got ${got}`);
  }
  if (norm === null || typeof norm !== "object") throw new TypeError(`${fn}: norm must be {mean, std} (the model transform's)`);
  check3(fn, norm.mean as number[], "mean");
  check3(fn, norm.std as number[], "std");
  return tf.tidy(() => {
    const mean = tf.tensor1d([...norm.mean]); // [3]
    const std = tf.tensor1d([...norm.std]); // [3]
    return tf.div(tf.sub(images01, mean), std) as tf.Tensor4D; // [B, S, S, 3]
  });
}

/** Throws a one-line error unless `images01` is [B, S, S, 3] at the model's input size S. */
export function checkModelSize(fn: string, model: ZeroShotImageModel, images01: tf.Tensor4D): void {
  const s = model.config.vision_cfg.image_size;
  const [, h, w, c] = images01.shape;
  if (h !== s || w !== s || c !== 3) {
    throw new RangeError(`${fn}: images must be [B, ${s}, ${s}, 3] (the model's preprocessed input), got [${images01.shape.join(", ")}]`);
  }
}

/** Unit-norm image embeddings of images in [0, 1] at the model's size, [B, D]. The caller disposes them. */
export function unitImageEmbeddings(model: ObjectiveModel, images01: tf.Tensor4D, norm: Normalisation = modelNormalisation(model)): tf.Tensor2D {
  checkModelSize("unitImageEmbeddings", model, images01);
  return tf.tidy(() => {
    const f = model.encodeImage(toModelInput(images01, norm)); // [B, D]
    return tf.div(f, tf.norm(f, 2, 1, true)) as tf.Tensor2D; // [B, D]
  });
}

/** Zero-shot logits of images in [0, 1] against unit class embeddings `classWeights` [C, D], [B, C]. */
export function zeroShotLogits01(model: ObjectiveModel, classWeights: tf.Tensor2D, images01: tf.Tensor4D, norm: Normalisation = modelNormalisation(model)): tf.Tensor2D {
  return tf.tidy(() => {
    const img = unitImageEmbeddings(model, images01, norm); // [B, D]
    return tf.mul(tf.exp(model.logitScale), tf.matMul(img, tf.transpose(classWeights))) as tf.Tensor2D; // [B, C]
  });
}

export interface ZeroShotLossOptions {
  /** Targeted attack: raise the logit of these classes (one per image) instead of lowering the label's. */
  targets?: Int32Array | readonly number[];
  /** Normalisation inside the loss; default the model transform's (`modelNormalisation`). */
  norm?: Normalisation;
}

/**
 * The attack objective of the zero-shot classifier for one batch: untargeted (cross-entropy with
 * `labels`, summed) or, with `targets`, targeted (minus the cross-entropy with the targets).
 * `classWeights` [C, D] and the labels are captured; the loss reads the model each call.
 */
export function zeroShotLoss(
  model: ObjectiveModel,
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
  const norm = opts.norm ?? modelNormalisation(model);
  return (images01) => {
    if (images01.shape[0] !== ys.length) throw new RangeError(`${fn}: ${images01.shape[0]} images but ${ys.length} ${targeted ? "targets" : "labels"}`);
    return tf.tidy(() => {
      const logits = zeroShotLogits01(model, classWeights, images01, norm); // [B, C]
      const oneHot = tf.oneHot(tf.tensor1d(ys, "int32"), c); // [B, C]
      const ce = tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)))); // [] summed over the batch
      return (targeted ? tf.neg(ce) : ce) as tf.Scalar;
    });
  };
}

/** Zero-shot logits of images in [0, 1] as a function (what APGD differentiates), [B, C]. */
export function zeroShotLogitsFn(model: ObjectiveModel, classWeights: tf.Tensor2D, norm: Normalisation = modelNormalisation(model)): (images01: tf.Tensor4D) => tf.Tensor2D {
  return (images01) => zeroShotLogits01(model, classWeights, images01, norm);
}

/** Per-example cross-entropy of `logits` [B, C] with `classes` [B], [B]. Inside a tidy. */
export function crossEntropyPerExample(logits: tf.Tensor2D, classes: Int32Array): tf.Tensor1D {
  const c = logits.shape[1];
  return tf.neg(tf.sum(tf.mul(tf.oneHot(tf.tensor1d(classes, "int32"), c), tf.logSoftmax(logits)), 1)) as tf.Tensor1D; // [B]
}

/**
 * Croce & Hein's targeted DLR loss (https://arxiv.org/abs/2003.01690, eq. 7) per example, [B]:
 *   -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)
 * with z_pi1 >= z_pi2 >= ... the sorted logits. The order is read from the values (it is
 * piecewise constant); the selected logits stay differentiable. Needs at least 4 classes. Inside a
 * tidy.
 */
export function dlrTargetedPerExample(logits: tf.Tensor2D, labels: Int32Array, targets: Int32Array): tf.Tensor1D {
  const [b, c] = logits.shape;
  if (c < 4) throw new RangeError(`dlrTargetedPerExample: the targeted DLR loss needs at least 4 classes, got ${c}`);
  const values = logits.dataSync();
  const first = new Int32Array(b);
  const third = new Int32Array(b);
  const fourth = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    const order = Array.from({ length: c }, (_, j) => j).sort((p, q) => values[i * c + q] - values[i * c + p]);
    [first[i], third[i], fourth[i]] = [order[0], order[2], order[3]];
  }
  const pick = (idx: Int32Array) => tf.sum(tf.mul(logits, tf.oneHot(tf.tensor1d(idx, "int32"), c)), 1); // [B]
  const margin = tf.sub(pick(labels), pick(targets)); // [B]
  const scale = tf.add(tf.sub(pick(first), tf.mul(tf.add(pick(third), pick(fourth)), 0.5)), 1e-12); // [B]
  return tf.neg(tf.div(margin, scale)) as tf.Tensor1D; // [B]
}
