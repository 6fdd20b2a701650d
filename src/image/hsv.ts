/**
 * Float RGB <-> HSV, as skimage.color.rgb2hsv / hsv2rgb compute them (the ImageNet-C reference's
 * brightness and saturate, https://arxiv.org/abs/1903.12261), on interleaved RGB values in [0, 1]
 * (any number of pixels; all three of H, S, V in [0, 1]).
 *
 *   V = max(R, G, B);  S = (V - min) / V (0 where V = 0);
 *   H = ((G - B) / delta if R is the max, 2 + (B - R) / delta for G, 4 + (R - G) / delta for B) / 6
 *       mod 1, with ties resolved B over G over R, and H = 0 (and S = 0) where delta = 0.
 * The inverse is the usual sextant formula.
 */

/** RGB -> HSV of every pixel; a new array. */
export function rgbToHsv01(rgb: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i += 3) {
    const r = rgb[i];
    const g = rgb[i + 1];
    const b = rgb[i + 2];
    const v = Math.max(r, g, b);
    const delta = v - Math.min(r, g, b);
    let h = 0;
    let s = 0;
    if (delta > 0) {
      s = v > 0 ? delta / v : 0;
      if (b === v) h = 4 + (r - g) / delta;
      else if (g === v) h = 2 + (b - r) / delta;
      else h = (g - b) / delta;
      h = (h / 6) % 1;
      if (h < 0) h += 1;
    }
    out[i] = h;
    out[i + 1] = s;
    out[i + 2] = v;
  }
  return out;
}

/** HSV -> RGB of every pixel; a new array. */
export function hsvToRgb01(hsv: ArrayLike<number>): Float32Array {
  const out = new Float32Array(hsv.length);
  for (let i = 0; i < hsv.length; i += 3) {
    const h6 = hsv[i] * 6;
    const s = hsv[i + 1];
    const v = hsv[i + 2];
    const sector = Math.floor(h6);
    const f = h6 - sector;
    const p = v * (1 - s);
    const q = v * (1 - f * s);
    const t = v * (1 - (1 - f) * s);
    let r: number;
    let g: number;
    let b: number;
    switch (((sector % 6) + 6) % 6) {
      case 0: [r, g, b] = [v, t, p]; break;
      case 1: [r, g, b] = [q, v, p]; break;
      case 2: [r, g, b] = [p, v, t]; break;
      case 3: [r, g, b] = [p, q, v]; break;
      case 4: [r, g, b] = [t, p, v]; break;
      default: [r, g, b] = [v, p, q];
    }
    out[i] = r;
    out[i + 1] = g;
    out[i + 2] = b;
  }
  return out;
}
