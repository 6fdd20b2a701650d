/**
 * A seeded procedural frost texture (RGB in [0, 1], HWC) for ImageNet-C's frost corruption
 * (Hendrycks & Dietterich 2019, https://arxiv.org/abs/1903.12261). The reference blends a random
 * 224 px crop of one of six photographs of frost on glass; those photographs are not part of
 * cliplab, so this draws a stand-in of the same kind, not the same pixels: a soft plasma-fractal
 * haze (the frozen film) plus ice dendrites, needles with side branches at +-60 degrees (the
 * hexagonal habit of ice) and branches of branches, drawn anti-aliased, lightly blurred, and tinted
 * a cold blue-white. Lengths are in pixels of the grid it is drawn on (the corruption draws it at
 * 224 px and resizes it).
 *
 * Its brightness is calibrated on the five photographs the reference draws from (their mean RGB
 * over all pixels: 0.57, 0.66, 0.70; deviation about 0.14): this texture's mean is about the same
 * (0.57, 0.66, 0.70 over six seeds at 224 px), with brighter crystals on a paler film.
 */
import type { Random } from "../util/random";
import { gaussianBlur } from "./filters";
import { plasmaFractal } from "./plasma";

/** Crystals per 224 x 224 pixels. */
const CRYSTALS_PER_224 = 70;
const TINT = [0.82, 0.94, 1.0];

function splat(ice: Float32Array, h: number, w: number, y: number, x: number, v: number): void {
  if (y < 0 || y >= h || x < 0 || x >= w) return;
  const i = y * w + x;
  if (v > ice[i]) ice[i] = v;
}

/** Adds a needle from (y, x) along `angle` of `length` px to `ice` (max of the coverage), with branches. */
function needle(ice: Float32Array, h: number, w: number, y: number, x: number, angle: number, length: number, bright: number, depth: number, rng: Random): void {
  const dy = Math.sin(angle);
  const dx = Math.cos(angle);
  for (let t = 0; t <= length; t += 0.5) {
    const py = y + t * dy;
    const px = x + t * dx;
    const y0 = Math.floor(py);
    const x0 = Math.floor(px);
    const fy = py - y0;
    const fx = px - x0;
    // Brighter at the root, fading to the tip.
    const v = bright * (1 - 0.5 * (t / (length + 1e-9)));
    splat(ice, h, w, y0, x0, v * Math.min(1, 1.6 * (1 - fy) * (1 - fx)));
    splat(ice, h, w, y0, x0 + 1, v * Math.min(1, 1.6 * (1 - fy) * fx));
    splat(ice, h, w, y0 + 1, x0, v * Math.min(1, 1.6 * fy * (1 - fx)));
    splat(ice, h, w, y0 + 1, x0 + 1, v * Math.min(1, 1.6 * fy * fx));
  }
  if (depth === 0) return;
  for (let t = 2 + 3 * rng.next(); t < length; t += 2.5 + 3 * rng.next()) {
    const remaining = length - t;
    for (const side of [-1, 1]) {
      if (rng.next() < 0.35) continue;
      const branch = remaining * (0.25 + 0.35 * rng.next());
      if (branch < 1.5) continue;
      needle(ice, h, w, y + t * dy, x + t * dx, angle + (side * Math.PI) / 3 + 0.15 * (rng.next() - 0.5), branch, 0.85 * bright, depth - 1, rng);
    }
  }
}

/** An h x w frost texture, RGB HWC in [0, 1], drawn from `rng`. */
export function frostTexture(h: number, w: number, rng: Random): Float32Array {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new RangeError(`frostTexture: size must be positive integers, got ${h} x ${w}`);
  let size = 2;
  while (size < Math.max(h, w)) size *= 2;
  const haze = plasmaFractal(size, 1.8, rng);
  const ice = new Float32Array(h * w);
  const crystals = Math.max(1, Math.round((CRYSTALS_PER_224 * h * w) / (224 * 224)));
  const scale = Math.sqrt(h * w) / 224;
  for (let k = 0; k < crystals; k++) {
    const y = rng.next() * h;
    const x = rng.next() * w;
    const angle = 2 * Math.PI * rng.next();
    const length = scale * (12 + 45 * rng.next());
    needle(ice, h, w, y, x, angle, length, 0.55 + 0.45 * rng.next(), 2, rng);
  }
  const soft = gaussianBlur(ice, h, w, 0.6 * Math.max(scale, 0.5));
  const out = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = Math.min(1, 0.48 + 0.26 * haze[y * size + x] + 0.8 * soft[i]);
      for (let c = 0; c < 3; c++) out[3 * i + c] = v * TINT[c];
    }
  }
  return out;
}
