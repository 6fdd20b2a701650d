/**
 * Zero-shot evaluation of a CLIP on any dataset, as CLIP_benchmark runs it
 * (https://github.com/LAION-AI/CLIP_benchmark): classification (CLIP's prompt-ensembled zero-shot
 * classifier, Radford et al. 2021, https://arxiv.org/abs/2103.00020 §3.1.4) on a labelled source,
 * retrieval on a captioned one; the task defaults to what the source has.
 *
 * Images stream through the pipeline and the batched encoder (nothing but the features is kept);
 * texts are the images' own captions, or one generated per image (seeded) when they have none.
 */
import * as tf from "@tensorflow/tfjs";
import type { Dataset, SkippedItem, Shard } from "../data/dataset";
import { preparedStream } from "../data/stream";
import type { ImageTransform } from "../image/transform";
import type { EmbeddingEngine } from "../engine/engine";
import { classificationBenchmarkMetrics, retrievalBenchmarkMetrics, BENCHMARK_TASKS, type BenchmarkTask } from "./benchmark";
import { encodeImages, encodeTexts, encodeTextsWith, type EncodeProgress, type EncodedImages, type FeatureMatrix } from "./encode";
import { classifierFromWeights, ensembleWeights, zeroShotClassifier, type ZeroShotClassifier, type ZeroShotEvaluation, type ZeroShotModel } from "./zero_shot";
import { fillPrompt } from "../text/fill";
import { checkPromptsFit, checkTemplates } from "../text/templates";

/** CLIP's plain prompt: the template when neither the caller nor the source gives any. */
export const PLAIN_TEMPLATES: readonly string[] = Object.freeze(["a photo of a {}."]);

export interface DatasetEvalOptions {
  transform: ImageTransform;
  /** Default: what the source has (classification if it has labels, else retrieval). */
  task?: BenchmarkTask;
  /** Default: the dataset's. */
  classNames?: readonly string[];
  /** Default: the dataset's templates, else PLAIN_TEMPLATES. */
  templates?: readonly string[];
  limit?: number;
  shard?: Shard;
  skipBadImages?: boolean;
  onSkip?: (s: SkippedItem) => void;
  onProgress?: (p: EncodeProgress) => void;
  /** Seed of generated captions; default 0. */
  seed?: number;
  /** Encode the images and texts on this engine (e.g. onnxruntime) instead of the model's tfjs towers. */
  engine?: EmbeddingEngine;
}

export interface DatasetEvaluation {
  task: BenchmarkTask;
  /** CLIP_benchmark's metric names. */
  metrics: Record<string, number>;
  classification?: ZeroShotEvaluation;
  images: number;
  texts: number;
  classNames?: readonly string[];
  templates?: readonly string[];
  /** Image and text features, for callers that go on (reports, maps). */
  imageFeatures: EncodedImages;
  textFeatures?: FeatureMatrix;
}

/** The task a dataset supports by default, or a one-line error when it supports none. */
export function defaultTask(ds: Dataset): BenchmarkTask {
  if (ds.hasLabels && ds.classNames?.length) return "zeroshot_classification";
  if (ds.hasCaptions || ds.captioner) return "zeroshot_retrieval";
  throw new RangeError(`${ds.spec}: has neither labels nor captions, so there is nothing to evaluate zero-shot`);
}

export async function evaluateDataset(model: ZeroShotModel, ds: Dataset, opts: DatasetEvalOptions): Promise<DatasetEvaluation> {
  const task = opts.task ?? defaultTask(ds);
  if (!BENCHMARK_TASKS.includes(task)) throw new RangeError(`task must be one of ${BENCHMARK_TASKS.join(", ")}, got ${JSON.stringify(task)}`);
  const classNames = opts.classNames ?? ds.classNames;
  if (task === "zeroshot_classification") {
    if (!ds.hasLabels) throw new RangeError(`${ds.spec}: has no labels, so zero-shot classification is impossible; use the retrieval task (zeroshot_retrieval)`);
    if (!classNames || classNames.length === 0) throw new RangeError(`${ds.spec}: has no class names; pass --classnames FILE`);
  }
  const retrieval = task === "zeroshot_retrieval";
  const engine = opts.engine && opts.engine.name !== "tfjs" ? opts.engine : undefined;
  const images = await encodeImages(
    engine ?? model,
    preparedStream(ds, opts.transform, { limit: opts.limit, shard: opts.shard, skipBadImages: opts.skipBadImages, onSkip: opts.onSkip, captionSeed: retrieval ? (opts.seed ?? 0) : undefined }),
    { mean: opts.transform.mean, std: opts.transform.std, onProgress: opts.onProgress, total: opts.limit ?? ds.size },
  );
  if (!retrieval) {
    const templates = opts.templates ?? ds.templates ?? PLAIN_TEMPLATES;
    const missing = images.labels.indexOf(-1);
    if (missing >= 0) throw new RangeError(`${images.keys[missing]}: has no label, but zero-shot classification needs one for every image`);
    const classifier = engine ? await engineClassifier(model, engine, classNames!, templates) : zeroShotClassifier(model, classNames!, templates);
    let e: ZeroShotEvaluation;
    try {
      e = classifier.evaluateFeatures(images, images.labels);
    } finally {
      classifier.dispose();
    }
    return { task, metrics: classificationBenchmarkMetrics(e), classification: e, images: images.n, texts: classNames!.length * templates.length, classNames, templates, imageFeatures: images };
  }
  const texts: string[] = [];
  const textImage: number[] = [];
  images.captions.forEach((list, i) => {
    for (const c of list) {
      texts.push(c);
      textImage.push(i);
    }
  });
  if (texts.length === 0) throw new RangeError(`${ds.spec}: no captions to retrieve`);
  const textFeatures = engine ? await encodeTextsWith(engine, texts, { onProgress: opts.onProgress }) : encodeTexts(model, texts, { onProgress: opts.onProgress });
  const metrics = retrievalBenchmarkMetrics(images, textFeatures, Int32Array.from(textImage));
  return { task, metrics, images: images.n, texts: texts.length, imageFeatures: images, textFeatures };
}

/** zeroShotClassifier's class weights (prompt ensembles) with the prompts encoded on `engine`, so both towers are the engine's. */
async function engineClassifier(model: ZeroShotModel, engine: EmbeddingEngine, classNames: readonly string[], templates: readonly string[]): Promise<ZeroShotClassifier> {
  const fn = "evaluateDataset";
  checkTemplates(templates, fn, { allowDuplicates: true });
  checkPromptsFit(classNames, templates, engine.contextLength, fn);
  const prompts = classNames.flatMap((name) => templates.map((t) => fillPrompt(t, name)));
  const f = await encodeTextsWith(engine, prompts, { batchSize: 16 }); // [C * P, D]
  const weights = tf.tidy(() => ensembleWeights(tf.tensor3d(f.values, [classNames.length, templates.length, f.dim]))); // [C, D]
  try {
    return classifierFromWeights(model, weights, { classNames });
  } finally {
    weights.dispose();
  }
}
