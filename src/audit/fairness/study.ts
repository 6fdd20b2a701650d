/**
 * The planted-bias study: train a CLIP on data with a planted bias of strength rho (./planted_bias.ts),
 * optionally with a remedy (./remedies.ts), then audit it (./audit.ts). The notebook and the
 * report call these; each training run is seeded and returns its model (the caller disposes it).
 */
import * as tf from "@tensorflow/tfjs";
import type { Clip } from "../../model/clip";
import { trainClip, type TrainCallbacks } from "../../train/trainer";
import type { TrainOptions } from "../../train/options";
import type { Dataset } from "../../data/dataset";
import type { LabelledImages } from "../../data/fashion_mnist";
import { isFashionMnist } from "../../data/sources/fashion_mnist";
import { CaptionSet } from "../../data/captions";
import { FRAMED, plantBias, type PlantedBiasOptions, type ResolvedPlantedBias } from "./planted_bias";
import { runFairnessAudit, type AuditModel, type FairnessAuditOptions, type FairnessAuditResult } from "./audit";
import type { Estimate } from "../../eval/intervals";
import { balancedResample, groupInvarianceRegularizer } from "./remedies";
import { wordProbeOptions, wordSpuriousDirection, wordSpuriousPairs } from "./word_probes";

export type TrainingRemedy = "none" | "resample" | "regularizer";
export const TRAINING_REMEDIES: readonly TrainingRemedy[] = ["none", "resample", "regularizer"];

export interface PlantedRunOptions {
  bias: PlantedBiasOptions;
  remedy?: TrainingRemedy;
  /** Multiplier of the group-invariance penalty (remedy "regularizer"); default 1. */
  regularizerWeight?: number;
  /** What the penalty applies to (see `groupInvarianceRegularizer`); default "logits". */
  regularizerTarget?: "logits" | "features";
  /** Training options (model, maxSteps, seed, ...); evaluation limits default small, as the audit measures. */
  train?: Partial<TrainOptions>;
}

export interface PlantedRun {
  model: Clip;
  bias: ResolvedPlantedBias;
  remedy: TrainingRemedy;
  steps: number;
  trainSeconds: number;
  wallSeconds: number;
  finalLoss: number;
}

/** The in-memory grey split of a Fashion-MNIST dataset (its first `limit` images), or a one-line error for any other source. */
function fashionMnistImages(fn: string, what: string, ds: Dataset, limit?: number): LabelledImages {
  if (!isFashionMnist(ds)) {
    throw new RangeError(`${fn}: ${what} must be Fashion-MNIST (openDataset("fashion-mnist")): the planted frame goes on its 28x28 grey training images; got ${ds.spec}`);
  }
  const all = ds.labelled;
  const n = Math.min(limit ?? all.count, all.count);
  if (n === all.count) return all;
  const px = all.height * all.width;
  return { ...all, images: all.images.subarray(0, n * px), labels: all.labels.subarray(0, n), count: n };
}

/**
 * Trains one model on the Fashion-MNIST `train` split (its first `opts.train.trainLimit` images)
 * with the planted bias (and remedy) stamped on the 28x28 grey images. `test` only feeds the
 * trainer's own final evaluation.
 */
