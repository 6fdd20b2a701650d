/**
 * CLIP symmetric InfoNCE (src/loss/info_nce.ts) against the reference fixtures
 * (test/fixtures/infonce.json, float64 values from openai/CLIP under PyTorch), on both the cpu and
 * the wasm backend, plus leak and validation checks.
 *
 * Tolerance (test/fixtures/README.md, "Recommended tolerances"): per quantity against `f64`,
 * max|got - ref| <= 1e-6 + 1e-4 * max|ref|.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { scaledCosines64 } from "../helpers/f64";
import { useBackend } from "../helpers/fixtures";
import { assertThrowsOneLine } from "../helpers/errors";
import { clipLogits, clipLoss, clipLossTerms, infoNceFromLogits } from "../../src/loss/info_nce";

type FixtureArray = { shape: number[]; dtype: string; data: number[] };
type FixtureRef = {
  logits: FixtureArray;
  loss_i2t: number;
  loss_t2i: number;
  loss: number;
  grad_image_emb: FixtureArray;
  grad_text_emb: FixtureArray;
  grad_logit_scale: number;
  grad_scale: number;
};
type FixtureCase = {
  name: string;
  image_emb: FixtureArray;
  text_emb: FixtureArray;
  logit_scale: number;
  f64: FixtureRef;
  f32: FixtureRef;
};

const FIXTURE = path.join(__dirname, "..", "fixtures", "infonce.json");
const CASES: FixtureCase[] = (JSON.parse(fs.readFileSync(FIXTURE, "utf8")) as { cases: FixtureCase[] }).cases;
const BACKENDS = ["cpu", "wasm"] as const;


/** The README's tolerance for one quantity: 1e-6 + 1e-4 * max|ref|. */
function tolerance(ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]!));
  return 1e-6 + 1e-4 * m;
}

function maxAbsDiff(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(got.length, ref.length, "length");
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i]! - ref[i]!);
    // NaN must fail, and Math.max would propagate it only by accident.
    if (Number.isNaN(d)) return Infinity;
    m = Math.max(m, d);
  }
  return m;
}

/** Asserts the tolerance and reports the observed error in the test's diagnostics. */
function expectClose(
  t: { diagnostic(msg: string): void },
  label: string,
  got: tf.Tensor | number,
  ref: FixtureArray | number,
): void {
  const refData = typeof ref === "number" ? [ref] : ref.data;
  if (typeof ref !== "number" && typeof got !== "number") {
    assert.deepEqual(got.shape, ref.shape, `${label}: shape`);
  }
  const gotData = typeof got === "number" ? [got] : Array.from(got.dataSync());
  const err = maxAbsDiff(gotData, refData);
  const tol = tolerance(refData);
  t.diagnostic(`${label}: max|Δ| = ${err.toExponential(2)}, tol = ${tol.toExponential(2)}, ratio = ${(err / tol).toFixed(4)}`);
  assert.ok(err <= tol, `${label}: max|Δ| = ${err} > tol = ${tol}`);
}

function inputs(c: FixtureCase): { img: tf.Tensor2D; txt: tf.Tensor2D; ls: tf.Scalar } {
  return {
    img: tf.tensor2d(c.image_emb.data, c.image_emb.shape as [number, number], "float32"),
    txt: tf.tensor2d(c.text_emb.data, c.text_emb.shape as [number, number], "float32"),
    ls: tf.scalar(c.logit_scale, "float32"),
  };
}

/** Plain float64 symmetric InfoNCE, straight from the definition (log-sum-exp with the max). */
function clipLossF64(img: number[][], txt: number[][], logitScale: number): number {
  const n = img.length;
  const L = scaledCosines64(img, txt, logitScale);
  const lse = (v: number[]) => {
    const m = Math.max(...v);
    return m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
  };
  let i2t = 0;
  let t2i = 0;
  for (let i = 0; i < n; i++) {
    i2t += lse(L[i]!) - L[i]![i]!;
    t2i += lse(L.map((row) => row[i]!)) - L[i]![i]!;
  }
  return (i2t / n + t2i / n) / 2;
}

