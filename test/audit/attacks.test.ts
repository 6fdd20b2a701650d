/**
 * FGSM and PGD: budgets and [0, 1] respected, the analytic optimum of a linear loss, the input
 * gradient against finite differences (on a real CLIP's zero-shot loss over its RGB input),
 * weights untouched, no leaks; the objective only normalises (no padding).
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { fgsm, inputGradient, perturbationNorms, pgd, type AttackLoss, type AttackNorm } from "../../src/audit/robustness/attacks";
import { modelNormalisation, toModelInput, zeroShotLoss } from "../../src/audit/robustness/objective";
import { CLIP_MEAN, CLIP_STD } from "../../src/image/transform";
import { zeroShotClassifier } from "../../src/eval/zero_shot";
import { loadCheckpoint } from "../../src/io/checkpoint";
import { tokenize } from "../../src/text/tokenize";
import { Random } from "../../src/util/random";
import type { Clip } from "../../src/model/clip";
import { fixturePath } from "../helpers/fixtures";
import { assertThrowsOneLine } from "../helpers/errors";
import { initBackend } from "../../src/backend/select";

before(async () => {
  await initBackend({ prefer: "wasm" });
});

function uniformImages(shape: [number, number, number, number], seed: number, lo = 0, hi = 1): tf.Tensor4D {
  const v = new Random(seed).fillUniform(new Float32Array(shape.reduce((a, b) => a * b)), lo, hi);
  // Some pixels exactly at the box edges, where clipping matters.
  for (let i = 0; i < v.length; i += 7) v[i] = i % 2 ? 0 : 1;
  return tf.tensor4d(v, shape);
}

/** A smooth non-linear loss: sum(w * sin(3x) + 0.5 x^2). */
function nonLinearLoss(w: tf.Tensor4D): AttackLoss {
  return (x) => tf.tidy(() => tf.sum(tf.add(tf.mul(w, tf.sin(tf.mul(x, 3))), tf.mul(tf.square(x), 0.5))) as tf.Scalar);
}

/** A tiny real CLIP (test/fixtures/tiny_vit, 48x48 RGB input) and its zero-shot class embeddings. */
async function tinyClip(): Promise<{ clip: Clip; weights: tf.Tensor2D }> {
  const clip = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
  const ctx = clip.config.text_cfg.context_length;
  const clf = zeroShotClassifier(clip, ["t-shirt", "trousers", "bag"], ["a photo of a {}.", "a picture of the {}."], {
    tokenizer: (t) => tokenize(t, { contextLength: ctx, truncate: true }),
  });
  const weights = tf.clone(clf.weights);
  clf.dispose();
  return { clip, weights };
}

describe("attack budgets", () => {
  const shape: [number, number, number, number] = [3, 6, 6, 2];
  const cases: { norm: AttackNorm; eps: number }[] = [
    { norm: "linf", eps: 0.01 },
    { norm: "linf", eps: 0.3 },
    { norm: "l2", eps: 0.05 },
    { norm: "l2", eps: 2 },
  ];
  for (const { norm, eps } of cases) {
    it(`FGSM and PGD stay within ${norm} eps=${eps} and inside [0, 1]`, () => {
      const x = uniformImages(shape, 1);
      const w = tf.randomNormal(shape, 0, 1, "float32", 2) as tf.Tensor4D;
      const loss = nonLinearLoss(w);
      for (const adv of [fgsm(loss, x, { eps, norm }), pgd(loss, x, { eps, norm, steps: 7, seed: 4 }), pgd(loss, x, { eps, norm, steps: 3, stepSize: 5 * eps, randomStart: false })]) {
        const v = adv.dataSync();
        for (let i = 0; i < v.length; i++) assert.ok(v[i] >= 0 && v[i] <= 1, `value ${v[i]}`);
        const n = perturbationNorms(x, adv);
        const size = norm === "linf" ? n.linf : n.l2;
        for (const s of size) assert.ok(s <= eps * (1 + 1e-5) + 1e-7, `${norm} ${s} > ${eps}`);
        // The attack did move: some image uses a good part of its budget.
        assert.ok(Math.max(...size) > 0.3 * eps, `largest perturbation ${Math.max(...size)}`);
        adv.dispose();
      }
      tf.dispose([x, w]);
    });
  }

  it("eps = 0 returns the images unchanged, for both attacks and norms", () => {
    const x = uniformImages(shape, 3);
    const w = tf.randomNormal(shape, 0, 1, "float32", 4) as tf.Tensor4D;
    for (const norm of ["linf", "l2"] as const) {
      for (const adv of [fgsm(nonLinearLoss(w), x, { eps: 0, norm }), pgd(nonLinearLoss(w), x, { eps: 0, norm, steps: 3 })]) {
        assert.deepEqual(adv.dataSync(), x.dataSync());
        adv.dispose();
      }
    }
    tf.dispose([x, w]);
  });
});

