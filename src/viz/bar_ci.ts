/**
 * Bar charts with 95% confidence intervals as error bars (e.g. per-class accuracy with Wilson
 * intervals, per-group fairness metrics with bootstrap intervals; both in src/eval/).
 */
import type { Interval } from "../eval/intervals";
import type { Figure } from "./figure";
import { checkNames, plotlyText } from "./text";

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
      const [lo, hi] = ci;
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
        ...(ci95 ? { customdata: ci95.map((ci) => ci.map((b) => (opts.percent ? `${(100 * b).toFixed(1)}%` : b.toFixed(3))).join(" – ")) } : {}),
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
