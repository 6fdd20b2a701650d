/**
 * Natural image corruptions at five severities, after ImageNet-C (Hendrycks & Dietterich 2019,
 * "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
 * https://arxiv.org/abs/1903.12261), on RGB images of any size: the model's preprocessed input
 * in [0, 1] (the robustness audit corrupts exactly what the model sees).
 *
 *   corrupt(images01, name, severity, seed, firstIndex) -> images01'   [B, H, W, 3] in [0, 1]
 *
 * - Severity 0 is the identity (a copy); severities 1-5 use the parameters in `CORRUPTIONS`.
 * - Sizes: the strengths were set on 28x28 images (Fashion-MNIST). Parameters per pixel value
 *   (noise, contrast, brightness, JPEG quality) and angles stay as they are. Sizes are relative:
 *   pixelate's downsampled side, the crop window, the occluder's side and the shift are fractions
 *   of the image side, so they scale with it already; the one parameter in absolute pixels, the
 *   blur sigma, is given for 28 px and applied as sigma * H/28 vertically and sigma * W/28
 *   horizontally. (ImageNet-C's own set and parameters replace these in a later issue.)
 * - Seeded per image: image i of a call draws from `Random(mixSeed(seed, corruption, firstIndex +
 *   i))`, so an image is corrupted the same whichever batch it comes in, and a corruption draws
 *   the same numbers whatever the severity. So for one seed the noise pattern, the occluder's
 *   centre, the rotation's sign and the shift's direction are the same at every severity: only
 *   the strength changes, and stronger severities change the image more.
 * - The pixel work is plain JavaScript on the tensor's values: deterministic on every backend.
 * - JPEG is simulated in-process (sharp's codec is async): JFIF YCbCr, 8x8 DCT-II per plane, the
 *   quality-scaled IJG quantisation tables (luminance for Y, chrominance for Cb/Cr), rounding,
 *   inverse DCT, 8-bit RGB output. Unlike libjpeg there is no chroma subsampling and no entropy
 *   coding (lossless anyway).
 * - Geometric corruptions (rotation, translation) sample bilinearly and fill uncovered pixels with
 *   black (0); `crop` zooms into a random window (bilinear, edge-clamped); `occlusion` pastes a
 *   mid-grey (0.5) square at a random centre.
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../../util/random";
import { mixSeed } from "../../util/random";

export type Severity = 0 | 1 | 2 | 3 | 4 | 5;

/** One corruption's five strengths (severity 1..5) and what they mean. */
export interface CorruptionSpec {
  name: string;
  /** What the parameter is, with its unit. */
  parameter: string;
  /** Parameter at severities 1..5. */
  severities: readonly [number, number, number, number, number];
}

interface CorruptionImpl extends CorruptionSpec {
  /** Corrupts `data` ([B, H, W, C] values; `corrupt` passes one image, B = 1) in place, drawing from `rng`. */
  apply(data: Float32Array, shape: Shape, param: number, rng: Random): void;
}

interface Shape {
  b: number;
  h: number;
  w: number;
  c: number;
}

/** Value of mid-grey used by `occlusion`. */
export const OCCLUSION_FILL = 0.5;

/** Image side (px) the absolute-pixel parameters (the blur sigma) are given for; they scale by side / 28. */
export const REFERENCE_SIDE = 28;

