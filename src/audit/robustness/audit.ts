/**
 * The robustness audit of a CLIP's zero-shot classifier on any labelled dataset (an image folder,
 * a CSV, WebDataset shards, Parquet, Fashion-MNIST), at the model's input resolution:
 *
 * 0. The first `limit` items are read through the data pipeline (`prepareSet`: decoded, brought
 *    to the model's input by its transform, RGB) and divided by 255: x in [0, 1], [n, S, S, 3].
 *    Everything below acts on x, with the transform's mean/std normalisation inside the
 *    differentiated path (objective.ts). Class names and templates come from the options, else
 *    the dataset (classes.ts); each image is paired with its own captions, or one generated for
 *    it (seeded), for the caption cosine and retrieval.
 * 1. Natural corruptions at severities 1-5 (default ImageNet-C's 15, Hendrycks & Dietterich 2019,
 *    https://arxiv.org/abs/1903.12261, with the reference's parameters scaled to the input size;
 *    see corruptions.ts): zero-shot top-1, the mean cosine of matching image-text pairs (image vs
 *    its class embedding, the ensemble of the evaluation prompts; and image vs its own caption),
 *    and image<->caption Recall@1, plus the means over all corruption x severity cells and their
 *    ratio to the clean value. mCE and relative mCE need a baseline model: `compareCorruptionErrors`
 *    (mce.ts) of two audits.
 * 2. Adversarial attacks (FGSM https://arxiv.org/abs/1412.6572, PGD https://arxiv.org/abs/1706.06083,
 *    attacks.ts; APGD-CE and APGD-T https://arxiv.org/abs/2003.01690, apgd.ts) under L-inf and L2
 *    budgets on x: robust top-1 and attack success (the fraction of correctly classified images
 *    that the attack flips) per eps, the drop of the matching-pair cosine, the worst case over the
 *    attacks per image, and targeted PGD towards a random wrong class prompt. L-inf budgets are
 *    per pixel value; L2 budgets are given for a 3x32x32 input (3072 values, RobustBench's CIFAR-10
 *    convention) and applied as eps * sqrt(S*S*3 / 3072) (budgets.ts); rows carry both.
 * 3. Sanity checks, reported with the numbers they come from:
 *    - eps = 0 gives exactly the clean accuracy (every attack, both norms);
 *    - PGD is at least as strong as FGSM at every eps (within `tolerance`);
 *    - APGD-CE and APGD-T are at least as strong as PGD at every eps (within `tolerance`);
 *    - accuracy does not rise with eps (within `tolerance`);
 *    - more PGD steps (`moreSteps`) do not help the model (within `tolerance`).
 *    A failed check is reported, never thrown: it says the attack is too weak (gradient masking, a
 *    bad step size) and the robust numbers are then upper bounds.
 *
 * Images and texts are encoded by the batched encoder (src/eval/encode.ts). The result is a plain
 * JSON-safe object: `robustnessSection` turns it into a report section, the CLI writes it next to
 * an Arrow table of its rows. Randomness (corruptions, random starts, targets, generated
 * captions) is seeded by `seed`.
 */
import * as tf from "@tensorflow/tfjs";
import type { ZeroShotModel } from "../../eval/zero_shot";
import { zeroShotClassifier } from "../../eval/zero_shot";
import { encodePixels, encodeTexts } from "../../eval/encode";
import { retrievalMetrics } from "../../eval/retrieval";
import { templateCaptioner } from "../../data/captioner";
import type { Dataset } from "../../data/dataset";
import { preparedBatch01, type PreparedSet } from "../../data/prepared";
import type { ClipConfig } from "../../model/config";
import { DEFAULT_CORRUPTION_SET, checkSeverity, corrupt, listCorruptions, resolveCorruptions, type Severity } from "./corruptions";
import { checkEps } from "./attacks";
import { toModelInput, type Normalisation } from "./objective";
import { mean, median, runAttacks } from "./attack_suite";
import { L2_REFERENCE_VALUES, attackBatchSize, l2Scale } from "./budgets";
import { checkLabelledDataset, resolveClassPrompts } from "./classes";
import { previewPixels } from "./preview";
import { readLabelledSet } from "./read";
import { ATTACK_NAMES, type AttackName, type CorruptionPreview, type CorruptionRow, type CorruptionSummary, type ImageSetMetrics, type ResolvedAuditOptions, type RobustnessAuditOptions, type RobustnessResult } from "./types";
import { checkPositiveInt, checkSeed } from "../../util/checks";
import { fillPrompt } from "../../text/fill";
import { argmaxRows } from "../../util/argmax";

