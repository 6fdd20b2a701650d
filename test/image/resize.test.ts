/**
 * resizeBicubic (Pillow's antialiased BICUBIC) and the torchvision geometry around it:
 * short-side resize shapes and centre-crop offsets.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { bicubicKernel, resampleWeights, resizeBicubic } from "../../src/image/resize";
import { centerCrop, centerCropOffsets, shortSideResizeShape } from "../../src/image/preprocess";

/** Keys cubic, a = -0.5, written out independently of the implementation. */
function cubic(x: number): number {
  const t = Math.abs(x);
  if (t < 1) return 1.5 * t ** 3 - 2.5 * t ** 2 + 1;
  if (t < 2) return -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2;
  return 0;
}

/** Pillow's uint8 store: round half up, clip. */
const u8 = (v: number): number => Math.min(255, Math.max(0, Math.floor(v + 0.5)));

function pattern(h: number, w: number, c: number, seed = 1): Uint8Array {
  const out = new Uint8Array(h * w * c);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0; // small LCG: deterministic, no dependency
    out[i] = s >>> 24;
  }
  return out;
}

test("bicubicKernel matches the cubic formula and its known values", () => {
  for (let x = -2.5; x <= 2.5; x += 0.03125) assert.ok(Math.abs(bicubicKernel(x) - cubic(x)) < 1e-15, `x=${x}`);
  assert.equal(bicubicKernel(0), 1);
  assert.ok(bicubicKernel(1) === 0); // may be -0, which is fine for a weight
  assert.ok(bicubicKernel(2) === 0);
  assert.equal(bicubicKernel(0.25), 0.8671875);
  assert.equal(bicubicKernel(0.75), 0.2265625);
  assert.equal(bicubicKernel(1.25), -0.0703125);
});

test("identity when the size does not change (uint8 and float32)", () => {
  const src = pattern(5, 7, 3);
  const got = resizeBicubic(src, 5, 7, 3, 5, 7);
  assert.deepEqual(got, src);
  assert.notEqual(got, src, "returns a copy, not the input");
  // Buffer#slice aliases; the copy must not. (The cast works around @types/node 20.9's Buffer
  // not being assignable to TS 5.9's Uint8Array<ArrayBufferLike>.)
  const buf = Buffer.from(src) as unknown as Uint8Array;
  const copy = resizeBicubic(buf, 5, 7, 3, 5, 7);
  buf[0] ^= 0xff;
  assert.equal(copy[0], src[0]);
  const f = Float32Array.from(src, (v) => v / 7);
  assert.deepEqual(resizeBicubic(f, 5, 7, 3, 5, 7), f);
});

test("a constant image stays constant, down and up, square and not", () => {
  for (const [h, w, oh, ow] of [
    [10, 10, 3, 3],
    [9, 13, 4, 5],
    [4, 6, 11, 17],
    [7, 3, 2, 9],
    [1, 1, 5, 4],
  ]) {
    const src = new Uint8Array(h * w * 3).fill(173);
    const got = resizeBicubic(src, h, w, 3, oh, ow);
    assert.equal(got.length, oh * ow * 3);
    assert.ok(got.every((v) => v === 173), `${h}x${w} -> ${oh}x${ow}`);
    const fsrc = new Float32Array(h * w * 2).fill(0.3);
    const fgot = resizeBicubic(fsrc, h, w, 2, oh, ow);
    assert.ok(fgot.every((v) => Math.abs(v - 0.3) < 1e-6), `float ${h}x${w} -> ${oh}x${ow}`);
  }
});

test("4 -> 2 downscale: antialiased window and weights computed by hand", () => {
  // scale = 2, so the kernel is stretched by 2 (support 4). Output 0 has centre 1.0; its window is
  // [trunc(1 - 4 + 0.5), trunc(1 + 4 + 0.5)) = [-2, 5) clipped to [0, 4), and pixel x gets
  // cubic((x - 1 + 0.5) / 2): x = 0..3 -> cubic(-0.25), cubic(0.25), cubic(0.75), cubic(1.25).
  // Output 1 (centre 3.0) gets the mirror image.
  const w0 = [0.8671875, 0.8671875, 0.2265625, -0.0703125];
  assert.deepEqual(w0, [-0.25, 0.25, 0.75, 1.25].map(cubic));
  const sum0 = w0.reduce((a, b) => a + b);
  assert.equal(sum0, 1.890625);
  const w1 = [...w0].reverse();

  const row = [0, 100, 200, 255];
  const want0 = (0 * w0[0] + 100 * w0[1] + 200 * w0[2] + 255 * w0[3]) / sum0; // 60.35
  const want1 = (0 * w1[0] + 100 * w1[1] + 200 * w1[2] + 255 * w1[3]) / sum0; // 220.68
  assert.deepEqual([...resizeBicubic(new Uint8Array(row), 1, 4, 1, 1, 2)], [60, 221]);
  assert.deepEqual([u8(want0), u8(want1)], [60, 221]);

  // The same along the vertical axis, and float32 keeps the unrounded values.
  assert.deepEqual([...resizeBicubic(new Uint8Array(row), 4, 1, 1, 2, 1)], [60, 221]);
  const f = resizeBicubic(new Float32Array(row), 1, 4, 1, 1, 2);
  assert.ok(Math.abs(f[0] - want0) < 1e-4 && Math.abs(f[1] - want1) < 1e-4, `${f}`);

  // The weight table says the same.
  const rw = resampleWeights(4, 2);
  assert.deepEqual([...rw.start], [0, 0]);
  assert.deepEqual([...rw.count], [4, 4]);
  for (let k = 0; k < 4; k++) {
    assert.ok(Math.abs(rw.weights[k] - w0[k] / sum0) < 1e-15);
    assert.ok(Math.abs(rw.weights[rw.taps + k] - w1[k] / sum0) < 1e-15);
  }
});

