/**
 * SigLIP sigmoid loss (src/loss/siglip.ts) against a plain-JS float64 computation on seeded random
 * inputs, gradients against float64 central finite differences of that computation, on both the
 * cpu and the wasm backend, plus leak and validation checks.
 *
 * Tolerance, as for InfoNCE (test/fixtures/README.md): max|got - ref| <= 1e-6 + 1e-4 * max|ref|.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { scaledCosines64 } from "../helpers/f64";
import { useBackend } from "../helpers/fixtures";
import { assertThrowsOneLine } from "../helpers/errors";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { sigLipLoss } from "../../src/loss/siglip";

const BACKENDS = ["cpu", "wasm"] as const;


/** Small deterministic generator (Numerical Recipes LCG), values in [-1, 1) rounded to float32. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround((s / 2 ** 32) * 2 - 1);
  };
}

/** log sigmoid(x) in float64 without overflow: -log(1 + e^-x) for x >= 0, x - log(1 + e^x) otherwise. */
function logSigmoid64(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

/** The SigLIP loss in float64, straight from the paper's definition. */
function sigLip64(img: number[][], txt: number[][], logitScale: number, logitBias: number): number {
  const n = img.length;
  const logits = scaledCosines64(img, txt, logitScale);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const z = i === j ? 1 : -1;
      sum += logSigmoid64(z * (logits[i]![j]! + logitBias));
    }
  }
  return -sum / n;
}

type Case = { name: string; img: number[][]; txt: number[][]; logitScale: number; logitBias: number };

function makeCases(): Case[] {
  const rnd = lcg(20230315);
  const mat = (n: number, d: number) => Array.from({ length: n }, () => Array.from({ length: d }, rnd));
  // The paper's initialisation: t = log 10, b = -10.
  const a: Case = { name: "n6_d8_init", img: mat(6, 8), txt: mat(6, 8), logitScale: Math.fround(Math.log(10)), logitBias: -10 };
  // Scale 100 with pairs pinned at the extremes: matched pair 0 anti-aligned (y*z = -110) and
  // text 2 equal to image 1 (y*z = -90), where log(sigmoid) in float32 would give -Inf.
  const bImg = mat(5, 3);
  const bTxt = mat(5, 3);
  bTxt[0] = bImg[0]!.map((x) => -x);
  bTxt[2] = bImg[1]!.slice();
  const b: Case = { name: "n5_d3_scale100_extremes", img: bImg, txt: bTxt, logitScale: Math.fround(Math.log(100)), logitBias: -10 };
  // A single pair, positive bias.
  const c: Case = { name: "n1_d4", img: mat(1, 4), txt: mat(1, 4), logitScale: 0.5, logitBias: Math.fround(0.3) };
  // Texts near their images: the loss is small and driven by the matched pairs.
  const dImg = mat(7, 16);
  const dTxt = dImg.map((r) => r.map((x) => Math.fround(x + 0.2 * rnd())));
  const d: Case = { name: "n7_d16_matched", img: dImg, txt: dTxt, logitScale: Math.fround(Math.log(30)), logitBias: Math.fround(-4) };
  return [a, b, c, d];
}

/** Float64 central differences of sigLip64 for every input element, the scale and the bias. */
function finiteDifferences(c: Case): { gI: number[]; gT: number[]; gS: number; gB: number } {
  const h = 1e-6;
  const f = (img: number[][], txt: number[][], s: number, b: number) => sigLip64(img, txt, s, b);
  const wrt = (m: number[][], eval_: (m2: number[][]) => number) => {
    const out: number[] = [];
    for (let i = 0; i < m.length; i++) {
      for (let k = 0; k < m[i]!.length; k++) {
        const plus = m.map((r) => r.slice());
        const minus = m.map((r) => r.slice());
        plus[i]![k]! += h;
        minus[i]![k]! -= h;
        out.push((eval_(plus) - eval_(minus)) / (2 * h));
      }
    }
    return out;
  };
  return {
    gI: wrt(c.img, (m) => f(m, c.txt, c.logitScale, c.logitBias)),
    gT: wrt(c.txt, (m) => f(c.img, m, c.logitScale, c.logitBias)),
    gS: (f(c.img, c.txt, c.logitScale + h, c.logitBias) - f(c.img, c.txt, c.logitScale - h, c.logitBias)) / (2 * h),
    gB: (f(c.img, c.txt, c.logitScale, c.logitBias + h) - f(c.img, c.txt, c.logitScale, c.logitBias - h)) / (2 * h),
  };
}

