/**
 * Pillow's resampling, integer for integer: `Image.resize` on 8-bit images (libImaging/Resample.c,
 * fixed-point), on 32-bit integer images (mode "I", double accumulation), and NEAREST
 * (libImaging/Geometry.c, `ImagingScaleAffine`). Reference: Pillow 9.4.0,
 * https://github.com/python-pillow/Pillow/blob/9.4.0/src/libImaging/Resample.c
 *
 * The antialiased filters are separable convolutions whose support widens with the downscale
 * factor (see resize.ts for the coordinate conventions). Differences from a float resize that
 * Pillow's output depends on, kept here:
 * - 8-bit images: each window's weights (normalised to sum 1 in double) are converted to 22-bit
 *   fixed point, `trunc(w * 2^22 ± 0.5)`; a pixel is `clip8((2^21 + sum(v * k)) >> 22)` in int32
 *   (Pillow's sums never overflow: 255 * sum|k| * 2^22 < 2^31), and each pass (horizontal first,
 *   then vertical) stores uint8, so the vertical pass reads rounded values.
 * - mode "I": weights stay double, each pass stores `(int)(ss ± 0.5)` (round half away from zero),
 *   unclipped: overshoot below 0 and above 65535 survives until the conversion to RGB clips it.
 * - NEAREST: source index `trunc((i + 0.5) * in / out)`, accumulated by repeated addition of the
 *   step as Pillow does (`xo += a[0]`).
 * - an axis whose size does not change is not filtered (Pillow's `need_horizontal`/`need_vertical`).
 *
 * Buffers are HWC, interleaved, any channel count.
 */

export type ResampleFilter = "bicubic" | "bilinear";

/** Pillow's `bicubic_filter`: Keys cubic with a = -0.5. */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Pillow's `bilinear_filter` (triangle). */
function bilinear(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

const FILTERS: Record<ResampleFilter, { fn: (x: number) => number; support: number }> = {
  bicubic: { fn: bicubic, support: 2 },
  bilinear: { fn: bilinear, support: 1 },
};

/** One axis's taps: output i reads `count[i]` inputs from `start[i]`, weights at `i * ksize`. */
export interface AxisCoeffs {
  ksize: number;
  start: Int32Array; // [outSize]
  count: Int32Array; // [outSize]
  weights: Float64Array; // [outSize * ksize], each window normalised to sum 1
}

/** Pillow's `precompute_coeffs` for the box [0, inSize). */
export function precomputeCoeffs(inSize: number, outSize: number, filter: ResampleFilter): AxisCoeffs {
  const f = FILTERS[filter];
  if (!f) throw new RangeError(`precomputeCoeffs: filter must be one of ${Object.keys(FILTERS).join(", ")}, got ${JSON.stringify(filter)}`);
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = f.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const base = xx * ksize;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = f.fn((x + xmin - center + 0.5) * ss);
      weights[base + x] = w;
      ww += w;
    }
    if (ww !== 0) for (let x = 0; x < xmax; x++) weights[base + x] /= ww;
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, start, count, weights };
}

const PRECISION_BITS = 22; // 32 - 8 - 2
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** Pillow's `normalize_coeffs_8bpc`: weights to 22-bit fixed point, rounded away from zero. */
function fixedPoint(weights: Float64Array): Int32Array {
  const kk = new Int32Array(weights.length);
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    kk[i] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
  }
  return kk;
}

/** The horizontal 8-bit pass: `[height, width, C]` -> `[height, outWidth, C]`, int32 arithmetic. */
function horizontal8(src: Uint8Array, height: number, width: number, C: number, c: AxisCoeffs, outWidth: number): Uint8Array {
  const kk = fixedPoint(c.weights);
  const { ksize, start, count } = c;
  const dst = new Uint8Array(height * outWidth * C);
  for (let y = 0; y < height; y++) {
    const rowIn = y * width * C;
    let d = y * outWidth * C;
    for (let x = 0; x < outWidth; x++) {
      const n = count[x];
      const k0 = x * ksize;
      let p = rowIn + start[x] * C;
      if (C === 3) {
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let k = 0; k < n; k++, p += 3) {
          const w = kk[k0 + k];
          s0 = (s0 + Math.imul(src[p], w)) | 0;
          s1 = (s1 + Math.imul(src[p + 1], w)) | 0;
          s2 = (s2 + Math.imul(src[p + 2], w)) | 0;
        }
        dst[d++] = clip8(s0 >> PRECISION_BITS);
        dst[d++] = clip8(s1 >> PRECISION_BITS);
        dst[d++] = clip8(s2 >> PRECISION_BITS);
      } else {
        for (let e = 0; e < C; e++) {
          let ss = HALF;
          for (let k = 0, q = p + e; k < n; k++, q += C) ss = (ss + Math.imul(src[q], kk[k0 + k])) | 0;
          dst[d++] = clip8(ss >> PRECISION_BITS);
        }
      }
    }
  }
  return dst;
}

