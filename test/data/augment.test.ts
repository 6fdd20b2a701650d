/** Augmentations (src/data/augment.ts). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AUGMENT_KEYS, augmentBatch, augmentImage, validateAugmentConfig, type AugmentConfig } from "../../src/data/augment";
import { Random } from "../../src/util/random";
import { syntheticImages } from "./util";

const data = syntheticImages(64, 5);
const H = 28;
const W = 28;
const one = data.images.subarray(0, H * W);
const FULL: AugmentConfig = { shift: 3, flip: 0.5, rotate: 15, noise: 0.05, contrast: 0.3 };

function mirror(img: Uint8Array): Uint8Array {
  const out = new Uint8Array(img.length);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[y * W + x] = img[y * W + (W - 1 - x)];
  return out;
}

describe("augment", () => {
  it("zero strength is the identity, for uint8 and float input", () => {
    for (const cfg of [{}, { shift: 0, flip: 0, rotate: 0, noise: 0, contrast: 0 }, { flipClasses: [1] }]) {
      const out = augmentBatch(data.images, data.labels, H, W, cfg, new Random(1));
      assert.deepEqual(out, Float32Array.from(data.images));
      const f = Float32Array.from(one, (v) => v / 255);
      assert.deepEqual(augmentImage(f, H, W, cfg, new Random(2)), f);
    }
  });

  it("is deterministic by seed and differs between seeds", () => {
    const a = augmentBatch(data.images, data.labels, H, W, FULL, new Random(9));
    const b = augmentBatch(data.images, data.labels, H, W, FULL, new Random(9));
    const c = augmentBatch(data.images, data.labels, H, W, FULL, new Random(10));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it("keeps shapes and the value range", () => {
    const out = augmentBatch(data.images, data.labels, H, W, FULL, new Random(3));
    assert.ok(out instanceof Float32Array);
    assert.equal(out.length, data.images.length);
    for (const v of out) assert.ok(v >= 0 && v <= 255);
    const f = augmentImage(Float32Array.from(one, (v) => v / 255), H, W, FULL, new Random(3));
    assert.equal(f.length, H * W);
    for (const v of f) assert.ok(v >= 0 && v <= 1);
    // Writing into a bigger buffer at an offset leaves the rest alone.
    const buf = new Float32Array(3 * H * W).fill(-1);
    augmentImage(data.images, H, W, FULL, new Random(3), { srcOffset: H * W, out: buf, outOffset: H * W, label: data.labels[1] });
    assert.ok(buf.subarray(0, H * W).every((v) => v === -1));
    assert.ok(buf.subarray(2 * H * W).every((v) => v === -1));
    assert.deepEqual(buf.subarray(H * W, 2 * H * W), augmentImage(data.images, H, W, FULL, new Random(3), { srcOffset: H * W, label: data.labels[1] }));
  });

  it("flip mirrors, only for the listed classes", () => {
    assert.deepEqual(augmentImage(one, H, W, { flip: 1 }, new Random(1)), Float32Array.from(mirror(one)));
    assert.deepEqual(augmentImage(one, H, W, { flip: 1, flipClasses: [3, 4] }, new Random(1), { label: 4 }), Float32Array.from(mirror(one)));
    assert.deepEqual(augmentImage(one, H, W, { flip: 1, flipClasses: [3, 4] }, new Random(1), { label: 5 }), Float32Array.from(one));
    assert.throws(() => augmentImage(one, H, W, { flip: 1, flipClasses: [3] }, new Random(1)), /label is needed/);
    // About half the images flip with probability 0.5.
    const rng = new Random(4);
    let flipped = 0;
    const m = Float32Array.from(mirror(one));
    for (let i = 0; i < 400; i++) if (augmentImage(one, H, W, { flip: 0.5 }, rng).every((v, j) => v === m[j])) flipped++;
    assert.ok(flipped > 160 && flipped < 240, `${flipped} of 400 flipped`);
  });

  it("shift translates by whole pixels within the limit, filling with black", () => {
    const rng = new Random(8);
    const seen = new Set<string>();
    for (let t = 0; t < 200; t++) {
      const out = augmentImage(one, H, W, { shift: 2 }, rng);
      let found = "";
      for (let dy = -2; dy <= 2 && !found; dy++) {
        for (let dx = -2; dx <= 2 && !found; dx++) {
          let ok = true;
          for (let y = 0; y < H && ok; y++) {
            for (let x = 0; x < W && ok; x++) {
              const sx = x - dx;
              const sy = y - dy;
              const want = sx >= 0 && sx < W && sy >= 0 && sy < H ? one[sy * W + sx] : 0;
              ok = out[y * W + x] === want;
            }
          }
          if (ok) found = `${dx},${dy}`;
        }
      }
      assert.ok(found, "output is not a shifted copy");
      seen.add(found);
    }
    assert.equal(seen.size, 25, "every shift in [-2, 2]^2 occurs");
  });

  it("rotation is bilinear about the centre: mass is roughly kept, and flip commutes with mirroring the input", () => {
    // A centred blob so that nothing rotates out of the frame.
    const blob = new Uint8Array(H * W);
    for (let y = 8; y < 20; y++) for (let x = 10; x < 18; x++) blob[y * W + x] = 200;
    const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);
    const rng = new Random(2);
    for (let i = 0; i < 20; i++) {
      const out = augmentImage(blob, H, W, { rotate: 20 }, rng);
      assert.ok(Math.abs(sum(out) / sum(blob) - 1) < 0.02, `mass ratio ${sum(out) / sum(blob)}`);
    }
    for (let s = 0; s < 10; s++) {
      const a = augmentImage(one, H, W, { rotate: 20, flip: 1, shift: 2 }, new Random(s));
      const b = augmentImage(mirror(one), H, W, { rotate: 20, shift: 2 }, new Random(s));
      for (let j = 0; j < a.length; j++) assert.ok(Math.abs(a[j] - b[j]) < 1e-3, `pixel ${j}: ${a[j]} vs ${b[j]}`);
    }
  });

  it("noise has the configured standard deviation; contrast keeps the mean", () => {
    const grey = new Uint8Array(H * W).fill(128);
    const out = augmentImage(grey, H, W, { noise: 0.04 }, new Random(1));
    const mean = out.reduce((s, v) => s + v, 0) / out.length;
    const sd = Math.sqrt(out.reduce((s, v) => s + (v - mean) ** 2, 0) / out.length);
    assert.ok(Math.abs(mean - 128) < 1, `mean ${mean}`);
    assert.ok(Math.abs(sd - 0.04 * 255) < 1, `sd ${sd}`);
    const two = new Uint8Array(H * W).map((_, i) => (i % 2 ? 100 : 150));
    const rng = new Random(3);
    for (let i = 0; i < 20; i++) {
      const c = augmentImage(two, H, W, { contrast: 0.5 }, rng);
      const m = c.reduce((s, v) => s + v, 0) / c.length;
      assert.ok(Math.abs(m - 125) < 1e-3);
      const spread = c[0] - c[1];
      assert.ok(Math.abs(spread) >= 25 - 1e-3 && Math.abs(spread) <= 75 + 1e-3, `spread ${spread}`);
    }
  });

  it("validates the config in one line, listing the valid keys", () => {
    assert.throws(() => validateAugmentConfig({ rotation: 10 }), (e: Error) => {
      assert.equal(e.message, `augment: unknown key "rotation"; valid keys: ${AUGMENT_KEYS.join(", ")}`);
      return true;
    });
    assert.throws(() => validateAugmentConfig({ rotate: -1 }), /^RangeError: augment\.rotate must be a number in \[0, 180\], got -1$/);
    assert.throws(() => validateAugmentConfig({ shift: 1.5 }), /augment\.shift must be an integer in \[0, 1000\], got 1\.5/);
    assert.throws(() => validateAugmentConfig({ flip: "yes" }), /augment\.flip must be a number in \[0, 1\], got "yes"/);
    assert.throws(() => validateAugmentConfig({ flipClasses: [1, -2] }), /augment\.flipClasses must be an array of non-negative integer labels/);
    assert.throws(() => validateAugmentConfig(null), /augment: expected an object with keys shift, flip/);
    assert.throws(() => augmentBatch(data.images, null, H, W, { noise: 2 }, new Random(1)), /augment\.noise must be a number in \[0, 1\], got 2/);
  });
});
