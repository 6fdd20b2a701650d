/**
 * What the pipeline report measures, from ONE pass over a dataset: its images stream through the
 * data pipeline and the batched encoder (src/eval/encode.ts) once; the first `keep` model inputs
 * are kept (for thumbnails, retrieval, the map and a second model), with their paired captions
 * (their own, or one generated per image, seeded by (seed, index)); where the source has labels,
 * the first `zeroShot.limit` image features are classified zero-shot (CLIP, Radford et al. 2021,
 * https://arxiv.org/abs/2103.00020 §3.1.4) and the class embeddings are returned for the map.
 * Nothing here prints; progress and skipped items go out through callbacks.
 */
import * as tf from "@tensorflow/tfjs";
import type { Dataset, SkippedItem } from "../data/dataset";
import type { PreparedImage } from "../data/prepared";
import { DEFAULT_PREPARED_CEILING } from "../data/prepared";
import { expectedItems, preparedStream } from "../data/stream";
import type { ImageTransform } from "../image/transform";
import { encodeImages, encodeTexts, type EncodeProgress, type FeatureMatrix, type ImageFeatureModel, type TextFeatureModel } from "../eval/encode";
import { classificationBenchmarkMetrics, retrievalBenchmarkMetrics } from "../eval/benchmark";
import { retrievalMetrics, type RetrievalMetrics } from "../eval/retrieval";
import { modalityGap } from "../eval/modality_gap";
import { zeroShotClassifier, type ZeroShotEvaluation, type ZeroShotModel } from "../eval/zero_shot";
import { l2NormalizeRows } from "../util/tensor";

export interface MeasureOptions {
  transform: ImageTransform;
  /** Images kept as model inputs, with their captions and features (retrieval, the map, the gap). */
  keep: number;
  /** Zero-shot classification of the first `limit` images (the source must have labels). */
  zeroShot?: { classNames: readonly string[]; templates: readonly string[]; limit: number };
  /** Seed of the captions generated for images without their own. */
  captionSeed: number;
  skipBadImages?: boolean;
  onSkip?: (s: SkippedItem) => void;
  onProgress?: (p: EncodeProgress) => void;
  /** Bytes the kept model inputs may take; default DEFAULT_PREPARED_CEILING (2 GiB). */
  ceilingBytes?: number;
}

export interface ZeroShotMeasure {
  evaluation: ZeroShotEvaluation;
  /** CLIP_benchmark's names: acc1, acc5, mean_per_class_recall. */
  metrics: Record<string, number>;
  /** Unit-norm class embeddings [C, D] of the classifier. */
  classWeights: FeatureMatrix;
}

export interface ReportMeasures {
  /** The first images read, as model inputs (uint8 RGB [S, S, 3] each) with their paired captions. */
  kept: PreparedImage[];
  /** Their features [kept.length, D] (unnormalised). */
  imageFeatures: FeatureMatrix;
  /** Every caption of the kept images, image by image, and the image each belongs to. */
  texts: string[];
  textImage: Int32Array;
  textFeatures: FeatureMatrix;
  /** True when the captions are the source's own (false: generated). */
  ownCaptions: boolean;
  /** Images read in all (the zero-shot ones). */
  imagesRead: number;
  zeroShot?: ZeroShotMeasure;
}

/** The first `n` rows of a feature matrix (a view). */
export function headRows(f: FeatureMatrix, n: number): FeatureMatrix {
  const k = Math.min(n, f.n);
  return { values: f.values.subarray(0, k * f.dim), n: k, dim: f.dim };
}

/** How many of `textImage`'s texts belong to images [0, images) (texts come image by image). */
export function textsOfFirst(textImage: Int32Array, images: number): number {
  let j = 0;
  while (j < textImage.length && textImage[j] < images) j++;
  return j;
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const it of items) yield it;
}

/** Passes items through, copying the first `n` into `kept`. */
async function* keepFirst(items: AsyncIterable<PreparedImage>, n: number, kept: PreparedImage[]): AsyncGenerator<PreparedImage> {
  for await (const it of items) {
    if (kept.length < n) kept.push({ ...it, pixels: it.pixels.slice() });
    yield it;
  }
}

/** The captions of images, flattened, with the image index of each. */
function flattenCaptions(items: readonly PreparedImage[]): { texts: string[]; textImage: Int32Array } {
  const texts: string[] = [];
  const owner: number[] = [];
  items.forEach((it, i) => {
    if (it.captions.length === 0) throw new RangeError(`${it.key}: has no caption to pair with`);
    for (const c of it.captions) {
      texts.push(c);
      owner.push(i);
    }
  });
  return { texts, textImage: Int32Array.from(owner) };
}