const IMPLS: CorruptionImpl[] = [
  {
    name: "gaussian_noise",
    parameter: "standard deviation of additive gaussian noise (pixel values in [0, 1])",
    severities: [0.04, 0.08, 0.12, 0.18, 0.26],
    apply: (d, _s, std, rng) => {
      for (let i = 0; i < d.length; i++) d[i] = clip01(d[i] + std * rng.normal());
    },
  },
  {
    name: "shot_noise",
    parameter: "photons per unit intensity c: value = Poisson(c * x) / c (fewer is noisier)",
    severities: [60, 25, 12, 5, 3],
    apply: (d, _s, c, rng) => {
      for (let i = 0; i < d.length; i++) d[i] = clip01(poisson(c * d[i], rng) / c);
    },
  },
  {
    name: "blur",
    parameter: `gaussian blur sigma in pixels of a ${REFERENCE_SIDE} px image (applied as sigma * side / ${REFERENCE_SIDE})`,
    severities: [0.5, 0.75, 1, 1.5, 2],
    apply: (d, s, sigma) => forEachPlane(d, s, (p) => gaussianBlur(p, s.h, s.w, (sigma * s.h) / REFERENCE_SIDE, (sigma * s.w) / REFERENCE_SIDE)),
  },
  {
    name: "contrast",
    parameter: "contrast factor k: mean + k * (x - mean), mean over the image",
    severities: [0.6, 0.45, 0.3, 0.2, 0.1],
    apply: (d, s, k) => {
      const n = s.h * s.w * s.c;
      for (let b = 0; b < s.b; b++) {
        let mean = 0;
        for (let i = b * n; i < (b + 1) * n; i++) mean += d[i];
        mean /= n;
        for (let i = b * n; i < (b + 1) * n; i++) d[i] = clip01(mean + k * (d[i] - mean));
      }
    },
  },
  {
    name: "brightness",
    parameter: "value added to every pixel, then clipped to [0, 1]",
    severities: [0.1, 0.2, 0.3, 0.4, 0.5],
    apply: (d, _s, delta) => {
      for (let i = 0; i < d.length; i++) d[i] = clip01(d[i] + delta);
    },
  },
  {
    name: "pixelate",
    parameter: "side of the downsampled image as a fraction of the original (area average down, nearest up)",
    severities: [0.6, 0.5, 0.4, 0.3, 0.25],
    apply: (d, s, f) => {
      const nh = Math.max(1, Math.round(f * s.h));
      const nw = Math.max(1, Math.round(f * s.w));
      forEachPlane(d, s, (p) => nearestResize(areaResize(p, s.h, s.w, nh, nw), nh, nw, s.h, s.w));
    },
  },
  {
    name: "jpeg",
    parameter: "JPEG quality (IJG scale, 1-100; lower is coarser)",
    severities: [25, 18, 15, 10, 7],
    apply: (d, s, quality) => jpegRoundTrip(d, s, quality),
  },
  {
    name: "crop",
    parameter: "side of a random crop as a fraction of the image, zoomed back to full size",
    severities: [0.9, 0.8, 0.7, 0.6, 0.5],
    apply: (d, s, f, rng) => {
      const n = s.h * s.w * s.c;
      for (let b = 0; b < s.b; b++) {
        const u = rng.next();
        const v = rng.next();
        const ch = f * s.h;
        const cw = f * s.w;
        const top = u * (s.h - ch);
        const left = v * (s.w - cw);
        const src = d.slice(b * n, (b + 1) * n);
        for (let y = 0; y < s.h; y++) {
          for (let x = 0; x < s.w; x++) {
            const sy = top + ((y + 0.5) * ch) / s.h - 0.5;
            const sx = left + ((x + 0.5) * cw) / s.w - 0.5;
            for (let k = 0; k < s.c; k++) d[b * n + (y * s.w + x) * s.c + k] = bilinearClamped(src, s, k, sy, sx);
          }
        }
      }
    },
  },
  {
    name: "occlusion",
    parameter: "side of a mid-grey square at a random centre, as a fraction of the image side",
    severities: [0.2, 0.3, 0.4, 0.5, 0.6],
    apply: (d, s, f, rng) => {
      const n = s.h * s.w * s.c;
      for (let b = 0; b < s.b; b++) {
        const cy = rng.next() * s.h;
        const cx = rng.next() * s.w;
        const hs = (f * s.h) / 2;
        const ws = (f * s.w) / 2;
        const y0 = Math.max(0, Math.round(cy - hs));
        const y1 = Math.min(s.h, Math.round(cy + hs));
        const x0 = Math.max(0, Math.round(cx - ws));
        const x1 = Math.min(s.w, Math.round(cx + ws));
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) {
            for (let k = 0; k < s.c; k++) d[b * n + (y * s.w + x) * s.c + k] = OCCLUSION_FILL;
          }
        }
      }
    },
  },
  {
    name: "rotation",
    parameter: "rotation angle in degrees about the centre (random sign), bilinear, black fill",
    severities: [6, 12, 18, 24, 30],
    apply: (d, s, degrees, rng) => {
      for (let b = 0; b < s.b; b++) {
        const sign = rng.next() < 0.5 ? -1 : 1;
        const a = (sign * degrees * Math.PI) / 180;
        const cos = Math.cos(a);
        const sin = Math.sin(a);
        const cy = (s.h - 1) / 2;
        const cx = (s.w - 1) / 2;
        warp(d, s, b, (y, x) => [cy + cos * (y - cy) - sin * (x - cx), cx + sin * (y - cy) + cos * (x - cx)]);
      }
    },
  },
  {
    name: "translation",
    parameter: "shift as a fraction of the image side, in a random direction, bilinear, black fill",
    severities: [0.04, 0.08, 0.12, 0.16, 0.2],
    apply: (d, s, f, rng) => {
      for (let b = 0; b < s.b; b++) {
        const theta = 2 * Math.PI * rng.next();
        const dy = f * s.h * Math.sin(theta);
        const dx = f * s.w * Math.cos(theta);
        warp(d, s, b, (y, x) => [y - dy, x - dx]);
      }
    },
  },
];

