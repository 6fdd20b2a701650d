/**
 * Seeded percentile bootstrap (Efron & Tibshirani 1993, "An Introduction to the Bootstrap",
 * ch. 13): a statistic on all n items, and on `resamples` resamples of their indices drawn with
 * replacement; the interval is the (1-level)/2 and (1+level)/2 quantiles of the resampled
 * statistics. For a paired comparison of two classifiers on the same test images, bootstrap the
 * per-image differences (correct_a - correct_b), so the interval accounts for the images being
 * shared. Everything here is plain JS over numbers; no tensors.
 */
import { checkPositiveInt, checkSeed } from "../util/checks";
import { Random } from "../util/random";
import type { Estimate } from "./intervals";

export interface BootstrapOptions {
  /** Number of resamples (default 2000). */
  resamples?: number;
  /** Default 0. */
  seed?: number;
  /** Coverage of the interval, in (0, 1) (default 0.95). */
  level?: number;
  /**
   * Resample within strata (e.g. the groups), keeping each stratum's size, so no group ever goes
   * missing from a resample. Default: one stratum.
   */
  strata?: readonly (string | number)[];
}

const DEFAULT_RESAMPLES = 2000;
const DEFAULT_LEVEL = 0.95;

/** Linear-interpolation quantile (numpy's default) of sorted values. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * The item indices of each stratum, in order of first appearance (one stratum of all n items when
 * `strata` is undefined); `strata` (called `name` in the error) must have one entry per item.
 */
export function strataIndices(fn: string, name: string, strata: readonly (string | number)[] | undefined, n: number): Int32Array[] {
  if (strata === undefined) return [Int32Array.from({ length: n }, (_, i) => i)];
  if (!Array.isArray(strata) || strata.length !== n) {
    throw new Error(`${fn}: ${name} must have one entry per item (${n}), got ${Array.isArray(strata) ? strata.length : typeof strata} (mismatched lengths)`);
  }
  const by = new Map<string | number, number[]>();
  strata.forEach((s, i) => {
    const l = by.get(s);
    if (l) l.push(i);
    else by.set(s, [i]);
  });
  return [...by.values()].map((l) => Int32Array.from(l));
}

/** The tail probability (1 - level) / 2, to 15 digits (so 0.95 gives exactly 0.025). */
function lowerTail(level: number): number {
  return Number(((1 - level) / 2).toPrecision(15));
}

/**
 * `statistic` on all n items (value) and on `opts.resamples` bootstrap resamples of their indices
 * (ci95: the quantiles around `opts.level`). Resamples where the statistic is NaN are left out; if
 * more than half are, the interval is [NaN, NaN].
 */
export function bootstrapCi(n: number, statistic: (indices: Int32Array) => number, opts: BootstrapOptions = {}): Estimate {
  return bootstrap("bootstrapCi", n, statistic, opts);
}

/** A bootstrap estimate of the mean of `values` (each must be finite). */
export function bootstrapMean(values: ArrayLike<number>, opts: BootstrapOptions = {}): Estimate {
  const fn = "bootstrapMean";
  if (values.length === 0) throw new Error(`${fn}: values is empty: no values to resample`);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`${fn}: value ${i} is not finite (${values[i]})`);
  }
  return bootstrap(
    fn,
    values.length,
    (idx) => {
      let s = 0;
      for (let i = 0; i < idx.length; i++) s += values[idx[i]];
      return s / idx.length;
    },
    opts,
  );
}

function bootstrap(fn: string, n: number, statistic: (indices: Int32Array) => number, opts: BootstrapOptions): Estimate {
  checkPositiveInt(fn, "n", n);
  if (typeof statistic !== "function") throw new TypeError(`${fn}: statistic must be a function (indices: Int32Array) => number`);
  const resamples = checkPositiveInt(fn, "resamples", opts.resamples ?? DEFAULT_RESAMPLES);
  const rng = new Random(checkSeed(fn, opts.seed ?? 0));
  const level = opts.level ?? DEFAULT_LEVEL;
  if (typeof level !== "number" || !(level > 0 && level < 1)) throw new RangeError(`${fn}: level must be in (0, 1), got ${String(level)}`);
  const strata = strataIndices(fn, "strata", opts.strata, n);
  const value = statistic(Int32Array.from({ length: n }, (_, i) => i));
  const stats: number[] = [];
  const idx = new Int32Array(n);
  for (let r = 0; r < resamples; r++) {
    let o = 0;
    for (const members of strata) for (let j = 0; j < members.length; j++) idx[o++] = members[rng.int(members.length)];
    const s = statistic(idx);
    if (!Number.isNaN(s)) stats.push(s);
  }
  if (stats.length * 2 < resamples) return { value, ci95: [NaN, NaN] };
  const sorted = Float64Array.from(stats).sort();
  const tail = lowerTail(level);
  return { value, ci95: [quantileSorted(sorted, tail), quantileSorted(sorted, 1 - tail)] };
}
