/**
 * The zero-shot side of the fairness audit: class embeddings (CLIP's prompt ensemble, Radford et
 * al. 2021, https://arxiv.org/abs/2103.00020 §3.1.4), prompt embeddings, predictions, and the
 * zero-shot accuracy of a dataset with a bootstrap interval. Texts and images go through the
 * batched encoder (src/eval/encode.ts); with `spuriousDirections`, every text embedding is
 * projection-debiased (./debias.ts).
 */
import * as tf from "@tensorflow/tfjs";
import type { Dataset, SkippedItem } from "../../data/dataset";
import { preparedStream, expectedItems } from "../../data/stream";
import { encodeImages, encodeTexts, type FeatureMatrix, type ImageFeatureModel, type TextFeatureModel } from "../../eval/encode";
import { PLAIN_TEMPLATES } from "../../eval/evaluate_dataset";
import { fillPrompt } from "../../text/fill";
import { checkTemplates } from "../../text/templates";
import { resolveTransform, type ImageTransform, type PreprocessCfg } from "../../image/transform";
import { bootstrapMean } from "../../eval/bootstrap";
import type { Estimate } from "../../eval/intervals";
import { projectionDebias } from "./debias";
import { argmaxRows } from "../../util/argmax";

/** What the audit uses of a model; `Clip` satisfies it. */
export interface AuditModel extends TextFeatureModel, ImageFeatureModel {
  readonly config: {
    readonly vision_cfg: { readonly image_size: number };
    readonly text_cfg: { readonly context_length: number };
    /** The model's preprocessing (open_clip's preprocess_cfg); default OpenAI's. */
    readonly preprocess_cfg?: PreprocessCfg;
  };
}

export type Tokenizer = (texts: string[]) => tf.Tensor2D;

export interface TextOptions {
  /** Spurious directions [K, D] projected out of every text embedding (Chuang et al. 2023). Not disposed. */
  spuriousDirections?: tf.Tensor2D;
  tokenizer?: Tokenizer;
}

/** The model's image transform (`modelTransform` of its config): size, mean, std, resize mode. */
export function auditTransform(model: AuditModel): ImageTransform {
  return resolveTransform(model.config.vision_cfg.image_size, model.config.preprocess_cfg ?? {});
}

/** Class names and templates: the caller's, else the dataset's, else CLIP's plain prompt. */
export function auditPrompts(fn: string, ds: Dataset, opts: { classNames?: readonly string[]; templates?: readonly string[] }): { classNames: readonly string[]; templates: readonly string[] } {
  const classNames = opts.classNames ?? ds.classNames;
  if (!classNames || classNames.length === 0) throw new RangeError(`${fn}: ${ds.spec} has no class names; pass classNames (cliplab: --classnames FILE)`);
  if (!Array.isArray(classNames) || classNames.length < 2) throw new RangeError(`${fn}: classNames must list at least two class names`);
  const templates = opts.templates ?? ds.templates ?? PLAIN_TEMPLATES;
  checkTemplates(templates, fn, { allowDuplicates: true });
  return { classNames, templates };
}

/** Unit-norm text embeddings [N, D] of `texts`, projection-debiased if directions are given. */
export function textEmbeddings(model: TextFeatureModel, texts: readonly string[], opts: TextOptions = {}): tf.Tensor2D {
  if (!Array.isArray(texts) || texts.length === 0) throw new Error("textEmbeddings: texts must be a non-empty array of strings");
  const f = encodeTexts(model, texts, { tokenizer: opts.tokenizer, normalize: true });
  return tf.tidy(() => {
    const e = tf.tensor2d(f.values, [f.n, f.dim]); // [N, D]
    return opts.spuriousDirections ? projectionDebias(e, opts.spuriousDirections) : e; // [N, D]
  });
}

