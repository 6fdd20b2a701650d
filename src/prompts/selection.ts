/**
 * Choosing templates on a validation split: greedy forward selection (as the CLIP authors chose
 * their 7 ImageNet templates, Radford et al. 2021, https://arxiv.org/abs/2103.00020 §3.1.4) and
 * a weighted ensemble whose template weights are fit by cross-entropy at the model's temperature.
 *
 * Both functions take the prompt bank and a VALIDATION feature set only: there is no argument
 * through which test data could reach them. Carve the validation set from the training split
 * (`carveValidation`), choose here, then score the choice once on the test split
 * (`ensembleScores` with `selectionWeights(...)` or the fitted weights).
 *
 * Greedy forward selection: start from no templates; at each step add the template whose
 * ensemble with those already chosen has the best validation top-1 (ties: lower validation NLL,
 * then the lower template index); run up to `maxTemplates` steps and keep the shortest prefix
 * with the best validation top-1.
 *
 * Weighted ensemble: a = softmax(theta) over templates, class c scored by
 * cos(f, n(sum_p a_p t_pc)); theta starts at 0 (the all-templates ensemble) and is fit with Adam
 * to minimise the validation cross-entropy of logitScale * scores plus `l2` * ||theta||^2.
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../util/random";
import { AdamW } from "../train/adamw";
import { checkPositiveInt } from "../util/checks";
import { labelRanks, meanNll } from "../eval/classifier_metrics";
import { templateCosines, type FeatureSet, type PromptBank } from "./prompt_bank";

export interface SelectionStep {
  /** Template added at this step. */
  template: string;
  index: number;
  /** Validation top-1 of the ensemble of the templates chosen so far. */
  validationTop1: number;
  validationNll: number;
}

export interface GreedySelection {
  /** Indices into bank.templates of the chosen prefix, in the order they were added. */
  selected: number[];
  templates: string[];
  validationTop1: number;
  /** Every step run (longer than `selected` when later steps did not help). */
  trace: SelectionStep[];
}

export interface SelectionOptions {
  /** Most templates to add; default all. */
  maxTemplates?: number;
  /** Logit multiplier for the NLL tie-break; default 100. */
  logitScale?: number;
}

/** Greedy forward selection of templates on the validation set (see the module comment). */
export function greedyTemplateSelection(bank: PromptBank, validation: FeatureSet, opts: SelectionOptions = {}): GreedySelection {
  const fn = "greedyTemplateSelection";
  const p = bank.templates.length;
  const c = bank.classNames.length;
  const n = validation.n;
  const maxTemplates = Math.min(p, checkPositiveInt(fn, "maxTemplates", opts.maxTemplates ?? p));
  const scale = opts.logitScale ?? 100;
  const cos = templateCosines(bank, validation); // [N, P, C]
  // Running state of the chosen set S: sum_{p in S} cos[:, p, :] and G_c(S) = ||sum_{p in S} t_pc||^2.
  const sum = new Float64Array(n * c);
  const norm2 = new Float64Array(c);
  const chosen: number[] = [];
  const inSet = new Uint8Array(p);
  const trace: SelectionStep[] = [];
  const scores = new Float64Array(n * c);
  const candidateNorm2 = new Float64Array(c);
  for (let step = 0; step < maxTemplates; step++) {
    let best: { index: number; top1: number; nll: number; norm2: Float64Array } | undefined;
    for (let q = 0; q < p; q++) {
      if (inSet[q]) continue;
      for (let k = 0; k < c; k++) {
        let cross = 0;
        for (const s of chosen) cross += bank.gram[(k * p + s) * p + q];
        candidateNorm2[k] = norm2[k] + 2 * cross + bank.gram[(k * p + q) * p + q];
      }
      for (let i = 0; i < n; i++) {
        const o = (i * p + q) * c;
        for (let k = 0; k < c; k++) scores[i * c + k] = (sum[i * c + k] + cos[o + k]) / Math.sqrt(candidateNorm2[k]);
      }
      const ranks = labelRanks(scores, validation.labels, c);
      let hits = 0;
      for (let i = 0; i < n; i++) if (ranks[i] === 0) hits++;
      const top1 = hits / n;
      if (best && top1 < best.top1) continue;
      const nll = meanNll(scores, validation.labels, c, scale);
      if (!best || top1 > best.top1 || nll < best.nll) best = { index: q, top1, nll, norm2: Float64Array.from(candidateNorm2) };
    }
    const q = best!.index;
    chosen.push(q);
    inSet[q] = 1;
    norm2.set(best!.norm2);
    for (let i = 0; i < n; i++) {
      const o = (i * p + q) * c;
      for (let k = 0; k < c; k++) sum[i * c + k] += cos[o + k];
    }
    trace.push({ template: bank.templates[q], index: q, validationTop1: best!.top1, validationNll: best!.nll });
  }
  let bestLength = 1;
  trace.forEach((s, i) => {
    if (s.validationTop1 > trace[bestLength - 1].validationTop1) bestLength = i + 1;
  });
  const selected = chosen.slice(0, bestLength);
  return { selected, templates: selected.map((i) => bank.templates[i]), validationTop1: trace[bestLength - 1].validationTop1, trace };
}

/** Template weights (1 on the selected templates, 0 elsewhere) for `ensembleScores`. */
export function selectionWeights(bank: PromptBank, selected: readonly number[]): number[] {
  const a = new Array<number>(bank.templates.length).fill(0);
  for (const i of selected) a[i] = 1;
  return a;
}

