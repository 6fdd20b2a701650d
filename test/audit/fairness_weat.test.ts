/** WEAT effect size and permutation p-value (src/audit/fairness/weat.ts). */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { weatEffectSize, weatFromScores } from "../../src/audit/fairness/weat";
import { Random } from "../../src/util/random";
import { assertThrowsOneLine } from "../helpers/errors";
import { assertNoLeak, gaussianRows, useCpu } from "./fairness_helpers";

before(useCpu);

describe("weatEffectSize", () => {
  it("matches the hand calculation on 2-D embeddings (effect 1.2247, p = 1/3 exactly over all partitions)", () => {
    // s([1,0]) = 1, s([1,1]) = 0, s([0,1]) = -1 with A = {e1}, B = {e2}.
    const X = tf.tensor2d([[1, 0], [1, 1]]);
    const Y = tf.tensor2d([[0, 1], [1, 1]]);
    const A = tf.tensor2d([[1, 0]]);
    const B = tf.tensor2d([[0, 1]]);
    const r = assertNoLeak(() => weatEffectSize(X, Y, A, B, { permutations: 30000, seed: 3 }));
    // sX = [1, 0], sY = [-1, 0]: mean difference 1, sample std of [1, 0, -1, 0] = sqrt(2/3).
    assert.ok(Math.abs(r.effectSize - 1 / Math.sqrt(2 / 3)) < 1e-6, `${r.effectSize}`);
    assert.ok(Math.abs(r.statistic - 2) < 1e-6);
    // 2 of the 6 ways to split {1, 0, -1, 0} into 2 + 2 reach sum_X - sum_Y >= 2.
    assert.ok(Math.abs(r.pValue - 1 / 3) < 0.01, `p = ${r.pValue}`);
    tf.dispose([X, Y, A, B]);
  });

  it("the p-value is roughly uniform under the null (50 seeded draws)", () => {
    const rng = new Random(11);
    const ps: number[] = [];
    for (let draw = 0; draw < 50; draw++) {
      const t = (n: number) => tf.tensor2d(gaussianRows(n, 8, rng));
      const [X, Y, A, B] = [t(12), t(12), t(4), t(4)];
      ps.push(weatEffectSize(X, Y, A, B, { permutations: 400, seed: draw }).pValue);
      tf.dispose([X, Y, A, B]);
    }
    const below = (q: number) => ps.filter((p) => p < q).length / ps.length;
    assert.ok(below(0.1) >= 0.0 && below(0.1) <= 0.24, `P(p < 0.1) = ${below(0.1)}`);
    assert.ok(below(0.5) >= 0.3 && below(0.5) <= 0.7, `P(p < 0.5) = ${below(0.5)}`);
    assert.ok(below(0.9) >= 0.76, `P(p < 0.9) = ${below(0.9)}`);
  });

  it("the p-value is small and the effect large under a planted association", () => {
    const rng = new Random(5);
    const A = gaussianRows(4, 8, rng);
    const towardA = A[0].map((_, j) => A.reduce((s, a) => s + a[j], 0) / A.length);
    const X = tf.tensor2d(gaussianRows(20, 8, rng, towardA.map((v) => 1.5 * v)));
    const Y = tf.tensor2d(gaussianRows(20, 8, rng));
    const tA = tf.tensor2d(A);
    const tB = tf.tensor2d(gaussianRows(4, 8, rng));
    const r = weatEffectSize(X, Y, tA, tB, { permutations: 5000, seed: 0, bootstrap: 300 });
    assert.ok(r.pValue < 0.01, `p = ${r.pValue}`);
    assert.ok(r.effectSize > 0.8, `effect ${r.effectSize}`);
    assert.ok(r.ci95! [0] > 0 && r.ci95![0] <= r.effectSize && r.effectSize <= r.ci95![1], `${r.ci95}`);
    // Swapping X and Y flips the sign.
    const s = weatEffectSize(Y, X, tA, tB, { permutations: 500, seed: 0 });
    assert.ok(Math.abs(s.effectSize + r.effectSize) < 1e-9);
    assert.ok(s.pValue > 0.9);
    tf.dispose([X, Y, tA, tB]);
  });

  it("is seeded: same seed, same p-value; another seed, another estimate", () => {
    const sx = Float64Array.from([0.3, 0.1, 0.5, -0.2, 0.4]);
    const sy = Float64Array.from([0.0, -0.1, 0.2, 0.1, -0.3]);
    assert.deepEqual(weatFromScores(sx, sy, { permutations: 777, seed: 9 }), weatFromScores(sx, sy, { permutations: 777, seed: 9 }));
    assert.notEqual(weatFromScores(sx, sy, { permutations: 777, seed: 9 }).pValue, weatFromScores(sx, sy, { permutations: 777, seed: 10 }).pValue);
  });

  it("within-class re-partitions: a class-mix difference is not an association (conditional test)", () => {
    // s depends only on the class; X holds mostly class 1, Y mostly class 0.
    const rng = new Random(4);
    const cls = (n1: number, n0: number) => [...Array(n1).fill(1), ...Array(n0).fill(0)] as number[];
    const cx = cls(30, 10);
    const cy = cls(10, 30);
    const score = (c: number) => c + 0.3 * rng.normal();
    const sx = Float64Array.from(cx, score);
    const sy = Float64Array.from(cy, score);
    const plain = weatFromScores(sx, sy, { permutations: 2000, seed: 1 });
    const conditional = weatFromScores(sx, sy, { permutations: 2000, seed: 1, strata: [...cx, ...cy] });
    assert.ok(plain.pValue < 0.01, `unconditional p ${plain.pValue}`);
    assert.ok(conditional.pValue > 0.05, `conditional p ${conditional.pValue}`);
    // One stratum is the unconditional test, draw for draw.
    assert.deepEqual(weatFromScores(sx, sy, { permutations: 500, seed: 2, strata: Array(80).fill("all") }), weatFromScores(sx, sy, { permutations: 500, seed: 2 }));
    assertThrowsOneLine(() => weatFromScores(sx, sy, { strata: [1, 2] }), /weatFromScores: strata must have one entry per item of X and Y \(80\), got 2/);
  });

  it("bad input: empty set, NaN embeddings, mismatched dimensions, wrong rank", () => {
    const ok = tf.tensor2d([[1, 0], [0, 1]]);
    const empty = tf.zeros([0, 2]) as tf.Tensor2D;
    const nan = tf.tensor2d([[1, NaN], [0, 1]]);
    const wide = tf.tensor2d([[1, 0, 0]]);
    const flat = tf.tensor1d([1, 2]) as unknown as tf.Tensor2D;
    assertThrowsOneLine(() => weatEffectSize(empty, ok, ok, ok), /weatEffectSize: X has no members/);
    assertThrowsOneLine(() => weatEffectSize(ok, ok, ok, nan), /weatEffectSize: B holds a non-finite value \(NaN\) at row 0, column 1/);
    assertThrowsOneLine(() => weatEffectSize(ok, ok, wide, ok), /weatEffectSize: A has dimension 3, X has 2/);
    assertThrowsOneLine(() => weatEffectSize(ok, flat, ok, ok), /weatEffectSize: Y must have rank 2/);
    assertThrowsOneLine(() => weatEffectSize(ok, ok, ok, ok, { permutations: 0 }), /permutations must be a positive integer, got 0/);
    tf.dispose([ok, empty, nan, wide, flat]);
  });
});
