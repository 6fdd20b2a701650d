/**
 * Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks", https://arxiv.org/abs/2003.01690; schedule as in AutoAttack's
 * autopgd_base.py, github.com/fra31/auto-attack), L-inf and L2, on images in [0, 1]:
 * APGD-CE (untargeted cross-entropy) and APGD-T (the targeted DLR loss towards each of the top-k
 * other classes in turn). Both reuse the attack objective (objective.ts: CLIP's normalisation
 * inside the differentiated path).
 *
 * One run, per example (N = steps):
 *   x_0 = clip01(x + eps * t / ||t||)     t uniform in [-1, 1] (L-inf norm) or gaussian (L2)
 *   eta = 2 eps; with P the projection onto the eps-ball around x and then [0, 1]:
 *   z       = P(x_k + eta * dir(g_k))                    dir: sign (L-inf), g / ||g||_2 (L2)
 *   x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1}))   momentum a = 0.75 (a = 1 at k = 0)
 *   x_best, g_best: the highest loss so far; any successful iterate (misclassified) is kept.
 *   Checkpoints w_j = ceil(p_j N), p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03,
 *   0.06) (as integers: first interval max(int(0.22 N), 1), each next one 3% of N shorter, at
 *   least max(int(0.06 N), 1)). At a checkpoint the step halves, and x and g restart from x_best
 *   and g_best, where
 *     1. the loss rose in at most rho = 0.75 of the steps since the last checkpoint
 *        (AutoAttack's code compares with <=; the step before the first is the start point), or
 *     2. the step was not halved at the last checkpoint and the best loss has not improved since.
 * Restarts: `restarts` runs from new random starts, each on the examples not yet fooled.
 * APGD-T: for each of the k = min(targets, C - 1) most likely wrong classes of the clean image
 * (targets = 9 by default, AutoAttack's), one run on the examples not yet fooled, with the loss
 *   -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)          (pi: logits sorted, largest first)
 * With fewer than 4 classes the DLR denominator does not exist (AutoAttack refuses such models);
 * APGD-T then raises the target's cross-entropy instead (AutoAttack's "ce-targeted" loss).
 *
 * Output per example: a misclassified point where the attack found one, else the point of
 * highest loss (APGD-T: of its first target). The input is not disposed. Randomness: `Random(seed)`.
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../../util/random";
import { checkEps, checkNorm, type AttackNorm } from "./attacks";
import { checkImages01 } from "./corruptions";
import { crossEntropyPerExample, dlrTargetedPerExample } from "./objective";

/**
 * What one APGD run raises, per example: `examples` are the positions (in the caller's batch) of
 * the rows of `images01`. Returns the loss [B] and whether each example's goal is reached [B] (1 =
 * success, e.g. misclassified). Called inside a gradient tape: only the loss is differentiated.
 */
export type ApgdObjective = (images01: tf.Tensor4D, examples: Int32Array) => { loss: tf.Tensor1D; success: tf.Tensor1D };

/** Logits of images in [0, 1], [B, C], differentiable (e.g. `zeroShotLogitsFn`). */
export type Logits01 = (images01: tf.Tensor4D) => tf.Tensor2D;

export interface ApgdOptions {
  /** Budget: max |delta| (linf) or ||delta||_2 per image (l2), in [0, 1] pixel units. */
  eps: number;
  norm: AttackNorm;
  /** Iterations per run; default 100 (AutoAttack's). */
  steps?: number;
  /** Runs from random starts, each on the examples not yet fooled; default 1. */
  restarts?: number;
  /** Step-halving threshold on the fraction of steps that raised the loss; default 0.75. */
  rho?: number;
  /** Momentum; default 0.75. */
  momentum?: number;
  seed?: number;
}

export interface ApgdTargetedOptions extends ApgdOptions {
  /** Target classes, the most likely wrong ones first; default 9 (min with C - 1). */
  targets?: number;
}

