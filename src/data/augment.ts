/**
 * Seeded augmentations for small grey images (Fashion-MNIST's 28x28): horizontal flip (for chosen
 * classes), small rotation (bilinear), integer shift (pad with black + crop), contrast jitter and
 * gaussian noise, in that order. Everything random comes from the `Random` passed in, so a seeded
 * generator reproduces the result on any machine.
 *
 * Every image draws the same five uniforms (flip, angle, dx, dy, contrast) whatever the config, so
 * changing one strength does not reshuffle the others; noise then draws two more (where to read a
 * fixed table of normals).
 * Output is float32 in the input's units (0-255 for uint8 input), clipped to [0, maxValue].
 * A config whose strengths are all zero returns the input unchanged.
 */
import { Random } from "../util/random";

export interface AugmentConfig {
  /** Largest shift in pixels along each axis (integer, uniform in [-shift, shift]); revealed pixels are black. */
  shift?: number;
  /** Probability of a horizontal flip, in [0, 1]. */
  flip?: number;
  /** Labels that may be flipped (default: all). Fashion-MNIST's shoes all point left, so e.g. [0, 1, 2, 3, 4, 6, 8]. */
  flipClasses?: number[];
  /** Largest rotation in degrees (uniform in [-rotate, rotate]), bilinear, black outside; at most 180. */
  rotate?: number;
  /** Standard deviation of additive gaussian noise, as a fraction of the value range (0.05 = 12.75 grey levels). */
  noise?: number;
  /** Contrast factor uniform in [1 - contrast, 1 + contrast], blending each image with its mean (torchvision's adjust_contrast); in [0, 1]. */
  contrast?: number;
}

export const AUGMENT_KEYS = ["shift", "flip", "flipClasses", "rotate", "noise", "contrast"] as const;

/** A validated config with every field present (zero / all classes where absent). */
export interface ResolvedAugmentConfig {
  shift: number;
  flip: number;
  flipClasses: Set<number> | null;
  rotate: number;
  noise: number;
  contrast: number;
}

/**
 * Checks an augmentation config; each error is one line naming the key and, for an unknown key,
 * listing the valid ones.
 */
export function validateAugmentConfig(cfg: unknown, what = "augment"): ResolvedAugmentConfig {
  if (cfg === null || typeof cfg !== "object" || Array.isArray(cfg)) {
    throw new TypeError(`${what}: expected an object with keys ${AUGMENT_KEYS.join(", ")}, got ${Array.isArray(cfg) ? "an array" : String(cfg)}`);
  }
  const o = cfg as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(AUGMENT_KEYS as readonly string[]).includes(k)) {
      throw new RangeError(`${what}: unknown key ${JSON.stringify(k)}; valid keys: ${AUGMENT_KEYS.join(", ")}`);
    }
  }
  const num = (k: string, lo: number, hi: number, integer = false): number => {
    const v = o[k] ?? 0;
    if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
      throw new RangeError(`${what}.${k} must be ${integer ? "an integer" : "a number"} in [${lo}, ${hi}], got ${JSON.stringify(v) ?? String(v)}`);
    }
    return v;
  };
  let flipClasses: Set<number> | null = null;
  if (o.flipClasses !== undefined) {
    const fc = o.flipClasses;
    if (!Array.isArray(fc) || fc.some((c) => !Number.isInteger(c) || c < 0)) {
      throw new RangeError(`${what}.flipClasses must be an array of non-negative integer labels, got ${JSON.stringify(fc)}`);
    }
    flipClasses = new Set(fc as number[]);
  }
  return {
    shift: num("shift", 0, 1000, true),
    flip: num("flip", 0, 1),
    flipClasses,
    rotate: num("rotate", 0, 180),
    noise: num("noise", 0, 1),
    contrast: num("contrast", 0, 1),
  };
}

export interface AugmentImageOptions {
  /** The image's class, needed when the config restricts `flipClasses`. */
  label?: number;
  /** Top of the value range: default 255 for uint8 input, 1 for float input. */
  maxValue?: number;
  /** Where the image starts in `src` (for a batch buffer). */
  srcOffset?: number;
  /** Output buffer (h*w float32) and where to write in it. */
  out?: Float32Array;
  outOffset?: number;
}

