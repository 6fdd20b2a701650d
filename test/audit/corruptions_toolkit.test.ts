/**
 * The image toolkit under ImageNet-C's corruptions (src/image/*), on known answers: borders,
 * scipy's gaussian weights, the long-kernel folding, ImageMagick's motion-blur taps (measured on
 * ImageMagick), the defocus disc, clipped_zoom, affine maps, skimage's HSV, Pillow's BOX resize,
 * OpenCV's Canny, chamfer distance and equalizeHist (expected values produced by Pillow 9.4 and
 * OpenCV 4.6 on the same inputs), the plasma fractal, the frost texture, JPEG 4:2:0.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { borderIndex, areaResize, resizePlane } from "../../src/image/planes";
import { convolveTaps, discKernel, gaussianBlur, gaussianKernel1d, motionKernel, scipyGaussianWeights, separableFilter } from "../../src/image/filters";
import { affineFromPoints, clippedZoom, invertAffine, warpAffine } from "../../src/image/warp";
import { hsvToRgb01, rgbToHsv01 } from "../../src/image/hsv";
import { pilBoxResize } from "../../src/image/pil_box";
import { canny } from "../../src/image/canny";
import { chamferDistance } from "../../src/image/distance_transform";
import { equalizeHist } from "../../src/image/equalize";
import { plasmaFractal } from "../../src/image/plasma";
import { frostTexture } from "../../src/image/frost";
import { jpegRoundTrip } from "../../src/image/jpeg_quantise";
import { Random } from "../../src/util/random";

const close = (a: number, b: number, tol: number, what = "") => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

describe("image toolkit", () => {
  it("borders: nearest, reflect (half-sample), reflect101, constant, far outside too", () => {
    const n = 4;
    assert.deepEqual([-2, -1, 4, 5].map((i) => borderIndex(i, n, "nearest")), [0, 0, 3, 3]);
    assert.deepEqual([-2, -1, 4, 5, 9, -9].map((i) => borderIndex(i, n, "reflect")), [1, 0, 3, 2, 1, 0]);
    assert.deepEqual([-2, -1, 4, 5, 8].map((i) => borderIndex(i, n, "reflect101")), [2, 1, 2, 1, 2]);
    assert.deepEqual([-1, 4].map((i) => borderIndex(i, n, "constant")), [-1, -1]);
  });

  it("gaussian weights as scipy (radius int(truncate sigma + 0.5), normalised); a kernel longer than the line folds onto it exactly", () => {
    const k = scipyGaussianWeights(1, 4);
    assert.equal(k.length, 9);
    close(k.reduce((a, b) => a + b, 0), 1, 1e-12);
    close(k[4], 0.39894346935609776, 1e-12, "centre (scipy 1.10's _gaussian_kernel1d(1, 0, 4))");
    assert.equal(scipyGaussianWeights(2.44, 3).length, 2 * 7 + 1);
    assert.deepEqual(Array.from(gaussianKernel1d(3, 0)), [0, 1, 0]);
    // A 1 x 5 line, a kernel of 41 taps: the folded path equals summing the taps through the border by hand.
    const line = Float32Array.from([1, 5, 2, 8, 3]);
    const kk = scipyGaussianWeights(5, 4);
    const out = separableFilter(line, 1, 5, Float64Array.of(1), kk, "reflect");
    const r = (kk.length - 1) / 2;
    for (let x = 0; x < 5; x++) {
      let acc = 0;
      for (let t = 0; t < kk.length; t++) acc += kk[t] * line[borderIndex(x + t - r, 5, "reflect")];
      close(out[x], acc, 1e-5, `x=${x}`);
    }
    // A constant plane stays constant under every border but "constant".
    const flat = new Float32Array(36).fill(0.3);
    for (const v of gaussianBlur(flat, 6, 6, 3, { border: "reflect" })) close(v, 0.3, 1e-6);
  });

  it("motion-blur taps: ImageMagick's one-sided streak (impulse response measured on ImageMagick 6: radius 10, sigma 3)", () => {
    const taps = motionKernel(10, 3, 0);
    assert.equal(taps.weight.length, 21);
    // ImageMagick's 8-bit response to a 255 impulse, at offsets 0, -1, ..., -8 along x.
    const measured = [59, 56, 47, 36, 24, 14, 8, 3, 1];
    measured.forEach((v, i) => {
      assert.equal(taps.dx[i], i);
      assert.equal(taps.dy[i], 0);
      close(255 * taps.weight[i], v, 1, `tap ${i}`);
    });
    // At 30 degrees tap 8 sits at (dy, dx) = (4, 7), as ImageMagick spreads the impulse to (-4, -7).
    const t30 = motionKernel(10, 3, 30);
    assert.deepEqual([t30.dy[8], t30.dx[8]], [4, 7]);
  });

  it("defocus disc: normalised, radius r, anti-aliased (a sub-pixel disc still spreads light)", () => {
    for (const [radius, alias] of [[3, 0.1], [10, 0.5], [0.7, 0.07]]) {
      const k = discKernel(radius, alias);
      close(k.weight.reduce((a, b) => a + b, 0), 1, 1e-9, `sum r=${radius}`);
      // The smoothing (3x3, or 5x5 above radius 8) spreads the rim (pixels partly inside: centres up to half a diagonal out) by at most 1 (2) pixels per axis.
      const spread = radius > 8 ? 2 : 1;
      for (let t = 0; t < k.weight.length; t++) assert.ok(Math.hypot(k.dy[t], k.dx[t]) <= radius + (spread + 0.5) * Math.SQRT2 + 1e-9, `tap outside r=${radius}`);
    }
    const k3 = discKernel(3, 0.1);
    const at = (dy: number, dx: number) => k3.weight.find((_, t) => k3.dy[t] === dy && k3.dx[t] === dx) ?? 0;
    close(at(0, 0), at(0, 1), 1e-6, "flat inside");
    assert.ok(at(0, 3) < at(0, 0) && at(0, 3) > 0, "partial coverage at the rim");
    assert.ok(discKernel(0.7, 0.07).weight.filter((w) => w > 1e-3).length > 1);
  });

  it("clipped_zoom: identity at 1; a 2x zoom spreads the centre 4 columns over 8, corner-aligned as scipy's zoom", () => {
    const h = 8;
    const w = 8;
    const ramp = Float32Array.from({ length: h * w }, (_, i) => i % w);
    assert.deepEqual(Array.from(clippedZoom(ramp, h, w, 1)), Array.from(ramp));
    const z = clippedZoom(ramp, h, w, 2);
    const row = Array.from(z.subarray(3 * w, 4 * w));
    // Crop columns 2..5 (ceil(8 / 2) = 4, from (8 - 4) / 2), zoomed to round(4 * 2) = 8: output o reads 2 + 3 o / 7.
    row.forEach((v, x) => close(v, 2 + (3 * x) / 7, 1e-5, `column ${x}`));
  });

  it("affine: three points map as asked; warpAffine by a translation shifts the plane", () => {
    const m = affineFromPoints([[0, 0], [1, 0], [0, 1]], [[2, 3], [4, 3], [2, 6]]);
    assert.deepEqual(m.map((v) => +v.toFixed(9)), [2, 0, 2, 0, 3, 3]);
    const inv = invertAffine(m);
    close(inv[0] * 2 + inv[2], 0, 1e-12);
    const p = Float32Array.from({ length: 16 }, (_, i) => i);
    const shifted = warpAffine(p, 4, 4, [1, 0, 1, 0, 1, 0], "constant");
    assert.deepEqual(Array.from(shifted.subarray(0, 4)), [0, 0, 1, 2]);
  });

  it("HSV as skimage: known triples, round trip", () => {
    const rgb = Float32Array.from([1, 0, 0, 0, 0.5, 0.5, 0.2, 0.2, 0.2, 0.9, 0.6, 0.3]);
    const hsv = rgbToHsv01(rgb);
    assert.deepEqual(Array.from(hsv.subarray(0, 3)), [0, 1, 1]);
    close(hsv[3], 0.5, 1e-7);
    assert.deepEqual(Array.from(hsv.subarray(6, 9)).map((v) => +v.toFixed(6)), [0, 0, 0.2]);
    close(hsv[9], 30 / 360, 1e-6);
    const back = hsvToRgb01(hsv);
    for (let i = 0; i < rgb.length; i++) close(back[i], rgb[i], 1e-6, `value ${i}`);
  });

  it("Pillow's BOX resize (answers from Pillow 9.4): 5 -> 3, 7 -> 3, 3 -> 7", () => {
    const row = (vals: number[], n: number) => Array.from(pilBoxResize(Float32Array.from(vals, (v) => v / 255), 1, vals.length, 1, n), (v) => Math.round(v * 255));
    assert.deepEqual(row([10, 20, 30, 40, 50], 3), [15, 30, 45]);
    assert.deepEqual(row([0, 30, 60, 90, 120, 150, 180], 3), [15, 90, 165]);
    assert.deepEqual(row([10, 20, 30], 7), [10, 10, 20, 20, 20, 30, 30]);
    // Exact area averaging differs where a pixel straddles two outputs.
    assert.notDeepEqual(Array.from(areaResize(Float32Array.from([0, 30, 60, 90, 120, 150, 180]), 1, 7, 1, 3), Math.round), [15, 90, 165]);
    assert.deepEqual(Array.from(resizePlane(Float32Array.of(1, 2, 3, 4), 2, 2, 1, 1)), [2.5]);
  });

  it("Canny, chamfer distance and equalizeHist match OpenCV 4.6", () => {
    const step = new Uint8Array(8 * 10);
    for (let y = 0; y < 8; y++) for (let x = 5; x < 10; x++) step[y * 10 + x] = 200;
    const edges = canny(step, 8, 10, 50, 150);
    assert.deepEqual(Array.from(edges.subarray(30, 40)), [0, 0, 0, 0, 255, 0, 0, 0, 0, 0]);
    const z = new Uint8Array(5 * 7).fill(255);
    z[2 * 7 + 3] = 0;
    const d = chamferDistance(z, 5, 7);
    const opencv = [
      [3.5969, 2.8, 2.1969, 2, 2.1969, 2.8, 3.5969],
      [3.1969, 2.1969, 1.4, 1, 1.4, 2.1969, 3.1969],
      [3, 2, 1, 0, 1, 2, 3],
    ];
    opencv.forEach((r, y) => r.forEach((v, x) => close(d[y * 7 + x], v, 1e-4, `(${y}, ${x})`)));
    assert.deepEqual(Array.from(equalizeHist(Uint8Array.from([0, 0, 10, 10, 10, 20, 200, 255]))), [0, 0, 128, 128, 128, 170, 212, 255]);
    assert.deepEqual(Array.from(equalizeHist(Uint8Array.from([5, 5, 7, 9]))), [0, 0, 128, 255]);
  });

  it("plasma fractal: [0, 1] with both ends reached, seeded, smoother for a larger decay", () => {
    const a = plasmaFractal(64, 2, new Random(1));
    assert.equal(Math.min(...a), 0);
    assert.equal(Math.max(...a), 1);
    assert.deepEqual(plasmaFractal(64, 2, new Random(1)), a);
    const roughness = (m: Float32Array) => {
      let s = 0;
      for (let i = 1; i < m.length; i++) s += Math.abs(m[i] - m[i - 1]);
      return s / m.length;
    };
    assert.ok(roughness(plasmaFractal(64, 1.4, new Random(1))) > roughness(a));
  });

  it("frost texture: seeded, in [0, 1], bluish, mean near the reference photographs' (0.57, 0.66, 0.70)", () => {
    const t = frostTexture(224, 224, new Random(5));
    assert.deepEqual(frostTexture(224, 224, new Random(5)), t);
    const mean = [0, 0, 0];
    for (let i = 0; i < t.length; i++) {
      assert.ok(t[i] >= 0 && t[i] <= 1);
      mean[i % 3] += t[i] / (t.length / 3);
    }
    [0.57, 0.66, 0.7].forEach((m, k) => close(mean[k], m, 0.06, `channel ${k}`));
    assert.ok(mean[2] > mean[0]);
  });

  it("JPEG 4:2:0: flat 16x16 blocks survive the coarsest quality inside (the triangle upsampling blends chroma at their edges); chroma detail finer than 2 px is lost", () => {
    const colours = [[64, 64, 64], [128, 40, 200], [192, 192, 192], [255, 255, 255]];
    const flat = new Float32Array(32 * 32 * 3);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let k = 0; k < 3; k++) flat[(y * 32 + x) * 3 + k] = colours[(y >> 4) * 2 + (x >> 4)][k] / 255;
    const out = flat.slice();
    jpegRoundTrip(out, 1, 32, 32, 7, { subsampling: "4:2:0" });
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        if (x % 16 === 0 || x % 16 === 15 || y % 16 === 0 || y % 16 === 15) continue;
        for (let k = 0; k < 3; k++) close(out[(y * 32 + x) * 3 + k] * 255, flat[(y * 32 + x) * 3 + k] * 255, 10, `(${y}, ${x}, ${k})`);
      }
    }
    // Alternating red/blue columns of equal luma-ish: 4:2:0 averages the chroma, 4:4:4 keeps more of it.
    const stripes = new Float32Array(16 * 16 * 3);
    for (let i = 0; i < 256; i++) stripes.set(i % 2 ? [0.8, 0.2, 0.2] : [0.2, 0.2, 0.8], 3 * i);
    const a = stripes.slice();
    const b = stripes.slice();
    jpegRoundTrip(a, 1, 16, 16, 95, { subsampling: "4:2:0" });
    jpegRoundTrip(b, 1, 16, 16, 95, { subsampling: "4:4:4" });
    const err = (v: Float32Array) => v.reduce((s, x, i) => s + Math.abs(x - stripes[i]), 0);
    assert.ok(err(a) > 3 * err(b), `4:2:0 error ${err(a)}, 4:4:4 ${err(b)}`);
  });

  it("convolveTaps equals a direct sum at the borders (reflect101)", () => {
    const p = Float32Array.from({ length: 20 }, (_, i) => (i * 7) % 11);
    const taps = { dy: Int32Array.of(-2, 0, 1), dx: Int32Array.of(1, -3, 0), weight: Float64Array.of(0.5, 0.25, 0.25) };
    const out = convolveTaps(p, 4, 5, taps, "reflect101");
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 5; x++) {
        let acc = 0;
        for (let t = 0; t < 3; t++) acc += taps.weight[t] * p[borderIndex(y + taps.dy[t], 4, "reflect101") * 5 + borderIndex(x + taps.dx[t], 5, "reflect101")];
        close(out[y * 5 + x], acc, 1e-6, `(${y}, ${x})`);
      }
    }
  });
});
