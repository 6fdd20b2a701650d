/**
 * open_clip's fine-tuning levers in the training step: locked towers (open_clip's layer groups,
 * bit-identical weights and BatchNorm statistics, no optimizer state), gradient accumulation with
 * feature caching (equal to one big batch on a model without BatchNorm), gradient checkpointing
 * (the same gradients with a lower peak), and the learning-rate schedulers.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/backend/select";
import { Clip } from "../../src/model/clip";
import { getModelConfig } from "../../src/model/registry";
import { loadFashionMnist } from "../../src/data/fashion_mnist";
import { CaptionSet } from "../../src/data/captions";
import { openSafetensors } from "../../src/io/safetensors";
import { ClipOptimizer, stepGradients, trainStep } from "../../src/train/step";
import { imageLayerGroups, lockPlan, textLayerGroups } from "../../src/train/lock";
import { trainClip } from "../../src/train/trainer";
import { learningRate } from "../../src/train/schedule";
import { clipParamSpecs } from "../../src/model/params";
import { tmpDir } from "../helpers/fixtures";

/** A small ViT (no BatchNorm): 28 px, width 32, 2 + 2 layers. */
const VIT = (() => {
  const cfg = getModelConfig("ViT-Tiny-28");
  cfg.vision_cfg.width = 32;
  cfg.text_cfg.width = 32;
  cfg.embed_dim = 32;
  return cfg;
})();

const data = { train: loadFashionMnist("train", { limit: 256 }), test: loadFashionMnist("test", { limit: 100 }), captions: CaptionSet.load() };
const RUN = { batchSize: 64, epochs: 1, lr: 2e-3, warmupSteps: 1, evalLimit: 50, finalEvalLimit: 50, retrievalLimit: 50, seed: 3 };

function batch(n: number, size: number, seed: number): { pixels: tf.Tensor4D; tokens: tf.Tensor2D } {
  return {
    pixels: tf.randomNormal([n, size, size, 3], 0, 1, "float32", seed) as tf.Tensor4D,
    tokens: tf.tensor2d(Array.from({ length: n }, (_, i) => [49406, 320 + (i % 7), 500 + i, 49407]), undefined, "int32"),
  };
}

/** Largest relative L2 difference over tensors, and the name where it is. */
function worstRelative(a: Record<string, tf.Tensor>, b: Record<string, tf.Tensor>): { rel: number; name: string } {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  let worst = { rel: 0, name: "" };
  for (const k of Object.keys(a)) {
    const x = a[k].dataSync();
    const y = b[k].dataSync();
    let num = 0;
    let den = 0;
    for (let i = 0; i < x.length; i++) {
      num += (x[i] - y[i]) ** 2;
      den += y[i] ** 2;
    }
    const rel = Math.sqrt(num / Math.max(den, 1e-30));
    if (rel > worst.rel) worst = { rel, name: k };
  }
  return worst;
}

function state(clip: Clip): Map<string, Float32Array> {
  return new Map(clip.stateDict().map((t) => [t.name, t.data]));
}

before(async () => {
  await initBackend({ prefer: "wasm" });
});

