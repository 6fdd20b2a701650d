/**
 * The robustness audit of a CLIP's zero-shot classifier on labelled grey images (Fashion-MNIST):
 *
 * 1. Natural corruptions (ImageNet-C style, https://arxiv.org/abs/1903.12261; see corruptions.ts)
 *    at severities 1-5: zero-shot top-1, the mean cosine of matching image-text pairs (image vs its
 *    class embedding, the ensemble of the evaluation prompts; and image vs its own caption), and
 *    image<->caption Recall@1, plus the means over all corruption x severity cells and their ratio
 *    to the clean value (ImageNet-C's "relative" view).
 * 2. Adversarial attacks (FGSM https://arxiv.org/abs/1412.6572, PGD https://arxiv.org/abs/1706.06083;
 *    see attacks.ts) under L-inf and L2 budgets in [0, 1] pixel space of the grey image, with the
 *    padding and CLIP normalisation inside the differentiated path (objective.ts): robust top-1 and
 *    attack success (the fraction of correctly classified images that the attack flips) per eps,
 *    the drop of the matching-pair cosine, and targeted PGD towards a random wrong class prompt.
 * 3. Sanity checks, reported with the numbers they come from:
 *    - eps = 0 gives exactly the clean accuracy (both attacks, both norms);
 *    - PGD is at least as strong as FGSM at every eps (within `tolerance`);
 *    - accuracy does not rise with eps (within `tolerance`);
 *    - more PGD steps (`moreSteps`) do not help the model (within `tolerance`).
 *    A failed check is reported, never thrown: it says the attack is too weak (gradient masking, a
 *    bad step size) and the robust numbers are then upper bounds.
 *
 * The result is a plain JSON-safe object (numbers, strings, arrays): `robustnessSection` turns it
 * into a report section, the CLI writes it next to an Arrow table of its rows.
 * Randomness (corruptions, random starts, targets, retrieval captions) is seeded by `seed`.
 */
import * as tf from "@tensorflow/tfjs";
import type { ZeroShotModel } from "../../eval/zero_shot";
import { zeroShotClassifier } from "../../eval/zero_shot";
import { retrievalMetrics } from "../../eval/retrieval";
import { CaptionSet, imageAttributes } from "../../data/captions";
import { checkLabelledImages, type LabelledImages } from "../../data/fashion_mnist";
import { mixSeed } from "../../data/batcher";
import { tokenize } from "../../text/tokenize";
import { Random } from "../../util/random";
import { checkCorruptionName, checkSeverity, corrupt, listCorruptions, type Severity } from "./corruptions";
import { checkEps } from "./attacks";
import { unitImageEmbeddings } from "./objective";
import { mean, median, runAttacks } from "./attack_suite";
import type { CorruptionPreview, CorruptionRow, CorruptionSummary, ImageSetMetrics, ResolvedAuditOptions, RobustnessAuditOptions, RobustnessResult } from "./types";

export type * from "./types";
export { sanityChecks } from "./attack_suite";

export const ROBUSTNESS_DEFAULTS = {
  limit: 1000,
  attackLimit: 500,
  severities: [1, 2, 3, 4, 5] as Severity[],
  linfEps: [0, 2 / 255, 4 / 255, 8 / 255, 16 / 255],
  l2Eps: [0, 0.25, 0.5, 1, 2],
  pgdSteps: 10,
  stepSizeFactor: 2.5,
  targeted: true,
  examples: 4,
  batchSize: 250,
  seed: 0,
  tolerance: 0.005,
};

const OPTION_KEYS = [
  "limit", "attackLimit", "corruptions", "severities", "linfEps", "l2Eps", "pgdSteps", "moreSteps", "stepSizeFactor",
  "targeted", "examples", "batchSize", "seed", "tolerance", "captions", "onProgress",
];

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new RangeError(`auditRobustness: ${name} must be a positive integer, got ${show(v)}`);
  return v;
}

function epsGrid(name: string, v: unknown): number[] {
  if (!Array.isArray(v)) throw new TypeError(`auditRobustness: ${name} must be an array of budgets >= 0, got ${show(v)}`);
  const grid = v.map((e) => checkEps(`auditRobustness: ${name}`, e));
  return [...new Set([0, ...grid])].sort((a, b) => a - b);
}


