/**
 * Gradient attacks on images in [0, 1] pixel space: FGSM (Goodfellow et al. 2015, "Explaining and
 * Harnessing Adversarial Examples", https://arxiv.org/abs/1412.6572) and PGD (Madry et al. 2018,
 * "Towards Deep Learning Models Resistant to Adversarial Attacks", https://arxiv.org/abs/1706.06083),
 * under L-inf and L2 budgets. Both increase `lossFn(images01)`, a scalar the caller builds (e.g. the
 * zero-shot cross-entropy with CLIP normalisation inside, see objective.ts). Every example's budget
 * is its own: for L2 the norm is over one image's H*W*C values.
 *
 *   g      = d lossFn(x) / dx                                         [B, H, W, C]
 *   FGSM   x' = clip01(x0 + eps * dir(g))
 *   PGD    x_0 = clip01(x0 + delta_0)      delta_0 uniform in the ball (randomStart) or 0
 *          x_{t+1} = clip01(P_eps(x_t + stepSize * dir(g_t)))
 *   dir    linf: sign(g);  l2: g / ||g||_2 (0 where g = 0)
 *   P_eps  linf: clamp to [x0 - eps, x0 + eps];  l2: x0 + delta * min(1, eps / ||delta||_2)
 *
 * Clipping to [0, 1] after the projection keeps the budget: x0 is in [0, 1], so the clip only moves
 * coordinates towards x0. PGD returns its last iterate, as Madry et al. do. The loss is summed over
 * the batch by convention (examples are independent, and both directions are scale-free, so a mean
 * gives the same attack). Only the input is differentiated: model weights are never touched.
 * The random start comes from `Random(seed)`, the same on every backend.
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../../util/random";
import { checkImages01 } from "./corruptions";

/** What the attack increases: a scalar function of images in [0, 1] (e.g. the classification loss). */
export type AttackLoss = (images01: tf.Tensor4D) => tf.Scalar;

export const NORMS = ["linf", "l2"] as const;
export type AttackNorm = (typeof NORMS)[number];

export interface FgsmOptions {
  /** Budget: max |delta| (linf) or max ||delta||_2 per image (l2), in [0, 1] pixel units; >= 0. */
  eps: number;
  norm: AttackNorm;
}

export interface PgdOptions {
  eps: number;
  /** Gradient steps (>= 1). */
  steps: number;
  /** Step length (linf: per pixel; l2: per image); default 2.5 * eps / steps (Madry et al.). */
  stepSize?: number;
  norm: AttackNorm;
  /** Start from a uniform random point of the ball (default true). */
  randomStart?: boolean;
  /** Seed of the random start (default 0). */
  seed?: number;
}

const FGSM_KEYS = ["eps", "norm"];
const PGD_KEYS = ["eps", "steps", "stepSize", "norm", "randomStart", "seed"];

function checkKeys(fn: string, opts: unknown, valid: string[]): Record<string, unknown> {
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) throw new TypeError(`${fn}: options must be an object with keys ${valid.join(", ")}`);
  for (const k of Object.keys(opts)) {
    if (!valid.includes(k)) throw new RangeError(`${fn}: unknown option ${JSON.stringify(k)}; valid options: ${valid.join(", ")}`);
  }
  return opts as Record<string, unknown>;
}

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

export function checkEps(fn: string, eps: unknown): number {
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) throw new RangeError(`${fn}: eps must be a finite number >= 0 (pixel units, images in [0, 1]), got ${show(eps)}`);
  return eps;
}

export function checkNorm(fn: string, norm: unknown): AttackNorm {
  if (!(NORMS as readonly unknown[]).includes(norm)) throw new RangeError(`${fn}: norm must be one of ${NORMS.join(", ")}, got ${show(norm)}`);
  return norm as AttackNorm;
}

function checkLossFn(fn: string, lossFn: unknown): AttackLoss {
  if (typeof lossFn !== "function") throw new TypeError(`${fn}: lossFn must be a function (images01: tf.Tensor4D) => tf.Scalar`);
  return lossFn as AttackLoss;
}

/**
 * The loss and its gradient with respect to the images, [B, H, W, C]; only the input is
 * differentiated. The caller disposes `grad`.
 */