describe("lock groups", () => {
  it("partition each tower into open_clip's layer groups, input to output", () => {
    const vit = imageLayerGroups(VIT);
    assert.deepEqual(vit.map((g) => g.name), ["embeddings", "layer.0", "layer.1", "proj"]);
    assert.ok(vit[0].params.includes("visual.conv1.weight") && vit[0].params.includes("visual.ln_pre.bias"));
    assert.ok(vit[2].params.includes("visual.ln_post.weight"), "ln_post goes with the last block");
    assert.deepEqual(vit[3].params, ["visual.proj"]);
    const rn = imageLayerGroups(getModelConfig("RN-Nano-32"));
    assert.deepEqual(rn.map((g) => g.name), ["embeddings", "layer.0", "layer.1", "layer.2", "layer.3", "proj"]);
    assert.ok(rn[0].params.includes("visual.bn3.running_var") && rn[5].params.every((n) => n.startsWith("visual.attnpool.")));
    const text = textLayerGroups(VIT);
    assert.deepEqual(text.map((g) => g.name), ["embeddings", "layer.0", "layer.1", "proj"]);
    assert.ok(text[2].params.includes("ln_final.bias"));
    // Complete and disjoint: every tensor but logit_scale is in exactly one group.
    for (const cfg of [VIT, getModelConfig("RN-Nano-32")]) {
      const all = [...imageLayerGroups(cfg), ...textLayerGroups(cfg)].flatMap((g) => g.params);
      assert.equal(new Set(all).size, all.length);
      assert.deepEqual(new Set([...all, "logit_scale"]), new Set(clipParamSpecs(cfg).map((s) => s.name)));
    }
  });

  it("lockPlan: frozen tensors, frozen BatchNorm layers, and a one-line error past the group count", () => {
    const rn = getModelConfig("RN-Nano-32");
    const all = lockPlan(rn, { lockImage: true });
    assert.ok(all.imageFrozen && !all.textFrozen);
    assert.ok(all.frozenBatchNorm.has("visual.bn1") && all.frozenBatchNorm.has("visual.layer4.0.bn3"));
    const top = lockPlan(rn, { lockImage: true, lockImageUnlockedGroups: 2 });
    assert.ok(!top.imageFrozen);
    assert.ok(top.frozenBatchNorm.has("visual.layer3.0.bn1") && !top.frozenBatchNorm.has("visual.layer4.0.bn1"));
    assert.ok(!top.frozen.has("visual.attnpool.c_proj.weight") && top.frozen.has("visual.conv1.weight"));
    assert.throws(() => lockPlan(VIT, { lockImage: true, lockImageUnlockedGroups: 5 }), /^RangeError: train: lockImageUnlockedGroups must be an integer in \[0, 4\] \(the image tower's groups: embeddings, layer\.0, layer\.1, proj\), got 5$/);
  });
});

describe("locked towers in training", () => {
  it("--lock-image on a ModifiedResNet: the image tower (BatchNorm statistics included) stays bit-identical, no AdamW state for it, resume exact", async () => {
    const rn = { ...RUN, model: "RN-Nano-32", lockImage: true, epochs: 2, batchSize: 32 };
    const init = Clip.create("RN-Nano-32", { seed: rn.seed });
    const start = state(init);
    init.dispose();
    const whole = await trainClip(rn, {}, data);
    const after = state(whole.model);
    whole.model.dispose();
    let textMoved = 0;
    for (const [name, v] of after) {
      if (name.startsWith("visual.")) assert.deepEqual(v, start.get(name), `${name} is bit-identical`);
      else if (name !== "logit_scale" && v.some((x, i) => x !== start.get(name)![i])) textMoved++;
    }
    assert.ok(textMoved > 5, `the text tower trained (${textMoved} tensors moved)`);
    // Stopped and resumed: the same losses; the trainer state holds moments for the trained tensors only.
    const dir = tmpDir();
    (await trainClip({ ...rn, outDir: dir, stopAfterSteps: 5 }, {}, data)).model.dispose();
    const reader = openSafetensors(path.join(dir, "trainer_state.safetensors"));
    const names = [...reader.entries.keys()];
    reader.close();
    assert.ok(names.length > 0 && !names.some((n) => n.includes(".visual.")), "no optimizer state for the locked tower");
    assert.ok(names.includes("adamw.m.text_projection") && names.includes("adamw.v.logit_scale"));
    const resumed = await trainClip({ ...rn, outDir: dir, resume: true }, {}, data);
    assert.deepEqual(resumed.history.map((h) => h.loss), whole.history.map((h) => h.loss));
    for (const [name, v] of state(resumed.model)) assert.deepEqual(v, after.get(name), `${name} equals the uninterrupted run's`);
    resumed.model.dispose();
    await assert.rejects(trainClip({ ...rn, lockImage: false, outDir: dir, resume: true }, {}, data), /cannot resume .*: option lockImage was true, now false/);
  });

  it("--lock-image-unlocked-groups 1 trains only the projection of the image tower; --lock-text freezes the text tower", async () => {
    const clip = Clip.create(VIT, { seed: 5 });
    const start = state(clip);
    const opt = new ClipOptimizer(clip, "infonce", {}, { lock: lockPlan(VIT, { lockImage: true, lockImageUnlockedGroups: 1, lockText: true }) });
    assert.deepEqual(opt.params.map((p) => p.name).sort(), ["logit_scale", "visual.proj"]);
    const { pixels, tokens } = batch(8, 28, 1);
    for (let i = 0; i < 3; i++) trainStep(opt, pixels, tokens, 1e-3, 1);
    for (const [name, v] of state(clip)) {
      const moved = v.some((x, i) => x !== start.get(name)![i]);
      assert.equal(moved, name === "visual.proj" || name === "logit_scale", `${name} ${moved ? "moved" : "stayed"}`);
    }
    tf.dispose([pixels, tokens]);
    opt.dispose();
    clip.dispose();
  });
});

describe("--accum-freq (feature caching)", () => {
  it("equals one step on the whole batch on a ViT (up to float rounding)", () => {
    const clip = Clip.create(VIT, { seed: 2 });
    const { pixels, tokens } = batch(12, 28, 4);
    for (const loss of ["infonce", "siglip"] as const) {
      const opt = new ClipOptimizer(clip, loss, {});
      const big = stepGradients(opt, pixels, tokens);
      for (const k of [2, 3, 4]) {
        const acc = stepGradients(opt, pixels, tokens, undefined, k);
        assert.ok(Math.abs(acc.loss - big.loss) < 1e-5 * Math.abs(big.loss), `${loss} K=${k}: loss ${acc.loss} vs ${big.loss}`);
        const w = worstRelative(acc.grads, big.grads);
        assert.ok(w.rel < 1e-4, `${loss} K=${k}: ${w.name} differs by ${w.rel} (relative)`);
        tf.dispose(Object.values(acc.grads));
      }
      tf.dispose(Object.values(big.grads));
      opt.dispose();
    }
    // With a locked image tower the cached image features are constants; still the big batch's gradient.
    const locked = new ClipOptimizer(clip, "infonce", {}, { lock: lockPlan(VIT, { lockImage: true }) });
    const big = stepGradients(locked, pixels, tokens);
    const acc = stepGradients(locked, pixels, tokens, undefined, 3);
    assert.ok(!Object.keys(big.grads).some((n) => n.startsWith("visual.")));
    assert.ok(worstRelative(acc.grads, big.grads).rel < 1e-4);
    tf.dispose([...Object.values(big.grads), ...Object.values(acc.grads), pixels, tokens]);
    locked.dispose();
    clip.dispose();
  });

  it("a ModifiedResNet differs (train-mode BatchNorm normalises each micro-batch by its own statistics, as in open_clip); running statistics move once per micro-batch", () => {
    const clip = Clip.create("RN-Nano-32", { seed: 2 });
    const opt = new ClipOptimizer(clip, "infonce", {});
    const { pixels, tokens } = batch(8, 32, 6);
    const big = stepGradients(opt, pixels, tokens);
    const stats = () => clip.specs.filter((s) => s.name.includes("running_")).map((s) => clip.params.get(s.name)!);
    const before = stats().map((v) => tf.clone(v));
    const acc = stepGradients(opt, pixels, tokens, undefined, 2);
    assert.ok(worstRelative(acc.grads, big.grads).rel > 1e-3, "micro-batch statistics change the gradient");
    // The cached pass put the statistics back: they moved exactly as two train-mode passes, one per micro-batch.
    const afterAcc = stats().map((v) => v.dataSync().slice());
    stats().forEach((v, i) => v.assign(before[i]));
    for (const half of [0, 4]) tf.tidy(() => clip.encodeImage(tf.slice(pixels, [half, 0, 0, 0], [4, -1, -1, -1]), { training: true }));
    stats().forEach((v, i) => assert.deepEqual(v.dataSync(), afterAcc[i]));
    tf.dispose([...Object.values(big.grads), ...Object.values(acc.grads), ...before, pixels, tokens]);
    opt.dispose();
    clip.dispose();
  });

  it("trainClip with batch 32 x accum 2 follows batch 64 (same data, same schedule)", async () => {
    const vit = { ...RUN, model: VIT, maxSteps: 3 };
    const big = await trainClip({ ...vit, batchSize: 64 }, {}, data);
    const acc = await trainClip({ ...vit, batchSize: 32, accumFreq: 2 }, {}, data);
    assert.equal(acc.steps, 3);
    assert.equal(acc.history.length, big.history.length);
    acc.history.forEach((h, i) => assert.ok(Math.abs(h.loss - big.history[i].loss) < 1e-3, `step ${i}: ${h.loss} vs ${big.history[i].loss}`));
    big.model.dispose();
    acc.model.dispose();
  });

  it("leaks no tensors (accumulation, locks, checkpointing)", () => {
    const clip = Clip.create(VIT, { seed: 1 });
    const { pixels, tokens } = batch(8, 28, 2);
    for (const plan of [{}, { gradCheckpointing: true }, { lock: lockPlan(VIT, { lockImage: true, lockImageUnlockedGroups: 1 }) }]) {
      const opt = new ClipOptimizer(clip, "siglip", {}, plan);
      trainStep(opt, pixels, tokens, 1e-4, 1, undefined, 2);
      const n = tf.memory().numTensors;
      trainStep(opt, pixels, tokens, 1e-4, 1, undefined, 2);
      trainStep(opt, pixels, tokens, 1e-4, 1);
      assert.equal(tf.memory().numTensors, n, JSON.stringify(Object.keys(plan)));
      opt.dispose();
    }
    tf.dispose([pixels, tokens]);
    clip.dispose();
  });
});

describe("--grad-checkpointing", () => {
  it("gives the same gradients with a lower peak of tensor memory", async () => {
    const cfg = getModelConfig("ViT-Tiny-28");
    cfg.vision_cfg.layers = 4;
    cfg.text_cfg.layers = 4;
    const clip = Clip.create(cfg, { seed: 4 });
    const { pixels, tokens } = batch(32, 28, 3);
    const plain = new ClipOptimizer(clip, "infonce", {});
    const ckpt = new ClipOptimizer(clip, "infonce", {}, { gradCheckpointing: true });
    const a = stepGradients(plain, pixels, tokens);
    const b = stepGradients(ckpt, pixels, tokens);
    assert.equal(worstRelative(b.grads, a.grads).rel, 0, "recomputation repeats the same operations");
    tf.dispose([...Object.values(a.grads), ...Object.values(b.grads)]);
    const peak = async (opt: ClipOptimizer) => {
      const info = await tf.profile(() => {
        tf.dispose(Object.values(stepGradients(opt, pixels, tokens).grads));
      });
      return info.peakBytes;
    };
    const [p0, p1] = [await peak(plain), await peak(ckpt)];
    assert.ok(p1 < 0.8 * p0, `peak ${p1} bytes with checkpointing vs ${p0} without`);
    tf.dispose([pixels, tokens]);
    plain.dispose();
    ckpt.dispose();
    clip.dispose();
  });
});

describe("learning-rate schedulers (open_clip's scheduler.py)", () => {
  const base = { baseLr: 1, warmupSteps: 10, totalSteps: 100 };
  it("const: warm-up then flat", () => {
    assert.equal(learningRate(0, { ...base, scheduler: "const" }), 0.1);
    assert.equal(learningRate(9, { ...base, scheduler: "const" }), 1);
    assert.equal(learningRate(99, { ...base, scheduler: "const" }), 1);
  });
  it("const-cooldown: flat until totalSteps - cooldownSteps, then (1 - e/es)^power * (base - end) + end", () => {
    const cfg = { ...base, scheduler: "const-cooldown" as const, cooldownSteps: 20, cooldownPower: 2, cooldownEnd: 0.1 };
    assert.equal(learningRate(79, cfg), 1);
    assert.equal(learningRate(80, cfg), 1);
    assert.ok(Math.abs(learningRate(90, cfg) - (0.25 * 0.9 + 0.1)) < 1e-12);
    assert.ok(Math.abs(learningRate(99, cfg) - (0.05 ** 2 * 0.9 + 0.1)) < 1e-12);
    assert.equal(learningRate(150, cfg), 0.1);
    assert.throws(() => learningRate(50, { ...base, scheduler: "const-cooldown" }), /const-cooldown needs cooldownSteps >= 1/);
  });
  it("cosine is the existing schedule", () => {
    assert.equal(learningRate(55, { ...base, scheduler: "cosine" }), 0.5);
  });
});
