/** Projection debiasing (Chuang et al. 2023): removes the planted directions exactly and renormalises. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { projectionDebias, projectionMatrix } from "../../src/audit/fairness/debias";
import { Random } from "../../src/util/random";
import { assertThrowsOneLine } from "../helpers/errors";
import { assertNoLeak, gaussianRows, useCpu } from "./fairness_helpers";

before(useCpu);

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i], 0);

/** P0 z = z - A^T (A A^T)^-1 A z for K = 2 directions, in float64 (the paper's formula). */
function referenceProjection(A: number[][], z: number[]): number[] {
  const [a, b] = A;
  const g = [[dot(a, a), dot(a, b)], [dot(b, a), dot(b, b)]];
  const det = g[0][0] * g[1][1] - g[0][1] * g[1][0];
  const inv = [[g[1][1] / det, -g[0][1] / det], [-g[1][0] / det, g[0][0] / det]];
  const az = [dot(a, z), dot(b, z)];
  const c = [inv[0][0] * az[0] + inv[0][1] * az[1], inv[1][0] * az[0] + inv[1][1] * az[1]];
  return z.map((v, j) => v - c[0] * a[j] - c[1] * b[j]);
}

describe("projectionDebias", () => {
  it("removes the planted directions (dot products ~0), renormalises, and equals the paper's P0", () => {
    const rng = new Random(2);
    const A = gaussianRows(2, 16, rng);
    const Z = gaussianRows(6, 16, rng);
    // Plant the directions strongly in the embeddings.
    const planted = Z.map((z, i) => z.map((v, j) => v + 3 * (i + 1) * A[0][j] - 2 * A[1][j]));
    const text = tf.tensor2d(planted);
    const dirs = tf.tensor2d(A);
    const out = assertNoLeak(() => projectionDebias(text, dirs), 1);
    const rows = out.arraySync();
    rows.forEach((row, i) => {
      assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5, "unit norm");
      for (const a of A) assert.ok(Math.abs(dot(row, a)) < 1e-5, `row ${i} still has ${dot(row, a)} along a direction`);
      const ref = referenceProjection(A, planted[i]);
      const n = Math.hypot(...ref);
      row.forEach((v, j) => assert.ok(Math.abs(v - ref[j] / n) < 1e-5));
    });
    tf.dispose([text, dirs, out]);
  });

  it("handles linearly dependent directions (the span is what counts) and matches projectionMatrix", () => {
    const rng = new Random(7);
    const a = gaussianRows(1, 8, rng)[0];
    const dirs = tf.tensor2d([a, a.map((v) => 2 * v)]);
    const text = tf.tensor2d(gaussianRows(3, 8, rng));
    const out = projectionDebias(text, dirs);
    const P = projectionMatrix(dirs);
    const viaMatrix = tf.tidy(() => {
      const p = tf.matMul(text, P); // [N, D] (P is symmetric)
      return tf.div(p, tf.norm(p, 2, 1, true));
    });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(out, viaMatrix))).dataSync()[0]);
    assert.ok(diff < 1e-5, `max difference ${diff}`);
    out.arraySync().forEach((row) => assert.ok(Math.abs(dot(row, a)) < 1e-5));
    tf.dispose([dirs, text, out, P, viaMatrix]);
  });

  it("bad input: NaN embeddings, zero directions, mismatched sizes, an embedding inside the span", () => {
    const text = tf.tensor2d([[1, 0, 0], [0, 1, 0]]);
    const nan = tf.tensor2d([[NaN, 0, 0]]);
    const zero = tf.zeros([1, 3]) as tf.Tensor2D;
    const narrow = tf.tensor2d([[1, 0]]);
    const e1 = tf.tensor2d([[2, 0, 0]]);
    assertThrowsOneLine(() => projectionDebias(nan, e1), /projectionDebias: textEmbeddings holds a non-finite value \(NaN\) at row 0, column 0/);
    assertThrowsOneLine(() => projectionDebias(text, nan), /projectionDebias: spuriousDirections holds a non-finite value/);
    assertThrowsOneLine(() => projectionDebias(text, zero), /spuriousDirections are all zero \(rank 0\)/);
    assertThrowsOneLine(() => projectionDebias(text, narrow), /textEmbeddings has dimension 3, spuriousDirections 2/);
    const before = tf.memory().numTensors;
    assertThrowsOneLine(() => projectionDebias(text, e1), /textEmbeddings row 0 lies in the span of spuriousDirections/);
    assert.equal(tf.memory().numTensors, before, "no tensor leaked by the failed call");
    tf.dispose([text, nan, zero, narrow, e1]);
  });
});