export type * from "./types";
export { ATTACK_NAMES } from "./types";
export { sanityChecks } from "./attack_suite";

/** What the audit needs of a model: a zero-shot CLIP with its config (`Clip` satisfies it). */
export type AuditModel = ZeroShotModel & { readonly config: ClipConfig };

export const ROBUSTNESS_DEFAULTS = {
  limit: 1000,
  attackLimit: 500,
  severities: [1, 2, 3, 4, 5] as Severity[],
  linfEps: [0, 2 / 255, 4 / 255, 8 / 255, 16 / 255],
  l2Eps: [0, 0.25, 0.5, 1, 2],
  attacks: [...ATTACK_NAMES] as AttackName[],
  pgdSteps: 10,
  apgdSteps: 20,
  apgdRestarts: 1,
  apgdTargets: 9,
  stepSizeFactor: 2.5,
  targeted: true,
  examples: 4,
  seed: 0,
  tolerance: 0.005,
  skipBadImages: false,
};

/** Images of the retrieval measures (the first ones). */
const RETRIEVAL_IMAGES = 1000;

const OPTION_KEYS = [
  "limit", "attackLimit", "corruptions", "severities", "linfEps", "l2Eps", "attacks", "pgdSteps", "apgdSteps", "apgdRestarts", "apgdTargets",
  "moreSteps", "stepSizeFactor", "targeted", "examples", "batchSize", "seed", "tolerance", "classNames", "templates", "skipBadImages",
  "onSkip", "onProgress",
];

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}


function epsGrid(name: string, v: unknown): number[] {
  if (!Array.isArray(v)) throw new TypeError(`auditRobustness: ${name} must be an array of budgets >= 0, got ${show(v)}`);
  const grid = v.map((e) => checkEps(`auditRobustness: ${name}`, e));
  return [...new Set([0, ...grid])].sort((a, b) => a - b);
}

function stringList(name: string, v: unknown): readonly string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new TypeError(`auditRobustness: ${name} must be an array of strings, got ${show(v)}`);
  return v;
}

/** Defaults filled in and every option checked; one-line errors naming the option. */
export function resolveAuditOptions(input: RobustnessAuditOptions = {}): ResolvedAuditOptions {
  if (input === null || typeof input !== "object") throw new TypeError(`auditRobustness: options must be an object (valid keys: ${OPTION_KEYS.join(", ")})`);
  for (const k of Object.keys(input)) {
    if (!OPTION_KEYS.includes(k)) throw new RangeError(`auditRobustness: unknown option ${JSON.stringify(k)}; valid options: ${OPTION_KEYS.join(", ")}`);
  }
  const d = ROBUSTNESS_DEFAULTS;
  const pgdSteps = checkPositiveInt("auditRobustness", "pgdSteps", input.pgdSteps ?? d.pgdSteps);
  const given = input.corruptions ?? [DEFAULT_CORRUPTION_SET];
  if (!Array.isArray(given)) throw new TypeError(`auditRobustness: corruptions must be an array of corruption and set names (${listCorruptions().join(", ")})`);
  const corruptions = resolveCorruptions(given, "auditRobustness: corruptions");
  const attacks = input.attacks ?? d.attacks;
  if (!Array.isArray(attacks) || attacks.some((a) => !(ATTACK_NAMES as readonly string[]).includes(a))) {
    throw new RangeError(`auditRobustness: attacks must be a list of ${ATTACK_NAMES.join(", ")} (or empty for none), got ${show(attacks)}`);
  }
  const severities = input.severities ?? d.severities;
  if (!Array.isArray(severities) || severities.length === 0) throw new RangeError(`auditRobustness: severities must be a non-empty array of integers 1-5, got ${show(severities)}`);
  severities.forEach((s) => {
    checkSeverity(s, "auditRobustness: severities");
    if (s === 0) throw new RangeError("auditRobustness: severities must be 1-5 (severity 0 is the clean measurement, always included)");
  });
  const stepSizeFactor = input.stepSizeFactor ?? d.stepSizeFactor;
  if (typeof stepSizeFactor !== "number" || !(stepSizeFactor > 0) || !Number.isFinite(stepSizeFactor)) {
    throw new RangeError(`auditRobustness: stepSizeFactor must be a positive number, got ${show(stepSizeFactor)}`);
  }
  const tolerance = input.tolerance ?? d.tolerance;
  if (typeof tolerance !== "number" || !(tolerance >= 0 && tolerance < 1)) throw new RangeError(`auditRobustness: tolerance must be in [0, 1), got ${show(tolerance)}`);
  const seed = checkSeed("auditRobustness", input.seed ?? d.seed);
  const examples = input.examples ?? d.examples;
  if (typeof examples !== "number" || !Number.isInteger(examples) || examples < 0) throw new RangeError(`auditRobustness: examples must be an integer >= 0, got ${show(examples)}`);
  const targeted = input.targeted ?? d.targeted;
  if (typeof targeted !== "boolean") throw new TypeError(`auditRobustness: targeted must be true or false, got ${show(targeted)}`);
  const skipBadImages = input.skipBadImages ?? d.skipBadImages;
  if (typeof skipBadImages !== "boolean") throw new TypeError(`auditRobustness: skipBadImages must be true or false, got ${show(skipBadImages)}`);
  for (const k of ["onProgress", "onSkip"] as const) {
    if (input[k] !== undefined && typeof input[k] !== "function") throw new TypeError(`auditRobustness: ${k} must be a function`);
  }
  return {
    limit: checkPositiveInt("auditRobustness", "limit", input.limit ?? d.limit),
    attackLimit: checkPositiveInt("auditRobustness", "attackLimit", input.attackLimit ?? d.attackLimit),
    corruptions,
    attacks: ATTACK_NAMES.filter((a) => attacks.includes(a)),
    severities: [...new Set(severities)].sort(),
    linfEps: epsGrid("linfEps", input.linfEps ?? d.linfEps),
    l2Eps: epsGrid("l2Eps", input.l2Eps ?? d.l2Eps),
    pgdSteps,
    apgdSteps: checkPositiveInt("auditRobustness", "apgdSteps", input.apgdSteps ?? d.apgdSteps),
    apgdRestarts: checkPositiveInt("auditRobustness", "apgdRestarts", input.apgdRestarts ?? d.apgdRestarts),
    apgdTargets: checkPositiveInt("auditRobustness", "apgdTargets", input.apgdTargets ?? d.apgdTargets),
    moreSteps: checkPositiveInt("auditRobustness", "moreSteps", input.moreSteps ?? 2 * pgdSteps),
    stepSizeFactor,
    targeted,
    examples,
    batchSize: input.batchSize === undefined ? undefined : checkPositiveInt("auditRobustness", "batchSize", input.batchSize),
    seed,
    tolerance,
    classNames: stringList("classNames", input.classNames),
    templates: stringList("templates", input.templates),
    skipBadImages,
    onSkip: input.onSkip,
    onProgress: input.onProgress,
  };
}

