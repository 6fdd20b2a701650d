/** The evaluation tools on a real (random) ViT-Tiny-28 CLIP: shapes, finite values, no leaks. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../../src/model/clip";
import { tokenize } from "../../src/text/tokenize";
import { zeroShotClassifier } from "../../src/eval/zero_shot";
import { retrievalMetrics } from "../../src/eval/retrieval";
import { modalityGap } from "../../src/eval/modality_gap";
import { assertNoLeak, useTestBackend } from "./fake_clip";

before(useTestBackend);

describe("ViT-Tiny-28 (random weights)", () => {
  it("zero-shot classifier, retrieval and modality gap", () => {
    const clip = Clip.create("ViT-Tiny-28", { seed: 0 });
    const start = tf.memory().numTensors;
    const size = clip.config.vision_cfg.image_size;
    const classes = ["T-shirt/top", "trouser", "pullover", "dress"];
    const templates = ["a photo of a {}.", "a low-resolution photo of a {}.", "a black and white photo of the {}."];
    const n = 6;
    const pixels = tf.randomNormal([n, size, size, 3], 0, 1, "float32", 3) as tf.Tensor4D;
    const flat = pixels.dataSync() as Float32Array;
    const labels = new Int32Array([0, 1, 2, 3, 0, 1]);

    const clf = zeroShotClassifier(clip, classes, templates, { batchSize: 5 });
    assert.deepEqual(clf.weights.shape, [4, clip.config.embed_dim]);
    const norms = tf.tidy(() => tf.norm(clf.weights, 2, 1).dataSync());
    for (const v of norms) assert.ok(Math.abs(v - 1) < 1e-5, `unit row norm, got ${v}`);

    const { top1, probs } = clf.predict(pixels);
    assert.equal(top1.length, n);
    assert.deepEqual(probs.shape, [n, 4]);
    const p = probs.dataSync();
    assert.ok(p.every(Number.isFinite));
    for (let r = 0; r < n; r++) {
      const row = Array.from(p.subarray(r * 4, r * 4 + 4));
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      assert.equal(top1[r], row.indexOf(Math.max(...row)));
    }
    probs.dispose();

    const r = clf.evaluate({ pixels: flat, labels }, { batchSize: 4 });
    assert.ok(r.top1 >= 0 && r.top1 <= 1);
    assert.equal(r.top5, 1, "4 classes");
    assert.equal(r.confusion.flat().reduce((a, b) => a + b, 0), n);
    assert.deepEqual(r.support, [2, 2, 1, 1]);
    assert.deepEqual(clf.evaluate({ pixels, labels }, { batchSize: 5 }), r, "same from a tensor");

    const images = clip.encodeImage(pixels);
    const tokens = tokenize(["a photo of a dress.", "trousers", "a pullover", "a shirt", "a photo", "clothes"], {
      contextLength: clip.config.text_cfg.context_length,
    });
    const texts = clip.encodeText(tokens);
    const m = retrievalMetrics(images, texts, [1, 5, 10], { chunkSize: 4 });
    for (const dir of [m.imageToText, m.textToImage]) {
      assert.ok(dir["R@1"] >= 0 && dir["R@1"] <= dir["R@5"] && dir["R@10"] === 1);
      assert.ok(dir.medianRank >= 1 && dir.medianRank <= n);
    }
    const gap = modalityGap(images, texts);
    assert.ok(Number.isFinite(gap) && gap >= 0 && gap <= 2);

    assertNoLeak("predict", () => clf.predict(pixels).probs.dispose(), 2);
    assertNoLeak("evaluate", () => clf.evaluate({ pixels: flat, labels }, { batchSize: 4 }), 2);
    assertNoLeak("construct + dispose", () => zeroShotClassifier(clip, classes, templates).dispose(), 2);
    assertNoLeak("retrievalMetrics", () => retrievalMetrics(images, texts), 2);

    clf.dispose();
    tf.dispose([pixels, images, tokens, texts]);
    // The model's lazily cached causal mask may appear once; nothing else remains.
    assert.ok(tf.memory().numTensors - start <= 1, `left ${tf.memory().numTensors - start} tensor(s)`);
    clip.dispose();
  });
});