const BY_NAME = new Map(IMPLS.map((c, i) => [c.name, { impl: c, index: i }]));

/** The corruption names `corrupt` accepts, in a fixed order. */
export function listCorruptions(): string[] {
  return IMPLS.map((c) => c.name);
}

/** Every corruption's parameter and its values at severities 1..5 (copies). */
export function corruptionSpecs(): CorruptionSpec[] {
  return IMPLS.map(({ name, parameter, severities }) => ({ name, parameter, severities: [...severities] as CorruptionSpec["severities"] }));
}

/** Throws a one-line error unless `name` is a corruption; returns it. */
export function checkCorruptionName(name: unknown, fn = "corrupt"): string {
  if (typeof name !== "string" || !BY_NAME.has(name)) {
    throw new RangeError(`${fn}: unknown corruption ${JSON.stringify(name)}; valid names: ${listCorruptions().join(", ")}`);
  }
  return name;
}

/** Throws a one-line error unless `severity` is an integer 0..5. */
export function checkSeverity(severity: unknown, fn = "corrupt"): Severity {
  if (typeof severity !== "number" || !Number.isInteger(severity) || severity < 0 || severity > 5) {
    throw new RangeError(`${fn}: severity must be an integer 0-5 (0 = no corruption), got ${JSON.stringify(severity) ?? String(severity)}`);
  }
  return severity as Severity;
}

/**
 * Throws unless `images01` is a float32 [B, H, W, C] tensor with values in [0, 1]; returns its
 * values (a copy the caller may modify).
 */
export function checkImages01(fn: string, images01: unknown): Float32Array {
  if (!(images01 instanceof tf.Tensor)) throw new TypeError(`${fn}: images01 must be a tf.Tensor4D [B, H, W, C] with values in [0, 1], got ${typeof images01}`);
  if (images01.rank !== 4 || (images01.shape as number[]).some((n) => n < 1)) {
    throw new RangeError(`${fn}: images01 must be a non-empty [B, H, W, C] tensor, got shape [${images01.shape.join(", ")}]`);
  }
  if (images01.dtype !== "float32") throw new TypeError(`${fn}: images01 must be float32, got ${images01.dtype}`);
  const data = Float32Array.from(images01.dataSync() as Float32Array);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(v >= 0 && v <= 1)) throw new RangeError(`${fn}: images01 must hold values in [0, 1] (pixels / 255, before CLIP normalisation), found ${v} at flat index ${i}`);
  }
  return data;
}

function checkSeed(fn: string, seed: unknown): number {
  if (typeof seed !== "number" || !Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`${fn}: seed must be a non-negative integer, got ${JSON.stringify(seed) ?? String(seed)}`);
  }
  return seed;
}

