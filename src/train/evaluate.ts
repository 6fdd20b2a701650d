/**
 * Evaluation of a CLIP trained on labelled images: zero-shot top-1/top-5 with the evaluation
 * templates ensembled (CLIP paper §3.1.4, https://arxiv.org/abs/2103.00020), and image<->text
 * Recall@1/5 on test images paired with one generated caption each; the same figures also under
 * CLIP_benchmark's metric names (`metrics`: acc1, acc5, mean_per_class_recall where there are
 * classes; image_retrieval_recall@K, text_retrieval_recall@K, K = 1, 5, 10, where there are captions).
 */
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../model/clip";
import { Batcher } from "../data/batcher";
import { CaptionSet, imageAttributes } from "../data/captions";
import type { LabelledImages } from "../data/fashion_mnist";
import { zeroShotClassifier } from "../eval/zero_shot";
import { retrievalMetrics } from "../eval/retrieval";
import { RETRIEVAL_KS, classificationBenchmarkMetrics } from "../eval/benchmark";
import { encodePixels, encodeTexts } from "../eval/encode";
import { evaluateDataset } from "../eval/evaluate_dataset";
import type { Dataset, SkippedItem } from "../data/dataset";
import { modelTransform } from "../model/config";
import { tokenize } from "../text/tokenize";
import { Random } from "../util/random";

export interface EvalResult {
  zeroShotTop1: number;
  zeroShotTop5: number;
  perClass: number[];
  confusion: number[][];
  recallAt1: { imageToText: number; textToImage: number };
  recallAt5: { imageToText: number; textToImage: number };
  images: number;
  /** CLIP_benchmark's names of what was measured (see the file header); a measure the data cannot give is absent. */
  metrics: Record<string, number>;
}


export function evaluateClip(
  clip: Clip,
  test: LabelledImages,
  captions: CaptionSet,
  opts: { zeroShotLimit: number; retrievalLimit: number; seed: number },
): EvalResult {
  const n = Math.min(opts.zeroShotLimit, test.count);
  const imageBatcher = new Batcher(test, { batchSize: 1, seed: 0, imageSize: clip.config.vision_cfg.image_size, captions: null });
  const size = clip.config.vision_cfg.image_size;
  const pixelBatch = (start: number, end: number): tf.Tensor4D => {
    const idx = Int32Array.from({ length: end - start }, (_, i) => start + i);
    return tf.tensor4d(imageBatcher.pixelsFor(idx), [end - start, size, size, 3]);
  };
  const classNames = captions.spec.classes.map((c) => c.canonical);
  const classifier = zeroShotClassifier(clip, classNames, captions.spec.evalTemplates, {
    tokenizer: (texts) => tokenize(texts, { contextLength: clip.config.text_cfg.context_length, truncate: true }),
  });
  // The first max(n, m) images once: zero-shot reads n of them, retrieval m.
  const m = Math.min(opts.retrievalLimit, test.count);
  const images = encodePixels(clip, pixelBatch, Math.max(n, m));
  const rows = (k: number) => ({ values: images.values.subarray(0, k * images.dim), n: k, dim: images.dim });
  let zs;
  try {
    zs = classifier.evaluateFeatures(rows(n), Int32Array.from(test.labels.subarray(0, n)));
  } finally {
    classifier.dispose();
  }

  // Retrieval: each test image paired with one caption drawn like a training caption (seeded).
  const rng = new Random(opts.seed);
  const texts: string[] = [];
  for (let i = 0; i < m; i++) {
    const attrs = imageAttributes(test.images, test.height, test.width, i * test.height * test.width);
    texts.push(captions.captionForTraining(test.labels[i], attrs, rng));
  }
  const ctx = clip.config.text_cfg.context_length;
  const captionsOut = encodeTexts(clip, texts, { tokenizer: (t) => tokenize(t, { contextLength: ctx, truncate: true }) });
  const imageEmb = tf.tensor2d(rows(m).values, [m, images.dim]);
  const textEmb = tf.tensor2d(captionsOut.values, [captionsOut.n, captionsOut.dim]);
  let r;
  try {
    r = retrievalMetrics(imageEmb, textEmb, [...RETRIEVAL_KS]);
  } finally {
    tf.dispose([imageEmb, textEmb]);
  }
  const metrics: Record<string, number> = classificationBenchmarkMetrics(zs);
  for (const k of RETRIEVAL_KS) {
    metrics[`image_retrieval_recall@${k}`] = r.textToImage[`R@${k}`];
    metrics[`text_retrieval_recall@${k}`] = r.imageToText[`R@${k}`];
  }
  return {
    zeroShotTop1: zs.top1,
    zeroShotTop5: zs.top5,
    perClass: zs.perClass,
    confusion: zs.confusion,
    recallAt1: { imageToText: r.imageToText["R@1"], textToImage: r.textToImage["R@1"] },
    recallAt5: { imageToText: r.imageToText["R@5"], textToImage: r.textToImage["R@5"] },
    images: n,
    metrics,
  };
}

/**
 * The same measures on any dataset: zero-shot top-1/top-5 where it has labels (its templates, or
 * CLIP's plain prompt), and image<->text Recall@1/5 over its first `retrievalLimit` images with
 * their captions (their own, or one generated each); a measure the data cannot give is NaN.
 */
export async function evaluateOnDataset(
  clip: Clip,
  data: Dataset,
  opts: { zeroShotLimit: number; retrievalLimit: number; seed: number; skipBadImages?: boolean; onSkip?: (s: SkippedItem) => void },
): Promise<EvalResult> {
  const transform = modelTransform(clip.config);
  const read = { transform, skipBadImages: opts.skipBadImages, onSkip: opts.onSkip, seed: opts.seed };
  const out: EvalResult = {
    zeroShotTop1: NaN,
    zeroShotTop5: NaN,
    perClass: [],
    confusion: [],
    recallAt1: { imageToText: NaN, textToImage: NaN },
    recallAt5: { imageToText: NaN, textToImage: NaN },
    images: 0,
    metrics: {},
  };
  if (data.hasLabels && data.classNames?.length) {
    const c = await evaluateDataset(clip, data, { ...read, task: "zeroshot_classification", limit: opts.zeroShotLimit });
    const e = c.classification!;
    Object.assign(out, { zeroShotTop1: e.top1, zeroShotTop5: e.top5, perClass: e.perClass, confusion: e.confusion, images: e.n });
    Object.assign(out.metrics, c.metrics);
  }
  if (data.hasCaptions || data.captioner) {
    const r = await evaluateDataset(clip, data, { ...read, task: "zeroshot_retrieval", limit: opts.retrievalLimit });
    out.recallAt1 = { imageToText: r.metrics["text_retrieval_recall@1"], textToImage: r.metrics["image_retrieval_recall@1"] };
    out.recallAt5 = { imageToText: r.metrics["text_retrieval_recall@5"], textToImage: r.metrics["image_retrieval_recall@5"] };
    Object.assign(out.metrics, r.metrics);
    if (!out.images) out.images = r.images;
  }
  return out;
}
