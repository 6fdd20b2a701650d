/**
 * The whole prompt study of one model on labelled image datasets (any source: Fashion-MNIST, an
 * image folder, a CSV, WebDataset shards, Parquet), returned as a plain object for notebooks,
 * reports (`promptStudySection`) and JSON:
 *   - sensitivity of every template in a pool (CLIP §3.1.4, https://arxiv.org/abs/2103.00020) and
 *     the ensemble's gain over the mean single template with a paired bootstrap interval;
 *   - each named template set's mean single-template and ensemble accuracy;
 *   - paraphrase robustness (synonyms, word order, typos);
 *   - template choice on a validation split carved from the TRAINING split: greedy forward
 *     selection, a weighted ensemble, and the best single template on validation, all scored on
 *     the test split against the all-templates ensemble;
 *   - k-shot curves: CoOp (https://arxiv.org/abs/2109.01134) vs a linear probe vs zero-shot, from
 *     nested k-shot samples of the training split outside the validation split;
 *   - retrieval (Recall@1/5/10, median rank; each test image paired with its own captions, or
 *     with one generated caption, seeded per item: `pairedCaptions`), the modality gap vs
 *     temperature, and calibration (ECE at the model's temperature and at a temperature fitted on
 *     validation).
 * Order matters for honesty: everything chosen (templates, weights, probe penalty, temperature)
 * is chosen from training-split data before the test features are used.
 *
 * Images go through the model's own preprocessing (`modelTransform`: Fashion-MNIST's "pad" puts
 * the 28 px image on the model's black canvas, exactly as the old in-memory path did, so its
 * numbers are unchanged) and the batched encoder. How the training split is read (labels first,
 * then only the chosen images) is in study_data.ts.
 */
import * as tf from "@tensorflow/tfjs";
import type { CaptionSet } from "../data/captions";
import type { Dataset, SkippedItem } from "../data/dataset";
import { isFashionMnist } from "../data/sources/fashion_mnist";
import type { ImageTransform } from "../image/transform";
import { modelTransform, type ClipConfig } from "../model/config";
import type { ZeroShotModel } from "../eval/zero_shot";
import { encodeTexts, type EncodeProgress } from "../eval/encode";
import { classificationMetrics, fitLogitScale, top1Accuracy } from "../eval/classifier_metrics";
import { sampleFewShot } from "../eval/few_shot";
import { trainLinearProbe } from "../eval/linear_probe";
import { retrievalMetrics, type RetrievalMetrics } from "../eval/retrieval";
import { gapShiftSweep, temperatureSweep, type GapShiftRow, type TemperatureRow } from "../eval/gap_temperature";
import { encodePromptBank, ensembleScores, featureSetOf, singleTemplateScores, subsetFeatures, templateCosines, type FeatureSet } from "./prompt_bank";
import { promptSensitivity, type SensitivityResult } from "./sensitivity";
import { paraphraseRobustness, type ParaphraseRow } from "./paraphrase";
import { carveValidation, greedyTemplateSelection, selectionWeights, weightedTemplateEnsemble, type GreedySelection } from "./selection";
import { classWeightScores, trainCoOp, type CoOpModel, type CoOpOptions } from "./coop";
import { checkClassNames, loadTemplateSet } from "../text/templates";
import { encodeSplit, featuresAt, itemsAt, readLabels } from "./study_data";

/** What the study needs of a model; `Clip` satisfies it. */
export type PromptStudyModel = ZeroShotModel & CoOpModel & { readonly config: ClipConfig };

