/**
 * Encode once, evaluate many: the unit text embedding of every (template, class) prompt and the
 * unit image features of a labelled image set, as plain arrays. Every prompt study (single
 * templates, ensembles, forward selection, weighted ensembles) then runs on these without calling
 * an encoder again (CLIP §3.1.4, https://arxiv.org/abs/2103.00020).
 *
 * With t_pc = n(encodeText(template_p(class_c))) and f_i = n(encodeImage(x_i)), the zero-shot
 * ensemble of templates with weights a_p >= 0 scores class c by
 *
 *   cos(f_i, n(sum_p a_p t_pc)) = (sum_p a_p f_i.t_pc) / sqrt(a^T G_c a),     G_c[p,q] = t_pc.t_qc
 *
 * so the per-template cosines [N, P, C] and the Gram matrices G [C, P, P] give any ensemble
 * exactly (a = 1 on a subset S is CLIP's mean-of-normalised, renormalised ensemble of S).
 */
import * as tf from "@tensorflow/tfjs";
import { checkLabels } from "../eval/checks";
import { checkPositiveInt } from "../util/checks";
import { encodePixels, encodeTexts, type BatchEncodeOptions, type EncodedImages, type ImageFeatureModel } from "../eval/encode";
import type { Tokenizer, ZeroShotModel } from "../eval/zero_shot";
import { checkClassNames, checkPromptsFit, checkTemplates, fillPrompt } from "../text/templates";

/** Unit image features with labels. */
export interface FeatureSet {
  /** [n, dim] row-major, every row of unit L2 norm. */
  features: Float32Array;
  dim: number;
  n: number;
  labels: Int32Array;
}

/** Unit text embeddings of every (template, class) prompt. */
export interface PromptBank {
  classNames: string[];
  templates: string[];
  dim: number;
  /** [P, C, D]: text[(p * C + c) * D + d] = n(encodeText(fillPrompt(templates[p], classNames[c])))[d]. */
  text: Float32Array;
  /** [C, P, P]: gram[(c * P + p) * P + q] = t_pc . t_qc. */
  gram: Float64Array;
}

/** Images [start, end) as normalised pixels [end - start, S, S, 3]; the caller disposes them. */
export type PixelBatches = (start: number, end: number) => tf.Tensor4D;


/**
 * Unit image features of `n` images whose pixels are already in memory, with their labels: the
 * batched encoder's `encodePixels`, normalised, plus the labels.
 */
export function encodeImageFeatures(model: ImageFeatureModel, pixels: PixelBatches, labels: Int32Array | readonly number[], opts: Pick<BatchEncodeOptions, "batchSize"> = {}): FeatureSet {
  const fn = "encodeImageFeatures";
  const y = checkLabels(fn, "labels", labels, undefined);
  if (y.length === 0) throw new Error(`${fn}: no images (labels is empty)`);
  if (opts.batchSize !== undefined) checkPositiveInt(fn, "batchSize", opts.batchSize);
  const f = encodePixels(model, pixels, y.length, { batchSize: opts.batchSize, normalize: true });
  return { features: f.values, dim: f.dim, n: f.n, labels: y };
}

/**
 * The feature set of images encoded by the batched encoder (`encodeImages` with `normalize`):
 * every row must carry a label (a one-line error names the first item without one).
 */
export function featureSetOf(encoded: EncodedImages, numClasses: number, what = "featureSetOf"): FeatureSet {
  for (let i = 0; i < encoded.n; i++) {
    const y = encoded.labels[i];
    if (y < 0) throw new RangeError(`${encoded.keys[i]}: has no label, but ${what} needs one for every image`);
    if (y >= numClasses) throw new RangeError(`${encoded.keys[i]}: label ${y} outside the ${numClasses} classes [0, ${numClasses})`);
  }
  return { features: encoded.values, dim: encoded.dim, n: encoded.n, labels: encoded.labels };
}