export interface ApgdOutcome {
  /** The highest-loss point per example. */
  best: tf.Tensor4D;
  /** A successful point where one was found, else `best`. */
  adversarial: tf.Tensor4D;
  /** The highest loss per example. */
  loss: Float32Array;
  /** 1 where the attack succeeded. */
  success: Uint8Array;
}

type Resolved = Required<ApgdOptions>;

const KEYS = ["eps", "norm", "steps", "restarts", "rho", "momentum", "seed"];

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** The options with defaults filled and checked (one-line errors naming the option). */
export function resolveApgdOptions(opts: ApgdOptions, fn = "apgd", extra: string[] = []): Resolved {
  if (opts === null || typeof opts !== "object") throw new TypeError(`${fn}: options must be an object with keys ${[...KEYS, ...extra].join(", ")}`);
  for (const k of Object.keys(opts)) {
    if (![...KEYS, ...extra].includes(k)) throw new RangeError(`${fn}: unknown option ${JSON.stringify(k)}; valid options: ${[...KEYS, ...extra].join(", ")}`);
  }
  const int = (name: string, v: unknown, min: number) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new RangeError(`${fn}: ${name} must be an integer >= ${min}, got ${show(v)}`);
    return v;
  };
  const frac = (name: string, v: unknown) => {
    if (typeof v !== "number" || !(v > 0 && v <= 1)) throw new RangeError(`${fn}: ${name} must be in (0, 1], got ${show(v)}`);
    return v;
  };
  return {
    eps: checkEps(fn, opts.eps),
    norm: checkNorm(fn, opts.norm),
    steps: int("steps", opts.steps ?? 100, 1),
    restarts: int("restarts", opts.restarts ?? 1, 1),
    rho: frac("rho", opts.rho ?? 0.75),
    momentum: frac("momentum", opts.momentum ?? 0.75),
    seed: int("seed", opts.seed ?? 0, 0),
  };
}

/** The iterations after which APGD checks its step size, for `steps` iterations (w_1, w_2, ...). */
export function apgdCheckpoints(steps: number): number[] {
  let k = Math.max(Math.floor(0.22 * steps), 1);
  const min = Math.max(Math.floor(0.06 * steps), 1);
  const decrease = Math.max(Math.floor(0.03 * steps), 1);
  const out: number[] = [];
  for (let w = k; w <= steps; w += k) {
    out.push(w);
    k = Math.max(k - decrease, min);
  }
  return out;
}

/** [b, 1, 1, 1] tensor of per-example values. */
function perExample(values: ArrayLike<number>): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(values), [values.length, 1, 1, 1]);
}

/** Rows of `a` where `mask` is 1, else of `b` (a new tensor; inputs kept). */
function blend(a: tf.Tensor4D, b: tf.Tensor4D, mask: Uint8Array): tf.Tensor4D {
  return tf.tidy(() => {
    const m = perExample(mask); // [b, 1, 1, 1]
    return tf.add(tf.mul(a, m), tf.mul(b, tf.sub(1, m))) as tf.Tensor4D; // [b, H, W, C]
  });
}

/** `full` with row rows[j] replaced by values[j] where `which[j]` (all when absent). A new tensor. */
function replaceRows(full: tf.Tensor4D, rows: Int32Array, values: tf.Tensor4D, which?: Uint8Array): tf.Tensor4D {
  const b = full.shape[0];
  const index = Int32Array.from({ length: b }, (_, i) => i);
  rows.forEach((r, j) => {
    if (!which || which[j]) index[r] = b + j;
  });
  return tf.tidy(() => tf.gather(tf.concat([full, values], 0), tf.tensor1d(index, "int32")) as tf.Tensor4D);
}

/** Per-image norm of x ([b, 1, 1, 1]): L-inf or L2. Inside a tidy. */
function norms(x: tf.Tensor4D, norm: AttackNorm): tf.Tensor {
  return norm === "linf" ? tf.max(tf.abs(x), [1, 2, 3], true) : tf.sqrt(tf.sum(tf.square(x), [1, 2, 3], true));
}