export interface PromptStudyOptions {
  /** Training split, labelled (validation and k-shot images come from here only). */
  train: Dataset;
  /** Test split, labelled (zero-shot classification needs classes). */
  test: Dataset;
  /** Class names used in prompts, in label order; default the test dataset's `classNames`. */
  classNames?: readonly string[];
  /** Synonyms per class for the paraphrase study; default Fashion-MNIST's captions on that source, else none (no "synonym" row). */
  captions?: CaptionSet;
  /** Named template sets to compare; default `defaultTemplateSets(test)`. */
  templateSets?: Record<string, readonly string[]>;
  /** Templates for paraphrase robustness; default the "fashion" set on Fashion-MNIST, else the source's templates, else imagenet7. */
  paraphraseTemplates?: readonly string[];
  /** The model's preprocessing; default `modelTransform(model.config)`. */
  transform?: ImageTransform;
  /** First N test images; default all. */
  testLimit?: number;
  /** First N training items (labels are read from these, the chosen images decoded); default all. */
  trainLimit?: number;
  /** Go on past unreadable images, reporting each through `onSkip` (otherwise the first one throws). */
  skipBadImages?: boolean;
  onSkip?: (item: SkippedItem) => void;
  /** Validation images per class carved from the training split; default 100. */
  validationPerClass?: number;
  /** Shots per class; default [1, 2, 4, 8, 16]. Empty: no k-shot study. */
  shots?: number[];
  /** One k-shot sample per seed; default [0]. */
  fewShotSeeds?: number[];
  coop?: CoOpOptions;
  /** L2 penalties tried for the linear probe (chosen on validation); default [1e-4, 1e-3, 1e-2, 1e-1]. */
  probeL2Grid?: number[];
  /** Trials per paraphrase kind; default 5 (0: skip). */
  paraphraseTrials?: number;
  /** Test images (with their paired captions) for retrieval and the gap; default 1000. */
  retrievalImages?: number;
  /** Logit multipliers for the temperature sweep; default [1, 5, 10, 20, 50, 100] plus the model's. */
  temperatureScales?: number[];
  /** Gap-shift lambdas; default [-0.5, 0, 0.25, 0.5, 0.75, 1]. */
  gapLambdas?: number[];
  bootstrapSamples?: number;
  seed?: number;
  /** Images or prompts per encoder call; default from the model config and a memory budget. */
  batchSize?: number;
  /** Progress (which stage starts); the library never prints. */
  onProgress?: (stage: string) => void;
  /** Encoder progress within a stage (images or texts done). */
  onEncodeProgress?: (p: EncodeProgress) => void;
}

export interface TemplateSetRow {
  name: string;
  size: number;
  meanSingleTop1: number;
  minSingleTop1: number;
  maxSingleTop1: number;
  ensembleTop1: number;
  ensembleTop5: number;
}

export interface ChoiceRow {
  method: string;
  templates: number;
  validationTop1: number;
  testTop1: number;
}

export interface FewShotRow {
  k: number;
  seed: number;
  coopTop1: number;
  probeTop1: number;
  probeL2: number;
}

export interface FewShotCurve {
  k: number;
  coopTop1: number;
  probeTop1: number;
  /** Over seeds (0 with one seed). */
  coopStd: number;
  probeStd: number;
}

export interface PromptStudyResult {
  /** The datasets' names (`Dataset.name`). */
  datasets: { train: string; test: string };
  classNames: string[];
  logitScale: number;
  /** Images used; `retrievalTexts` counts the captions paired with the retrieval images; `skipped` the unreadable items left out. */
  n: { test: number; validation: number; retrieval: number; retrievalTexts: number; skipped: number };
  /** The template pool: union of the named sets, in order. */
  templates: string[];
  sensitivity: SensitivityResult;
  templateSets: TemplateSetRow[];
  paraphrase: ParaphraseRow[];
  selection: {
    greedy: GreedySelection;
    weighted: { weights: number[]; validationTop1: number; top: { template: string; weight: number }[] };
    rows: ChoiceRow[];
  };
  fewShot: {
    shots: number[];
    rows: FewShotRow[];
    curve: FewShotCurve[];
    /** Zero-shot references on the same test images. */
    zeroShotPlainTop1: number;
    zeroShotEnsembleTop1: number;
    coopInit: string;
  };
  retrieval: RetrievalMetrics;
  temperature: TemperatureRow[];
  gapShift: GapShiftRow[];
  calibration: { modelScale: number; fittedScale: number; eceAtModel: number; eceAtFitted: number; nllAtModel: number; nllAtFitted: number };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

/**
 * The default named template sets for a dataset: plain, imagenet7 and imagenet80; on
 * Fashion-MNIST also "fashion" and its captions' evaluation templates ("captions-eval"); on a
 * source that ships templates (WebDataset's zeroshot_classification_templates.txt), those ("source").
 */
export function defaultTemplateSets(ds?: Dataset): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const name of ["plain", "imagenet7", "imagenet80"]) out[name] = loadTemplateSet(name).templates;
  if (ds && isFashionMnist(ds)) {
    out.fashion = loadTemplateSet("fashion").templates;
    out["captions-eval"] = ds.captionSet.spec.evalTemplates.slice();
  } else if (ds?.templates?.length) {
    out.source = ds.templates.slice();
  }
  return out;
}

