/** Corruptions: identity at severity 0, monotone in severity, seeded, in range, one-line errors. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { corrupt, corruptionSpecs, jpegQuantTable, listCorruptions, type Severity } from "../../src/audit/robustness/corruptions";
import { greyImages01 } from "../../src/audit/robustness/audit";
import { loadFashionMnist } from "../../src/data/fashion_mnist";
import { assertThrowsOneLine } from "../helpers/errors";
import { useTestBackend } from "../eval/fake_clip";

before(useTestBackend);

/** 16 real Fashion-MNIST test images, [16, 28, 28, 1] in [0, 1]. */
function realImages(): tf.Tensor4D {
  return greyImages01(loadFashionMnist("test", { limit: 16 }), 0, 16);
}

function meanAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

describe("corrupt", () => {
  it("lists the ten kinds of the issue (crop and occlusion separately)", () => {
    assert.deepEqual(listCorruptions(), [
      "gaussian_noise", "shot_noise", "blur", "contrast", "brightness", "pixelate", "jpeg", "crop", "occlusion", "rotation", "translation",
    ]);
    for (const spec of corruptionSpecs()) assert.equal(spec.severities.length, 5, spec.name);
  });

  it("severity 0 is an exact copy, for every corruption", () => {
    const x = realImages();
    const values = x.dataSync().slice();
    for (const name of listCorruptions()) {
      const y = corrupt(x, name, 0, 3);
      assert.notEqual(y, x);
      assert.deepEqual(y.dataSync(), values, name);
      y.dispose();
    }
    x.dispose();
  });

  it("stronger severity changes the images more (mean |y - x| strictly increasing), values stay in [0, 1]", () => {
    const x = realImages();
    for (const name of listCorruptions()) {
      const distances: number[] = [];
      for (const s of [1, 2, 3, 4, 5] as Severity[]) {
        const y = corrupt(x, name, s, 0);
        assert.deepEqual(y.shape, x.shape);
        const v = y.dataSync();
        for (let i = 0; i < v.length; i++) assert.ok(v[i] >= 0 && v[i] <= 1, `${name} ${s}: value ${v[i]}`);
        distances.push(meanAbsDiff(x, y));
        y.dispose();
      }
      assert.ok(distances[0] > 0, `${name}: severity 1 changes the images`);
      for (let i = 1; i < 5; i++) assert.ok(distances[i] > distances[i - 1], `${name}: distances ${distances.map((d) => d.toFixed(4)).join(" ")}`);
    }
    x.dispose();
  });

  it("is seeded: the same seed repeats, another seed differs for the random corruptions", () => {
    const x = realImages();
    for (const name of ["gaussian_noise", "shot_noise", "crop", "occlusion", "rotation", "translation"]) {
      const a = corrupt(x, name, 3, 5);
      const b = corrupt(x, name, 3, 5);
      const c = corrupt(x, name, 3, 6);
      assert.deepEqual(a.dataSync(), b.dataSync(), name);
      assert.notDeepEqual(a.dataSync(), c.dataSync(), name);
      tf.dispose([a, b, c]);
    }
    x.dispose();
  });

  it("works on RGB images and leaks no tensor", () => {
    const x = tf.tidy(() => tf.tile(realImages(), [1, 1, 1, 3]) as tf.Tensor4D); // [16, 28, 28, 3]
    const start = tf.memory().numTensors;
    for (const name of listCorruptions()) {
      const y = corrupt(x, name, 2, 1);
      assert.deepEqual(y.shape, [16, 28, 28, 3]);
      assert.ok(meanAbsDiff(x, y) > 0, name);
      y.dispose();
    }
    assert.equal(tf.memory().numTensors, start);
    x.dispose();
  });

  it("JPEG: IJG tables (quality 50 = the Annex K table), flat 8x8 blocks survive the coarsest quality", () => {
    const q50 = jpegQuantTable([16, 11, 10], 50);
    assert.deepEqual(Array.from(q50), [16, 11, 10]);
    assert.deepEqual(Array.from(jpegQuantTable([16, 11, 10], 10)), [80, 55, 50]);
    // A 16x16 image of four flat 8x8 blocks: only DC terms, exactly representable at 8 bits.
    const flat = new Float32Array(256);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) flat[y * 16 + x] = [64, 128, 192, 255][(y >> 3) * 2 + (x >> 3)] / 255;
    const img = tf.tensor4d(flat, [1, 16, 16, 1]);
    const y = corrupt(img, "jpeg", 5, 0);
    const got = y.dataSync();
    for (let i = 0; i < 256; i++) assert.ok(Math.abs(got[i] - flat[i]) <= 8 / 255, `pixel ${i}: ${got[i] * 255} vs ${flat[i] * 255}`);
    tf.dispose([img, y]);
  });

  it("rejects bad input with one line naming the argument", () => {
    const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
    assertThrowsOneLine(() => corrupt(x, "fog", 1), /unknown corruption "fog"; valid names: gaussian_noise, shot_noise, .*translation$/);
    assertThrowsOneLine(() => corrupt(x, "blur", 6 as Severity), /severity must be an integer 0-5.*got 6/);
    assertThrowsOneLine(() => corrupt(x, "blur", -1 as Severity), /severity must be an integer 0-5/);
    assertThrowsOneLine(() => corrupt(x, "blur", 1.5 as Severity), /severity must be an integer 0-5/);
    assertThrowsOneLine(() => corrupt(x, "blur", 1, -2), /seed must be a non-negative integer/);
    const big = tf.fill([1, 2, 2, 1], 255) as tf.Tensor4D;
    assertThrowsOneLine(() => corrupt(big, "blur", 1), /images01 must hold values in \[0, 1\].*found 255/);
    const r3 = tf.zeros([4, 4, 1]);
    assertThrowsOneLine(() => corrupt(r3 as unknown as tf.Tensor4D, "blur", 1), /images01 must be a non-empty \[B, H, W, C\] tensor, got shape \[4, 4, 1\]/);
    tf.dispose([x, big, r3]);
  });
});
