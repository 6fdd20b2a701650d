/**
 * Seeded percentile bootstrap of a mean (Efron & Tibshirani 1993, "An Introduction to the
 * Bootstrap"): resample the N values with replacement `samples` times, take the mean of each
 * resample, report the (1-level)/2 and (1+level)/2 quantiles. For a paired comparison of two
 * classifiers on the same test images, bootstrap the per-image differences (correct_a - correct_b),
 * so the interval accounts for the images being shared.
 */
import { Random } from "../util/random";
import { checkPositiveInt } from "./checks";

export interface BootstrapInterval {
  /** Mean of the values themselves. */
  mean: number;
  low: number;
  high: number;
  level: number;
  samples: number;
  seed: number;
}

export interface BootstrapOptions {
  /** Resamples; default 2000. */
  samples?: number;
  /** Default 0. */
  seed?: number;
  /** Default 0.95. */
  level?: number;
}

/** Linear-interpolated quantile of sorted values (numpy's default). */
function quantile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos);
  const frac = pos - i;
  return i + 1 < sorted.length ? sorted[i] + frac * (sorted[i + 1] - sorted[i]) : sorted[i];
}

export function bootstrapMean(values: ArrayLike<number>, opts: BootstrapOptions = {}): BootstrapInterval {
  const fn = "bootstrapMean";
  const n = values.length;
  if (n === 0) throw new Error(`${fn}: no values`);
  const samples = checkPositiveInt(fn, "samples", opts.samples ?? 2000);
  const seed = opts.seed ?? 0;
  const level = opts.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw new RangeError(`${fn}: level must be in (0, 1), got ${String(level)}`);
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`${fn}: value ${i} is not finite (${values[i]})`);
    total += values[i];
  }
  const rng = new Random(seed);
  const means = new Float64Array(samples);
  for (let s = 0; s < samples; s++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[rng.int(n)];
    means[s] = sum / n;
  }
  means.sort();
  return { mean: total / n, low: quantile(means, (1 - level) / 2), high: quantile(means, (1 + level) / 2), level, samples, seed };
}
