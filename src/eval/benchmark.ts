/**
 * Results researchers can compare: CLIP_benchmark's result object
 * (https://github.com/LAION-AI/CLIP_benchmark, `clip_benchmark/cli.py`):
 *
 *   {"dataset", "model", "pretrained", "task", "metrics"}
 *
 * - `zeroshot_classification`: `acc1`, `acc5`, `mean_per_class_recall` (balanced accuracy);
 * - `zeroshot_retrieval`: `image_retrieval_recall@K` (text queries retrieving images) and
 *   `text_retrieval_recall@K` (image queries retrieving texts), K = 1, 5, 10; a hit when any
 *   positive (any of an image's captions, or a caption's one image) is in the top K.
 */
import * as tf from "@tensorflow/tfjs";
import type { FeatureMatrix } from "./encode";
import type { ZeroShotEvaluation } from "./zero_shot";
import { retrievalMetrics } from "./retrieval";

export const BENCHMARK_TASKS = ["zeroshot_classification", "zeroshot_retrieval"] as const;
export type BenchmarkTask = (typeof BENCHMARK_TASKS)[number];

export interface BenchmarkResult {
  dataset: string;
  model: string;
  pretrained: string;
  task: BenchmarkTask;
  metrics: Record<string, number>;
}

export const RETRIEVAL_KS = [1, 5, 10] as const;

/** CLIP_benchmark's classification metrics of a zero-shot evaluation. */
export function classificationBenchmarkMetrics(e: ZeroShotEvaluation): Record<string, number> {
  return { acc1: e.top1, acc5: e.top5, mean_per_class_recall: e.meanPerClass };
}

/**
 * Retrieval metrics over images and texts, where text j belongs to image `textImage[j]` (so an
 * image with several captions has several positives). Features need not be normalised.
 */
export function retrievalBenchmarkMetrics(
  images: FeatureMatrix,
  texts: FeatureMatrix,
  textImage: Int32Array,
  ks: readonly number[] = RETRIEVAL_KS,
): Record<string, number> {
  if (textImage.length !== texts.n) throw new Error(`retrievalBenchmarkMetrics: ${textImage.length} text-to-image links for ${texts.n} texts`);
  const perImage: number[][] = Array.from({ length: images.n }, () => []);
  textImage.forEach((img, j) => {
    if (!(img >= 0 && img < images.n)) throw new RangeError(`retrievalBenchmarkMetrics: text ${j} links to image ${img}, outside [0, ${images.n})`);
    perImage[img].push(j);
  });
  const imageEmb = tf.tensor2d(images.values, [images.n, images.dim], "float32");
  const textEmb = tf.tensor2d(texts.values, [texts.n, texts.dim], "float32");
  try {
    const r = retrievalMetrics(imageEmb, textEmb, [...ks], { imageToTextTargets: (i) => perImage[i], textToImageTargets: textImage });
    const metrics: Record<string, number> = {};
    for (const k of ks) {
      metrics[`image_retrieval_recall@${k}`] = r.textToImage[`R@${k}`];
      metrics[`text_retrieval_recall@${k}`] = r.imageToText[`R@${k}`];
    }
    return metrics;
  } finally {
    tf.dispose([imageEmb, textEmb]);
  }
}
