/** Classifier metrics, calibration and the bootstrap, against hand-computed values. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { classificationMetrics, expectedCalibrationError, fitLogitScale, meanNll, softmaxRows } from "../../src/eval/classifier_metrics";
import { bootstrapMean } from "../../src/eval/bootstrap";
import { assertThrowsOneLine } from "../helpers/errors";
import { Random } from "../../src/util/random";

// 4 images x 3 classes.
const SCORES = [
  0.9, 0.1, 0.0, // -> 0, label 0: hit
  0.2, 0.5, 0.5, // tie 1/2 -> 1, label 2: miss, rank 1
  0.3, 0.2, 0.1, // -> 0, label 2: miss, rank 2
  0.0, 0.0, 0.7, // -> 2, label 2: hit
];
const LABELS = [0, 2, 2, 2];

describe("classificationMetrics", () => {
  it("top-1, top-k with the ties rule, per-class accuracy and confusion (hand values)", () => {
    const m = classificationMetrics(SCORES, LABELS, 3, { logitScale: 2 });
    assert.equal(m.top1, 0.5);
    assert.equal(m.top5, 1); // min(5, C) = 3
    assert.deepEqual(m.confusion, [[1, 0, 0], [0, 0, 0], [1, 1, 1]]);
    assert.deepEqual(m.support, [1, 0, 3]);
    assert.ok(Number.isNaN(m.perClass[1]));
    assert.equal(m.perClass[0], 1);
    assert.ok(Math.abs(m.perClass[2] - 1 / 3) < 1e-12);
    assert.ok(Math.abs(m.meanPerClass - 2 / 3) < 1e-12);
    // NLL at scale 2 by hand.
    const nll = [0, 1, 2, 3].map((i) => {
      const z = SCORES.slice(3 * i, 3 * i + 3).map((x) => 2 * x);
      return Math.log(z.reduce((s, x) => s + Math.exp(x), 0)) - z[LABELS[i]];
    });
    assert.ok(Math.abs(m.nll - nll.reduce((a, b) => a + b) / 4) < 1e-12);
    assertThrowsOneLine(() => classificationMetrics(SCORES, [0, 1, 3, 0], 3), /labels\[2\] = 3 is not an integer in \[0, 3\)/);
    assertThrowsOneLine(() => classificationMetrics(SCORES, [], 3), /labels is empty/);
    assertThrowsOneLine(() => classificationMetrics(SCORES, LABELS, 3, { logitScale: 0 }), /logitScale must be a positive number, got 0/);
  });

  it("softmax rows sum to 1; ECE by hand with 2 bins", () => {
    const p = softmaxRows(SCORES, 4, 3, 5);
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(p[3 * i] + p[3 * i + 1] + p[3 * i + 2] - 1) < 1e-12);
    // max probs 0.9 (hit), 0.6 (miss), 0.7 (hit), 0.55 (miss), 0.3 (miss)
    const probs = [0.9, 0.05, 0.05, 0.6, 0.3, 0.1, 0.2, 0.1, 0.7, 0.55, 0.45, 0, 0.3, 0.3, 0.4];
    const { ece, reliability } = expectedCalibrationError(probs, Int32Array.from([0, 1, 2, 1, 0]), 3, 2);
    // bin [0, .5): {0.4 (pred 2, label 0: miss)}; bin [.5, 1]: {0.9 hit, 0.6 miss, 0.7 hit, 0.55 miss}
    assert.deepEqual(reliability.map((b) => b.count), [1, 4]);
    const want = (1 / 5) * Math.abs(0 - 0.4) + (4 / 5) * Math.abs(0.5 - (0.9 + 0.6 + 0.7 + 0.55) / 4);
    assert.ok(Math.abs(ece - want) < 1e-12, `${ece} vs ${want}`);
  });

  it("fitLogitScale recovers the temperature that generated the labels", () => {
    const rng = new Random(1);
    const n = 4000;
    const c = 4;
    const scores = new Float32Array(n * c).map(() => rng.normal());
    const labels = new Int32Array(n);
    const p = softmaxRows(scores, n, c, 3);
    for (let i = 0; i < n; i++) {
      let u = rng.next();
      let k = 0;
      while (k < c - 1 && (u -= p[i * c + k]) > 0) k++;
      labels[i] = k;
    }
    const s = fitLogitScale(scores, labels, c);
    assert.ok(Math.abs(s - 3) < 0.3, `fitted ${s}`);
    assert.ok(meanNll(scores, labels, c, s) <= meanNll(scores, labels, c, 3) + 1e-9);
  });
});

describe("bootstrapMean", () => {
  it("is seeded, brackets the mean, has zero width for constant values and shrinks with n", () => {
    const v = Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? 1 : 0));
    const a = bootstrapMean(v, { resamples: 500, seed: 2 });
    assert.deepEqual(bootstrapMean(v, { resamples: 500, seed: 2 }), a);
    const [low, high] = a.ci95;
    assert.equal(a.value, 0.25);
    assert.ok(low < 0.25 && 0.25 < high);
    // Normal approximation: half-width ~ 1.96 * sqrt(0.25 * 0.75 / 200) = 0.06.
    assert.ok(Math.abs((high - low) / 2 - 0.06) < 0.015, `${low}..${high}`);
    const c = bootstrapMean([0.3, 0.3, 0.3], { resamples: 50 });
    assert.equal(c.ci95[0], c.ci95[1]);
    assertThrowsOneLine(() => bootstrapMean([]), /no values/);
    assertThrowsOneLine(() => bootstrapMean([1], { level: 1 }), /level must be in \(0, 1\), got 1/);
  });
});
