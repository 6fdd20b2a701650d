/**
 * Linear filters on float planes (h * w values, row-major; see planes.ts for the border rules),
 * as the ImageNet-C reference (Hendrycks & Dietterich 2019, https://arxiv.org/abs/1903.12261)
 * calls them from scipy/skimage, OpenCV and ImageMagick:
 *
 * - `gaussianBlur`: separable gaussian, radius int(truncate * sigma + 0.5), as
 *   scipy.ndimage.gaussian_filter (skimage.filters.gaussian: truncate 4, border "nearest").
 * - `gaussianKernel1d(ksize, sigma)`: OpenCV's getGaussianKernel for a fixed odd size.
 * - `discKernel`: a normalised disc (defocus), its edge anti-aliased by pixel coverage, then
 *   smoothed by a small gaussian (cv2.GaussianBlur of the disc in the reference).
 * - `motionKernel`: ImageMagick's MotionBlurImage taps: width 2 * ceil(radius) + 1, weights
 *   exp(-i^2 / (2 sigma^2)) for i = 0..width-1 (normalised), at integer offsets
 *   (round(i cos a), round(i sin a)) along the angle a: a one-sided streak.
 * - `convolveTaps`: correlation with a sparse kernel (dy, dx, weight), any border.
 * - `boxBlur3`: cv2.blur with a 3x3 box (border reflect101).
 */
import { borderIndex, type Border } from "./planes";

/** A sparse 2-D kernel: out(y, x) = sum_t weight_t * in(y + dy_t, x + dx_t). */
export interface Taps {
  dy: Int32Array;
  dx: Int32Array;
  weight: Float64Array;
}

function checkSigma(fn: string, sigma: number): void {
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new RangeError(`${fn}: sigma must be a finite number >= 0, got ${sigma}`);
}

