/** Modality gap vs temperature: what rescaling the logits changes and what it cannot. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { gapShiftSweep, temperatureSweep } from "../../src/eval/gap_temperature";
import { modalityGap } from "../../src/eval/modality_gap";
import { assertNoLeak, useTestBackend } from "./fake_clip";
import { assertThrowsOneLine } from "../helpers/errors";

before(useTestBackend);

/** Paired embeddings with a gap: images near +e0, texts near +e1, pair i sharing a direction. */
function pairs(): [tf.Tensor2D, tf.Tensor2D] {
  return tf.tidy(() => {
    const shared = tf.randomNormal([12, 6], 0, 1, "float32", 7);
    const img = tf.add(shared, tf.tensor1d([3, 0, 0, 0, 0, 0])) as tf.Tensor2D;
    const txt = tf.add(shared, tf.tensor1d([0, 3, 0, 0, 0, 0])) as tf.Tensor2D;
    return [img, txt];
  });
}

describe("temperatureSweep", () => {
  it("gap and Recall@1 are invariant; the loss and match probability follow the hand softmax", () => {
    const [img, txt] = pairs();
    const rows = temperatureSweep(img, txt, [1, 10, 100]);
    for (const r of rows) {
      assert.equal(r.gap, rows[0].gap);
      assert.equal(r.recallAt1ImageToText, rows[0].recallAt1ImageToText);
    }
    assert.ok(Math.abs(rows[0].gap - modalityGap(img, txt)) < 1e-6);
    // Hand InfoNCE at scale 10 in float64.
    const n = (m: number[][]) => m.map((r) => r.map((x) => x / Math.hypot(...r)));
    const a = n(img.arraySync());
    const b = n(txt.arraySync());
    const cos = a.map((r) => b.map((s) => r.reduce((t, x, k) => t + x * s[k], 0)));
    const lse = (v: number[]) => Math.log(v.reduce((s, x) => s + Math.exp(x), 0));
    const rowLoss = cos.map((r, i) => lse(r.map((x) => 10 * x)) - 10 * r[i]);
    const colLoss = cos.map((_, j) => lse(cos.map((r) => 10 * r[j])) - 10 * cos[j][j]);
    const want = (rowLoss.reduce((s, x) => s + x) + colLoss.reduce((s, x) => s + x)) / 24;
    assert.ok(Math.abs(rows[1].loss - want) < 1e-4, `${rows[1].loss} vs ${want}`);
    const pMatch = rowLoss.reduce((s, x) => s + Math.exp(-x), 0) / 12;
    assert.ok(Math.abs(rows[1].matchProbImageToText - pMatch) < 1e-5);
    assertThrowsOneLine(() => temperatureSweep(img, txt, [0]), /every scale must be a positive number, got 0/);
    assertThrowsOneLine(() => temperatureSweep(img, tf.zeros([3, 6]) as tf.Tensor2D, [1]), /must be paired/);
    tf.dispose([img, txt]);
  });
});

describe("gapShiftSweep", () => {
  it("lambda 0 is the model, lambda 1 nearly closes the gap, negative lambda widens it; no leaks", () => {
    const [img, txt] = pairs();
    const rows = gapShiftSweep(img, txt, [-0.5, 0, 1], 10);
    assert.ok(Math.abs(rows[1].gap - modalityGap(img, txt)) < 1e-6);
    assert.ok(rows[2].gap < 0.25 * rows[1].gap, `gap ${rows[1].gap} -> ${rows[2].gap}`);
    assert.ok(rows[0].gap > rows[1].gap);
    assert.ok(rows[2].meanPairCosine > rows[1].meanPairCosine);
    assertNoLeak("sweeps", () => {
      temperatureSweep(img, txt, [1, 5]);
      gapShiftSweep(img, txt, [0, 0.5], 10);
    });
    tf.dispose([img, txt]);
  });
});