describe("the linear toy model: loss = sum(w * x)", () => {
  const shape: [number, number, number, number] = [2, 5, 5, 1];
  const setup = (seed: number) => {
    const x = uniformImages(shape, seed, 0.05, 0.95);
    const wv = new Random(seed + 1).fillNormal(new Float32Array(50));
    for (let i = 0; i < wv.length; i++) if (Math.abs(wv[i]) < 1e-3) wv[i] = 1; // sign(w) well defined
    const w = tf.tensor4d(wv, shape);
    const loss: AttackLoss = (images) => tf.tidy(() => tf.sum(tf.mul(w, images)) as tf.Scalar);
    return { x, w, loss };
  };

  it("linf: PGD (random start) and FGSM reach x + eps * sign(w), clipped to [0, 1]", () => {
    const { x, w, loss } = setup(10);
    const eps = 0.1;
    const expected = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(tf.sign(w), eps)), 0, 1));
    for (const adv of [pgd(loss, x, { eps, norm: "linf", steps: 10, seed: 1 }), fgsm(loss, x, { eps, norm: "linf" })]) {
      const got = adv.dataSync();
      const want = expected.dataSync();
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-6, `pixel ${i}: ${got[i]} vs ${want[i]}`);
      adv.dispose();
    }
    tf.dispose([x, w, expected]);
  });

  it("l2: PGD reaches x + eps * w / ||w|| per image", () => {
    const { w, loss } = setup(20);
    const x = tf.fill(shape, 0.5) as tf.Tensor4D; // far from the box edges: the ball is the only constraint
    const eps = 0.4;
    const expected = tf.tidy(() => tf.add(x, tf.mul(tf.div(w, tf.sqrt(tf.sum(tf.square(w), [1, 2, 3], true))), eps)));
    const adv = pgd(loss, x, { eps, norm: "l2", steps: 5, randomStart: false });
    const got = adv.dataSync();
    const want = expected.dataSync();
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-6, `pixel ${i}: ${got[i]} vs ${want[i]}`);
    // And with a random start it gets there too (the component off w shrinks at every projection).
    const adv2 = pgd(loss, x, { eps, norm: "l2", steps: 200, stepSize: eps, seed: 3 });
    const got2 = adv2.dataSync();
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got2[i] - want[i]) <= 1e-3, `random start, pixel ${i}: ${got2[i]} vs ${want[i]}`);
    tf.dispose([x, w, expected, adv, adv2]);
  });

  it("PGD's loss is never below FGSM's on the linear model (both optimal) and rises with eps", () => {
    const { x, w, loss } = setup(30);
    const value = (t: tf.Tensor4D) => {
      const l = loss(t);
      const v = l.dataSync()[0];
      tf.dispose([l, t]);
      return v;
    };
    let previous = -Infinity;
    for (const eps of [0, 0.02, 0.05, 0.1]) {
      const p = value(pgd(loss, x, { eps, norm: "linf", steps: 10 }));
      const f = value(fgsm(loss, x, { eps, norm: "linf" }));
      assert.ok(p >= f - 1e-4, `eps ${eps}: pgd ${p} < fgsm ${f}`);
      assert.ok(p >= previous - 1e-4, `eps ${eps}: ${p} < ${previous}`);
      previous = p;
    }
    tf.dispose([x, w]);
  });
});

