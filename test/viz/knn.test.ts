/** Exact kNN against a brute-force JavaScript reference; self first; no leaks. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { exactKnn } from "../../src/viz/knn";
import { Random } from "../../src/util/random";
import { assertNoLeak, useTestBackend } from "../eval/fake_clip";
import { assertThrowsOneLine } from "../helpers/errors";

before(useTestBackend);

function randomRows(n: number, d: number, seed: number): number[][] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => Array.from({ length: d }, () => rng.normal()));
}

function bruteForce(rows: number[][], k: number, metric: "cosine" | "euclidean"): { idx: number[][]; dist: number[][] } {
  const prep = metric === "cosine" ? rows.map((r) => { const s = Math.hypot(...r); return r.map((v) => v / s); }) : rows;
  const idx: number[][] = [];
  const dist: number[][] = [];
  prep.forEach((a, i) => {
    const ds = prep.map((b, j) => ({ j, d: j === i ? -1 : Math.hypot(...a.map((v, t) => v - b[t])) }));
    ds.sort((p, q) => p.d - q.d);
    idx.push(ds.slice(0, k).map((e) => e.j));
    dist.push(ds.slice(0, k).map((e) => Math.max(0, e.d)));
  });
  return { idx, dist };
}

describe("exactKnn", () => {
  for (const metric of ["cosine", "euclidean"] as const) {
    it(`matches brute force (${metric}), across block boundaries`, () => {
      const rows = randomRows(53, 7, metric === "cosine" ? 1 : 2);
      const x = tf.tensor2d(rows);
      const got = exactKnn(x, 6, { metric, blockSize: 10 });
      const want = bruteForce(rows, 6, metric);
      assert.deepEqual(got.indices, want.idx);
      got.distances.forEach((row, i) => row.forEach((d, j) => assert.ok(Math.abs(d - want.dist[i][j]) < 1e-4, `distance [${i}][${j}]: ${d} vs ${want.dist[i][j]}`)));
      x.dispose();
    });
  }

  it("puts each point first even among exact duplicates", () => {
    const x = tf.tensor2d([[1, 0], [1, 0], [1, 0], [0, 1], [0, 2]]);
    const { indices, distances } = exactKnn(x, 3);
    indices.forEach((row, i) => assert.equal(row[0], i));
    assert.deepEqual(indices.slice(0, 3).map((r) => [...r].sort()), [[0, 1, 2], [0, 1, 2], [0, 1, 2]]);
    assert.deepEqual(distances[0], [0, 0, 0]);
    assert.deepEqual(indices[3].slice(0, 2), [3, 4], "cosine: [0,2] is the same direction as [0,1]");
    x.dispose();
  });

  it("leaks no tensors and rejects bad arguments in one line", () => {
    const x = tf.tensor2d(randomRows(20, 4, 3));
    assertNoLeak("exactKnn cosine", () => void exactKnn(x, 5, { blockSize: 7 }));
    assertNoLeak("exactKnn euclidean", () => void exactKnn(x, 5, { metric: "euclidean" }));
    assertThrowsOneLine(() => exactKnn(x, 21), /^exactKnn: k must be an integer in \[1, 20\] \(the number of rows\), got 21$/);
    assertThrowsOneLine(() => exactKnn(x, 3, { metric: "l1" as "cosine" }), /^exactKnn: metric must be "cosine" or "euclidean", got "l1"$/);
    assertThrowsOneLine(() => exactKnn(x, 3, { blockSize: 0 }), /^exactKnn: blockSize must be a positive integer, got 0$/);
    x.dispose();
  });
});
