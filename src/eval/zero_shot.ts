/**
 * Zero-shot classification with CLIP and prompt ensembling.
 *
 * Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision",
 * https://arxiv.org/abs/2103.00020, §3.1.4 (prompt engineering and ensembling): every class name is
 * put into several prompt templates ("a photo of a {}."), the prompts are encoded, and the class is
 * represented by the ensemble of those text embeddings, computed in embedding space:
 *
 *   w_c    = n( mean_p n(encodeText(template_p(class_c))) )      n(x) = x / ||x||_2
 *   logits = exp(logitScale) * n(encodeImage(x)) @ W^T           W = [w_1; ...; w_C]   [B, C]
 *   probs  = softmax(logits)                                      (the model's own temperature)
 *
 * The weights W are computed once and kept; the ensemble costs nothing at prediction time.
 * `logitScale` is read from the model at every call, so a classifier built during training
 * follows the current temperature (top-1 and top-5 do not depend on it; probabilities do).
 *
 * Ties: the predicted class is the lowest class index among the maximal logits, and top-k counts
 * the true class as a hit if it is among the first k classes ordered by (logit descending, index
 * ascending), which is what tf.topk does on the cpu backend; evaluation does this ranking in JS so
 * it does not depend on the backend.
 *
 * Memory: everything runs in tf.tidy or is disposed; the only tensors a classifier keeps are its
 * weights (and their transpose), freed by `dispose()`. Text and images are encoded in batches of
 * `batchSize`, and `evaluate` reads the test set a batch at a time.
 */
import * as tf from "@tensorflow/tfjs";
import { fillPrompt } from "../text/fill";
import { l2NormalizeRows } from "../util/tensor";
import { checkLabels, checkMatrix, checkScalar, fmtShape } from "./checks";
import { argmaxAt } from "../util/argmax";
import { checkPositiveInt } from "../util/checks";
import { encodeTexts, type FeatureMatrix } from "./encode";
import { checkPromptsFit, checkTemplates } from "../text/templates";

/** The image side of a CLIP model: what a classifier needs once its weights exist. */
export interface ZeroShotImageModel {
  /** Unnormalised image features [B, D]; the caller (here: the classifier) disposes them. */
  encodeImage(pixels: tf.Tensor4D): tf.Tensor2D;
  /** Log of the logit multiplier, a float32 scalar (a tf.Variable in `Clip`). */
  readonly logitScale: tf.Tensor;
  readonly config: { readonly vision_cfg: { readonly image_size: number } };
}

/** Everything `zeroShotClassifier` uses of a model; `Clip` satisfies it. */
export interface ZeroShotModel extends ZeroShotImageModel {
  /** Unnormalised text features [B, D] of token ids [B, T]; the caller disposes them. */
  encodeText(tokens: tf.Tensor2D): tf.Tensor2D;
  readonly config: {
    readonly vision_cfg: { readonly image_size: number };
    readonly text_cfg: { readonly context_length: number };
  };
}

/** texts -> token ids [texts.length, T] (int32). The classifier disposes the tensor it gets. */
export type Tokenizer = (texts: string[]) => tf.Tensor2D;

export interface ZeroShotOptions {
  /**
   * Default: CLIP's BPE `tokenize` with the model's context length; a prompt that does not fit
   * (which truncation would rob of its class name) is an error naming the class and template.
   * Pass one for a model trained with another vocabulary.
   */
  tokenizer?: Tokenizer;
  /** Prompts per encodeText call and images per encodeImage call; default 256. */
  batchSize?: number;
}

/**
 * Images [start, end) of a test set as normalised pixels [end - start, S, S, 3].
 * The classifier disposes every tensor it receives, so return a fresh tensor each call.
 */
export type ImageBatchFn = (start: number, end: number) => tf.Tensor4D;