export interface WeightedEnsemble {
  /** Template weights on the simplex (sum 1), one per bank template. */
  weights: number[];
  validationNll: number;
  validationTop1: number;
  /** Validation loss (cross-entropy + penalty) every 10 steps. */
  losses: number[];
}

export interface WeightedEnsembleOptions {
  /** Multiplier of the cosines (exp(model.logitScale)); default 100. */
  logitScale?: number;
  /** Adam steps; default 300. */
  steps?: number;
  /** Adam learning rate; default 0.05. */
  lr?: number;
  /** Penalty on theta (pulls towards the uniform ensemble); default 1e-3. */
  l2?: number;
}

/** Template weights fit on the validation set (see the module comment). Deterministic. */
export function weightedTemplateEnsemble(bank: PromptBank, validation: FeatureSet, opts: WeightedEnsembleOptions = {}): WeightedEnsemble {
  const fn = "weightedTemplateEnsemble";
  const p = bank.templates.length;
  const c = bank.classNames.length;
  const n = validation.n;
  const steps = checkPositiveInt(fn, "steps", opts.steps ?? 300);
  const scale = opts.logitScale ?? 100;
  const lr = opts.lr ?? 0.05;
  const l2 = opts.l2 ?? 1e-3;
  if (!(scale > 0) || !(lr > 0) || !(l2 >= 0)) throw new RangeError(`${fn}: logitScale and lr must be > 0 and l2 >= 0, got ${scale}, ${lr}, ${l2}`);
  const cosArr = templateCosines(bank, validation);
  const cos = tf.tensor3d(cosArr, [n, p, c]); // [N, P, C]
  const gram = tf.tensor3d(Float32Array.from(bank.gram), [c, p, p]); // [C, P, P]
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d(validation.labels, "int32"), c)) as tf.Tensor2D; // [N, C]
  // Made inside tidy: tidy frees the initial values (tf.variable copies them), never variables.
  let theta!: tf.Variable; // [P]
  let optimizer!: AdamW;
  tf.tidy(() => {
    theta = tf.variable(tf.zeros([p]), true);
    optimizer = new AdamW([{ name: theta.name, variable: theta, decay: false }], { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  });
  const losses: number[] = [];
  const scoresOf = (a: tf.Tensor1D): tf.Tensor2D => {
    const num = tf.sum(tf.mul(cos, tf.reshape(a, [1, p, 1])), 1); // [N, C]
    const ga = tf.reshape(tf.matMul(tf.reshape(gram, [c * p, p]), tf.reshape(a, [p, 1])), [c, p]); // [C, P]
    const quad = tf.sum(tf.mul(ga, tf.reshape(a, [1, p])), 1); // [C]
    return tf.div(num, tf.sqrt(quad)) as tf.Tensor2D; // [N, C]
  };
  try {
    for (let s = 0; s < steps; s++) {
      const { value, grads } = tf.variableGrads(
        () =>
          tf.tidy(() => {
            const scores = scoresOf(tf.softmax(theta) as tf.Tensor1D);
            const ce = tf.losses.softmaxCrossEntropy(labels, tf.mul(scores, scale));
            return tf.add(ce, tf.mul(l2, tf.sum(tf.square(theta)))) as tf.Scalar;
          }),
        [theta],
      );
      optimizer.apply(grads, lr);
      if (s % 10 === 0 || s === steps - 1) losses.push(value.dataSync()[0]);
      tf.dispose([value, grads]);
    }
    const [weightsT, scoresT] = tf.tidy(() => {
      const a = tf.softmax(theta) as tf.Tensor1D; // [P]
      return [a, scoresOf(a)];
    });
    const weights = Array.from(weightsT.dataSync());
    const scores = scoresT.dataSync() as Float32Array; // [N, C]
    tf.dispose([weightsT, scoresT]);
    const ranks = labelRanks(scores, validation.labels, c);
    let hits = 0;
    for (let i = 0; i < n; i++) if (ranks[i] === 0) hits++;
    return { weights, validationNll: meanNll(scores, validation.labels, c, scale), validationTop1: hits / n, losses };
  } finally {
    optimizer.dispose();
    tf.dispose([cos, gram, labels, theta]);
  }
}

/**
 * A seeded stratified validation split carved from TRAINING labels: `perClass` images of every
 * class (or fewer if a class has fewer), returned as sorted indices, plus the remaining indices.
 */
export function carveValidation(
  trainLabels: ArrayLike<number>,
  numClasses: number,
  perClass: number,
  seed = 0,
): { validation: Int32Array; rest: Int32Array } {
  const fn = "carveValidation";
  checkPositiveInt(fn, "numClasses", numClasses);
  checkPositiveInt(fn, "perClass", perClass);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < trainLabels.length; i++) {
    const y = trainLabels[i];
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) throw new RangeError(`${fn}: label ${i} = ${y} outside [0, ${numClasses})`);
    byClass[y].push(i);
  }
  const rng = new Random(seed);
  const picked = new Uint8Array(trainLabels.length);
  for (const list of byClass) {
    rng.shuffle(list);
    for (const i of list.slice(0, perClass)) picked[i] = 1;
  }
  const validation: number[] = [];
  const rest: number[] = [];
  for (let i = 0; i < picked.length; i++) (picked[i] ? validation : rest).push(i);
  return { validation: Int32Array.from(validation), rest: Int32Array.from(rest) };
}
