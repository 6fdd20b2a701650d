/**
 * Training on a small slice of Fashion-MNIST: the loss falls, a stopped-and-resumed run
 * repeats the uninterrupted run's losses exactly, a NaN stops training with the step named and
 * the last good checkpoint kept, and a training step leaks no tensors.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { loadFashionMnist } from "../../src/data/fashion_mnist";
import { CaptionSet } from "../../src/data/captions";
import { packTokens, trainClip, TrainingDivergedError } from "../../src/train/trainer";
import { ClipOptimizer, MAX_LOGIT_SCALE, trainStep } from "../../src/train/step";
import { readStepRecords } from "../../src/train/run_state";
import { Clip } from "../../src/model/clip";
import { getModelConfig } from "../../src/model/registry";
import { loadCheckpoint } from "../../src/io/checkpoint";
import { tmpDir } from "../helpers/fixtures";
import { initBackend } from "../../src/backend/select";

// A model small enough that a dozen steps take seconds on the cpu backend.
const TINY = (() => {
  const cfg = getModelConfig("ViT-Tiny-28");
  cfg.vision_cfg.width = 32;
  cfg.vision_cfg.layers = 1;
  cfg.text_cfg.width = 32;
  cfg.text_cfg.layers = 1;
  cfg.text_cfg.vocab_size = 49408;
  cfg.embed_dim = 32;
  return cfg;
})();

const data = {
  train: loadFashionMnist("train", { limit: 512 }),
  test: loadFashionMnist("test", { limit: 200 }),
  captions: CaptionSet.load(),
};
const BASE = { model: TINY, batchSize: 64, epochs: 2, lr: 1e-3, warmupSteps: 4, evalLimit: 100, finalEvalLimit: 200, retrievalLimit: 100, seed: 7 };

before(async () => {
  await initBackend({ prefer: "wasm" });
});

describe("trainClip", () => {
  it("lowers the loss on a small slice and reports what it did", async () => {
    const r = await trainClip({ ...BASE, epochs: 3 }, {}, data);
    const losses = r.history.map((h) => h.loss);
    assert.equal(r.steps, 24);
    assert.equal(r.stopped, "completed");
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(losses.slice(-4)) < mean(losses.slice(0, 4)) - 0.3, `first ${losses.slice(0, 4)} last ${losses.slice(-4)}`);
    assert.ok(r.zeroShotTop1 > 0.2, `zero-shot ${r.zeroShotTop1} should beat chance (0.1)`);
    assert.ok(r.history.every((h) => h.logitScale >= 0 && h.logitScale <= MAX_LOGIT_SCALE + 1e-6));
    assert.equal(r.evals.length, 3); // after epochs 0 and 1, and the final one
    r.model.dispose();
  });

  it("resumes exactly: stopped after 5 steps and resumed, the losses equal an uninterrupted run", async () => {
    const whole = await trainClip({ ...BASE }, {}, data);
    whole.model.dispose();
    const dir = tmpDir();
    const first = await trainClip({ ...BASE, outDir: dir, stopAfterSteps: 5 }, {}, data);
    assert.equal(first.stopped, "stopAfterSteps");
    assert.equal(first.steps, 5);
    first.model.dispose();
    assert.deepEqual(fs.readdirSync(dir).sort(), ["metrics.arrow", "model.safetensors", "open_clip_config.json", "trainer_state.safetensors"]);
    const second = await trainClip({ ...BASE, outDir: dir, resume: true }, {}, data);
    second.model.dispose();
    assert.deepEqual(second.history.map((h) => h.loss), whole.history.map((h) => h.loss));
    assert.deepEqual(readStepRecords(dir).map((h) => h.loss), whole.history.map((h) => Math.fround(h.loss)));
    await assert.rejects(trainClip({ ...BASE, outDir: dir, resume: true, lr: 2e-3 }, {}, data), /cannot resume .*: option lr was 0\.001, now 0\.002/);
  });

  it("resumes a ModifiedResNet exactly: BatchNorm running statistics and the sparse embedding moments round-trip", async () => {
    const rn = { ...BASE, model: "RN-Nano-32", epochs: 1 };
    const whole = await trainClip(rn, {}, data);
    const wholeState = new Map(whole.model.stateDict().map((t) => [t.name, t.data]));
    whole.model.dispose();
    const dir = tmpDir();
    (await trainClip({ ...rn, outDir: dir, stopAfterSteps: 3 }, {}, data)).model.dispose();
    const saved = await loadCheckpoint(path.join(dir, "model.safetensors"));
    // Training mode moved the running statistics away from their initial 0 / 1 and they were saved.
    const rm = saved.params.get("visual.bn1.running_mean")!.dataSync();
    const rv = saved.params.get("visual.bn1.running_var")!.dataSync();
    assert.ok(rm.some((x) => x !== 0) && rv.some((x) => x !== 1), "running statistics were updated and saved");
    saved.dispose();
    const second = await trainClip({ ...rn, outDir: dir, resume: true }, {}, data);
    assert.deepEqual(second.history.map((h) => h.loss), whole.history.map((h) => h.loss));
    for (const t of second.model.stateDict()) {
      if (t.name.includes("running_") || t.name === "token_embedding.weight") {
        assert.deepEqual(Array.from(t.data), Array.from(wholeState.get(t.name)!), `${t.name} equals the uninterrupted run's`);
      }
    }
    second.model.dispose();
  });

  it("stops on a non-finite loss or weights, naming the step, and keeps the last good checkpoint", async () => {
    const dir = tmpDir();
    let model: Clip | undefined;
    const poisonAt = 10;
    const callbacks = {
      onStart: (info: { model: Clip }) => (model = info.model),
      // Simulates a numerical blow-up: one weight turns NaN after step 10.
      onStep: (e: { step: number }) => {
        if (e.step === poisonAt) tf.tidy(() => model!.params.get("visual.proj")!.assign(tf.fill(model!.params.get("visual.proj")!.shape, NaN)));
      },
    };
    await assert.rejects(trainClip({ ...BASE, outDir: dir, checkpointEvery: 3 }, callbacks, data), (err: Error) => {
      assert.ok(err instanceof TrainingDivergedError, String(err));
      assert.match(err.message, /^training diverged at step 11 \(epoch 1\): loss is NaN; last good checkpoint: .*model\.safetensors$/);
      return true;
    });
    await assert.rejects(trainClip({ ...BASE, outDir: tmpDir(), checkpointEvery: 1 }, callbacks, data), /^TrainingDivergedError: training diverged by step 10: weights are not finite; last good checkpoint: /);
    const kept = await loadCheckpoint(path.join(dir, "model.safetensors"));
    assert.ok(kept.stateDict().every((t) => t.data.every(Number.isFinite)), "the saved weights are all finite");
    kept.dispose();
    assert.deepEqual(readStepRecords(dir).map((r) => r.step), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("a training step leaks no tensors (InfoNCE and SigLIP)", () => {
    for (const loss of ["infonce", "siglip"] as const) {
      const clip = Clip.create(TINY, { seed: 1 });
      const opt = new ClipOptimizer(clip, loss, {});
      const pixels = tf.randomNormal([8, 28, 28, 3], 0, 1, "float32", 2) as tf.Tensor4D;
      const tokens = tf.tensor2d(Array.from({ length: 8 }, (_, i) => [49406, 320 + i, 49407, 0]), undefined, "int32");
      trainStep(opt, pixels, tokens, 1e-3, 1);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) trainStep(opt, pixels, tokens, 1e-3, 1);
      assert.equal(tf.memory().numTensors, before, `${loss}: tensors grew`);
      tf.dispose([pixels, tokens]);
      opt.dispose();
      clip.dispose();
    }
  });

  it("clamps logit_scale to [0, ln 100] after a step", () => {
    const clip = Clip.create(TINY, { seed: 3 });
    const opt = new ClipOptimizer(clip, "infonce", {});
    const pixels = tf.randomNormal([4, 28, 28, 3], 0, 1, "float32", 5) as tf.Tensor4D;
    const tokens = tf.tensor2d(Array.from({ length: 4 }, (_, i) => [49406, 400 + i, 49407]), undefined, "int32");
    for (const [start, expected] of [[7, MAX_LOGIT_SCALE], [-3, 0]]) {
      tf.tidy(() => clip.logitScale.assign(tf.scalar(start)));
      trainStep(opt, pixels, tokens, 1e-4, 1);
      assert.equal(clip.logitScale.dataSync()[0], Math.fround(expected));
    }
    tf.dispose([pixels, tokens]);
    opt.dispose();
    clip.dispose();
  });

  it("packTokens cuts rows to the longest caption, keeping inner zeros", () => {
    const rows = [Int32Array.from([49406, 5, 0, 7, 49407, 0, 0, 0]), Int32Array.from([49406, 49407, 0, 0, 0, 0, 0, 0])];
    const { ids, length } = packTokens(rows);
    assert.equal(length, 5);
    assert.deepEqual(Array.from(ids), [49406, 5, 0, 7, 49407, 49406, 49407, 0, 0, 0]);
  });

  it("rejects unknown and out-of-range options in one line", async () => {
    await assert.rejects(trainClip({ ...BASE, batchsize: 3 } as never, {}, data), /train: unknown option "batchsize" \(valid: .*batchSize/);
    await assert.rejects(trainClip({ ...BASE, loss: "hinge" } as never, {}, data), /train: loss must be "infonce" or "siglip", got "hinge"/);
    await assert.rejects(trainClip({ ...BASE, gradCheckpointing: "yes" } as never, {}, data), /^RangeError: train: gradCheckpointing must be true, false or "auto", got "yes"$/);
  });

  it('gradCheckpointing defaults to "auto", which leaves it off for a run that fits, and says so at the start', async () => {
    const seen: (boolean | "auto")[] = [];
    await trainClip({ ...BASE, maxSteps: 1 }, { onStart: (s) => seen.push(s.gradCheckpointing) }, data);
    await trainClip({ ...BASE, maxSteps: 1, gradCheckpointing: true }, { onStart: (s) => seen.push(s.gradCheckpointing) }, data);
    assert.deepEqual(seen, [false, true]);
  });
});
