/**
 * CLIP image preprocessing: resize, crop (or pad), convert to RGB, normalise.
 *
 * Mirrors `_transform(n_px)` in https://github.com/openai/CLIP/blob/main/clip/clip.py:
 *
 *   Compose([Resize(n_px, interpolation=BICUBIC), CenterCrop(n_px), _convert_image_to_rgb,
 *            ToTensor(), Normalize(CLIP_MEAN, CLIP_STD)])
 *
 * and open_clip's `image_transform` (https://github.com/mlfoundations/open_clip,
 * `src/open_clip/transform.py`) for its other resize modes, with torchvision's arithmetic: the
 * short side becomes `size` and the long side `int(size * long / short)` (truncated); the crop
 * offset is Python's `round((h - size) / 2)`, which rounds halves to even; `ToTensor` +
 * `Normalize` are `(u8 / 255 - mean) / std` in float32, each step rounded to float32. Unlike
 * torchvision the output is channels-last (NHWC), the layout TensorFlow.js convolutions use.
 *
 * Order matters. `preprocessStored` works as OpenAI and open_clip do: the image is resized and
 * cropped in its stored mode (decode.ts `decodeStored`) and converted to RGB last, so palette
 * images are resized with nearest neighbour, RGBA premultiplied by alpha (transparent pixels go
 * black) and 16-bit grey in 32-bit integers clipped to 255 at the conversion; this matches Pillow
 * 9.4 + torchvision exactly on PNG/GIF/palette files (test/fixtures/pillow). Hugging Face's
 * `CLIPProcessor` (`CLIPImageProcessor`, `do_convert_rgb=True`) converts to RGB FIRST and then
 * resizes, so on exactly these files (RGBA with transparency, palette, 16-bit grey, 1-bit) it gives
 * other pixels than OpenAI's and open_clip's preprocessing, and than this module.
 * `preprocessImage` (RGB in) is the convert-first path, identical to the stored-mode path for RGB
 * and greyscale images.
 *
 * Resize modes (`ImageTransform.resizeMode`, open_clip's `resize_mode`):
 * - `shortest`: torchvision `Resize(size)` + `CenterCrop(size)` (OpenAI's transform);
 * - `longest`: open_clip's `ResizeKeepRatio(size, longest=1)` (each side `round(side / ratio)`,
 *   ratio the larger of side / size) + `CenterCropOrPad(size, fill=fill_color)`;
 * - `squash`: `Resize((size, size))`, aspect ratio ignored;
 * - `pad` (cliplab's small presets): an image no larger than `size` on both sides is centred on a
 *   `fill_color` canvas (offsets `floor((size - side) / 2)`) without resampling; a larger one goes
 *   the `shortest` way. This is what the Fashion-MNIST presets train with (28 px on 32).
 */
// Types only: tfjs is loaded by `loadImages` when called, so the pipeline's worker threads, which
// import this module, never load it.
import type * as tf from "@tensorflow/tfjs";
import { decodeImage, type RGBImage } from "./decode";
import { fromStored, pilCrop, pilPad, pilResize, pilToRGB, type PilImage } from "./pil_image";
import { resizeBicubic, type PixelArray } from "./resize";
import type { StoredImage } from "./stored";
import { CLIP_MEAN, CLIP_STD, type ImageTransform } from "./transform";
import { checkPositiveInt, showValue } from "../util/checks";

export { CLIP_MEAN, CLIP_STD };

export interface PreprocessOptions {
  /** Per-channel mean, default `CLIP_MEAN`. */
  mean?: ArrayLike<number>;
  /** Per-channel standard deviation, default `CLIP_STD`. */
  std?: ArrayLike<number>;
}

/**
 * Output shape of torchvision's `Resize(size)` with an int size: the short side becomes `size`
 * and the long side `int(size * long / short)`, truncated as Python's `int()` does. A square
 * image stays square.
 */
