/** The batched encoder: batch sizes from the config, equality with direct encoder calls, streams, leaks. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { activationBytes, batchSizes, encodeImages, encodePixels, encodeTexts, encodeTextsWith, MAX_BATCH } from "../../src/eval/encode";
import type { EmbeddingEngine } from "../../src/engine/engine";
import type { PreparedImage } from "../../src/data/prepared";
import { getModelConfig } from "../../src/model/registry";
import { Clip } from "../../src/model/clip";
import { normalizePixels } from "../../src/image/preprocess";
import { tokenize } from "../../src/text/tokenize";
import { assertClose, useBackend } from "../helpers/fixtures";
import { Random } from "../../src/util/random";

before(() => useBackend("wasm"));

const TEXTS = ["a photo of a dog", "a cat", "two birds on a wire at dusk, in the rain", "x", "a photo of a red car", "a bag"];

function tinyClip(): Clip {
  const cfg = getModelConfig("ViT-Tiny-28");
  return Clip.create(cfg, { seed: 3 });
}

describe("batch sizes", () => {
  it("come from the config and the budget, within [1, MAX_BATCH]", () => {
    const b32 = getModelConfig("ViT-B-32");
    const a = activationBytes(b32);
    assert.ok(a.image > 1e6 && a.text > 1e6, `per-item activations ${a.image}, ${a.text}`);
    const small = batchSizes(b32, 64 * 2 ** 20);
    const large = batchSizes(b32, 1024 * 2 ** 20);
    assert.ok(small.images < large.images && small.texts < large.texts);
    assert.ok(small.images * a.image <= 64 * 2 ** 20);
    assert.equal(batchSizes(b32, 1).images, 1);
    assert.equal(batchSizes(getModelConfig("RN-Micro-32")).images, MAX_BATCH);
    const l14 = batchSizes(getModelConfig("ViT-L-14"));
    assert.ok(l14.images < batchSizes(b32).images, "a bigger model gets smaller batches");
  });
});

describe("encodeTexts / encodePixels", () => {
  it("equal the encoders called on the whole input (packed tokens change nothing)", () => {
    const clip = tinyClip();
    const tokens = tokenize(TEXTS, { contextLength: clip.config.text_cfg.context_length });
    const direct = clip.encodeText(tokens);
    for (const batchSize of [1, 4, 256]) {
      const f = encodeTexts(clip, TEXTS, { batchSize });
      assert.equal(f.n, TEXTS.length);
      assert.equal(f.dim, clip.config.embed_dim);
      assertClose(f.values, direct.dataSync(), `texts, batch ${batchSize}`, 1e-5);
    }
    const unit = encodeTexts(clip, TEXTS, { normalize: true });
    for (let r = 0; r < unit.n; r++) {
      const norm = Math.hypot(...unit.values.subarray(r * unit.dim, (r + 1) * unit.dim));
      assert.ok(Math.abs(norm - 1) < 1e-5);
    }
    const pixels = tf.randomUniform([5, 28, 28, 3], -1, 1, "float32", 1) as tf.Tensor4D;
    const img = clip.encodeImage(pixels);
    const progress: number[] = [];
    const f = encodePixels(clip, (s, e) => tf.slice(pixels, [s, 0, 0, 0], [e - s, -1, -1, -1]), 5, { batchSize: 2, onProgress: (p) => progress.push(p.done) });
    assert.deepEqual(progress, [2, 4, 5]);
    assertClose(f.values, img.dataSync(), "images", 1e-5);
    tf.dispose([tokens, direct, pixels, img]);
    clip.dispose();
  });

  it("leave no tensor behind", () => {
    const clip = tinyClip();
    encodeTexts(clip, TEXTS.slice(0, 1)); // the model caches its causal mask on first use
    const before = tf.memory().numTensors;
    encodeTexts(clip, TEXTS, { batchSize: 4 });
    encodePixels(clip, (s, e) => tf.zeros([e - s, 28, 28, 3]) as tf.Tensor4D, 3, { batchSize: 2 });
    assert.equal(tf.memory().numTensors, before);
    assert.throws(() => encodeTexts(clip, TEXTS, { tokenizer: () => tf.zeros([1, 1], "int32") as tf.Tensor2D }), /the tokenizer must return \[6, T\] token ids for 6 texts/);
    assert.equal(tf.memory().numTensors, before);
    clip.dispose();
  });
});

function prepared(n: number, size: number, seed: number): PreparedImage[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, (_, i) => ({
    key: `img${i}`,
    index: 10 + i,
    label: i % 3,
    captions: i % 2 ? [`caption ${i}`] : [],
    groups: { g: i < 2 ? "a" : "b" },
    pixels: Uint8Array.from({ length: size * size * 3 }, () => rng.int(256)),
  }));
}

async function* stream<T>(xs: T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

describe("encodeImages", () => {
  it("normalises the uint8 inputs, keeps the rows in order, equals the model on the same pixels", async () => {
    const clip = tinyClip();
    const items = prepared(7, 28, 1);
    const mean = [0.5, 0.4, 0.3];
    const std = [0.2, 0.25, 0.3];
    const before = tf.memory().numTensors;
    const out = await encodeImages(clip, stream(items), { mean, std, batchSize: 3 });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(out.keys, items.map((i) => i.key));
    assert.deepEqual(Array.from(out.indices), [10, 11, 12, 13, 14, 15, 16]);
    assert.deepEqual(Array.from(out.labels), [0, 1, 2, 0, 1, 2, 0]);
    assert.deepEqual(out.captions[1], ["caption 1"]);
    assert.equal(out.groups[3].g, "b");
    const x = new Float32Array(7 * 28 * 28 * 3);
    items.forEach((it, i) => x.set(normalizePixels(it.pixels, mean, std), i * 28 * 28 * 3));
    const t = tf.tensor4d(x, [7, 28, 28, 3]);
    const want = clip.encodeImage(t);
    assertClose(out.values, want.dataSync(), "features", 1e-5);
    tf.dispose([t, want]);
    await assert.rejects(encodeImages(clip, stream(prepared(1, 20, 2)), { mean, std }), /img0 has 1200 pixel values, expected 28x28x3 = 2352/);
    await assert.rejects(encodeImages(clip, stream([]), { mean, std }), /no images to encode/);
    clip.dispose();
  });

  it("runs on an engine with its batch size", async () => {
    const calls: number[] = [];
    const engine: EmbeddingEngine = {
      name: "fake",
      embedDim: 2,
      imageSize: 4,
      contextLength: 8,
      async embedImages(pixels, n) {
        calls.push(n);
        const out = new Float32Array(n * 2);
        for (let i = 0; i < n; i++) out.set([pixels[i * 48], 1], i * 2);
        return out;
      },
      async embedTexts(ids, n, length) {
        const out = new Float32Array(n * 2);
        for (let i = 0; i < n; i++) out.set([ids[i * length + 1], length], i * 2);
        return out;
      },
      dispose() {},
    };
    const items = prepared(5, 4, 3);
    const out = await encodeImages(engine, stream(items), { mean: [0, 0, 0], std: [1, 1, 1], batchSize: 2 });
    assert.deepEqual(calls, [2, 2, 1]);
    assert.deepEqual(Array.from(out.values.filter((_, i) => i % 2 === 0)), items.map((it) => Math.fround(it.pixels[0] / 255)));
    const t = await encodeTextsWith(engine, ["a", "a b c"], { batchSize: 8 });
    assert.equal(t.values[1], t.values[3], "one batch is packed to its longest row");
  });
});
