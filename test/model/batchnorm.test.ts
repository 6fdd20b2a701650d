/**
 * BatchNorm in training mode (https://arxiv.org/abs/1502.03167, torch's `BatchNorm2d.train()`):
 * batch statistics in the output, running statistics moved with momentum 0.1 (unbiased variance),
 * and the ModifiedResNet's train/eval switch.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../src/backend/select";
import { BN_MOMENTUM, NORM_EPS, batchNormEval, batchNormTrain } from "../../src/model/layers";
import { Clip } from "../../src/model/clip";

const B = 3;
const H = 2;
const W = 3;
const C = 4;

function lcg(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 4 - 1.5;
  }
  return out;
}

/** Per-channel mean, biased and unbiased variance of NHWC data, in float64. */
function channelStats(x: Float32Array): { mean: number[]; biased: number[]; unbiased: number[] } {
  const n = x.length / C;
  const mean = Array.from({ length: C }, (_, c) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i * C + c];
    return s / n;
  });
  const ss = Array.from({ length: C }, (_, c) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (x[i * C + c] - mean[c]) ** 2;
    return s;
  });
  return { mean, biased: ss.map((s) => s / n), unbiased: ss.map((s) => s / (n - 1)) };
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

before(async () => {
  await initBackend({ prefer: "wasm" });
});

describe("batchNormTrain", () => {
  const gamma = [1.5, -0.5, 2, 0.25];
  const beta = [0.1, 0.2, -0.3, 0];

  function weights(): Map<string, tf.Variable> {
    return new Map([
      ["bn.weight", tf.variable(tf.tensor1d(gamma), true)],
      ["bn.bias", tf.variable(tf.tensor1d(beta), true)],
      ["bn.running_mean", tf.variable(tf.tensor1d([0.5, 0, -1, 2]), false)],
      ["bn.running_var", tf.variable(tf.tensor1d([1, 2, 0.5, 3]), false)],
    ]);
  }

  it("normalises with batch statistics and moves the running ones by momentum 0.1 (unbiased variance)", () => {
    const vars = weights();
    const w = (name: string) => vars.get(name)!;
    const xv = lcg(B * H * W * C, 5);
    const x = tf.tensor4d(xv, [B, H, W, C]);
    const st = channelStats(xv);
    const before = tf.memory().numTensors;
    const y = tf.tidy(() => batchNormTrain(x, w, "bn"));
    const yv = y.dataSync();
    y.dispose();
    assert.equal(tf.memory().numTensors, before, "batchNormTrain under tf.tidy leaks nothing (the running statistics are replaced, not added)");
    const want = Array.from(xv, (v, i) => {
      const c = i % C;
      return ((v - st.mean[c]) / Math.sqrt(st.biased[c] + NORM_EPS)) * gamma[c] + beta[c];
    });
    close(yv, want, 1e-5, "output");
    const m1 = [0.5, 0, -1, 2].map((r, c) => (1 - BN_MOMENTUM) * r + BN_MOMENTUM * st.mean[c]);
    const v1 = [1, 2, 0.5, 3].map((r, c) => (1 - BN_MOMENTUM) * r + BN_MOMENTUM * st.unbiased[c]);
    close(w("bn.running_mean").dataSync(), m1, 1e-6, "running_mean after one call");
    close(w("bn.running_var").dataSync(), v1, 1e-6, "running_var after one call");

    // A second call compounds; the output still uses only the batch.
    const y2 = batchNormTrain(x, w, "bn");
    close(y2.dataSync(), want, 1e-5, "output of the second call");
    close(w("bn.running_mean").dataSync(), m1.map((r, c) => 0.9 * r + 0.1 * st.mean[c]), 1e-6, "running_mean after two calls");
    close(w("bn.running_var").dataSync(), v1.map((r, c) => 0.9 * r + 0.1 * st.unbiased[c]), 1e-6, "running_var after two calls");

    // Eval mode reads the running statistics.
    const e = batchNormEval(x, w, "bn");
    const rm = w("bn.running_mean").dataSync();
    const rv = w("bn.running_var").dataSync();
    close(e.dataSync(), Array.from(xv, (v, i) => ((v - rm[i % C]) / Math.sqrt(rv[i % C] + NORM_EPS)) * gamma[i % C] + beta[i % C]), 1e-5, "eval output");
    tf.dispose([x, y2, e, ...vars.values()]);
  });

  it("has the batch-statistics gradient: d/dx of sum(y * r) sums to zero per channel", () => {
    // With batch statistics, y is invariant to shifting a channel of x, so the gradient's
    // per-channel sum is 0; with running statistics (eval) it would be gamma/sqrt(var) * sum(r).
    const vars = weights();
    const w = (name: string) => vars.get(name)!;
    const x = tf.tensor4d(lcg(B * H * W * C, 6), [B, H, W, C]);
    const r = tf.tensor4d(lcg(B * H * W * C, 7), [B, H, W, C]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(t as tf.Tensor4D, w, "bn"), r)))(x);
    const perChannel = tf.sum(g, [0, 1, 2]);
    close(perChannel.dataSync(), [0, 0, 0, 0], 1e-5, "per-channel gradient sum");
    const ge = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(batchNormEval(t as tf.Tensor4D, w, "bn"), r)))(x);
    assert.ok(Math.abs(tf.sum(ge).dataSync()[0]) > 1e-3, "eval-mode gradient is not shift-invariant");
    tf.dispose([x, r, g, perChannel, ge, ...vars.values()]);
  });

  it("its written-out gradient equals the taped gradient of the formula (x, gamma, beta)", () => {
    const vars = weights();
    const w = (name: string) => vars.get(name)!;
    const x = tf.tensor4d(lcg(B * H * W * C, 16), [B, H, W, C]);
    const r = tf.tensor4d(lcg(B * H * W * C, 17), [B, H, W, C]);
    const gamma = tf.tensor1d([0.7, -1.2, 0.3, 2]);
    const beta = tf.tensor1d([0, 0.5, -0.5, 1]);
    const taped = (t: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor) => {
      const mean = tf.mean(t, [0, 1, 2]);
      const centered = tf.sub(t, mean);
      const variance = tf.mean(tf.square(centered), [0, 1, 2]);
      return tf.add(tf.mul(tf.div(centered, tf.sqrt(tf.add(variance, NORM_EPS))), g), b);
    };
    const ours = (t: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor) =>
      batchNormTrain(t, (n) => (n.endsWith(".weight") ? g : n.endsWith(".bias") ? b : w(n)), "bn");
    const loss = (f: typeof taped) => (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(t as tf.Tensor4D, g, b), r));
    const want = tf.grads(loss(taped))([x, gamma, beta]);
    const got = tf.grads(loss(ours))([x, gamma, beta]);
    ["dx", "dgamma", "dbeta"].forEach((what, i) => close(got[i].dataSync(), want[i].dataSync(), 1e-4, what));
    tf.dispose([x, r, gamma, beta, ...want, ...got, ...vars.values()]);
  });

  it("refuses a single value per channel, naming the layer", () => {
    const vars = weights();
    const x = tf.zeros([1, 1, 1, C]) as tf.Tensor4D;
    assert.throws(() => batchNormTrain(x, (n) => vars.get(n)!, "bn"), /^Error: batchNormTrain: bn needs more than one value per channel in training mode, got input \[1,1,1,4\]$/);
    tf.dispose([x, ...vars.values()]);
  });
});

