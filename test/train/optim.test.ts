/** AdamW in PyTorch's form, the warm-up + cosine schedule, weight-decay groups and gradient clipping. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { AdamW, clipGradNorm, decaysWeight } from "../../src/train/adamw";
import { initBackend } from "../../src/backend/select";
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

  describe("row-sparse parameters (the token embedding), on the wasm backend training uses", () => {
    before(async () => {
      await initBackend({ prefer: "wasm" });
    });
    const ROWS = 50;
    const D = 6;
    // Each step's gradient is non-zero on a few rows only; the rows change from step to step.
    const stepRows = [[3, 7, 7, 12], [7, 40], [0, 3, 49], [12, 40, 41], [5]];
    function gradFor(step: number): tf.Tensor2D {
      const data = new Float32Array(ROWS * D);
      for (const r of stepRows[step]) for (let k = 0; k < D; k++) data[r * D + k] += Math.sin(1 + step * 13 + r * 7 + k) * (1 + step);
      return tf.tensor2d(data, [ROWS, D]);
    }
    const init = () => tf.variable(tf.tensor2d(Float32Array.from({ length: ROWS * D }, (_, i) => Math.cos(i)), [ROWS, D]));
    const cfg = { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.1 };

    it("is bit-for-bit dense AdamW, with rows given, with a superset of rows, or with rows found from the gradient", () => {
      const dense = init();
      const optD = new AdamW([{ name: "e", variable: dense, decay: false }], cfg);
      const runs = [
        { label: "rows given", rows: (s: number) => stepRows[s] },
        { label: "superset of rows", rows: (s: number) => [...stepRows[s], 20 + s, 30] },
        { label: "rows from the gradient", rows: () => undefined },
      ].map((r) => {
        const variable = init();
        return { ...r, variable, opt: new AdamW([{ name: "e", variable, decay: false, sparseRows: true }], cfg) };
      });
      for (let s = 0; s < stepRows.length; s++) {
        const g = gradFor(s);
        const lr = 0.01 * (s + 1);
        optD.apply({ e: g }, lr);
        for (const r of runs) {
          const rows = r.rows(s);
          r.opt.apply({ e: g }, lr, rows ? { e: rows } : {});
          assert.deepEqual(Array.from(r.variable.dataSync()), Array.from(dense.dataSync()), `${r.label}, step ${s + 1}`);
        }
        g.dispose();
      }
      // Only touched rows are tracked (first-touch order), and the state is the dense state.
      assert.deepEqual(runs[0].opt.sparseRowsOf("e"), [3, 7, 12, 40, 0, 49, 41, 5]);
      assert.equal(optD.sparseRowsOf("e"), undefined);
      const sd = optD.getState();
      for (const r of runs) {
        const ss = r.opt.getState();
        assert.equal(ss.step, sd.step);
        assert.deepEqual(Array.from(ss.m.get("e")!), Array.from(sd.m.get("e")!), `${r.label}: m`);
        assert.deepEqual(Array.from(ss.v.get("e")!), Array.from(sd.v.get("e")!), `${r.label}: v`);
      }
      tf.dispose([dense, ...runs.map((r) => r.variable)]);
      optD.dispose();
      runs.forEach((r) => r.opt.dispose());
    });

    it("restores from a (dense) state and continues identically, leaking no tensors", () => {
      const a = init();
      const optA = new AdamW([{ name: "e", variable: a, decay: false, sparseRows: true }], cfg);
      for (let s = 0; s < 3; s++) tf.tidy(() => optA.apply({ e: gradFor(s) }, 0.01, { e: stepRows[s] }));
      const b = tf.variable(a);
      const optB = new AdamW([{ name: "e", variable: b, decay: false, sparseRows: true }], cfg);
      optB.setState(optA.getState());
      assert.deepEqual([...optB.sparseRowsOf("e")!].sort((x, y) => x - y), [0, 3, 7, 12, 40, 49]);
      const before = tf.memory().numTensors;
      for (let s = 3; s < 5; s++) {
        tf.tidy(() => {
          optA.apply({ e: gradFor(s) }, 0.02, { e: stepRows[s] });
          optB.apply({ e: gradFor(s) }, 0.02, { e: stepRows[s] });
        });
        assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()), `step ${s + 1}`);
      }
      // Growth of the touched set replaces the compact moments; nothing else is added.
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([a, b]);
      optA.dispose();
      optB.dispose();
    });

    it("rejects weight decay, rows out of range, and rank-0 parameters in one line", () => {
      const e = init();
      assert.throws(() => new AdamW([{ name: "e", variable: e, decay: true, sparseRows: true }]), /^Error: adamw: e cannot be sparseRows with weight decay \(decay moves every row\)$/);
      const opt = new AdamW([{ name: "e", variable: e, decay: false, sparseRows: true }]);
      const g = tf.zeros([ROWS, D]);
      assert.throws(() => opt.apply({ e: g }, 0.1, { e: [ROWS] }), /^RangeError: adamw: row 50 of e is outside \[0, 50\)$/);
      const scalar = tf.variable(tf.scalar(1));
      assert.throws(() => new AdamW([{ name: "s", variable: scalar, decay: false, sparseRows: true }]), /^Error: adamw: s must have rows \(rank >= 1\) to be sparseRows, got shape \[\]$/);
      tf.dispose([e, g, scalar]);
      opt.dispose();
    });
  });

  describe("fused (flat groups by decay flag) and clipAndApply", () => {
    before(async () => {
      await initBackend({ prefer: "wasm" });
    });
    const shapes: [string, number[], boolean][] = [["a", [3, 4], true], ["b", [5], false], ["c", [2, 2, 3], true], ["d", [], false], ["e", [7, 2], false]];
    const make = () => shapes.map(([name, shape, decay], i) => ({ name, decay, variable: tf.variable(tf.tensor(Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, k) => Math.sin(i + k)), shape)), sparseRows: name === "e" }));
    const gradsAt = (step: number) =>
      Object.fromEntries(shapes.map(([name, shape], i) => {
        const data = Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, k) => Math.cos(step * 5 + i * 3 + k) * (step + 1));
        if (name === "e") data.fill(0, 4); // rows 0-1 only
        return [name, tf.tensor(data, shape)];
      }));
    const cfg = { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.1 };

    it("is bit-for-bit the per-parameter update, and its state is the same per-parameter state", () => {
      const plain = make();
      const fused = make();
      const optP = new AdamW(plain, cfg);
      const optF = new AdamW(fused, cfg, { fuse: true });
      for (let s = 0; s < 4; s++) {
        const g = gradsAt(s);
        optP.apply(g, 0.01 * (s + 1), { e: [0, 1] });
        optF.apply(g, 0.01 * (s + 1), { e: [0, 1] });
        tf.dispose(Object.values(g));
        plain.forEach((p, i) => assert.deepEqual(Array.from(fused[i].variable.dataSync()), Array.from(p.variable.dataSync()), `${p.name}, step ${s + 1}`));
      }
      const [sp, sf] = [optP.getState(), optF.getState()];
      for (const [name] of shapes) {
        assert.deepEqual(Array.from(sf.m.get(name)!), Array.from(sp.m.get(name)!), `m of ${name}`);
        assert.deepEqual(Array.from(sf.v.get(name)!), Array.from(sp.v.get(name)!), `v of ${name}`);
      }
      // A fused optimizer restored from that state continues exactly like the original.
      const again = fused.map((p) => ({ ...p, variable: tf.variable(p.variable) }));
      const optR = new AdamW(again, cfg, { fuse: true });
      optR.setState(sf);
      const g = gradsAt(9);
      optF.apply(g, 0.02, { e: [0, 1] });
      optR.apply(g, 0.02, { e: [0, 1] });
      again.forEach((p, i) => assert.deepEqual(Array.from(p.variable.dataSync()), Array.from(fused[i].variable.dataSync()), `restored ${p.name}`));
      assert.throws(() => optF.apply({ a: g.a }, 0.01), /^Error: adamw: no gradient for c \(a fused optimizer needs every gradient\)$/);
      tf.dispose([...Object.values(g), ...plain.map((p) => p.variable), ...fused.map((p) => p.variable), ...again.map((p) => p.variable)]);
      [optP, optF, optR].forEach((o) => o.dispose());
    });

    it("clipAndApply equals clipGradNorm then apply, returns the norm, and on a non-finite norm changes nothing", () => {
      const ref = make();
      const ours = make();
      const optA = new AdamW(ref, cfg);
      const optB = new AdamW(ours, cfg, { fuse: true });
      const g = gradsAt(2);
      // clipGradNorm disposes the gradients it rescales: give it clones.
      const { norm, clipped } = clipGradNorm(Object.fromEntries(Object.entries(g).map(([k, t]) => [k, t.clone()])), 0.5);
      optA.apply(clipped, 0.01, { e: [0, 1] });
      const before = tf.memory().numTensors;
      const got = optB.clipAndApply(g, 0.01, 0.5, { e: [0, 1] });
      assert.equal(tf.memory().numTensors, before + 2, "clipAndApply leaks nothing (it adds only the compact m and v of the sparse e, on its first rows)");
      assert.ok(norm > 0.5 && Math.abs(got - norm) <= 1e-6 * norm, `norm ${got} vs ${norm}`);
      ref.forEach((p, i) => {
        const a = p.variable.dataSync();
        const b = ours[i].variable.dataSync();
        for (let k = 0; k < a.length; k++) assert.ok(Math.abs(a[k] - b[k]) <= 1e-6, `${p.name}[${k}]: ${b[k]} vs ${a[k]}`);
      });
      const snapshot = ours.map((p) => Array.from(p.variable.dataSync()));
      const bad = { ...g, b: tf.tensor1d([NaN, 0, 0, 0, 0]) };
      assert.ok(Number.isNaN(optB.clipAndApply(bad, 0.01, 0.5, { e: [0, 1] })));
      assert.equal(optB.step, 1, "no step was taken");
      ours.forEach((p, i) => assert.deepEqual(Array.from(p.variable.dataSync()), snapshot[i], `${p.name} untouched`));
      tf.dispose([...Object.values(g), ...Object.values(clipped), bad.b, ...ref.map((p) => p.variable), ...ours.map((p) => p.variable)]);
      optA.dispose();
      optB.dispose();
    });
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
