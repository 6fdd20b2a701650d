/**
 * Linear probe: multinomial logistic regression on frozen, L2-normalised image features, the
 * representation-learning yardstick of the CLIP paper (Radford et al. 2021,
 * https://arxiv.org/abs/2103.00020 §3.2, which uses L-BFGS logistic regression with an L2 penalty
 * chosen on validation).
 *
 *   minimise  (1/N) sum_i CE(W x_i + b, y_i) + (lambda / 2) ||W||_F^2         (b not penalised)
 *
 * Plain JS, full batch, Nesterov-accelerated gradient descent with step 1/L, where
 * L = max_i ||(x_i, 1)||^2 / 2 + lambda bounds the Hessian (softmax curvature <= 1/2). The problem
 * is strictly convex for lambda > 0; start at 0, stop after `maxIterations` or when the gradient's
 * max-norm falls below `tolerance`. No randomness is involved: the result is deterministic.
 */
import { checkLabels } from "./checks";
import { checkPositiveInt } from "../util/checks";
import { classificationMetrics, type ClassificationMetrics } from "./classifier_metrics";

export interface LinearProbeOptions {
  /** L2 penalty lambda on W; default 1e-3. */
  l2?: number;
  /** Default 1000. */
  maxIterations?: number;
  /** Stop when max |gradient| < tolerance; default 1e-6. */
  tolerance?: number;
}

export interface LinearProbe {
  numClasses: number;
  dim: number;
  /** [C, D] row-major. */
  weights: Float64Array;
  /** [C]. */
  bias: Float64Array;
  l2: number;
  iterations: number;
  /** Training objective at the end. */
  loss: number;
  /** Logits [N, C] of features [N, D] (L2-normalised here, as in training). */
  logits(features: Float32Array | Float64Array, n: number): Float32Array;
  /** Metrics on labelled features (probabilities: softmax of the logits). */
  evaluate(features: Float32Array | Float64Array, labels: Int32Array | readonly number[]): ClassificationMetrics;
}

function normalizedCopy(fn: string, features: ArrayLike<number>, n: number, d: number): Float64Array {
  const x = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += features[i * d + j] ** 2;
    const norm = Math.sqrt(s);
    if (!(norm > 0) || !Number.isFinite(norm)) throw new Error(`${fn}: feature row ${i} has norm ${norm} (zero or non-finite)`);
    for (let j = 0; j < d; j++) x[i * d + j] = features[i * d + j] / norm;
  }
  return x;
}

/** Objective and gradient at (W, b) (gradient written into gW, gb). */
function objective(x: Float64Array, y: Int32Array, n: number, d: number, c: number, w: Float64Array, b: Float64Array, l2: number, gW: Float64Array, gb: Float64Array): number {
  gW.fill(0);
  gb.fill(0);
  const z = new Float64Array(c);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const xi = i * d;
    let m = -Infinity;
    for (let k = 0; k < c; k++) {
      let s = b[k];
      const wk = k * d;
      for (let j = 0; j < d; j++) s += w[wk + j] * x[xi + j];
      z[k] = s;
      if (s > m) m = s;
    }
    let sum = 0;
    for (let k = 0; k < c; k++) sum += z[k] = Math.exp(z[k] - m);
    loss += Math.log(sum) - Math.log(z[y[i]]);
    for (let k = 0; k < c; k++) {
      const g = (z[k] / sum - (k === y[i] ? 1 : 0)) / n; // dL/dlogit_k
      gb[k] += g;
      const wk = k * d;
      for (let j = 0; j < d; j++) gW[wk + j] += g * x[xi + j];
    }
  }
  loss /= n;
  let reg = 0;
  for (let j = 0; j < w.length; j++) {
    reg += w[j] * w[j];
    gW[j] += l2 * w[j];
  }
  return loss + 0.5 * l2 * reg;
}

/** Fits the probe on features [N, D] (any scale: rows are L2-normalised first) with labels in [0, C). */
export function trainLinearProbe(
  features: Float32Array | Float64Array,
  labels: Int32Array | readonly number[],
  numClasses: number,
  opts: LinearProbeOptions = {},
): LinearProbe {
  const fn = "trainLinearProbe";
  const c = checkPositiveInt(fn, "numClasses", numClasses);
  const n = labels.length;
  if (n === 0) throw new Error(`${fn}: no training examples (labels is empty)`);
  if (features.length % n !== 0) throw new Error(`${fn}: features hold ${features.length} values, not a multiple of ${n} labels`);
  const d = features.length / n;
  if (d < 1) throw new Error(`${fn}: features are empty`);
  const y = checkLabels(fn, "labels", labels, n, c);
  const l2 = opts.l2 ?? 1e-3;
  if (!(l2 > 0) || !Number.isFinite(l2)) throw new RangeError(`${fn}: l2 must be a positive number, got ${String(l2)}`);
  const maxIterations = checkPositiveInt(fn, "maxIterations", opts.maxIterations ?? 1000);
  const tolerance = opts.tolerance ?? 1e-6;
  const x = normalizedCopy(fn, features, n, d);
  const step = 1 / (1 + l2); // ||(x, 1)||^2 = 2 for unit x: L = 2/2 + l2.
  const w = new Float64Array(c * d);
  const b = new Float64Array(c);
  const wPrev = new Float64Array(c * d);
  const bPrev = new Float64Array(c);
  const vW = new Float64Array(c * d);
  const vb = new Float64Array(c);
  const gW = new Float64Array(c * d);
  const gb = new Float64Array(c);
  let iterations = 0;
  let t = 1;
  for (; iterations < maxIterations; iterations++) {
    // Gradient at the look-ahead point v.
    objective(x, y, n, d, c, vW, vb, l2, gW, gb);
    let gmax = 0;
    for (const g of gW) gmax = Math.max(gmax, Math.abs(g));
    for (const g of gb) gmax = Math.max(gmax, Math.abs(g));
    if (gmax < tolerance) {
      w.set(vW);
      b.set(vb);
      break;
    }
    wPrev.set(w);
    bPrev.set(b);
    for (let j = 0; j < w.length; j++) w[j] = vW[j] - step * gW[j];
    for (let k = 0; k < c; k++) b[k] = vb[k] - step * gb[k];
    const tNext = (1 + Math.sqrt(1 + 4 * t * t)) / 2;
    const mom = (t - 1) / tNext;
    for (let j = 0; j < w.length; j++) vW[j] = w[j] + mom * (w[j] - wPrev[j]);
    for (let k = 0; k < c; k++) vb[k] = b[k] + mom * (b[k] - bPrev[k]);
    t = tNext;
  }
  const loss = objective(x, y, n, d, c, w, b, l2, gW, gb);
  const logits = (feats: Float32Array | Float64Array, m: number): Float32Array => {
    if (feats.length !== m * d) throw new Error(`LinearProbe.logits: features hold ${feats.length} values, expected ${m} x ${d}`);
    const xs = normalizedCopy("LinearProbe.logits", feats, m, d);
    const out = new Float32Array(m * c);
    for (let i = 0; i < m; i++) {
      for (let k = 0; k < c; k++) {
        let s = b[k];
        for (let j = 0; j < d; j++) s += w[k * d + j] * xs[i * d + j];
        out[i * c + k] = s;
      }
    }
    return out;
  };
  return {
    numClasses: c,
    dim: d,
    weights: w,
    bias: b,
    l2,
    iterations,
    loss,
    logits,
    evaluate: (feats, labs) => classificationMetrics(logits(feats, labs.length), labs, c),
  };
}