/**
 * `images01` RGB [B, H, W, 3] (values in [0, 1], any size) with corruption `name` at `severity`
 * (0 = an exact copy), seeded per image: image i draws from (seed, corruption, firstIndex + i), so
 * corrupting a set batch by batch (firstIndex = the batch's start) equals corrupting it whole.
 * The input is not disposed; the caller disposes the result.
 */
export function corrupt(images01: tf.Tensor4D, name: string, severity: Severity, seed = 0, firstIndex = 0): tf.Tensor4D {
  const fn = "corrupt";
  checkCorruptionName(name, fn);
  checkSeverity(severity, fn);
  checkSeed(fn, seed);
  if (!Number.isInteger(firstIndex) || firstIndex < 0) throw new RangeError(`${fn}: firstIndex must be an integer >= 0, got ${JSON.stringify(firstIndex) ?? String(firstIndex)}`);
  if (images01 instanceof tf.Tensor && images01.rank === 4 && images01.shape[3] !== 3) {
    throw new RangeError(`${fn}: images01 must be RGB [B, H, W, 3], got shape [${images01.shape.join(", ")}] (replicate a grey channel first)`);
  }
  const data = checkImages01(fn, images01);
  const [b, h, w, c] = images01.shape;
  if (severity > 0) {
    const { impl, index } = BY_NAME.get(name)!;
    const n = h * w * c;
    for (let i = 0; i < b; i++) {
      impl.apply(data.subarray(i * n, (i + 1) * n), { b: 1, h, w, c }, impl.severities[severity - 1], new Random(mixSeed(seed, index, firstIndex + i)));
    }
  }
  return tf.tensor4d(data, [b, h, w, c], "float32"); // [B, H, W, 3]
}

// ---------------------------------------------------------------------------------------------
// Pixel helpers (planes are one channel of one image, h*w values, row-major).

function clip01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Applies `f` to every channel plane of every image and writes the result back. */
function forEachPlane(d: Float32Array, s: Shape, f: (plane: Float32Array) => Float32Array): void {
  const plane = new Float32Array(s.h * s.w);
  const n = s.h * s.w * s.c;
  for (let b = 0; b < s.b; b++) {
    for (let k = 0; k < s.c; k++) {
      for (let i = 0; i < s.h * s.w; i++) plane[i] = d[b * n + i * s.c + k];
      const out = f(plane);
      for (let i = 0; i < s.h * s.w; i++) d[b * n + i * s.c + k] = clip01(out[i]);
    }
  }
}

/** Knuth's Poisson sampler (fine for the means <= 60 used here). */
function poisson(lambda: number, rng: Random): number {
  if (lambda <= 0) return 0;
  const limit = Math.exp(-lambda);
  let k = 0;
  let p = rng.next();
  while (p > limit) {
    k++;
    p *= rng.next();
  }
  return k;
}

/** Normalised 1-D gaussian kernel of radius ceil(3 sigma) (at least 1). */
function gaussianKernel(sigma: number): { kernel: Float64Array; r: number } {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += kernel[i + r] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  return { kernel, r };
}

/** Separable gaussian blur (sigmaY down the rows, sigmaX along them), edges replicated. */
function gaussianBlur(p: Float32Array, h: number, w: number, sigmaY: number, sigmaX: number): Float32Array {
  const kx = gaussianKernel(sigmaX);
  const ky = gaussianKernel(sigmaY);
  const tmp = new Float32Array(h * w);
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let i = -kx.r; i <= kx.r; i++) acc += kx.kernel[i + kx.r] * p[y * w + Math.min(w - 1, Math.max(0, x + i))];
      tmp[y * w + x] = acc;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let i = -ky.r; i <= ky.r; i++) acc += ky.kernel[i + ky.r] * tmp[Math.min(h - 1, Math.max(0, y + i)) * w + x];
      out[y * w + x] = acc;
    }
  }
  return out;
}

