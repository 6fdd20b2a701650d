/** Recall@K, ranks and retrieval metrics on toys with known ranks, and against a brute force. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  medianOf,
  medianRank,
  ranksByLabel,
  recallAtK,
  recallAtKByLabel,
  retrievalMetrics,
  targetRanks,
} from "../../src/eval/retrieval";
import { assertNoLeak, dot, normalize, useTestBackend } from "./fake_clip";

before(useTestBackend);

// Rows are queries, columns items. Values are exact in float32 where ties matter (0.5 vs 0.5).
const SIM = [
  [0.9, 0.1, 0.5, 0.2], // target 0: rank 1
  [0.3, 0.2, 0.8, 0.1], // target 1: 0.3 and 0.8 above -> rank 3
  [0.5, 0.7, 0.5, 0.6], // target 2: 0.7 and 0.6 above; item 0 ties (not above) -> rank 3
];

/** Brute-force rank in float64: 1 + #items strictly above the best correct item. */
function bruteRanks(sim: number[][], correct: (q: number, j: number) => boolean): number[] {
  return sim.map((row, q) => {
    const scores = row.filter((_, j) => correct(q, j));
    if (scores.length === 0) return Infinity;
    const best = Math.max(...scores);
    return 1 + row.filter((s) => s > best).length;
  });
}

function randomEmb(n: number, d: number, seed: number): number[][] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  return Array.from({ length: n }, () => Array.from({ length: d }, rnd));
}

function cosines(a: number[][], b: number[][]): number[][] {
  return a.map((x) => b.map((y) => dot(normalize(x), normalize(y))));
}

describe("recallAtK and medianRank", () => {
  it("known ranks with the diagonal default, including the ties rule and k >= items", () => {
    const sim = tf.tensor2d(SIM);
    assert.deepEqual(Array.from(targetRanks(sim)), [1, 3, 3]);
    assert.equal(recallAtK(sim, 1), 1 / 3);
    assert.equal(recallAtK(sim, 2), 1 / 3);
    assert.equal(recallAtK(sim, 3), 1);
    assert.equal(recallAtK(sim, 4), 1, "k = items");
    assert.equal(recallAtK(sim, 100), 1, "k > items");
    assert.equal(medianRank(sim), 3);
    sim.dispose();
  });

  it("explicit targets", () => {
    const sim = tf.tensor2d(SIM);
    assert.deepEqual(Array.from(targetRanks(sim, new Int32Array([0, 2, 1]))), [1, 1, 1]);
    assert.deepEqual(Array.from(targetRanks(sim, [3, 3, 3])), [3, 4, 2]);
    assert.equal(recallAtK(sim, 2, new Int32Array([3, 3, 3])), 1 / 3);
    assert.equal(medianRank(sim, [3, 3, 3]), 3);
    sim.dispose();
  });

  it("several correct items: the best-placed one counts; none is a miss (rank Infinity)", () => {
    const sim = tf.tensor2d(SIM);
    const sets = [[1, 2], [], [2]];
    assert.deepEqual(Array.from(targetRanks(sim, (q) => sets[q])), [2, Infinity, 3]);
    assert.equal(recallAtK(sim, 100, (q) => sets[q]), 2 / 3);
    sim.dispose();
  });

  it("ties favour the target: a constant similarity gives R@1 = 1", () => {
    const sim = tf.fill([4, 4], 0.25) as tf.Tensor2D;
    assert.equal(recallAtK(sim, 1), 1);
    assert.equal(medianRank(sim), 1);
    sim.dispose();
  });

  it("median of an even count is the mean of the middle two", () => {
    // Target scores 0.9, 0.6, 0.4, 0.1 in the same row values -> ranks 1, 2, 3, 4.
    const row = [0.9, 0.6, 0.4, 0.1];
    const sim = tf.tensor2d([row, row, row, row]);
    assert.deepEqual(Array.from(targetRanks(sim)), [1, 2, 3, 4]);
    assert.equal(medianRank(sim), 2.5);
    assert.equal(medianOf([5, 1, 3]), 3);
    sim.dispose();
  });

  it("chunked ranking equals the whole matrix", () => {
    const values = cosines(randomEmb(37, 8, 1), randomEmb(29, 8, 2));
    const sim = tf.tensor2d(values);
    const targets = Int32Array.from({ length: 37 }, (_, i) => (i * 7) % 29);
    const want = bruteRanks(values, (q, j) => j === targets[q]);
    assert.deepEqual(Array.from(targetRanks(sim, targets, { chunkSize: 5 })), want);
    assert.deepEqual(Array.from(targetRanks(sim, targets)), want);
    sim.dispose();
  });

  it("rejects bad arguments in one line, leaking nothing", () => {
    const sim = tf.tensor2d(SIM);
    const nan = tf.tensor2d([[0.1, NaN], [0.2, 0.3]]);
    const before = tf.memory().numTensors;
    assert.throws(() => recallAtK(sim, 0), /^RangeError: recallAtK: k must be a positive integer, got 0$/);
    assert.throws(() => recallAtK(sim, 1.5), /k must be a positive integer, got 1.5/);
    assert.throws(() => recallAtK(sim, 1, [0, 4, 1]), /targets\[1\] = 4 is not an integer in \[0, 4\)/);
    assert.throws(() => recallAtK(sim, 1, [0, 1]), /targets has 2 entries, expected 3/);
    assert.throws(() => targetRanks(tf.tidy(() => tf.transpose(sim)) as tf.Tensor2D), /default targets \(query i -> item i\) need items >= queries, got 4 queries and 3 items/);
    assert.throws(() => recallAtK(nan, 1), /the similarity contains NaN/);
    assert.throws(() => recallAtK(tf.tensor1d([1]) as unknown as tf.Tensor2D, 1), /similarity must have rank 2/);
    // The two tensors made inside the throws above (transpose, tensor1d) are the test's own.
    assert.equal(tf.memory().numTensors, before + 2);
    tf.dispose([sim, nan]);
  });
});