/** Defaults filled in and every option checked; one-line errors naming the option. */
export function resolveAuditOptions(input: RobustnessAuditOptions = {}): ResolvedAuditOptions {
  if (input === null || typeof input !== "object") throw new TypeError(`auditRobustness: options must be an object (valid keys: ${OPTION_KEYS.join(", ")})`);
  for (const k of Object.keys(input)) {
    if (!OPTION_KEYS.includes(k)) throw new RangeError(`auditRobustness: unknown option ${JSON.stringify(k)}; valid options: ${OPTION_KEYS.join(", ")}`);
  }
  const d = ROBUSTNESS_DEFAULTS;
  const pgdSteps = positiveInt("pgdSteps", input.pgdSteps ?? d.pgdSteps);
  const corruptions = input.corruptions ?? listCorruptions();
  if (!Array.isArray(corruptions)) throw new TypeError(`auditRobustness: corruptions must be an array of names (${listCorruptions().join(", ")})`);
  corruptions.forEach((c) => checkCorruptionName(c, "auditRobustness: corruptions"));
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
  const seed = input.seed ?? d.seed;
  if (typeof seed !== "number" || !Number.isInteger(seed) || seed < 0) throw new RangeError(`auditRobustness: seed must be a non-negative integer, got ${show(seed)}`);
  const examples = input.examples ?? d.examples;
  if (typeof examples !== "number" || !Number.isInteger(examples) || examples < 0) throw new RangeError(`auditRobustness: examples must be an integer >= 0, got ${show(examples)}`);
  const targeted = input.targeted ?? d.targeted;
  if (typeof targeted !== "boolean") throw new TypeError(`auditRobustness: targeted must be true or false, got ${show(targeted)}`);
  if (input.onProgress !== undefined && typeof input.onProgress !== "function") throw new TypeError("auditRobustness: onProgress must be a function");
  return {
    limit: positiveInt("limit", input.limit ?? d.limit),
    attackLimit: positiveInt("attackLimit", input.attackLimit ?? d.attackLimit),
    corruptions: [...new Set(corruptions)],
    severities: [...new Set(severities)].sort(),
    linfEps: epsGrid("linfEps", input.linfEps ?? d.linfEps),
    l2Eps: epsGrid("l2Eps", input.l2Eps ?? d.l2Eps),
    pgdSteps,
    moreSteps: positiveInt("moreSteps", input.moreSteps ?? 2 * pgdSteps),
    stepSizeFactor,
    targeted,
    examples,
    batchSize: positiveInt("batchSize", input.batchSize ?? d.batchSize),
    seed,
    tolerance,
    captions: input.captions ?? CaptionSet.load(),
    onProgress: input.onProgress,
  };
}

/** Grey images [start, end) of a split as [n, h, w, 1] in [0, 1]. */
export function greyImages01(data: LabelledImages, start: number, end: number): tf.Tensor4D {
  const { height: h, width: w } = data;
  const values = new Float32Array((end - start) * h * w);
  const src = data.images.subarray(start * h * w, end * h * w);
  for (let i = 0; i < values.length; i++) values[i] = src[i] / 255;
  return tf.tensor4d(values, [end - start, h, w, 1], "float32");
}

/** Index of the first maximum of each row of a [rows, c] array. */
function argmaxRows(values: ArrayLike<number>, rows: number, c: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (values[r * c + j] > values[r * c + best]) best = j;
    out[r] = best;
  }
  return out;
}

/**
 * Runs the whole audit on `model` and the first `limit` images of `test` (a labelled grey split,
 * e.g. `loadFashionMnist("test")`). The model is only read: its weights are never changed.
 */