/** Area-average resize of one plane (each output pixel averages the input area it covers, exact overlaps). */
export function areaResize(p: Float32Array, h: number, w: number, nh: number, nw: number): Float32Array {
  const wy = overlapWeights(h, nh);
  const wx = overlapWeights(w, nw);
  const out = new Float32Array(nh * nw);
  for (let oy = 0; oy < nh; oy++) {
    for (let ox = 0; ox < nw; ox++) {
      let acc = 0;
      let total = 0;
      for (const [iy, ay] of wy[oy]) {
        for (const [ix, ax] of wx[ox]) {
          acc += ay * ax * p[iy * w + ix];
          total += ay * ax;
        }
      }
      out[oy * nw + ox] = acc / total;
    }
  }
  return out;
}

/** For each of `m` output cells over `n` input cells: [input index, overlap length] pairs. */
function overlapWeights(n: number, m: number): [number, number][][] {
  const scale = n / m;
  return Array.from({ length: m }, (_, o) => {
    const a = o * scale;
    const b = (o + 1) * scale;
    const cells: [number, number][] = [];
    for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
      const overlap = Math.min(b, i + 1) - Math.max(a, i);
      if (overlap > 1e-12) cells.push([i, overlap]);
    }
    return cells;
  });
}

function nearestResize(p: Float32Array, h: number, w: number, nh: number, nw: number): Float32Array {
  const out = new Float32Array(nh * nw);
  for (let y = 0; y < nh; y++) {
    const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / nh));
    for (let x = 0; x < nw; x++) out[y * nw + x] = p[sy * w + Math.min(w - 1, Math.floor(((x + 0.5) * w) / nw))];
  }
  return out;
}

/** Bilinear sample of channel k of one image (`src` is that image's h*w*c values), edges clamped. */
function bilinearClamped(src: Float32Array, s: Shape, k: number, y: number, x: number): number {
  const cy = Math.min(s.h - 1, Math.max(0, y));
  const cx = Math.min(s.w - 1, Math.max(0, x));
  const y0 = Math.floor(cy);
  const x0 = Math.floor(cx);
  const y1 = Math.min(s.h - 1, y0 + 1);
  const x1 = Math.min(s.w - 1, x0 + 1);
  const fy = cy - y0;
  const fx = cx - x0;
  const at = (yy: number, xx: number) => src[(yy * s.w + xx) * s.c + k];
  const top = at(y0, x0) + fx * (at(y0, x1) - at(y0, x0));
  const bottom = at(y1, x0) + fx * (at(y1, x1) - at(y1, x0));
  return top + fy * (bottom - top);
}

/**
 * Resamples image `b` in place: output pixel (y, x) reads the source at `source(y, x)` bilinearly;
 * samples outside the image read black (0).
 */