export async function trainPlanted(
  train: Dataset,
  test: Dataset,
  opts: PlantedRunOptions,
  callbacks: TrainCallbacks = {},
  captions: CaptionSet = CaptionSet.load(),
): Promise<PlantedRun> {
  const fn = "trainPlanted";
  const trainBase = fashionMnistImages(fn, "train", train, opts.train?.trainLimit);
  const testBase = fashionMnistImages(fn, "test", test);
  const remedy = opts.remedy ?? "none";
  if (!TRAINING_REMEDIES.includes(remedy)) throw new RangeError(`${fn}: remedy must be one of ${TRAINING_REMEDIES.join(", ")}, got ${JSON.stringify(remedy)}`);
  const planted = plantBias(trainBase, opts.bias, captions);
  let trainSet = planted.train;
  let regularizer;
  let model: Clip | undefined; // the model being trained, known from onStart
  if (remedy === "resample") {
    // Strata = compound labels (class x caption word), so the frame says nothing about either.
    trainSet = balancedResample(planted.train, planted.groups, { seed: planted.options.seed + 1 }).data;
  } else if (remedy === "regularizer") {
    // The penalty is measured in the model's own logit units: its temperature, read every step.
    regularizer = groupInvarianceRegularizer({
      groups: planted.groups,
      classes: planted.classes,
      weight: opts.regularizerWeight,
      target: opts.regularizerTarget,
      scale: () => (model ? Math.exp(model.logitScale.dataSync()[0]) : 1 / 0.07),
    });
  }
  const onStart = callbacks.onStart;
  callbacks = { ...callbacks, onStart: (info) => ((model = info.model), onStart?.(info)) };
  const r = await trainClip(
    { evalLimit: 200, finalEvalLimit: 200, retrievalLimit: 100, ...opts.train },
    callbacks,
    { train: trainSet, test: testBase, captions: planted.captions, regularizer },
  );
  return { model: r.model, bias: planted.options, remedy, steps: r.steps, trainSeconds: r.trainSeconds, wallSeconds: r.wallSeconds, finalLoss: r.finalLoss };
}

/** The audit settings that go with a planted bias: its class, its word, its group. */
export function plantedAuditOptions(bias: ResolvedPlantedBias, captions: CaptionSet = CaptionSet.load()): Omit<FairnessAuditOptions, "distractors"> & { distractors: string[] } {
  const names = captions.spec.classes.map((c) => c.canonical);
  return { ...wordProbeOptions(bias.word, names, captions.spec.evalTemplates, bias.targetClass), focusGroup: FRAMED };
}

/** Prompt pairs that differ only in the planted word, for `spuriousDirectionsFromPrompts`. */
export function plantedSpuriousPairs(bias: ResolvedPlantedBias, captions: CaptionSet = CaptionSet.load()): [string, string][] {
  return wordSpuriousPairs(bias.word, captions.spec.classes.map((c) => c.canonical), captions.spec.evalTemplates);
}

/** One spurious direction [1, D]: the mean of the pair differences (a single direction keeps the rest of the space). */
export function plantedSpuriousDirection(model: AuditModel, bias: ResolvedPlantedBias, captions: CaptionSet = CaptionSet.load()): tf.Tensor2D {
  return wordSpuriousDirection(model, bias.word, captions.spec.classes.map((c) => c.canonical), captions.spec.evalTemplates);
}

export interface PlantedAuditResult {
  audit: FairnessAuditResult;
  /** Zero-shot top-1 on the same images without any frame. */
  cleanAccuracy: Estimate;
}

/**
 * Audits a model trained with a planted bias on `test` (unstamped; `opts.limit` images): the
 * frame is stamped on a seeded, class-stratified random half of the images (on the 28x28 grey
 * images for Fashion-MNIST, as in training; on the prepared model input otherwise), and clean
 * accuracy is measured on the same images without it. `spuriousDirections` applies projection
 * debiasing to both. `placebo` assigns the groups without drawing the frame (see `plantedTestSet`).
 */
export async function auditPlanted(
  model: AuditModel,
  test: Dataset,
  bias: ResolvedPlantedBias,
  opts: Partial<FairnessAuditOptions> & { testSeed?: number; placebo?: boolean } = {},
  captions: CaptionSet = CaptionSet.load(),
): Promise<PlantedAuditResult> {
  const { testSeed, placebo, ...auditOpts } = opts;
  const groups = { planted: "border" as const, seed: testSeed ?? 1, borderWidth: bias.borderWidth, borderValue: bias.borderValue, placebo };
  const audit = await runFairnessAudit(model, test, groups, { ...plantedAuditOptions(bias, captions), ...auditOpts });
  return { audit, cleanAccuracy: audit.cleanAccuracy! };
}
