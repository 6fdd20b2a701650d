/**
 * Cross-modal retrieval metrics: Recall@K and the median rank, image -> text and text -> image, as
 * reported for CLIP's zero-shot retrieval (Radford et al. 2021, https://arxiv.org/abs/2103.00020,
 * §3.1 / Table 13 on Flickr30k and MSCOCO).
 *
 * Rank of a query (1-based): with s the query's similarity row and T its set of correct items,
 *
 *   rank = 1 + #{ items j : s[j] > max_{t in T} s[t] }
 *
 * Ties rule: an item counts as above the target only if its similarity is STRICTLY greater, so
 * items tied with the target do not push it down (ties are resolved in the target's favour; a
 * constant similarity scores R@1 = 1, so check a degenerate model by other means). With several
 * correct items (5 captions per image, or every item of the query's class) the best-placed one
 * counts: R@K is the fraction of queries with at least one correct item in the top K.
 * A query with no correct item at all gets rank Infinity: a miss at every K.
 * Recall@K with K >= the number of items is 1 (for queries that have a correct item).
 * The median of an even number of ranks is the mean of the two middle ones (numpy's median).
 * NaN similarities are rejected (a NaN comparison would silently rank the target first).
 *
 * Memory: the similarity is processed `chunkSize` query rows at a time (default 1024), so
 * `retrievalMetrics` on 10k x 10k embeddings never holds more than one [1024, 10k] block (40 MB
 * of float32), computed by tf (matMul of the normalised embeddings) and ranked in JS.
 */
import * as tf from "@tensorflow/tfjs";
import { l2NormalizeRows } from "../util/tensor";
import { checkLabels, checkMatrix } from "./checks";
import { checkPositiveInt } from "../util/checks";

/** Correct items of each query: one index per query, or a function giving the list for query i. */
export type RetrievalTargets = Int32Array | readonly number[] | ((query: number) => readonly number[]);

export interface RetrievalDirection {
  /** Recall@K for each requested K, as a fraction of queries. */
  [recall: `R@${number}`]: number;
  /** Median 1-based rank of the best-placed correct item. */
  medianRank: number;
  /** Mean 1-based rank (Infinity if some query has no correct item). */
  meanRank: number;
}

export interface RetrievalMetrics {
  imageToText: RetrievalDirection;
  textToImage: RetrievalDirection;
}

export interface RetrievalOptions {
  /** Correct texts of each image; default: image i <-> text i (needs as many texts as images). */
  imageToTextTargets?: RetrievalTargets;
  /** Correct images of each text; default: the inverse of imageToTextTargets. */
  textToImageTargets?: RetrievalTargets;
  /**
   * Label variant (e.g. Fashion-MNIST class captions): a text is correct for an image iff their
   * labels are equal, in both directions. Give both or neither; excludes the *Targets options.
   */
  imageLabels?: Int32Array | readonly number[];
  textLabels?: Int32Array | readonly number[];
  /** Query rows per similarity block; default 1024. */
  chunkSize?: number;
}

const DEFAULT_CHUNK = 1024;

/** How the correct items of the queries [0, numQueries) are described. @internal */
type TargetSpec =
  | { kind: "single"; targets: Int32Array }
  | { kind: "sets"; sets: Int32Array[] }
  | { kind: "labels"; query: Int32Array; item: Int32Array };

function diagonal(fn: string, numQueries: number, numItems: number): TargetSpec {
  if (numItems < numQueries) {
    throw new Error(`${fn}: the default targets (query i -> item i) need items >= queries, got ${numQueries} queries and ${numItems} items; pass targets`);
  }
  return { kind: "single", targets: Int32Array.from({ length: numQueries }, (_, i) => i) };
}

function resolveTargets(fn: string, name: string, targets: RetrievalTargets | undefined, numQueries: number, numItems: number): TargetSpec {
  if (targets === undefined) return diagonal(fn, numQueries, numItems);
  if (typeof targets === "function") {
    const sets: Int32Array[] = [];
    for (let q = 0; q < numQueries; q++) {
      const list = targets(q);
      if (!Array.isArray(list) && !(list instanceof Int32Array)) {
        throw new TypeError(`${fn}: ${name}(${q}) must return an array of item indices`);
      }
      sets.push(checkLabels(fn, `${name}(${q})`, list as readonly number[], undefined, numItems));
    }
    return { kind: "sets", sets };
  }
  return { kind: "single", targets: checkLabels(fn, name, targets, numQueries, numItems) };
}

/** The correct queries of each item, given the correct items of each query. */
function invert(spec: TargetSpec, numItems: number): TargetSpec {
  if (spec.kind === "labels") return { kind: "labels", query: spec.item, item: spec.query };
  const lists: number[][] = Array.from({ length: numItems }, () => []);
  if (spec.kind === "single") spec.targets.forEach((item, q) => lists[item].push(q));
  else spec.sets.forEach((set, q) => new Set(set).forEach((item) => lists[item].push(q)));
  return { kind: "sets", sets: lists.map((l) => Int32Array.from(l)) };
}

