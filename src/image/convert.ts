/**
 * Pillow's mode conversions that CLIP's preprocessing and open_clip's augmentation go through,
 * integer for integer (libImaging/Convert.c, Pillow 9.4.0:
 * https://github.com/python-pillow/Pillow/blob/9.4.0/src/libImaging/Convert.c):
 *
 * - premultiply "RGBA" -> "RGBa" and "LA" -> "La": `MULDIV255(v, a) = (t + (t >> 8)) >> 8` with
 *   `t = v * a + 128`; and back: `clip8(trunc(255 * v / a))`, unchanged where a is 0 or 255;
 * - to RGB: "L" replicated, "LA" its L band, "RGBA" alpha dropped (no blending), "I" clipped to
 *   0-255 (`i2rgb`);
 * - RGB -> "L": ITU-R 601-2 luma in 16-bit fixed point, `(19595 R + 38470 G + 7471 B + 0x8000) >> 16`;
 * - RGB <-> "HSV": `rgb2hsv_row` and `hsv2rgb`, with C's float/double mix emulated (`Math.fround`
 *   where the C code stores a float).
 */

/** `MULDIV255(a, b)`: a * b / 255 rounded, in integers. */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

function clip8(v: number): number {
  return v <= 0 ? 0 : v < 256 ? v : 255;
}

/**
 * Premultiplies the colour bands by the last band (alpha), in place of Pillow's "RGBA" -> "RGBa"
 * (channels 4) or "LA" -> "La" (channels 2). Returns a new buffer.
 */
export function premultiplyAlpha(src: Uint8Array, channels: 2 | 4): Uint8Array {
  const out = new Uint8Array(src.length);
  const colour = channels - 1;
  for (let i = 0; i < src.length; i += channels) {
    const a = src[i + colour];
    for (let c = 0; c < colour; c++) out[i + c] = mulDiv255(src[i + c], a);
    out[i + colour] = a;
  }
  return out;
}

/** Pillow's "RGBa" -> "RGBA" / "La" -> "LA": divides the colour bands by alpha. Returns a new buffer. */
export function unpremultiplyAlpha(src: Uint8Array, channels: 2 | 4): Uint8Array {
  const out = new Uint8Array(src.length);
  const colour = channels - 1;
  for (let i = 0; i < src.length; i += channels) {
    const a = src[i + colour];
    if (a === 255 || a === 0) {
      for (let c = 0; c < colour; c++) out[i + c] = src[i + c];
    } else {
      for (let c = 0; c < colour; c++) out[i + c] = clip8(Math.trunc((255 * src[i + c]) / a));
    }
    out[i + colour] = a;
  }
  return out;
}

/** Modes `toRGB` converts from: 8-bit with 1-4 interleaved bands, or "I" (32-bit). */
export type ConvertibleMode = "L" | "LA" | "RGB" | "RGBA" | "P" | "I";

/**
 * `convert("RGB")` of an HWC buffer in `mode` ("P" is already palette-applied RGB): a new
 * `[pixels * 3]` Uint8Array.
 */
export function toRGB(data: Uint8Array | Int32Array, mode: ConvertibleMode): Uint8Array {
  switch (mode) {
    case "RGB":
    case "P":
      return new Uint8Array(data as Uint8Array);
    case "L":
      return replicate(data as Uint8Array, 1);
    case "LA":
      return replicate(data as Uint8Array, 2);
    case "I": {
      const src = data as Int32Array;
      const out = new Uint8Array(src.length * 3);
      for (let i = 0, o = 0; i < src.length; i++, o += 3) {
        const v = src[i];
        out[o] = out[o + 1] = out[o + 2] = v <= 0 ? 0 : v >= 255 ? 255 : v;
      }
      return out;
    }
    case "RGBA": {
      const src = data as Uint8Array;
      const out = new Uint8Array((src.length / 4) * 3);
      for (let i = 0, o = 0; i < src.length; i += 4, o += 3) {
        out[o] = src[i];
        out[o + 1] = src[i + 1];
        out[o + 2] = src[i + 2];
      }
      return out;
    }
    default:
      throw new RangeError(`toRGB: mode must be one of L, LA, RGB, RGBA, P, I, got ${JSON.stringify(mode)}`);
  }
}

/** The first band of each `stride`-band pixel, written to R, G and B. */
function replicate(src: Uint8Array, stride: number): Uint8Array {
  const n = src.length / stride;
  const out = new Uint8Array(n * 3);
  for (let i = 0, o = 0; i < n; i++, o += 3) out[o] = out[o + 1] = out[o + 2] = src[i * stride];
  return out;
}

/** Pillow's RGB -> "L" (`L24(rgb) >> 16`). */
export function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** RGB HWC -> one "L" value per pixel. */
export function rgbToL(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgb.length / 3);
  for (let i = 0, p = 0; p < out.length; i += 3, p++) out[p] = luma(rgb[i], rgb[i + 1], rgb[i + 2]);
  return out;
}

/** Pillow's `rgb2hsv_row` on interleaved RGB: a new interleaved H, S, V buffer (0-255 each). */
export function rgbToHsv(rgb: Uint8Array): Uint8Array {
  const f = Math.fround;
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i += 3) {
    const r = rgb[i];
    const g = rgb[i + 1];
    const b = rgb[i + 2];
    const maxc = Math.max(r, g, b);
    const minc = Math.min(r, g, b);
    out[i + 2] = maxc;
    if (minc === maxc) continue; // h = s = 0
    const cr = maxc - minc; // exact as a float
    const s = f(cr / maxc);
    const rc = f((maxc - r) / cr);
    const gc = f((maxc - g) / cr);
    const bc = f((maxc - b) / cr);
    let h: number;
    if (r === maxc) h = f(bc - gc);
    else if (g === maxc) h = f(2.0 + rc - bc); // double arithmetic, stored in a float
    else h = f(4.0 + gc - rc);
    h = f((h / 6.0 + 1.0) % 1.0); // fmod in double, stored in a float
    out[i] = clip8(Math.trunc(h * 255.0));
    out[i + 1] = clip8(Math.trunc(s * 255.0));
  }
  return out;
}

/** Pillow's `hsv2rgb` on interleaved H, S, V: a new interleaved RGB buffer. */
export function hsvToRgb(hsv: Uint8Array): Uint8Array {
  const f32 = Math.fround;
  const out = new Uint8Array(hsv.length);
  for (let i = 0; i < hsv.length; i += 3) {
    const h = hsv[i];
    const s = hsv[i + 1];
    const v = hsv[i + 2];
    if (s === 0) {
      out[i] = out[i + 1] = out[i + 2] = v;
      continue;
    }
    const sector = Math.floor((h * 6.0) / 255.0);
    const f = f32((h * 6.0) / 255.0 - sector);
    const fs = f32(s / 255.0);
    const p = clip8(Math.round(v * (1.0 - fs)));
    const q = clip8(Math.round(v * (1.0 - f32(fs * f)))); // float * float is a float product in C
    const t = clip8(Math.round(v * (1.0 - fs * (1.0 - f))));
    let R: number, G: number, B: number;
    switch (sector % 6) {
      case 0: R = v; G = t; B = p; break;
      case 1: R = q; G = v; B = p; break;
      case 2: R = p; G = v; B = t; break;
      case 3: R = p; G = q; B = v; break;
      case 4: R = t; G = p; B = v; break;
      default: R = v; G = p; B = q; break;
    }
    out[i] = R;
    out[i + 1] = G;
    out[i + 2] = B;
  }
  return out;
}