/** The features and labels of rows `indices` of a feature set (a copy). */
export function subsetFeatures(set: FeatureSet, indices: Int32Array | readonly number[]): FeatureSet {
  const { dim } = set;
  const features = new Float32Array(indices.length * dim);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i];
    if (!Number.isInteger(r) || r < 0 || r >= set.n) throw new RangeError(`subsetFeatures: index ${r} outside [0, ${set.n})`);
    features.set(set.features.subarray(r * dim, (r + 1) * dim), i * dim);
    labels[i] = set.labels[r];
  }
  return { features, dim, n: indices.length, labels };
}

/** `batchSize`: images or prompts per encoder call; default from the model config and a memory budget (src/eval/encode.ts). */
export interface PromptBankOptions extends Pick<BatchEncodeOptions, "batchSize"> {
  /** Default: CLIP's BPE at the model's context length; too-long prompts are an error. */
  tokenizer?: Tokenizer;
}

/** Encodes every template x class prompt once. */
export function encodePromptBank(
  model: ZeroShotModel,
  classNames: readonly string[],
  templates: readonly string[],
  opts: PromptBankOptions = {},
): PromptBank {
  const fn = "encodePromptBank";
  const names = checkClassNames(classNames, fn);
  const temps = checkTemplates(templates, fn);
  if (opts.batchSize !== undefined) checkPositiveInt(fn, "batchSize", opts.batchSize);
  // With CLIP's BPE a prompt longer than the context would lose its class name: refuse it first.
  if (opts.tokenizer === undefined) checkPromptsFit(names, temps, model.config.text_cfg.context_length, fn);
  const prompts = temps.flatMap((t) => names.map((c) => fillPrompt(t, c)));
  const { values, dim } = encodeTexts(model, prompts, { tokenizer: opts.tokenizer, batchSize: opts.batchSize, normalize: true });
  return { classNames: names, templates: temps, dim, text: values, gram: gramMatrices(values, temps.length, names.length, dim) };
}

/** G [C, P, P] of unit text embeddings [P, C, D]. */
export function gramMatrices(text: Float32Array, p: number, c: number, dim: number): Float64Array {
  const gram = new Float64Array(c * p * p);
  for (let k = 0; k < c; k++) {
    for (let a = 0; a < p; a++) {
      for (let b = a; b < p; b++) {
        let s = 0;
        const oa = (a * c + k) * dim;
        const ob = (b * c + k) * dim;
        for (let d = 0; d < dim; d++) s += text[oa + d] * text[ob + d];
        gram[(k * p + a) * p + b] = s;
        gram[(k * p + b) * p + a] = s;
      }
    }
  }
  return gram;
}

/** A bank restricted to some templates (indices into bank.templates), sharing nothing. */
export function subsetBank(bank: PromptBank, templateIndices: readonly number[]): PromptBank {
  const c = bank.classNames.length;
  const per = c * bank.dim;
  const text = new Float32Array(templateIndices.length * per);
  templateIndices.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 0 || p >= bank.templates.length) throw new RangeError(`subsetBank: template index ${p} outside [0, ${bank.templates.length})`);
    text.set(bank.text.subarray(p * per, (p + 1) * per), i * per);
  });
  return {
    classNames: bank.classNames.slice(),
    templates: templateIndices.map((p) => bank.templates[p]),
    dim: bank.dim,
    text,
    gram: gramMatrices(text, templateIndices.length, c, bank.dim),
  };
}

/**
 * Cosines of every image with every (template, class) text: [N, P, C], computed with tf in
 * blocks of `chunkRows` images.
 */