export interface LabelledPixels {
  /**
   * Normalised NHWC float32 pixels: a flat Float32Array of N*S*S*3 values (S = the model's
   * image_size), a tf.Tensor4D [N, S, S, 3] (not disposed), or a function producing batches.
   */
  pixels: Float32Array | tf.Tensor4D | ImageBatchFn;
  /** True class of each image, integers in [0, C). N = labels.length. */
  labels: Int32Array | readonly number[];
}

export interface ZeroShotEvaluation {
  /** Fraction of images whose top-scoring class is the label. */
  top1: number;
  /** Fraction whose label is among the 5 top-scoring classes (min(5, C); so 1 when C <= 5). */
  top5: number;
  /** Top-1 accuracy of each true class (NaN for a class with no image). */
  perClass: number[];
  /** Mean of perClass over the classes that have images (balanced accuracy). */
  meanPerClass: number;
  /** confusion[true][predicted] = number of images. */
  confusion: number[][];
  /** Number of images of each class. */
  support: number[];
  /** Number of images evaluated. */
  n: number;
}

export interface ZeroShotPrediction {
  /** Predicted class per image (lowest index among ties). */
  top1: Int32Array;
  /** [B, C] softmax of the logits; the caller disposes it. */
  probs: tf.Tensor2D;
}

export interface ZeroShotClassifier {
  readonly classNames: readonly string[];
  readonly templates: readonly string[];
  /** [C, D] unit-norm class embeddings, owned by the classifier (freed by dispose()). */
  readonly weights: tf.Tensor2D;
  readonly numClasses: number;
  /** exp(logitScale) * n(encodeImage(pixels)) @ weights^T, [B, C]; the caller disposes it. */
  logits(pixels: tf.Tensor4D): tf.Tensor2D;
  /** The same from precomputed (unnormalised) image features [B, D]. */
  logitsFromFeatures(imageFeatures: tf.Tensor2D): tf.Tensor2D;
  predict(pixels: tf.Tensor4D): ZeroShotPrediction;
  /** Accuracy over a labelled test set, read `batchSize` images at a time. */
  evaluate(images: LabelledPixels, opts?: { batchSize?: number }): ZeroShotEvaluation;
  /** The same from image features computed elsewhere (the batched encoder), one label per row. */
  evaluateFeatures(features: FeatureMatrix, labels: Int32Array | readonly number[]): ZeroShotEvaluation;
  dispose(): void;
  readonly isDisposed: boolean;
}

const DEFAULT_BATCH_SIZE = 256;

/**
 * CLIP's prompt ensemble: embeddings [C, P, D] (P prompts per class, unnormalised) ->
 * [C, D] with row c = n(mean_p n(embeddings[c, p])). Like the reference, no eps: a zero
 * embedding gives NaN. The caller disposes the result.
 */
export function ensembleWeights(embeddings: tf.Tensor3D): tf.Tensor2D {
  const fn = "ensembleWeights";
  if (!(embeddings instanceof tf.Tensor)) throw new TypeError(`${fn}: embeddings must be a tf.Tensor [C, P, D]`);
  if (embeddings.rank !== 3) throw new Error(`${fn}: embeddings must have rank 3 ([C, P, D]), got shape ${fmtShape(embeddings)}`);
  if (embeddings.shape.some((n) => n < 1)) throw new Error(`${fn}: embeddings must not be empty, got shape ${fmtShape(embeddings)}`);
  if (embeddings.dtype !== "float32") throw new Error(`${fn}: embeddings must be float32, got ${embeddings.dtype}`);
  return tf.tidy(() => {
    const perPrompt = tf.div(embeddings, tf.norm(embeddings, 2, 2, true)); // [C, P, D]
    const mean = tf.mean(perPrompt, 1) as tf.Tensor2D; // [C, D]
    return l2NormalizeRows(mean); // [C, D]
  });
}

/**
 * The ensemble of classes whose numbers of prompts differ: one [P_c, D] tensor per class -> [C, D].
 * The inputs are not disposed.
 */
