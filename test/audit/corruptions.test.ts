/**
 * The corruption registry and cliplab's own set ("cliplab/..." ids) on RGB images of any size:
 * identity at severity 0, monotone in severity (at 28 and 64 px), seeded per image (batch by
 * batch = whole), the blur scaled with the side, in range, sets and names resolved, one-line
 * errors. ImageNet-C's corruptions: corruptions_imagenet_c.test.ts; their toolkit:
 * corruptions_toolkit.test.ts.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  CORRUPTION_SETS, DEFAULT_CORRUPTION_SET, REFERENCE_SIDE, corrupt, corruptionSpecs, jpegQuantTable, listCorruptionSets, listCorruptions, resolveCorruptions, type Severity,
} from "../../src/audit/robustness/corruptions";
import { loadFashionMnist } from "../../src/data/fashion_mnist";
import { assertThrowsOneLine } from "../helpers/errors";
import { useTestBackend } from "../eval/fake_clip";

before(useTestBackend);

/** Per-image tints: real Fashion-MNIST pixels in colour, so the three channels differ. */
const TINTS = [[1, 0.4, 0.2], [0.3, 0.9, 0.5], [0.5, 0.6, 1], [1, 1, 0.3]];

/** 16 real Fashion-MNIST test images tinted RGB, [16, size, size, 3] in [0, 1] (bilinear resize from 28 px). */
function realImages(size = 28): tf.Tensor4D {
  const d = loadFashionMnist("test", { limit: 16 });
  const values = new Float32Array(16 * 28 * 28 * 3);
  for (let b = 0; b < 16; b++) {
    const tint = TINTS[b % TINTS.length];
    for (let i = 0; i < 28 * 28; i++) for (let k = 0; k < 3; k++) values[(b * 784 + i) * 3 + k] = (d.images[b * 784 + i] / 255) * tint[k];
  }
  return tf.tidy(() => {
    const x = tf.tensor4d(values, [16, 28, 28, 3]);
    return (size === 28 ? x : tf.clipByValue(tf.image.resizeBilinear(x, [size, size]), 0, 1)) as tf.Tensor4D;
  });
}

/** Nearest-neighbour upscale by an integer factor. */
function upscale(x: tf.Tensor4D, f: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  return tf.image.resizeNearestNeighbor(x, [h * f, w * f]);
}

function meanAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

const CLIPLAB = listCorruptions("cliplab");

