/**
 * The prompt study as it was before it read datasets (commit 5aa99e7, src/prompts/study.ts and
 * the prompt bank's own encode loops), kept as a reference computation: on Fashion-MNIST the
 * dataset-based `runPromptStudy` must give the same numbers (the same pixels through the "pad"
 * transform, the same features, the same validation carve and k-shot draws). Only retrieval
 * differs on purpose: captions are now paired per item (`pairedCaptions`), not drawn in sequence.
 * Not a test file itself; the code below is the old code, unchanged but for its imports.
 */
import * as tf from "@tensorflow/tfjs";
import { Batcher } from "../../src/data/batcher";
import { CaptionSet, imageAttributes } from "../../src/data/captions";
import type { LabelledImages } from "../../src/data/fashion_mnist";
import { Random } from "../../src/util/random";
import { tokenize } from "../../src/text/tokenize";
import type { ZeroShotModel } from "../../src/eval/zero_shot";
import { classificationMetrics, fitLogitScale, top1Accuracy } from "../../src/eval/classifier_metrics";
import { sampleFewShot } from "../../src/eval/few_shot";
import { trainLinearProbe } from "../../src/eval/linear_probe";
import { retrievalMetrics, type RetrievalMetrics } from "../../src/eval/retrieval";
import { gapShiftSweep, temperatureSweep, type GapShiftRow, type TemperatureRow } from "../../src/eval/gap_temperature";
import { ensembleScores, gramMatrices, singleTemplateScores, subsetFeatures, templateCosines, type FeatureSet, type PromptBank } from "../../src/prompts/prompt_bank";
import { checkLabels, fmtShape } from "../../src/eval/checks";
import { checkPositiveInt } from "../../src/util/checks";
import type { Tokenizer, ZeroShotImageModel } from "../../src/eval/zero_shot";
import { checkClassNames, checkPromptsFit, checkTemplates, fillPrompt } from "../../src/text/templates";
import { promptSensitivity, type SensitivityResult } from "../../src/prompts/sensitivity";
import { paraphraseRobustness, type ParaphraseRow } from "../../src/prompts/paraphrase";
import { carveValidation, greedyTemplateSelection, selectionWeights, weightedTemplateEnsemble, type GreedySelection } from "../../src/prompts/selection";
import { classWeightScores, trainCoOp, type CoOpModel, type CoOpOptions } from "../../src/prompts/coop";
import { loadTemplateSet } from "../../src/text/templates";

type PromptStudyModel = ZeroShotModel & CoOpModel;

export interface LegacyPromptStudyOptions {
  /** Training split (validation and k-shot images come from here only). */
  train: LabelledImages;
  test: LabelledImages;
  /** Class names and synonyms; default CaptionSet.load() (Fashion-MNIST). */
  captions?: CaptionSet;
  /** Class names used in prompts; default the captions' canonical names. */
  classNames?: string[];
  /** Named template sets to compare; default plain, imagenet7, imagenet80, fashion (+ "captions-eval"). */
  templateSets?: Record<string, string[]>;
  /** Templates for paraphrase robustness; default the "fashion" set. */
  paraphraseTemplates?: string[];
  /** First N test images; default all. */
  testLimit?: number;
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
  /** Test images (with one caption each) for retrieval and the gap; default 1000. */
  retrievalImages?: number;
  /** Logit multipliers for the temperature sweep; default [1, 5, 10, 20, 50, 100] plus the model's. */
  temperatureScales?: number[];
  /** Gap-shift lambdas; default [-0.5, 0, 0.25, 0.5, 0.75, 1]. */
  gapLambdas?: number[];
  bootstrapSamples?: number;
  seed?: number;
  batchSize?: number;
  /** Progress (which stage starts); the library never prints. */
  onProgress?: (stage: string) => void;
}

interface TemplateSetRow {
  name: string;
  size: number;
  meanSingleTop1: number;
  minSingleTop1: number;
  maxSingleTop1: number;
  ensembleTop1: number;
  ensembleTop5: number;
}

interface ChoiceRow {
  method: string;
  templates: number;
  validationTop1: number;
  testTop1: number;
}

interface FewShotRow {
  k: number;
  seed: number;
  coopTop1: number;
  probeTop1: number;
  probeL2: number;
}

interface FewShotCurve {
  k: number;
  coopTop1: number;
  probeTop1: number;
  /** Over seeds (0 with one seed). */
  coopStd: number;
  probeStd: number;
}

interface PromptStudyResult {
  classNames: string[];
  logitScale: number;
  n: { test: number; validation: number; retrieval: number };
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

/** The default named template sets. */
function defaultTemplateSets(captions: CaptionSet): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const name of ["plain", "imagenet7", "imagenet80", "fashion"]) out[name] = loadTemplateSet(name).templates;
  out["captions-eval"] = captions.spec.evalTemplates.slice();
  return out;
}

