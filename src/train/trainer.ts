/**
 * Training a CLIP from scratch, or fine-tuning one from a checkpoint (`init`), on any dataset with
 * its captions or captions generated from its class names, open_clip style: AdamW, warm-up then
 * cosine / constant / constant-with-cooldown, gradient clipping, the temperature clamp, locked
 * towers, gradient accumulation with feature caching, gradient checkpointing, evaluation after
 * every epoch (CLIP_benchmark's metric names), checkpoints that resume exactly.
 * CLIP: https://arxiv.org/abs/2103.00020; open_clip: https://github.com/mlfoundations/open_clip
 */
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../model/clip";
import { Batcher, type Batch } from "../data/batcher";
import { CaptionSet } from "../data/captions";
import { loadFashionMnist, type LabelledImages } from "../data/fashion_mnist";
import { DatasetBatcher } from "../data/dataset_batcher";
import { DataError, type Dataset, type SkippedItem } from "../data/dataset";
import { isFashionMnist } from "../data/sources/fashion_mnist";
import type { AugmentationCfg } from "../image/augment";
import { modelTransform } from "../model/config";
import { assertTrainingFits, trainingNeedsCheckpointing } from "../model/memory";
import { presetNameOf } from "../model/registry";
import { tokenizeToIds, packTokens } from "../text/tokenize";

export { packTokens };
import { learningRate } from "./schedule";
import { lockPlan } from "./lock";
import { initialModel } from "./init";
import { ClipOptimizer, NonFiniteLossError, trainStep } from "./step";
import { TrainOptions, resolveTrainOptions } from "./options";
import { EvalResult, evaluateClip, evaluateOnDataset } from "./evaluate";

/** `--augment` on a source other than Fashion-MNIST: open_clip's defaults (RandomResizedCrop, scale 0.9-1). */
const OPEN_CLIP_AUGMENTATION: AugmentationCfg = {};

/** What the result says when there is no validation data. */
const NO_EVAL: EvalResult = {
  zeroShotTop1: NaN,
  zeroShotTop5: NaN,
  perClass: [],
  confusion: [],
  recallAt1: { imageToText: NaN, textToImage: NaN },
  recallAt5: { imageToText: NaN, textToImage: NaN },
  images: 0,
  metrics: {},
};
import {
  BenchmarkEvalRecord,
  MODEL_FILE,
  StepRecord,
  loadRunCheckpoint,
  readStepRecords,
  saveRunCheckpoint,
  writeEvalRecords,
  writeStepRecords,
} from "./run_state";

export interface StepEvent extends StepRecord {
  stepsPerEpoch: number;
  totalSteps: number;
  /** Image-text pairs per second over this process's steps so far. */
  pairsPerSecond: number;
}

export interface EpochEvent {
  epoch: number;
  step: number;
  eval: EvalResult;
  trainSeconds: number;
}

export interface TrainCallbacks {
  /** `params`: the model's parameters; `trainedParams`: those the optimizer updates (fewer with locked towers). */
  /** `gradCheckpointing`: whether it is on, and "auto" when the trainer turned it on to fit the memory. */
  onStart?(info: { totalSteps: number; stepsPerEpoch: number; startStep: number; params: number; trainedParams: number; model: Clip; gradCheckpointing: boolean | "auto" }): void;
  onStep?(event: StepEvent): void;
  onEpochEnd?(event: EpochEvent): void;
  onCheckpoint?(file: string, step: number): void;
}

export interface TrainResult {
  steps: number;
  epochs: number;
  pairsPerSecond: number;
  /** Seconds spent in training steps (this process), excluding evaluation and checkpoints. */
  trainSeconds: number;
  wallSeconds: number;
  finalLoss: number;
  checkpoint: string | null;
  zeroShotTop1: number;
  final: EvalResult;
  /** Why the loop ended. */
  stopped: "completed" | "maxSteps" | "timeLimit" | "stopAfterSteps";
  history: StepRecord[];
  /** One per evaluation: our fields, and CLIP_benchmark's names in `metrics`. */
  evals: BenchmarkEvalRecord[];
}

function allFinite(clip: Clip): boolean {
  return tf.tidy(() => {
    const flags = [...clip.params.values()].map((p) => tf.all(tf.isFinite(p)));
    return tf.all(tf.stack(flags)).dataSync()[0] === 1;
  });
}

