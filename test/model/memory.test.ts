/**
 * tf.memory().numTensors must not grow across repeated calls: each encoder, the forward pass,
 * the losses and a full gradient step through the model.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../../src/model/clip";
import { clipLoss } from "../../src/loss/info_nce";
import { sigLipLoss } from "../../src/loss/siglip";
import { initBackend } from "../../src/backend";

/** Runs `step` a few times; the tensor count after each call must equal the count after the first. */
function assertNoGrowth(label: string, step: () => void, repeats = 4): void {
  step(); // first call may create lazily cached tensors (the causal mask)
  const baseline = tf.memory().numTensors;
  for (let i = 0; i < repeats; i++) {
    step();
    assert.equal(tf.memory().numTensors, baseline, `${label}: call ${i + 2} left ${tf.memory().numTensors - baseline} tensor(s)`);
  }
}

// wasm first: initBackend registers the kernels WASM lacks for gradients (embedding, conv filter).
for (const backend of ["wasm", "cpu"] as const)
for (const preset of ["ViT-Tiny-28", "RN-Tiny-32"]) {
  describe(`${preset} memory on ${backend}`, () => {
    it("encoders, forward, losses and a gradient step leak nothing", async () => {
      if (backend === "wasm") await initBackend({ prefer: "wasm" });
      else await tf.setBackend("cpu");
      assert.equal(tf.getBackend(), backend);
      const clip = Clip.create(preset, { seed: 0 });
      const size = clip.config.vision_cfg.image_size;
      const images = tf.randomNormal([4, size, size, 3], 0, 1, "float32", 1) as tf.Tensor4D;
      const tokens = tf.tensor2d(
        [[49406, 320, 49407, 0], [49406, 1125, 539, 49407], [49406, 49407, 0, 0], [49406, 2368, 49407, 0]],
        undefined,
        "int32",
      );
      const bias = tf.scalar(-10);
      assertNoGrowth("encodeImage", () => clip.encodeImage(images).dispose());
      // Training mode (BatchNorm batch statistics; the running statistics are replaced in place).
      assertNoGrowth("encodeImage training", () => clip.encodeImage(images, { training: true }).dispose());
      assertNoGrowth("encodeText", () => clip.encodeText(tokens).dispose());
      assertNoGrowth("forward", () => {
        const out = clip.forward(images, tokens);
        tf.dispose([out.logitsPerImage, out.logitsPerText]);
      });
      assertNoGrowth("clipLoss", () => tf.tidy(() => clipLoss(clip.encodeImage(images), clip.encodeText(tokens), clip.logitScale as tf.Scalar)).dispose());
      assertNoGrowth("sigLipLoss", () => tf.tidy(() => sigLipLoss(clip.encodeImage(images), clip.encodeText(tokens), clip.logitScale as tf.Scalar, bias)).dispose());
      const vars = clip.trainableVariables();
      let firstLoss = NaN;
      assertNoGrowth("gradient step", () => {
        const { value, grads } = tf.variableGrads(
          () => clipLoss(clip.encodeImage(images), clip.encodeText(tokens), clip.logitScale as tf.Scalar),
          vars,
        );
        if (Number.isNaN(firstLoss)) firstLoss = value.dataSync()[0];
        assert.equal(Object.keys(grads).length, vars.length, "every trainable weight gets a gradient");
        tf.dispose([value, ...Object.values(grads)]);
      });
      assert.ok(Number.isFinite(firstLoss));
      assertNoGrowth("gradient step, training mode", () => {
        const { value, grads } = tf.variableGrads(
          () => clipLoss(clip.encodeImage(images, { training: true }), clip.encodeText(tokens), clip.logitScale as tf.Scalar),
          vars,
        );
        tf.dispose([value, ...Object.values(grads)]);
      });
      tf.dispose([images, tokens, bias]);
      const before = tf.memory().numTensors;
      clip.dispose();
      assert.ok(tf.memory().numTensors < before, "dispose releases the weights");
    });
  });
}
