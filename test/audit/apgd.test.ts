/**
 * APGD (Croce & Hein 2020, https://arxiv.org/abs/2003.01690) on known answers: the checkpoint
 * schedule, the analytic optimum of a linear loss (L-inf and L2, with the [0, 1] box), a toy with a
 * deceptive gradient where fixed-step PGD stalls at a shallow maximum and APGD finds the higher
 * one, APGD-CE / APGD-T on a linear classifier (never weaker than PGD, targets in order), the
 * targeted DLR loss by hand, budgets, seeding, no leaks, one-line errors.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { apgd, apgdCe, apgdCheckpoints, apgdT, type ApgdObjective } from "../../src/audit/robustness/apgd";
import { pgd, perturbationNorms, type AttackNorm } from "../../src/audit/robustness/attacks";
import { crossEntropyPerExample, dlrTargetedPerExample } from "../../src/audit/robustness/objective";
import { Random } from "../../src/util/random";
import { assertThrowsOneLine } from "../helpers/errors";
import { useTestBackend } from "../eval/fake_clip";

before(useTestBackend);

const SHAPE: [number, number, number, number] = [3, 4, 4, 3];
const D = 4 * 4 * 3;

/** Seeded uniform images, some values exactly at 0 and 1 (where the box binds). */
function images(seed: number, shape = SHAPE): tf.Tensor4D {
  const v = new Random(seed).fillUniform(new Float32Array(shape.reduce((a, b) => a * b)), 0, 1);
  for (let i = 0; i < v.length; i += 5) v[i] = i % 2 ? 0 : 1;
  return tf.tensor4d(v, shape);
}

const noSuccess = (x: tf.Tensor4D) => tf.zeros([x.shape[0]]) as tf.Tensor1D;

/** loss_b = <w_b, x_b>, never "successful": APGD must climb to the maximum. */
function linear(w: tf.Tensor4D): ApgdObjective {
  return (x, ex) => ({ loss: tf.sum(tf.mul(x, tf.gather(w, tf.tensor1d(ex, "int32"))), [1, 2, 3]) as tf.Tensor1D, success: noSuccess(x) });
}

/** argmax of <w, d> over ||d||_2 <= eps and lo <= d <= hi: d = clip(lambda w, lo, hi) with ||d|| = eps (bisection on lambda). */
function l2BoxOptimum(w: Float32Array, x: Float32Array, eps: number): Float32Array {
  const at = (lambda: number) => Float32Array.from(w, (wi, i) => Math.min(1 - x[i], Math.max(-x[i], lambda * wi)));
  const size = (d: Float32Array) => Math.sqrt(d.reduce((s, v) => s + v * v, 0));
  let lo = 0;
  let hi = 1;
  while (size(at(hi)) < eps && hi < 1e9) hi *= 2;
  for (let k = 0; k < 200; k++) {
    const mid = (lo + hi) / 2;
    if (size(at(mid)) < eps) lo = mid;
    else hi = mid;
  }
  return Float32Array.from(at(hi), (d, i) => x[i] + d);
}