export function shortSideResizeShape(
  height: number,
  width: number,
  size: number,
): { height: number; width: number } {
  checkPositiveInt("shortSideResizeShape", "height", height);
  checkPositiveInt("shortSideResizeShape", "width", width);
  checkPositiveInt("shortSideResizeShape", "size", size);
  // Same operation order as torchvision (multiply, then true division) so the truncation sees
  // the same double; e.g. 480x640 -> 224x298 (298.67 truncated).
  if (width <= height) return { height: Math.trunc((size * height) / width), width: size };
  return { height: size, width: Math.trunc((size * width) / height) };
}

/**
 * Top-left corner of torchvision's `CenterCrop`: `int(round((H - cropH) / 2))`. Python's `round`
 * rounds halves to even, so an odd excess of 5 gives offset 2 but an excess of 7 gives 4.
 */
export function centerCropOffsets(
  height: number,
  width: number,
  cropHeight: number,
  cropWidth: number,
): { top: number; left: number } {
  checkPositiveInt("centerCropOffsets", "height", height);
  checkPositiveInt("centerCropOffsets", "width", width);
  checkPositiveInt("centerCropOffsets", "cropHeight", cropHeight);
  checkPositiveInt("centerCropOffsets", "cropWidth", cropWidth);
  if (cropHeight > height || cropWidth > width) {
    // torchvision zero-pads here; CLIP never needs it because the short side is resized first.
    throw new RangeError(
      `centerCropOffsets: crop ${cropHeight}x${cropWidth} is larger than the image ${height}x${width}`,
    );
  }
  return {
    top: pyRound((height - cropHeight) / 2),
    left: pyRound((width - cropWidth) / 2),
  };
}

/** Centre crop of an HWC buffer `[height, width, channels]` -> `[cropHeight, cropWidth, channels]`. */
export function centerCrop(
  data: Uint8Array,
  height: number,
  width: number,
  channels: number,
  cropHeight: number,
  cropWidth: number,
): Uint8Array;
export function centerCrop(
  data: Float32Array,
  height: number,
  width: number,
  channels: number,
  cropHeight: number,
  cropWidth: number,
): Float32Array;
export function centerCrop(
  data: PixelArray,
  height: number,
  width: number,
  channels: number,
  cropHeight: number,
  cropWidth: number,
): PixelArray {
  checkPositiveInt("centerCrop", "channels", channels);
  const { top, left } = centerCropOffsets(height, width, cropHeight, cropWidth);
  if (data.length !== height * width * channels) {
    throw new RangeError(
      `centerCrop: data has ${data.length} values, expected ${height}*${width}*${channels}`,
    );
  }
  const rowLen = cropWidth * channels;
  const out = data instanceof Uint8Array ? new Uint8Array(cropHeight * rowLen) : new Float32Array(cropHeight * rowLen);
  for (let y = 0; y < cropHeight; y++) {
    const from = ((top + y) * width + left) * channels;
    out.set(data.subarray(from, from + rowLen), y * rowLen);
  }
  return out;
}

/**
 * `ToTensor` + `Normalize` on HWC uint8 pixels: `(u8 / 255 - mean) / std`, channels-last
 * float32 with the same length as the input. Each operation is rounded to float32 (torch does
 * the arithmetic in float32 with float32 mean/std), which makes the result bit-identical to
 * torchvision's; one float64 expression rounded once would differ in the last bit.
 * The channel count is `mean.length`.
 */
