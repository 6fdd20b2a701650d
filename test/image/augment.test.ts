/**
 * open_clip's training augmentation: RandomResizedCrop's sampling (torchvision's rules), the
 * AugmentationCfg checks, and reproducibility from a seed. The resampling and colour arithmetic
 * are checked against Pillow in pillow_fixture.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { augmentStored, randomResizedCropBox, resizedCrop, resolveAugmentation } from "../../src/image/augment";
import type { StoredImage } from "../../src/image/stored";
import { Random, mixSeed } from "../../src/util/random";

const img: StoredImage = { width: 50, height: 40, mode: "RGB", data: Uint8Array.from({ length: 50 * 40 * 3 }, (_, i) => (i * 37 + ((i / 150) | 0) * 11) % 256) };

test("resolveAugmentation: open_clip's defaults and field names", () => {
  const a = resolveAugmentation({});
  assert.deepEqual(a.scale, [0.9, 1.0]);
  assert.deepEqual(a.ratio, [3 / 4, 4 / 3]);
  assert.equal(a.brightness, null);
  assert.equal(a.colorJitterProb, 0);
  const b = resolveAugmentation({ scale: [0.5, 1], color_jitter: [0.4, 0.4, 0.4, 0.1], color_jitter_prob: 0.8, gray_scale_prob: 0.2 });
  assert.deepEqual(b.brightness, [0.6, 1.4]);
  assert.deepEqual(b.hue, [-0.1, 0.1]);
  assert.deepEqual(resolveAugmentation({ color_jitter: 0.3, color_jitter_prob: 1 }).hue, null);
  assert.deepEqual(resolveAugmentation({ color_jitter: [1.5, 0, 0, 0], color_jitter_prob: 1 }).brightness, [0, 2.5], "lower end clipped at 0, as torchvision");
});

test("resolveAugmentation: one-line errors naming the field", () => {
  const cases: [object, RegExp][] = [
    [{ scale: [1.2, 1.3] }, /^aug_cfg\.scale must be \[low, high\] with 0 <= low <= high <= 1, got \[1\.2,1\.3\]$/],
    [{ ratio: [2, 1] }, /^aug_cfg\.ratio must be \[low, high\] with 0 < low <= high/],
    [{ color_jitter: [0.4, 0.4, 0.4, 0.1] }, /color_jitter is set but color_jitter_prob is not/],
    [{ color_jitter_prob: 0.5 }, /color_jitter_prob is set but color_jitter is not/],
    [{ color_jitter: [0.1, 0.1, 0.1, 0.7], color_jitter_prob: 1 }, /hue must be in \[0, 0\.5\], got 0\.7/],
    [{ gray_scale_prob: 2 }, /gray_scale_prob must be a probability in \[0, 1\], got 2/],
    [{ re_prob: 0.25 }, /re_prob needs timm's transform/],
    [{ scales: [0.9, 1] }, /unknown key "scales"; valid keys: scale, ratio, color_jitter, color_jitter_prob, gray_scale_prob/],
  ];
  for (const [cfg, re] of cases) {
    assert.throws(() => resolveAugmentation(cfg as never), (e: Error) => !e.message.includes("\n") && re.test(e.message), JSON.stringify(cfg));
  }
});

test("RandomResizedCrop boxes: inside the image, area fraction in scale (up to rounding), aspect in ratio", () => {
  const rng = new Random(5);
  for (let k = 0; k < 500; k++) {
    const b = randomResizedCropBox(40, 50, [0.3, 1], [3 / 4, 4 / 3], rng);
    assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= 40 && b.left + b.width <= 50, JSON.stringify(b));
    const frac = (b.width * b.height) / 2000;
    assert.ok(frac > 0.27 && frac <= 1.0, `area fraction ${frac}`);
    const aspect = b.width / b.height;
    assert.ok(aspect > 0.7 && aspect < 1.43, `aspect ${aspect}`);
  }
});

test("RandomResizedCrop falls back to the ratio-clamped centre crop after 10 failed attempts", () => {
  // A 1-pixel-high strip: no crop of area >= 90% with aspect <= 4/3 fits, so every attempt fails.
  const b = randomResizedCropBox(1, 100, [0.9, 1], [3 / 4, 4 / 3], new Random(1));
  assert.deepEqual(b, { top: 0, left: 49, height: 1, width: 1 }); // w = round(1 * 4/3) = 1, centred: (100 - 1) // 2
  const tall = randomResizedCropBox(100, 2, [0.9, 1], [3 / 4, 4 / 3], new Random(1));
  assert.deepEqual(tall, { top: 48, left: 0, height: 3, width: 2 }); // h = round(2 / (3/4)) = round(2.67) = 3; (100 - 3) // 2 = 48
});

test("augmentStored: the same seed gives the same view; other seeds other views; size x size RGB", () => {
  const aug = resolveAugmentation({ scale: [0.5, 1], color_jitter: [0.4, 0.4, 0.4, 0.1], color_jitter_prob: 0.8, gray_scale_prob: 0.2 });
  const seed = mixSeed(7, 2, 31); // (seed, epoch, index)
  const a = augmentStored(img, 24, aug, new Random(seed));
  const b = augmentStored(img, 24, aug, new Random(seed));
  assert.equal(a.length, 24 * 24 * 3);
  assert.deepEqual(a, b);
  const c = augmentStored(img, 24, aug, new Random(mixSeed(7, 3, 31)));
  assert.notDeepEqual(a, c);
});

test("augmentStored: with no jitter and scale (1, 1) on a 4:3-ratio-free square, it is the plain resize", () => {
  const sq: StoredImage = { width: 30, height: 30, mode: "RGB", data: img.data.subarray(0, 30 * 30 * 3) };
  const aug = resolveAugmentation({ scale: [1, 1], ratio: [1, 1] });
  const got = augmentStored(sq, 16, aug, new Random(3));
  assert.deepEqual(got, resizedCrop(sq, { top: 0, left: 0, height: 30, width: 30 }, 16));
});

test("gray_scale_prob 1 gives three equal channels; colour jitter prob 1 changes pixels", () => {
  const grey = augmentStored(img, 16, resolveAugmentation({ gray_scale_prob: 1 }), new Random(1));
  for (let i = 0; i < grey.length; i += 3) assert.ok(grey[i] === grey[i + 1] && grey[i] === grey[i + 2]);
  const plain = augmentStored(img, 16, resolveAugmentation({}), new Random(1));
  const jit = augmentStored(img, 16, resolveAugmentation({ color_jitter: [0.5, 0.5, 0.5, 0.2], color_jitter_prob: 1 }), new Random(1));
  assert.notDeepEqual(plain, jit);
});