describe("APGD schedule", () => {
  it("checkpoints: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), w_j = ceil(p_j N)", () => {
    assert.deepEqual(apgdCheckpoints(100), [22, 41, 57, 70, 80, 87, 93, 99]);
    const fromPaper = (n: number) => {
      const p = [0, 0.22];
      while (true) {
        const next = p[p.length - 1] + Math.max(p[p.length - 1] - p[p.length - 2] - 0.03, 0.06);
        if (next > 1) break;
        p.push(next);
      }
      return p.slice(1).map((v) => Math.ceil(+(v * n).toFixed(9)));
    };
    assert.deepEqual(apgdCheckpoints(100), fromPaper(100));
    assert.deepEqual(apgdCheckpoints(200), fromPaper(200));
    // Short runs: intervals of at least one step.
    assert.deepEqual(apgdCheckpoints(10), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe("apgd on a linear loss: the analytic optimum", () => {
  it("L-inf: clip01(x + eps sign(w)), the box included", () => {
    const x = images(1);
    const w = tf.randomNormal(SHAPE, 0, 1, "float32", 2) as tf.Tensor4D;
    for (const eps of [0.03, 0.3]) {
      const out = apgd(linear(w), x, { eps, norm: "linf", steps: 20, seed: 3 });
      const opt = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(tf.sign(w), eps)), 0, 1));
      const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(out.best, opt))).dataSync()[0]);
      assert.ok(gap < 1e-6, `eps ${eps}: max |best - optimum| = ${gap}`);
      tf.dispose([out.best, out.adversarial, opt]);
    }
    tf.dispose([x, w]);
  });

  it("L2: x + eps w / ||w|| inside the box; with the box binding, the KKT point clip(lambda w) on the sphere", () => {
    const w = tf.randomNormal(SHAPE, 0, 1, "float32", 5) as tf.Tensor4D;
    // Interior: x = 0.5 everywhere, eps small enough that no coordinate reaches 0 or 1.
    const mid = tf.fill(SHAPE, 0.5) as tf.Tensor4D;
    const inner = apgd(linear(w), mid, { eps: 0.2, norm: "l2", steps: 30, seed: 1 });
    const opt = tf.tidy(() => tf.add(mid, tf.mul(tf.div(w, tf.sqrt(tf.sum(tf.square(w), [1, 2, 3], true))), 0.2)));
    const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(inner.best, opt))).dataSync()[0]);
    assert.ok(gap < 2e-3, `interior: max |best - optimum| = ${gap}`);
    // Box binding: images with values at 0 and 1, a budget that pushes many coordinates into the box.
    const x = images(6);
    const eps = 1.5;
    const out = apgd(linear(w), x, { eps, norm: "l2", steps: 50, seed: 2 });
    const wv = w.dataSync() as Float32Array;
    const xv = x.dataSync() as Float32Array;
    const bv = out.best.dataSync();
    for (let b = 0; b < SHAPE[0]; b++) {
      const wb = wv.subarray(b * D, (b + 1) * D);
      const xb = xv.subarray(b * D, (b + 1) * D);
      const best = l2BoxOptimum(wb, xb, eps);
      const value = (p: ArrayLike<number>) => wb.reduce((s, wi, i) => s + wi * (p[i] - xb[i]), 0);
      const got = value(bv.subarray(b * D, (b + 1) * D));
      assert.ok(got >= 0.99 * value(best), `image ${b}: <w, delta> = ${got}, optimum ${value(best)}`);
      assert.ok(got <= value(best) + 1e-4, `image ${b}: above the optimum (${got} > ${value(best)}): the budget leaked`);
    }
    tf.dispose([w, mid, inner.best, inner.adversarial, opt, x, out.best, out.adversarial]);
  });
});

describe("apgd on a deceptive gradient", () => {
  /**
   * The loss depends on s = mean(x - x0) / eps, the mean perturbation in units of the budget:
   * g(s) = exp(-50 (s - 0.3)^2) + 3 exp(-50 (s - 0.85)^2). From the start (s near 0) the gradient
   * points to the shallow maximum at s = 0.3 (height 1); the higher one (3) lies further along, past
   * a valley. PGD's fixed step (2.5 eps / steps) climbs into the shallow one and oscillates there;
   * APGD's first step of 2 eps lands past the valley, and its step halving from the best point
   * settles on the higher maximum.
   */
  const deceptive = (x0: tf.Tensor4D, eps: number, norm: AttackNorm) => (x: tf.Tensor4D) =>
    tf.tidy(() => {
      const d = tf.sub(x, x0);
      // L2: s = sum(delta) / (eps sqrt(d)), 1 when the whole budget goes along the diagonal.
      const s = norm === "linf" ? tf.div(tf.mean(d, [1, 2, 3]), eps) : tf.div(tf.sum(d, [1, 2, 3]), eps * Math.sqrt(D));
      return tf.add(tf.exp(tf.mul(tf.square(tf.sub(s, 0.3)), -50)), tf.mul(3, tf.exp(tf.mul(tf.square(tf.sub(s, 0.85)), -50)))) as tf.Tensor1D;
    });
  for (const [norm, eps] of [["linf", 0.1], ["l2", 0.5]] as const) {
    it(`${norm}: fixed-step PGD stalls at the shallow maximum, APGD reaches the higher one (same steps, same start distribution)`, () => {
      const x0 = tf.fill(SHAPE, 0.5) as tf.Tensor4D;
      const g = deceptive(x0, eps, norm);
      for (const steps of [10, 20]) {
        const a = apgd((x) => ({ loss: g(x), success: noSuccess(x) }), x0, { eps, norm, steps, seed: 1 });
        const p = pgd((x) => tf.sum(g(x)) as tf.Scalar, x0, { eps, norm, steps, seed: 1 });
        const pgdLoss = Array.from(g(p).dataSync());
        for (let b = 0; b < SHAPE[0]; b++) {
          assert.ok(pgdLoss[b] <= 1.05, `PGD ${steps} steps image ${b}: ${pgdLoss[b]} (expected stuck near the shallow maximum 1)`);
          assert.ok(a.loss[b] > 2.9, `APGD ${steps} steps image ${b}: ${a.loss[b]} (the higher maximum is 3)`);
        }
        tf.dispose([a.best, a.adversarial, p]);
      }
      x0.dispose();
    });
  }
});

