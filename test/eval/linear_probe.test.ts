/** The linear probe and the k-shot sampler. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { trainLinearProbe } from "../../src/eval/linear_probe";
import { sampleFewShot } from "../../src/eval/few_shot";
import { Random } from "../../src/util/random";
import { assertThrowsOneLine } from "../helpers/errors";

/** n points per class around 3 well separated directions in 8-D (separable by a margin). */
function separable(nPerClass: number, seed: number): { x: Float32Array; y: Int32Array } {
  const rng = new Random(seed);
  const d = 8;
  const x = new Float32Array(3 * nPerClass * d);
  const y = new Int32Array(3 * nPerClass);
  for (let i = 0; i < 3 * nPerClass; i++) {
    y[i] = i % 3;
    for (let j = 0; j < d; j++) x[i * d + j] = 0.15 * rng.normal() + (j === y[i] ? 1 : 0);
  }
  return { x, y };
}

describe("trainLinearProbe", () => {
  it("reaches 100% on a separable toy, train and held out; deterministic", () => {
    const train = separable(10, 1);
    const test = separable(100, 2);
    const probe = trainLinearProbe(train.x, train.y, 3, { l2: 1e-3 });
    assert.equal(probe.evaluate(train.x, train.y).top1, 1);
    assert.equal(probe.evaluate(test.x, test.y).top1, 1);
    assert.deepEqual(trainLinearProbe(train.x, train.y, 3, { l2: 1e-3 }).weights, probe.weights);
  });

  it("converges to a stationary point of the regularised objective", () => {
    const train = separable(5, 3);
    const probe = trainLinearProbe(train.x, train.y, 3, { l2: 0.1, maxIterations: 5000, tolerance: 1e-9 });
    assert.ok(probe.iterations < 5000, "stopped on the gradient tolerance");
    // Perturbing any weight raises the objective (first-order check by central differences ~ 0).
    const obj = (w: Float64Array): number => {
      let loss = 0;
      const d = 8;
      for (let i = 0; i < train.y.length; i++) {
        const row = Array.from(train.x.subarray(i * d, (i + 1) * d));
        const norm = Math.hypot(...row);
        const z = [0, 1, 2].map((k) => probe.bias[k] + row.reduce((s, v, j) => s + w[k * d + j] * (v / norm), 0));
        const m = Math.max(...z);
        loss += m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0)) - z[train.y[i]];
      }
      return loss / train.y.length + 0.05 * w.reduce((s, v) => s + v * v, 0);
    };
    for (const j of [0, 7, 13]) {
      const up = Float64Array.from(probe.weights);
      const down = Float64Array.from(probe.weights);
      up[j] += 1e-4;
      down[j] -= 1e-4;
      assert.ok(Math.abs((obj(up) - obj(down)) / 2e-4) < 1e-5, `gradient at ${j}`);
    }
  });

  it("bad inputs are one-line errors", () => {
    assertThrowsOneLine(() => trainLinearProbe(new Float32Array(0), [], 3), /no training examples/);
    assertThrowsOneLine(() => trainLinearProbe(new Float32Array(5), [0, 1], 3), /5 values, not a multiple of 2 labels/);
    assertThrowsOneLine(() => trainLinearProbe(new Float32Array([1, 0, 0, 0]), [0, 1], 3), /feature row 1 has norm 0/);
    assertThrowsOneLine(() => trainLinearProbe(new Float32Array([1, 1]), [0, 3], 3), /labels\[1\] = 3/);
    assertThrowsOneLine(() => trainLinearProbe(new Float32Array([1, 1]), [0, 1], 3, { l2: 0 }), /l2 must be a positive number, got 0/);
  });
});

describe("sampleFewShot", () => {
  it("k per class from the pool, seeded; k larger than a class's images is an error naming it", () => {
    const labels = Uint8Array.from({ length: 40 }, (_, i) => i % 4);
    const pool = Int32Array.from({ length: 30 }, (_, i) => i + 10);
    const a = sampleFewShot(labels, 4, 5, { seed: 1, pool });
    assert.equal(a.length, 20);
    assert.deepEqual(Array.from(a, (i) => labels[i]), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
    assert.ok(a.every((i) => i >= 10), "only pool indices");
    assert.equal(new Set(a).size, 20);
    assert.deepEqual(sampleFewShot(labels, 4, 5, { seed: 1, pool }), a);
    assert.notDeepEqual(sampleFewShot(labels, 4, 5, { seed: 2, pool }), a);
    assertThrowsOneLine(
      () => sampleFewShot(labels, 4, 8, { pool, classNames: ["t-shirt", "trouser", "pullover", "dress"] }),
      /k = 8 shots requested but class 0 \("t-shirt"\) has only 7 training images available/,
    );
    assertThrowsOneLine(() => sampleFewShot(labels, 4, 0), /k must be a positive integer, got 0/);
  });
});