function resolve(cfg: AugmentConfig | ResolvedAugmentConfig): ResolvedAugmentConfig {
  const fc = (cfg as ResolvedAugmentConfig).flipClasses;
  return fc === null || fc instanceof Set ? (cfg as ResolvedAugmentConfig) : validateAugmentConfig(cfg);
}

/** One augmented image (see the module comment), `h*w` float32 written at `out[outOffset]`. */
export function augmentImage(
  src: Uint8Array | Float32Array,
  h: number,
  w: number,
  cfg: AugmentConfig | ResolvedAugmentConfig,
  rng: Random,
  opts: AugmentImageOptions = {},
): Float32Array {
  const c = resolve(cfg);
  const n = h * w;
  const srcOffset = opts.srcOffset ?? 0;
  const outOffset = opts.outOffset ?? 0;
  const out = opts.out ?? new Float32Array(n);
  if (!Number.isInteger(h) || !Number.isInteger(w) || h <= 0 || w <= 0) throw new RangeError(`augmentImage: bad size ${h}x${w}`);
  if (srcOffset < 0 || srcOffset + n > src.length) throw new RangeError(`augmentImage: source of ${src.length} values has no ${h}x${w} image at ${srcOffset}`);
  if (outOffset < 0 || outOffset + n > out.length) throw new RangeError(`augmentImage: output of ${out.length} values has no room for ${h}x${w} at ${outOffset}`);
  const maxValue = opts.maxValue ?? (src instanceof Uint8Array ? 255 : 1);

  // Fixed draws, whatever the config.
  const uFlip = rng.next();
  const uAngle = rng.next();
  const uDx = rng.next();
  const uDy = rng.next();
  const uContrast = rng.next();

  let flip = false;
  if (c.flip > 0 && uFlip < c.flip) {
    if (c.flipClasses === null) flip = true;
    else {
      if (opts.label === undefined) throw new RangeError("augmentImage: the config restricts flipClasses, so the image's label is needed");
      flip = c.flipClasses.has(opts.label);
    }
  }
  const angle = c.rotate > 0 ? ((2 * uAngle - 1) * c.rotate * Math.PI) / 180 : 0;
  const span = 2 * c.shift + 1;
  const dx = c.shift > 0 ? Math.min(Math.floor(uDx * span), span - 1) - c.shift : 0;
  const dy = c.shift > 0 ? Math.min(Math.floor(uDy * span), span - 1) - c.shift : 0;

  if (angle === 0) copyShifted(src, srcOffset, h, w, dx, dy, flip, out, outOffset);
  else rotateBilinear(src, srcOffset, h, w, angle, dx, dy, flip, out, outOffset);
  const factor = 1 + c.contrast * (2 * uContrast - 1);
  if (factor !== 1) adjustContrast(out, outOffset, n, factor, maxValue);
  if (c.noise > 0) {
    // Normals from a fixed table, read from a random start with a random odd stride: ~1 ms for
    // 512 images instead of ~30 ms of Box-Muller, and an image's values are distinct table
    // entries (an odd stride visits all 65536 before repeating).
    const table = noiseTable();
    const start = rng.int(table.length);
    const stride = 2 * rng.int(table.length >> 1) + 1;
    addNoise(out, outOffset, n, table, start, stride, c.noise * maxValue, maxValue);
  }
  return out;
}

// The stages are small separate functions so that V8 optimises each loop on its own.

/** Integer shift (and flip): an exact copy of the pixels that stay inside, black elsewhere. */
function copyShifted(
  src: Uint8Array | Float32Array,
  srcOffset: number,
  h: number,
  w: number,
  dx: number,
  dy: number,
  flip: boolean,
  out: Float32Array,
  outOffset: number,
): void {
  for (let y = 0; y < h; y++) {
    const sy = y - dy;
    const o = outOffset + y * w;
    if (sy < 0 || sy >= h) {
      out.fill(0, o, o + w);
      continue;
    }
    const row = srcOffset + sy * w;
    for (let x = 0; x < w; x++) {
      const sx0 = x - dx;
      out[o + x] = sx0 >= 0 && sx0 < w ? src[row + (flip ? w - 1 - sx0 : sx0)] : 0;
    }
  }
}

/**
 * Rotation about the centre with bilinear sampling, after a flip and before a shift: each output
 * pixel centre is mapped back (undo the shift, rotate back, flip). The map is affine, so u, v
 * advance by constants along a row. The source sits in a zero-bordered copy, so a sample whose
 * 2x2 neighbourhood touches the image reads without bounds checks and the border gives black.
 */