export function ensembleWeightsPerClass(textEmbeddingsPerClass: readonly tf.Tensor2D[]): tf.Tensor2D {
  const fn = "ensembleWeightsPerClass";
  if (!Array.isArray(textEmbeddingsPerClass) || textEmbeddingsPerClass.length === 0) {
    throw new Error(`${fn}: expected a non-empty array of [P_c, D] tensors, one per class`);
  }
  textEmbeddingsPerClass.forEach((t, c) => checkMatrix(fn, `class ${c}`, t, "[P_c, D]"));
  const d = textEmbeddingsPerClass[0].shape[1];
  textEmbeddingsPerClass.forEach((t, c) => {
    if (t.shape[1] !== d) throw new Error(`${fn}: class ${c} has dimension ${t.shape[1]}, class 0 has ${d}`);
  });
  return tf.tidy(() =>
    tf.concat(
      textEmbeddingsPerClass.map((t) => ensembleWeights(tf.expandDims(t, 0) as tf.Tensor3D)),
      0,
    ) as tf.Tensor2D,
  );
}

/** Throws, naming the first bad class, unless every weight is finite. */
function checkFiniteWeights(fn: string, weights: tf.Tensor2D, classNames?: readonly string[]): void {
  const ok = tf.tidy(() => tf.all(tf.isFinite(weights)).dataSync()[0]);
  if (ok) return;
  const [c, d] = weights.shape;
  const values = weights.dataSync();
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < d; j++) {
      if (!Number.isFinite(values[i * d + j])) {
        const name = classNames ? ` (${JSON.stringify(classNames[i])})` : "";
        throw new Error(`${fn}: the class embedding of class ${i}${name} is not finite (a zero or non-finite text feature?)`);
      }
    }
  }
}

/** Text features of `prompts` as a [prompts.length, D] tensor (the caller disposes it). */
function encodePrompts(model: ZeroShotModel, prompts: string[], tokenizer: Tokenizer | undefined, batchSize: number): tf.Tensor2D {
  const f = encodeTexts(model, prompts, { tokenizer, batchSize });
  return tf.tensor2d(f.values, [f.n, f.dim], "float32");
}

/**
 * A zero-shot classifier over `classNames`, each represented by the ensemble of its prompts
 * (every template with "{}" replaced by the class name). The text encoder runs here, once;
 * the classifier then keeps only the [C, D] weights. Call `dispose()` when done.
 */
export function zeroShotClassifier(
  model: ZeroShotModel,
  classNames: readonly string[],
  templates: readonly string[],
  opts: ZeroShotOptions = {},
): ZeroShotClassifier {
  const fn = "zeroShotClassifier";
  if (!Array.isArray(classNames) || classNames.length === 0) throw new Error(`${fn}: classNames must be a non-empty array of strings`);
  classNames.forEach((name, i) => {
    if (typeof name !== "string") throw new TypeError(`${fn}: class name ${i} is not a string (${typeof name})`);
  });
  checkTemplates(templates, fn, { allowDuplicates: true });
  const batchSize = checkPositiveInt(fn, "batchSize", opts.batchSize ?? DEFAULT_BATCH_SIZE);
  const contextLength = model.config.text_cfg.context_length;
  if (opts.tokenizer !== undefined && typeof opts.tokenizer !== "function") {
    throw new TypeError(`${fn}: tokenizer must be a function (texts: string[]) => tf.Tensor2D`);
  }
  // With CLIP's BPE, a prompt longer than the context would lose its class name: refuse it.
  if (opts.tokenizer === undefined) checkPromptsFit(classNames, templates, contextLength, fn);
  const tokenizer = opts.tokenizer;

  // Whole classes per chunk (about batchSize prompts), so only [chunk, P, D] features are alive
  // at once: 1000 classes x 80 templates never sit in memory together.
  const p = templates.length;
  const classesPerChunk = Math.max(1, Math.floor(batchSize / p));
  const chunks: tf.Tensor2D[] = [];
  let weights: tf.Tensor2D;
  try {
    for (let c0 = 0; c0 < classNames.length; c0 += classesPerChunk) {
      const names = classNames.slice(c0, c0 + classesPerChunk);
      const prompts = names.flatMap((name) => templates.map((t) => fillPrompt(t, name)));
      const features = encodePrompts(model, prompts, tokenizer, batchSize); // [names * P, D]
      try {
        chunks.push(
          tf.tidy(() => ensembleWeights(tf.reshape(features, [names.length, p, features.shape[1]]) as tf.Tensor3D)),
        );
      } finally {
        features.dispose();
      }
      if (chunks.length > 1 && chunks[chunks.length - 1].shape[1] !== chunks[0].shape[1]) {
        throw new Error(`${fn}: encodeText changed dimension between batches`);
      }
    }
    weights = tf.tidy(() => (chunks.length === 1 ? tf.clone(chunks[0]) : tf.concat(chunks, 0))) as tf.Tensor2D;
  } finally {
    tf.dispose(chunks);
  }
  try {
    checkFiniteWeights(fn, weights, classNames);
  } catch (err) {
    weights.dispose();
    throw err;
  }
  return makeClassifier(model, weights, classNames.slice(), templates.slice(), batchSize);
}