/** [0, 1] pixels of images [start, end) of a batch source. */
export type Batch01 = (start: number, end: number) => tf.Tensor4D;

/**
 * Unit image features of `k` images, `batch01(start, end)` giving their [0, 1] pixels, through
 * the batched encoder with the normalisation `norm`; [k, D] (the caller disposes it).
 */
export function embedImages01(model: AuditModel, norm: Normalisation, k: number, batch01: Batch01, batchSize?: number): tf.Tensor2D {
  const f = encodePixels(
    model,
    (s, e) => {
      const x = batch01(s, e); // [b, S, S, 3]
      try {
        return toModelInput(x, norm); // [b, S, S, 3]
      } finally {
        x.dispose();
      }
    },
    k,
    { normalize: true, batchSize },
  );
  return tf.tensor2d(f.values, [f.n, f.dim], "float32"); // [k, D]
}

/**
 * Runs the whole audit on `model` and the first `limit` items of `data` (a labelled Dataset:
 * `openDataset("fashion-mnist")`, `openDataset("imagefolder:photos")`, ...). The model is only
 * read: its weights are never changed.
 */
export async function auditRobustness(model: AuditModel, data: Dataset, options: RobustnessAuditOptions = {}): Promise<RobustnessResult> {
  const fn = "auditRobustness";
  const o = resolveAuditOptions(options);
  const ds = checkLabelledDataset(fn, data);
  const prompts = resolveClassPrompts(ds, o, fn);
  const t0 = performance.now();
  const { set, transform, skipped } = await readLabelledSet(
    ds,
    model.config,
    prompts.classNames.length,
    {
      limit: o.limit,
      skipBadImages: o.skipBadImages,
      onSkip: o.onSkip,
      captionSeed: o.seed,
      fallbackCaptioner: templateCaptioner(prompts.classNames, prompts.trainTemplates),
    },
    fn,
  );
  const tRead = performance.now();
  const result = auditPrepared(model, set, o, prompts.classNames, prompts.templates, { mean: transform.mean, std: transform.std });
  return {
    ...result,
    config: { dataset: ds.spec, datasetName: ds.name, ...result.config, resizeMode: transform.resizeMode },
    skipped: skipped.length,
    skippedItems: skipped,
    seconds: { ...result.seconds, read: (tRead - t0) / 1000, total: result.seconds.total + (tRead - t0) / 1000 },
  };
}