/**
 * 1-based ranks of the rows of one similarity block (queries [offset, offset + rows)).
 * The block is read back and ranked in plain JS: one pass per row over float32 values, exact
 * comparisons, no [rows, items] masks (tf's broadcasting compare/select kernels are ~50x slower
 * than this loop on the cpu and wasm backends).
 */
function blockRanks(fn: string, sim: tf.Tensor2D, spec: TargetSpec, offset: number): Float64Array {
  const [rows, numItems] = sim.shape;
  const values = sim.dataSync() as Float32Array;
  const ranks = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * numItems;
    const q = offset + r;
    // The best-placed correct item's similarity.
    let best = -Infinity;
    let has = false;
    if (spec.kind === "single") {
      best = values[base + spec.targets[q]];
      has = true;
    } else if (spec.kind === "sets") {
      for (const item of spec.sets[q]) {
        const v = values[base + item];
        if (!has || v > best) best = v;
        has = true;
      }
    } else {
      const label = spec.query[q];
      for (let j = 0; j < numItems; j++) {
        if (spec.item[j] !== label) continue;
        const v = values[base + j];
        if (!has || v > best) best = v;
        has = true;
      }
    }
    let above = 0;
    for (let j = 0; j < numItems; j++) {
      const v = values[base + j];
      if (v > best) above++;
      else if (v !== v) throw new Error(`${fn}: the similarity contains NaN (query ${q}, item ${j})`);
    }
    if (best !== best) throw new Error(`${fn}: the similarity contains NaN (query ${q})`);
    ranks[r] = has ? above + 1 : Infinity;
  }
  return ranks;
}

/** Ranks of every row of a materialised similarity [queries, items], a block of rows at a time. */
function similarityRanks(fn: string, similarity: tf.Tensor2D, spec: TargetSpec, chunkSize: number): Float64Array {
  const [numQueries] = similarity.shape;
  if (numQueries <= chunkSize) return blockRanks(fn, similarity, spec, 0);
  const ranks = new Float64Array(numQueries);
  for (let start = 0; start < numQueries; start += chunkSize) {
    const rows = Math.min(chunkSize, numQueries - start);
    const block = tf.slice(similarity, [start, 0], [rows, -1]);
    try {
      ranks.set(blockRanks(fn, block, spec, start), start);
    } finally {
      block.dispose();
    }
  }
  return ranks;
}

/** Fraction of ranks <= k. */
export function recallFromRanks(ranks: ArrayLike<number>, k: number): number {
  checkPositiveInt("recallFromRanks", "k", k);
  if (ranks.length === 0) throw new Error("recallFromRanks: no ranks");
  let hits = 0;
  for (let i = 0; i < ranks.length; i++) if (ranks[i] <= k) hits++;
  return hits / ranks.length;
}