export function auditRobustness(model: ZeroShotModel, test: LabelledImages, options: RobustnessAuditOptions = {}): RobustnessResult {
  const o = resolveAuditOptions(options);
  checkLabelledImages(test, "auditRobustness: test");
  const t0 = performance.now();
  const captions = o.captions;
  if (captions.numClasses !== test.classNames.length) {
    throw new RangeError(`auditRobustness: the caption set has ${captions.numClasses} classes, the data ${test.classNames.length}`);
  }
  const n = Math.min(o.limit, test.count);
  const m = Math.min(o.attackLimit, n);
  const r = Math.min(n, 1000);
  const { height: h, width: w } = test;
  const labels = Int32Array.from(test.labels.subarray(0, n));
  const numClasses = captions.numClasses;
  const imageSize = model.config.vision_cfg.image_size;
  const ctx = model.config.text_cfg.context_length;
  const tokenizer = (texts: string[]) => tokenize(texts, { contextLength: ctx, truncate: true });
  const classNames = captions.spec.classes.map((c) => c.canonical);
  const templates = captions.spec.evalTemplates;
  const shortCaption = (c: number) => templates[0].split("{}").join(classNames[c]);

  const classifier = zeroShotClassifier(model, classNames, templates, { tokenizer });
  const weights = tf.keep(tf.clone(classifier.weights)); // [C, D]
  classifier.dispose();
  // One caption per retrieval image, drawn as in training (seeded); encoded once.
  const rng = new Random(mixSeed(o.seed, 7));
  const texts: string[] = [];
  for (let i = 0; i < r; i++) texts.push(captions.captionForTraining(labels[i], imageAttributes(test.images, h, w, i * h * w), rng));
  const captionEmb = tf.tidy(() => {
    const parts: tf.Tensor2D[] = [];
    for (let s = 0; s < r; s += o.batchSize) {
      const f = model.encodeText(tokenizer(texts.slice(s, s + o.batchSize))); // [b, D]
      parts.push(tf.div(f, tf.norm(f, 2, 1, true)) as tf.Tensor2D);
    }
    return tf.concat(parts, 0) as tf.Tensor2D; // [r, D]
  });
  const source = greyImages01(test, 0, n); // [n, h, w, 1]

  /** Unit image embeddings of `images01` [k, h, w, 1], encoded batchSize at a time, [k, D]. */
  const embed = (images01: tf.Tensor4D): tf.Tensor2D => {
    const k = images01.shape[0];
    const parts: tf.Tensor2D[] = [];
    try {
      for (let s = 0; s < k; s += o.batchSize) {
        const size = Math.min(o.batchSize, k - s);
        const part = tf.tidy(() => unitImageEmbeddings(model, tf.slice(images01, [s, 0, 0, 0], [size, -1, -1, -1])));
        parts.push(part);
      }
      return tf.concat(parts, 0) as tf.Tensor2D;
    } finally {
      tf.dispose(parts);
    }
  };

  /** Predictions and per-image cosines with `classes` (default the labels) of unit embeddings [k, D]. */
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

  const measure = (images01: tf.Tensor4D): ImageSetMetrics => {
    const emb = embed(images01); // [n, D]
    try {
      const { pred, cos } = classify(emb, labels);
      let hits = 0;
      for (let i = 0; i < n; i++) if (pred[i] === labels[i]) hits++;
      const head = tf.slice(emb, [0, 0], [r, -1]) as tf.Tensor2D; // [r, D]
      let captionCos: number;
      let ret;
      try {
        captionCos = tf.tidy(() => tf.mean(tf.sum(tf.mul(head, captionEmb), 1)).dataSync()[0]); // mean of [r]
        ret = retrievalMetrics(head, captionEmb, [1]);
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
    const clean = measure(source);
    o.onProgress?.({ phase: "clean", done: 1, total: 1, label: "clean" });
    const t1 = performance.now();
    const corruptions: CorruptionRow[] = [];
    const total = o.corruptions.length * o.severities.length;
    const previewSeverity = o.severities.includes(3) ? 3 : median(o.severities);
    const preview: CorruptionPreview = {
      severity: previewSeverity,
      height: h,
      width: w,
      channels: 1,
      images: [{ name: "clean", pixels: Array.from(source.dataSync().subarray(0, h * w)) }],
    };
    for (const name of o.corruptions) {
      for (const severity of o.severities) {
        const corrupted = corrupt(source, name, severity, o.seed);
        try {
          corruptions.push({ name, severity, ...measure(corrupted) });
          if (severity === previewSeverity) preview.images.push({ name, pixels: Array.from(corrupted.dataSync().subarray(0, h * w)) });
        } finally {
          corrupted.dispose();
        }
        o.onProgress?.({ phase: "corruptions", done: corruptions.length, total, label: `${name} ${severity}` });
      }
    }
    const summary = summarise(clean, corruptions, o.corruptions);
    const t2 = performance.now();

    // 2. Attacks on the first m images.
    const attack = runAttacks(o, model, weights, source, labels, m, numClasses, embed, classify, shortCaption, classNames);
    const t3 = performance.now();
    return {
      config: {
        images: n,
        attackImages: m,
        retrievalImages: r,
        imageSize,
        corruptions: o.corruptions,
        severities: o.severities,
        linfEps: o.linfEps,
        l2Eps: o.l2Eps,
        pgdSteps: o.pgdSteps,
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
      seconds: { clean: (t1 - t0) / 1000, corruptions: (t2 - t1) / 1000, attacks: (t3 - t2) / 1000, total: (t3 - t0) / 1000 },
    };
  } finally {
    tf.dispose([weights, captionEmb, source]);
  }
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