export function normalizePixels(
  u8HWC: Uint8Array,
  mean: ArrayLike<number> = CLIP_MEAN,
  std: ArrayLike<number> = CLIP_STD,
): Float32Array {
  const { m, s } = checkMeanStd("normalizePixels", mean, std);
  const c = m.length;
  if (!(u8HWC instanceof Uint8Array)) throw new TypeError("normalizePixels: pixels must be a Uint8Array");
  if (u8HWC.length % c !== 0) {
    throw new RangeError(`normalizePixels: ${u8HWC.length} values is not a multiple of ${c} channels`);
  }
  // 256 possible inputs per channel: a lookup table does the float32 chain once per value.
  const table = new Float32Array(256 * c);
  for (let ch = 0; ch < c; ch++) {
    for (let v = 0; v < 256; v++) {
      const x = Math.fround(v / 255); // float32 division: the double quotient rounded once is exact
      table[ch * 256 + v] = Math.fround(Math.fround(x - m[ch]) / s[ch]);
    }
  }
  const out = new Float32Array(u8HWC.length);
  for (let i = 0; i < u8HWC.length; i += c) {
    for (let ch = 0; ch < c; ch++) out[i + ch] = table[ch * 256 + u8HWC[i + ch]];
  }
  return out;
}

/**
 * CLIP's `_transform(size)` on a decoded RGB image: `[size, size, 3]` float32 (HWC), i.e. the
 * torchvision `[3, size, size]` tensor transposed to channels-last.
 */
export function preprocessImage(img: RGBImage, size: number, opts: PreprocessOptions = {}): Float32Array {
  checkPositiveInt("preprocessImage", "size", size);
  checkImage("preprocessImage", img);
  const mean = opts.mean ?? CLIP_MEAN;
  const std = opts.std ?? CLIP_STD;
  checkMeanStd("preprocessImage", mean, std, 3);
  const r = shortSideResizeShape(img.height, img.width, size);
  const resized = resizeBicubic(img.data, img.height, img.width, 3, r.height, r.width); // [rh, rw, 3]
  const cropped = centerCrop(resized, r.height, r.width, 3, size, size); // [size, size, 3]
  return normalizePixels(cropped, mean, std);
}

/**
 * The model input of a stored-mode image in 0-255: `[t.size, t.size, 3]` uint8 RGB (HWC), resized
 * and cropped or padded in the stored mode, converted to RGB last (see the header). Robustness
 * attacks work on this, divided by 255; `preprocessStoredNormalized` adds mean/std.
 */
export function preprocessStored(img: StoredImage, t: ImageTransform): Uint8Array {
  const S = t.size;
  checkPositiveInt("preprocessStored", "t.size", S);
  let im = fromStored(img, "preprocessStored: img");
  switch (t.resizeMode) {
    case "shortest":
      im = shortestSide(im, S, t);
      break;
    case "squash":
      im = pilResize(im, S, S, t.interpolation);
      break;
    case "longest": {
      // ResizeKeepRatio(longest=1): ratio = max(h / S, w / S); sides round(side / ratio).
      const ratio = Math.max(im.height / S, im.width / S);
      im = pilResize(im, Math.max(1, pyRound(im.width / ratio)), Math.max(1, pyRound(im.height / ratio)), t.interpolation);
      im = centerCropOrPad(im, S, t.fillColor);
      break;
    }
    case "pad":
      if (im.height <= S && im.width <= S) {
        const top = Math.floor((S - im.height) / 2);
        const left = Math.floor((S - im.width) / 2);
        im = pilPad(im, left, top, S - im.width - left, S - im.height - top, t.fillColor);
      } else {
        im = shortestSide(im, S, t);
      }
      break;
    default:
      throw new RangeError(`preprocessStored: t.resizeMode must be shortest, longest, squash or pad, got ${JSON.stringify(t.resizeMode)}`);
  }
  return pilToRGB(im);
}

/** `preprocessStored` then `ToTensor` + `Normalize(t.mean, t.std)`: `[t.size, t.size, 3]` float32. */
export function preprocessStoredNormalized(img: StoredImage, t: ImageTransform): Float32Array {
  return normalizePixels(preprocessStored(img, t), t.mean, t.std);
}

