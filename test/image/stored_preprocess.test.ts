/**
 * preprocessStored's mode rules and geometry, checked by hand on small images, and the
 * Fashion-MNIST "pad" path against the Batcher the default recipe (88.48%) trained with.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Batcher } from "../../src/data/batcher";
import { getModelConfig } from "../../src/model/registry";
import { modelTransform } from "../../src/model/config";
import { preprocessStored, preprocessStoredNormalized, pyRound, normalizePixels } from "../../src/image/preprocess";
import { resolveTransform } from "../../src/image/transform";
import { premultiplyAlpha, unpremultiplyAlpha, hsvToRgb, rgbToHsv } from "../../src/image/convert";
import { resampleInt, resampleNearest } from "../../src/image/resample";
import type { StoredImage } from "../../src/image/stored";
import { realSplit } from "../data/util";

test("Fashion-MNIST: 28x28 'L' under the default recipe's transform (pad, 32) equals Batcher.pixelsFor exactly", () => {
  const t = modelTransform(getModelConfig("RN-Micro-32"));
  assert.equal(t.resizeMode, "pad");
  assert.equal(t.size, 32);
  const data = realSplit("test");
  const batcher = new Batcher(data, { batchSize: 1, seed: 0, imageSize: t.size, captions: null });
  const indices = [0, 1, 2, 17, 4242, 9999];
  const want = batcher.pixelsFor(indices);
  const per = 32 * 32 * 3;
  indices.forEach((idx, b) => {
    const img: StoredImage = { width: 28, height: 28, mode: "L", data: data.images.subarray(idx * 784, (idx + 1) * 784) };
    const got = preprocessStoredNormalized(img, t);
    assert.equal(got.length, per);
    assert.deepEqual(got, want.subarray(b * per, (b + 1) * per), `image ${idx}`);
  });
});

test("pad: an image that fits is centred at floor((S - side) / 2) on fill_color, unresampled; a larger one goes 'shortest'", () => {
  const img: StoredImage = { width: 3, height: 2, mode: "L", data: Uint8Array.from([10, 20, 30, 40, 50, 60]) };
  const got = preprocessStored(img, resolveTransform(6, { resize_mode: "pad", fill_color: 7 }));
  // rows 2..3, columns 1..3 hold the image; every other pixel is 7.
  for (let y = 0; y < 6; y++) {
    for (let x = 0; x < 6; x++) {
      const inside = y >= 2 && y < 4 && x >= 1 && x < 4;
      const v = inside ? img.data[(y - 2) * 3 + (x - 1)] : 7;
      assert.deepEqual([...got.subarray((y * 6 + x) * 3, (y * 6 + x) * 3 + 3)], [v, v, v], `${y},${x}`);
    }
  }
  const big: StoredImage = { width: 9, height: 5, mode: "RGB", data: Uint8Array.from({ length: 135 }, (_, i) => (i * 29) % 256) };
  assert.deepEqual(preprocessStored(big, resolveTransform(4, { resize_mode: "pad" })), preprocessStored(big, resolveTransform(4, { resize_mode: "shortest" })));
});

test("RGBA: transparent pixels go black when resized (premultiplied), keep their colour when not resized", () => {
  // 4x1: two opaque red pixels, two fully transparent green ones.
  const img: StoredImage = { width: 4, height: 1, mode: "RGBA", data: Uint8Array.from([255, 0, 0, 255, 255, 0, 0, 255, 0, 255, 0, 0, 0, 255, 0, 0]) };
  const squash = preprocessStored(img, resolveTransform(4, { resize_mode: "squash" })); // 4x1 -> 4x4: width unchanged, height resampled
  for (let y = 0; y < 4; y++) {
    assert.deepEqual([...squash.subarray(y * 12, y * 12 + 12)], [255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0], `row ${y}`);
  }
  const padded = preprocessStored(img, resolveTransform(4, { resize_mode: "pad" })); // no resampling: green kept
  assert.deepEqual([...padded.subarray(4 * 3 + 6, 4 * 3 + 9)], [0, 255, 0]);
});

test("premultiply / un-premultiply: Pillow's MULDIV255 and truncating division", () => {
  const px = Uint8Array.from([200, 100, 7, 128, 50, 60, 70, 0, 9, 9, 9, 255]);
  const pre = premultiplyAlpha(px, 4);
  // MULDIV255(200, 128) = t = 25728, ((t >> 8) + t) >> 8 = 100
  assert.deepEqual([...pre], [100, 50, 4, 128, 0, 0, 0, 0, 9, 9, 9, 255]);
  assert.deepEqual([...unpremultiplyAlpha(pre, 4)], [199, 99, 7, 128, 0, 0, 0, 0, 9, 9, 9, 255]); // 255*100/128 = 199.2 -> 199
  assert.deepEqual([...premultiplyAlpha(Uint8Array.from([255, 51]), 2)], [51, 51]);
});

test("palette ('P') images resize with nearest whatever the interpolation; 'L' with it", () => {
  const data = Uint8Array.from({ length: 6 * 6 * 3 }, (_, i) => ((i / 3) | 0) % 2 ? 255 : 0);
  const p: StoredImage = { width: 6, height: 6, mode: "P", data };
  const out = preprocessStored(p, resolveTransform(4, { resize_mode: "squash" }));
  assert.ok(out.every((v) => v === 0 || v === 255), "nearest: only palette colours");
  const l: StoredImage = { width: 6, height: 6, mode: "L", data: Uint8Array.from({ length: 36 }, (_, i) => (i % 2 ? 255 : 0)) };
  const outL = preprocessStored(l, resolveTransform(4, { resize_mode: "squash" }));
  assert.ok(outL.some((v) => v !== 0 && v !== 255), "bicubic mixes levels");
});

test("16-bit grey ('I;16'): resized in 32-bit, clipped to 0-255 only at the conversion", () => {
  const img: StoredImage = { width: 2, height: 1, mode: "I;16", data: Uint16Array.from([100, 60000]) };
  const out = preprocessStored(img, resolveTransform(2, { resize_mode: "squash" })); // 2x1 -> 2x2: one row resampled into two
  assert.deepEqual([...out], [100, 100, 100, 255, 255, 255, 100, 100, 100, 255, 255, 255]);
  // BILINEAR 4 -> 2 weighs pixels 0, 1, 2 by 3/7, 3/7, 1/7 for output 0: with 500 at pixel 1 that
  // is round(500 * 3/7) = 214 in 32-bit; clipping the input to 255 first would give 109.
  const wide: StoredImage = { width: 4, height: 1, mode: "I;16", data: Uint16Array.from([0, 500, 0, 500]) };
  const r = resampleInt(Int32Array.from(wide.data), 1, 4, 1, 1, 2, "bilinear");
  assert.equal(r[0], 214);
  const t2 = resolveTransform(2, { resize_mode: "squash", interpolation: "bilinear" });
  assert.equal(preprocessStored(wide, t2)[0], 214);
});

test("shortest: 480x640 -> 224 is Resize(224) to 224x298, then the centre crop; longest pads to a square", () => {
  const img: StoredImage = { width: 640, height: 480, mode: "RGB", data: Uint8Array.from({ length: 640 * 480 * 3 }, (_, i) => (i * 7) % 251) };
  const out = preprocessStored(img, resolveTransform(224, {}));
  assert.equal(out.length, 224 * 224 * 3);
  const longest = preprocessStored({ width: 8, height: 4, mode: "L", data: new Uint8Array(32).fill(200) }, resolveTransform(4, { resize_mode: "longest", fill_color: 9 }));
  // 8x4 -> 4x2, padded top 1, bottom 1.
  const rows = [0, 1, 2, 3].map((y) => longest[y * 12]);
  assert.deepEqual(rows, [9, 200, 200, 9]);
});

test("nearest and bilinear hand checks; pyRound is Python's round", () => {
  // NEAREST 4 -> 3: xo = 4/3 * (i + 0.5) -> 0.67, 2.0, 3.33 -> indices 0, 2, 3.
  assert.deepEqual([...resampleNearest(Uint8Array.from([10, 20, 30, 40]), 1, 4, 1, 1, 3)], [10, 30, 40]);
  // BILINEAR 2 -> 1 (support 2): equal weights.
  assert.deepEqual([...resampleInt(Uint8Array.from([10, 21]), 1, 2, 1, 1, 1, "bilinear")], [16]);
  assert.deepEqual([0.5, 1.5, 2.5, 2.4999, 2.5001, 3.5].map(pyRound), [0, 2, 2, 2, 3, 4]);
});

test("Pillow's 8-bit HSV: greys and primaries round-trip exactly", () => {
  const rgb = Uint8Array.from([0, 0, 0, 77, 77, 77, 255, 0, 0, 0, 0, 255, 200, 100, 50]);
  const hsv = rgbToHsv(rgb);
  assert.deepEqual([...hsv.subarray(0, 12)], [0, 0, 0, 0, 0, 77, 0, 255, 255, 170, 255, 255]); // blue: h = 4/6 -> trunc(0.6666667f * 255) = 170
  const back = hsvToRgb(hsv);
  assert.deepEqual([...back.subarray(0, 12)], [0, 0, 0, 77, 77, 77, 255, 0, 0, 0, 0, 255]);
});

test("preprocessStoredNormalized is normalizePixels of preprocessStored with the transform's mean/std", () => {
  const img: StoredImage = { width: 5, height: 7, mode: "RGB", data: Uint8Array.from({ length: 105 }, (_, i) => (i * 41) % 256) };
  const t = resolveTransform(4, { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] });
  assert.deepEqual(preprocessStoredNormalized(img, t), normalizePixels(preprocessStored(img, t), t.mean, t.std));
});

test("bad input: one-line errors naming the argument", () => {
  const t = resolveTransform(4, {});
  assert.throws(() => preprocessStored({ width: 2, height: 2, mode: "RGB", data: new Uint8Array(5) }, t), /^RangeError: preprocessStored: img: data must be a Uint8Array of 2\*2\*3 values for mode RGB, got 5$/);
  assert.throws(() => preprocessStored({ width: 2, height: 2, mode: "CMYK" as never, data: new Uint8Array(16) }, t), /mode "CMYK" is not one of L, LA, RGB, RGBA, P, I;16/);
  assert.throws(() => preprocessStored({ width: 1, height: 1, mode: "L", data: new Uint8Array(1) }, { ...t, resizeMode: "fit" as never }), /resizeMode must be shortest, longest, squash or pad, got "fit"/);
});
