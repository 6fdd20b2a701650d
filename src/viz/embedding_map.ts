/**
 * The joint embedding space as a picture: UMAP (https://arxiv.org/abs/1802.03426) of image and
 * text embeddings together, one colour per class, one marker symbol per modality, hover text with
 * the caption or label and, for images, a thumbnail. With the modality gap (Liang et al. 2022,
 * https://arxiv.org/abs/2203.02053) images and texts form separate clouds; within each cloud a
 * trained model groups by class.
 */
import * as tf from "@tensorflow/tfjs";
import type { Figure, PlotlyTrace } from "./figure";
import { UmapLayout, UmapOptions, umapLayout } from "./umap_layout";
import { checkNames, classColor, plotlyText } from "./text";

export type Modality = "image" | "text";

/** One kind of point in the map (e.g. "test images", "captions", "class prompts"). */
export interface ScatterGroup {
  /** Shown in the legend and the hover text. */
  name: string;
  modality: Modality;
  /** Class index of each point, in [0, classNames.length); its length is the group's size. */
  labels: ArrayLike<number>;
  /** Hover text of each point (a caption, a file name); default: the class name. */
  hover?: readonly string[];
  /** PNG data URLs shown on hover (see `imageThumbnails` in png.ts); null/"" for none. */
  thumbnails?: readonly (string | null)[];
  /** plotly marker symbol; default "circle" for images, "diamond" for texts. */
  symbol?: string;
  /** Marker size in pixels; default 6 for images, 8 for texts. */
  size?: number;
  /** Marker opacity; default 0.75. */
  opacity?: number;
}

export interface EmbeddingGroup extends ScatterGroup {
  /** Embeddings [N, D] of this group's points (unnormalised is fine; not disposed). */
  embeddings: tf.Tensor2D;
}

export interface EmbeddingMapInput {
  classNames: readonly string[];
  groups: EmbeddingGroup[];
}

export interface ScatterOptions {
  title?: string;
  /** Figure height in pixels; default 640. */
  height?: number;
}

export interface EmbeddingUmapResult {
  figure: Figure;
  layout: UmapLayout;
}

/** Checks the groups (one-line errors naming the group) and returns their sizes. */
function checkGroups(fn: string, groups: readonly ScatterGroup[], numClasses: number): number[] {
  if (!Array.isArray(groups) || groups.length === 0) throw new TypeError(`${fn}: groups must be a non-empty array`);
  return groups.map((g, gi) => {
    const where = `group ${gi} (${JSON.stringify(g?.name)})`;
    if (!g || typeof g.name !== "string") throw new TypeError(`${fn}: group ${gi} needs a name (string)`);
    if (g.modality !== "image" && g.modality !== "text") throw new RangeError(`${fn}: ${where}: modality must be "image" or "text", got ${JSON.stringify(g.modality)}`);
    const n = g.labels?.length;
    if (typeof n !== "number") throw new TypeError(`${fn}: ${where}: labels must be an array of class indices`);
    for (let i = 0; i < n; i++) {
      const c = g.labels[i];
      if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new RangeError(`${fn}: ${where}: label ${i} is ${c}, expected an integer in [0, ${numClasses})`);
    }
    if (g.hover && g.hover.length !== n) throw new RangeError(`${fn}: ${where}: ${g.hover.length} hover texts for ${n} points`);
    if (g.thumbnails && g.thumbnails.length !== n) throw new RangeError(`${fn}: ${where}: ${g.thumbnails.length} thumbnails for ${n} points`);
    return n;
  });
}

/**
 * The scatter figure from 2-D coordinates ([N * 2], the groups' points one after another, in
 * group order). Traces: one per (group, class), legend grouped by class (clicking a class hides
 * it in every group), plus one legend entry per group showing its marker symbol.
 */