/** scipy's 1-D gaussian weights for `sigma` (radius int(truncate * sigma + 0.5)), normalised. */
export function scipyGaussianWeights(sigma: number, truncate = 4): Float64Array {
  checkSigma("scipyGaussianWeights", sigma);
  const r = Math.floor(truncate * sigma + 0.5);
  const k = new Float64Array(2 * r + 1);
  if (r === 0 || sigma === 0) {
    k.fill(0);
    k[r] = 1;
    return k;
  }
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/** OpenCV's getGaussianKernel(ksize, sigma) for an odd ksize and sigma > 0, normalised. */
export function gaussianKernel1d(ksize: number, sigma: number): Float64Array {
  if (!Number.isInteger(ksize) || ksize < 1 || ksize % 2 === 0) throw new RangeError(`gaussianKernel1d: ksize must be an odd positive integer, got ${ksize}`);
  checkSigma("gaussianKernel1d", sigma);
  const k = new Float64Array(ksize);
  const c = (ksize - 1) / 2;
  if (sigma === 0) {
    k[c] = 1;
    return k;
  }
  let sum = 0;
  for (let i = 0; i < ksize; i++) sum += k[i] = Math.exp(-((i - c) * (i - c)) / (2 * sigma * sigma));
  for (let i = 0; i < ksize; i++) k[i] /= sum;
  return k;
}

/**
 * The n x n matrix of a 1-D centred correlation with kernel `k` over n samples under `border`
 * (row x: the weight of every input sample in output x; reflected copies of a sample add up).
 * Used when the kernel is longer than the signal (e.g. the elastic transform's sigma of 171 px on
 * a 224 px image): n * n work instead of n * kernel length.
 */
function foldedKernel(k: Float64Array, n: number, border: Border): Float64Array {
  const r = (k.length - 1) / 2;
  const m = new Float64Array(n * n);
  for (let x = 0; x < n; x++) {
    for (let t = 0; t < k.length; t++) {
      const j = borderIndex(x + t - r, n, border);
      if (j >= 0) m[x * n + j] += k[t];
    }
  }
  return m;
}

/** Correlation along rows (`alongRows`: x varies) or down the columns of a plane with `k`, centred. */
function filterAxis(p: ArrayLike<number>, h: number, w: number, k: Float64Array, border: Border, alongRows: boolean): Float64Array {
  const out = new Float64Array(h * w);
  const n = alongRows ? w : h;
  const lines = alongRows ? h : w;
  const stride = alongRows ? 1 : w;
  const lineStep = alongRows ? w : 1;
  if (k.length > n) {
    const m = foldedKernel(k, n, border);
    const line = new Float64Array(n);
    for (let l = 0; l < lines; l++) {
      const base = l * lineStep;
      for (let j = 0; j < n; j++) line[j] = p[base + j * stride];
      for (let x = 0; x < n; x++) {
        let acc = 0;
        const row = x * n;
        for (let j = 0; j < n; j++) acc += m[row + j] * line[j];
        out[base + x * stride] = acc;
      }
    }
    return out;
  }
  const r = (k.length - 1) / 2;
  const idx = new Int32Array(n + 2 * r);
  for (let i = -r; i < n + r; i++) idx[i + r] = borderIndex(i, n, border);
  const len = k.length;
  const lo = Math.min(n, r);
  const hi = Math.max(lo, n - r);
  for (let l = 0; l < lines; l++) {
    const base = l * lineStep;
    // Inside: the window [x - r, x + r] lies in the line.
    for (let x = lo; x < hi; x++) {
      let acc = 0;
      let j = base + (x - r) * stride;
      for (let t = 0; t < len; t++, j += stride) acc += k[t] * p[j];
      out[base + x * stride] = acc;
    }
    // Near the ends: through the border rule.
    for (let x = 0; x < n; x++) {
      if (x === lo && hi > lo) x = hi;
      if (x >= n) break;
      let acc = 0;
      for (let t = 0; t < len; t++) {
        const j = idx[x + t];
        if (j >= 0) acc += k[t] * p[base + j * stride];
      }
      out[base + x * stride] = acc;
    }
  }
  return out;
}

/** Separable correlation of a plane with 1-D kernels down the rows (`ky`) and along them (`kx`), centred. */
export function separableFilter(p: ArrayLike<number>, h: number, w: number, ky: Float64Array, kx: Float64Array, border: Border): Float32Array {
  const tmp = filterAxis(p, h, w, kx, border, true);
  return Float32Array.from(filterAxis(tmp, h, w, ky, border, false));
}

/** scipy.ndimage.gaussian_filter of one plane (skimage.filters.gaussian: truncate 4, border "nearest"). */
export function gaussianBlur(p: ArrayLike<number>, h: number, w: number, sigma: number, opts: { truncate?: number; border?: Border } = {}): Float32Array {
  const k = scipyGaussianWeights(sigma, opts.truncate ?? 4);
  return separableFilter(p, h, w, k, k, opts.border ?? "nearest");
}

/** Correlation of a plane with sparse taps; samples outside read through `border`. */
export function convolveTaps(p: ArrayLike<number>, h: number, w: number, taps: Taps, border: Border): Float32Array {
  const out = new Float32Array(h * w);
  const n = taps.weight.length;
  let minDy = 0;
  let maxDy = 0;
  let minDx = 0;
  let maxDx = 0;
  const off = new Int32Array(n);
  for (let t = 0; t < n; t++) {
    minDy = Math.min(minDy, taps.dy[t]);
    maxDy = Math.max(maxDy, taps.dy[t]);
    minDx = Math.min(minDx, taps.dx[t]);
    maxDx = Math.max(maxDx, taps.dx[t]);
    off[t] = taps.dy[t] * w + taps.dx[t];
  }
  const wt = taps.weight;
  // Inside: every tap of (y, x) lies in the image.
  const y0 = Math.min(h, -minDy);
  const y1 = Math.max(y0, h - maxDy);
  const x0 = Math.min(w, -minDx);
  const x1 = Math.max(x0, w - maxDx);
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = y * w + x;
      let acc = 0;
      for (let t = 0; t < n; t++) acc += wt[t] * p[i + off[t]];
      out[i] = acc;
    }
  }
  // The frame around it, through the border rule (indices per tap precomputed: no per-sample calls).
  const rows = Array.from({ length: n }, (_, t) => Int32Array.from({ length: h }, (_, y) => borderIndex(y + taps.dy[t], h, border)));
  const cols = Array.from({ length: n }, (_, t) => Int32Array.from({ length: w }, (_, x) => borderIndex(x + taps.dx[t], w, border)));
  for (let y = 0; y < h; y++) {
    const inside = y >= y0 && y < y1;
    for (let x = 0; x < w; x++) {
      if (inside && x === x0 && x1 > x0) x = x1;
      if (x >= w) break;
      let acc = 0;
      for (let t = 0; t < n; t++) {
        const sy = rows[t][y];
        const sx = cols[t][x];
        if (sy >= 0 && sx >= 0) acc += wt[t] * p[sy * w + sx];
      }
      out[y * w + x] = acc;
    }
  }
  return out;
}

