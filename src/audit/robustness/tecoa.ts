/**
 * TeCoA: text-guided contrastive adversarial fine-tuning (Mao et al. 2023, "Understanding
 * Zero-Shot Adversarial Robustness for Large-Scale Models", https://arxiv.org/abs/2212.07016, §3).
 * The image encoder is fine-tuned on PGD examples made against the zero-shot classifier whose
 * class embeddings come from the frozen text encoder, with cross-entropy on those logits:
 *
 *   W      = n(mean_p n(encodeText(template_p(class))))        [C, D], computed once, frozen
 *   x_adv  = PGD(CE(logits(x), y), x; eps, attackSteps)          (random start, [0, 1] pixels)
 *   loss   = mean_b CE(exp(t) * n(encodeImage(x_adv)) @ W^T, y)  -> AdamW on the visual.* weights
 *
 * Only the image tower's trainable weights (`visual.*`) move; the text tower and the temperature
 * stay as they were. The prompts are the dataset's *training* templates (classes.ts: for
 * Fashion-MNIST its caption set's, else the templates labelled sources' captions are made from),
 * so the evaluation templates of the audit stay unseen. The training images are the first
 * `trainLimit` items of a labelled dataset, read through the data pipeline at the model's input
 * (x in [0, 1], [S, S, 3], what the audit attacks; L-inf budgets per value, L2 budgets given for a
 * 3x32x32 input and scaled by sqrt(S*S*3 / 3072) as in the audit). Batches are seeded
 * permutations of them (epoch e's order from (seed, e)), and each step's PGD random start from
 * (seed, step). The model is changed in place; load a second copy to compare before and after.
 */
import * as tf from "@tensorflow/tfjs";
import type { Clip } from "../../model/clip";
import { AdamW, clipGradNorm, decaysWeight } from "../../train/adamw";
import { cosineLr } from "../../train/schedule";
import { zeroShotClassifier } from "../../eval/zero_shot";
import type { Dataset, SkippedItem } from "../../data/dataset";
import { preparedBatch01, subsetPrepared } from "../../data/prepared";
import { Random, mixSeed } from "../../util/random";
import { AttackNorm, checkEps, checkNorm, pgd } from "./attacks";
import { appliedEps } from "./budgets";
import { checkLabelledDataset, resolveClassPrompts } from "./classes";
import { zeroShotLoss, zeroShotLogits01 } from "./objective";
import { readLabelledSet } from "./read";
import { argmaxAt } from "../../util/argmax";

export interface TecoaOptions {
  /** Optimisation steps. */
  steps: number;
  batchSize: number;
  /** Peak learning rate (linear warm-up, then cosine to zero). */
  lr: number;
  warmupSteps: number;
  /** AdamW decoupled weight decay on matrices (open_clip's rule). */
  weightDecay: number;
  /** Global gradient-norm clip; null disables it. */
  gradClipNorm: number | null;
  /** Training attack budget, [0, 1] pixel units (L2: for a 3x32x32 input, scaled to the model's). */
  eps: number;
  norm: AttackNorm;
  /** PGD steps per training batch (Mao et al. use 2). */
  attackSteps: number;
  /** PGD step size; default 2.5 * eps / attackSteps. */
  attackStepSize?: number;
  seed: number;
  /** Prompt templates of the frozen classifier; default the dataset's training templates. */
  templates?: string[];
  /** Class names in label order; default the dataset's (as the audit chooses them). */
  classNames?: string[];
  /** Use only the first N training images (all by default: they are held in memory at the model's size). */
  trainLimit?: number;
  /** Go on past unreadable images (reported through `onSkip`, counted in the result). */
  skipBadImages?: boolean;
}

export const TECOA_DEFAULTS: TecoaOptions = {
  steps: 300,
  batchSize: 64,
  lr: 1e-4,
  warmupSteps: 20,
  weightDecay: 0.1,
  gradClipNorm: 1.0,
  eps: 4 / 255,
  norm: "linf",
  attackSteps: 2,
  seed: 0,
};