/** Reads the dataset once and measures what the report shows (see the file's comment). */
export async function measureDataset(model: ZeroShotModel, ds: Dataset, opts: MeasureOptions): Promise<ReportMeasures> {
  const per = opts.transform.size * opts.transform.size * 3;
  const ceiling = opts.ceilingBytes ?? DEFAULT_PREPARED_CEILING;
  if (opts.keep * per > ceiling) {
    throw new RangeError(
      `keeping ${opts.keep} images at ${opts.transform.size}x${opts.transform.size} for the map and retrieval needs ${(opts.keep * per / 2 ** 30).toFixed(2)} GiB, over the ${(ceiling / 2 ** 30).toFixed(2)} GiB ceiling; use fewer --points`,
    );
  }
  const limit = Math.max(opts.keep, opts.zeroShot?.limit ?? 0);
  const kept: PreparedImage[] = [];
  const stream = preparedStream(ds, opts.transform, { limit, skipBadImages: opts.skipBadImages, onSkip: opts.onSkip, captionSeed: opts.captionSeed });
  const all = await encodeImages(model, keepFirst(stream, opts.keep, kept), {
    mean: opts.transform.mean,
    std: opts.transform.std,
    onProgress: opts.onProgress,
    total: expectedItems(ds, { limit }),
  });

  let zeroShot: ZeroShotMeasure | undefined;
  if (opts.zeroShot) {
    const n = Math.min(opts.zeroShot.limit, all.n);
    const labels = all.labels.subarray(0, n);
    const missing = labels.indexOf(-1);
    if (missing >= 0) throw new RangeError(`${all.keys[missing]}: has no label, but zero-shot classification needs one for every image`);
    const classifier = zeroShotClassifier(model, opts.zeroShot.classNames, opts.zeroShot.templates);
    try {
      const evaluation = classifier.evaluateFeatures(headRows(all, n), labels);
      const [c, dim] = classifier.weights.shape;
      zeroShot = { evaluation, metrics: classificationBenchmarkMetrics(evaluation), classWeights: { values: Float32Array.from(classifier.weights.dataSync()), n: c, dim } };
    } finally {
      classifier.dispose();
    }
  }

  const { texts, textImage } = flattenCaptions(kept);
  const textFeatures = encodeTexts(model, texts, { onProgress: opts.onProgress });
  return {
    kept,
    imageFeatures: headRows(all, kept.length),
    texts,
    textImage,
    textFeatures,
    ownCaptions: ds.hasCaptions,
    imagesRead: all.n,
    zeroShot,
  };
}

/** Features of kept images and their captions through another model (the freshly initialised one). */
export async function encodePairs(
  model: ImageFeatureModel & TextFeatureModel,
  kept: readonly PreparedImage[],
  texts: readonly string[],
  transform: ImageTransform,
): Promise<{ images: FeatureMatrix; texts: FeatureMatrix }> {
  const images = await encodeImages(model, fromArray(kept), { mean: transform.mean, std: transform.std });
  return { images, texts: encodeTexts(model, texts) };
}

function toTensor(f: FeatureMatrix): tf.Tensor2D {
  return tf.tensor2d(f.values, [f.n, f.dim], "float32"); // [n, D]
}

export interface PairStats {
  /** ||mean(norm(img)) - mean(norm(txt))|| (Liang et al. 2022, https://arxiv.org/abs/2203.02053). */
  gap: number;
  /** Mean cosine of each caption with its own image. */
  matchingCosine: number;
  /** Mean cosine of each caption with the other images. */
  otherCosine: number;
}

/** Modality gap and mean cosines of matching and other pairs; text j belongs to image textImage[j]. */
export function pairStats(images: FeatureMatrix, texts: FeatureMatrix, textImage: Int32Array): PairStats {
  const img = toTensor(images);
  const txt = toTensor(texts);
  try {
    const gap = modalityGap(img, txt);
    const [diag, total] = tf.tidy(() => {
      const a = l2NormalizeRows(img); // [n, D]
      const b = l2NormalizeRows(txt); // [t, D]
      const own = tf.gather(a, tf.tensor1d(textImage, "int32")); // [t, D]
      const d = tf.sum(tf.mul(own, b)); // sum of matching cosines
      const all = tf.sum(tf.mul(tf.sum(a, 0), tf.sum(b, 0))); // sum of all cosines
      return [d.dataSync()[0], all.dataSync()[0]];
    });
    const others = images.n * texts.n - texts.n;
    return { gap, matchingCosine: diag / texts.n, otherCosine: others > 0 ? (total - diag) / others : NaN };
  } finally {
    tf.dispose([img, txt]);
  }
}

export interface RetrievalMeasure {
  /** R@1, R@5, R@10 and median ranks, both directions. */
  table: RetrievalMetrics;
  /** CLIP_benchmark's names: image_retrieval_recall@K, text_retrieval_recall@K. */
  metrics: Record<string, number>;
}

/** Retrieval between images and their captions (any of an image's captions is a hit). */
export function retrievalOf(images: FeatureMatrix, texts: FeatureMatrix, textImage: Int32Array): RetrievalMeasure {
  const perImage: number[][] = Array.from({ length: images.n }, () => []);
  textImage.forEach((i, j) => perImage[i].push(j));
  const img = toTensor(images);
  const txt = toTensor(texts);
  try {
    const table = retrievalMetrics(img, txt, [1, 5, 10], { imageToTextTargets: (i) => perImage[i], textToImageTargets: textImage });
    return { table, metrics: retrievalBenchmarkMetrics(images, texts, textImage) };
  } finally {
    tf.dispose([img, txt]);
  }
}

/** Cosine similarities [rows.length, cols.length] of chosen image rows and text rows. */
export function cosineTable(images: FeatureMatrix, rows: readonly number[], texts: FeatureMatrix, cols: readonly number[]): number[][] {
  const unit = (f: FeatureMatrix, r: number): Float64Array => {
    const v = Float64Array.from(f.values.subarray(r * f.dim, (r + 1) * f.dim));
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  const a = rows.map((r) => unit(images, r));
  const b = cols.map((c) => unit(texts, c));
  return a.map((u) => b.map((w) => u.reduce((s, x, d) => s + x * w[d], 0)));
}