/** x / (||x|| + 1e-12) per image (AutoAttack's `normalize`). Inside a tidy. */
function normalize(x: tf.Tensor4D, norm: AttackNorm): tf.Tensor4D {
  return tf.div(x, tf.add(norms(x, norm), 1e-12)) as tf.Tensor4D;
}

/** Projection onto the eps-ball around x0 and then [0, 1]. Inside a tidy. */
function project(v: tf.Tensor4D, x0: tf.Tensor4D, eps: number, norm: AttackNorm): tf.Tensor4D {
  if (norm === "linf") return tf.clipByValue(tf.minimum(tf.maximum(v, tf.sub(x0, eps)), tf.add(x0, eps)), 0, 1) as tf.Tensor4D;
  const delta = tf.sub(v, x0) as tf.Tensor4D;
  return tf.clipByValue(tf.add(x0, tf.mul(normalize(delta, "l2"), tf.minimum(eps, norms(delta, "l2")))), 0, 1) as tf.Tensor4D;
}

/** The loss, success and gradient of `objective` at x (the caller disposes `grad`). */
function evaluate(objective: ApgdObjective, x: tf.Tensor4D, examples: Int32Array): { loss: Float32Array; success: Uint8Array; grad: tf.Tensor4D } {
  let loss = new Float32Array(0);
  let success = new Uint8Array(0);
  let bad: string | null = null;
  const grad = tf.tidy(() =>
    tf.grad((z: tf.Tensor) => {
      const o = objective(z as tf.Tensor4D, examples);
      const ok = (t: unknown) => t instanceof tf.Tensor && t.rank === 1 && t.shape[0] === z.shape[0];
      if (!ok(o?.loss) || !ok(o?.success)) {
        bad = `loss ${o?.loss instanceof tf.Tensor ? `[${o.loss.shape.join(", ")}]` : typeof o?.loss}, success ${o?.success instanceof tf.Tensor ? `[${o.success.shape.join(", ")}]` : typeof o?.success}`;
        return tf.sum(tf.mul(z, 0)) as tf.Scalar;
      }
      loss = Float32Array.from(o.loss.dataSync());
      success = Uint8Array.from(o.success.dataSync(), (v) => (v ? 1 : 0));
      return tf.sum(o.loss) as tf.Scalar;
    })(x),
  ) as tf.Tensor4D;
  if (bad !== null) {
    grad.dispose();
    throw new TypeError(`apgd: the objective must return {loss, success}, two [${x.shape[0]}] tensors (one value per image), got ${bad}`);
  }
  const i = loss.findIndex((v) => !Number.isFinite(v));
  if (i >= 0) {
    grad.dispose();
    throw new Error(`apgd: the objective's loss is ${loss[i]} for example ${examples[i]}; APGD needs finite losses`);
  }
  return { loss, success, grad };
}

/** A random start on the eps-sphere's AutoAttack version (t / ||t||, t uniform or gaussian), clipped to [0, 1]. */
function randomStart(x0: tf.Tensor4D, eps: number, norm: AttackNorm, rng: Random): tf.Tensor4D {
  const t = new Float32Array(x0.size);
  if (norm === "linf") rng.fillUniform(t, -1, 1);
  else rng.fillNormal(t);
  return tf.tidy(() => tf.clipByValue(tf.add(x0, tf.mul(normalize(tf.tensor4d(t, x0.shape), norm), eps)), 0, 1) as tf.Tensor4D);
}