export function embeddingScatter(
  coords: Float32Array | readonly number[],
  classNames: readonly string[],
  groups: readonly ScatterGroup[],
  opts: ScatterOptions = {},
): Figure {
  const fn = "embeddingScatter";
  checkNames(fn, "classNames", classNames);
  const sizes = checkGroups(fn, groups, classNames.length);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (coords.length !== 2 * total) throw new RangeError(`${fn}: coords has ${coords.length} values, expected 2 per point = ${2 * total}`);

  const traces: PlotlyTrace[] = [];
  const classShown = new Set<number>();
  let offset = 0;
  let anyThumbnails = false;
  groups.forEach((g, gi) => {
    const n = sizes[gi];
    const symbol = g.symbol ?? (g.modality === "image" ? "circle" : "diamond");
    const size = g.size ?? (g.modality === "image" ? 6 : 8);
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const c = g.labels[i];
      if (!byClass.has(c)) byClass.set(c, []);
      byClass.get(c)!.push(i);
    }
    for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
      const idx = byClass.get(c)!;
      const cls = plotlyText(classNames[c]);
      const trace: PlotlyTrace = {
        type: "scatter",
        mode: "markers",
        name: cls,
        legendgroup: `class-${c}`,
        showlegend: !classShown.has(c),
        x: idx.map((i) => round4(coords[2 * (offset + i)])),
        y: idx.map((i) => round4(coords[2 * (offset + i) + 1])),
        text: idx.map((i) => `${plotlyText(g.name)} · ${cls}` + (g.hover ? `<br>${plotlyText(g.hover[i])}` : "")),
        hovertemplate: "%{text}<extra></extra>",
        marker: {
          color: classColor(c),
          symbol,
          size,
          opacity: g.opacity ?? 0.75,
          line: { width: g.modality === "text" ? 1 : 0, color: "#333" },
        },
      };
      if (g.thumbnails) {
        trace.customdata = idx.map((i) => g.thumbnails![i] || null);
        anyThumbnails = true;
      }
      classShown.add(c);
      traces.push(trace);
    }
    // A legend entry for the group's marker (no data).
    traces.push({
      type: "scatter",
      mode: "markers",
      name: `${plotlyText(g.name)} (${g.modality})`,
      legendgroup: `group-${gi}`,
      x: [null],
      y: [null],
      hoverinfo: "skip",
      marker: { color: "#999", symbol, size: size + 2, line: { width: 1, color: "#333" } },
    });
    offset += n;
  });

  const axis = { showgrid: false, zeroline: false, showticklabels: false, title: { text: "" } };
  return {
    data: traces,
    layout: {
      title: { text: plotlyText(opts.title ?? "UMAP of the joint embedding space") },
      height: opts.height ?? 640,
      hovermode: "closest",
      xaxis: { ...axis },
      yaxis: { ...axis, scaleanchor: "x", scaleratio: 1 },
      legend: { itemsizing: "constant", tracegroupgap: 2 },
      margin: { l: 20, r: 20, t: 50, b: 20 },
      plot_bgcolor: "#fff",
    },
    ...(anyThumbnails ? { hoverImages: true } : {}),
  };
}

/**
 * UMAP of all groups' embeddings together (see `umapLayout` for the options; neighbours by
 * cosine by default), drawn with `embeddingScatter`. The embeddings are not disposed.
 */
export async function embeddingUmap(input: EmbeddingMapInput, opts: UmapOptions & ScatterOptions = {}): Promise<EmbeddingUmapResult> {
  const fn = "embeddingUmap";
  if (!input || typeof input !== "object") throw new TypeError(`${fn}: input must be { classNames, groups }`);
  checkNames(fn, "classNames", input.classNames);
  const sizes = checkGroups(fn, input.groups, input.classNames.length);
  let dim: number | undefined;
  input.groups.forEach((g, gi) => {
    const e = g.embeddings;
    if (!(e instanceof tf.Tensor) || e.rank !== 2) throw new TypeError(`${fn}: group ${gi} (${JSON.stringify(g.name)}): embeddings must be a 2-D tf.Tensor [N, D]`);
    if (e.shape[0] !== sizes[gi]) throw new RangeError(`${fn}: group ${gi} (${JSON.stringify(g.name)}): ${e.shape[0]} embeddings for ${sizes[gi]} labels`);
    dim ??= e.shape[1];
    if (e.shape[1] !== dim) throw new RangeError(`${fn}: group ${gi} (${JSON.stringify(g.name)}) has dimension ${e.shape[1]}, group 0 has ${dim}`);
  });
  const all = tf.tidy(() => tf.concat(input.groups.map((g) => tf.cast(g.embeddings, "float32")), 0) as tf.Tensor2D); // [N, D]
  let layout: UmapLayout;
  try {
    layout = await umapLayout(all, opts);
  } finally {
    all.dispose();
  }
  return { figure: embeddingScatter(layout.coords, input.classNames, input.groups, opts), layout };
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}
