/** matMul2d: same values and gradients as tf.matMul, on cpu and wasm. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { matMul2d } from "../../src/model/matmul";
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
  });
}