/** One APGD run on the examples `examples` (rows of x0). */
function singleRun(objective: ApgdObjective, x0: tf.Tensor4D, examples: Int32Array, o: Resolved, rng: Random): ApgdOutcome {
  const b = x0.shape[0];
  const { eps, norm, steps, rho, momentum } = o;
  let x = randomStart(x0, eps, norm, rng);
  let xOld = tf.clone(x);
  let xBest = tf.clone(x);
  let xBestAdv = tf.clone(x);
  let current = evaluate(objective, x, examples);
  let grad = current.grad;
  let gradBest = tf.clone(grad);
  const lossBest = Float32Array.from(current.loss);
  const fooled = Uint8Array.from(current.success);
  const step = new Float32Array(b).fill(2 * eps);
  let k = Math.max(Math.floor(0.22 * steps), 1);
  const kMin = Math.max(Math.floor(0.06 * steps), 1);
  const decrease = Math.max(Math.floor(0.03 * steps), 1);
  let sinceCheck = 0;
  // losses[j] is the loss after step j; losses[-1] (the start) is kept as `startLoss`.
  const losses: Float32Array[] = [];
  const startLoss = Float32Array.from(current.loss);
  const lossAt = (j: number) => (j < 0 ? startLoss : losses[j]);
  let lossBestLastCheck = Float32Array.from(lossBest);
  let reducedLastCheck = new Uint8Array(b).fill(1);
  const swap = (next: tf.Tensor4D, old: tf.Tensor4D) => {
    old.dispose();
    return next;
  };
  try {
    for (let i = 0; i < steps; i++) {
      const a = i > 0 ? momentum : 1;
      const next = tf.tidy(() => {
        const previous = tf.sub(x, xOld); // [b, H, W, C]
        const eta = perExample(step); // [b, 1, 1, 1]
        const dir = norm === "linf" ? tf.sign(grad) : normalize(grad, "l2"); // [b, H, W, C]
        const z = project(tf.add(x, tf.mul(eta, dir)) as tf.Tensor4D, x0, eps, norm);
        return project(tf.add(tf.add(x, tf.mul(tf.sub(z, x), a)), tf.mul(previous, 1 - a)) as tf.Tensor4D, x0, eps, norm); // [b, H, W, C]
      });
      xOld.dispose();
      xOld = x;
      x = next;
      grad.dispose();
      current = evaluate(objective, x, examples);
      grad = current.grad;
      const { loss, success } = current;
      if (success.some((v) => v)) {
        xBestAdv = swap(blend(x, xBestAdv, success), xBestAdv);
        success.forEach((v, j) => (fooled[j] |= v));
      }
      losses.push(loss);
      const improved = Uint8Array.from(loss, (v, j) => (v > lossBest[j] ? 1 : 0));
      if (improved.some((v) => v)) {
        xBest = swap(blend(x, xBest, improved), xBest);
        gradBest = swap(blend(grad, gradBest, improved), gradBest);
        improved.forEach((v, j) => v && (lossBest[j] = loss[j]));
      }
      if (++sinceCheck === k) {
        const reduce = new Uint8Array(b);
        for (let j = 0; j < b; j++) {
          let rises = 0;
          for (let c = 0; c < k; c++) if (lossAt(i - c)[j] > lossAt(i - c - 1)[j]) rises++;
          const oscillating = rises <= k * rho;
          const stalled = !reducedLastCheck[j] && lossBestLastCheck[j] >= lossBest[j];
          reduce[j] = oscillating || stalled ? 1 : 0;
        }
        reducedLastCheck = reduce;
        lossBestLastCheck = Float32Array.from(lossBest);
        if (reduce.some((v) => v)) {
          reduce.forEach((v, j) => v && (step[j] /= 2));
          x = swap(blend(xBest, x, reduce), x);
          grad = swap(blend(gradBest, grad, reduce), grad);
        }
        k = Math.max(k - decrease, kMin);
        sinceCheck = 0;
      }
    }
    const adversarial = blend(xBestAdv, xBest, fooled);
    return { best: tf.clone(xBest), adversarial, loss: lossBest, success: fooled };
  } finally {
    tf.dispose([x, xOld, xBest, xBestAdv, grad, gradBest]);
  }
}

/**
 * APGD with `restarts` runs (each on the examples not yet successful) of `objective` from
 * `images01` [B, H, W, C] in [0, 1]. eps = 0 returns the images unchanged.
 */