function rotateBilinear(
  src: Uint8Array | Float32Array,
  srcOffset: number,
  h: number,
  w: number,
  angle: number,
  dx: number,
  dy: number,
  flip: boolean,
  out: Float32Array,
  outOffset: number,
): void {
  const W2 = w + 2;
  const p = paddedScratch(h, w);
  for (let y = 0; y < h; y++) {
    const r = srcOffset + y * w;
    const o = (y + 1) * W2 + 1;
    for (let x = 0; x < w; x++) p[o + x] = src[r + x];
  }
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const su = flip ? -1 : 1;
  const fu = flip ? w - 1 : 0;
  const dudx = su * cos;
  const dvdx = -sin;
  const rx0 = -dx - cx;
  for (let y = 0; y < h; y++) {
    const ry = y - dy - cy;
    let u = su * (cos * rx0 + sin * ry + cx) + fu;
    let v = -sin * rx0 + cos * ry + cy;
    const o = outOffset + y * w;
    for (let x = 0; x < w; x++, u += dudx, v += dvdx) {
      const x0 = Math.floor(u);
      const y0 = Math.floor(v);
      if (x0 < -1 || x0 > w - 1 || y0 < -1 || y0 > h - 1) {
        out[o + x] = 0;
        continue;
      }
      const fx = u - x0;
      const fy = v - y0;
      const i = (y0 + 1) * W2 + x0 + 1;
      const top = p[i] + fx * (p[i + 1] - p[i]);
      const bottom = p[i + W2] + fx * (p[i + W2 + 1] - p[i + W2]);
      out[o + x] = top + fy * (bottom - top);
    }
  }
}

/** Blend with the image's mean grey: mean + factor * (v - mean), clipped. */
function adjustContrast(out: Float32Array, offset: number, n: number, factor: number, maxValue: number): void {
  let mean = 0;
  for (let i = offset; i < offset + n; i++) mean += out[i];
  mean /= n;
  for (let i = offset; i < offset + n; i++) {
    const v = mean + factor * (out[i] - mean);
    out[i] = Math.max(0, Math.min(maxValue, v));
  }
}

function addNoise(out: Float32Array, offset: number, n: number, table: Float32Array, start: number, stride: number, std: number, maxValue: number): void {
  const mask = table.length - 1;
  for (let i = offset, j = start; i < offset + n; i++, j = (j + stride) & mask) {
    const v = out[i] + std * table[j];
    out[i] = Math.max(0, Math.min(maxValue, v));
  }
}

let padded: Float32Array | null = null;
let paddedH = 0;
let paddedW = 0;

/** A zero-bordered (h+2)x(w+2) buffer, reused; only its interior is ever written. */
function paddedScratch(h: number, w: number): Float32Array {
  if (!padded || paddedH !== h || paddedW !== w) {
    padded = new Float32Array((h + 2) * (w + 2));
    paddedH = h;
    paddedW = w;
  }
  return padded;
}

let normals: Float32Array | null = null;

/** 65536 standard normals from a fixed seed (the same on every machine). */
function noiseTable(): Float32Array {
  if (!normals) normals = new Random(0x5eed0fa1).fillNormal(new Float32Array(1 << 16));
  return normals;
}

/**
 * Augments `count` images stored back to back in `images` (`count*h*w` values), image i with
 * class `labels[i]`, drawing from `rng` in image order. Returns `count*h*w` float32.
 */
export function augmentBatch(
  images: Uint8Array | Float32Array,
  labels: ArrayLike<number> | null,
  h: number,
  w: number,
  cfg: AugmentConfig | ResolvedAugmentConfig,
  rng: Random,
  maxValue?: number,
): Float32Array {
  const c = resolve(cfg);
  const n = h * w;
  if (images.length % n !== 0) throw new RangeError(`augmentBatch: ${images.length} values is not a whole number of ${h}x${w} images`);
  const count = images.length / n;
  if (labels !== null && labels.length !== count) throw new RangeError(`augmentBatch: ${count} images but ${labels.length} labels`);
  const out = new Float32Array(images.length);
  for (let i = 0; i < count; i++) {
    augmentImage(images, h, w, c, rng, { label: labels === null ? undefined : labels[i], maxValue, srcOffset: i * n, out, outOffset: i * n });
  }
  return out;
}
