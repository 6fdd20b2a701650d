/** CoOp prompt tuning on a real (random) ViT-Tiny-28 CLIP: frozen encoders, exact start, errors, leaks. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../../src/model/clip";
import { tokenize } from "../../src/text/tokenize";
import { argmaxRows } from "../../src/util/argmax";
import { coopClassWeights, trainCoOp } from "../../src/prompts/coop";
import type { FeatureSet } from "../../src/prompts/prompt_bank";
import { Random } from "../../src/util/random";
import { assertAllClose, useTestBackend } from "../eval/fake_clip";
import { assertThrowsOneLine } from "../helpers/errors";

before(useTestBackend);

const CLASSES = ["coat", "ankle boot", "bag"];

/** Unit random image features with labels 0, 1, 2, 0, 1, 2, ... */
function randomFeatures(n: number, dim: number, seed: number): FeatureSet {
  const f = new Random(seed).fillNormal(new Float32Array(n * dim));
  for (let i = 0; i < n; i++) {
    const row = f.subarray(i * dim, (i + 1) * dim);
    const norm = Math.hypot(...row);
    row.forEach((x, j) => (row[j] = x / norm));
  }
  return { features: f, dim, n, labels: Int32Array.from({ length: n }, (_, i) => i % 3) };
}

describe("Clip.encodeTextEmbeddings", () => {
  it("equals encodeText when fed the token embeddings of the ids", () => {
    const clip = Clip.create("ViT-Tiny-28", { seed: 2 });
    const tokens = tokenize(["a photo of a coat.", "a bag"], { contextLength: 16 });
    const eot = argmaxRows(tokens.dataSync() as Int32Array, 2, 16);
    const [a, b] = tf.tidy(() => {
      const emb = tf.reshape(tf.gather(clip.params.get("token_embedding.weight")!, tf.reshape(tokens, [-1])), [2, 16, 64]) as tf.Tensor3D;
      return [clip.encodeText(tokens), clip.encodeTextEmbeddings(emb, eot)];
    });
    assertAllClose(b.dataSync(), a.dataSync(), "features", 1e-5);
    assertThrowsOneLine(() => clip.encodeTextEmbeddings(tf.zeros([1, 17, 64]) as tf.Tensor3D, new Int32Array([0])), /x must be \[B, T, 64\] with 1 <= T <= 16/);
    tf.dispose([a, b, tokens]);
    clip.dispose();
  });
});

describe("trainCoOp", () => {
  it("starts from the prompt 'a photo of a <class>.' exactly when initialised from that phrase", () => {
    const clip = Clip.create("ViT-Tiny-28", { seed: 3 });
    const ctx = tf.tidy(() => tf.gather(clip.params.get("token_embedding.weight")!, tf.tensor1d(Array.from(tokenize("a photo of a", { contextLength: 16 }).dataSync()).slice(1, 5), "int32")).dataSync() as Float32Array);
    const { weights, dim } = coopClassWeights(clip, CLASSES, ctx);
    const want = tf.tidy(() => {
      const f = clip.encodeText(tokenize(CLASSES.map((c) => `a photo of a ${c}.`), { contextLength: 16 }));
      return tf.div(f, tf.norm(f, 2, 1, true)).dataSync();
    });
    assert.equal(dim, 128);
    assertAllClose(weights, want, "class weights", 1e-5);
    clip.dispose();
  });

  it("updates only the context: every encoder weight is bit-identical afterwards; the loss falls", () => {
    const clip = Clip.create("ViT-Tiny-28", { seed: 4 });
    const snapshot = new Map([...clip.params].map(([k, v]) => [k, Buffer.from((v.dataSync() as Float32Array).slice().buffer)]));
    const train = randomFeatures(12, 128, 5);
    const seen: number[] = [];
    const r = trainCoOp(clip, CLASSES, train, { steps: 15, lr: 0.02, onStep: (e) => seen.push(e.step) });
    for (const [k, v] of clip.params) assert.ok(Buffer.from((v.dataSync() as Float32Array).slice().buffer).equals(snapshot.get(k)!), `${k} changed`);
    assert.equal(r.losses.length, 15);
    assert.deepEqual(seen, Array.from({ length: 15 }, (_, i) => i));
    assert.ok(r.losses[14] < r.losses[0], `loss ${r.losses[0]} -> ${r.losses[14]}`);
    assert.equal(r.nCtx, 4);
    assert.equal(r.ctx.length, 4 * 64);
    // Seeded and deterministic, with SGD and mini-batches too.
    const a = trainCoOp(clip, CLASSES, train, { steps: 3, init: "random", nCtx: 2, optimizer: "sgd", batchSize: 5, seed: 9 });
    const b = trainCoOp(clip, CLASSES, train, { steps: 3, init: "random", nCtx: 2, optimizer: "sgd", batchSize: 5, seed: 9 });
    assert.deepEqual(a.ctx, b.ctx);
    assert.deepEqual(a.losses, b.losses);
    assert.equal(a.nCtx, 2);
    clip.dispose();
  });

  it("leaks nothing across repeated runs", () => {
    const clip = Clip.create("ViT-Tiny-28", { seed: 4 });
    const train = randomFeatures(6, 128, 1);
    trainCoOp(clip, CLASSES, train, { steps: 2 });
    const base = tf.memory().numTensors;
    for (const optimizer of ["adamw", "sgd"] as const) trainCoOp(clip, CLASSES, train, { steps: 2, optimizer, batchSize: 4 });
    coopClassWeights(clip, CLASSES, new Float32Array(3 * 64));
    assert.equal(tf.memory().numTensors, base);
    clip.dispose();
  });

  it("bad inputs are one-line errors", () => {
    const clip = Clip.create("ViT-Tiny-28", { seed: 4 });
    const train = randomFeatures(6, 128, 1);
    assertThrowsOneLine(() => trainCoOp(clip, [], train), /classNames must be a non-empty array/);
    assertThrowsOneLine(
      () => trainCoOp(clip, ["coat", "bag", "very very very very very very very very long coat"], train, { steps: 1 }),
      /class name "very .*long coat" with 4 context vectors needs 17 tokens \(with SOT\/EOT\), more than the model's context length 16/,
    );
    assertThrowsOneLine(() => trainCoOp(clip, CLASSES, train, { init: "a photo of a", nCtx: 2 }), /nCtx = 2 but init "a photo of a" has 4 tokens/);
    assertThrowsOneLine(() => trainCoOp(clip, CLASSES, train, { optimizer: "lbfgs" as "sgd" }), /optimizer must be one of adamw, sgd, got "lbfgs"/);
    assertThrowsOneLine(() => trainCoOp(clip, ["a", "b"], train), /label of training image 2 = 2 outside \[0, 2\)/);
    assertThrowsOneLine(() => trainCoOp(clip, CLASSES, train, { steps: 0 }), /steps must be a positive integer, got 0/);
    clip.dispose();
  });
});