/** The class names of the study: given, else the test dataset's; the training split must agree. */
function studyClassNames(fn: string, train: Dataset, test: Dataset, given: readonly string[] | undefined): string[] {
  for (const [what, ds] of [["test", test], ["train", train]] as const) {
    if (!ds.hasLabels) throw new RangeError(`${fn}: the ${what} dataset ${ds.spec} has no labels; the prompt study needs labelled train and test splits (zero-shot classification needs classes)`);
  }
  if (given) return checkClassNames(given, fn);
  const names = test.classNames ?? train.classNames;
  if (!names || names.length === 0) throw new RangeError(`${fn}: the test dataset ${test.spec} has no class names; pass classNames (or --classnames FILE)`);
  if (train.classNames && test.classNames && train.classNames.join("\n") !== test.classNames.join("\n")) {
    throw new RangeError(`${fn}: the train dataset ${train.spec} has classes ${JSON.stringify(train.classNames)}, the test dataset ${test.spec} ${JSON.stringify(test.classNames)}; they must be the same classes in the same order`);
  }
  return checkClassNames(names.slice(), fn);
}

export async function runPromptStudy(clip: PromptStudyModel, opts: PromptStudyOptions): Promise<PromptStudyResult> {
  const fn = "runPromptStudy";
  if (!opts || !opts.train || !opts.test || typeof opts.train.items !== "function" || typeof opts.test.items !== "function") {
    throw new TypeError(`${fn}: options { train, test } (Datasets, e.g. from openDataset) are required`);
  }
  const progress = opts.onProgress ?? (() => {});
  const seed = opts.seed ?? 0;
  const batchSize = opts.batchSize;
  const classNames = studyClassNames(fn, opts.train, opts.test, opts.classNames);
  const c = classNames.length;
  const captions = opts.captions ?? (isFashionMnist(opts.test) ? opts.test.captionSet : undefined);
  const sets = opts.templateSets ?? defaultTemplateSets(opts.test);
  const pool = [...new Set(Object.values(sets).flat())];
  const scale = Math.exp(clip.logitScale.dataSync()[0]);
  const transform = opts.transform ?? modelTransform(clip.config);

  // Every skipped item once (the training split is read twice: labels, then the chosen images).
  const skippedKeys = new Set<string>();
  const onSkip = (s: SkippedItem) => {
    if (skippedKeys.has(s.key)) return;
    skippedKeys.add(s.key);
    opts.onSkip?.(s);
  };
  const read = { skipBadImages: opts.skipBadImages, onSkip };
  const encodeOpts = { ...read, transform, batchSize, onProgress: opts.onEncodeProgress };

  // 1. Everything from the training split: validation and k-shot features.
  progress("prompt bank");
  const bank = encodePromptBank(clip, classNames, pool, { batchSize });
  progress("training labels");
  const trainLabels = await readLabels(opts.train, c, { ...read, limit: opts.trainLimit });
  const { validation: valIdx, rest } = carveValidation(trainLabels.labels, c, opts.validationPerClass ?? 100, seed);

  // k-shot samples (nested: the k-shot set is the first k of each class's 16-shot draw).
  const shots = opts.shots ?? [1, 2, 4, 8, 16];
  const seeds = opts.fewShotSeeds ?? [0];
  const kMax = shots.length ? Math.max(...shots) : 0;
  const fewShotIdx = new Map<number, Int32Array>();
  if (kMax > 0) for (const s of seeds) fewShotIdx.set(s, sampleFewShot(trainLabels.labels, c, kMax, { seed: s, pool: rest, classNames }));

  // Only the chosen training images are decoded and encoded, once each.
  progress("validation and k-shot features");
  const position = (j: number) => trainLabels.indices[j];
  const chosen = Int32Array.from(new Set([...valIdx, ...[...fewShotIdx.values()].flatMap((a) => [...a])].map(position))).sort();
  const trainFeatures = await encodeSplit(clip, itemsAt(opts.train, chosen, opts.trainLimit), encodeOpts);
  const keyOf = new Map<number, string>();
  trainLabels.indices.forEach((p, j) => keyOf.set(p, trainLabels.keys[j]));
  const validation = featuresAt(trainFeatures, Array.from(valIdx, position));
  if (validation.n === 0) throw new RangeError(`${fn}: no validation image of ${opts.train.spec} could be read`);
  const fewShotSets = new Map<number, FeatureSet>();
  for (const [s, idx] of fewShotIdx) {
    fewShotSets.set(s, featuresAt(trainFeatures, Array.from(idx, position), { required: "the k-shot sample", keyOf: (p) => keyOf.get(p) ?? `item ${p}` }));
  }

  progress("template selection");
  const greedy = greedyTemplateSelection(bank, validation, { logitScale: scale });
  const weighted = weightedTemplateEnsemble(bank, validation, { logitScale: scale });
  const valCos = templateCosines(bank, validation);
  const valSingle = bank.templates.map((_, t) => top1Accuracy(singleTemplateScores(bank, valCos, t), validation.labels, c));
  const bestSingleVal = valSingle.reduce((best, a, t) => (a > valSingle[best] ? t : best), 0);
  const allWeights = new Array<number>(pool.length).fill(1);
  const valAllScores = ensembleScores(bank, valCos, allWeights);
  const fittedScale = fitLogitScale(valAllScores, validation.labels, c);

  // 2. The test split: every image, with the captions it is paired with for retrieval.
  progress("test features");
  const testEncoded = await encodeSplit(clip, opts.test, { ...encodeOpts, limit: opts.testLimit, captionSeed: seed });
  const test = featureSetOf(testEncoded, c, `${fn} (the test split)`);
  const testN = test.n;
  const testCos = templateCosines(bank, test);

  progress("sensitivity");
  const sensitivity = promptSensitivity(bank, test, { logitScale: scale, cosines: testCos, bootstrap: { resamples: opts.bootstrapSamples ?? 2000, seed } });
  const templateSets: TemplateSetRow[] = Object.entries(sets).map(([name, temps]) => {
    const ids = [...new Set(temps)].map((t) => pool.indexOf(t));
    const singles = ids.map((i) => sensitivity.perTemplate[i].top1);
    const m = classificationMetrics(ensembleScores(bank, testCos, selectionWeights(bank, ids)), test.labels, c);
    return { name, size: ids.length, meanSingleTop1: mean(singles), minSingleTop1: Math.min(...singles), maxSingleTop1: Math.max(...singles), ensembleTop1: m.top1, ensembleTop5: m.top5 };
  });

  const testTop1 = (a: number[]) => top1Accuracy(ensembleScores(bank, testCos, a), test.labels, c);
  const valTop1 = (a: number[]) => top1Accuracy(ensembleScores(bank, valCos, a), validation.labels, c);
  const oneHot = (t: number) => allWeights.map((_, i) => (i === t ? 1 : 0));
  const rows: ChoiceRow[] = [
    { method: "all templates", templates: pool.length, validationTop1: valTop1(allWeights), testTop1: testTop1(allWeights) },
    { method: `best single on validation: ${JSON.stringify(pool[bestSingleVal])}`, templates: 1, validationTop1: valSingle[bestSingleVal], testTop1: testTop1(oneHot(bestSingleVal)) },
    { method: "greedy forward selection", templates: greedy.selected.length, validationTop1: greedy.validationTop1, testTop1: testTop1(selectionWeights(bank, greedy.selected)) },
    { method: "weighted ensemble", templates: pool.length, validationTop1: weighted.validationTop1, testTop1: testTop1(weighted.weights) },
  ];
  const topWeights = weighted.weights
    .map((weight, i) => ({ template: pool[i], weight }))
    .sort((a, b) => b.weight - a.weight)
    .slice(0, 10);

  // Calibration of the all-templates ensemble: the model's temperature vs one fitted on validation.
  const testAll = ensembleScores(bank, testCos, allWeights);
  const atModel = classificationMetrics(testAll, test.labels, c, { logitScale: scale });
  const atFitted = classificationMetrics(testAll, test.labels, c, { logitScale: fittedScale });

  let paraphrase: ParaphraseRow[] = [];
  if ((opts.paraphraseTrials ?? 5) > 0) {
    progress("paraphrase robustness");
    const templates = opts.paraphraseTemplates ?? sets.fashion ?? sets.source ?? sets.imagenet7 ?? pool;
    paraphrase = paraphraseRobustness(clip, test, classNames, [...new Set(templates)], {
      synonyms: captions?.spec.classes.map((k) => k.synonyms),
      trials: opts.paraphraseTrials ?? 5,
      seed,
      batchSize,
    });
  }

  // k-shot: CoOp and the linear probe on the same images; probe penalty chosen on validation.
  const fewRows: FewShotRow[] = [];
  const coopInit = opts.coop?.init ?? "a photo of a";
  for (const s of seeds) {
    const full = fewShotSets.get(s)!;
    for (const k of shots) {
      progress(`k-shot k=${k} seed=${s}`);
      const idx: number[] = [];
      for (let cl = 0; cl < c; cl++) for (let j = 0; j < k; j++) idx.push(cl * kMax + j);
      const shotsSet = subsetFeatures(full, idx);
      let best = { l2: NaN, val: -1, probe: undefined as ReturnType<typeof trainLinearProbe> | undefined };
      for (const l2 of opts.probeL2Grid ?? [1e-4, 1e-3, 1e-2, 1e-1]) {
        const probe = trainLinearProbe(shotsSet.features, shotsSet.labels, c, { l2 });
        const val = probe.evaluate(validation.features, validation.labels).top1;
        if (val > best.val) best = { l2, val, probe };
      }
      const probeTop1 = best.probe!.evaluate(test.features, test.labels).top1;
      const coop = trainCoOp(clip, classNames, shotsSet, { ...opts.coop, seed: s });
      const coopTop1 = top1Accuracy(classWeightScores(coop.classWeights, c, test), test.labels, c);
      fewRows.push({ k, seed: s, coopTop1, probeTop1, probeL2: best.l2 });
    }
  }
  const curve: FewShotCurve[] = shots.map((k) => {
    const r = fewRows.filter((x) => x.k === k);
    return { k, coopTop1: mean(r.map((x) => x.coopTop1)), probeTop1: mean(r.map((x) => x.probeTop1)), coopStd: std(r.map((x) => x.coopTop1)), probeStd: std(r.map((x) => x.probeTop1)) };
  });
  const plainIndex = pool.indexOf("a photo of a {}.");
  const zeroShotPlainTop1 = plainIndex >= 0 ? sensitivity.perTemplate[plainIndex].top1 : NaN;

  // Retrieval, gap and temperature on the first m test images and their paired captions. An
  // image with several captions counts a hit when any of them is in the top K; the gap and
  // temperature sweeps pair each image with its first caption.
  progress("retrieval");
  const m = Math.min(opts.retrievalImages ?? 1000, testN);
  const texts: string[] = [];
  const textImage: number[] = [];
  const firstText: number[] = [];
  for (let i = 0; i < m; i++) {
    firstText.push(texts.length);
    for (const caption of testEncoded.captions[i]) {
      texts.push(caption);
      textImage.push(i);
    }
  }
  const oneEach = texts.length === m;
  const txt = encodeTexts(clip, texts, { batchSize, normalize: true, onProgress: opts.onEncodeProgress });
  const imgT = tf.tensor2d(test.features.subarray(0, m * test.dim), [m, test.dim]); // [M, D]
  const txtT = tf.tensor2d(txt.values, [txt.n, txt.dim]); // [T, D]
  const pairT = oneEach ? txtT : (tf.gather(txtT, Int32Array.from(firstText)) as tf.Tensor2D); // [M, D]
  let retrieval: RetrievalMetrics;
  let temperature: TemperatureRow[];
  let gapShift: GapShiftRow[];
  try {
    const perImage = (i: number) => Array.from({ length: (i + 1 < m ? firstText[i + 1] : texts.length) - firstText[i] }, (_, j) => firstText[i] + j);
    retrieval = oneEach ? retrievalMetrics(imgT, txtT, [1, 5, 10]) : retrievalMetrics(imgT, txtT, [1, 5, 10], { imageToTextTargets: perImage, textToImageTargets: Int32Array.from(textImage) });
    const scales = [...new Set([...(opts.temperatureScales ?? [1, 5, 10, 20, 50, 100]), Number(scale.toPrecision(4))])].sort((a, b) => a - b);
    temperature = temperatureSweep(imgT, pairT, scales);
    gapShift = gapShiftSweep(imgT, pairT, opts.gapLambdas ?? [-0.5, 0, 0.25, 0.5, 0.75, 1], scale);
  } finally {
    tf.dispose(oneEach ? [imgT, txtT] : [imgT, txtT, pairT]);
  }

  return {
    datasets: { train: opts.train.name, test: opts.test.name },
    classNames,
    logitScale: scale,
    n: { test: testN, validation: validation.n, retrieval: m, retrievalTexts: texts.length, skipped: skippedKeys.size },
    templates: pool,
    sensitivity,
    templateSets,
    paraphrase,
    selection: { greedy, weighted: { weights: weighted.weights, validationTop1: weighted.validationTop1, top: topWeights }, rows },
    fewShot: { shots, rows: fewRows, curve, zeroShotPlainTop1, zeroShotEnsembleTop1: sensitivity.ensemble.top1, coopInit },
    retrieval,
    temperature,
    gapShift,
    calibration: { modelScale: scale, fittedScale, eceAtModel: atModel.ece, eceAtFitted: atFitted.ece, nllAtModel: atModel.nll, nllAtFitted: atFitted.nll },
  };
}