/** The vertical 8-bit pass: `[height, W, C]` -> `[outHeight, W, C]`, one accumulator row at a time. */
function vertical8(src: Uint8Array, rowLen: number, c: AxisCoeffs, outHeight: number): Uint8Array {
  const kk = fixedPoint(c.weights);
  const { ksize, start, count } = c;
  const dst = new Uint8Array(outHeight * rowLen);
  const acc = new Int32Array(rowLen);
  for (let y = 0; y < outHeight; y++) {
    acc.fill(HALF);
    const n = count[y];
    for (let k = 0; k < n; k++) {
      const w = kk[y * ksize + k];
      const row = (start[y] + k) * rowLen;
      for (let e = 0; e < rowLen; e++) acc[e] = (acc[e] + Math.imul(src[row + e], w)) | 0;
    }
    const d = y * rowLen;
    for (let e = 0; e < rowLen; e++) dst[d + e] = clip8(acc[e] >> PRECISION_BITS);
  }
  return dst;
}

/** `clip8_lookups[ss >> 22]`: the shifted sum clipped to 0-255. */
function clip8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** The same for mode "I": double weights, `ROUND_UP` (half away from zero), no clipping. */
function pass32(src: Int32Array, outer: number, axis: number, inner: number, channels: number, c: AxisCoeffs, outAxis: number): Int32Array {
  const { ksize, start, count, weights } = c;
  const pixel = inner * channels;
  const dst = new Int32Array(outer * outAxis * pixel);
  for (let o = 0; o < outer; o++) {
    const srcBase = o * axis * pixel;
    const dstBase = o * outAxis * pixel;
    for (let i = 0; i < outAxis; i++) {
      const k0 = i * ksize;
      const n = count[i];
      const first = srcBase + start[i] * pixel;
      const d = dstBase + i * pixel;
      for (let e = 0; e < pixel; e++) {
        let ss = 0;
        for (let k = 0, p = first + e; k < n; k++, p += pixel) ss += src[p] * weights[k0 + k];
        dst[d + e] = Math.trunc(ss >= 0 ? ss + 0.5 : ss - 0.5);
      }
    }
  }
  return dst;
}

/** Integer pixel buffers Pillow resamples exactly: 8-bit modes, and mode "I". */
export type IntPixels = Uint8Array | Int32Array;

/**
 * Pillow's antialiased resize (`ImagingResample`) of an HWC buffer `[height, width, channels]`
 * to `[outHeight, outWidth, channels]`: fixed point for Uint8Array (8-bit modes), double with
 * round-half-away for Int32Array (mode "I"). Always returns a new array.
 */
export function resampleInt<T extends IntPixels>(src: T, height: number, width: number, channels: number, outHeight: number, outWidth: number, filter: ResampleFilter): T {
  checkArgs("resampleInt", src, height, width, channels, outHeight, outWidth);
  const is8 = src instanceof Uint8Array;
  let cur: IntPixels = src;
  if (outWidth !== width) {
    const c = precomputeCoeffs(width, outWidth, filter);
    cur = is8 ? horizontal8(cur as Uint8Array, height, width, channels, c, outWidth) : pass32(cur as Int32Array, height, width, 1, channels, c, outWidth);
  }
  if (outHeight !== height) {
    const c = precomputeCoeffs(height, outHeight, filter);
    cur = is8 ? vertical8(cur as Uint8Array, outWidth * channels, c, outHeight) : pass32(cur as Int32Array, 1, height, outWidth, channels, c, outHeight);
  }
  if (cur === src) cur = is8 ? new Uint8Array(src as Uint8Array) : new Int32Array(src as Int32Array);
  return cur as T;
}

/**
 * Pillow's NEAREST resize (`ImagingScaleAffine` with a = [in/out, 0, 0, 0, in/out, 0]): output
 * pixel i takes source `trunc(xo)`, xo starting at half a step and growing by one step per pixel.
 */
export function resampleNearest<T extends IntPixels>(src: T, height: number, width: number, channels: number, outHeight: number, outWidth: number): T {
  checkArgs("resampleNearest", src, height, width, channels, outHeight, outWidth);
  const xs = nearestIndices(width, outWidth);
  const ys = nearestIndices(height, outHeight);
  const dst = (src instanceof Uint8Array ? new Uint8Array(outHeight * outWidth * channels) : new Int32Array(outHeight * outWidth * channels)) as T;
  for (let y = 0; y < outHeight; y++) {
    const row = ys[y] * width;
    let d = y * outWidth * channels;
    for (let x = 0; x < outWidth; x++) {
      const s = (row + xs[x]) * channels;
      for (let ch = 0; ch < channels; ch++) dst[d++] = src[s + ch];
    }
  }
  return dst;
}

function nearestIndices(inSize: number, outSize: number): Int32Array {
  const step = inSize / outSize;
  const idx = new Int32Array(outSize);
  let xo = step * 0.5;
  for (let x = 0; x < outSize; x++) {
    const xin = xo < 0 ? -1 : Math.trunc(xo);
    idx[x] = xin < inSize ? xin : inSize - 1; // never past the edge for in/out steps; guarded anyway
    xo += step;
  }
  return idx;
}

function checkArgs(fn: string, src: unknown, height: number, width: number, channels: number, outHeight: number, outWidth: number): void {
  for (const [name, v] of [["height", height], ["width", width], ["channels", channels], ["outHeight", outHeight], ["outWidth", outWidth]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${fn}: ${name} must be a positive integer, got ${String(v)}`);
  }
  if (!(src instanceof Uint8Array) && !(src instanceof Int32Array)) throw new TypeError(`${fn}: src must be a Uint8Array (8-bit modes) or Int32Array (mode "I")`);
  if (src.length !== height * width * channels) {
    throw new RangeError(`${fn}: src has ${src.length} values, expected height*width*channels = ${height}*${width}*${channels}`);
  }
}