/**
 * A classifier from class weights computed elsewhere ([C, D], used as given: pass unit rows for
 * CLIP's cosine logits, e.g. from `ensembleWeights`). The classifier keeps its own reference to
 * the data; the caller still owns (and disposes) `weights`.
 */
export function classifierFromWeights(
  model: ZeroShotImageModel,
  weights: tf.Tensor2D,
  opts: { classNames?: readonly string[]; batchSize?: number } = {},
): ZeroShotClassifier {
  const fn = "classifierFromWeights";
  checkMatrix(fn, "weights", weights, "[C, D]");
  const c = weights.shape[0];
  const names = opts.classNames ? opts.classNames.slice() : Array.from({ length: c }, (_, i) => String(i));
  if (names.length !== c) throw new Error(`${fn}: ${names.length} class names for ${c} weight rows`);
  const batchSize = checkPositiveInt(fn, "batchSize", opts.batchSize ?? DEFAULT_BATCH_SIZE);
  checkFiniteWeights(fn, weights, names);
  return makeClassifier(model, tf.clone(weights), names, [], batchSize);
}

/** Index of the first maximum of row `r` of a [rows, c] array. Throws on NaN. */
function rowArgmax(values: ArrayLike<number>, r: number, c: number): number {
  for (let j = 0; j < c; j++) if (Number.isNaN(values[r * c + j])) throw new Error(`zeroShotClassifier: logits of image ${r} contain NaN`);
  return argmaxAt(values, r * c, c);
}

