/**
 * A confusion matrix (rows: true class, columns: predicted class) as a heatmap: by default each
 * row normalised to rates (the diagonal is per-class recall), with the counts in the cells' hover.
 */
import type { Figure } from "./figure";
import { checkNames, plotlyText } from "./text";
import { matrixRows } from "./similarity_heatmap";

export interface ConfusionOptions {
  title?: string;
  /** "row" (default): each row divided by its total; "none": raw counts. */
  normalize?: "row" | "none";
}

/** confusion[true][predicted] = count, for the classes `classNames`. */
export function confusionMatrix(confusion: readonly (readonly number[])[], classNames: readonly string[], opts: ConfusionOptions = {}): Figure {
  const fn = "confusionMatrix";
  const counts = matrixRows(fn, "confusion", confusion);
  checkNames(fn, "classNames", classNames, counts.length);
  if (counts[0].length !== counts.length) throw new RangeError(`${fn}: confusion must be square, got ${counts.length} x ${counts[0].length}`);
  counts.forEach((r, i) =>
    r.forEach((v, j) => {
      if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${fn}: confusion[${i}][${j}] is ${v}, expected a count >= 0`);
    }),
  );
  const normalize = opts.normalize ?? "row";
  if (normalize !== "row" && normalize !== "none") throw new RangeError(`${fn}: normalize must be "row" or "none", got ${JSON.stringify(normalize)}`);
  const totals = counts.map((r) => r.reduce((a, b) => a + b, 0));
  const z = normalize === "row" ? counts.map((r, i) => r.map((v) => (totals[i] ? v / totals[i] : 0))) : counts;
  const names = classNames.map(plotlyText);
  const idx = names.map((_, i) => i);
  const hover = counts.map((r, i) => r.map((v, j) => `true ${names[i]}<br>predicted ${names[j]}<br>${v} of ${totals[i]} images`));
  return {
    data: [
      {
        type: "heatmap",
        z,
        x: idx,
        y: idx,
        text: hover,
        hovertemplate: "%{text}<extra></extra>",
        texttemplate: normalize === "row" ? "%{z:.2f}" : "%{z}",
        textfont: { size: 10 },
        colorscale: "Blues",
        zmin: 0,
        ...(normalize === "row" ? { zmax: 1 } : {}),
        colorbar: { title: { text: normalize === "row" ? "fraction of row" : "images" } },
      },
    ],
    layout: {
      title: { text: plotlyText(opts.title ?? "Confusion matrix") },
      height: Math.max(360, Math.min(900, 200 + 36 * names.length)),
      xaxis: { tickvals: idx, ticktext: names, tickangle: -35, title: { text: "predicted" }, showgrid: false },
      yaxis: { tickvals: idx, ticktext: names, autorange: "reversed", title: { text: "true" }, showgrid: false },
      margin: { l: 140, r: 20, t: 50, b: 120 },
    },
  };
}
