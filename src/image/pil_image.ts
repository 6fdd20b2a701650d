/**
 * An image in its Pillow mode while it is resized, cropped and padded, with the rules of Pillow's
 * `Image.resize` (https://github.com/python-pillow/Pillow/blob/9.4.0/src/PIL/Image.py):
 *
 * - the same size: a copy, nothing resampled (so an RGBA image keeps the colour under its
 *   transparent pixels);
 * - "P" (and "1", which cliplab stores as "P"): always NEAREST;
 * - "RGBA" / "LA" with a filter other than NEAREST: premultiplied ("RGBa" / "La"), resampled,
 *   un-premultiplied, so fully transparent pixels come out black;
 * - "I" (16-bit grey as Pillow 9.4 opens a PNG): resampled in 32-bit integers, unclipped;
 * - everything else: 8-bit fixed point (resample.ts).
 *
 * `fromStored` turns a StoredImage into this working form ("I;16" widens to "I", Int32Array);
 * `pilToRGB` is `convert("RGB")`, the last step of CLIP's transform.
 */
import { toRGB, premultiplyAlpha, unpremultiplyAlpha, type ConvertibleMode } from "./convert";
import { resampleInt, resampleNearest } from "./resample";
import { checkStoredImage, type StoredImage } from "./stored";
import type { Interpolation } from "./transform";

export type PilMode = ConvertibleMode;

export interface PilImage {
  width: number;
  height: number;
  mode: PilMode;
  /** HWC; Uint8Array for 8-bit modes, Int32Array for "I". Never mutated by these functions. */
  data: Uint8Array | Int32Array;
}

/** Interleaved bands per working mode. */
export const PIL_CHANNELS: Readonly<Record<PilMode, number>> = Object.freeze({ L: 1, LA: 2, RGB: 3, RGBA: 4, P: 3, I: 1 });

/** The working form of a stored image (shares `data` except for "I;16", which is widened). */
export function fromStored(img: StoredImage, what = "image"): PilImage {
  checkStoredImage(img, what);
  if (img.mode === "I;16") return { width: img.width, height: img.height, mode: "I", data: Int32Array.from(img.data) };
  return { width: img.width, height: img.height, mode: img.mode, data: img.data as Uint8Array };
}

/** `img.resize((width, height), interpolation)` with Pillow's mode rules (see the header). */
export function pilResize(img: PilImage, width: number, height: number, interpolation: Interpolation): PilImage {
  if (width === img.width && height === img.height) return { ...img, data: img.data.slice() };
  const c = PIL_CHANNELS[img.mode];
  if (interpolation === "nearest" || img.mode === "P") {
    return { width, height, mode: img.mode, data: resampleNearest(img.data, img.height, img.width, c, height, width) };
  }
  if (interpolation !== "bicubic" && interpolation !== "bilinear") {
    throw new RangeError(`pilResize: interpolation must be bicubic, bilinear or nearest, got ${JSON.stringify(interpolation)}`);
  }
  if (img.mode === "RGBA" || img.mode === "LA") {
    const ch = c as 2 | 4;
    const pre = premultiplyAlpha(img.data as Uint8Array, ch);
    const res = resampleInt(pre, img.height, img.width, ch, height, width, interpolation);
    return { width, height, mode: img.mode, data: unpremultiplyAlpha(res, ch) };
  }
  return { width, height, mode: img.mode, data: resampleInt(img.data, img.height, img.width, c, height, width, interpolation) };
}

/** `img.crop((left, top, left + width, top + height))`; pixels outside the image are 0, as in Pillow. */
export function pilCrop(img: PilImage, left: number, top: number, width: number, height: number): PilImage {
  const c = PIL_CHANNELS[img.mode];
  const out = img.data instanceof Int32Array ? new Int32Array(width * height * c) : new Uint8Array(width * height * c);
  const x0 = Math.max(0, left);
  const x1 = Math.min(img.width, left + width);
  for (let y = 0; y < height; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= img.height || x1 <= x0) continue;
    const from = (sy * img.width + x0) * c;
    out.set(img.data.subarray(from, from + (x1 - x0) * c), (y * width + (x0 - left)) * c);
  }
  return { width, height, mode: img.mode, data: out };
}

/**
 * `ImageOps.expand` as torchvision's `pad` calls it with an integer fill: every band of the
 * border is `fill` (for "RGBA" the alpha too; it is dropped at the conversion to RGB). For "P",
 * Pillow would use palette entry `fill`; cliplab keeps no palette and pads with grey `fill`.
 */
export function pilPad(img: PilImage, left: number, top: number, right: number, bottom: number, fill: number): PilImage {
  const c = PIL_CHANNELS[img.mode];
  const width = img.width + left + right;
  const height = img.height + top + bottom;
  const out = img.data instanceof Int32Array ? new Int32Array(width * height * c) : new Uint8Array(width * height * c);
  if (fill !== 0) out.fill(fill);
  const row = img.width * c;
  for (let y = 0; y < img.height; y++) out.set(img.data.subarray(y * row, (y + 1) * row), ((y + top) * width + left) * c);
  return { width, height, mode: img.mode, data: out };
}

/** `convert("RGB")`: `[height * width * 3]` uint8. */
export function pilToRGB(img: PilImage): Uint8Array {
  return toRGB(img.data, img.mode);
}