function makeClassifier(
  model: ZeroShotImageModel,
  weights: tf.Tensor2D,
  classNames: string[],
  templates: string[],
  defaultBatchSize: number,
): ZeroShotClassifier {
  const fn = "zeroShotClassifier";
  const [numClasses, dim] = weights.shape;
  // Transposed once: on WASM only the no-transpose matMul goes through XNNPACK.
  const weightsT = tf.transpose(weights) as tf.Tensor2D; // [D, C]
  let disposed = false;
  const alive = (): void => {
    if (disposed) throw new Error(`${fn}: this classifier has been disposed`);
  };

  const logitsFromFeatures = (imageFeatures: tf.Tensor2D): tf.Tensor2D => {
    alive();
    checkMatrix(`${fn}.logitsFromFeatures`, "imageFeatures", imageFeatures, "[B, D]");
    if (imageFeatures.shape[1] !== dim) {
      throw new Error(`${fn}: image features have dimension ${imageFeatures.shape[1]}, the class weights ${dim}`);
    }
    const logitScale = model.logitScale;
    checkScalar(fn, "model.logitScale", logitScale);
    return tf.tidy(() => tf.mul(tf.exp(logitScale), tf.matMul(l2NormalizeRows(imageFeatures), weightsT)) as tf.Tensor2D); // [B, C]
  };

  const logitsOf = (pixels: tf.Tensor4D, batchSize: number): tf.Tensor2D => {
    alive();
    if (!(pixels instanceof tf.Tensor) || pixels.rank !== 4) {
      const got = pixels instanceof tf.Tensor ? `shape ${fmtShape(pixels)}` : typeof pixels;
      throw new Error(`${fn}: pixels must be a tf.Tensor4D [B, S, S, 3], got ${got}`);
    }
    const b = pixels.shape[0];
    if (b < 1) throw new Error(`${fn}: pixels must hold at least one image, got shape ${fmtShape(pixels)}`);
    const one = (x: tf.Tensor4D): tf.Tensor2D => {
      const features = model.encodeImage(x);
      try {
        if (!(features instanceof tf.Tensor) || features.rank !== 2 || features.shape[0] !== x.shape[0]) {
          throw new Error(`${fn}: encodeImage returned shape ${features instanceof tf.Tensor ? fmtShape(features) : typeof features} for ${x.shape[0]} images`);
        }
        return logitsFromFeatures(features);
      } finally {
        features.dispose();
      }
    };
    if (b <= batchSize) return one(pixels);
    const parts: tf.Tensor2D[] = [];
    try {
      for (let start = 0; start < b; start += batchSize) {
        const size = Math.min(batchSize, b - start);
        const slice = tf.slice(pixels, [start, 0, 0, 0], [size, -1, -1, -1]) as tf.Tensor4D;
        try {
          parts.push(one(slice));
        } finally {
          slice.dispose();
        }
      }
      return tf.concat(parts, 0) as tf.Tensor2D;
    } finally {
      tf.dispose(parts);
    }
  };

  const predict = (pixels: tf.Tensor4D): ZeroShotPrediction => {
    const logits = logitsOf(pixels, defaultBatchSize);
    try {
      const values = logits.dataSync();
      const b = logits.shape[0];
      const top1 = new Int32Array(b);
      for (let r = 0; r < b; r++) top1[r] = rowArgmax(values, r, numClasses);
      const probs = tf.softmax(logits) as tf.Tensor2D; // stable: tf.softmax subtracts the log-sum-exp
      return { top1, probs };
    } finally {
      logits.dispose();
    }
  };

  /** Accumulates top-1/top-5, the confusion matrix and support over logits rows. */
  const scorer = (labels: Int32Array) => {
    const k5 = Math.min(5, numClasses);
    const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
    const support = new Array<number>(numClasses).fill(0);
    let hits1 = 0;
    let hits5 = 0;
    return {
      add(values: ArrayLike<number>, start: number, rows: number): void {
        for (let r = 0; r < rows; r++) {
          const y = labels[start + r];
          const pred = rowArgmax(values, r, numClasses);
          // 0-based position of the true class in (logit desc, index asc) order.
          const target = values[r * numClasses + y];
          let rank = 0;
          for (let j = 0; j < numClasses; j++) {
            const v = values[r * numClasses + j];
            if (v > target || (v === target && j < y)) rank++;
          }
          support[y]++;
          confusion[y][pred]++;
          if (rank === 0) hits1++;
          if (rank < k5) hits5++;
        }
      },
      result(): ZeroShotEvaluation {
        const n = labels.length;
        const perClass = support.map((s, c) => (s > 0 ? confusion[c][c] / s : NaN));
        const present = perClass.filter((a) => !Number.isNaN(a));
        return { top1: hits1 / n, top5: hits5 / n, perClass, meanPerClass: present.reduce((a, b) => a + b, 0) / present.length, confusion, support, n };
      },
    };
  };

  const evaluate = (images: LabelledPixels, opts: { batchSize?: number } = {}): ZeroShotEvaluation => {
    alive();
    const efn = `${fn}.evaluate`;
    if (!images || typeof images !== "object") throw new TypeError(`${efn}: expected { pixels, labels }`);
    const labels = checkLabels(efn, "labels", images.labels, undefined, numClasses);
    const n = labels.length;
    if (n === 0) throw new Error(`${efn}: no images to evaluate (labels is empty)`);
    const batchSize = checkPositiveInt(efn, "batchSize", opts.batchSize ?? defaultBatchSize);
    const nextBatch = batchReader(efn, images.pixels, n, model.config.vision_cfg.image_size);
    const score = scorer(labels);
    for (let start = 0; start < n; start += batchSize) {
      const end = Math.min(n, start + batchSize);
      const batch = nextBatch(start, end);
      let values: Float32Array | Int32Array | Uint8Array;
      try {
        // The whole batch goes to encodeImage at once: it was cut to batchSize here.
        const logits = logitsOf(batch, end - start);
        try {
          values = logits.dataSync();
        } finally {
          logits.dispose();
        }
      } finally {
        batch.dispose();
      }
      score.add(values, start, end - start);
    }
    return score.result();
  };

  const evaluateFeatures = (features: FeatureMatrix, labelsIn: Int32Array | readonly number[]): ZeroShotEvaluation => {
    alive();
    const efn = `${fn}.evaluateFeatures`;
    const labels = checkLabels(efn, "labels", labelsIn, undefined, numClasses);
    if (labels.length !== features.n) throw new Error(`${efn}: ${labels.length} labels for ${features.n} feature rows`);
    if (features.n === 0) throw new Error(`${efn}: no images to evaluate (labels is empty)`);
    if (features.dim !== dim) throw new Error(`${efn}: image features have dimension ${features.dim}, the class weights ${dim}`);
    const score = scorer(labels);
    for (let start = 0; start < features.n; start += defaultBatchSize) {
      const rows = Math.min(defaultBatchSize, features.n - start);
      const values = tf.tidy(() => {
        const f = tf.tensor2d(features.values.subarray(start * dim, (start + rows) * dim), [rows, dim], "float32"); // [b, D]
        return logitsFromFeatures(f).dataSync(); // [b, C]
      });
      score.add(values, start, rows);
    }
    return score.result();
  };

  return {
    classNames,
    templates,
    weights,
    numClasses,
    logits: (pixels) => logitsOf(pixels, defaultBatchSize),
    logitsFromFeatures,
    predict,
    evaluate,
    evaluateFeatures,
    dispose() {
      if (disposed) return;
      disposed = true;
      weights.dispose();
      weightsT.dispose();
    },
    get isDisposed() {
      return disposed;
    },
  };
}

