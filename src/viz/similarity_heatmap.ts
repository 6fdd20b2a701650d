/**
 * A similarity heatmap (e.g. cosine of a few images against a few captions, CLIP paper Fig. 1's
 * matrix: https://arxiv.org/abs/2103.00020). Axes are numeric with the labels as tick text, so
 * repeated labels (two identical captions) stay separate rows.
 */
import * as tf from "@tensorflow/tfjs";
import type { Figure } from "./figure";
import { checkNames, plotlyText, shorten } from "./text";

export interface HeatmapOptions {
  title?: string;
  /** Colour range; default the data's min and max. */
  zmin?: number;
  zmax?: number;
  /** Write each value in its cell; default when both sides have at most 20 entries. */
  showValues?: boolean;
  /** Digits of the written values; default 2. */
  digits?: number;
  /** Axis titles; default "" and "". */
  rowTitle?: string;
  colTitle?: string;
  /** plotly colorscale name; default "Viridis". */
  colorscale?: string;
  /** Longest tick label before it is shortened (the full text stays in the hover); default 40. */
  maxLabelLength?: number;
  /** Label of the value in the hover; default "similarity". */
  valueName?: string;
}

/** A matrix as rows of numbers, from a 2-D tensor (not disposed) or nested arrays; checks its shape. */
export function matrixRows(fn: string, arg: string, m: tf.Tensor2D | readonly (readonly number[])[] | number[][]): number[][] {
  let rows: number[][];
  if (m instanceof tf.Tensor) {
    if (m.rank !== 2) throw new RangeError(`${fn}: ${arg} must be 2-D, got shape [${m.shape}]`);
    rows = m.arraySync() as number[][];
  } else if (Array.isArray(m) && m.every((r) => Array.isArray(r) || ArrayBuffer.isView(r))) {
    rows = m.map((r) => Array.from(r as ArrayLike<number>));
  } else {
    throw new TypeError(`${fn}: ${arg} must be a 2-D tf.Tensor or an array of rows`);
  }
  if (rows.length === 0 || rows[0].length === 0) throw new RangeError(`${fn}: ${arg} must not be empty`);
  const c = rows[0].length;
  rows.forEach((r, i) => {
    if (r.length !== c) throw new RangeError(`${fn}: ${arg} row ${i} has ${r.length} values, row 0 has ${c}`);
    r.forEach((v, j) => {
      if (typeof v !== "number" || Number.isNaN(v)) throw new RangeError(`${fn}: ${arg}[${i}][${j}] is ${v}, expected a number`);
    });
  });
  return rows;
}

/** Heatmap of `similarity` [R, C] with row labels (top to bottom) and column labels. */
export function similarityHeatmap(
  similarity: tf.Tensor2D | readonly (readonly number[])[],
  rowLabels: readonly string[],
  colLabels: readonly string[],
  opts: HeatmapOptions = {},
): Figure {
  const fn = "similarityHeatmap";
  const z = matrixRows(fn, "similarity", similarity as tf.Tensor2D | number[][]);
  checkNames(fn, "rowLabels", rowLabels, z.length);
  checkNames(fn, "colLabels", colLabels, z[0].length);
  const digits = opts.digits ?? 2;
  const max = opts.maxLabelLength ?? 40;
  const showValues = opts.showValues ?? (z.length <= 20 && z[0].length <= 20);
  const valueName = plotlyText(opts.valueName ?? "similarity");
  const hover = z.map((row, i) => row.map((_, j) => `${plotlyText(rowLabels[i])}<br>${plotlyText(colLabels[j])}`));
  const rows = z.map((_, i) => i);
  const cols = z[0].map((_, j) => j);
  return {
    data: [
      {
        type: "heatmap",
        z,
        x: cols,
        y: rows,
        text: hover,
        hovertemplate: `%{text}<br>${valueName} %{z:.${digits + 2}f}<extra></extra>`,
        colorscale: opts.colorscale ?? "Viridis",
        ...(opts.zmin !== undefined ? { zmin: opts.zmin } : {}),
        ...(opts.zmax !== undefined ? { zmax: opts.zmax } : {}),
        ...(showValues ? { texttemplate: `%{z:.${digits}f}`, textfont: { size: 10 } } : {}),
        colorbar: { title: { text: valueName } },
      },
    ],
    layout: {
      title: { text: plotlyText(opts.title ?? "Similarity") },
      height: Math.max(320, Math.min(900, 160 + 28 * z.length)),
      xaxis: { tickvals: cols, ticktext: colLabels.map((l) => plotlyText(shorten(l, max))), tickangle: -35, title: { text: plotlyText(opts.colTitle ?? "") }, showgrid: false },
      yaxis: { tickvals: rows, ticktext: rowLabels.map((l) => plotlyText(shorten(l, max))), autorange: "reversed", title: { text: plotlyText(opts.rowTitle ?? "") }, showgrid: false },
      margin: { l: 180, r: 20, t: 50, b: 160 },
    },
  };
}