describe("ModifiedResNet train/eval mode", () => {
  it("training mode uses batch statistics and updates every BatchNorm's running statistics; eval mode changes nothing", () => {
    const clip = Clip.create("RN-Tiny-32", { seed: 3 });
    const size = clip.config.vision_cfg.image_size;
    const images = tf.tensor4d(lcg(4 * size * size * 3, 9), [4, size, size, 3]);
    const running = clip.specs.filter((s) => s.name.includes(".running_"));
    assert.ok(running.length >= 20, "RN-Tiny-32 has BatchNorm buffers");
    const snapshot = () => new Map(running.map((s) => [s.name, Array.from(clip.params.get(s.name)!.dataSync())]));
    const initial = snapshot();

    const evalOut = clip.encodeImage(images);
    assert.deepEqual(snapshot(), initial, "eval mode leaves the running statistics alone");
    const trainOut = clip.encodeImage(images, { training: true });
    const after = snapshot();
    for (const s of running) assert.notDeepEqual(after.get(s.name), initial.get(s.name), `${s.name} moved in training mode`);
    // Freshly initialised running stats are mean 0, var 1; batch statistics are not, so outputs differ.
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(trainOut, evalOut))).dataSync()[0]);
    assert.ok(diff > 1e-4, `training and eval outputs differ (max |diff| ${diff})`);
    // Training-mode output depends on the batch only, not on the running statistics it just moved.
    const trainAgain = clip.encodeImage(images, { training: true });
    close(trainAgain.dataSync(), trainOut.dataSync(), 1e-5, "training output is independent of the running statistics");
    tf.dispose([images, evalOut, trainOut, trainAgain]);
    clip.dispose();
  });
});
