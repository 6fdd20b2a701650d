/**
 * Metrics of a classifier from its scores [N, C] (logits or cosines) and the true labels, in plain
 * JS: top-1/top-5, per-class accuracy, the confusion matrix, calibrated probabilities (softmax at a
 * given logit scale, CLIP's own temperature by default) and the expected calibration error
 * (Guo et al. 2017, "On Calibration of Modern Neural Networks", https://arxiv.org/abs/1706.04599):
 *
 *   ECE = sum_b (|B_b| / N) * | acc(B_b) - conf(B_b) |      equal-width bins of max probability
 *
 * Ties follow the zero-shot classifier's rule: the lowest class index wins among equal scores, and
 * the true class counts in the top k if it is among the first k in (score desc, index asc) order.
 */
import { checkLabels } from "./checks";
import { checkPositiveInt } from "../util/checks";
import type { ZeroShotEvaluation } from "./zero_shot";
import { argmaxAt, argmaxRows } from "../util/argmax";

export interface ReliabilityBin {
  /** Bin [lower, upper) of max probability (the last bin includes 1). */
  lower: number;
  upper: number;
  count: number;
  /** Mean max probability of the bin's images (NaN when empty). */
  confidence: number;
  /** Accuracy of the bin's images (NaN when empty). */
  accuracy: number;
}

/** The zero-shot evaluation's accuracy figures, plus the calibration of the probabilities. */
export interface ClassificationMetrics extends ZeroShotEvaluation {
  /** Mean negative log-likelihood of the true class at `logitScale`. */
  nll: number;
  /** Expected calibration error of the softmax at `logitScale`. */
  ece: number;
  reliability: ReliabilityBin[];
  /** The multiplier applied to the scores before the softmax. */
  logitScale: number;
}

export interface MetricsOptions {
  /** Multiplier of the scores before the softmax (exp(model.logitScale) for cosines); default 1. */
  logitScale?: number;
  /** Equal-width confidence bins for the ECE; default 15 (Guo et al.). */
  bins?: number;
}

function checkScores(fn: string, scores: ArrayLike<number>, n: number, c: number): void {
  if (scores.length !== n * c) throw new Error(`${fn}: scores hold ${scores.length} values, expected ${n} x ${c} = ${n * c}`);
}

/** 0-based position of the label in (score desc, index asc) order, per row. */
export function labelRanks(scores: ArrayLike<number>, labels: Int32Array, c: number): Int32Array {
  const n = labels.length;
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const y = labels[r];
    const target = scores[r * c + y];
    if (Number.isNaN(target)) throw new Error(`labelRanks: scores of row ${r} contain NaN`);
    let rank = 0;
    for (let j = 0; j < c; j++) {
      const v = scores[r * c + j];
      if (v > target || (v === target && j < y)) rank++;
    }
    out[r] = rank;
  }
  return out;
}

/** 1 where the row's top-1 prediction is the label, else 0 (for paired bootstraps). */
export function correctMask(scores: ArrayLike<number>, labels: Int32Array, c: number): Uint8Array {
  const ranks = labelRanks(scores, labels, c);
  return Uint8Array.from(ranks, (r) => (r === 0 ? 1 : 0));
}

/** Top-1 accuracy of scores [N, C]. */
export function top1Accuracy(scores: ArrayLike<number>, labels: Int32Array, c: number): number {
  checkScores("top1Accuracy", scores, labels.length, c);
  const ranks = labelRanks(scores, labels, c);
  let hits = 0;
  for (let i = 0; i < ranks.length; i++) if (ranks[i] === 0) hits++;
  return hits / labels.length;
}

/** Row-wise softmax of `scale * scores`, [N, C] (float64, max-subtracted). */
export function softmaxRows(scores: ArrayLike<number>, n: number, c: number, scale = 1): Float64Array {
  checkScores("softmaxRows", scores, n, c);
  const out = new Float64Array(n * c);
  for (let r = 0; r < n; r++) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, scale * scores[r * c + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += out[r * c + j] = Math.exp(scale * scores[r * c + j] - m);
    for (let j = 0; j < c; j++) out[r * c + j] /= s;
  }
  return out;
}

/** Mean negative log-likelihood of the labels under softmax(scale * scores). */
export function meanNll(scores: ArrayLike<number>, labels: Int32Array, c: number, scale = 1): number {
  const n = labels.length;
  checkScores("meanNll", scores, n, c);
  let total = 0;
  for (let r = 0; r < n; r++) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, scale * scores[r * c + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(scale * scores[r * c + j] - m);
    total += m + Math.log(s) - scale * scores[r * c + labels[r]];
  }
  return total / n;
}