describe("corruption registry", () => {
  it("three sets: ImageNet-C's 15 (the default), its 4 extras, cliplab's 11; every corruption has 5 severities", () => {
    assert.deepEqual([...CORRUPTION_SETS], ["imagenet-c", "imagenet-c-extra", "cliplab"]);
    assert.equal(DEFAULT_CORRUPTION_SET, "imagenet-c");
    assert.deepEqual(listCorruptions("imagenet-c"), [
      "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
      "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    ]);
    assert.deepEqual(listCorruptions("imagenet-c-extra"), ["speckle_noise", "gaussian_blur", "spatter", "saturate"]);
    assert.equal(listCorruptions().length, 30);
    assert.deepEqual(listCorruptionSets().map((s) => [s.name, s.corruptions.length]), [["imagenet-c", 15], ["imagenet-c-extra", 4], ["cliplab", 11]]);
    for (const spec of corruptionSpecs()) {
      assert.equal(spec.severities.length, 5, spec.name);
      assert.ok(spec.scaling.length > 0 && spec.parameter.length > 0, spec.name);
      if (spec.parameterNames) for (const p of spec.severities) assert.equal((p as number[]).length, spec.parameterNames.length, spec.name);
    }
  });

  it("resolves sets and names (comma lists as --corruptions takes them), in order, without duplicates", () => {
    assert.deepEqual(resolveCorruptions("imagenet-c"), listCorruptions("imagenet-c"));
    assert.deepEqual(resolveCorruptions("fog,imagenet-c-extra,fog, cliplab/blur"), ["fog", "speckle_noise", "gaussian_blur", "spatter", "saturate", "cliplab/blur"]);
    assert.deepEqual(resolveCorruptions(["cliplab", "gaussian_noise"]), [...CLIPLAB, "gaussian_noise"]);
    assertThrowsOneLine(() => resolveCorruptions("imagenet-d"), /^resolveCorruptions: unknown corruption "imagenet-d"; valid names: gaussian_noise, .* \(or a set: imagenet-c, imagenet-c-extra, cliplab\)$/);
    assertThrowsOneLine(() => resolveCorruptions(" , "), /^resolveCorruptions: no corruptions given; name a set \(imagenet-c, imagenet-c-extra, cliplab\) or corruptions$/);
    assertThrowsOneLine(() => listCorruptions("nope" as never), /^listCorruptions: unknown corruption set "nope"; valid sets: imagenet-c, imagenet-c-extra, cliplab$/);
  });
});

describe("corrupt (the cliplab set)", () => {
  it("lists the ten kinds of the issue (crop and occlusion separately), prefixed cliplab/", () => {
    assert.deepEqual(CLIPLAB, [
      "gaussian_noise", "shot_noise", "blur", "contrast", "brightness", "pixelate", "jpeg", "crop", "occlusion", "rotation", "translation",
    ].map((n) => `cliplab/${n}`));
    for (const spec of corruptionSpecs("cliplab")) assert.equal(spec.severities.length, 5, spec.name);
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

  for (const size of [28, 64]) {
  it(`stronger severity changes the images more (mean |y - x| strictly increasing), values stay in [0, 1], at ${size} px RGB`, () => {
    const x = realImages(size);
    for (const name of CLIPLAB) {
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
  }

  it("is seeded per image: corrupting batch by batch (firstIndex = the batch's start) equals corrupting the whole set", () => {
    const x = realImages();
    for (const name of ["gaussian_noise", "shot_noise", "crop", "occlusion", "rotation", "translation", "blur", "jpeg"].map((n) => `cliplab/${n}`)) {
      const whole = corrupt(x, name, 4, 9);
      const parts = [0, 5, 11].map((s, i, starts) => {
        const end = starts[i + 1] ?? 16;
        const part = tf.slice(x, [s, 0, 0, 0], [end - s, -1, -1, -1]) as tf.Tensor4D;
        const y = corrupt(part, name, 4, 9, s);
        part.dispose();
        return y;
      });
      const joined = tf.concat(parts, 0);
      assert.deepEqual(joined.dataSync(), whole.dataSync(), name);
      // Without the offset the second batch repeats the first images' draws instead.
      const second = tf.slice(x, [5, 0, 0, 0], [6, -1, -1, -1]) as tf.Tensor4D;
      const wrong = corrupt(second, name, 4, 9);
      if (["gaussian_noise", "shot_noise", "crop", "occlusion", "rotation", "translation"].map((n) => `cliplab/${n}`).includes(name)) {
        assert.notDeepEqual(wrong.dataSync(), parts[1].dataSync(), `${name}: firstIndex changes the draws`);
      }
      tf.dispose([whole, joined, second, wrong, ...parts]);
    }
    x.dispose();
  });

  it(`scales the blur sigma with the image side (given for ${REFERENCE_SIDE} px)`, () => {
    // A 2x nearest upscale blurred at 56 px is close to the 28 px blur upscaled; an unscaled sigma would blur half as much.
    const x28 = realImages();
    const x56 = upscale(x28, 2);
    for (const s of [3, 5] as Severity[]) {
      const b28 = corrupt(x28, "cliplab/blur", s, 0);
      const b28up = upscale(b28, 2);
      const b56 = corrupt(x56, "cliplab/blur", s, 0);
      const scaledGap = meanAbsDiff(b56, b28up);
      const blurAmount = meanAbsDiff(b28up, x56);
      assert.ok(scaledGap < 0.35 * blurAmount, `severity ${s}: |blur56 - up(blur28)| = ${scaledGap.toFixed(4)}, blur itself ${blurAmount.toFixed(4)}`);
      tf.dispose([b28, b28up, b56]);
    }
    const spec = corruptionSpecs().find((c) => c.name === "cliplab/blur")!;
    assert.match(spec.parameter, /28 px image \(applied as sigma \* side \/ 28\)/);
    tf.dispose([x28, x56]);
  });

  it("is seeded: the same seed repeats, another seed differs for the random corruptions", () => {
    const x = realImages();
    for (const name of [...["gaussian_noise", "shot_noise", "crop", "occlusion", "rotation", "translation"].map((n) => `cliplab/${n}`), "impulse_noise", "glass_blur"]) {
      const a = corrupt(x, name, 3, 5);
      const b = corrupt(x, name, 3, 5);
      const c = corrupt(x, name, 3, 6);
      assert.deepEqual(a.dataSync(), b.dataSync(), name);
      assert.notDeepEqual(a.dataSync(), c.dataSync(), name);
      tf.dispose([a, b, c]);
    }
    x.dispose();
  });

  it("works on non-square RGB images and leaks no tensor, for every corruption of every set", () => {
    // 4 images (the layers of ImageNet-C's weather are drawn on a 224 px grid per image).
    const x = tf.tidy(() => tf.slice(realImages(40), [0, 0, 0, 0], [4, 40, 33, -1]) as tf.Tensor4D); // [4, 40, 33, 3]
    const start = tf.memory().numTensors;
    for (const name of listCorruptions()) {
      const y = corrupt(x, name, 2, 1);
      assert.deepEqual(y.shape, [4, 40, 33, 3]);
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
    // A 16x16 RGB image of four flat 8x8 blocks (grey and coloured): only DC terms, exactly representable at 8 bits.
    const colours = [[64, 64, 64], [128, 40, 200], [192, 192, 192], [255, 255, 255]];
    const flat = new Float32Array(256 * 3);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) for (let k = 0; k < 3; k++) flat[(y * 16 + x) * 3 + k] = colours[(y >> 3) * 2 + (x >> 3)][k] / 255;
    const img = tf.tensor4d(flat, [1, 16, 16, 3]);
    const y = corrupt(img, "cliplab/jpeg", 5, 0);
    const got = y.dataSync();
    for (let i = 0; i < flat.length; i++) assert.ok(Math.abs(got[i] - flat[i]) <= 8 / 255, `value ${i}: ${got[i] * 255} vs ${flat[i] * 255}`);
    tf.dispose([img, y]);
  });

  it("rejects bad input with one line naming the argument", () => {
    const x = tf.zeros([1, 4, 4, 3]) as tf.Tensor4D;
    assertThrowsOneLine(() => corrupt(x, "fogg", 1), /unknown corruption "fogg"; valid names: gaussian_noise, shot_noise, .*cliplab\/translation \(or a set: imagenet-c, imagenet-c-extra, cliplab\)$/);
    assertThrowsOneLine(() => corrupt(x, "blur", 1), /unknown corruption "blur"; valid names: .*cliplab\/blur/);
    assertThrowsOneLine(() => corrupt(x, "cliplab/blur", 6 as Severity), /severity must be an integer 0-5.*got 6/);
    assertThrowsOneLine(() => corrupt(x, "cliplab/blur", -1 as Severity), /severity must be an integer 0-5/);
    assertThrowsOneLine(() => corrupt(x, "fog", 1.5 as Severity), /severity must be an integer 0-5/);
    assertThrowsOneLine(() => corrupt(x, "cliplab/blur", 1, -2), /seed must be a non-negative integer/);
    assertThrowsOneLine(() => corrupt(x, "snow", 1, 0, -1), /^corrupt: firstIndex must be an integer >= 0, got -1$/);
    const big = tf.fill([1, 2, 2, 3], 255) as tf.Tensor4D;
    assertThrowsOneLine(() => corrupt(big, "cliplab/blur", 1), /images01 must hold values in \[0, 1\].*found 255/);
    const r3 = tf.zeros([4, 4, 1]);
    assertThrowsOneLine(() => corrupt(r3 as unknown as tf.Tensor4D, "cliplab/blur", 1), /images01 must be a non-empty \[B, H, W, C\] tensor, got shape \[4, 4, 1\]/);
    const grey = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
    assertThrowsOneLine(() => corrupt(grey, "frost", 1), /^corrupt: images01 must be RGB \[B, H, W, 3\], got shape \[2, 4, 4, 1\]/);
    tf.dispose([x, big, r3, grey]);
  });
});