test("4x4 -> 2x2: horizontal pass first, rounded to uint8, then vertical (as Pillow)", () => {
  const src = pattern(4, 4, 1, 7);
  const w0 = [-0.25, 0.25, 0.75, 1.25].map(cubic);
  const s = w0.reduce((a, b) => a + b);
  const taps = [w0.map((v) => v / s), [...w0].reverse().map((v) => v / s)];
  // Horizontal: [4, 4] -> [4, 2], rounded.
  const mid: number[][] = [];
  for (let y = 0; y < 4; y++) mid.push(taps.map((t) => u8(t.reduce((a, wk, x) => a + wk * src[y * 4 + x], 0))));
  // Vertical: [4, 2] -> [2, 2], rounded.
  const want: number[] = [];
  for (const t of taps) for (let x = 0; x < 2; x++) want.push(u8(t.reduce((a, wk, y) => a + wk * mid[y][x], 0)));
  assert.deepEqual([...resizeBicubic(src, 4, 4, 1, 2, 2)], want);
});

test("2 -> 4 upscale: plain kernel, overshoot clipped for uint8, kept for float32", () => {
  // scale = 0.5: no stretching (support 2). Centres 0.25, 0.75, 1.25, 1.75. Output 0 reads
  // x = 0, 1 with cubic(0.25), cubic(1.25) (sum 0.796875); output 1 reads cubic(-0.25), cubic(0.75).
  const want = [
    (255 * cubic(1.25)) / (cubic(0.25) + cubic(1.25)), // -22.5: undershoot
    (255 * cubic(0.75)) / (cubic(-0.25) + cubic(0.75)), // 52.82
  ];
  want.push(255 - want[1], 255 - want[0]);
  assert.deepEqual(want, [-22.5, 52.82142857142857, 202.17857142857144, 277.5]);
  assert.deepEqual([...resizeBicubic(new Uint8Array([0, 255]), 1, 2, 1, 1, 4)], [0, 53, 202, 255]);
  const f = resizeBicubic(new Float32Array([0, 255]), 2, 1, 1, 4, 1);
  assert.deepEqual([...f], want.map(Math.fround));
});

/**
 * Pillow's own expected outputs for BICUBIC (Tests/test_image_resample.py in python-pillow/Pillow,
 * `TestImagingCoreResampleAccuracy` and `TestCoreResampleCoefficients`). The case image is
 * n x n: top-left and bottom-right quadrants `color`, the other two `255 - color`. The expected
 * image is given by its top-left quadrant; the rest follows by symmetry (see `pillowSample`).
 */
function pillowCase(n: number, color: number): Uint8Array {
  const a = new Uint8Array(n * n);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) a[y * n + x] = (x < n / 2) === (y < n / 2) ? color : 255 - color;
  return a;
}
function pillowSample(hex: string, n: number): Uint8Array {
  const q = hex.trim().split(/\s+/).map((v) => parseInt(v, 16));
  const h = n / 2;
  const s = new Uint8Array(n * n);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < h; x++) {
      const v = q[y * h + x];
      s[y * n + x] = v;
      s[(n - 1 - y) * n + (n - 1 - x)] = v;
      s[(n - 1 - y) * n + x] = 255 - v;
      s[y * n + (n - 1 - x)] = 255 - v;
    }
  return s;
}

test("Pillow's published BICUBIC results: 12 -> 6 reduce and 4 -> 8 enlarge, exact", () => {
  const reduce = resizeBicubic(pillowCase(12, 0xe1), 12, 12, 1, 6, 6);
  assert.deepEqual(reduce, pillowSample("e1 e3 d4  e3 e5 d6  d4 d6 c9", 6));
  const enlarge = resizeBicubic(pillowCase(4, 0xe1), 4, 4, 1, 8, 8);
  assert.deepEqual(enlarge, pillowSample("e1 e5 ee b9  e5 e9 f3 bc  ee f3 fd c1  b9 bc c1 a2", 8));
  // Same per channel in RGB.
  const rgb = Uint8Array.from({ length: 12 * 12 * 3 }, (_, i) => pillowCase(12, 0xe1)[Math.floor(i / 3)]);
  const out = resizeBicubic(rgb, 12, 12, 3, 6, 6);
  assert.deepEqual(out.filter((_, i) => i % 3 === 2), pillowSample("e1 e3 d4  e3 e5 d6  d4 d6 c9", 6));
});

