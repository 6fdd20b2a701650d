/**
 * WEAT-style association test (Caliskan, Bryson & Narayanan 2017, "Semantics derived automatically
 * from language corpora contain human-like biases", https://arxiv.org/abs/1608.07187), between two
 * sets of target embeddings X, Y (here: images of two groups) and two attribute sets A, B (text):
 *
 *   s(w)        = mean_{a in A} cos(w, a) - mean_{b in B} cos(w, b)
 *   statistic   = sum_{x in X} s(x) - sum_{y in Y} s(y)
 *   effect size = (mean_X s - mean_Y s) / std_{w in X u Y} s(w)        (sample std, n - 1)
 *   p-value     = one-sided: the share of random re-partitions of X u Y into sets of sizes |X|, |Y|
 *                 whose statistic is >= the observed one, as (1 + hits) / (1 + permutations)
 *
 * A positive effect size means X is closer to A (relative to B) than Y is.
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../../util/random";
import { quantileSorted } from "../../eval/bootstrap";
import { checkEmbeddings } from "./checks";
import { checkPositiveInt, checkSeed } from "../../util/checks";

export interface WeatOptions {
  /** Random re-partitions for the p-value (default 10,000). */
  permutations?: number;
  seed?: number;
  /** Bootstrap resamples (X and Y resampled separately) for a 95% interval of the effect size. */
  bootstrap?: number;
  /**
   * `weatFromScores` only: a stratum per item of X then Y (e.g. the class of each image); the
   * re-partitions then keep each stratum's count of X members (a conditional test). Default: none.
   */
  strata?: readonly (string | number)[];
}

export interface WeatResult {
  effectSize: number;
  pValue: number;
  /** sum_X s - sum_Y s. */
  statistic: number;
  /** Present when `bootstrap` was asked for. */
  ci95?: [number, number];
}

/** s(w) of every row of `targets` [N, D] against attribute sets A [Na, D] and B [Nb, D]. */
export function associationScores(targets: tf.Tensor2D, A: tf.Tensor2D, B: tf.Tensor2D): Float64Array {
  const diff = tf.tidy(() => {
    const unit = (t: tf.Tensor2D) => tf.div(t, tf.norm(t, 2, 1, true)) as tf.Tensor2D; // [N, D]
    const w = unit(targets); // [N, D]
    const ca = tf.mean(tf.matMul(w, unit(A), false, true), 1); // [N]
    const cb = tf.mean(tf.matMul(w, unit(B), false, true), 1); // [N]
    return tf.sub(ca, cb); // [N]
  });
  try {
    return Float64Array.from(diff.dataSync());
  } finally {
    diff.dispose();
  }
}

/** Spread of s below which the scores count as constant (float32 cosines carry ~1e-7 of rounding). */
const SCORE_EPS = 1e-6;

function meanOf(v: Float64Array, from = 0, to = v.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += v[i];
  return s / (to - from);
}

/** Effect size of scores sX, sY (NaN-free). */
export function weatEffectFromScores(sX: Float64Array, sY: Float64Array): number {
  const all = new Float64Array(sX.length + sY.length);
  all.set(sX);
  all.set(sY, sX.length);
  const m = meanOf(all);
  let v = 0;
  for (const x of all) v += (x - m) * (x - m);
  const std = Math.sqrt(v / (all.length - 1));
  // Scores are differences of cosines (order 1): a spread below float32 rounding is no spread.
  if (!(std > SCORE_EPS)) return 0;
  return (meanOf(sX) - meanOf(sY)) / std;
}

