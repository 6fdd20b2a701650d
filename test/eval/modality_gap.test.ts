/** The modality gap on hand values. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { modalityGap, modalityGapVector } from "../../src/eval/modality_gap";
import { assertAllClose, assertNoLeak, useTestBackend } from "./fake_clip";

before(useTestBackend);

describe("modalityGap", () => {
  it("is the distance between the centroids of the normalised embeddings (hand values)", () => {
    // n([2,0]) = [1,0], n([0,3]) = [0,1] -> centroid [.5,.5]; text centroid n([-4,0]) = [-1,0].
    const img = tf.tensor2d([[2, 0], [0, 3]]);
    const txt = tf.tensor2d([[-4, 0]]);
    assert.ok(Math.abs(modalityGap(img, txt) - Math.sqrt(1.5 ** 2 + 0.5 ** 2)) < 1e-6);
    const v = modalityGapVector(img, txt);
    assertAllClose(v.dataSync(), [1.5, 0.5], "gap vector");
    tf.dispose([img, txt, v]);
  });

  it("is 0 for the same directions and 2 for antipodal ones", () => {
    const a = tf.tensor2d([[1, 2, 3], [0, -1, 0.5]]);
    const b = tf.tensor2d([[2, 4, 6], [0, -3, 1.5]]);
    const c = tf.tensor2d([[0, 0, 5]]);
    const d = tf.tensor2d([[0, 0, -0.1], [0, 0, -7]]);
    assert.ok(modalityGap(a, b) < 1e-6);
    assert.ok(Math.abs(modalityGap(c, d) - 2) < 1e-6);
    tf.dispose([a, b, c, d]);
  });

  it("rejects mismatched dimensions in one line; leaks nothing", () => {
    const a = tf.ones([2, 3]) as tf.Tensor2D;
    const b = tf.ones([2, 4]) as tf.Tensor2D;
    assert.throws(() => modalityGap(a, b), /^Error: modalityGap: imageEmb has dimension 3, textEmb 4$/);
    const c = tf.randomNormal([5, 4], 0, 1, "float32", 1) as tf.Tensor2D;
    assertNoLeak("modalityGap", () => modalityGap(c, b));
    assertNoLeak("modalityGapVector", () => modalityGapVector(c, b).dispose());
    tf.dispose([a, b, c]);
  });
});