export function templateCosines(bank: PromptBank, set: FeatureSet, chunkRows = 2048): Float32Array {
  const fn = "templateCosines";
  if (set.dim !== bank.dim) throw new Error(`${fn}: image features have dimension ${set.dim}, the prompt bank ${bank.dim}`);
  const p = bank.templates.length;
  const c = bank.classNames.length;
  const out = new Float32Array(set.n * p * c);
  const textT = tf.tidy(() => tf.transpose(tf.tensor2d(bank.text, [p * c, bank.dim]))); // [D, P*C]
  try {
    for (let start = 0; start < set.n; start += chunkRows) {
      const rows = Math.min(chunkRows, set.n - start);
      const block = tf.tidy(() => {
        const f = tf.tensor2d(set.features.subarray(start * set.dim, (start + rows) * set.dim), [rows, set.dim]); // [rows, D]
        return tf.matMul(f, textT); // [rows, P*C]
      });
      try {
        out.set(block.dataSync() as Float32Array, start * p * c);
      } finally {
        block.dispose();
      }
    }
  } finally {
    textT.dispose();
  }
  return out;
}

/**
 * Scores [N, C] of the ensemble with template weights `a` (length P, >= 0, not all 0): the cosine
 * of each image with n(sum_p a_p t_pc). a = indicator of a subset gives CLIP's ensemble of it.
 */
export function ensembleScores(bank: PromptBank, cosines: Float32Array, a: ArrayLike<number>): Float32Array {
  const fn = "ensembleScores";
  const p = bank.templates.length;
  const c = bank.classNames.length;
  if (a.length !== p) throw new Error(`${fn}: ${a.length} template weights for ${p} templates`);
  if (cosines.length % (p * c) !== 0) throw new Error(`${fn}: cosines hold ${cosines.length} values, not a multiple of P x C = ${p * c}`);
  let any = false;
  for (let i = 0; i < p; i++) {
    if (!(a[i] >= 0)) throw new RangeError(`${fn}: template weight ${i} must be >= 0, got ${a[i]}`);
    if (a[i] > 0) any = true;
  }
  if (!any) throw new RangeError(`${fn}: at least one template weight must be positive`);
  const inv = classNorms(bank, a).map((x) => 1 / x);
  const n = cosines.length / (p * c);
  const out = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < p; t++) {
      const w = a[t];
      if (w === 0) continue;
      const o = (i * p + t) * c;
      for (let k = 0; k < c; k++) out[i * c + k] += w * cosines[o + k];
    }
    for (let k = 0; k < c; k++) out[i * c + k] *= inv[k];
  }
  return out;
}

/** ||sum_p a_p t_pc|| for every class. */
export function classNorms(bank: PromptBank, a: ArrayLike<number>): number[] {
  const p = bank.templates.length;
  const c = bank.classNames.length;
  const out: number[] = [];
  for (let k = 0; k < c; k++) {
    let s = 0;
    for (let i = 0; i < p; i++) {
      if (a[i] === 0) continue;
      for (let j = 0; j < p; j++) s += a[i] * a[j] * bank.gram[(k * p + i) * p + j];
    }
    out.push(Math.sqrt(Math.max(s, 0)));
  }
  return out;
}

/** Scores [N, C] of template p alone (its slice of the cosines). */
export function singleTemplateScores(bank: PromptBank, cosines: Float32Array, t: number): Float32Array {
  const p = bank.templates.length;
  const c = bank.classNames.length;
  const n = cosines.length / (p * c);
  const out = new Float32Array(n * c);
  for (let i = 0; i < n; i++) out.set(cosines.subarray((i * p + t) * c, (i * p + t + 1) * c), i * c);
  return out;
}

/** Class weights [C, D] (unit rows) of the ensemble with template weights a. */
export function ensembleClassWeights(bank: PromptBank, a: ArrayLike<number>): Float32Array {
  const p = bank.templates.length;
  const c = bank.classNames.length;
  const d = bank.dim;
  const out = new Float32Array(c * d);
  const norms = classNorms(bank, a);
  for (let k = 0; k < c; k++) {
    for (let t = 0; t < p; t++) {
      if (a[t] === 0) continue;
      const o = (t * c + k) * d;
      for (let j = 0; j < d; j++) out[k * d + j] += a[t] * bank.text[o + j];
    }
    for (let j = 0; j < d; j++) out[k * d + j] /= norms[k];
  }
  return out;
}
