/**
 * Bar charts with 95% confidence intervals as error bars (e.g. per-class accuracy, per-group
 * fairness metrics with bootstrap intervals), and the Wilson score interval for a proportion
 * (Wilson 1927; Brown, Cai & DasGupta 2001, https://doi.org/10.1214/ss/1009213286), which stays
 * inside [0, 1] and behaves at 0% and 100%.
 */
import type { Figure } from "./figure";
import { checkNames, plotlyText } from "./text";

/** A 95% interval as [low, high] or { low, high }. */
export type Interval = readonly [number, number] | { readonly low: number; readonly high: number };

export interface BarOptions {
  title?: string;
  yTitle?: string;
  /** Show values as percentages (values are fractions); default false. */
  percent?: boolean;
  /** y-axis range, e.g. [0, 1]. */
  range?: [number, number];
  /** Bar colour(s); default one colour. */
  color?: string | readonly string[];
}

function bounds(ci: Interval): [number, number] {
  return Array.isArray(ci) ? [ci[0], ci[1]] : [(ci as { low: number }).low, (ci as { high: number }).high];
}

/**
 * Bars `values` labelled `labels`, with asymmetric error bars from `ci95` (one interval per bar,
 * or omit for none). An interval that does not contain its value is an error.
 */
export function barWithCI(labels: readonly string[], values: ArrayLike<number>, ci95?: readonly Interval[], opts: BarOptions = {}): Figure {
  const fn = "barWithCI";
  checkNames(fn, "labels", labels);
  const n = labels.length;
  if (values?.length !== n) throw new RangeError(`${fn}: ${values?.length} values for ${n} labels`);
  const v = Array.from(values, (x, i) => {
    if (typeof x !== "number" || !Number.isFinite(x)) throw new RangeError(`${fn}: value ${i} (${JSON.stringify(labels[i])}) is ${x}, expected a finite number`);
    return x;
  });
  let errorY: Record<string, unknown> | undefined;
  if (ci95) {
    if (ci95.length !== n) throw new RangeError(`${fn}: ${ci95.length} intervals for ${n} bars`);
    const plus: number[] = [];
    const minus: number[] = [];
    ci95.forEach((ci, i) => {
      const [lo, hi] = bounds(ci);
      const tol = 1e-9 * Math.max(1, Math.abs(v[i]));
      if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > v[i] + tol || hi < v[i] - tol) {
        throw new RangeError(`${fn}: interval ${i} (${JSON.stringify(labels[i])}) [${lo}, ${hi}] does not contain its value ${v[i]}`);
      }
      plus.push(Math.max(0, hi - v[i]));
      minus.push(Math.max(0, v[i] - lo));
    });
    errorY = { type: "data", symmetric: false, array: plus, arrayminus: minus, thickness: 1.5, width: 4, color: "#333" };
  }
  const fmt = opts.percent ? ".1%" : ".3f";
  const ticks = labels.map((l) => plotlyText(l));
  return {
    data: [
      {
        type: "bar",
        x: ticks.map((_, i) => i),
        y: v,
        text: ticks,
        hovertemplate: ci95 ? `%{text}: %{y:${fmt}} (95% CI %{customdata})<extra></extra>` : `%{text}: %{y:${fmt}}<extra></extra>`,
        ...(ci95 ? { customdata: ci95.map((ci) => bounds(ci).map((b) => (opts.percent ? `${(100 * b).toFixed(1)}%` : b.toFixed(3))).join(" – ")) } : {}),
        textposition: "none",
        marker: { color: opts.color ?? "#4c78a8" },
        ...(errorY ? { error_y: errorY } : {}),
      },
    ],
    layout: {
      title: { text: plotlyText(opts.title ?? "") },
      height: 420,
      xaxis: { tickvals: ticks.map((_, i) => i), ticktext: ticks, tickangle: -30 },
      yaxis: { title: { text: plotlyText(opts.yTitle ?? "") }, ...(opts.percent ? { tickformat: ".0%" } : {}), ...(opts.range ? { range: opts.range } : {}) },
      margin: { l: 60, r: 20, t: 50, b: 110 },
    },
  };
}

/** Wilson score 95% interval of `successes` out of `n` (z = 1.96); [NaN, NaN] when n = 0. */
export function wilsonInterval(successes: number, n: number, z = 1.959964): [number, number] {
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