export function inputGradient(lossFn: AttackLoss, images01: tf.Tensor4D): { loss: number; grad: tf.Tensor4D } {
  const fn = "inputGradient";
  checkLossFn(fn, lossFn);
  // A bad return value is reported after the backward pass: throwing inside the gradient tape
  // would leave the tape's saved tensors behind (tfjs frees them only in the backward pass).
  let bad: string | null = null;
  const checked = (x: tf.Tensor4D): tf.Scalar => {
    const loss = lossFn(x);
    if (loss instanceof tf.Tensor && loss.rank === 0) return loss as tf.Scalar;
    bad = loss instanceof tf.Tensor ? `shape [${loss.shape.join(", ")}]` : typeof loss;
    return (loss instanceof tf.Tensor ? tf.sum(loss) : tf.sum(tf.mul(x, 0))) as tf.Scalar;
  };
  const { value, grad } = tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad(checked)(images01);
    return { value, grad: grad as tf.Tensor4D };
  });
  if (bad !== null) {
    tf.dispose([value, grad]);
    throw new TypeError(`attack: lossFn must return a scalar tf.Tensor (the loss to increase), got ${bad}`);
  }
  const loss = value.dataSync()[0];
  value.dispose();
  if (!Number.isFinite(loss)) {
    grad.dispose();
    throw new Error(`attack: lossFn returned ${loss}; an attack needs a finite loss`);
  }
  return { loss, grad };
}

/** Per-image L2 norm, [B, 1, 1, 1]. Inside a tidy. */
function imageNorms(x: tf.Tensor4D): tf.Tensor4D {
  return tf.sqrt(tf.sum(tf.square(x), [1, 2, 3], true)) as tf.Tensor4D; // [B, 1, 1, 1]
}

/** The ascent direction: sign(g) (linf) or g / ||g||_2 per image (l2). Inside a tidy. */
function direction(grad: tf.Tensor4D, norm: AttackNorm): tf.Tensor4D {
  if (norm === "linf") return tf.sign(grad); // [B, H, W, C]
  return tf.div(grad, tf.maximum(imageNorms(grad), 1e-12)) as tf.Tensor4D; // [B, H, W, C]
}

/** Projection of x onto the eps-ball around x0, then onto [0, 1]. Inside a tidy. */
function project(x: tf.Tensor4D, x0: tf.Tensor4D, eps: number, norm: AttackNorm): tf.Tensor4D {
  if (norm === "linf") {
    return tf.clipByValue(tf.minimum(tf.maximum(x, tf.sub(x0, eps)), tf.add(x0, eps)), 0, 1) as tf.Tensor4D; // [B, H, W, C]
  }
  const delta = tf.sub(x, x0); // [B, H, W, C]
  const factor = tf.minimum(1, tf.div(eps, tf.maximum(imageNorms(delta as tf.Tensor4D), 1e-12))); // [B, 1, 1, 1]
  return tf.clipByValue(tf.add(x0, tf.mul(delta, factor)), 0, 1) as tf.Tensor4D; // [B, H, W, C]
}

/** A uniform random point of the eps-ball per image (seeded, in JavaScript), [B, H, W, C]. */
function randomStartDelta(shape: [number, number, number, number], eps: number, norm: AttackNorm, seed: number): tf.Tensor4D {
  const rng = new Random(seed);
  const [b] = shape;
  const d = shape[1] * shape[2] * shape[3];
  const values = new Float32Array(b * d);
  if (norm === "linf") {
    rng.fillUniform(values, -eps, eps);
  } else {
    // Uniform in the ball: a gaussian direction, radius eps * u^(1/d).
    for (let i = 0; i < b; i++) {
      const row = values.subarray(i * d, (i + 1) * d);
      rng.fillNormal(row);
      let sq = 0;
      for (const v of row) sq += v * v;
      const radius = eps * Math.pow(rng.next(), 1 / d);
      const scale = sq > 0 ? radius / Math.sqrt(sq) : 0;
      for (let j = 0; j < d; j++) row[j] *= scale;
    }
  }
  return tf.tensor4d(values, shape, "float32");
}

/**
 * Fast Gradient Sign Method (and its L2 analogue, one normalised-gradient step): one step of
 * length eps from `images01` up the loss, clipped to [0, 1]. Returns new images; the input is
 * not disposed.
 */
