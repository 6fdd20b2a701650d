/**
 * normalizePixels against the reference fixtures (see test/fixtures/README.md, "Images"):
 * `tiny_*.images_u8.bin` is uint8 RGB NHWC and `tiny_*.images_f32.bin` the torchvision
 * `ToTensor` + `Normalize` output with CLIP's mean/std, float32 LE NCHW. Our output is NHWC, so
 * the reference is transposed before a bit-for-bit comparison.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CLIP_MEAN, CLIP_STD, normalizePixels, preprocessImage } from "../../src/image/preprocess";

const FIXTURES = join(__dirname, "..", "fixtures");

interface Fixture {
  name: string;
  n: number;
  size: number;
  u8: Uint8Array; // [n, size, size, 3]
  f32nhwc: Float32Array; // [n, size, size, 3], transposed from the NCHW file
  mean: number[];
  std: number[];
}

function loadFixture(name: string): Fixture {
  const expected = JSON.parse(readFileSync(join(FIXTURES, `${name}.expected.json`), "utf8"));
  const [n, c, h, w] = expected.images.shape_nchw as number[];
  assert.equal(c, 3);
  assert.equal(h, w);
  const u8 = new Uint8Array(readFileSync(join(FIXTURES, `${name}.images_u8.bin`)));
  assert.equal(u8.length, n * h * w * 3);
  const raw = readFileSync(join(FIXTURES, `${name}.images_f32.bin`));
  assert.equal(raw.length, n * c * h * w * 4);
  // DataView: the Buffer may not be 4-byte aligned, and the file is little-endian by definition.
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const f32nhwc = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const nchw = ((b * c + ch) * h + y) * w + x;
          const nhwc = ((b * h + y) * w + x) * c + ch;
          f32nhwc[nhwc] = dv.getFloat32(nchw * 4, true);
        }
  return { name, n, size: h, u8, f32nhwc, mean: expected.images.mean, std: expected.images.std };
}

/** Index of the first element whose float32 bit pattern differs, or -1. */
function firstBitMismatch(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

for (const name of ["tiny_vit", "tiny_rn"]) {
  const fx = loadFixture(name);

  test(`${name}: fixture mean/std are CLIP_MEAN/CLIP_STD`, () => {
    assert.deepEqual(fx.mean, [...CLIP_MEAN]);
    assert.deepEqual(fx.std, [...CLIP_STD]);
  });

  test(`${name}: normalizePixels is bit-exact against images_f32.bin`, () => {
    const got = normalizePixels(fx.u8, CLIP_MEAN, CLIP_STD);
    assert.equal(got.length, fx.f32nhwc.length);
    const i = firstBitMismatch(got, fx.f32nhwc);
    assert.equal(i, -1, i < 0 ? "" : `element ${i}: got ${got[i]}, want ${fx.f32nhwc[i]}`);
  });

  test(`${name}: normalizePixels defaults to CLIP mean/std`, () => {
    assert.equal(firstBitMismatch(normalizePixels(fx.u8), fx.f32nhwc), -1);
  });

  test(`${name}: preprocessImage at the native size is bit-exact (resize and crop are identities)`, () => {
    const per = fx.size * fx.size * 3;
    for (let b = 0; b < fx.n; b++) {
      const img = { width: fx.size, height: fx.size, data: fx.u8.slice(b * per, (b + 1) * per) };
      const got = preprocessImage(img, fx.size);
      assert.equal(firstBitMismatch(got, fx.f32nhwc.subarray(b * per, (b + 1) * per)), -1, `image ${b}`);
    }
  });
}

test("normalizePixels: a float64 expression rounded once is not what torch computes", () => {
  // Guards the reason for rounding every step: if this ever stopped differing somewhere, the
  // bit-exact test above would no longer be testing the per-step rounding.
  let differs = 0;
  for (let ch = 0; ch < 3; ch++)
    for (let v = 0; v < 256; v++) {
      const once = Math.fround((v / 255 - CLIP_MEAN[ch]) / CLIP_STD[ch]);
      const px = new Uint8Array([0, 0, 0]);
      px[ch] = v;
      if (!Object.is(once, normalizePixels(px)[ch])) differs++;
    }
  assert.ok(differs > 0);
});

test("normalizePixels: validation", () => {
  assert.throws(() => normalizePixels(new Uint8Array(4)), /not a multiple of 3 channels/);
  assert.throws(() => normalizePixels(new Uint8Array(3), [0, 0, 0], [1, 0, 1]), /std\[1\]/);
  assert.throws(() => normalizePixels(new Uint8Array(3), [0, 0], [1, 1, 1]), /mean and std/);
  // One channel works when mean/std say so.
  assert.deepEqual([...normalizePixels(new Uint8Array([0, 255]), [0], [1])], [0, 1]);
});