describe("APGD-CE and APGD-T on a linear classifier", () => {
  const C = 5;
  // logits = flatten(x) @ W + b, W seeded; images of 4 x 4 x 3.
  const W = tf.randomNormal([D, C], 0, 0.6, "float32", 9) as tf.Tensor2D;
  const bias = tf.tensor1d([0.5, 0, -0.5, 0.2, -0.2]);
  const logits01 = (x: tf.Tensor4D) => tf.tidy(() => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], D]), W), bias) as tf.Tensor2D);

  function cleanPredictions(x: tf.Tensor4D): Int32Array {
    return tf.tidy(() => tf.argMax(logits01(x), 1).dataSync() as Int32Array);
  }

  it("stay in budget and [0, 1]; eps = 0 is the identity; seeded; never weaker than PGD; no leaked tensors", () => {
    const x = images(11, [24, 4, 4, 3]);
    const labels = cleanPredictions(x); // every image starts correct
    const start = tf.memory().numTensors;
    for (const norm of ["linf", "l2"] as const) {
      const eps = norm === "linf" ? 0.05 : 0.3;
      const ce = apgdCe(logits01, x, labels, { eps, norm, steps: 10, seed: 1 });
      const t = apgdT(logits01, x, labels, { eps, norm, steps: 10, seed: 1, targets: 3 });
      const p = pgd((z) => tf.tidy(() => tf.sum(crossEntropyPerExample(logits01(z), labels)) as tf.Scalar), x, { eps, norm, steps: 10, seed: 1 });
      for (const adv of [ce, t]) {
        const n = perturbationNorms(x, adv);
        for (const v of norm === "linf" ? n.linf : n.l2) assert.ok(v <= eps * (1 + 1e-5) + 1e-6, `${norm}: ${v} > ${eps}`);
        for (const v of adv.dataSync()) assert.ok(v >= 0 && v <= 1);
      }
      const acc = (z: tf.Tensor4D) => cleanPredictions(z).reduce((s, y, i) => s + (y === labels[i] ? 1 : 0), 0) / labels.length;
      assert.ok(acc(ce) <= acc(p) + 1e-9, `${norm}: APGD-CE ${acc(ce)} vs PGD ${acc(p)}`);
      assert.ok(acc(t) <= acc(p) + 1e-9, `${norm}: APGD-T ${acc(t)} vs PGD ${acc(p)}`);
      assert.ok(acc(ce) < 1, `${norm}: APGD-CE fooled nothing`);
      const again = apgdCe(logits01, x, labels, { eps, norm, steps: 10, seed: 1 });
      assert.deepEqual(again.dataSync(), ce.dataSync(), "same seed, same result");
      const zero = apgdT(logits01, x, labels, { eps: 0, norm, steps: 5 });
      assert.deepEqual(zero.dataSync(), x.dataSync());
      tf.dispose([ce, t, p, again, zero]);
    }
    assert.equal(tf.memory().numTensors, start);
    x.dispose();
  });

  it("APGD-T with one target pushes towards the runner-up class of the clean image", () => {
    const x = images(12, [24, 4, 4, 3]);
    const clean = tf.tidy(() => logits01(x).dataSync() as Float32Array);
    const labels = cleanPredictions(x);
    const second = Int32Array.from(labels, (_, i) => {
      const row = Array.from(clean.subarray(i * C, (i + 1) * C));
      return row.map((v, j) => [v, j]).sort((a, b) => b[0] - a[0])[1][1];
    });
    const adv = apgdT(logits01, x, labels, { eps: 0.2, norm: "linf", steps: 20, targets: 1 });
    const pred = cleanPredictions(adv);
    let fooled = 0;
    let toRunnerUp = 0;
    pred.forEach((p, i) => {
      if (p !== labels[i]) {
        fooled++;
        if (p === second[i]) toRunnerUp++;
      }
    });
    assert.ok(fooled >= 12, `fooled ${fooled} of 24`);
    assert.ok(toRunnerUp >= 0.8 * fooled, `${toRunnerUp} of ${fooled} went to the runner-up class`);
    tf.dispose([x, adv]);
  });

  it("the targeted DLR loss by hand; fewer than 4 classes is refused", () => {
    const logits = tf.tensor2d([[4, 1, 3, 0, 2], [0, 5, 1, 2, 3]]);
    // Row 0: y = 0, t = 2; sorted 4, 3, 2, 1, 0: -(4 - 3) / (4 - (2 + 1) / 2) = -1 / 2.5.
    // Row 1: y = 4, t = 1; sorted 5, 3, 2, 1, 0: -(3 - 5) / (5 - (2 + 1) / 2) = 2 / 3.5.
    const v = tf.tidy(() => dlrTargetedPerExample(logits, Int32Array.of(0, 4), Int32Array.of(2, 1)).dataSync());
    assert.ok(Math.abs(v[0] - -1 / 2.5) < 1e-6 && Math.abs(v[1] - 2 / 3.5) < 1e-6, `${v[0]} ${v[1]}`);
    assertThrowsOneLine(() => tf.tidy(() => dlrTargetedPerExample(tf.zeros([1, 3]) as tf.Tensor2D, Int32Array.of(0), Int32Array.of(1))), /at least 4 classes, got 3/);
    logits.dispose();
  });

  it("rejects bad options with one line naming the option", () => {
    const x = images(13);
    const labels = cleanPredictions(x);
    assertThrowsOneLine(() => apgdCe(logits01, x, labels, { eps: -1, norm: "linf" }), /^apgdCe: eps must be a finite number >= 0/);
    assertThrowsOneLine(() => apgdCe(logits01, x, labels, { eps: 0.1, norm: "l1" as never }), /^apgdCe: norm must be one of linf, l2, got "l1"$/);
    assertThrowsOneLine(() => apgdCe(logits01, x, labels, { eps: 0.1, norm: "linf", steps: 0 }), /^apgdCe: steps must be an integer >= 1, got 0$/);
    assertThrowsOneLine(() => apgdCe(logits01, x, labels, { eps: 0.1, norm: "linf", rho: 2 }), /^apgdCe: rho must be in \(0, 1\], got 2$/);
    assertThrowsOneLine(() => apgdCe(logits01, x, labels, { eps: 0.1, norm: "linf", targets: 3 } as never), /^apgdCe: unknown option "targets"; valid options: eps, norm, steps, restarts, rho, momentum, seed$/);
    assertThrowsOneLine(() => apgdT(logits01, x, labels, { eps: 0.1, norm: "linf", targets: 0 }), /^apgdT: targets must be an integer >= 1, got 0$/);
    assertThrowsOneLine(() => apgdCe(logits01, x, [0, 1], { eps: 0.1, norm: "linf" }), /^apgdCe: 3 images but 2 labels$/);
    assertThrowsOneLine(() => apgdCe(logits01, x, [0, 1, 9], { eps: 0.1, norm: "linf" }), /^apgdCe: labels\[2\] = 9 is not a class index in \[0, 5\)$/);
    assertThrowsOneLine(
      () => apgd((z) => ({ loss: tf.sum(z) as unknown as tf.Tensor1D, success: noSuccess(z) }), x, { eps: 0.1, norm: "linf", steps: 2 }),
      /^apgd: the objective must return \{loss, success\}, two \[3\] tensors \(one value per image\), got loss \[\], success \[3\]$/,
    );
    x.dispose();
  });
});
