/** AdamW in PyTorch's form, the warm-up + cosine schedule, weight-decay groups and gradient clipping. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { AdamW, clipGradNorm, decaysWeight } from "../../src/train/adamw";
import { cosineLr, validateSchedule } from "../../src/train/schedule";

describe("AdamW", () => {
  it("first step by hand: decay, then the bias-corrected Adam step", () => {
    const p = tf.variable(tf.tensor1d([1.0]));
    const opt = new AdamW([{ name: "p", variable: p, decay: true }], { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.1 });
    opt.apply({ p: tf.tensor1d([0.5]) }, 0.1);
    // p = 1 * (1 - 0.1 * 0.1) = 0.99; m = 0.05; v = 0.005; step = 0.1 / 0.1 = 1;
    // denom = sqrt(0.005) / sqrt(0.02) + 1e-6 = 0.500001; p = 0.99 - 0.05 / 0.500001
    assert.ok(Math.abs(p.dataSync()[0] - (0.99 - 0.05 / 0.500001)) < 1e-6, `${p.dataSync()[0]}`);
  });

  it("matches a float64 transcription of torch.optim.AdamW over several steps, with and without decay", () => {
    const cfg = { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.2 };
    const grads = [[0.3, -1.2], [-0.7, 0.4], [0.05, 2.0], [1.1, -0.3]];
    const lrs = [0.01, 0.02, 0.015, 0.005];
    for (const decay of [true, false]) {
      const init = [0.8, -0.4];
      const p = tf.variable(tf.tensor1d(init));
      const opt = new AdamW([{ name: "w", variable: p, decay }], cfg);
      const ref = init.slice();
      const m = [0, 0];
      const v = [0, 0];
      grads.forEach((g, i) => {
        opt.apply({ w: tf.tensor1d(g) }, lrs[i]);
        const t = i + 1;
        for (let j = 0; j < 2; j++) {
          if (decay) ref[j] *= 1 - lrs[i] * cfg.weightDecay;
          m[j] = cfg.beta1 * m[j] + (1 - cfg.beta1) * g[j];
          v[j] = cfg.beta2 * v[j] + (1 - cfg.beta2) * g[j] ** 2;
          const denom = Math.sqrt(v[j]) / Math.sqrt(1 - cfg.beta2 ** t) + cfg.eps;
          ref[j] -= (lrs[i] / (1 - cfg.beta1 ** t)) * (m[j] / denom);
        }
      });
      const got = p.dataSync();
      for (let j = 0; j < 2; j++) assert.ok(Math.abs(got[j] - ref[j]) < 1e-6, `decay=${decay}: ${got[j]} vs ${ref[j]}`);
      assert.equal(opt.step, 4);
    }
  });

  it("state round-trips: a restored optimizer continues identically", () => {
    const make = () => tf.variable(tf.tensor2d([[0.1, 0.2], [0.3, 0.4]]));
    const a = make();
    const b = make();
    const optA = new AdamW([{ name: "w", variable: a, decay: true }]);
    const g = () => ({ w: tf.tensor2d([[0.5, -0.5], [0.25, 1]]) });
    optA.apply(g(), 0.01);
    b.assign(a);
    const optB = new AdamW([{ name: "w", variable: b, decay: true }]);
    optB.setState(optA.getState());
    optA.apply(g(), 0.01);
    optB.apply(g(), 0.01);
    assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()));
    assert.throws(() => optB.setState({ step: 1, m: new Map(), v: new Map() }), /optimizer state has no m for w/);
  });

  it("leaks no tensors across steps", () => {
    const p = tf.variable(tf.randomNormal([8, 8]));
    const opt = new AdamW([{ name: "p", variable: p, decay: true }]);
    const g = tf.randomNormal([8, 8]);
    opt.apply({ p: g }, 0.1);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) opt.apply({ p: g }, 0.1);
    assert.equal(tf.memory().numTensors, before);
  });

  it("validates its config", () => {
    assert.throws(() => new AdamW([], { beta2: 1 }), /adamw: beta2 must be in \[0, 1\), got 1/);
  });
});

describe("weight decay groups", () => {
  it("decays matrices and kernels, never gains, biases, embeddings or the temperature", () => {
    assert.equal(decaysWeight("visual.transformer.resblocks.0.attn.in_proj_weight", [64, 192]), true);
    assert.equal(decaysWeight("visual.layer1.0.conv1.weight", [1, 1, 16, 16]), true);
    assert.equal(decaysWeight("text_projection", [64, 128]), true);
    assert.equal(decaysWeight("visual.ln_pre.weight", [64]), false);
    assert.equal(decaysWeight("transformer.resblocks.0.mlp.c_fc.bias", [256]), false);
    assert.equal(decaysWeight("token_embedding.weight", [49408, 64]), false);
    assert.equal(decaysWeight("positional_embedding", [16, 64]), false);
    assert.equal(decaysWeight("logit_scale", []), false);
  });
});

describe("cosine schedule", () => {
  const cfg = validateSchedule({ baseLr: 1e-3, warmupSteps: 10, totalSteps: 110 });
  it("warms up linearly from lr/warmup to lr", () => {
    assert.ok(Math.abs(cosineLr(0, cfg) - 1e-4) < 1e-12);
    assert.ok(Math.abs(cosineLr(4, cfg) - 5e-4) < 1e-12);
    assert.ok(Math.abs(cosineLr(9, cfg) - 1e-3) < 1e-12);
  });
  it("then decays along a half cosine to zero", () => {
    assert.ok(Math.abs(cosineLr(10, cfg) - 1e-3) < 1e-12);
    assert.ok(Math.abs(cosineLr(60, cfg) - 5e-4) < 1e-12); // halfway
    assert.ok(Math.abs(cosineLr(35, cfg) - 0.5 * (1 + Math.cos(Math.PI / 4)) * 1e-3) < 1e-12);
    assert.equal(cosineLr(110, cfg), 0);
    assert.equal(cosineLr(500, cfg), 0);
  });
  it("validates", () => {
    assert.throws(() => validateSchedule({ baseLr: 0, warmupSteps: 1, totalSteps: 2 }), /baseLr must be a positive number/);
    assert.throws(() => validateSchedule({ baseLr: 1, warmupSteps: 1.5, totalSteps: 2 }), /warmupSteps must be an integer/);
  });
});

describe("clipGradNorm", () => {
  it("rescales to the max norm and reports the norm before", () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) };
    const { norm, clipped } = clipGradNorm(grads, 1);
    assert.ok(Math.abs(norm - 5) < 1e-6);
    assert.ok(Math.abs(clipped.a.dataSync()[0] - 0.6) < 1e-5);
    assert.ok(Math.abs(clipped.b.dataSync()[1] - 0.8) < 1e-5);
    const small = { a: tf.tensor1d([0.1]) };
    const kept = clipGradNorm(small, 1);
    assert.equal(kept.clipped, small);
  });
});