export interface TecoaStep {
  step: number;
  /** Mean cross-entropy on the adversarial batch (before the update). */
  loss: number;
  /** Accuracy of the batch's adversarial examples (before the update). */
  adversarialAccuracy: number;
  lr: number;
  seconds: number;
}

export interface TecoaResult {
  steps: number;
  history: TecoaStep[];
  /** Training seconds (attacks + updates). */
  seconds: number;
  /** Names of the weights that were fine-tuned. */
  tuned: string[];
  /** Training images used, and how many were skipped as unreadable. */
  images: number;
  skipped: number;
}

const KEYS = [...Object.keys(TECOA_DEFAULTS), "attackStepSize", "templates", "classNames", "trainLimit", "skipBadImages"];

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

export function resolveTecoaOptions(input: Partial<TecoaOptions> = {}): TecoaOptions {
  const fn = "tecoaFineTune";
  for (const k of Object.keys(input)) {
    if (!KEYS.includes(k)) throw new RangeError(`${fn}: unknown option ${JSON.stringify(k)}; valid options: ${KEYS.join(", ")}`);
  }
  const o: TecoaOptions = { ...TECOA_DEFAULTS };
  for (const [k, v] of Object.entries(input)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  const posInt = (k: "steps" | "batchSize" | "attackSteps") => {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`${fn}: ${k} must be a positive integer, got ${show(o[k])}`);
  };
  posInt("steps");
  posInt("batchSize");
  posInt("attackSteps");
  if (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 0) throw new RangeError(`${fn}: warmupSteps must be an integer >= 0, got ${show(o.warmupSteps)}`);
  if (!(typeof o.lr === "number" && o.lr > 0 && Number.isFinite(o.lr))) throw new RangeError(`${fn}: lr must be a positive number, got ${show(o.lr)}`);
  if (!(typeof o.weightDecay === "number" && o.weightDecay >= 0)) throw new RangeError(`${fn}: weightDecay must be >= 0, got ${show(o.weightDecay)}`);
  if (o.gradClipNorm !== null && !(typeof o.gradClipNorm === "number" && o.gradClipNorm > 0)) throw new RangeError(`${fn}: gradClipNorm must be > 0 or null, got ${show(o.gradClipNorm)}`);
  checkEps(fn, o.eps);
  checkNorm(fn, o.norm);
  if (o.attackStepSize !== undefined && !(typeof o.attackStepSize === "number" && o.attackStepSize >= 0)) {
    throw new RangeError(`${fn}: attackStepSize must be a number >= 0, got ${show(o.attackStepSize)}`);
  }
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new RangeError(`${fn}: seed must be a non-negative integer, got ${show(o.seed)}`);
  if (o.trainLimit !== undefined && (!Number.isInteger(o.trainLimit) || o.trainLimit < 1)) throw new RangeError(`${fn}: trainLimit must be a positive integer, got ${show(o.trainLimit)}`);
  if (o.skipBadImages !== undefined && typeof o.skipBadImages !== "boolean") throw new TypeError(`${fn}: skipBadImages must be true or false, got ${show(o.skipBadImages)}`);
  return o;
}

/**
 * Fine-tunes `model`'s image tower in place with TeCoA on the first `trainLimit` items of `train`
 * (a labelled Dataset, e.g. `openDataset("fashion-mnist", { split: "train" })`). `onStep` reports
 * every step, `onSkip` every unreadable image left out under `skipBadImages`.
 */
