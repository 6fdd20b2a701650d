/**
 * UMAP (McInnes, Healy & Melville 2018, "UMAP: Uniform Manifold Approximation and Projection for
 * Dimension Reduction", https://arxiv.org/abs/1802.03426) of embeddings to 2-D with umap-js,
 * seeded, and with the exact neighbour graph from `exactKnn` (tfjs matMul) instead of umap-js's
 * NN-descent: on 10,000 x 512 that is the difference between minutes and seconds (bench/umap.ts).
 *
 * Steps: exact kNN (k = nNeighbors, the point itself included) -> umap-js's fuzzy simplicial set
 * -> umap-js's SGD layout (run on typed arrays by src/viz/umap_sgd.ts, bit-identical to umap-js's
 * loop) from its (seeded) random initialisation, `nEpochs` epochs. Every random
 * draw goes through one `Random(seed)`, so the same input and options give the same coordinates.
 */
import * as tf from "@tensorflow/tfjs";
import { UMAP } from "umap-js";
import { LayoutProblem, optimizeLayout2d } from "./umap_sgd";
import { Random } from "../util/random";
import { KnnMetric, exactKnn } from "./knn";

export interface UmapOptions {
  /** Seed of every random choice (initial positions, negative samples); default 0. */
  seed?: number;
  /** Neighbours per point, the point itself included (umap-learn's n_neighbors); default 15. */
  nNeighbors?: number;
  /** How tightly points may pack in 2-D (umap-learn's min_dist); default 0.1. */
  minDist?: number;
  /** Layout epochs; default umap-js's: 500 up to 2,500 points, 400, 300, then 200 above 7,500. */
  nEpochs?: number;
  /** Neighbour metric (see `exactKnn`); default "cosine". */
  metric?: KnnMetric;
  /** Rows per kNN block; default 1024. */
  knnBlockSize?: number;
  /** Progress, e.g. for a notebook or CLI progress bar; the layout reports every 10 epochs. */
  onProgress?: (event: UmapProgress) => void;
}

export interface UmapProgress {
  stage: "knn" | "graph" | "layout" | "done";
  /** Layout epochs done and planned (stage "layout" and "done"). */
  epoch?: number;
  epochs?: number;
}

export interface UmapLayout {
  /** [N * 2]: x0, y0, x1, y1, ... */
  coords: Float32Array;
  n: number;
  nEpochs: number;
  nNeighbors: number;
  knnSeconds: number;
  graphSeconds: number;
  layoutSeconds: number;
}

export const UMAP_DEFAULTS = { seed: 0, nNeighbors: 15, minDist: 0.1, metric: "cosine" as KnnMetric, knnBlockSize: 1024 };

const YIELD_EVERY = 10;

/** The optimisation problem umap-js set up in `initializeFit` (its fields are private in the typings). */
export function layoutProblem(umap: UMAP): LayoutProblem {
  const u = umap as unknown as {
    optimizationState: { head: number[]; tail: number[]; epochsPerSample: number[]; a: number; b: number; nEpochs: number; initialAlpha: number; gamma: number };
    negativeSampleRate: number;
  };
  const st = u.optimizationState;
  return {
    head: st.head,
    tail: st.tail,
    epochsPerSample: st.epochsPerSample,
    a: st.a,
    b: st.b,
    nEpochs: st.nEpochs,
    learningRate: st.initialAlpha,
    repulsionStrength: st.gamma,
    negativeSampleRate: u.negativeSampleRate,
  };
}

/** 2-D UMAP coordinates of the rows of `x` [N, D] (not disposed). Needs N > nNeighbors. */
export async function umapLayout(x: tf.Tensor2D, opts: UmapOptions = {}): Promise<UmapLayout> {
  const fn = "umapLayout";
  if (!(x instanceof tf.Tensor) || x.rank !== 2) throw new TypeError(`${fn}: x must be a 2-D tf.Tensor [N, D]`);
  const n = x.shape[0];
  const seed = opts.seed ?? UMAP_DEFAULTS.seed;
  const nNeighbors = opts.nNeighbors ?? UMAP_DEFAULTS.nNeighbors;
  const minDist = opts.minDist ?? UMAP_DEFAULTS.minDist;
  if (!Number.isInteger(nNeighbors) || nNeighbors < 2) throw new RangeError(`${fn}: nNeighbors must be an integer >= 2, got ${nNeighbors}`);
  if (n <= nNeighbors) throw new RangeError(`${fn}: needs more points than nNeighbors (${nNeighbors}), got ${n}; lower nNeighbors`);
  if (!(minDist >= 0)) throw new RangeError(`${fn}: minDist must be >= 0, got ${minDist}`);
  if (opts.nEpochs !== undefined && (!Number.isInteger(opts.nEpochs) || opts.nEpochs < 1)) {
    throw new RangeError(`${fn}: nEpochs must be a positive integer, got ${opts.nEpochs}`);
  }
  const progress = opts.onProgress ?? (() => undefined);

  let t0 = performance.now();
  progress({ stage: "knn" });
  const knn = exactKnn(x, nNeighbors, { metric: opts.metric ?? UMAP_DEFAULTS.metric, blockSize: opts.knnBlockSize ?? UMAP_DEFAULTS.knnBlockSize });
  const knnSeconds = (performance.now() - t0) / 1000;

  t0 = performance.now();
  progress({ stage: "graph" });
  const rng = new Random(seed);
  const umap = new UMAP({ nComponents: 2, nNeighbors, minDist, nEpochs: opts.nEpochs, random: () => rng.next() });
  umap.setPrecomputedKNN(knn.indices, knn.distances);
  // With a precomputed graph umap-js only needs the number of points from X.
  const nEpochs = umap.initializeFit(Array.from({ length: n }, () => [0]));
  const graphSeconds = (performance.now() - t0) / 1000;

  t0 = performance.now();
  const problem = layoutProblem(umap);
  const start = umap.getEmbedding();
  const flat = new Float64Array(n * 2);
  for (let i = 0; i < n; i++) {
    flat[2 * i] = start[i][0];
    flat[2 * i + 1] = start[i][1];
  }
  // umap-js's loop, on typed arrays (src/viz/umap_sgd.ts): the same layout, several times faster.
  await optimizeLayout2d(flat, problem, () => rng.next(), async (done) => {
    if (done % YIELD_EVERY === 0 && done < nEpochs) {
      progress({ stage: "layout", epoch: done, epochs: nEpochs });
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
  const coords = Float32Array.from(flat);
  const layoutSeconds = (performance.now() - t0) / 1000;
  progress({ stage: "done", epoch: nEpochs, epochs: nEpochs });
  return { coords, n, nEpochs, nNeighbors, knnSeconds, graphSeconds, layoutSeconds };
}