function check(t: { diagnostic(msg: string): void }, label: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  assert.equal(got.length, ref.length, `${label}: length`);
  let err = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i]! - ref[i]!);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    m = Math.max(m, Math.abs(ref[i]!));
  }
  const tol = 1e-6 + 1e-4 * m;
  t.diagnostic(`${label}: max|Δ| = ${err.toExponential(2)}, tol = ${tol.toExponential(2)}, ratio = ${(err / tol).toFixed(4)}`);
  assert.ok(err <= tol, `${label}: max|Δ| = ${err} > tol = ${tol}`);
}

function tensors(c: Case) {
  return {
    img: tf.tensor2d(c.img),
    txt: tf.tensor2d(c.txt),
    ls: tf.scalar(c.logitScale),
    lb: tf.scalar(c.logitBias),
  };
}

const sigLipGrads = tf.grads((a: tf.Tensor, b: tf.Tensor, s: tf.Tensor, bias: tf.Tensor) =>
  sigLipLoss(a as tf.Tensor2D, b as tf.Tensor2D, s as tf.Scalar, bias as tf.Scalar),
);

const CASES = makeCases();

for (const backend of BACKENDS) {
  describe(`sigLipLoss on the ${backend} backend`, () => {
    before(async () => {
      await useBackend(backend);
    });

    for (const c of CASES) {
      it(`matches the float64 computation and its finite differences: ${c.name}`, (t) => {
        assert.equal(tf.getBackend(), backend);
        const { img, txt, ls, lb } = tensors(c);
        const loss = sigLipLoss(img, txt, ls, lb);
        assert.deepEqual(loss.shape, []);
        check(t, `${backend} ${c.name} loss`, loss.dataSync(), [sigLip64(c.img, c.txt, c.logitScale, c.logitBias)]);

        const [gI, gT, gS, gB] = sigLipGrads([img, txt, ls, lb]);
        const fd = finiteDifferences(c);
        check(t, `${backend} ${c.name} grad imageFeatures`, gI!.dataSync(), fd.gI);
        check(t, `${backend} ${c.name} grad textFeatures`, gT!.dataSync(), fd.gT);
        check(t, `${backend} ${c.name} grad logitScale`, gS!.dataSync(), [fd.gS]);
        check(t, `${backend} ${c.name} grad logitBias`, gB!.dataSync(), [fd.gB]);
        tf.dispose([img, txt, ls, lb, loss, gI, gT, gS, gB]);
      });
    }

    it("leaks no tensor across 5 calls of the loss and of its gradient", () => {
      const { img, txt, ls, lb } = tensors(CASES[0]!);
      const base = tf.memory().numTensors;
      for (let k = 0; k < 5; k++) {
        const loss = sigLipLoss(img, txt, ls, lb);
        assert.equal(tf.memory().numTensors, base + 1, "sigLipLoss returns exactly one tensor");
        loss.dispose();
        const grads = sigLipGrads([img, txt, ls, lb]);
        assert.equal(tf.memory().numTensors, base + 4, "tf.grads returns exactly four tensors");
        tf.dispose(grads);
        assert.equal(tf.memory().numTensors, base, `iteration ${k}`);
      }
      tf.dispose([img, txt, ls, lb]);
    });

    it("rejects mismatched or malformed shapes with a one-line message naming the argument", () => {
      const i35 = tf.ones([3, 5]) as tf.Tensor2D;
      const t45 = tf.ones([4, 5]) as tf.Tensor2D;
      const t36 = tf.ones([3, 6]) as tf.Tensor2D;
      const r1 = tf.ones([5]) as unknown as tf.Tensor2D;
      const s = tf.scalar(1);
      const s1 = tf.ones([1]) as unknown as tf.Scalar;
      const base = tf.memory().numTensors;
      const expectErr = assertThrowsOneLine;
      expectErr(() => sigLipLoss(i35, t45, s, s), /^sigLipLoss: textFeatures shape \[4, 5\] must equal imageFeatures shape \[3, 5\]/);
      expectErr(() => sigLipLoss(i35, t36, s, s), /^sigLipLoss: textFeatures shape \[3, 6\] must equal imageFeatures shape \[3, 5\]/);
      expectErr(() => sigLipLoss(r1, i35, s, s), /^sigLipLoss: imageFeatures must have rank 2 .*got shape \[5\]/);
      expectErr(() => sigLipLoss(i35, i35, s1, s), /^sigLipLoss: logitScale must be a scalar \(shape \[\]\), got shape \[1\]/);
      expectErr(() => sigLipLoss(i35, i35, s, s1), /^sigLipLoss: logitBias must be a scalar \(shape \[\]\), got shape \[1\]/);
      assert.equal(tf.memory().numTensors, base, "a rejected call allocates nothing");
      tf.dispose([i35, t45, t36, r1, s, s1]);
    });
  });
}