export function fgsm(lossFn: AttackLoss, images01: tf.Tensor4D, opts: FgsmOptions): tf.Tensor4D {
  const fn = "fgsm";
  checkLossFn(fn, lossFn);
  const o = checkKeys(fn, opts, FGSM_KEYS);
  const eps = checkEps(fn, o.eps);
  const norm = checkNorm(fn, o.norm);
  checkImages01(fn, images01);
  const { grad } = inputGradient(lossFn, images01);
  try {
    return tf.tidy(() => tf.clipByValue(tf.add(images01, tf.mul(direction(grad, norm), eps)), 0, 1) as tf.Tensor4D); // [B, H, W, C]
  } finally {
    grad.dispose();
  }
}

/** The PGD options with defaults filled and every value checked (one-line errors). */
export function resolvePgdOptions(opts: PgdOptions, fn = "pgd"): Required<PgdOptions> {
  const o = checkKeys(fn, opts, PGD_KEYS);
  const eps = checkEps(fn, o.eps);
  const norm = checkNorm(fn, o.norm);
  const steps = o.steps;
  if (typeof steps !== "number" || !Number.isInteger(steps) || steps < 1) throw new RangeError(`${fn}: steps must be a positive integer, got ${show(steps)}`);
  const stepSize = o.stepSize ?? (2.5 * eps) / steps;
  if (typeof stepSize !== "number" || !Number.isFinite(stepSize) || stepSize < 0) throw new RangeError(`${fn}: stepSize must be a finite number >= 0, got ${show(o.stepSize)}`);
  const randomStart = o.randomStart ?? true;
  if (typeof randomStart !== "boolean") throw new TypeError(`${fn}: randomStart must be true or false, got ${show(randomStart)}`);
  const seed = o.seed ?? 0;
  if (typeof seed !== "number" || !Number.isInteger(seed) || seed < 0) throw new RangeError(`${fn}: seed must be a non-negative integer, got ${show(seed)}`);
  return { eps, steps, stepSize, norm, randomStart, seed };
}

/**
 * Projected Gradient Descent (ascent on the loss) from `images01` within the eps-ball, `steps`
 * steps of `stepSize`, from a seeded random start. Returns the last iterate; the input is not
 * disposed.
 */
export function pgd(lossFn: AttackLoss, images01: tf.Tensor4D, opts: PgdOptions): tf.Tensor4D {
  const fn = "pgd";
  checkLossFn(fn, lossFn);
  const { eps, steps, stepSize, norm, randomStart, seed } = resolvePgdOptions(opts, fn);
  checkImages01(fn, images01);
  let x: tf.Tensor4D;
  if (randomStart && eps > 0) {
    const delta = randomStartDelta(images01.shape, eps, norm, seed);
    x = tf.tidy(() => tf.clipByValue(tf.add(images01, delta), 0, 1) as tf.Tensor4D); // [B, H, W, C]
    delta.dispose();
  } else {
    x = tf.clone(images01);
  }
  try {
    for (let t = 0; t < steps; t++) {
      const { grad } = inputGradient(lossFn, x);
      let next: tf.Tensor4D;
      try {
        next = tf.tidy(() => project(tf.add(x, tf.mul(direction(grad, norm), stepSize)) as tf.Tensor4D, images01, eps, norm)); // [B, H, W, C]
      } finally {
        grad.dispose();
      }
      x.dispose();
      x = next;
    }
    return x;
  } catch (err) {
    x.dispose();
    throw err;
  }
}

/** Per-image size of `adversarial - original`: max |delta| and ||delta||_2 (for checks and reports). */
export function perturbationNorms(original: tf.Tensor4D, adversarial: tf.Tensor4D): { linf: Float32Array; l2: Float32Array } {
  return tf.tidy(() => {
    const delta = tf.sub(adversarial, original) as tf.Tensor4D; // [B, H, W, C]
    return {
      linf: tf.max(tf.abs(delta), [1, 2, 3]).dataSync() as Float32Array, // [B]
      l2: tf.reshape(imageNorms(delta), [-1]).dataSync() as Float32Array, // [B]
    };
  });
}