/** Taps of a dense (2r+1) x (2r+1) kernel, zeros left out. */
export function tapsFromDense(k: Float64Array, r: number): Taps {
  const dy: number[] = [];
  const dx: number[] = [];
  const weight: number[] = [];
  const side = 2 * r + 1;
  for (let i = 0; i < side; i++) {
    for (let j = 0; j < side; j++) {
      const v = k[i * side + j];
      if (v !== 0) {
        dy.push(i - r);
        dx.push(j - r);
        weight.push(v);
      }
    }
  }
  return { dy: Int32Array.from(dy), dx: Int32Array.from(dx), weight: Float64Array.from(weight) };
}

/**
 * The defocus kernel: a disc of `radius` pixels (each pixel weighted by the fraction of its area
 * inside, from 8 x 8 samples, so a disc smaller than a pixel still blurs a little), normalised,
 * then smoothed by a gaussian of `aliasSigma` (3x3, or 5x5 for radii above 8, as the reference's
 * cv2.GaussianBlur) and renormalised. Returned as taps.
 */
export function discKernel(radius: number, aliasSigma: number): Taps {
  if (!(radius > 0) || !Number.isFinite(radius)) throw new RangeError(`discKernel: radius must be a finite number > 0, got ${radius}`);
  checkSigma("discKernel", aliasSigma);
  const ksize = radius <= 8 ? 3 : 5;
  const pad = (ksize - 1) / 2;
  const r = Math.ceil(radius) + pad;
  const side = 2 * r + 1;
  const disc = new Float64Array(side * side);
  const SUB = 8;
  const r2 = radius * radius;
  let total = 0;
  for (let i = 0; i < side; i++) {
    for (let j = 0; j < side; j++) {
      let inside = 0;
      for (let a = 0; a < SUB; a++) {
        const y = i - r - 0.5 + (a + 0.5) / SUB;
        for (let b = 0; b < SUB; b++) {
          const x = j - r - 0.5 + (b + 0.5) / SUB;
          if (x * x + y * y <= r2) inside++;
        }
      }
      total += disc[i * side + j] = inside / (SUB * SUB);
    }
  }
  for (let i = 0; i < disc.length; i++) disc[i] /= total;
  const g = gaussianKernel1d(ksize, aliasSigma);
  const smooth = separableFilter(Float32Array.from(disc), side, side, g, g, "reflect101");
  let sum = 0;
  for (const v of smooth) sum += v;
  return tapsFromDense(Float64Array.from(smooth, (v) => v / sum), r);
}

/** ImageMagick's motion-blur taps for `radius`, `sigma` (pixels) and `angleDegrees` (see the module comment). */
export function motionKernel(radius: number, sigma: number, angleDegrees: number): Taps {
  if (!(radius > 0) || !Number.isFinite(radius)) throw new RangeError(`motionKernel: radius must be a finite number > 0, got ${radius}`);
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new RangeError(`motionKernel: sigma must be a finite number > 0, got ${sigma}`);
  const width = 2 * Math.ceil(radius) + 1;
  const a = (angleDegrees * Math.PI) / 180;
  // ImageMagick: point = (width sin a, width cos a); offset_i = ceil(i * point / |point| - 0.5), x from cos, y from sin.
  const cos = Math.cos(a);
  const sin = Math.sin(a);
  const weight = new Float64Array(width);
  let sum = 0;
  for (let i = 0; i < width; i++) sum += weight[i] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < width; i++) weight[i] /= sum;
  const dx = new Int32Array(width);
  const dy = new Int32Array(width);
  for (let i = 0; i < width; i++) {
    dx[i] = Math.ceil(i * cos - 0.5);
    dy[i] = Math.ceil(i * sin - 0.5);
  }
  return { dy, dx, weight };
}

/** cv2.blur with a 3x3 box, border reflect101. */
export function boxBlur3(p: ArrayLike<number>, h: number, w: number): Float32Array {
  const k = Float64Array.from([1 / 3, 1 / 3, 1 / 3]);
  return separableFilter(p, h, w, k, k, "reflect101");
}