export class TrainingDivergedError extends Error {
  override name = "TrainingDivergedError";
}

export interface TrainData {
  /**
   * Training data: any random-access dataset (image folders, CSV, Parquet, Arrow); Fashion-MNIST
   * (its dataset or its in-memory split) takes the in-memory path the default recipe is measured on.
   * Default: Fashion-MNIST's training split from `dataDir`.
   */
  train?: Dataset | LabelledImages;
  /** Evaluated after every epoch and at the end; default Fashion-MNIST's test split when training on Fashion-MNIST, else none. */
  val?: Dataset | LabelledImages;
  /** The old name of `val` (a Fashion-MNIST split). */
  test?: LabelledImages;
  captions?: CaptionSet;
  /** Adds a term to every step's loss; it gets the features and the batch they came from. */
  regularizer?: (imageFeatures: tf.Tensor2D, textFeatures: tf.Tensor2D, batch: Batch) => tf.Scalar;
  /** Go on past unreadable images (reported through onSkip), instead of stopping at the first. */
  skipBadImages?: boolean;
  onSkip?: (s: SkippedItem) => void;
}

function isLabelledImages(x: unknown): x is LabelledImages {
  return typeof x === "object" && x !== null && (x as LabelledImages).images instanceof Uint8Array && typeof (x as Dataset).items !== "function";
}

/** The in-memory split behind Fashion-MNIST data, or null for other sources. */
function inMemory(x: Dataset | LabelledImages | undefined): LabelledImages | null {
  if (x === undefined) return null;
  if (isLabelledImages(x)) return x;
  return isFashionMnist(x) ? x.labelled : null;
}