/** The test on precomputed scores (what `weatEffectSize` does after computing s). */
export function weatFromScores(sX: Float64Array, sY: Float64Array, opts: WeatOptions = {}): WeatResult {
  const fn = "weatFromScores";
  if (sX.length === 0 || sY.length === 0) throw new Error(`${fn}: ${sX.length === 0 ? "X" : "Y"} has no members`);
  const permutations = checkPositiveInt(fn, "permutations", opts.permutations ?? 10000);
  const seed = checkSeed(fn, opts.seed ?? 0);
  const nx = sX.length;
  const all = new Float64Array(nx + sY.length);
  all.set(sX);
  all.set(sY, nx);
  let total = 0;
  for (const x of all) total += x;
  let sumX = 0;
  for (const x of sX) sumX += x;
  const statistic = sumX - (total - sumX);
  const rng = new Random(seed);
  // Blocks of the pool, each with the number of X members a re-partition keeps in it.
  let blocks: { values: Float64Array; take: number }[];
  if (opts.strata !== undefined) {
    if (!Array.isArray(opts.strata) || opts.strata.length !== all.length) {
      throw new Error(`${fn}: strata must have one entry per item of X and Y (${all.length}), got ${Array.isArray(opts.strata) ? opts.strata.length : typeof opts.strata} (mismatched lengths)`);
    }
    const by = new Map<string | number, { items: number[]; take: number }>();
    opts.strata.forEach((st, i) => {
      let b = by.get(st);
      if (!b) by.set(st, (b = { items: [], take: 0 }));
      b.items.push(all[i]);
      if (i < nx) b.take++;
    });
    blocks = [...by.values()].map((b) => ({ values: Float64Array.from(b.items), take: b.take }));
  } else {
    blocks = [{ values: all.slice(), take: nx }];
  }
  let hits = 0;
  const tol = 1e-9 * Math.max(1, Math.abs(statistic));
  for (let r = 0; r < permutations; r++) {
    // Partial Fisher-Yates per block: its first `take` entries become a uniform random subset.
    let s = 0;
    for (const { values: pool, take } of blocks) {
      for (let i = 0; i < take; i++) {
        const j = i + rng.int(pool.length - i);
        const t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
        s += pool[i];
      }
    }
    if (s - (total - s) >= statistic - tol) hits++;
  }
  const out: WeatResult = { effectSize: weatEffectFromScores(sX, sY), pValue: (1 + hits) / (1 + permutations), statistic };
  if (opts.bootstrap !== undefined) {
    const resamples = checkPositiveInt(fn, "bootstrap", opts.bootstrap);
    const brng = new Random(seed + 1);
    // Resample X and Y separately, within strata when given (so each keeps its mix of strata).
    const cells = (values: Float64Array, offset: number): Float64Array[] => {
      if (opts.strata === undefined) return [values];
      const by = new Map<string | number, number[]>();
      values.forEach((v, i) => {
        const key = opts.strata![offset + i];
        const l = by.get(key);
        if (l) l.push(v);
        else by.set(key, [v]);
      });
      return [...by.values()].map((l) => Float64Array.from(l));
    };
    const draw = (parts: Float64Array[], out: Float64Array) => {
      let o = 0;
      for (const part of parts) for (let i = 0; i < part.length; i++) out[o++] = part[brng.int(part.length)];
    };
    const xCells = cells(sX, 0);
    const yCells = cells(sY, nx);
    const bx = new Float64Array(nx);
    const by = new Float64Array(sY.length);
    const stats = new Float64Array(resamples);
    for (let r = 0; r < resamples; r++) {
      draw(xCells, bx);
      draw(yCells, by);
      stats[r] = weatEffectFromScores(bx, by);
    }
    stats.sort();
    out.ci95 = [quantileSorted(stats, 0.025), quantileSorted(stats, 0.975)];
  }
  return out;
}

/**
 * WEAT effect size and one-sided permutation p-value of targets X [Nx, D], Y [Ny, D] against
 * attributes A [Na, D], B [Nb, D] (see the file header). Inputs are not disposed.
 */
export function weatEffectSize(X: tf.Tensor2D, Y: tf.Tensor2D, A: tf.Tensor2D, B: tf.Tensor2D, opts: WeatOptions = {}): WeatResult {
  const fn = "weatEffectSize";
  const named = { X, Y, A, B } as const;
  let d: number | undefined;
  for (const [name, t] of Object.entries(named)) {
    if (t instanceof tf.Tensor && t.rank === 2 && t.shape[0] === 0) throw new Error(`${fn}: ${name} has no members (shape [${t.shape.join(", ")}])`);
    checkEmbeddings(fn, name, t, `[N${name}, D]`);
    if (d === undefined) d = t.shape[1];
    else if (t.shape[1] !== d) throw new Error(`${fn}: ${name} has dimension ${t.shape[1]}, X has ${d} (mismatched embedding sizes)`);
  }
  const sX = associationScores(X, A, B);
  const sY = associationScores(Y, A, B);
  return weatFromScores(sX, sY, opts);
}
