/**
 * torchvision's colour adjustments on an RGB image as Pillow computes them: the four functions
 * `ColorJitter` applies (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue) and
 * `Grayscale(num_output_channels=3)`, which `RandomGrayscale` applies. References:
 * torchvision 0.14 `transforms/functional_pil.py`; Pillow 9.4 `ImageEnhance.py`,
 * `libImaging/Blend.c`, `libImaging/Convert.c` (https://github.com/python-pillow/Pillow/tree/9.4.0).
 *
 * The three enhancers are `Image.blend(degenerate, image, factor)`: per byte
 * `in1 + factor * (in2 - in1)` in C float arithmetic, truncated to uint8 (clipped to 0-255 when
 * the factor is outside [0, 1]); factor 0 and 1 return a copy of one side. The degenerates:
 * brightness black; contrast a constant grey, `int(mean(L) + 0.5)` of the image's "L" conversion;
 * saturation the "L" conversion itself. Hue goes through Pillow's 8-bit HSV and adds
 * `uint8(trunc(factor * 255))` to H modulo 256, as torchvision does with numpy.
 *
 * All functions take and return `[height * width * 3]` uint8 RGB, new arrays.
 */
import { hsvToRgb, luma, rgbToHsv, rgbToL } from "./convert";

/** `Image.blend(degenerate, image, alpha)` for equal-sized byte buffers. */
export function blend(degenerate: Uint8Array, image: Uint8Array, alpha: number): Uint8Array {
  if (degenerate.length !== image.length) throw new RangeError(`blend: buffers differ in length (${degenerate.length} vs ${image.length})`);
  const a = Math.fround(alpha); // ImagingBlend takes a C float
  if (a === 0) return degenerate.slice();
  if (a === 1) return image.slice();
  const out = new Uint8Array(image.length);
  const f = Math.fround;
  if (a >= 0 && a <= 1) {
    for (let i = 0; i < out.length; i++) {
      const in1 = degenerate[i];
      out[i] = Math.trunc(f(in1 + f(a * (image[i] - in1))));
    }
  } else {
    for (let i = 0; i < out.length; i++) {
      const in1 = degenerate[i];
      const t = f(in1 + f(a * (image[i] - in1)));
      out[i] = t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
    }
  }
  return out;
}

/** `F.adjust_brightness`: blend with black. */
export function adjustBrightness(rgb: Uint8Array, factor: number): Uint8Array {
  checkRGB("adjustBrightness", rgb);
  return blend(new Uint8Array(rgb.length), rgb, factor);
}

/** `F.adjust_contrast`: blend with the image's mean grey level (of its "L" conversion, rounded). */
export function adjustContrast(rgb: Uint8Array, factor: number): Uint8Array {
  checkRGB("adjustContrast", rgb);
  const l = rgbToL(rgb);
  let sum = 0;
  for (let i = 0; i < l.length; i++) sum += l[i];
  const mean = Math.trunc(sum / l.length + 0.5); // ImageStat's mean, then int(mean + 0.5)
  return blend(new Uint8Array(rgb.length).fill(mean), rgb, factor);
}

/** `F.adjust_saturation`: blend with the image's grey ("L" replicated to RGB). */
export function adjustSaturation(rgb: Uint8Array, factor: number): Uint8Array {
  checkRGB("adjustSaturation", rgb);
  return blend(toGrayscale(rgb), rgb, factor);
}

/** `F.adjust_hue`, factor in [-0.5, 0.5]: H shifted by `trunc(factor * 255)` modulo 256. */
export function adjustHue(rgb: Uint8Array, factor: number): Uint8Array {
  checkRGB("adjustHue", rgb);
  if (!(factor >= -0.5 && factor <= 0.5)) throw new RangeError(`adjustHue: factor must be in [-0.5, 0.5], got ${String(factor)}`);
  const hsv = rgbToHsv(rgb);
  const shift = ((Math.trunc(factor * 255) % 256) + 256) % 256; // np.uint8(factor * 255)
  for (let i = 0; i < hsv.length; i += 3) hsv[i] = (hsv[i] + shift) & 255;
  return hsvToRgb(hsv);
}

/** `F.rgb_to_grayscale(img, 3)`: Pillow's "L" replicated to three channels. */
export function toGrayscale(rgb: Uint8Array): Uint8Array {
  checkRGB("toGrayscale", rgb);
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i += 3) out[i] = out[i + 1] = out[i + 2] = luma(rgb[i], rgb[i + 1], rgb[i + 2]);
  return out;
}

function checkRGB(fn: string, rgb: Uint8Array): void {
  if (!(rgb instanceof Uint8Array) || rgb.length % 3 !== 0 || rgb.length === 0) {
    throw new TypeError(`${fn}: expected a non-empty Uint8Array of interleaved RGB (length a multiple of 3)`);
  }
}