/** Unit-norm prompt-ensembled class embeddings [C, D], projection-debiased if directions are given. */
export function classEmbeddings(model: TextFeatureModel, names: readonly string[], templates: readonly string[], opts: TextOptions = {}): tf.Tensor2D {
  checkTemplates(templates, "classEmbeddings", { allowDuplicates: true });
  const P = templates.length;
  const prompts = names.flatMap((n) => templates.map((t) => fillPrompt(t, n)));
  const f = encodeTexts(model, prompts, { tokenizer: opts.tokenizer, normalize: true });
  return tf.tidy(() => {
    const e = tf.tensor3d(f.values, [names.length, P, f.dim]); // [C, P, D]
    const mean = tf.mean(e, 1) as tf.Tensor2D; // [C, D]
    const w = tf.div(mean, tf.norm(mean, 2, 1, true)) as tf.Tensor2D; // [C, D]
    return opts.spuriousDirections ? projectionDebias(w, opts.spuriousDirections) : w; // [C, D]
  });
}

/** Image features as a tensor [n, D] (the caller disposes it). */
export function featureTensor(f: FeatureMatrix): tf.Tensor2D {
  return tf.tensor2d(f.values, [f.n, f.dim]); // [n, D]
}

/** Row-wise argmax of feats [n, D] @ w^T [D, C], read back (lowest index wins ties). */
export function predictClasses(feats: tf.Tensor2D, w: tf.Tensor2D): Int32Array {
  const [n] = feats.shape;
  const c = w.shape[0];
  const sim = tf.tidy(() => tf.matMul(feats, w, false, true).dataSync() as Float32Array); // [n, C]
  return argmaxRows(sim, n, c);
}

/** Every item's label, checked against the classes: an item without one is an error naming its key. */
export function checkItemLabels(fn: string, rows: { keys: string[]; labels: Int32Array }, numClasses: number): Int32Array {
  rows.labels.forEach((c, i) => {
    if (c < 0) throw new RangeError(`${fn}: ${rows.keys[i]} has no label; the audit compares zero-shot predictions with true classes`);
    if (c >= numClasses) throw new RangeError(`${fn}: ${rows.keys[i]} has label ${c}, but classNames has ${numClasses} classes`);
  });
  return rows.labels;
}

/** The share of correct predictions with a bootstrap 95% interval. */
export function accuracyEstimate(pred: Int32Array, labels: Int32Array, resamples: number, seed: number): Estimate {
  return bootstrapMean(Array.from(pred, (p, i) => (p === labels[i] ? 1 : 0)), { resamples, seed });
}

export interface ZeroShotAccuracyOptions extends TextOptions {
  /** Default: the dataset's class names. */
  classNames?: readonly string[];
  /** Default: the dataset's templates, else "a photo of a {}.". */
  templates?: readonly string[];
  /** Items read (default all). */
  limit?: number;
  skipBadImages?: boolean;
  onSkip?: (item: SkippedItem) => void;
  /** Default: the model's (`modelTransform`). */
  transform?: ImageTransform;
  /** Items per encoder call (default: from the model config and the encoder's memory budget). */
  batchSize?: number;
  bootstrap?: number;
  seed?: number;
}

/** Zero-shot top-1 accuracy of a labelled dataset with a bootstrap 95% interval (e.g. clean accuracy, without any stamp). */
export async function zeroShotAccuracy(model: AuditModel, data: Dataset, opts: ZeroShotAccuracyOptions = {}): Promise<Estimate> {
  const fn = "zeroShotAccuracy";
  const { classNames, templates } = auditPrompts(fn, data, opts);
  const t = opts.transform ?? auditTransform(model);
  const read = { limit: opts.limit, skipBadImages: opts.skipBadImages, onSkip: opts.onSkip };
  const images = await encodeImages(model, preparedStream(data, t, read), { mean: t.mean, std: t.std, batchSize: opts.batchSize, total: expectedItems(data, read) });
  const labels = checkItemLabels(fn, images, classNames.length);
  const w = classEmbeddings(model, classNames, templates, opts);
  const feats = featureTensor(images);
  let pred: Int32Array;
  try {
    pred = predictClasses(feats, w);
  } finally {
    tf.dispose([feats, w]);
  }
  return accuracyEstimate(pred, labels, opts.bootstrap ?? 1000, opts.seed ?? 0);
}
