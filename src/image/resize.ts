/**
 * Antialiased bicubic resize matching Pillow's `Image.resize(size, Image.BICUBIC)`.
 *
 * CLIP's preprocessing (`_transform` in https://github.com/openai/CLIP/blob/main/clip/clip.py)
 * starts with torchvision's `Resize(n_px, interpolation=BICUBIC)`, which on a PIL image calls
 * `img.resize((w, h), BICUBIC)`. Pillow's resampler (`libImaging/Resample.c`) is a separable
 * convolution: a horizontal pass, then a vertical pass, each with the Keys cubic kernel (a = -0.5)
 * whose support is widened by the downscale factor so that downscaling averages (antialiases)
 * instead of aliasing. This file reproduces its coordinate conventions exactly:
 *
 *   scale        = inSize / outSize
 *   filterscale  = max(scale, 1)                 (upscaling uses the plain kernel)
 *   support      = 2 * filterscale
 *   center(i)    = (i + 0.5) * scale             (pixel centres, not corners)
 *   xmin         = max(0, trunc(center - support + 0.5))
 *   xmax         = min(inSize, trunc(center + support + 0.5))     (exclusive)
 *   w(x)         = cubic((x - center + 0.5) / filterscale), normalised to sum 1 over the window
 *
 * For 8-bit images Pillow stores the weights in 22-bit fixed point and rounds and clamps to uint8
 * at the end of EACH pass, so the vertical pass sees the rounded output of the horizontal one;
 * uint8 input goes through that exact integer path (`resampleInt` in resample.ts, which also has
 * bilinear, mode "I" and NEAREST). For float32 data (Pillow mode "F") the weights are float64,
 * nothing is rounded or clamped, and the intermediate is stored as float32, as Pillow does.
 *
 * Buffers are HWC (row-major `[height, width, channels]`), interleaved channels.
 */

import { resampleInt } from "./resample";

/** Pixel buffers the resizer accepts: uint8 (Pillow "RGB"/"L") or float32 (Pillow "F"). */
export type PixelArray = Uint8Array | Float32Array;

/** Pillow's bicubic `a`: -0.5 (Keys), not the -0.75 of OpenCV or the -1 of some GPUs. */
export const BICUBIC_A = -0.5;
/** Kernel radius in input pixels at scale 1. */
export const BICUBIC_SUPPORT = 2;

/** The Keys cubic convolution kernel with a = -0.5, as in Pillow's `bicubic_filter`. */
export function bicubicKernel(x: number): number {
  const a = BICUBIC_A;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/**
 * Per-output-pixel filter taps for one axis. Output `i` reads input pixels
 * `start[i] .. start[i] + count[i] - 1` with weights `weights[i * taps .. i * taps + count[i] - 1]`.
 */
export interface ResampleWeights {
  inSize: number;
  outSize: number;
  /** Stride of `weights`: the widest possible window, `ceil(support) * 2 + 1`. */
  taps: number;
  start: Int32Array; // [outSize]
  count: Int32Array; // [outSize]
  weights: Float64Array; // [outSize * taps], each window normalised to sum 1
}

/** Pillow's `precompute_coeffs` for the box [0, inSize) without fixed-point conversion. */
export function resampleWeights(inSize: number, outSize: number): ResampleWeights {
  checkDim("resampleWeights", "inSize", inSize);
  checkDim("resampleWeights", "outSize", outSize);
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = BICUBIC_SUPPORT * filterscale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  // Pillow multiplies by the reciprocal rather than dividing; do the same so the kernel
  // arguments are the same doubles.
  const ss = 1 / filterscale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // `(int)` in C truncates toward zero; the clamp makes truncation vs floor irrelevant below 0.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    const n = xmax - xmin;
    const base = i * taps;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const w = bicubicKernel((k + xmin - center + 0.5) * ss);
      weights[base + k] = w;
      total += w;
    }
    if (total !== 0) {
      for (let k = 0; k < n; k++) weights[base + k] /= total;
    }
    start[i] = xmin;
    count[i] = n;
  }
  return { inSize, outSize, taps, start, count, weights };
}