/** (start, end) -> a tensor [end - start, S, S, 3] that the caller disposes. */
function batchReader(fn: string, pixels: LabelledPixels["pixels"], n: number, size: number): (start: number, end: number) => tf.Tensor4D {
  const per = size * size * 3;
  if (pixels instanceof Float32Array) {
    if (pixels.length !== n * per) {
      throw new Error(`${fn}: pixels holds ${pixels.length} values, expected ${n} images x ${size}x${size}x3 = ${n * per}`);
    }
    return (start, end) => tf.tensor4d(pixels.subarray(start * per, end * per), [end - start, size, size, 3], "float32");
  }
  if (pixels instanceof tf.Tensor) {
    if (pixels.rank !== 4 || pixels.shape[0] !== n) {
      throw new Error(`${fn}: pixels has shape ${fmtShape(pixels)}, expected [${n}, ${size}, ${size}, 3] (one image per label)`);
    }
    return (start, end) => tf.slice(pixels as tf.Tensor4D, [start, 0, 0, 0], [end - start, -1, -1, -1]);
  }
  if (typeof pixels === "function") {
    return (start, end) => {
      const batch = pixels(start, end);
      if (!(batch instanceof tf.Tensor)) throw new TypeError(`${fn}: pixels(${start}, ${end}) did not return a tf.Tensor4D`);
      if (batch.rank !== 4 || batch.shape[0] !== end - start) {
        const shape = fmtShape(batch);
        batch.dispose();
        throw new Error(`${fn}: pixels(${start}, ${end}) returned shape ${shape}, expected [${end - start}, ${size}, ${size}, 3]`);
      }
      return batch;
    };
  }
  throw new TypeError(`${fn}: pixels must be a Float32Array, a tf.Tensor4D or a function (start, end) => tf.Tensor4D`);
}