type PreparedResult = Omit<RobustnessResult, "config" | "skipped" | "skippedItems"> & {
  config: Omit<RobustnessResult["config"], "dataset" | "datasetName" | "resizeMode">;
};

/** The audit proper, on images already read (synchronous: every tensor is freed before it returns). */
function auditPrepared(model: AuditModel, set: PreparedSet, o: ResolvedAuditOptions, classNames: string[], templates: string[], norm: Normalisation): PreparedResult {
  const t0 = performance.now();
  const n = set.n;
  const m = Math.min(o.attackLimit, n);
  const r = Math.min(n, RETRIEVAL_IMAGES);
  const S = set.size;
  const inputValues = S * S * 3;
  const scale = l2Scale(inputValues);
  const labels = Int32Array.from(set.labels);
  const numClasses = classNames.length;
  const shortCaption = (c: number) => fillPrompt(templates[0], classNames[c]);

  const classifier = zeroShotClassifier(model, classNames, templates);
  const weights = tf.keep(tf.clone(classifier.weights)); // [C, D]
  classifier.dispose();
  // The retrieval images' captions (their own, or one generated each), encoded once.
  const texts: string[] = [];
  const owner: number[] = [];
  for (let i = 0; i < r; i++) {
    for (const c of set.captions[i]) {
      texts.push(c);
      owner.push(i);
    }
  }
  const captionFeatures = encodeTexts(model, texts, { normalize: true });
  const captionEmb = tf.tensor2d(captionFeatures.values, [captionFeatures.n, captionFeatures.dim], "float32"); // [T, D]
  const captionOwner = Int32Array.from(owner);
  const clean01: Batch01 = (s, e) => preparedBatch01(set, s, e);

  /** Predictions and per-image cosines with `classes` of unit embeddings [k, D]. */
  const classify = (emb: tf.Tensor2D, classes: Int32Array): { pred: Int32Array; cos: Float32Array; probs: Float32Array } => {
    const k = emb.shape[0];
    return tf.tidy(() => {
      const sims = tf.matMul(emb, tf.transpose(weights)); // [k, C]
      const logits = tf.mul(tf.exp(model.logitScale), sims); // [k, C]
      const simValues = sims.dataSync();
      const cos = new Float32Array(k);
      for (let i = 0; i < k; i++) cos[i] = simValues[i * numClasses + classes[i]];
      return { pred: argmaxRows(logits.dataSync(), k, numClasses), cos, probs: tf.softmax(logits).dataSync() as Float32Array };
    });
  };

  const measure = (batch01: Batch01): ImageSetMetrics => {
    const emb = embedImages01(model, norm, n, batch01, o.batchSize); // [n, D]
    try {
      const { pred, cos } = classify(emb, labels);
      let hits = 0;
      for (let i = 0; i < n; i++) if (pred[i] === labels[i]) hits++;
      const head = tf.slice(emb, [0, 0], [r, -1]) as tf.Tensor2D; // [r, D]
      let captionCos: number;
      let ret;
      try {
        // Cosine of each caption with its image, averaged per image, then over images.
        const pair = tf.tidy(() => tf.sum(tf.mul(tf.gather(head, tf.tensor1d(captionOwner, "int32")), captionEmb), 1).dataSync()); // [T]
        const sum = new Float64Array(r);
        const count = new Float64Array(r);
        pair.forEach((v, j) => {
          sum[captionOwner[j]] += v;
          count[captionOwner[j]]++;
        });
        captionCos = mean(Array.from(sum, (v, i) => v / count[i]));
        ret = retrievalMetrics(head, captionEmb, [1], { textToImageTargets: captionOwner });
      } finally {
        head.dispose();
      }
      return {
        top1: hits / n,
        matchCosine: mean(Array.from(cos)),
        captionCosine: captionCos,
        recallAt1ImageToText: ret.imageToText["R@1"],
        recallAt1TextToImage: ret.textToImage["R@1"],
      };
    } finally {
      emb.dispose();
    }
  };

  try {
    // 1. Clean and corrupted.
    const clean = measure(clean01);
    o.onProgress?.({ phase: "clean", done: 1, total: 1, label: "clean" });
    const t1 = performance.now();
    const corruptions: CorruptionRow[] = [];
    const total = o.corruptions.length * o.severities.length;
    const previewSeverity = o.severities.includes(3) ? 3 : median(o.severities);
    const first = tf.tidy(() => clean01(0, 1).dataSync()); // [1, S, S, 3]
    const shown = previewPixels(first, S, S, 3);
    const preview: CorruptionPreview = {
      severity: previewSeverity,
      key: set.keys[0],
      height: shown.height,
      width: shown.width,
      channels: 3,
      images: [{ name: "clean", pixels: shown.pixels }],
    };
    for (const name of o.corruptions) {
      for (const severity of o.severities) {
        const corrupted01: Batch01 = (s, e) => {
          const x = clean01(s, e); // [b, S, S, 3]
          try {
            const y = corrupt(x, name, severity, o.seed, s); // [b, S, S, 3]
            if (s === 0 && severity === previewSeverity) {
              preview.images.push({ name, pixels: previewPixels(y.dataSync().subarray(0, inputValues), S, S, 3).pixels });
            }
            return y;
          } finally {
            x.dispose();
          }
        };
        corruptions.push({ name, severity, ...measure(corrupted01) });
        o.onProgress?.({ phase: "corruptions", done: corruptions.length, total, label: `${name} ${severity}` });
      }
    }
    const summary = summarise(clean, corruptions, o.corruptions);
    const t2 = performance.now();

    // 2. Attacks on the first m images (none when `attacks` is empty).
    const attack = o.attacks.length === 0 ? noAttacks(o.tolerance) : runAttacks({
      o,
      model,
      weights,
      norm,
      set,
      labels: labels.slice(0, m),
      numClasses,
      classNames,
      caption: shortCaption,
      inputValues,
      batchSize: attackBatchSize(model.config, o.batchSize),
      classify,
      embed: (k, batch01, batchSize) => embedImages01(model, norm, k, batch01, batchSize),
    });
    const t3 = performance.now();
    return {
      config: {
        images: n,
        attackImages: o.attacks.length ? m : 0,
        retrievalImages: r,
        retrievalCaptions: texts.length,
        imageSize: S,
        inputValues,
        corruptions: o.corruptions,
        severities: o.severities,
        linfEps: o.linfEps,
        l2Eps: o.l2Eps,
        l2ReferenceValues: L2_REFERENCE_VALUES,
        l2Scale: scale,
        l2EpsApplied: o.l2Eps.map((e) => e * scale),
        attacks: o.attacks,
        pgdSteps: o.pgdSteps,
        apgdSteps: o.apgdSteps,
        apgdRestarts: o.apgdRestarts,
        apgdTargets: o.apgdTargets,
        moreSteps: o.moreSteps,
        stepSizeFactor: o.stepSizeFactor,
        targeted: o.targeted,
        seed: o.seed,
        classNames,
        templates: [...templates],
      },
      clean,
      corruptions,
      corruptionSummary: summary,
      ...attack,
      corruptionPreview: preview,
      seconds: { read: 0, clean: (t1 - t0) / 1000, corruptions: (t2 - t1) / 1000, attacks: (t3 - t2) / 1000, total: (t3 - t0) / 1000 },
    };
  } finally {
    tf.dispose([weights, captionEmb]);
  }
}

