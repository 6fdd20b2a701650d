/**
 * Confidence intervals: the one interval type (`Interval`, [low, high]), a figure with its 95%
 * interval (`Estimate`), and the Wilson score interval for a proportion (Wilson 1927; Brown, Cai &
 * DasGupta 2001, https://doi.org/10.1214/ss/1009213286), which stays inside [0, 1] and behaves at
 * 0% and 100%. Bootstrap intervals are in ./bootstrap.
 */

/** A confidence interval [low, high]. */
export type Interval = [low: number, high: number];

/** A figure with its 95% interval. */
export interface Estimate {
  value: number;
  ci95: Interval;
}

/** Wilson score 95% interval of `successes` out of `n` (z = 1.96); [NaN, NaN] when n = 0. */
export function wilsonInterval(successes: number, n: number, z = 1.959964): Interval {
  if (!Number.isFinite(n) || n < 0 || !Number.isFinite(successes) || successes < 0 || successes > n) {
    throw new RangeError(`wilsonInterval: need 0 <= successes <= n, got successes ${successes}, n ${n}`);
  }
  if (n === 0) return [NaN, NaN];
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}