describe("attacks on a real CLIP", () => {
  it("the input gradient of the zero-shot loss matches central finite differences", async () => {
    const { clip, weights } = await tinyClip();
    const x = uniformImages([2, 48, 48, 3], 5, 0.2, 0.8);
    const labels = [0, 2];
    for (const loss of [zeroShotLoss(clip, weights, labels), zeroShotLoss(clip, weights, labels, { targets: [1, 1] })]) {
      const { loss: l0, grad } = inputGradient(loss, x);
      assert.ok(Number.isFinite(l0));
      for (const seed of [1, 2, 3]) {
        const d = tf.tensor4d(new Random(seed).fillNormal(new Float32Array(2 * 48 * 48 * 3)), [2, 48, 48, 3]);
        const h = 1e-2;
        const at = (s: number) => {
          const xs = tf.tidy(() => tf.add(x, tf.mul(d, s)) as tf.Tensor4D);
          const l = loss(xs);
          const v = l.dataSync()[0];
          tf.dispose([xs, l]);
          return v;
        };
        const numeric = (at(h) - at(-h)) / (2 * h);
        const analytic = tf.tidy(() => tf.sum(tf.mul(grad, d)).dataSync()[0]);
        assert.ok(Math.abs(numeric - analytic) <= 2e-2 * Math.max(1, Math.abs(analytic)), `direction ${seed}: finite differences ${numeric}, gradient ${analytic}`);
        d.dispose();
      }
      grad.dispose();
    }
    tf.dispose([x, weights]);
    clip.dispose();
  });

  it("leaves the model's weights bit-identical and leaks no tensor", async () => {
    const { clip, weights } = await tinyClip();
    const snapshot = new Map([...clip.params].map(([name, v]) => [name, new Uint32Array((v.dataSync() as Float32Array).slice().buffer)]));
    const x = uniformImages([3, 48, 48, 3], 6);
    const loss = zeroShotLoss(clip, weights, [0, 1, 2]);
    // Warm-up: any lazily built model state exists before counting.
    fgsm(loss, x, { eps: 0.01, norm: "linf" }).dispose();
    const start = tf.memory().numTensors;
    for (const norm of ["linf", "l2"] as const) {
      fgsm(loss, x, { eps: 0.03, norm }).dispose();
      pgd(loss, x, { eps: 0.03, norm, steps: 3, seed: 1 }).dispose();
    }
    assert.equal(tf.memory().numTensors, start, "tensors leaked by an attack");
    for (const [name, v] of clip.params) {
      assert.deepEqual(new Uint32Array((v.dataSync() as Float32Array).slice().buffer), snapshot.get(name), `weight ${name} changed`);
    }
    tf.dispose([x, weights]);
    clip.dispose();
  });

  it("PGD lowers the zero-shot accuracy's margin more than nothing: the attacked loss is higher", async () => {
    const { clip, weights } = await tinyClip();
    const x = uniformImages([4, 48, 48, 3], 7);
    const loss = zeroShotLoss(clip, weights, [0, 1, 2, 0]);
    const value = (t: tf.Tensor4D) => tf.tidy(() => loss(t).dataSync()[0]);
    const adv = pgd(loss, x, { eps: 8 / 255, norm: "linf", steps: 5 });
    assert.ok(value(adv) > value(x), `${value(adv)} <= ${value(x)}`);
    tf.dispose([x, weights, adv]);
    clip.dispose();
  });
});