export function apgd(objective: ApgdObjective, images01: tf.Tensor4D, opts: ApgdOptions): ApgdOutcome {
  const fn = "apgd";
  if (typeof objective !== "function") throw new TypeError(`${fn}: objective must be a function (images01, examples) => {loss, success}`);
  const o = resolveApgdOptions(opts, fn);
  checkImages01(fn, images01);
  return runWithRestarts(objective, images01, o, new Random(o.seed));
}

function runWithRestarts(objective: ApgdObjective, images01: tf.Tensor4D, o: Resolved, rng: Random, only?: Int32Array): ApgdOutcome {
  const b = images01.shape[0];
  const all = only ?? Int32Array.from({ length: b }, (_, i) => i);
  if (o.eps === 0) {
    const { loss, success } = tf.tidy(() => {
      const r = objective(images01, all);
      return { loss: Float32Array.from(r.loss.dataSync()), success: Uint8Array.from(r.success.dataSync(), (v) => (v ? 1 : 0)) };
    });
    return { best: tf.clone(images01), adversarial: tf.clone(images01), loss, success };
  }
  let best = tf.clone(images01);
  let adversarial = tf.clone(images01);
  const loss = new Float32Array(b).fill(-Infinity);
  const success = new Uint8Array(b);
  try {
    for (let r = 0; r < o.restarts; r++) {
      const rows = Int32Array.from([...Array(b).keys()].filter((i) => !success[i]));
      if (rows.length === 0) break;
      const x0 = rows.length === b ? tf.clone(images01) : tf.tidy(() => tf.gather(images01, tf.tensor1d(rows, "int32")) as tf.Tensor4D);
      let run: ApgdOutcome;
      try {
        run = singleRun(objective, x0, Int32Array.from(rows, (i) => all[i]), o, rng);
      } finally {
        x0.dispose();
      }
      const higher = Uint8Array.from(rows, (i, j) => (run.loss[j] > loss[i] ? 1 : 0));
      const next = { best: replaceRows(best, rows, run.best, higher), adversarial: replaceRows(adversarial, rows, run.adversarial) };
      tf.dispose([best, adversarial, run.best, run.adversarial]);
      ({ best, adversarial } = next);
      rows.forEach((i, j) => {
        if (higher[j]) loss[i] = run.loss[j];
        success[i] = run.success[j];
      });
    }
    return { best, adversarial, loss, success };
  } catch (err) {
    tf.dispose([best, adversarial]);
    throw err;
  }
}

function checkLabels(fn: string, labels: ArrayLike<number>, b: number, c: number): Int32Array {
  if (labels.length !== b) throw new RangeError(`${fn}: ${b} images but ${labels.length} labels`);
  const ys = Int32Array.from(labels);
  ys.forEach((y, i) => {
    if (!(y >= 0 && y < c)) throw new RangeError(`${fn}: labels[${i}] = ${y} is not a class index in [0, ${c})`);
  });
  return ys;
}

/** argmax(logits) != labels, per row, as a [B] float tensor. Inside a tidy. */
function misclassified(logits: tf.Tensor2D, labels: Int32Array): tf.Tensor1D {
  return tf.cast(tf.notEqual(tf.argMax(logits, 1), tf.tensor1d(labels, "int32")), "float32") as tf.Tensor1D;
}

/** APGD-CE: untargeted, the cross-entropy of the label. Returns the adversarial images (the caller disposes them). */
export function apgdCe(logits01: Logits01, images01: tf.Tensor4D, labels: ArrayLike<number>, opts: ApgdOptions): tf.Tensor4D {
  const fn = "apgdCe";
  if (typeof logits01 !== "function") throw new TypeError(`${fn}: logits01 must be a function (images01) => logits [B, C]`);
  const o = resolveApgdOptions(opts, fn);
  checkImages01(fn, images01);
  const c = tf.tidy(() => logits01(tf.slice(images01, [0, 0, 0, 0], [1, -1, -1, -1])).shape[1]);
  const ys = checkLabels(fn, labels, images01.shape[0], c);
  const objective: ApgdObjective = (x, ex) => {
    const logits = logits01(x); // [b, C]
    const y = Int32Array.from(ex, (i) => ys[i]);
    return { loss: crossEntropyPerExample(logits, y), success: misclassified(logits, y) };
  };
  const out = runWithRestarts(objective, images01, o, new Random(o.seed));
  out.best.dispose();
  return out.adversarial;
}