/** Trains and returns the model alongside the result; the caller disposes `model`. */
export async function trainClip(
  input: Partial<TrainOptions>,
  callbacks: TrainCallbacks = {},
  data?: TrainData,
): Promise<TrainResult & { model: Clip }> {
  const opts = resolveTrainOptions(input);
  const wallStart = performance.now();
  const captions = data?.captions ?? CaptionSet.load();
  // Fashion-MNIST runs from memory (exactly the batches the recipe was measured with); any other
  // source streams through the pipeline.
  const trainSource = data?.train ?? loadFashionMnist("train", { dataDir: opts.dataDir, limit: opts.trainLimit });
  const trainMemory = inMemory(trainSource);
  const valSource = data?.val ?? data?.test ?? (trainMemory ? loadFashionMnist("test", { dataDir: opts.dataDir }) : undefined);
  const valMemory = inMemory(valSource);
  let clip: Clip;
  let startStep = 0;
  let restore: ((o: ClipOptimizer) => void) | undefined;
  let history: StepRecord[] = [];
  if (opts.resume) {
    const loaded = await loadRunCheckpoint(opts.outDir!, opts);
    clip = loaded.clip;
    startStep = loaded.step;
    restore = loaded.restore;
    history = readStepRecords(opts.outDir!).filter((r) => r.step < startStep);
  } else {
    clip = opts.init ? await initialModel(opts.init, input.model) : Clip.create(opts.model, { seed: opts.seed });
  }
  // Refused here, before the optimizer exists, when the run will not fit in memory (one line);
  // "auto" checkpointing is decided by the same estimate.
  const gradCheckpointing = opts.gradCheckpointing === "auto" ? trainingNeedsCheckpointing(clip.config, { ...opts, gradCheckpointing: false }, { modelLoaded: true }) : opts.gradCheckpointing;
  try {
    assertTrainingFits(clip.config, { ...opts, gradCheckpointing }, presetNameOf(clip.config) ?? "this model", { modelLoaded: true });
  } catch (err) {
    clip.dispose();
    throw err;
  }
  let batcher: Batcher | DatasetBatcher | undefined;
  let plan;
  try {
    plan = { lock: lockPlan(clip.config, opts), gradCheckpointing };
  } catch (err) {
    clip.dispose();
    throw err;
  }
  const optimizer = new ClipOptimizer(clip, opts.loss, { beta1: opts.beta1, beta2: opts.beta2, eps: opts.eps, weightDecay: opts.weightDecay }, plan);
  try {
    restore?.(optimizer);
    const size = clip.config.vision_cfg.image_size;
    const ctx = clip.config.text_cfg.context_length;
    // One optimizer step reads accumFreq micro-batches of batchSize (open_clip's --accum-freq).
    const stepBatch = opts.batchSize * opts.accumFreq;
    batcher = trainMemory
      ? new Batcher(trainMemory, { batchSize: stepBatch, seed: opts.seed, imageSize: size, augment: opts.augment ?? undefined, captions })
      : new DatasetBatcher(trainSource as Dataset, {
          batchSize: stepBatch,
          seed: opts.seed,
          transform: modelTransform(clip.config),
          augment: opts.augment ? OPEN_CLIP_AUGMENTATION : null,
          skipBadImages: data?.skipBadImages,
          onSkip: data?.onSkip,
        });
    const stepsPerEpoch = batcher.stepsPerEpoch;
    const totalSteps = Math.min(opts.epochs * stepsPerEpoch, opts.maxSteps ?? Infinity);
    const schedule = {
      scheduler: opts.lrScheduler,
      baseLr: opts.lr,
      warmupSteps: Math.min(opts.warmupSteps, totalSteps),
      totalSteps,
      cooldownSteps: opts.epochsCooldown === undefined ? undefined : Math.min(totalSteps, opts.epochsCooldown * stepsPerEpoch),
      cooldownPower: opts.lrCooldownPower,
      cooldownEnd: opts.lrCooldownEnd,
    };
    const trainedParams = optimizer.params.filter((p) => p.name !== "logit_bias").reduce((n, p) => n + p.variable.size, 0);
    const checkpointingInfo = gradCheckpointing && opts.gradCheckpointing === "auto" ? "auto" : gradCheckpointing;
    callbacks.onStart?.({ totalSteps, stepsPerEpoch, startStep, params: clip.numParams(), trainedParams, model: clip, gradCheckpointing: checkpointingInfo });

    const evals: BenchmarkEvalRecord[] = [];
    let trainSeconds = 0;
    let stepsThisRun = 0;
    let pairsThisRun = 0;
    let checkpoint: string | null = null;
    let checkpointStep = startStep;
    let stopped: TrainResult["stopped"] = totalSteps < opts.epochs * stepsPerEpoch ? "maxSteps" : "completed";
    const save = async (step: number) => {
      if (!opts.outDir) return;
      // Never replace the last good checkpoint with weights that have blown up.
      if (!allFinite(clip)) {
        throw new TrainingDivergedError(
          `training diverged by step ${step - 1}: weights are not finite; ${checkpoint ? `last good checkpoint: ${checkpoint}` : "no checkpoint was written"}`,
        );
      }
      checkpoint = await saveRunCheckpoint(opts.outDir, optimizer, opts, { step });
      checkpointStep = step;
      writeStepRecords(opts.outDir, history);
      if (evals.length) writeEvalRecords(opts.outDir, evals);
      callbacks.onCheckpoint?.(checkpoint, step);
    };
    const evalOpts = (limit: number) => ({ zeroShotLimit: limit, retrievalLimit: opts.retrievalLimit, seed: opts.seed + 1 });
    const evaluate = async (limit: number): Promise<EvalResult> => {
      if (valMemory) return evaluateClip(clip, valMemory, captions, evalOpts(limit));
      if (valSource) return evaluateOnDataset(clip, valSource as Dataset, { ...evalOpts(limit), skipBadImages: data?.skipBadImages, onSkip: data?.onSkip });
      return NO_EVAL;
    };
    const recordEval = (epoch: number, step: number, r: EvalResult) => {
      evals.push({
        epoch,
        step,
        zeroShotTop1: r.zeroShotTop1,
        zeroShotTop5: r.zeroShotTop5,
        recallAt1ImageToText: r.recallAt1.imageToText,
        recallAt1TextToImage: r.recallAt1.textToImage,
        recallAt5ImageToText: r.recallAt5.imageToText,
        recallAt5TextToImage: r.recallAt5.textToImage,
        trainSeconds,
        metrics: r.metrics,
      });
    };

    let step = startStep;
    while (step < totalSteps) {
      const epoch = Math.floor(step / stepsPerEpoch);
      let batch: Batch;
      try {
        batch = await batcher.batchAt(epoch, step % stepsPerEpoch);
      } catch (err) {
        // An unreadable image (without skipBadImages): the data layer's one-line error, plus where training can resume from.
        if (err instanceof DataError) {
          const where = checkpoint ?? (opts.resume ? path.join(opts.outDir!, MODEL_FILE) : null);
          throw new DataError(err.where, `${err.message.slice(err.where.length + 2)}; ${where ? `last good checkpoint: ${where} (step ${checkpointStep})` : "no checkpoint was written"}`);
        }
        throw err;
      }
      // The pipeline's workers decode the next batch while this step trains.
      if (batcher instanceof DatasetBatcher && step + 1 < totalSteps) batcher.prefetch(epoch, (step % stepsPerEpoch) + 1);
      const { ids: flat, length } = packTokens(tokenizeToIds(batch.captions, { contextLength: ctx, truncate: true }));
      const lr = learningRate(step, schedule);
      const t0 = performance.now();
      const pixels = tf.tensor4d(batch.pixels, [batch.size, size, size, 3]);
      const tokens = tf.tensor2d(flat, [batch.size, length], "int32");
      let result;
      try {
        const regularizer = data?.regularizer;
        // A short batch (skipped images) splits into as many micro-batches as it has images, at most.
        const accum = Math.min(opts.accumFreq, batch.size);
        result = trainStep(optimizer, pixels, tokens, lr, opts.gradClipNorm, regularizer && ((img, txt) => regularizer(img, txt, batch)), accum);
      } catch (err) {
        if (err instanceof NonFiniteLossError) {
          const where = checkpoint ?? (opts.resume ? `${opts.outDir}/model.safetensors` : null);
          throw new TrainingDivergedError(
            `training diverged at step ${step} (epoch ${epoch}): ${err.message}; ${where ? `last good checkpoint: ${where}` : "no checkpoint was written"}`,
          );
        }
        throw err;
      } finally {
        tf.dispose([pixels, tokens]);
      }
      const seconds = (performance.now() - t0) / 1000;
      trainSeconds += seconds;
      stepsThisRun += 1;
      pairsThisRun += batch.size;
      step += 1;
      const record: StepRecord = { step: step - 1, epoch, loss: result.loss, lr, logitScale: clip.logitScale.dataSync()[0], gradNorm: result.gradNorm, seconds };
      history.push(record);
      callbacks.onStep?.({ ...record, stepsPerEpoch, totalSteps, pairsPerSecond: pairsThisRun / trainSeconds });

      const endOfEpoch = step % stepsPerEpoch === 0 && step < totalSteps;
      if (endOfEpoch) {
        const r = await evaluate(opts.evalLimit);
        recordEval(epoch, step, r);
        callbacks.onEpochEnd?.({ epoch, step, eval: r, trainSeconds });
        await save(step);
      } else if (opts.checkpointEvery && step % opts.checkpointEvery === 0) {
        await save(step);
      }
      if (opts.stopAfterSteps && stepsThisRun >= opts.stopAfterSteps && step < totalSteps) {
        stopped = "stopAfterSteps";
        if (!endOfEpoch) await save(step);
        break;
      }
      if (opts.timeLimitSeconds !== undefined && trainSeconds >= opts.timeLimitSeconds && step < totalSteps) {
        stopped = "timeLimit";
        break;
      }
    }

    const final = await evaluate(opts.finalEvalLimit);
    const lastEpoch = Math.floor((step - 1) / stepsPerEpoch);
    recordEval(lastEpoch, step, final);
    if (stopped !== "stopAfterSteps") {
      callbacks.onEpochEnd?.({ epoch: lastEpoch, step, eval: final, trainSeconds });
      await save(step);
    }
    const last = history[history.length - 1];
    return {
      model: clip,
      steps: step,
      epochs: step / stepsPerEpoch,
      pairsPerSecond: stepsThisRun ? pairsThisRun / trainSeconds : 0,
      trainSeconds,
      wallSeconds: (performance.now() - wallStart) / 1000,
      finalLoss: last ? last.loss : NaN,
      checkpoint,
      zeroShotTop1: final.zeroShotTop1,
      final,
      stopped,
      history,
      evals,
    };
  } catch (err) {
    clip.dispose();
    throw err;
  } finally {
    optimizer.dispose();
    if (batcher instanceof DatasetBatcher) await batcher.close();
  }
}