function warp(d: Float32Array, s: Shape, b: number, source: (y: number, x: number) => [number, number]): void {
  const n = s.h * s.w * s.c;
  const src = d.slice(b * n, (b + 1) * n);
  const at = (yy: number, xx: number, k: number) => (yy < 0 || yy >= s.h || xx < 0 || xx >= s.w ? 0 : src[(yy * s.w + xx) * s.c + k]);
  for (let y = 0; y < s.h; y++) {
    for (let x = 0; x < s.w; x++) {
      const [sy, sx] = source(y, x);
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const fy = sy - y0;
      const fx = sx - x0;
      for (let k = 0; k < s.c; k++) {
        const top = at(y0, x0, k) + fx * (at(y0, x0 + 1, k) - at(y0, x0, k));
        const bottom = at(y0 + 1, x0, k) + fx * (at(y0 + 1, x0 + 1, k) - at(y0 + 1, x0, k));
        d[b * n + (y * s.w + x) * s.c + k] = clip01(top + fy * (bottom - top));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// JPEG: https://www.w3.org/Graphics/JPEG/itu-t81.pdf (Annex K tables), IJG quality scaling.

const LUMA_TABLE = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22,
  37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_TABLE = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/** libjpeg's `jpeg_quality_scaling` + `jpeg_add_quant_table` (baseline: entries clamped to 1..255). */
export function jpegQuantTable(base: readonly number[], quality: number): Float64Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? Math.floor(5000 / q) : 200 - 2 * q;
  return Float64Array.from(base, (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
}

/** DCT_BASIS[u * 8 + x] = a(u) cos((2x + 1) u pi / 16), the orthonormal 8-point DCT-II. */
const DCT_BASIS = (() => {
  const m = new Float64Array(64);
  for (let u = 0; u < 8; u++) {
    const a = u === 0 ? Math.sqrt(1 / 8) : Math.sqrt(2 / 8);
    for (let x = 0; x < 8; x++) m[u * 8 + x] = a * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  }
  return m;
})();

/** One plane (values 0-255) through DCT, quantisation with `table`, inverse DCT; edges replicated to whole blocks. */
function jpegPlane(p: Float64Array, h: number, w: number, table: Float64Array): void {
  const block = new Float64Array(64);
  const tmp = new Float64Array(64);
  const coef = new Float64Array(64);
  for (let by = 0; by < h; by += 8) {
    for (let bx = 0; bx < w; bx += 8) {
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) block[y * 8 + x] = p[Math.min(h - 1, by + y) * w + Math.min(w - 1, bx + x)] - 128;
      }
      // coef = D block D^T, quantised.
      for (let u = 0; u < 8; u++) {
        for (let x = 0; x < 8; x++) {
          let acc = 0;
          for (let y = 0; y < 8; y++) acc += DCT_BASIS[u * 8 + y] * block[y * 8 + x];
          tmp[u * 8 + x] = acc;
        }
      }
      for (let u = 0; u < 8; u++) {
        for (let v = 0; v < 8; v++) {
          let acc = 0;
          for (let x = 0; x < 8; x++) acc += tmp[u * 8 + x] * DCT_BASIS[v * 8 + x];
          const q = table[u * 8 + v];
          coef[u * 8 + v] = Math.round(acc / q) * q;
        }
      }
      // block = D^T coef D.
      for (let y = 0; y < 8; y++) {
        for (let v = 0; v < 8; v++) {
          let acc = 0;
          for (let u = 0; u < 8; u++) acc += DCT_BASIS[u * 8 + y] * coef[u * 8 + v];
          tmp[y * 8 + v] = acc;
        }
      }
      for (let y = 0; y < 8 && by + y < h; y++) {
        for (let x = 0; x < 8 && bx + x < w; x++) {
          let acc = 0;
          for (let v = 0; v < 8; v++) acc += tmp[y * 8 + v] * DCT_BASIS[v * 8 + x];
          p[(by + y) * w + bx + x] = acc + 128;
        }
      }
    }
  }
}

/** JPEG round trip of every RGB image through JFIF YCbCr. */
function jpegRoundTrip(d: Float32Array, s: Shape, quality: number): void {
  const luma = jpegQuantTable(LUMA_TABLE, quality);
  const chroma = jpegQuantTable(CHROMA_TABLE, quality);
  const hw = s.h * s.w;
  const n = hw * s.c;
  const to8 = (v: number) => Math.min(255, Math.max(0, Math.round(v))) / 255;
  for (let b = 0; b < s.b; b++) {
    const o = b * n;
    const Y = new Float64Array(hw);
    const Cb = new Float64Array(hw);
    const Cr = new Float64Array(hw);
    for (let i = 0; i < hw; i++) {
      const r = 255 * d[o + 3 * i];
      const g = 255 * d[o + 3 * i + 1];
      const bl = 255 * d[o + 3 * i + 2];
      Y[i] = 0.299 * r + 0.587 * g + 0.114 * bl;
      Cb[i] = 128 - 0.168736 * r - 0.331264 * g + 0.5 * bl;
      Cr[i] = 128 + 0.5 * r - 0.418688 * g - 0.081312 * bl;
    }
    jpegPlane(Y, s.h, s.w, luma);
    jpegPlane(Cb, s.h, s.w, chroma);
    jpegPlane(Cr, s.h, s.w, chroma);
    for (let i = 0; i < hw; i++) {
      d[o + 3 * i] = to8(Y[i] + 1.402 * (Cr[i] - 128));
      d[o + 3 * i + 1] = to8(Y[i] - 0.344136 * (Cb[i] - 128) - 0.714136 * (Cr[i] - 128));
      d[o + 3 * i + 2] = to8(Y[i] + 1.772 * (Cb[i] - 128));
    }
  }
}