export async function legacyPromptStudy(clip: PromptStudyModel, opts: LegacyPromptStudyOptions): Promise<PromptStudyResult> {
  const fn = "runPromptStudy";
  if (!opts || !opts.train || !opts.test) throw new Error(`${fn}: options { train, test } (LabelledImages) are required`);
  const progress = opts.onProgress ?? (() => {});
  const seed = opts.seed ?? 0;
  const batchSize = opts.batchSize ?? 256;
  const captions = opts.captions ?? CaptionSet.load();
  const classNames = opts.classNames ?? captions.spec.classes.map((c) => c.canonical);
  const c = classNames.length;
  const sets = opts.templateSets ?? defaultTemplateSets(captions);
  const pool = [...new Set(Object.values(sets).flat())];
  const scale = Math.exp(clip.logitScale.dataSync()[0]);
  const size = clip.config.vision_cfg.image_size;

  const reader = (data: LabelledImages) => new Batcher(data, { batchSize: 1, seed: 0, imageSize: size, captions: null });
  const encodeSplit = (data: LabelledImages, indices: Int32Array): FeatureSet => {
    const b = reader(data);
    return encodeImageFeatures(
      clip,
      (s, e) => tf.tensor4d(b.pixelsFor(indices.subarray(s, e)), [e - s, size, size, 3]),
      Int32Array.from(indices, (i) => data.labels[i]),
      { batchSize },
    );
  };

  // 1. Everything from the training split: validation and k-shot features.
  progress("prompt bank");
  const bank = encodePromptBank(clip, classNames, pool, { batchSize });
  progress("validation features");
  const { validation: valIdx, rest } = carveValidation(opts.train.labels, c, opts.validationPerClass ?? 100, seed);
  const validation = encodeSplit(opts.train, valIdx);

  progress("template selection");
  const greedy = greedyTemplateSelection(bank, validation, { logitScale: scale });
  const weighted = weightedTemplateEnsemble(bank, validation, { logitScale: scale });
  const valCos = templateCosines(bank, validation);
  const valSingle = bank.templates.map((_, t) => top1Accuracy(singleTemplateScores(bank, valCos, t), validation.labels, c));
  const bestSingleVal = valSingle.reduce((best, a, t) => (a > valSingle[best] ? t : best), 0);
  const allWeights = new Array<number>(pool.length).fill(1);
  const valAllScores = ensembleScores(bank, valCos, allWeights);
  const fittedScale = fitLogitScale(valAllScores, validation.labels, c);

  // k-shot samples (nested: the k-shot set is the first k of each class's 16-shot draw).
  const shots = opts.shots ?? [1, 2, 4, 8, 16];
  const seeds = opts.fewShotSeeds ?? [0];
  const kMax = shots.length ? Math.max(...shots) : 0;
  const fewShotSets = new Map<number, FeatureSet>();
  if (kMax > 0) {
    progress("k-shot features");
    for (const s of seeds) {
      const idx = sampleFewShot(opts.train.labels, c, kMax, { seed: s, pool: rest, classNames });
      fewShotSets.set(s, encodeSplit(opts.train, idx));
    }
  }

  // 2. The test split.
  progress("test features");
  const testN = Math.min(opts.testLimit ?? opts.test.count, opts.test.count);
  const test = encodeSplit(opts.test, Int32Array.from({ length: testN }, (_, i) => i));
  const testCos = templateCosines(bank, test);

  progress("sensitivity");
  const sensitivity = promptSensitivity(bank, test, { logitScale: scale, cosines: testCos, bootstrap: { resamples: opts.bootstrapSamples ?? 2000, seed } });
  const templateSets: TemplateSetRow[] = Object.entries(sets).map(([name, temps]) => {
    const ids = temps.map((t) => pool.indexOf(t));
    const singles = ids.map((i) => sensitivity.perTemplate[i].top1);
    const m = classificationMetrics(ensembleScores(bank, testCos, selectionWeights(bank, ids)), test.labels, c);
    return { name, size: temps.length, meanSingleTop1: mean(singles), minSingleTop1: Math.min(...singles), maxSingleTop1: Math.max(...singles), ensembleTop1: m.top1, ensembleTop5: m.top5 };
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
    paraphrase = paraphraseRobustness(clip, test, classNames, opts.paraphraseTemplates ?? sets.fashion ?? pool, {
      synonyms: captions.spec.classes.map((k) => k.synonyms),
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

  // Retrieval, gap and temperature: test images paired with one seeded caption each.
  progress("retrieval");
  const m = Math.min(opts.retrievalImages ?? 1000, testN);
  const rng = new Random(seed + 1);
  const texts: string[] = [];
  for (let i = 0; i < m; i++) {
    const attrs = imageAttributes(opts.test.images, opts.test.height, opts.test.width, i * opts.test.height * opts.test.width);
    texts.push(captions.captionForTraining(opts.test.labels[i], attrs, rng));
  }
  const ctx = clip.config.text_cfg.context_length;
  const txt = encodeTexts(clip, texts, (t) => tokenize(t, { contextLength: ctx, truncate: true }), batchSize);
  const imgT = tf.tensor2d(test.features.subarray(0, m * test.dim), [m, test.dim]); // [M, D]
  const txtT = tf.tensor2d(txt.values, [m, txt.dim]); // [M, D]
  let retrieval: RetrievalMetrics;
  let temperature: TemperatureRow[];
  let gapShift: GapShiftRow[];
  try {
    retrieval = retrievalMetrics(imgT, txtT, [1, 5, 10]);
    const scales = [...new Set([...(opts.temperatureScales ?? [1, 5, 10, 20, 50, 100]), Number(scale.toPrecision(4))])].sort((a, b) => a - b);
    temperature = temperatureSweep(imgT, txtT, scales);
    gapShift = gapShiftSweep(imgT, txtT, opts.gapLambdas ?? [-0.5, 0, 0.25, 0.5, 0.75, 1], scale);
  } finally {
    tf.dispose([imgT, txtT]);
  }

  return {
    classNames,
    logitScale: scale,
    n: { test: testN, validation: validation.n, retrieval: m },
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

// The old encode loops of src/prompts/prompt_bank.ts.
function normalizeRowsInPlace(x: Float32Array, dim: number, what: string): void {
  for (let r = 0; r < x.length / dim; r++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += x[r * dim + d] ** 2;
    const norm = Math.sqrt(s);
    if (!(norm > 0) || !Number.isFinite(norm)) throw new Error(`${what}: row ${r} has norm ${norm} (a zero or non-finite feature)`);
    for (let d = 0; d < dim; d++) x[r * dim + d] /= norm;
  }
}

/** Unit image features of `n` images read `batchSize` at a time, with their labels. */
function encodeImageFeatures(
  model: Pick<ZeroShotImageModel, "encodeImage">,
  pixels: (start: number, end: number) => tf.Tensor4D,
  labels: Int32Array | readonly number[],
  opts: { batchSize?: number } = {},
): FeatureSet {
  const fn = "encodeImageFeatures";
  const y = checkLabels(fn, "labels", labels, undefined);
  const n = y.length;
  if (n === 0) throw new Error(`${fn}: no images (labels is empty)`);
  const batchSize = checkPositiveInt(fn, "batchSize", opts.batchSize ?? 256);
  let out: Float32Array | undefined;
  let dim = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const batch = pixels(start, end);
    let values: Float32Array;
    try {
      if (!(batch instanceof tf.Tensor) || batch.rank !== 4 || batch.shape[0] !== end - start) {
        throw new Error(`${fn}: pixels(${start}, ${end}) must return a tf.Tensor4D [${end - start}, S, S, 3], got ${batch instanceof tf.Tensor ? fmtShape(batch) : typeof batch}`);
      }
      const f = model.encodeImage(batch); // [b, D]
      try {
        values = f.dataSync() as Float32Array;
        if (out === undefined) {
          dim = f.shape[1];
          out = new Float32Array(n * dim);
        }
      } finally {
        f.dispose();
      }
    } finally {
      if (batch instanceof tf.Tensor) batch.dispose();
    }
    out.set(values, start * dim);
  }
  normalizeRowsInPlace(out!, dim, fn);
  return { features: out!, dim, n, labels: y };
}

/** Unit text embeddings of the prompts (texts[i]) as [texts.length, D]. */
function encodeTexts(model: Pick<ZeroShotModel, "encodeText">, texts: string[], tokenizer: Tokenizer, batchSize: number): { values: Float32Array; dim: number } {
  let out: Float32Array | undefined;
  let dim = 0;
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = texts.slice(start, start + batchSize);
    const tokens = tokenizer(batch);
    let values: Float32Array;
    try {
      const f = model.encodeText(tokens); // [b, D]
      try {
        values = f.dataSync() as Float32Array;
        if (out === undefined) {
          dim = f.shape[1];
          out = new Float32Array(texts.length * dim);
        }
      } finally {
        f.dispose();
      }
    } finally {
      tokens.dispose();
    }
    out.set(values, start * dim);
  }
  normalizeRowsInPlace(out!, dim, "encodeTexts");
  return { values: out!, dim };
}

/** Encodes every template x class prompt once. */
function encodePromptBank(
  model: ZeroShotModel,
  classNames: readonly string[],
  templates: readonly string[],
  opts: { batchSize?: number; tokenizer?: Tokenizer } = {},
): PromptBank {
  const fn = "encodePromptBank";
  const names = checkClassNames(classNames, fn);
  const temps = checkTemplates(templates, fn);
  const batchSize = checkPositiveInt(fn, "batchSize", opts.batchSize ?? 256);
  const contextLength = model.config.text_cfg.context_length;
  if (opts.tokenizer === undefined) checkPromptsFit(names, temps, contextLength, fn);
  const tokenizer: Tokenizer = opts.tokenizer ?? ((texts) => tokenize(texts, { contextLength }));
  const prompts = temps.flatMap((t) => names.map((c) => fillPrompt(t, c)));
  const { values, dim } = encodeTexts(model, prompts, tokenizer, batchSize);
  return { classNames: names, templates: temps, dim, text: values, gram: gramMatrices(values, temps.length, names.length, dim) };
}