/** The attack part of a result when no attack ran. */
function noAttacks(tolerance: number): ReturnType<typeof runAttacks> {
  const empty = { pass: true, details: [] };
  return {
    attackClean: { top1: 0, matchCosine: 0, n: 0 },
    attacks: [],
    moreStepsAttacks: [],
    targetedAttacks: [],
    sanity: { epsZeroEqualsClean: empty, pgdAtLeastFgsm: empty, apgdAtLeastPgd: empty, monotoneInEps: empty, moreStepsNoHelp: empty, tolerance },
    examples: [],
  };
}

function summarise(clean: ImageSetMetrics, rows: CorruptionRow[], names: string[]): CorruptionSummary {
  const meanTop1 = mean(rows.map((x) => x.top1));
  const meanMatchCosine = mean(rows.map((x) => x.matchCosine));
  const meanRecallAt1 = mean(rows.map((x) => x.recallAt1ImageToText));
  return {
    meanTop1,
    meanMatchCosine,
    meanRecallAt1,
    relativeTop1: meanTop1 / clean.top1,
    relativeMatchCosine: meanMatchCosine / clean.matchCosine,
    relativeRecallAt1: meanRecallAt1 / clean.recallAt1ImageToText,
    perCorruption: names.map((name) => {
      const mine = rows.filter((x) => x.name === name);
      const t = mean(mine.map((x) => x.top1));
      return { name, meanTop1: t, relativeTop1: t / clean.top1, meanMatchCosine: mean(mine.map((x) => x.matchCosine)) };
    }),
  };
}