/** torchvision `Resize(S)` + `CenterCrop(S)` on a working image. */
function shortestSide(im: PilImage, S: number, t: ImageTransform): PilImage {
  const r = shortSideResizeShape(im.height, im.width, S);
  const resized = pilResize(im, r.width, r.height, t.interpolation);
  const { top, left } = centerCropOffsets(r.height, r.width, S, S);
  return pilCrop(resized, left, top, S, S);
}

/** open_clip's `center_crop_or_pad`: pad the short sides ((S - side) // 2 first), then centre crop. */
function centerCropOrPad(im: PilImage, S: number, fill: number): PilImage {
  if (im.width < S || im.height < S) {
    const padW = Math.max(0, S - im.width);
    const padH = Math.max(0, S - im.height);
    im = pilPad(im, padW >> 1, padH >> 1, (padW + 1) >> 1, (padH + 1) >> 1, fill);
  }
  if (im.width === S && im.height === S) return im;
  return pilCrop(im, pyRound((im.width - S) / 2), pyRound((im.height - S) / 2), S, S);
}

/** Python 3's `round(x)` for a double: nearest integer, exact ties to even. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact for |x| < 2^52
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Decode and preprocess image files into one batch tensor `[B, size, size, 3]` float32 (NHWC),
 * in the order of `paths`. Errors name the failing file.
 */
export async function loadImages(
  paths: string[],
  size: number,
  opts: PreprocessOptions = {},
): Promise<tf.Tensor4D> {
  checkPositiveInt("loadImages", "size", size);
  if (!Array.isArray(paths) || paths.some((p) => typeof p !== "string")) {
    throw new TypeError("loadImages: paths must be an array of file path strings");
  }
  checkMeanStd("loadImages", opts.mean ?? CLIP_MEAN, opts.std ?? CLIP_STD, 3);
  const per = size * size * 3;
  const batch = new Float32Array(paths.length * per);
  // A few decodes in flight overlap sharp's thread pool with our JS resize, without holding
  // every decoded full-size image in memory at once.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const i = next++;
      const img = await decodeImage(paths[i]);
      batch.set(preprocessImage(img, size, opts), i * per);
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, paths.length) }, worker));
  const tfjs = await import("@tensorflow/tfjs");
  return tfjs.tensor4d(batch, [paths.length, size, size, 3], "float32");
}



function checkImage(fn: string, img: RGBImage): void {
  if (img === null || typeof img !== "object") throw new TypeError(`${fn}: img must be {width, height, data}`);
  checkPositiveInt(fn, "img.width", img.width);
  checkPositiveInt(fn, "img.height", img.height);
  if (!(img.data instanceof Uint8Array) || img.data.length !== img.width * img.height * 3) {
    throw new RangeError(
      `${fn}: img.data must be a Uint8Array of width*height*3 = ${img.width * img.height * 3} RGB values`,
    );
  }
}

/** Validate mean/std and return them rounded to float32, as torch holds them. */
function checkMeanStd(
  fn: string,
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
  channels?: number,
): { m: Float32Array; s: Float32Array } {
  if (mean == null || std == null || typeof mean.length !== "number" || typeof std.length !== "number") {
    throw new TypeError(`${fn}: mean and std must be arrays of numbers`);
  }
  if (mean.length === 0 || mean.length !== std.length || (channels !== undefined && mean.length !== channels)) {
    throw new RangeError(
      `${fn}: mean and std must have ${channels ?? "the same number of"} values, got ${mean.length} and ${std.length}`,
    );
  }
  const m = Float32Array.from(mean);
  const s = Float32Array.from(std);
  for (let i = 0; i < m.length; i++) {
    if (!Number.isFinite(m[i])) throw new RangeError(`${fn}: mean[${i}] must be finite, got ${showValue(mean[i])}`);
    if (!Number.isFinite(s[i]) || s[i] === 0) {
      throw new RangeError(`${fn}: std[${i}] must be finite and non-zero, got ${showValue(std[i])}`);
    }
  }
  return { m, s };
}