describe("the objective's model input", () => {
  it("toModelInput only normalises with the transform's mean and std (no padding, no resizing)", () => {
    const x = uniformImages([2, 5, 7, 3], 8);
    const norm = { mean: [0.1, 0.5, 0.9], std: [0.2, 0.25, 0.5] };
    const y = toModelInput(x, norm);
    assert.deepEqual(y.shape, [2, 5, 7, 3]);
    const xv = x.dataSync();
    const yv = y.dataSync();
    for (let i = 0; i < xv.length; i++) assert.ok(Math.abs(yv[i] - (xv[i] - norm.mean[i % 3]) / norm.std[i % 3]) < 1e-5, `value ${i}`);
    tf.dispose([x, y]);
  });

  it("uses the model's preprocess_cfg mean and std, CLIP's by default", async () => {
    const { clip, weights } = await tinyClip();
    assert.deepEqual(modelNormalisation(clip), { mean: [...CLIP_MEAN], std: [...CLIP_STD] });
    const custom = { ...clip, config: { ...clip.config, preprocess_cfg: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } } };
    assert.deepEqual(modelNormalisation(custom as never), { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    tf.dispose(weights);
    clip.dispose();
  });

  it("refuses grey images and images not at the model's size, with one line", async () => {
    const { clip, weights } = await tinyClip();
    const grey = tf.fill([1, 48, 48, 1], 0.5) as tf.Tensor4D;
    assertThrowsOneLine(() => toModelInput(grey, modelNormalisation(clip)), /^toModelInput: images must be RGB \[B, S, S, 3\] in \[0, 1\] \(the preprocessed model input\), got shape \[1, 48, 48, 1\]$/);
    const small = tf.fill([1, 28, 28, 3], 0.5) as tf.Tensor4D;
    const loss = zeroShotLoss(clip, weights, [0]);
    assertThrowsOneLine(() => loss(small), /^unitImageEmbeddings: images must be \[B, 48, 48, 3\] \(the model's preprocessed input\), got \[1, 28, 28, 3\]$/);
    tf.dispose([grey, small, weights]);
    clip.dispose();
  });
});

describe("attack argument errors", () => {
  it("are one line naming the argument", () => {
    const x = tf.fill([1, 2, 2, 1], 0.5) as tf.Tensor4D;
    const loss: AttackLoss = (t) => tf.sum(t) as tf.Scalar;
    assertThrowsOneLine(() => fgsm(loss, x, { eps: -0.1, norm: "linf" }), /^fgsm: eps must be a finite number >= 0.*got -0.1$/);
    assertThrowsOneLine(() => fgsm(loss, x, { eps: NaN, norm: "linf" }), /^fgsm: eps must be a finite number >= 0/);
    assertThrowsOneLine(() => fgsm(loss, x, { eps: 0.1, norm: "l1" as AttackNorm }), /^fgsm: norm must be one of linf, l2, got "l1"$/);
    assertThrowsOneLine(() => fgsm(loss, x, { eps: 0.1, norm: "linf", steps: 3 } as never), /^fgsm: unknown option "steps"; valid options: eps, norm$/);
    assertThrowsOneLine(() => pgd(loss, x, { eps: 0.1, norm: "linf", steps: 0 }), /^pgd: steps must be a positive integer, got 0$/);
    assertThrowsOneLine(() => pgd(loss, x, { eps: 0.1, norm: "linf", steps: 2, stepSize: -1 }), /^pgd: stepSize must be a finite number >= 0/);
    assertThrowsOneLine(() => pgd(loss, x, { eps: 0.1, norm: "linf", steps: 2, seed: -3 }), /^pgd: seed must be a non-negative integer/);
    assertThrowsOneLine(() => pgd("loss" as never, x, { eps: 0.1, norm: "linf", steps: 2 }), /^pgd: lossFn must be a function/);
    const bad = tf.fill([1, 2, 2, 1], 2) as tf.Tensor4D;
    assertThrowsOneLine(() => fgsm(loss, bad, { eps: 0.1, norm: "linf" }), /^fgsm: images01 must hold values in \[0, 1\]/);
    const vector: AttackLoss = (t) => tf.sum(t, [1, 2, 3]) as unknown as tf.Scalar;
    const start = tf.memory().numTensors;
    assertThrowsOneLine(() => fgsm(vector, x, { eps: 0.1, norm: "linf" }), /lossFn must return a scalar tf.Tensor.*got shape \[1\]/);
    assert.equal(tf.memory().numTensors, start, "no tensor left behind by the failed attack");
    tf.dispose([x, bad]);
  });
});