/**
 * Resize an HWC image with Pillow's antialiased bicubic filter.
 * `src` is `[height, width, channels]`; the result is `[outHeight, outWidth, channels]` of the
 * same element type (a new plain Uint8Array or Float32Array). Like Pillow, an axis whose size does not change is not filtered at all, and
 * the horizontal pass runs before the vertical one.
 */
export function resizeBicubic(
  src: Uint8Array,
  height: number,
  width: number,
  channels: number,
  outHeight: number,
  outWidth: number,
): Uint8Array;
export function resizeBicubic(
  src: Float32Array,
  height: number,
  width: number,
  channels: number,
  outHeight: number,
  outWidth: number,
): Float32Array;
export function resizeBicubic(
  src: PixelArray,
  height: number,
  width: number,
  channels: number,
  outHeight: number,
  outWidth: number,
): PixelArray {
  checkDim("resizeBicubic", "height", height);
  checkDim("resizeBicubic", "width", width);
  checkDim("resizeBicubic", "channels", channels);
  checkDim("resizeBicubic", "outHeight", outHeight);
  checkDim("resizeBicubic", "outWidth", outWidth);
  if (!(src instanceof Uint8Array) && !(src instanceof Float32Array)) {
    throw new TypeError("resizeBicubic: src must be a Uint8Array or Float32Array");
  }
  if (src.length !== height * width * channels) {
    throw new RangeError(
      `resizeBicubic: src has ${src.length} values, expected height*width*channels = ` +
        `${height}*${width}*${channels} = ${height * width * channels}`,
    );
  }
  // Pillow's fixed-point 8-bit path, exactly (always a new plain Uint8Array, never a Buffer).
  if (src instanceof Uint8Array) return resampleInt(src, height, width, channels, outHeight, outWidth, "bicubic");
  let cur: Float32Array = src;
  let curW = width;
  if (outWidth !== width) {
    // [height, width, C] -> [height, outWidth, C]
    cur = resizeAxisF32(cur, height, width, 1, channels, outWidth);
    curW = outWidth;
  }
  if (outHeight !== height) {
    // [height, outWidth, C] -> [outHeight, outWidth, C]: the "row" is then one column of pixels,
    // so the element stride along the axis is a whole image row.
    cur = resizeAxisF32(cur, 1, height, curW, channels, outHeight);
  }
  return cur === src ? new Float32Array(src) : cur;
}

/**
 * Filter float32 data along one axis of a buffer viewed as [outer, axis, inner, C]: the
 * horizontal pass is (outer = H, axis = W, inner = 1) and the vertical one (outer = 1, axis = H,
 * inner = W'). Nothing is rounded or clipped; the Float32Array stores the float32 rounding, like
 * Pillow's "F".
 */
function resizeAxisF32(src: Float32Array, outer: number, axis: number, inner: number, channels: number, outAxis: number): Float32Array {
  const { taps, start, count, weights } = resampleWeights(axis, outAxis);
  const pixel = inner * channels; // elements between neighbours along the axis
  const dst = new Float32Array(outer * outAxis * pixel);
  for (let o = 0; o < outer; o++) {
    const srcBase = o * axis * pixel;
    const dstBase = o * outAxis * pixel;
    for (let i = 0; i < outAxis; i++) {
      const wBase = i * taps;
      const n = count[i];
      const first = srcBase + start[i] * pixel;
      const dstRow = dstBase + i * pixel;
      for (let e = 0; e < pixel; e++) {
        let sum = 0;
        for (let k = 0; k < n; k++) sum += src[first + k * pixel + e] * weights[wBase + k];
        dst[dstRow + e] = sum;
      }
    }
  }
  return dst;
}

function checkDim(fn: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new RangeError(`${fn}: ${name} must be a positive integer, got ${String(v)}`);
  }
}
