/** The planted bias (its rates and captions) and the training-data remedies. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { FRAMED, PLAIN, plantBias, plantedPreparedSet, plantedTestSet, scaledBorderWidth, stampBorder } from "../../src/audit/fairness/planted_bias";
import type { PreparedSet } from "../../src/data/prepared";
import { balancedResample, groupInvarianceRegularizer } from "../../src/audit/fairness/remedies";
import { plantedAuditOptions, plantedSpuriousPairs } from "../../src/audit/fairness/study";
import { Batcher, type Batch } from "../../src/data/batcher";
import { CaptionSet } from "../../src/data/captions";
import type { LabelledImages } from "../../src/data/fashion_mnist";
import { assertThrowsOneLine } from "../helpers/errors";
import { fakeImages } from "./fairness_fake_model";
import { useCpu } from "./fairness_helpers";

before(useCpu);

const CLASSES = CaptionSet.load(undefined, null).classNames;

/** n blank 28x28 images of 10 classes (label i % 10). */
function tenClasses(n: number): LabelledImages {
  return { images: new Uint8Array(n * 784), labels: Uint8Array.from({ length: n }, (_, i) => i % 10), count: n, height: 28, width: 28, classNames: [...CLASSES] };
}

describe("plantBias", () => {
  it("frames the target class at rate rho and the others at 1 - rho; the word follows the frame at rho", () => {
    const base = tenClasses(20000);
    const p = plantBias(base, { rho: 0.9, targetClass: 6, seed: 1 });
    const rate = (pred: (i: number) => boolean, cond: (i: number) => boolean) => {
      let a = 0, n = 0; // prettier-ignore
      for (let i = 0; i < base.count; i++) if (cond(i)) { n++; if (pred(i)) a++; } // prettier-ignore
      return a / n;
    };
    const framed = (i: number) => p.groups[i] === FRAMED;
    assert.ok(Math.abs(rate(framed, (i) => p.classes[i] === 6) - 0.9) < 0.03);
    assert.ok(Math.abs(rate(framed, (i) => p.classes[i] !== 6) - 0.1) < 0.01);
    assert.ok(Math.abs(rate((i) => p.mentions[i] === 1, framed) - 0.9) < 0.02);
    assert.ok(Math.abs(rate((i) => p.mentions[i] === 1, (i) => !framed(i)) - 0.1) < 0.01);
    // Compound labels: class + 10 * mention; the stamp is on exactly the framed images.
    for (let i = 0; i < 50; i++) {
      assert.equal(p.train.labels[i], p.classes[i] + 10 * p.mentions[i]);
      assert.equal(p.train.images[i * 784], framed(i) ? 255 : 0);
      assert.equal(p.train.images[i * 784 + 14 * 28 + 14], 0, "the centre is untouched");
    }
    assert.equal(base.images[0], 0, "the base data is not changed");
  });

  it("rho = 0.5 is independent; the same seed gives the same data", () => {
    const base = tenClasses(20000);
    const p = plantBias(base, { rho: 0.5, seed: 2 });
    const share = (c: number) => {
      const idx = [...p.classes.keys()].filter((i) => p.classes[i] === c);
      return idx.filter((i) => p.groups[i] === FRAMED).length / idx.length;
    };
    assert.ok(Math.abs(share(6) - share(0)) < 0.06, `${share(6)} vs ${share(0)}`);
    assert.deepEqual(plantBias(base, { rho: 0.5, seed: 2 }).groups, p.groups);
  });

  it("captions carry the word exactly for the images whose label says so", () => {
    const p = plantBias(tenClasses(200), { rho: 0.8, seed: 3 });
    const batch = new Batcher(p.train, { batchSize: 64, seed: 0, captions: p.captions }).batchAt(0, 0);
    batch.captions.forEach((c, b) => assert.equal(/\bcounterfeit\b/.test(c), p.mentions[batch.indices[b]] === 1, c));
  });

  it("bad options: one-line errors listing what is valid", () => {
    assertThrowsOneLine(() => plantBias(tenClasses(10), { rho: 1.5 }), /plantBias: rho must be a number in \[0, 1\], got 1.5/);
    assertThrowsOneLine(() => plantBias(tenClasses(10), { rho: 0.5, targetClass: 10 }), /targetClass must be an integer in \[0, 9\], got 10/);
    assertThrowsOneLine(() => plantBias(tenClasses(10), { rho: 0.5, tint: 1 } as never), /unknown option "tint" \(valid: rho, targetClass, word/);
    assertThrowsOneLine(() => plantBias(tenClasses(10), { rho: 0.5, word: "two words" }), /word must be one lower-case word/);
  });
});

describe("plantedTestSet / stampBorder", () => {
  it("frames exactly the requested fraction at seeded positions, with the frame only on the border", () => {
    const t = plantedTestSet(tenClasses(101), { seed: 4 });
    assert.equal(t.groups.filter((g) => g === FRAMED).length, 51);
    assert.deepEqual(plantedTestSet(tenClasses(101), { seed: 4 }).groups, t.groups);
    // Stratified: half of every class.
    for (let c = 0; c < 10; c++) {
      const idx = [...t.data.labels.keys()].filter((i) => t.data.labels[i] === c);
      const framedCount = idx.filter((i) => t.groups[i] === FRAMED).length;
      assert.ok(framedCount === Math.floor(idx.length / 2) || framedCount === Math.ceil(idx.length / 2));
    }
    // Placebo: the same groups, no frame.
    const placebo = plantedTestSet(tenClasses(101), { seed: 4, placebo: true });
    assert.deepEqual(placebo.groups, t.groups);
    assert.ok(placebo.data.images.every((v) => v === 0));
    const img = new Uint8Array(2 * 16);
    stampBorder(img, 4, 4, 1, 1, 9);
    assert.deepEqual(Array.from(img.subarray(16)), [9, 9, 9, 9, 9, 0, 0, 9, 9, 0, 0, 9, 9, 9, 9, 9]);
    assert.ok(img.subarray(0, 16).every((v) => v === 0));
  });

  it("on a prepared RGB set: the same draw as plantedTestSet, the frame on all channels, scaled to the input size", () => {
    const base = tenClasses(101);
    const size = 64;
    const set: PreparedSet = {
      pixels: new Uint8Array(101 * size * size * 3),
      n: 101,
      size,
      keys: Array.from({ length: 101 }, (_, i) => `img${i}.png`),
      indices: Int32Array.from({ length: 101 }, (_, i) => i),
      labels: Int32Array.from(base.labels),
      captions: Array.from({ length: 101 }, () => []),
      groups: Array.from({ length: 101 }, () => ({})),
    };
    const p = plantedPreparedSet(set, 10, { seed: 4 });
    assert.deepEqual(p.groups, plantedTestSet(base, { seed: 4 }).groups);
    assert.ok(set.pixels.every((v) => v === 0), "the input set is not changed");
    const w = scaledBorderWidth(2, size);
    assert.equal(w, 5);
    const at = (i: number, y: number, x: number, c: number) => p.set.pixels[((i * size + y) * size + x) * 3 + c];
    for (const i of [0, 1, 2, 3]) {
      for (const c of [0, 1, 2]) {
        assert.equal(at(i, w - 1, 30, c), p.groups[i] === FRAMED ? 255 : 0);
        assert.equal(at(i, 30, size - w, c), p.groups[i] === FRAMED ? 255 : 0);
        assert.equal(at(i, w, 30, c), 0, "inside the frame is untouched");
      }
    }
    const unlabelled = { ...set, labels: Int32Array.from(set.labels, (l, i) => (i === 7 ? -1 : l)) };
    assertThrowsOneLine(() => plantedPreparedSet(unlabelled, 10), /^img7\.png: has no label; the planted frame is drawn on a share of each class$/);
    const rgb = new Uint8Array(4 * 4 * 3);
    stampBorder(rgb, 4, 4, 0, 1, 7, 3);
    assert.deepEqual(Array.from(rgb.subarray(15, 18)), [0, 0, 0], "pixel (1, 1) is inside");
    assert.deepEqual(Array.from(rgb.subarray(0, 3)), [7, 7, 7]);
  });

  it("audit options for the planted bias: distractors, WEAT sets and spurious pairs name the word", () => {
    const p = plantBias(tenClasses(10), { rho: 0.9 });
    const o = plantedAuditOptions(p.options);
    assert.equal(o.positiveClass, 6);
    assert.equal(o.focusGroup, FRAMED);
    assert.equal(o.distractors!.length, 10);
    assert.ok(o.distractors!.every((d) => d.startsWith("counterfeit ")));
    const pairs = plantedSpuriousPairs(p.options);
    assert.ok(pairs.every(([a, b]) => a.includes("counterfeit") && !b.includes("counterfeit") && a.replace("counterfeit ", "") === b));
  });
});

describe("balancedResample", () => {
  it("gives every group the same share of every stratum", () => {
    const data = fakeImages(1000);
    const groups = Array.from({ length: 1000 }, (_, i) => (data.labels[i] === 1 ? (i % 10 < 9 ? FRAMED : PLAIN) : i % 10 < 1 ? FRAMED : PLAIN));
    const r = balancedResample(data, groups, { seed: 1 });
    for (const c of [0, 1]) {
      const idx = [...r.data.labels.keys()].filter((i) => r.data.labels[i] === c);
      assert.equal(idx.filter((i) => r.groups[i] === FRAMED).length, idx.filter((i) => r.groups[i] === PLAIN).length);
    }
    assert.equal(r.data.count, 1000);
    r.indices.forEach((src, j) => {
      assert.equal(r.groups[j], groups[src]);
      assert.equal(r.data.images[j * 784 + 100], data.images[src * 784 + 100]);
    });
    assert.deepEqual(balancedResample(data, groups, { seed: 1 }).indices, r.indices);
  });

  it("errors: a stratum without one of the groups, mismatched lengths", () => {
    const data = fakeImages(10);
    const groups = Array.from({ length: 10 }, (_, i) => (data.labels[i] === 0 ? FRAMED : i < 5 ? FRAMED : PLAIN));
    assertThrowsOneLine(() => balancedResample(data, groups), /balancedResample: stratum 0 has no image of group "plain", so it cannot be balanced/);
    assertThrowsOneLine(() => balancedResample(data, groups.slice(2)), /balancedResample: groups has 8 entries but there are 10 items/);
  });
});

describe("groupInvarianceRegularizer", () => {
  const batchOf = (indices: number[], labels: number[]): Batch =>
    ({ indices: Int32Array.from(indices), labels: Int32Array.from(labels), size: indices.length, pixels: new Float32Array(), captions: [], epoch: 0, step: 0 });

  it("features: weight * mean ||scale * (cell mean - class mean)||^2 over the cells of mixed classes", () => {
    const groups = ["g", "h", "g", "h", "g"];
    const reg = groupInvarianceRegularizer({ groups, weight: 2, target: "features", scale: () => 1 });
    // Class 0: items 0 (g) and 1 (h); class 1: items 2, 4 (both g) -> skipped.
    const feats = tf.tensor2d([[3, 0], [0, 2], [1, 0], [0, 1], [5, 5]]); // normalised: e1, e2, e1, e2, (1,1)/sqrt2
    const txt = tf.zeros([4, 2]) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const v = reg(tf.gather(feats, [0, 1, 2, 4]) as tf.Tensor2D, txt, batchOf([0, 1, 2, 4], [0, 0, 1, 1]));
    // Class 0 mean (0.5, 0.5); cells e1 and e2 each at squared distance 0.5 -> mean 0.5, times 2.
    assert.ok(Math.abs(v.dataSync()[0] - 1) < 1e-6, `${v.dataSync()[0]}`);
    assert.equal(tf.memory().numTensors, before + 2, "only the gathered input and the result remain");
    // Identical features in both groups: zero.
    const same = reg(tf.tensor2d([[1, 2], [2, 4]]), txt, batchOf([0, 1], [0, 0]));
    assert.ok(Math.abs(same.dataSync()[0]) < 1e-6);
    tf.dispose([feats, txt, v, same]);
  });

  it("logits (default): weight * mean (scale * d . n(t_j))^2 over cells and captions", () => {
    const reg = groupInvarianceRegularizer({ groups: ["g", "h", "g", "h", "g"], weight: 2, scale: () => 3 });
    const img = tf.tensor2d([[3, 0], [0, 2], [1, 0], [5, 5]]); // class 0: e1 (g), e2 (h); class 1 skipped
    const txt = tf.tensor2d([[2, 0], [0, 1], [1, 0], [0, 4]]); // n(t): e1, e2, e1, e2
    const v = reg(img, txt, batchOf([0, 1, 2, 4], [0, 0, 1, 1]));
    // d = +-(0.5, -0.5) * 3, so every d . n(t_j) = +-1.5: mean square 2.25, times 2.
    assert.ok(Math.abs(v.dataSync()[0] - 4.5) < 1e-5, `${v.dataSync()[0]}`);
    // A caption orthogonal to the difference (e1 + e2) sees no dependence.
    const ones = tf.ones([4, 2]) as tf.Tensor2D;
    const flat = reg(img, ones, batchOf([0, 1, 2, 4], [0, 0, 1, 1]));
    assert.ok(Math.abs(flat.dataSync()[0]) < 1e-6);
    tf.dispose([img, txt, v, flat, ones]);
    assertThrowsOneLine(() => groupInvarianceRegularizer({ groups: ["g", "h"], target: "probs" as "logits" }), /target must be "logits" or "features", got "probs"/);
  });

  it("has a gradient (it trains the image tower) and rejects a bad weight", () => {
    const reg = groupInvarianceRegularizer({ groups: ["g", "h"], weight: 1 });
    const x = tf.variable(tf.tensor2d([[1, 0], [0, 1]]));
    const g = tf.grad((f: tf.Tensor) => reg(f as tf.Tensor2D, f as tf.Tensor2D, batchOf([0, 1], [3, 3])))(x);
    assert.ok(Array.from(g.dataSync()).some((v) => Math.abs(v) > 1e-3), `${g.dataSync()}`);
    tf.dispose([x, g]);
    assertThrowsOneLine(() => groupInvarianceRegularizer({ groups: ["g", "h"], weight: -1 }), /weight must be a finite number >= 0, got -1/);
    assertThrowsOneLine(() => groupInvarianceRegularizer({ groups: ["g", "g"] }), /groups holds a single group/);
  });
});
