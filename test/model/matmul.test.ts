/** matMul2d and linear(): same values and gradients as tf.matMul (+ bias), on cpu and wasm. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { matMul2d } from "../../src/model/matmul";
import { linear } from "../../src/model/layers";
import { assertClose, useBackend } from "../helpers/fixtures";

for (const backend of ["cpu", "wasm"] as const) {
  describe(`matMul2d on ${backend}`, () => {
    it("matches tf.matMul forward and backward", async () => {
      await useBackend(backend);
      const a = tf.randomNormal([37, 19], 0, 1, "float32", 1) as tf.Tensor2D;
      const b = tf.randomNormal([19, 23], 0, 1, "float32", 2) as tf.Tensor2D;
      const w = tf.randomNormal([37, 23], 0, 1, "float32", 3);
      const loss = (f: (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.mul(f(x as tf.Tensor2D, y as tf.Tensor2D), w));
      const [gaRef, gbRef] = tf.grads(loss((x, y) => tf.matMul(x, y)))([a, b]);
      const [ga, gb] = tf.grads(loss(matMul2d))([a, b]);
      assertClose(matMul2d(a, b), tf.matMul(a, b).dataSync(), "value", 1e-6);
      assertClose(ga, gaRef.dataSync(), "dA", 1e-6);
      assertClose(gb, gbRef.dataSync(), "dB", 1e-6);
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        tf.grads(loss(matMul2d))([a, b]);
      });
      assert.equal(tf.memory().numTensors, before);
    });

    it("linear() with a bias (3-D input) matches tf.matMul + tf.add forward and backward, x, W and b", async () => {
      await useBackend(backend);
      const x = tf.randomNormal([3, 5, 7], 0, 1, "float32", 4);
      const wt = tf.randomNormal([7, 6], 0, 1, "float32", 5);
      const b = tf.randomNormal([6], 0, 1, "float32", 6);
      const r = tf.randomNormal([3, 5, 6], 0, 1, "float32", 7);
      const ref = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.add(tf.reshape(tf.matMul(tf.reshape(xx, [15, 7]) as tf.Tensor2D, ww as tf.Tensor2D), [3, 5, 6]), bb);
      const loss = (f: typeof ref) => (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(f(xx, ww, bb), r));
      assertClose(linear(x, wt, b), ref(x, wt, b).dataSync(), "value", 1e-6);
      const want = tf.grads(loss(ref))([x, wt, b]);
      const got = tf.grads(loss(linear))([x, wt, b]);
      ["dx", "dW", "db"].forEach((what, i) => assertClose(got[i], want[i].dataSync(), what, 1e-5));
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        tf.grads(loss(linear))([x, wt, b]);
      });
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([x, wt, b, r, ...want, ...got]);
    });
  });
}
