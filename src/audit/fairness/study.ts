/**
 * The planted-bias study: train a CLIP on data with a planted bias of strength rho (./planted_bias.ts),
 * optionally with a remedy (./remedies.ts), then audit it (./audit.ts). The notebook and the
 * report call these; each training run is seeded and returns its model (the caller disposes it).
 */
import * as tf from "@tensorflow/tfjs";
import type { Clip } from "../../model/clip";
import { trainClip, type TrainCallbacks } from "../../train/trainer";
import type { TrainOptions } from "../../train/options";
import type { LabelledImages } from "../../data/fashion_mnist";
import { CaptionSet } from "../../data/captions";
import { fillTemplate } from "../../eval/zero_shot";
import { FRAMED, plantBias, plantedTestSet, type PlantedBiasOptions, type ResolvedPlantedBias } from "./planted_bias";
import { runFairnessAudit, zeroShotAccuracy, type AuditModel, type FairnessAuditOptions, type FairnessAuditResult } from "./audit";
import { spuriousDirectionsFromPrompts } from "./debias";
import type { Estimate } from "./bootstrap";
import { balancedResample, groupInvarianceRegularizer } from "./remedies";

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

/** Trains one model on `trainBase` with the planted bias (and remedy). `testBase` only feeds the trainer's own final evaluation. */
export async function trainPlanted(
  trainBase: LabelledImages,
  testBase: LabelledImages,
  opts: PlantedRunOptions,
  callbacks: TrainCallbacks = {},
  captions: CaptionSet = CaptionSet.load(),
): Promise<PlantedRun> {
  const fn = "trainPlanted";
  const remedy = opts.remedy ?? "none";
  if (!TRAINING_REMEDIES.includes(remedy)) throw new RangeError(`${fn}: remedy must be one of ${TRAINING_REMEDIES.join(", ")}, got ${JSON.stringify(remedy)}`);
  const planted = plantBias(trainBase, opts.bias, captions);
  let train = planted.train;
  let regularizer;
  let model: Clip | undefined; // the model being trained, known from onStart
  if (remedy === "resample") {
    // Strata = compound labels (class x caption word), so the frame says nothing about either.
    train = balancedResample(planted.train, planted.groups, { seed: planted.options.seed + 1 }).data;
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
    { train, test: testBase, captions: planted.captions, regularizer },
  );
  return { model: r.model, bias: planted.options, remedy, steps: r.steps, trainSeconds: r.trainSeconds, wallSeconds: r.wallSeconds, finalLoss: r.finalLoss };
}

/** The audit settings that go with a planted bias: its class, its word, its group. */
export function plantedAuditOptions(bias: ResolvedPlantedBias, captions: CaptionSet = CaptionSet.load()): FairnessAuditOptions {
  const names = captions.spec.classes.map((c) => c.canonical);
  const templates = captions.spec.evalTemplates;
  const target = names[bias.targetClass];
  const prompts = (list: string[]) => list.flatMap((n) => templates.map((t) => fillTemplate(t, n)));
  return {
    classNames: names,
    templates,
    focusGroup: FRAMED,
    positiveClass: bias.targetClass,
    distractors: names.map((n) => `${bias.word} ${n}`),
    associations: [
      { name: `"${bias.word}" vs no word`, a: prompts(names.map((n) => `${bias.word} ${n}`)), b: prompts(names) },
      { name: `${target} vs other classes`, a: prompts([target]), b: prompts(names.filter((n) => n !== target)) },
    ],
  };
}

/** Prompt pairs that differ only in the planted word, for `spuriousDirectionsFromPrompts`. */
export function plantedSpuriousPairs(bias: ResolvedPlantedBias, captions: CaptionSet = CaptionSet.load()): [string, string][] {
  const names = captions.spec.classes.map((c) => c.canonical);
  return names.flatMap((n) => captions.spec.evalTemplates.map((t) => [fillTemplate(t, `${bias.word} ${n}`), fillTemplate(t, n)] as [string, string]));
}

/** One spurious direction [1, D]: the mean of the pair differences (a single direction keeps the rest of the space). */
export function plantedSpuriousDirection(model: AuditModel, bias: ResolvedPlantedBias, captions: CaptionSet = CaptionSet.load()): tf.Tensor2D {
  return tf.tidy(() => tf.mean(spuriousDirectionsFromPrompts(model, plantedSpuriousPairs(bias, captions)), 0, true) as tf.Tensor2D); // [1, D]
}

export interface PlantedAuditResult {
  audit: FairnessAuditResult;
  /** Zero-shot top-1 on the same images without any frame. */
  cleanAccuracy: Estimate;
}

/**
 * Audits a model trained with a planted bias on `test` (grey, unstamped): the frame is stamped on
 * a seeded random half of the images (independent of the class), and clean accuracy is measured
 * on the unstamped images. `spuriousDirections` applies projection debiasing to both. `placebo`
 * assigns the groups without drawing the frame (see `plantedTestSet`).
 */
export function auditPlanted(
  model: AuditModel,
  test: LabelledImages,
  bias: ResolvedPlantedBias,
  opts: Partial<FairnessAuditOptions> & { testSeed?: number; placebo?: boolean } = {},
  captions: CaptionSet = CaptionSet.load(),
): PlantedAuditResult {
  const { testSeed, placebo, ...auditOpts } = opts;
  const grouped = plantedTestSet(test, { seed: testSeed ?? 1, borderWidth: bias.borderWidth, borderValue: bias.borderValue, placebo });
  const o = { ...plantedAuditOptions(bias, captions), ...auditOpts };
  const audit = runFairnessAudit(model, grouped.data, grouped.groups, o);
  const cleanAccuracy = zeroShotAccuracy(model, test, o.classNames, o.templates, {
    bootstrap: o.bootstrap,
    seed: o.seed,
    spuriousDirections: o.spuriousDirections,
    tokenizer: o.tokenizer,
  });
  return { audit, cleanAccuracy };
}