/** ECE and reliability bins of probabilities [N, C] (rows summing to 1). */
export function expectedCalibrationError(probs: ArrayLike<number>, labels: Int32Array, c: number, bins = 15): { ece: number; reliability: ReliabilityBin[] } {
  const fn = "expectedCalibrationError";
  checkPositiveInt(fn, "bins", bins);
  const n = labels.length;
  if (n === 0) throw new Error(`${fn}: no rows`);
  checkScores(fn, probs, n, c);
  const count = new Array<number>(bins).fill(0);
  const conf = new Array<number>(bins).fill(0);
  const hits = new Array<number>(bins).fill(0);
  for (let r = 0; r < n; r++) {
    const best = argmaxAt(probs, r * c, c);
    const p = probs[r * c + best];
    const b = Math.min(bins - 1, Math.floor(p * bins));
    count[b]++;
    conf[b] += p;
    if (best === labels[r]) hits[b]++;
  }
  let ece = 0;
  const reliability: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const k = count[b];
    const confidence = k ? conf[b] / k : NaN;
    const accuracy = k ? hits[b] / k : NaN;
    if (k) ece += (k / n) * Math.abs(accuracy - confidence);
    reliability.push({ lower: b / bins, upper: (b + 1) / bins, count: k, confidence, accuracy });
  }
  return { ece, reliability };
}

/**
 * Every metric of scores [N, C] against labels. `numClasses` defaults to scores.length / N.
 * Probabilities (NLL, ECE) are softmax(logitScale * scores).
 */
export function classificationMetrics(
  scores: ArrayLike<number>,
  labels: Int32Array | readonly number[],
  numClasses?: number,
  opts: MetricsOptions = {},
): ClassificationMetrics {
  const fn = "classificationMetrics";
  const n = labels.length;
  if (n === 0) throw new Error(`${fn}: labels is empty`);
  const c = numClasses ?? scores.length / n;
  checkPositiveInt(fn, "numClasses", c);
  checkScores(fn, scores, n, c);
  const y = checkLabels(fn, "labels", labels, n, c);
  const scale = opts.logitScale ?? 1;
  if (!(Number.isFinite(scale) && scale > 0)) throw new RangeError(`${fn}: logitScale must be a positive number, got ${String(scale)}`);
  const ranks = labelRanks(scores, y, c);
  const pred = argmaxRows(scores, n, c);
  const k5 = Math.min(5, c);
  const confusion = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  const support = new Array<number>(c).fill(0);
  let h1 = 0;
  let h5 = 0;
  for (let i = 0; i < n; i++) {
    support[y[i]]++;
    confusion[y[i]][pred[i]]++;
    if (ranks[i] === 0) h1++;
    if (ranks[i] < k5) h5++;
  }
  const perClass = support.map((s, k) => (s ? confusion[k][k] / s : NaN));
  const present = perClass.filter((a) => !Number.isNaN(a));
  const probs = softmaxRows(scores, n, c, scale);
  const { ece, reliability } = expectedCalibrationError(probs, y, c, opts.bins ?? 15);
  return {
    top1: h1 / n,
    top5: h5 / n,
    perClass,
    meanPerClass: present.reduce((a, b) => a + b, 0) / present.length,
    confusion,
    support,
    n,
    nll: meanNll(scores, y, c, scale),
    ece,
    reliability,
    logitScale: scale,
  };
}

/**
 * The logit multiplier minimising the mean NLL of scores [N, C] (temperature scaling, Guo et al.):
 * golden-section search over ln(scale) in [ln(lo), ln(hi)] (the NLL is convex in the scale).
 */
export function fitLogitScale(scores: ArrayLike<number>, labels: Int32Array, c: number, opts: { lo?: number; hi?: number; iterations?: number } = {}): number {
  const lo0 = Math.log(opts.lo ?? 1e-2);
  const hi0 = Math.log(opts.hi ?? 1e3);
  const f = (t: number) => meanNll(scores, labels, c, Math.exp(t));
  const g = (Math.sqrt(5) - 1) / 2;
  let a = lo0;
  let b = hi0;
  let x1 = b - g * (b - a);
  let x2 = a + g * (b - a);
  let f1 = f(x1);
  let f2 = f(x2);
  for (let i = 0; i < (opts.iterations ?? 60); i++) {
    if (f1 <= f2) {
      b = x2;
      x2 = x1;
      f2 = f1;
      x1 = b - g * (b - a);
      f1 = f(x1);
    } else {
      a = x1;
      x1 = x2;
      f1 = f2;
      x2 = a + g * (b - a);
      f2 = f(x2);
    }
  }
  return Math.exp((a + b) / 2);
}