test("Pillow's coefficient checks: a 400000-wide half step and a large constant reduce", () => {
  for (let size = 400000; size < 400010; size += 2) {
    const row = new Uint8Array(size).fill(254, 0, size / 2);
    assert.equal(resizeBicubic(row, 1, size, 1, 1, 5)[2], 127, `size ${size}`);
  }
  const n = 1280;
  const rgba = new Uint8Array(n * n * 4);
  for (let i = 0; i < rgba.length; i += 4) rgba.set([0x20, 0x40, 0x60, 0xff], i);
  const out = resizeBicubic(rgba, n, n, 4, 256, 256);
  for (let i = 0; i < out.length; i += 4) {
    if (out[i] !== 0x20 || out[i + 1] !== 0x40 || out[i + 2] !== 0x60 || out[i + 3] !== 0xff) assert.fail(`pixel ${i / 4}`);
  }
});

test("channels are filtered independently", () => {
  const h = 6, w = 9;
  const rgb = pattern(h, w, 3, 3);
  const out = resizeBicubic(rgb, h, w, 3, 4, 5);
  for (let ch = 0; ch < 3; ch++) {
    const plane = new Uint8Array(h * w);
    for (let i = 0; i < h * w; i++) plane[i] = rgb[i * 3 + ch];
    const one = resizeBicubic(plane, h, w, 1, 4, 5);
    for (let i = 0; i < 20; i++) assert.equal(out[i * 3 + ch], one[i], `channel ${ch} pixel ${i}`);
  }
});

test("shapes for non-square input", () => {
  const src = pattern(30, 50, 3);
  assert.equal(resizeBicubic(src, 30, 50, 3, 12, 20).length, 12 * 20 * 3);
  assert.equal(resizeBicubic(src, 30, 50, 3, 45, 7).length, 45 * 7 * 3);
  // torchvision Resize(224): the short side becomes 224, the long side int(224 * long / short).
  assert.deepEqual(shortSideResizeShape(480, 640, 224), { height: 224, width: 298 }); // 298.67
  assert.deepEqual(shortSideResizeShape(640, 480, 224), { height: 298, width: 224 });
  assert.deepEqual(shortSideResizeShape(500, 500, 224), { height: 224, width: 224 });
  assert.deepEqual(shortSideResizeShape(3, 1000, 224), { height: 224, width: 74666 });
  assert.deepEqual(shortSideResizeShape(224, 300, 224), { height: 224, width: 300 });
  assert.deepEqual(shortSideResizeShape(30, 50, 16), { height: 16, width: 26 }); // 26.67
});

test("centre crop offsets use Python's round (halves to even)", () => {
  assert.deepEqual(centerCropOffsets(224, 298, 224, 224), { top: 0, left: 37 });
  assert.deepEqual(centerCropOffsets(229, 224, 224, 224), { top: 2, left: 0 }); // 2.5 -> 2
  assert.deepEqual(centerCropOffsets(231, 224, 224, 224), { top: 4, left: 0 }); // 3.5 -> 4
  assert.deepEqual(centerCropOffsets(10, 11, 4, 4), { top: 3, left: 4 }); // 3.5 -> 4
  assert.deepEqual(centerCropOffsets(5, 5, 5, 5), { top: 0, left: 0 });
  assert.throws(() => centerCropOffsets(4, 10, 5, 5), /larger than the image/);
});

test("centerCrop copies the right window", () => {
  const h = 5, w = 6, c = 2;
  const src = Uint8Array.from({ length: h * w * c }, (_, i) => i);
  // offsets: top = round(1.5) = 2, left = round(2.5) = 2
  const got = centerCrop(src, h, w, c, 2, 2);
  const want: number[] = [];
  for (let y = 2; y < 4; y++) for (let x = 2; x < 4; x++) for (let k = 0; k < c; k++) want.push(src[(y * w + x) * c + k]);
  assert.deepEqual([...got], want);
});

test("resizeBicubic validation", () => {
  assert.throws(() => resizeBicubic(new Uint8Array(12), 2, 2, 3, 0, 2), /outHeight must be a positive integer, got 0/);
  assert.throws(() => resizeBicubic(new Uint8Array(12), 2, 2, 3, 2, 1.5), /outWidth must be a positive integer, got 1.5/);
  assert.throws(() => resizeBicubic(new Uint8Array(11), 2, 2, 3, 2, 2), /src has 11 values/);
});
