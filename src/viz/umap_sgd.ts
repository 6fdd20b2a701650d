/**
 * UMAP's layout optimisation (McInnes et al. 2018, https://arxiv.org/abs/1802.03426, §3.2 and
 * appendix: SGD on the fuzzy cross-entropy with edge sampling and negative sampling), run over
 * flat Float64Arrays instead of umap-js's arrays of arrays.
 *
 * Same arithmetic, same order of updates and the same draws from `random` as umap-js's
 * `optimizeLayoutStep`, so the layout equals umap-js's to the last bit (test/viz/umap.test.ts),
 * at a fraction of the time: the loop is what dominates UMAP of 10,000 points.
 */

/** What umap-js computed in `initializeFit`: the graph's edges, their sampling rates, a and b. */
export interface LayoutProblem {
  /** Edge endpoints (indices of points). */
  head: ArrayLike<number>;
  tail: ArrayLike<number>;
  /** Epochs between two samples of each edge (1 for the heaviest edge). */
  epochsPerSample: ArrayLike<number>;
  /** The curve 1 / (1 + a d^(2b)) fitted to minDist and spread. */
  a: number;
  b: number;
  nEpochs: number;
  /** Attraction learning rate (umap-js: learningRate, 1) and repulsion strength (gamma, 1). */
  learningRate: number;
  repulsionStrength: number;
  /** Negative samples per positive sample (umap-js: 5). */
  negativeSampleRate: number;
}

const CLIP = 4.0;
const clip = (x: number) => (x > CLIP ? CLIP : x < -CLIP ? -CLIP : x);

/**
 * Optimises `embedding` ([n * 2], row-major, updated in place) for `problem.nEpochs` epochs.
 * `onEpoch(epoch)` runs after each epoch; returning a promise lets the caller yield.
 */
export async function optimizeLayout2d(
  embedding: Float64Array,
  problem: LayoutProblem,
  random: () => number,
  onEpoch?: (epochsDone: number) => void | Promise<void>,
): Promise<Float64Array> {
  const { a, b, nEpochs, negativeSampleRate } = problem;
  const gamma = problem.repulsionStrength;
  const nEdges = problem.epochsPerSample.length;
  const n = embedding.length / 2;
  const head = Int32Array.from(problem.head);
  const tail = Int32Array.from(problem.tail);
  const epochsPerSample = Float64Array.from(problem.epochsPerSample);
  const epochsPerNegativeSample = epochsPerSample.map((e) => e / negativeSampleRate);
  const nextSample = Float64Array.from(epochsPerSample);
  const nextNegativeSample = Float64Array.from(epochsPerNegativeSample);
  const e = embedding;
  let alpha = problem.learningRate;

  for (let epoch = 0; epoch < nEpochs; epoch++) {
    for (let i = 0; i < nEdges; i++) {
      if (nextSample[i] > epoch) continue;
      const j = head[i];
      const k = tail[i];
      const j0 = 2 * j;
      const k0 = 2 * k;
      // Attraction along the edge; both ends move (head and tail share one embedding).
      let dx = e[j0] - e[k0];
      let dy = e[j0 + 1] - e[k0 + 1];
      let dist2 = dx * dx + dy * dy;
      let coeff = 0;
      if (dist2 > 0) {
        coeff = -2.0 * a * b * Math.pow(dist2, b - 1.0);
        coeff /= a * Math.pow(dist2, b) + 1.0;
      }
      let g = clip(coeff * (e[j0] - e[k0]));
      e[j0] += g * alpha;
      e[k0] += -g * alpha;
      g = clip(coeff * (e[j0 + 1] - e[k0 + 1]));
      e[j0 + 1] += g * alpha;
      e[k0 + 1] += -g * alpha;
      nextSample[i] += epochsPerSample[i];

      // Repulsion from random points; only the head moves.
      const nNeg = Math.floor((epoch - nextNegativeSample[i]) / epochsPerNegativeSample[i]);
      for (let p = 0; p < nNeg; p++) {
        const m = Math.floor(random() * n);
        const m0 = 2 * m;
        dx = e[j0] - e[m0];
        dy = e[j0 + 1] - e[m0 + 1];
        dist2 = dx * dx + dy * dy;
        coeff = 0.0;
        if (dist2 > 0.0) {
          coeff = 2.0 * gamma * b;
          coeff /= (0.001 + dist2) * (a * Math.pow(dist2, b) + 1);
        } else if (j === m) {
          continue;
        }
        g = coeff > 0.0 ? clip(coeff * (e[j0] - e[m0])) : 4.0;
        e[j0] += g * alpha;
        g = coeff > 0.0 ? clip(coeff * (e[j0 + 1] - e[m0 + 1])) : 4.0;
        e[j0 + 1] += g * alpha;
      }
      nextNegativeSample[i] += nNeg * epochsPerNegativeSample[i];
    }
    alpha = problem.learningRate * (1.0 - epoch / nEpochs);
    await onEpoch?.(epoch + 1);
  }
  return e;
}