/**
 * APGD-T: the targeted DLR loss towards each of the `targets` most likely wrong classes of the
 * clean images in turn (cross-entropy of the target with fewer than 4 classes), on the images
 * not yet fooled. Returns the adversarial images (the caller disposes them).
 */
export function apgdT(logits01: Logits01, images01: tf.Tensor4D, labels: ArrayLike<number>, opts: ApgdTargetedOptions): tf.Tensor4D {
  const fn = "apgdT";
  if (typeof logits01 !== "function") throw new TypeError(`${fn}: logits01 must be a function (images01) => logits [B, C]`);
  const { targets: t, ...rest } = opts ?? ({} as ApgdTargetedOptions);
  const o = resolveApgdOptions(rest as ApgdOptions, fn, ["targets"]);
  const targetsWanted = t ?? 9;
  if (typeof targetsWanted !== "number" || !Number.isInteger(targetsWanted) || targetsWanted < 1) throw new RangeError(`${fn}: targets must be an integer >= 1, got ${show(targetsWanted)}`);
  checkImages01(fn, images01);
  const b = images01.shape[0];
  const clean = tf.tidy(() => logits01(images01).dataSync() as Float32Array);
  const c = clean.length / b;
  const ys = checkLabels(fn, labels, b, c);
  if (c < 2) throw new RangeError(`${fn}: a targeted attack needs at least 2 classes, got ${c}`);
  const k = Math.min(targetsWanted, c - 1);
  // Classes by clean logit, largest first (AutoAttack takes the r-th largest as the r-th target, r = 2..k+1).
  const order = Array.from({ length: b }, (_, i) => Array.from({ length: c }, (_, j) => j).sort((p, q) => clean[i * c + q] - clean[i * c + p]));
  const rng = new Random(o.seed);
  let adversarial = tf.clone(images01);
  let firstBest: tf.Tensor4D | null = null;
  const fooled = new Uint8Array(b);
  try {
    for (let r = 1; r <= k; r++) {
      const rows = Int32Array.from([...Array(b).keys()].filter((i) => !fooled[i]));
      if (rows.length === 0) break;
      const target = Int32Array.from(order, (ord) => ord[r]);
      const objective: ApgdObjective = (x, ex) => {
        const logits = logits01(x); // [b, C]
        const y = Int32Array.from(ex, (i) => ys[i]);
        const tg = Int32Array.from(ex, (i) => target[i]);
        const loss = c >= 4 ? dlrTargetedPerExample(logits, y, tg) : tf.neg(crossEntropyPerExample(logits, tg)) as tf.Tensor1D;
        return { loss, success: misclassified(logits, y) };
      };
      const x0 = rows.length === b ? tf.clone(images01) : tf.tidy(() => tf.gather(images01, tf.tensor1d(rows, "int32")) as tf.Tensor4D);
      let run: ApgdOutcome;
      try {
        run = runWithRestarts(objective, x0, o, rng, rows);
      } finally {
        x0.dispose();
      }
      const next = replaceRows(adversarial, rows, run.adversarial, run.success);
      if (firstBest === null) firstBest = replaceRows(images01, rows, run.best);
      tf.dispose([adversarial, run.best, run.adversarial]);
      adversarial = next;
      rows.forEach((i, j) => (fooled[i] |= run.success[j]));
    }
    if (firstBest === null) return adversarial;
    // Not fooled by any target: the first target's highest-loss point.
    const out = blend(adversarial, firstBest, fooled);
    tf.dispose([adversarial, firstBest]);
    return out;
  } catch (err) {
    tf.dispose([adversarial, ...(firstBest ? [firstBest] : [])]);
    throw err;
  }
}