export async function tecoaFineTune(
  model: Clip,
  train: Dataset,
  options: Partial<TecoaOptions> = {},
  callbacks: { onStep?: (s: TecoaStep & { totalSteps: number }) => void; onSkip?: (item: SkippedItem) => void } = {},
): Promise<TecoaResult> {
  const fn = "tecoaFineTune";
  const o = resolveTecoaOptions(options);
  const ds = checkLabelledDataset(fn, train);
  const prompts = resolveClassPrompts(ds, { classNames: o.classNames, templates: o.templates }, fn);
  const { set, skipped } = await readLabelledSet(ds, model.config, prompts.classNames.length, { limit: o.trainLimit, skipBadImages: o.skipBadImages, onSkip: callbacks.onSkip }, fn);
  const count = set.n;
  if (count < o.batchSize) throw new RangeError(`${fn}: ${count} training images make no batch of ${o.batchSize}`);
  const budget = appliedEps(o.norm, o.eps, set.size * set.size * 3);
  const clf = zeroShotClassifier(model, prompts.classNames, prompts.trainTemplates);
  const weights = tf.clone(clf.weights); // [C, D], frozen
  clf.dispose();

  const specs = model.specs.filter((s) => s.trainable && s.name.startsWith("visual."));
  const params = specs.map((s) => {
    const variable = model.params.get(s.name)!;
    return { name: variable.name, variable, decay: decaysWeight(s.name, s.shape) };
  });
  const vars = params.map((p) => p.variable);
  // In a tidy: AdamW's constructor leaves the zerosLike tensors its moment variables start from.
  let adamw!: AdamW;
  tf.tidy(() => {
    adamw = new AdamW(params, { weightDecay: o.weightDecay });
  });
  const schedule = { baseLr: o.lr, warmupSteps: Math.min(o.warmupSteps, o.steps), totalSteps: o.steps };
  const stepsPerEpoch = Math.floor(count / o.batchSize);
  const stepSize = o.attackStepSize ?? (2.5 * budget) / o.attackSteps;
  const history: TecoaStep[] = [];
  let order: Int32Array | null = null;
  let orderEpoch = -1;
  let seconds = 0;
  try {
    for (let step = 0; step < o.steps; step++) {
      const t0 = performance.now();
      const epoch = Math.floor(step / stepsPerEpoch);
      if (epoch !== orderEpoch) {
        order = new Random(mixSeed(o.seed, 1, epoch)).shuffle(Int32Array.from({ length: count }, (_, i) => i)) as Int32Array;
        orderEpoch = epoch;
      }
      const start = (step % stepsPerEpoch) * o.batchSize;
      const indices = order!.subarray(start, start + o.batchSize);
      const labels = Int32Array.from(indices, (i) => set.labels[i]);
      const x = preparedBatch01(subsetPrepared(set, indices), 0, indices.length); // [B, S, S, 3]
      const lossFn = zeroShotLoss(model, weights, labels);
      let adv: tf.Tensor4D;
      try {
        adv = pgd(lossFn, x, { eps: budget, norm: o.norm, steps: o.attackSteps, stepSize, randomStart: true, seed: mixSeed(o.seed, 2, step) });
      } finally {
        x.dispose();
      }
      const lr = cosineLr(step, schedule);
      let loss: number;
      let correct = 0;
      try {
        const logits = zeroShotLogits01(model, weights, adv); // [B, C]
        const c = weights.shape[0];
        const values = logits.dataSync();
        logits.dispose();
        labels.forEach((y, b) => {
          if (argmaxAt(values, b * c, c) === y) correct++;
        });
        const { value, grads } = tf.variableGrads(() => tf.div(lossFn(adv), labels.length) as tf.Scalar, vars);
        loss = value.dataSync()[0];
        value.dispose();
        if (!Number.isFinite(loss)) {
          tf.dispose(grads);
          throw new Error(`tecoaFineTune: the loss became ${loss} at step ${step}; lower lr (${o.lr})`);
        }
        const clipped = o.gradClipNorm === null ? grads : clipGradNorm(grads, o.gradClipNorm).clipped;
        adamw.apply(clipped, lr);
        tf.dispose(clipped);
      } finally {
        adv.dispose();
      }
      const s = { step, loss, adversarialAccuracy: correct / labels.length, lr, seconds: (performance.now() - t0) / 1000 };
      seconds += s.seconds;
      history.push(s);
      callbacks.onStep?.({ ...s, totalSteps: o.steps });
    }
  } finally {
    adamw.dispose();
    weights.dispose();
  }
  return { steps: o.steps, history, seconds, tuned: specs.map((s) => s.name), images: count, skipped: skipped.length };
}