/** Median (numpy's: the mean of the two middle values for an even count). */
export function medianOf(values: ArrayLike<number>): number {
  if (values.length === 0) throw new Error("medianOf: no values");
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function summarize(ranks: Float64Array, ks: readonly number[]): RetrievalDirection {
  const out = { medianRank: medianOf(ranks), meanRank: ranks.reduce((a, b) => a + b, 0) / ranks.length } as RetrievalDirection;
  for (const k of ks) out[`R@${k}`] = recallFromRanks(ranks, k);
  return out;
}

function checkSimilarity(fn: string, similarity: tf.Tensor2D): void {
  checkMatrix(fn, "similarity", similarity, "[queries, items]");
}

/**
 * 1-based rank of each query's correct item in its similarity row (see the ties rule above).
 * targets: default the diagonal (query i -> item i); a function gives several correct items.
 */
export function targetRanks(similarity: tf.Tensor2D, targets?: RetrievalTargets, opts: { chunkSize?: number } = {}): Float64Array {
  const fn = "targetRanks";
  checkSimilarity(fn, similarity);
  const chunk = checkPositiveInt(fn, "chunkSize", opts.chunkSize ?? DEFAULT_CHUNK);
  const [q, items] = similarity.shape;
  return similarityRanks(fn, similarity, resolveTargets(fn, "targets", targets, q, items), chunk);
}

/**
 * Fraction of queries (rows of similarity [queries, items]) whose target item is among the top k.
 * An item ranks above the target only if its similarity is strictly greater (ties favour the target).
 * targets: default query i -> item i.
 */
export function recallAtK(similarity: tf.Tensor2D, k: number, targets?: RetrievalTargets): number {
  checkPositiveInt("recallAtK", "k", k);
  return recallFromRanks(targetRanks(similarity, targets), k);
}

/** Median 1-based rank of the target item (default query i -> item i). */
export function medianRank(similarity: tf.Tensor2D, targets?: RetrievalTargets): number {
  return medianOf(targetRanks(similarity, targets));
}

/** 1-based rank of the best-placed item sharing the query's label (Infinity if none does). */
export function ranksByLabel(
  similarity: tf.Tensor2D,
  queryLabels: Int32Array | readonly number[],
  itemLabels: Int32Array | readonly number[],
): Float64Array {
  const fn = "ranksByLabel";
  checkSimilarity(fn, similarity);
  const [q, items] = similarity.shape;
  const spec: TargetSpec = {
    kind: "labels",
    query: checkLabels(fn, "queryLabels", queryLabels, q),
    item: checkLabels(fn, "itemLabels", itemLabels, items),
  };
  return similarityRanks(fn, similarity, spec, DEFAULT_CHUNK);
}

/**
 * Label-based Recall@K: a query is a hit if any of its top-k items has the query's label
 * (same ties rule; a query whose label no item has is a miss).
 */
export function recallAtKByLabel(
  similarity: tf.Tensor2D,
  k: number,
  queryLabels: Int32Array | readonly number[],
  itemLabels: Int32Array | readonly number[],
): number {
  checkPositiveInt("recallAtKByLabel", "k", k);
  return recallFromRanks(ranksByLabel(similarity, queryLabels, itemLabels), k);
}

/**
 * Recall@K (for each k in ks) and the median/mean rank in both directions, from unnormalised
 * embeddings (normalised here; similarity = cosine). The [images, texts] similarity is built and
 * ranked `chunkSize` query rows at a time, never whole. See RetrievalOptions for the targets.
 */
export function retrievalMetrics(
  imageEmb: tf.Tensor2D,
  textEmb: tf.Tensor2D,
  ks: readonly number[] = [1, 5, 10],
  opts: RetrievalOptions = {},
): RetrievalMetrics {
  const fn = "retrievalMetrics";
  checkMatrix(fn, "imageEmb", imageEmb);
  checkMatrix(fn, "textEmb", textEmb);
  const [ni, d] = imageEmb.shape;
  const [nt, e] = textEmb.shape;
  if (d !== e) throw new Error(`${fn}: imageEmb has dimension ${d}, textEmb ${e}`);
  if (!Array.isArray(ks) || ks.length === 0) throw new Error(`${fn}: ks must be a non-empty array of positive integers`);
  ks.forEach((k) => checkPositiveInt(fn, "every k", k));
  const chunk = checkPositiveInt(fn, "chunkSize", opts.chunkSize ?? DEFAULT_CHUNK);

  let i2t: TargetSpec;
  let t2i: TargetSpec;
  const hasLabels = opts.imageLabels !== undefined || opts.textLabels !== undefined;
  const hasTargets = opts.imageToTextTargets !== undefined || opts.textToImageTargets !== undefined;
  if (hasLabels) {
    if (hasTargets) throw new Error(`${fn}: pass either labels (imageLabels/textLabels) or targets (*Targets), not both`);
    if (opts.imageLabels === undefined || opts.textLabels === undefined) throw new Error(`${fn}: the label variant needs both imageLabels and textLabels`);
    i2t = { kind: "labels", query: checkLabels(fn, "imageLabels", opts.imageLabels, ni), item: checkLabels(fn, "textLabels", opts.textLabels, nt) };
    t2i = invert(i2t, nt);
  } else if (opts.imageToTextTargets === undefined && opts.textToImageTargets === undefined) {
    if (ni !== nt) {
      throw new Error(`${fn}: ${ni} images and ${nt} texts: the default pairing (image i <-> text i) needs equal counts; pass imageToTextTargets or labels`);
    }
    i2t = diagonal(fn, ni, nt);
    t2i = diagonal(fn, nt, ni);
  } else {
    const a = opts.imageToTextTargets !== undefined ? resolveTargets(fn, "imageToTextTargets", opts.imageToTextTargets, ni, nt) : undefined;
    const b = opts.textToImageTargets !== undefined ? resolveTargets(fn, "textToImageTargets", opts.textToImageTargets, nt, ni) : undefined;
    // One direction given: the other is its inverse (text j's images = the images listing j).
    i2t = a ?? invert(b!, ni);
    t2i = b ?? invert(a!, nt);
  }

  const [nImg, nTxt, nImgT, nTxtT] = tf.tidy(() => {
    const a = l2NormalizeRows(imageEmb);
    const b = l2NormalizeRows(textEmb);
    return [a, b, tf.transpose(a), tf.transpose(b)];
  });
  try {
    const direction = (queries: tf.Tensor2D, itemsT: tf.Tensor2D, spec: TargetSpec): Float64Array => {
      const n = queries.shape[0];
      const ranks = new Float64Array(n);
      for (let start = 0; start < n; start += chunk) {
        const rows = Math.min(chunk, n - start);
        const sim = tf.tidy(() => tf.matMul(tf.slice(queries, [start, 0], [rows, -1]), itemsT) as tf.Tensor2D); // [rows, items]
        try {
          ranks.set(blockRanks(fn, sim, spec, start), start);
        } finally {
          sim.dispose();
        }
      }
      return ranks;
    };
    return {
      imageToText: summarize(direction(nImg as tf.Tensor2D, nTxtT as tf.Tensor2D, i2t), ks),
      textToImage: summarize(direction(nTxt as tf.Tensor2D, nImgT as tf.Tensor2D, t2i), ks),
    };
  } finally {
    tf.dispose([nImg, nTxt, nImgT, nTxtT]);
  }
}
