/**
 * Training curves of a run: loss (with a moving average), learning rate, the temperature
 * exp(logit_scale) (CLIP clamps it at 100: https://arxiv.org/abs/2103.00020, §2.5) and the
 * evaluations (zero-shot top-1/top-5, Recall@1 both ways), from the records `trainClip` keeps
 * and writes to runs/<name>/metrics.arrow and eval.arrow (src/train/run_state.ts; read back by
 * `readTrainingHistory`, src/train/history.ts).
 */
import type { Figure, PlotlyTrace } from "./figure";
import type { EvalRecord, StepRecord } from "../train/run_state";
import { plotlyText } from "./text";

/** Exponential moving average with bias correction (as TensorBoard's smoothing, weight `beta`). */
export function smooth(values: readonly number[], beta: number): number[] {
  let avg = 0;
  return values.map((v, i) => {
    avg = beta * avg + (1 - beta) * v;
    return avg / (1 - beta ** (i + 1));
  });
}

export interface TrainingCurvesOptions {
  title?: string;
  /** Moving-average weight for the loss; default 0.9 (0 turns it off). */
  smoothing?: number;
}

/** A 2 x 2 grid: loss, learning rate, temperature, evaluation accuracy, all against the step. */
export function trainingCurves(steps: readonly StepRecord[], evals: readonly EvalRecord[] = [], opts: TrainingCurvesOptions = {}): Figure {
  const fn = "trainingCurves";
  if (!Array.isArray(steps)) throw new TypeError(`${fn}: steps must be an array of step records`);
  if (!Array.isArray(evals)) throw new TypeError(`${fn}: evals must be an array of evaluation records`);
  const beta = opts.smoothing ?? 0.9;
  if (!(beta >= 0 && beta < 1)) throw new RangeError(`${fn}: smoothing must be in [0, 1), got ${beta}`);
  // Step records count from 0 (the step just taken); evaluations are after `step` steps.
  const x = steps.map((s) => s.step + 1);
  const loss = steps.map((s) => s.loss);
  const line = (name: string, xs: number[], ys: number[], axis: number, extra: Record<string, unknown> = {}): PlotlyTrace => ({
    type: "scatter",
    mode: xs.length > 1 ? "lines" : "markers",
    name,
    x: xs,
    y: ys,
    xaxis: axis === 1 ? "x" : `x${axis}`,
    yaxis: axis === 1 ? "y" : `y${axis}`,
    ...extra,
  });
  const traces: PlotlyTrace[] = [
    line("loss", x, loss, 1, { line: { color: "rgba(31,119,180,0.35)", width: 1 } }),
    ...(beta > 0 ? [line("loss (smoothed)", x, smooth(loss, beta), 1, { line: { color: "#1f77b4", width: 2 } })] : []),
    line("learning rate", x, steps.map((s) => s.lr), 2, { line: { color: "#ff7f0e" } }),
    line("temperature exp(t)", x, steps.map((s) => Math.exp(s.logitScale)), 3, { line: { color: "#2ca02c" } }),
  ];
  const ex = evals.map((e) => e.step);
  const evalMode = { mode: "lines+markers" };
  traces.push(
    line("zero-shot top-1", ex, evals.map((e) => e.zeroShotTop1), 4, { ...evalMode, line: { color: "#d62728" } }),
    line("zero-shot top-5", ex, evals.map((e) => e.zeroShotTop5), 4, { ...evalMode, line: { color: "#d62728", dash: "dot" } }),
    line("R@1 image→text", ex, evals.map((e) => e.recallAt1ImageToText), 4, { ...evalMode, line: { color: "#9467bd" } }),
    line("R@1 text→image", ex, evals.map((e) => e.recallAt1TextToImage), 4, { ...evalMode, line: { color: "#9467bd", dash: "dot" } }),
  );
  const axisTitle = (text: string) => ({ title: { text } });
  return {
    data: traces,
    layout: {
      title: { text: plotlyText(opts.title ?? "Training") },
      height: 620,
      grid: { rows: 2, columns: 2, pattern: "independent" },
      xaxis: axisTitle("step"),
      yaxis: axisTitle("loss"),
      xaxis2: axisTitle("step"),
      yaxis2: { ...axisTitle("learning rate"), exponentformat: "e" },
      xaxis3: axisTitle("step"),
      yaxis3: axisTitle("temperature exp(logit_scale)"),
      xaxis4: axisTitle("step"),
      yaxis4: { ...axisTitle("evaluation"), tickformat: ".0%", range: [0, 1.02] },
      legend: { orientation: "h", y: -0.12 },
      margin: { l: 60, r: 20, t: 50, b: 40 },
    },
  };
}
