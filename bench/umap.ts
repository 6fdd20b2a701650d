/**
 * `npm run bench -- --only=umap`: UMAP (McInnes et al. 2018, https://arxiv.org/abs/1802.03426) of
 * 10,000 points x 512 dimensions to 2-D with `umapLayout` (src/viz/umap_layout.ts): the exact kNN
 * graph by blocked tfjs matMul + topk, then umap-js's fuzzy simplicial set and its SGD layout,
 * seeded. The target: under a minute on this machine.
 *
 * Data: a stand-in for CLIP embeddings of the report's kind: 10 classes, half the points "images"
 * and half "texts", each point = class direction + modality offset + noise, in 512-D (random
 * unit directions, seed 0), so the map has 20 clusters. Reported: seconds per stage, total, and a
 * check that the layout kept the structure (fraction of points whose nearest 2-D neighbour, among
 * 2,000 sampled, has the same class and modality).
 *
 *   --umap-points=N     points (default 10000)
 *   --umap-dim=D        dimensions (default 512)
 *   --umap-epochs=E     layout epochs (default: umap-js's, 200 above 7,500 points)
 *   --umap-nndescent    also time umap-js's own approximate kNN (random-projection trees + NN-descent)
 *                       on the same data, for comparison (slow)
 */
import * as tf from "@tensorflow/tfjs";
import { UMAP } from "umap-js";
import { umapLayout } from "../src/viz/umap_layout";
import { Random } from "../src/util/random";
import { BenchContext, fmt, formatTable, peakRssMb, round2, writeResult } from "./common";

export interface UmapBenchOptions {
  points: number;
  dim: number;
  epochs?: number;
  nnDescent: boolean;
  seed: number;
}

export const DEFAULT_UMAP_OPTIONS: UmapBenchOptions = { points: 10000, dim: 512, nnDescent: false, seed: 0 };

function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s);
  return v.map((x) => x / n);
}

/** Points in `dim` dims: class direction + modality offset + noise; labels = class * 2 + modality. */
export function syntheticEmbeddings(points: number, dim: number, seed: number): { data: Float32Array; labels: Int32Array } {
  const rng = new Random(seed);
  const classes = Array.from({ length: 10 }, () => unit(rng.fillNormal(new Float32Array(dim))));
  const gap = unit(rng.fillNormal(new Float32Array(dim)));
  const data = new Float32Array(points * dim);
  const labels = new Int32Array(points);
  const noise = 1 / Math.sqrt(dim);
  for (let i = 0; i < points; i++) {
    const c = i % 10;
    const text = i % 20 >= 10 ? 1 : 0;
    labels[i] = c * 2 + text;
    for (let j = 0; j < dim; j++) data[i * dim + j] = classes[c][j] + (text ? 0.8 : -0.8) * gap[j] + 0.6 * noise * rng.normal();
  }
  return { data, labels };
}

/** Fraction of `sample` points whose nearest 2-D neighbour (among all points) has the same label. */
function neighbourAgreement(coords: Float32Array, labels: Int32Array, sample: number, seed: number): number {
  const n = labels.length;
  const rng = new Random(seed);
  let same = 0;
  for (let s = 0; s < sample; s++) {
    const i = rng.int(n);
    let best = -1;
    let bestD = Infinity;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const d = (coords[2 * i] - coords[2 * j]) ** 2 + (coords[2 * i + 1] - coords[2 * j + 1]) ** 2;
      if (d < bestD) [best, bestD] = [j, d];
    }
    if (labels[best] === labels[i]) same++;
  }
  return same / sample;
}

export async function runUmapBench(opts: UmapBenchOptions, ctx: BenchContext): Promise<unknown> {
  const { data, labels } = syntheticEmbeddings(opts.points, opts.dim, opts.seed);
  const x = tf.tensor2d(data, [opts.points, opts.dim]);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let layout;
  try {
    layout = await umapLayout(x, { seed: opts.seed, nEpochs: opts.epochs });
  } finally {
    x.dispose();
  }
  const total = (performance.now() - t0) / 1000;
  const cpuUsed = process.cpuUsage(cpu0);
  const cpuSeconds = (cpuUsed.user + cpuUsed.system) / 1e6;
  const load = (await import("node:os")).loadavg()[0];
  const agreement = neighbourAgreement(layout.coords, labels, 2000, 1);

  let nnDescentSeconds: number | undefined;
  if (opts.nnDescent) {
    const rows = Array.from({ length: opts.points }, (_, i) => Array.from(data.subarray(i * opts.dim, (i + 1) * opts.dim)));
    const rng = new Random(opts.seed);
    const umap = new UMAP({ nNeighbors: 15, random: () => rng.next() });
    const t1 = performance.now();
    // nearestNeighbors is private in umap-js's typings; it is what fit() runs first.
    (umap as unknown as { nearestNeighbors(x: number[][]): unknown }).nearestNeighbors(rows);
    nnDescentSeconds = (performance.now() - t1) / 1000;
  }

  const rows = [
    ["exact kNN (tfjs matMul + topk, k=15)", fmt(layout.knnSeconds)],
    ["fuzzy simplicial set (umap-js)", fmt(layout.graphSeconds)],
    [`layout, ${layout.nEpochs} epochs (umap-js loop on typed arrays)`, fmt(layout.layoutSeconds)],
    ["total (wall clock)", fmt(total)],
    ["total CPU time of this process", fmt(cpuSeconds)],
    ...(nnDescentSeconds !== undefined ? [["for comparison: umap-js's own kNN (NN-descent)", fmt(nnDescentSeconds)]] : []),
  ];
  console.log(`UMAP of ${opts.points} x ${opts.dim} to 2-D on tfjs ${ctx.backend.name} (${ctx.backend.threads} thread(s)), seed ${opts.seed}`);
  console.log(formatTable(["stage", "seconds"], rows));
  console.log(`2-D nearest neighbour has the same class and modality: ${(100 * agreement).toFixed(1)}% (of 2000 sampled points; 20 clusters)`);
  console.log(`1-minute load average at the end: ${load.toFixed(1)} on ${ctx.machine.logicalCpus} CPUs (wall clock exceeds CPU time when others use the cores)`);
  console.log(`peak RSS ${peakRssMb().toFixed(0)} MiB; target < 60 s: ${total < 60 ? "met" : "MISSED"}`);
  const file = writeResult("umap", {
    machine: ctx.machine,
    backend: { name: ctx.backend.name, threads: ctx.backend.threads },
    options: opts,
    knnSeconds: round2(layout.knnSeconds),
    graphSeconds: round2(layout.graphSeconds),
    layoutSeconds: round2(layout.layoutSeconds),
    nEpochs: layout.nEpochs,
    totalSeconds: round2(total),
    cpuSeconds: round2(cpuSeconds),
    loadAverage1m: round2(load),
    nnDescentSeconds: nnDescentSeconds === undefined ? null : round2(nnDescentSeconds),
    neighbourAgreement: agreement,
    peakRssMb: Math.round(peakRssMb()),
  });
  console.log(`wrote ${file}`);
  return { totalSeconds: total };
}
