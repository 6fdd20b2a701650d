/**
 * preprocessImage / loadImages end to end on generated PNGs, checked pixel by pixel against a
 * direct computation of CLIP's `_transform`: resize short side, centre crop, normalise.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs";
import { decodeImage } from "../../src/image/decode";
import { resizeBicubic } from "../../src/image/resize";
import { CLIP_MEAN, CLIP_STD, loadImages, preprocessImage } from "../../src/image/preprocess";

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "cliplab-preprocess-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A smooth-ish colour pattern with some edges, [h, w, 3]. */
function scene(h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      out[i] = Math.round((255 * x) / (w - 1));
      out[i + 1] = Math.round((255 * y) / (h - 1));
      out[i + 2] = (x >> 2) % 2 === (y >> 2) % 2 ? 230 : 20;
    }
  return out;
}

async function writePng(name: string, h: number, w: number, data: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
  return path;
}

/** `(u8/255 - mean)/std` in float32, one value. */
function norm(v: number, ch: number): number {
  const f = Math.fround;
  return f(f(f(v / 255) - f(CLIP_MEAN[ch])) / f(CLIP_STD[ch]));
}

test("landscape PNG: shape and pixels against resize -> crop -> normalise done by hand", async () => {
  const h = 30, w = 40, size = 16;
  const src = scene(h, w);
  const img = await decodeImage(await writePng("landscape.png", h, w, src));
  const out = preprocessImage(img, size);
  assert.ok(out instanceof Float32Array);
  assert.equal(out.length, size * size * 3);

  // Resize(16): short side 30 -> 16, long side int(16 * 40 / 30) = int(21.33) = 21.
  const rh = 16, rw = 21;
  const resized = resizeBicubic(src, h, w, 3, rh, rw);
  // CenterCrop(16): top = round(0 / 2) = 0, left = round(5 / 2) = round(2.5) = 2 (half to even).
  const top = 0, left = 2;
  for (const [y, x] of [[0, 0], [0, 15], [7, 8], [15, 0], [15, 15], [3, 11]]) {
    for (let ch = 0; ch < 3; ch++) {
      const u = resized[((top + y) * rw + (left + x)) * 3 + ch];
      assert.ok(Object.is(out[(y * size + x) * 3 + ch], norm(u, ch)), `pixel (${y},${x}) channel ${ch}`);
    }
  }
});

test("portrait PNG with an odd excess: crop rounds halves to even", async () => {
  // 37x24 -> Resize(8): width 24 -> 8, height int(8 * 37 / 24) = int(12.33) = 12;
  // top = round((12 - 8) / 2) = 2. Then 8x8.
  const h = 37, w = 24, size = 8;
  const src = scene(h, w);
  const out = preprocessImage(await decodeImage(await writePng("portrait.png", h, w, src)), size);
  const resized = resizeBicubic(src, h, w, 3, 12, 8);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let ch = 0; ch < 3; ch++)
        assert.ok(Object.is(out[(y * size + x) * 3 + ch], norm(resized[((2 + y) * 8 + x) * 3 + ch], ch)));
  // Resize(11) of a 16x21 image -> 11x14 (int(14.44)); the excess of 3 gives
  // left = round(3 / 2) = round(1.5) = 2, rounded up this time because 2 is even.
  const s2 = scene(16, 21);
  const out2 = preprocessImage({ width: 21, height: 16, data: s2 }, 11);
  const r2 = resizeBicubic(s2, 16, 21, 3, 11, 14);
  assert.ok(Object.is(out2[0], norm(r2[2 * 3], 0)));
});

test("an image already size x size is only normalised", async () => {
  const src = scene(12, 12);
  const out = preprocessImage({ width: 12, height: 12, data: src }, 12);
  for (let i = 0; i < src.length; i++) assert.ok(Object.is(out[i], norm(src[i], i % 3)));
});

test("custom mean/std", () => {
  const src = new Uint8Array([0, 51, 255, 255, 0, 51, 51, 255, 0, 0, 0, 0]);
  const out = preprocessImage({ width: 2, height: 2, data: src }, 2, { mean: [0, 0, 0], std: [1, 1, 1] });
  assert.deepEqual([...out], [...src].map((v) => Math.fround(v / 255)));
});

test("loadImages: [B, size, size, 3] tensor equal to preprocessImage per file, in order", async () => {
  const a = await writePng("a.png", 20, 30, scene(20, 30));
  const b = await writePng("b.png", 25, 10, scene(25, 10));
  const c = await writePng("c.png", 9, 9, scene(9, 9));
  const paths = [a, b, c, a, b];
  const t = await loadImages(paths, 9);
  try {
    assert.deepEqual(t.shape, [5, 9, 9, 3]);
    assert.equal(t.dtype, "float32");
    const got = t.dataSync();
    for (let i = 0; i < paths.length; i++) {
      const want = preprocessImage(await decodeImage(paths[i]), 9);
      assert.deepEqual(got.subarray(i * want.length, (i + 1) * want.length), want, `image ${i}`);
    }
  } finally {
    t.dispose();
  }
  await assert.rejects(loadImages([a, join(dir, "missing.png")], 9), /file not found: .*missing\.png/);
});

test("size validation: one-line error naming size and the value", async () => {
  const img = { width: 2, height: 2, data: new Uint8Array(12) };
  for (const bad of [0, -3, 1.5, NaN, Infinity, "224"]) {
    assert.throws(
      () => preprocessImage(img, bad as number),
      (err: Error) => /^preprocessImage: size must be a positive integer, got \S+$/.test(err.message),
      String(bad),
    );
  }
  assert.throws(() => preprocessImage(img, "224" as unknown as number), /got "224"/);
  await assert.rejects(loadImages(["x.png"], 0), /loadImages: size must be a positive integer, got 0/);
  assert.throws(() => preprocessImage({ width: 2, height: 2, data: new Uint8Array(11) }, 2), /img\.data/);
  const numTensors = tf.memory().numTensors;
  await assert.rejects(loadImages(["x.png"], -1));
  assert.equal(tf.memory().numTensors, numTensors, "no tensor leaked on failure");
});
