/**
 * Exact k nearest neighbours by blocked matrix products on the tfjs backend: the neighbour graph
 * that UMAP (McInnes, Healy & Melville 2018, https://arxiv.org/abs/1802.03426, §3.1) builds its
 * fuzzy simplicial set from. umap-js approximates it with random-projection trees and NN-descent
 * in JavaScript; one [B, D] x [D, N] matMul per block of B rows plus a top-k is exact, and on
 * 10,000 x 512 CLIP embeddings several times faster here (bench/RESULTS.md, "UMAP").
 *
 * As in umap-learn, each point's own index comes first at distance 0 (duplicates of a point come
 * after it), so `k` counts the point itself.
 */
import * as tf from "@tensorflow/tfjs";

export type KnnMetric = "cosine" | "euclidean";

export interface KnnOptions {
  /**
   * "cosine" (default): Euclidean distance between the L2-normalised rows, sqrt(2 - 2 cos), which
   * orders neighbours exactly as the cosine does (what CLIP embeddings are compared with);
   * "euclidean": plain Euclidean distance.
   */
  metric?: KnnMetric;
  /** Query rows per block (one [blockSize, N] similarity block lives at a time); default 1024. */
  blockSize?: number;
}

export interface KnnResult {
  /** indices[i] = the k nearest rows of row i, nearest first, i itself first. */
  indices: number[][];
  /** The matching distances, ascending; distances[i][0] = 0. */
  distances: number[][];
}

/** The k nearest neighbours (row itself included) of every row of `x` [N, D]; `x` is not disposed. */
export function exactKnn(x: tf.Tensor2D, k: number, opts: KnnOptions = {}): KnnResult {
  const fn = "exactKnn";
  if (!(x instanceof tf.Tensor) || x.rank !== 2) throw new TypeError(`${fn}: x must be a 2-D tf.Tensor [N, D]`);
  const [n, d] = x.shape;
  if (n < 1 || d < 1) throw new RangeError(`${fn}: x must not be empty, got shape [${x.shape}]`);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`${fn}: k must be an integer in [1, ${n}] (the number of rows), got ${k}`);
  const metric = opts.metric ?? "cosine";
  if (metric !== "cosine" && metric !== "euclidean") throw new RangeError(`${fn}: metric must be "cosine" or "euclidean", got ${JSON.stringify(metric)}`);
  const blockSize = opts.blockSize ?? 1024;
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`${fn}: blockSize must be a positive integer, got ${blockSize}`);

  // Keys: rows (unit rows for cosine), transposed once so every block is a plain matMul
  // (the WASM backend's fast path has no transpose flags).
  const [rows, rowsT, sqNorms] = tf.tidy(() => {
    const xf = tf.cast(x, "float32") as tf.Tensor2D;
    if (metric === "cosine") {
      const unit = tf.div(xf, tf.maximum(tf.norm(xf, 2, 1, true), 1e-12)) as tf.Tensor2D; // [N, D]
      return [unit, tf.transpose(unit) as tf.Tensor2D, undefined];
    }
    return [xf, tf.transpose(xf) as tf.Tensor2D, tf.sum(tf.square(xf), 1) as tf.Tensor1D]; // [N, D], [D, N], [N]
  });
  const sq = sqNorms ? sqNorms.dataSync() : undefined;
  const indices: number[][] = [];
  const distances: number[][] = [];
  try {
    for (let start = 0; start < n; start += blockSize) {
      const end = Math.min(n, start + blockSize);
      const b = end - start;
      // score: larger = nearer. cosine: <u_i, u_j>; euclidean: 2<x_i, x_j> - |x_j|^2 (|x_i|^2 is constant per row).
      const top = tf.tidy(() => {
        const block = tf.slice(rows, [start, 0], [b, d]); // [B, D]
        let score = tf.matMul(block, rowsT); // [B, N]
        if (sqNorms) score = tf.sub(tf.mul(score, 2), tf.expandDims(sqNorms, 0));
        return tf.topk(score, k); // [B, k]
      });
      const values = top.values.dataSync();
      const idx = top.indices.dataSync();
      tf.dispose([top.values, top.indices]);
      for (let r = 0; r < b; r++) {
        const self = start + r;
        const row = [self];
        const dist = [0];
        for (let j = 0; j < k && row.length < k; j++) {
          const q = idx[r * k + j];
          if (q === self) continue;
          const s = values[r * k + j];
          const d2 = sq ? sq[self] - s : 2 - 2 * s;
          row.push(q);
          dist.push(Math.sqrt(Math.max(0, d2)));
        }
        indices.push(row);
        distances.push(dist);
      }
    }
  } finally {
    tf.dispose([rows, rowsT, ...(sqNorms ? [sqNorms] : [])]);
  }
  return { indices, distances };
}
