/**
 * Seeded resampling for the fairness probes: percentile bootstrap 95% intervals (Efron & Tibshirani
 * 1993, "An Introduction to the Bootstrap", ch. 13) and permutation p-values (the group labels are
 * shuffled across items; p = (1 + #{T* >= T}) / (1 + m), which never reports 0 and is valid for any
 * number m of random permutations, Phipson & Smyth 2010, https://arxiv.org/abs/1603.05766).
 * Everything here is plain JS over numbers; no tensors.
 */
import { Random } from "../../util/random";
import { checkGroups, checkPositiveInt, checkSeed } from "./checks";

/** A figure with its bootstrap 95% interval. */
export interface Estimate {
  value: number;
  ci95: [number, number];
}

export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  resamples?: number;
  seed?: number;
  /**
   * Resample within strata (e.g. the groups), keeping each stratum's size, so no group ever goes
   * missing from a resample. Default: one stratum.
   */
  strata?: readonly (string | number)[];
}

/** Linear-interpolation quantile (numpy's default) of sorted values. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * `statistic` on all n items (value) and on `resamples` bootstrap resamples of their indices
 * (the 2.5% and 97.5% percentiles). Resamples where the statistic is NaN are left out; if more
 * than half are, the interval is [NaN, NaN].
 */
export function bootstrapCi(n: number, statistic: (indices: Int32Array) => number, opts: BootstrapOptions = {}): Estimate {
  const fn = "bootstrapCi";
  checkPositiveInt(fn, "n", n);
  if (typeof statistic !== "function") throw new TypeError(`${fn}: statistic must be a function (indices: Int32Array) => number`);
  const resamples = checkPositiveInt(fn, "resamples", opts.resamples ?? 1000);
  const rng = new Random(checkSeed(fn, opts.seed ?? 0));
  let strata: Int32Array[];
  if (opts.strata !== undefined) {
    if (!Array.isArray(opts.strata) || opts.strata.length !== n) {
      throw new Error(`${fn}: strata must have one entry per item (${n}), got ${Array.isArray(opts.strata) ? opts.strata.length : typeof opts.strata} (mismatched lengths)`);
    }
    const by = new Map<string | number, number[]>();
    opts.strata.forEach((s, i) => {
      const l = by.get(s);
      if (l) l.push(i);
      else by.set(s, [i]);
    });
    strata = [...by.values()].map((l) => Int32Array.from(l));
  } else {
    strata = [Int32Array.from({ length: n }, (_, i) => i)];
  }
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const value = statistic(all);
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
  return { value, ci95: [quantileSorted(sorted, 0.025), quantileSorted(sorted, 0.975)] };
}

/** A bootstrap estimate of the mean of `values`. */
export function bootstrapMean(values: ArrayLike<number>, opts: BootstrapOptions = {}): Estimate {
  if (values.length === 0) throw new Error("bootstrapMean: values is empty");
  return bootstrapCi(
    values.length,
    (idx) => {
      let s = 0;
      for (let i = 0; i < idx.length; i++) s += values[idx[i]];
      return s / idx.length;
    },
    opts,
  );
}

export interface PermutationOptions {
  /** Number of random permutations (default 2000). */
  permutations?: number;
  seed?: number;
  /** "greater": large T is evidence (for metrics >= 0); "two-sided": large |T| (signed gaps). Default "two-sided". */
  alternative?: "greater" | "two-sided";
  /**
   * Shuffle the labels only within strata (e.g. the true classes): a conditional randomisation
   * test whose null is "no group effect given the stratum", immune to how the classes happen to be
   * split between the groups. Default: one stratum.
   */
  strata?: readonly (string | number)[];
}

export interface PermutationResult {
  statistic: number;
  pValue: number;
  /** Mean of the statistic over the permutations: what no association gives at this sample size. */
  nullMean: number;
}

/**
 * Permutation test of "the group labels are exchangeable" (within strata, if given):
 * `statistic(groups)` on the observed labels and on random shuffles of them.
 */
export function permutationTest(
  groups: readonly string[],
  statistic: (groups: readonly string[]) => number,
  opts: PermutationOptions = {},
): PermutationResult {
  const fn = "permutationTest";
  checkGroups(fn, "groups", groups);
  const m = checkPositiveInt(fn, "permutations", opts.permutations ?? 2000);
  const rng = new Random(checkSeed(fn, opts.seed ?? 0));
  const alternative = opts.alternative ?? "two-sided";
  if (alternative !== "greater" && alternative !== "two-sided") throw new RangeError(`${fn}: alternative must be "greater" or "two-sided", got ${JSON.stringify(alternative)}`);
  const score = alternative === "greater" ? (t: number) => t : Math.abs;
  let blocks: Int32Array[] | undefined;
  if (opts.strata !== undefined) {
    if (!Array.isArray(opts.strata) || opts.strata.length !== groups.length) {
      throw new Error(`${fn}: strata must have one entry per item (${groups.length}), got ${Array.isArray(opts.strata) ? opts.strata.length : typeof opts.strata} (mismatched lengths)`);
    }
    const by = new Map<string | number, number[]>();
    opts.strata.forEach((s, i) => {
      const l = by.get(s);
      if (l) l.push(i);
      else by.set(s, [i]);
    });
    blocks = [...by.values()].map((l) => Int32Array.from(l));
  }
  const observed = statistic(groups);
  const t0 = score(observed);
  const shuffled = [...groups];
  let hits = 0;
  let sum = 0;
  for (let r = 0; r < m; r++) {
    if (blocks) {
      // Fisher-Yates within each stratum.
      for (const b of blocks) {
        for (let i = b.length - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          const t = shuffled[b[i]];
          shuffled[b[i]] = shuffled[b[j]];
          shuffled[b[j]] = t;
        }
      }
    } else {
      rng.shuffle(shuffled);
    }
    const t = statistic(shuffled);
    sum += t;
    // A relative tolerance so ties in floating point count as ties.
    if (score(t) >= t0 - 1e-12 * Math.max(1, Math.abs(t0))) hits++;
  }
  return { statistic: observed, pValue: (1 + hits) / (1 + m), nullMean: sum / m };
}