describe("label-based recall", () => {
  it("a hit if any top-k item shares the query's label", () => {
    const sim = tf.tensor2d(SIM);
    const q = [0, 1, 2];
    const items = [1, 0, 1, 2];
    // q0 (label 0): item 1 (0.1) is the only match, 3 items above -> 4
    // q1 (label 1): items 0, 2 (0.3, 0.8), best 0.8 -> 1
    // q2 (label 2): item 3 (0.6), 0.7 above -> 2
    assert.deepEqual(Array.from(ranksByLabel(sim, q, items)), [4, 1, 2]);
    assert.equal(recallAtKByLabel(sim, 1, q, items), 1 / 3);
    assert.equal(recallAtKByLabel(sim, 2, q, new Int32Array(items)), 2 / 3);
    assert.equal(recallAtKByLabel(sim, 4, q, items), 1);
    // A label no item has is a miss at any k.
    assert.equal(recallAtKByLabel(sim, 100, [0, 1, 5], items), 2 / 3);
    sim.dispose();
  });
});

describe("retrievalMetrics", () => {
  it("matches a float64 brute force in both directions, chunked or not", () => {
    const img = randomEmb(23, 6, 3);
    const txt = randomEmb(23, 6, 4);
    const i2t = cosines(img, txt);
    const t2i = cosines(txt, img);
    const a = tf.tensor2d(img);
    const b = tf.tensor2d(txt);
    const diag = (q: number, j: number) => q === j;
    for (const chunkSize of [1024, 4]) {
      const m = retrievalMetrics(a, b, [1, 5, 10], { chunkSize });
      for (const [got, sim] of [[m.imageToText, i2t], [m.textToImage, t2i]] as const) {
        const ranks = bruteRanks(sim, diag);
        for (const k of [1, 5, 10]) assert.equal(got[`R@${k}`], ranks.filter((r) => r <= k).length / ranks.length, `R@${k}`);
        assert.equal(got.medianRank, medianOf(ranks));
        assert.ok(Math.abs(got.meanRank - ranks.reduce((s, r) => s + r, 0) / ranks.length) < 1e-12);
      }
      assert.deepEqual(Object.keys(m.imageToText).sort(), ["R@1", "R@10", "R@5", "meanRank", "medianRank"]);
    }
    tf.dispose([a, b]);
  });

  it("several captions per image: the other direction is derived", () => {
    const img = randomEmb(5, 6, 5);
    const txt = randomEmb(10, 6, 6);
    const a = tf.tensor2d(img);
    const b = tf.tensor2d(txt);
    const captions = (i: number) => [2 * i, 2 * i + 1];
    const owner = Int32Array.from({ length: 10 }, (_, j) => j >> 1);
    const derived = retrievalMetrics(a, b, [1, 2], { imageToTextTargets: captions });
    const explicit = retrievalMetrics(a, b, [1, 2], { imageToTextTargets: captions, textToImageTargets: owner });
    const fromOwner = retrievalMetrics(a, b, [1, 2], { textToImageTargets: owner });
    assert.deepEqual(derived, explicit);
    assert.deepEqual(fromOwner, explicit);
    const i2tRanks = bruteRanks(cosines(img, txt), (q, j) => j >> 1 === q);
    const t2iRanks = bruteRanks(cosines(txt, img), (q, j) => q >> 1 === j);
    assert.equal(derived.imageToText["R@1"], i2tRanks.filter((r) => r <= 1).length / 5);
    assert.equal(derived.imageToText.medianRank, medianOf(i2tRanks));
    assert.equal(derived.textToImage["R@2"], t2iRanks.filter((r) => r <= 2).length / 10);
    assert.equal(derived.textToImage.medianRank, medianOf(t2iRanks));
    tf.dispose([a, b]);
  });

  it("label variant (Fashion-MNIST-style class captions)", () => {
    const img = randomEmb(12, 5, 7);
    const txt = randomEmb(9, 5, 8);
    const imageLabels = Int32Array.from({ length: 12 }, (_, i) => i % 3);
    const textLabels = Int32Array.from({ length: 9 }, (_, j) => j % 4); // label 3: texts without images
    const a = tf.tensor2d(img);
    const b = tf.tensor2d(txt);
    const m = retrievalMetrics(a, b, [1, 3], { imageLabels, textLabels, chunkSize: 5 });
    const i2t = bruteRanks(cosines(img, txt), (q, j) => imageLabels[q] === textLabels[j]);
    const t2i = bruteRanks(cosines(txt, img), (q, j) => textLabels[q] === imageLabels[j]);
    assert.ok(t2i.includes(Infinity), "texts of label 3 have no image");
    for (const k of [1, 3]) {
      assert.equal(m.imageToText[`R@${k}`], i2t.filter((r) => r <= k).length / 12);
      assert.equal(m.textToImage[`R@${k}`], t2i.filter((r) => r <= k).length / 9);
    }
    tf.dispose([a, b]);
  });

  it("rejects inconsistent inputs in one line", () => {
    const a = tf.zeros([3, 4]) as tf.Tensor2D;
    const b = tf.ones([2, 4]) as tf.Tensor2D;
    const c = tf.ones([3, 5]) as tf.Tensor2D;
    assert.throws(() => retrievalMetrics(a, b), /3 images and 2 texts: the default pairing .* needs equal counts/);
    assert.throws(() => retrievalMetrics(a, c), /imageEmb has dimension 4, textEmb 5/);
    assert.throws(() => retrievalMetrics(a, b, [0]), /every k must be a positive integer, got 0/);
    assert.throws(() => retrievalMetrics(a, b, [1], { imageLabels: [0, 0, 0] }), /needs both imageLabels and textLabels/);
    assert.throws(
      () => retrievalMetrics(a, b, [1], { imageLabels: [0, 0, 0], textLabels: [0, 0], imageToTextTargets: [0, 1, 1] }),
      /either labels .* or targets/,
    );
    assert.throws(() => retrievalMetrics(a, b, [1], { imageToTextTargets: [0, 1, 2] }), /imageToTextTargets\[2\] = 2 is not an integer in \[0, 2\)/);
    tf.dispose([a, b, c]);
  });
});