/** Small deterministic generator (Numerical Recipes LCG), values rounded to float32. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround((s / 2 ** 32) * 2 - 1);
  };
}

for (const backend of BACKENDS) {
  describe(`clipLoss / InfoNCE on the ${backend} backend`, () => {
    before(async () => {
      await useBackend(backend);
    });

    for (const c of CASES) {
      it(`matches infonce.json case ${c.name}`, (t) => {
        assert.equal(tf.getBackend(), backend);
        const { img, txt, ls } = inputs(c);
        const ref = c.f64;

        const terms = clipLossTerms(img, txt, ls);
        expectClose(t, `${backend} ${c.name} loss`, terms.loss, ref.loss);
        expectClose(t, `${backend} ${c.name} loss_i2t`, terms.lossImageToText, ref.loss_i2t);
        expectClose(t, `${backend} ${c.name} loss_t2i`, terms.lossTextToImage, ref.loss_t2i);

        const loss = clipLoss(img, txt, ls);
        expectClose(t, `${backend} ${c.name} clipLoss`, loss, ref.loss);

        const { logitsPerImage, logitsPerText } = clipLogits(img, txt, ls);
        expectClose(t, `${backend} ${c.name} logits`, logitsPerImage, ref.logits);
        // logits_per_text is not stored: it is the transpose of the stored logits, taken in JS so
        // that the float64 references are not rounded to float32 on the way.
        const [n, m] = ref.logits.shape as [number, number];
        const refTransposed: number[] = [];
        for (let j = 0; j < m; j++) for (let i = 0; i < n; i++) refTransposed.push(ref.logits.data[i * m + j]!);
        expectClose(t, `${backend} ${c.name} logitsPerText`, logitsPerText, { shape: [m, n], dtype: "float64", data: refTransposed });

        const fromLogits = infoNceFromLogits(logitsPerImage);
        expectClose(t, `${backend} ${c.name} infoNceFromLogits`, fromLogits, ref.loss);

        const [gI, gT, gS] = tf.grads((a: tf.Tensor, b: tf.Tensor, s: tf.Tensor) =>
          clipLoss(a as tf.Tensor2D, b as tf.Tensor2D, s as tf.Scalar),
        )([img, txt, ls]);
        expectClose(t, `${backend} ${c.name} grad_image_emb`, gI!, ref.grad_image_emb);
        expectClose(t, `${backend} ${c.name} grad_text_emb`, gT!, ref.grad_text_emb);
        expectClose(t, `${backend} ${c.name} grad_logit_scale`, gS!, ref.grad_logit_scale);
        // d/dscale = d/dlogitScale / scale (chain rule through scale = exp(logitScale)).
        expectClose(t, `${backend} ${c.name} grad_scale`, gS!.dataSync()[0]! / Math.exp(c.logit_scale), ref.grad_scale);

        tf.dispose([img, txt, ls, terms, loss, logitsPerImage, logitsPerText, fromLogits, gI, gT, gS]);
      });
    }

    it("gives the same gradients through tf.variableGrads (training path)", () => {
      const c = CASES.find((x) => x.name.startsWith("n6_"))!;
      const { img, txt, ls } = inputs(c);
      const vI = tf.variable(img, true, `vI_${backend}`);
      const vT = tf.variable(txt, true, `vT_${backend}`);
      const vS = tf.variable(ls, true, `vS_${backend}`);
      const { value, grads } = tf.variableGrads(() => clipLoss(vI as tf.Tensor2D, vT as tf.Tensor2D, vS as tf.Scalar), [vI, vT, vS]);
      const ref = c.f64;
      assert.ok(Math.abs(value.dataSync()[0]! - ref.loss) <= tolerance([ref.loss]));
      assert.ok(maxAbsDiff(grads[vI.name]!.dataSync(), ref.grad_image_emb.data) <= tolerance(ref.grad_image_emb.data));
      assert.ok(maxAbsDiff(grads[vT.name]!.dataSync(), ref.grad_text_emb.data) <= tolerance(ref.grad_text_emb.data));
      assert.ok(Math.abs(grads[vS.name]!.dataSync()[0]! - ref.grad_logit_scale) <= tolerance([ref.grad_logit_scale]));
      tf.dispose([img, txt, ls, vI, vT, vS, value, grads]);
    });

    it("stays finite and accurate at logits up to 1000 (exp overflows float32 past 88.7)", (t) => {
      const rnd = lcg(12345);
      const n = 8;
      const d = 16;
      const img = Array.from({ length: n }, () => Array.from({ length: d }, rnd));
      // Half the texts are close to their images (matched logits near +1000), the others are
      // unrelated, and the last text is close to image 0 (a confident wrong match).
      const txt = img.map((r, i) => (i < n / 2 ? r.map((x) => Math.fround(x + 0.3 * rnd())) : r.map(() => rnd())));
      txt[n - 1] = img[0]!.map((x) => Math.fround(x + 0.1 * rnd()));
      const logitScale = Math.fround(Math.log(1000));
      const ref = clipLossF64(img, txt, logitScale);
      const I = tf.tensor2d(img);
      const T = tf.tensor2d(txt);
      const S = tf.scalar(logitScale);
      const loss = clipLoss(I, T, S);
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, s: tf.Tensor) => clipLoss(a as tf.Tensor2D, b as tf.Tensor2D, s as tf.Scalar))([I, T, S]);
      assert.ok(ref > 10, `the reference loss ${ref} should be far from 0`);
      expectClose(t, `${backend} scale1000 loss`, loss, ref);
      for (const g of grads) assert.ok(Array.from(g.dataSync()).every(Number.isFinite), "finite gradient");
      tf.dispose([I, T, S, loss, grads]);
    });

    it("leaks no tensor across 5 calls of the loss, the logits and the gradients", () => {
      const c = CASES.find((x) => x.name.startsWith("n5_"))!;
      const { img, txt, ls } = inputs(c);
      const gradFn = tf.grads((a: tf.Tensor, b: tf.Tensor, s: tf.Tensor) =>
        clipLoss(a as tf.Tensor2D, b as tf.Tensor2D, s as tf.Scalar),
      );
      const base = tf.memory().numTensors;
      for (let k = 0; k < 5; k++) {
        const loss = clipLoss(img, txt, ls);
        assert.equal(tf.memory().numTensors, base + 1, "clipLoss returns exactly one tensor");
        loss.dispose();

        const terms = clipLossTerms(img, txt, ls);
        assert.equal(tf.memory().numTensors, base + 3, "clipLossTerms returns exactly three tensors");
        tf.dispose(terms);

        const logits = clipLogits(img, txt, ls);
        assert.equal(tf.memory().numTensors, base + 2, "clipLogits returns exactly two tensors");
        const fromLogits = infoNceFromLogits(logits.logitsPerImage);
        assert.equal(tf.memory().numTensors, base + 3, "infoNceFromLogits returns exactly one tensor");
        tf.dispose([logits, fromLogits]);

        const grads = gradFn([img, txt, ls]);
        assert.equal(tf.memory().numTensors, base + 3, "tf.grads returns exactly three tensors");
        tf.dispose(grads);

        assert.equal(tf.memory().numTensors, base, `iteration ${k}`);
      }
      // A call that throws must not leak either.
      const bad = tf.zeros([3, 7]) as tf.Tensor2D;
      const withBad = tf.memory().numTensors;
      assert.throws(() => clipLoss(img, bad, ls));
      assert.equal(tf.memory().numTensors, withBad);
      tf.dispose([bad, img, txt, ls]);
    });

    it("rejects mismatched or malformed shapes with a one-line message naming the argument", () => {
      const i35 = tf.zeros([3, 5]) as tf.Tensor2D;
      const t35 = tf.ones([3, 5]) as tf.Tensor2D;
      const t45 = tf.ones([4, 5]) as tf.Tensor2D;
      const t36 = tf.ones([3, 6]) as tf.Tensor2D;
      const r1 = tf.ones([5]) as unknown as tf.Tensor2D;
      const r3 = tf.ones([1, 3, 5]) as unknown as tf.Tensor2D;
      const empty = tf.zeros([0, 5]) as tf.Tensor2D;
      const ints = tf.ones([3, 5], "int32") as tf.Tensor2D;
      const s = tf.scalar(1);
      const s1 = tf.ones([1]) as unknown as tf.Scalar;
      const sq = tf.ones([3, 4]) as tf.Tensor2D;

      const expectErr = assertThrowsOneLine;

      expectErr(() => clipLoss(i35, t45, s), /^clipLoss: textFeatures shape \[4, 5\] must equal imageFeatures shape \[3, 5\]/);
      expectErr(() => clipLoss(i35, t36, s), /^clipLoss: textFeatures shape \[3, 6\] must equal imageFeatures shape \[3, 5\]/);
      expectErr(() => clipLoss(r1, t35, s), /^clipLoss: imageFeatures must have rank 2 .*got shape \[5\]/);
      expectErr(() => clipLoss(i35, r3, s), /^clipLoss: textFeatures must have rank 2 .*got shape \[1, 3, 5\]/);
      expectErr(() => clipLoss(empty, empty, s), /^clipLoss: imageFeatures needs N >= 1.*got shape \[0, 5\]/);
      expectErr(() => clipLoss(ints, t35, s), /^clipLoss: imageFeatures must be float32, got int32/);
      expectErr(() => clipLoss(i35, t35, s1), /^clipLoss: logitScale must be a scalar \(shape \[\]\), got shape \[1\]/);
      expectErr(() => clipLossTerms(i35, t45, s), /^clipLoss: textFeatures shape \[4, 5\]/);
      expectErr(() => clipLogits(i35, t36, s), /^clipLogits: textFeatures shape \[3, 6\] must have the same D/);
      expectErr(() => clipLogits(i35, t35, s1), /^clipLogits: logitScale must be a scalar/);
      expectErr(() => infoNceFromLogits(sq), /^infoNceFromLogits: logits must be square .*got shape \[3, 4\]/);
      expectErr(() => infoNceFromLogits(r1), /^infoNceFromLogits: logits must have rank 2 .*got shape \[5\]/);

      // Different numbers of images and texts are fine for the logits (zero-shot use).
      const ok = clipLogits(i35.add(1) as tf.Tensor2D, t45, s);
      assert.deepEqual(ok.logitsPerImage.shape, [3, 4]);
      assert.deepEqual(ok.logitsPerText.shape, [4, 3]);
      tf.dispose([ok, i35, t35, t45, t36, r1, r3, empty, ints, s, s1, sq]);
    });
  });
}

after(() => {
  tf.disposeVariables();
});
