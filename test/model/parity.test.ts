/**
 * The two tiny reference models (OpenAI's code under PyTorch, test/fixtures/README.md) against
 * our encoders on every compute configuration (cpu, wasm, wasm with the native BLAS kernels):
 * features, logits and the pooling positions, within
 * the README's fp32 tolerance (1e-4 * max(1, max|ref|)) against the float64 reference.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { loadCheckpoint } from "../../src/io/checkpoint";
import { argmaxRows } from "../../src/util/argmax";
import { FixtureModel, assertClose, fixtureImages, fixturePath, fixtureTokens, readExpected, useBackend } from "../helpers/fixtures";
import { COMPUTE, useCompute } from "../helpers/compute";

for (const backend of COMPUTE) {
  for (const model of ["tiny_vit", "tiny_rn"] as FixtureModel[]) {
    describe(`${model} on ${backend}`, () => {
      const expected = readExpected(model);

      it("matches OpenAI's image features, text features and logits", async (t) => {
        const unavailable = await useCompute(backend);
        if (unavailable) return t.skip(unavailable);
        const clip = await loadCheckpoint(fixturePath(`${model}.safetensors`));
        const images = fixtureImages(model);
        const tokens = fixtureTokens(model);
        try {
          const imageFeatures = clip.encodeImage(images);
          const textFeatures = clip.encodeText(tokens);
          const { logitsPerImage, logitsPerText } = clip.forward(images, tokens);
          assert.deepEqual(imageFeatures.shape, expected.f64.image_features.shape);
          assert.deepEqual(textFeatures.shape, expected.f64.text_features.shape);
          assertClose(imageFeatures, expected.f64.image_features.data, "image_features");
          assertClose(textFeatures, expected.f64.text_features.data, "text_features");
          assertClose(logitsPerImage, expected.f64.logits_per_image.data, "logits_per_image");
          const transposed = tf.transpose(logitsPerImage);
          assert.deepEqual(Array.from(logitsPerText.dataSync()), Array.from(transposed.dataSync()));
          assert.ok(Math.abs(Math.exp(clip.logitScale.dataSync()[0]) - expected.logit_scale_exp_f32) < 1e-4);
          tf.dispose([imageFeatures, textFeatures, logitsPerImage, logitsPerText, transposed]);
        } finally {
          tf.dispose([images, tokens]);
          clip.dispose();
        }
      });

      it("pools text at the first end-of-text token", () => {
        const ids = expected.texts.ids as number[][];
        const flat = Int32Array.from(ids.flat());
        assert.deepEqual(Array.from(argmaxRows(flat, ids.length, ids[0].length)), expected.texts.eot_index_argmax);
      });
    });
  }
}

describe("shorter token rows", () => {
  after(async () => {
    await useCompute("wasm");
    await useBackend("cpu");
  });
  it("give the same features as the zero-padded context (causal mask)", async () => {
    await useBackend("cpu");
    const clip = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
    const full = fixtureTokens("tiny_vit");
    const short = tf.slice(full, [0, 0], [2, 16]); // rows 0 and 1 end well before position 16
    const a = clip.encodeText(short);
    const b = tf.tidy(() => tf.slice(clip.encodeText(full), [0, 0], [2, -1]));
    assertClose(a, b.dataSync(), "short vs padded", 1e-6);
    tf.dispose([full, short, a, b]);
    clip.dispose();
  });
});