describe("memory", () => {
  it("recall, ranks and retrievalMetrics leak nothing (also when they throw)", () => {
    const sim = tf.tensor2d(SIM);
    const a = tf.tensor2d(randomEmb(20, 6, 9));
    const b = tf.tensor2d(randomEmb(20, 6, 10));
    const nan = tf.tensor2d([[NaN, 0], [0, 1]]);
    assertNoLeak("recallAtK", () => recallAtK(sim, 2));
    assertNoLeak("recallAtK (function targets, chunked)", () => targetRanks(sim, () => [0, 1], { chunkSize: 2 }));
    assertNoLeak("medianRank", () => medianRank(sim));
    assertNoLeak("recallAtKByLabel", () => recallAtKByLabel(sim, 2, [0, 1, 2], [1, 0, 1, 2]));
    assertNoLeak("retrievalMetrics", () => retrievalMetrics(a, b, [1, 5], { chunkSize: 7 }));
    assertNoLeak("retrievalMetrics (labels)", () =>
      retrievalMetrics(a, b, [1], { imageLabels: new Int32Array(20).fill(1), textLabels: new Int32Array(20) }),
    );
    assertNoLeak("NaN error", () => assert.throws(() => recallAtK(nan, 1), /NaN/));
    tf.dispose([sim, a, b, nan]);
  });
});
