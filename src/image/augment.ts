/**
 * open_clip's training augmentation (`image_transform(..., is_train=True)` without timm, in
 * https://github.com/mlfoundations/open_clip/blob/main/src/open_clip/transform.py), seeded:
 *
 *   RandomResizedCrop(size, scale=cfg.scale, interpolation=BICUBIC)   in the stored mode
 *   convert("RGB")
 *   color_jitter(*cfg.color_jitter, p=cfg.color_jitter_prob)           if color_jitter_prob
 *   gray_scale(p=cfg.gray_scale_prob)                                   if gray_scale_prob
 *
 * RandomResizedCrop samples as torchvision 0.14 does: up to 10 attempts of an area fraction
 * uniform in `scale` and a log-uniform aspect ratio in `ratio` (w = round(sqrt(area * ratio)),
 * h = round(sqrt(area / ratio)), Python rounding), accepted when it fits, at a uniform offset;
 * otherwise a centre crop clamped to the ratio range. The crop is resized to size x size with
 * Pillow's rules for the stored mode (premultiplied RGBA, NEAREST for palette images, ...).
 * ColorJitter draws a random order of its four functions, then each factor (brightness,
 * contrast, saturation uniform in [max(0, 1 - v), 1 + v], hue in [-v, v]), and applies them in
 * that order (colour.ts has the Pillow arithmetic). open_clip passes no `ratio` to
 * RandomResizedCrop (its own `ratio` field is timm's), so torchvision's (3/4, 4/3) applies; here
 * `ratio` may be set and defaults to that.
 *
 * Every draw comes from the `Random` passed in, in a fixed order, so one generator seeded per
 * (seed, epoch, item) reproduces the same pixels anywhere (a worker thread or the main thread).
 * The draws are not torch's: the same seed does not give open_clip's crops.
 */
import type { Random } from "../util/random";
import { adjustBrightness, adjustContrast, adjustHue, adjustSaturation, toGrayscale } from "./colour";
import { fromStored, pilCrop, pilResize, pilToRGB } from "./pil_image";
import { pyRound } from "./preprocess";
import type { StoredImage } from "./stored";

/** open_clip's `AugmentationCfg` fields that its non-timm training transform uses. */
export interface AugmentationCfg {
  /** Area fraction range of RandomResizedCrop, default [0.9, 1.0]. */
  scale?: [number, number];
  /** Aspect ratio range (w / h) of RandomResizedCrop, default [3/4, 4/3]. */
  ratio?: [number, number];
  /** ColorJitter strengths: [brightness, contrast, saturation, hue], or one number for the first three. */
  color_jitter?: number | [number, number, number] | [number, number, number, number];
  /** Probability of applying ColorJitter (open_clip applies it only when this is set). */
  color_jitter_prob?: number;
  /** Probability of converting to grey (three equal channels). */
  gray_scale_prob?: number;
}

/** A checked AugmentationCfg with every range spelled out. */
export interface Augmentation {
  scale: [number, number];
  ratio: [number, number];
  /** Factor ranges; null where that function is off (strength 0). */
  brightness: [number, number] | null;
  contrast: [number, number] | null;
  saturation: [number, number] | null;
  hue: [number, number] | null;
  colorJitterProb: number;
  grayScaleProb: number;
}

const KEYS = ["scale", "ratio", "color_jitter", "color_jitter_prob", "gray_scale_prob"];
const TIMM_KEYS = ["re_prob", "re_count", "use_timm", "naflex"];

/** Validates an AugmentationCfg (unknown keys and bad values are one-line errors naming the field). */
export function resolveAugmentation(cfg: AugmentationCfg = {}, what = "aug_cfg"): Augmentation {
  if (cfg === null || typeof cfg !== "object") throw new TypeError(`${what}: expected an object with keys ${KEYS.join(", ")}`);
  for (const [k, v] of Object.entries(cfg)) {
    if (v === undefined || v === null) continue;
    if (TIMM_KEYS.includes(k)) throw new RangeError(`${what}: ${k} needs timm's transform (open_clip use_timm), which cliplab does not implement; valid keys: ${KEYS.join(", ")}`);
    if (!KEYS.includes(k)) throw new RangeError(`${what}: unknown key ${JSON.stringify(k)}; valid keys: ${KEYS.join(", ")}`);
  }
  const scale = range(cfg.scale ?? [0.9, 1.0], `${what}.scale`, 0, 1);
  if (scale[1] <= 0) throw new RangeError(`${what}.scale: the upper end must be > 0, got ${JSON.stringify(cfg.scale)}`);
  const ratio = range(cfg.ratio ?? [3 / 4, 4 / 3], `${what}.ratio`, Number.MIN_VALUE, Infinity);
  const colorJitterProb = prob(cfg.color_jitter_prob ?? 0, `${what}.color_jitter_prob`);
  const grayScaleProb = prob(cfg.gray_scale_prob ?? 0, `${what}.gray_scale_prob`);
  let strengths: [number, number, number, number] = [0, 0, 0, 0];
  if (cfg.color_jitter !== undefined && cfg.color_jitter !== null) {
    const cj = cfg.color_jitter;
    const list = typeof cj === "number" ? [cj, cj, cj, 0] : Array.isArray(cj) && (cj.length === 3 || cj.length === 4) ? [...cj, 0].slice(0, 4) : null;
    if (!list || list.some((v) => typeof v !== "number" || !Number.isFinite(v) || v < 0)) {
      throw new RangeError(`${what}.color_jitter must be a number or [brightness, contrast, saturation(, hue)] of non-negative numbers, got ${JSON.stringify(cj)}`);
    }
    if (list[3] > 0.5) throw new RangeError(`${what}.color_jitter: hue must be in [0, 0.5], got ${list[3]}`);
    strengths = list as [number, number, number, number];
    if (colorJitterProb === 0) throw new RangeError(`${what}.color_jitter is set but color_jitter_prob is not: open_clip applies ColorJitter only with a probability`);
  } else if (colorJitterProb > 0) {
    throw new RangeError(`${what}.color_jitter_prob is set but color_jitter is not: give [brightness, contrast, saturation, hue]`);
  }
  const around1 = (v: number): [number, number] | null => (v === 0 ? null : [Math.max(0, 1 - v), 1 + v]);
  return {
    scale,
    ratio,
    brightness: around1(strengths[0]),
    contrast: around1(strengths[1]),
    saturation: around1(strengths[2]),
    hue: strengths[3] === 0 ? null : [-strengths[3], strengths[3]],
    colorJitterProb,
    grayScaleProb,
  };
}

function range(v: unknown, what: string, min: number, max: number): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || v.some((x) => typeof x !== "number" || !Number.isFinite(x)) || v[0] > v[1] || v[0] < min || v[1] > max) {
    throw new RangeError(`${what} must be [low, high] with ${min === Number.MIN_VALUE ? "0 <" : `${min} <=`} low <= high${Number.isFinite(max) ? ` <= ${max}` : ""}, got ${JSON.stringify(v)}`);
  }
  return [v[0], v[1]];
}

function prob(v: unknown, what: string): number {
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw new RangeError(`${what} must be a probability in [0, 1], got ${JSON.stringify(v)}`);
  return v;
}

/** A crop box in pixels. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** torchvision's `RandomResizedCrop.get_params` with draws from `rng` (float32 like torch's). */
export function randomResizedCropBox(height: number, width: number, scale: [number, number], ratio: [number, number], rng: Random): CropBox {
  const area = height * width;
  const f = Math.fround;
  const logLo = f(Math.log(ratio[0]));
  const logHi = f(Math.log(ratio[1]));
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * f(scale[0] + (scale[1] - scale[0]) * rng.next());
    const aspect = f(Math.exp(f(logLo + (logHi - logLo) * rng.next())));
    const w = pyRound(Math.sqrt(targetArea * aspect));
    const h = pyRound(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  // Fallback: the centre crop, clamped to the ratio range.
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) h = pyRound(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = pyRound(h * Math.max(...ratio));
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** torchvision's `F.resized_crop(img, top, left, h, w, [size, size], BICUBIC)` + `convert("RGB")`. */
export function resizedCrop(img: StoredImage, box: CropBox, size: number): Uint8Array {
  const im = pilCrop(fromStored(img, "resizedCrop: img"), box.left, box.top, box.width, box.height);
  return pilToRGB(pilResize(im, size, size, "bicubic"));
}

/** The four ColorJitter functions, by torchvision's index. */
const JITTER = [adjustBrightness, adjustContrast, adjustSaturation, adjustHue];

/**
 * One training view of `img`: `[size, size, 3]` uint8 RGB, every random choice drawn from `rng`
 * (crop, then jitter gate, order and factors, then the grey gate).
 */
export function augmentStored(img: StoredImage, size: number, aug: Augmentation, rng: Random): Uint8Array {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`augmentStored: size must be a positive integer, got ${String(size)}`);
  const box = randomResizedCropBox(img.height, img.width, aug.scale, aug.ratio, rng);
  let rgb = resizedCrop(img, box, size);
  if (aug.colorJitterProb > 0 && rng.next() < aug.colorJitterProb) {
    const order = rng.shuffle([0, 1, 2, 3]) as number[];
    const ranges = [aug.brightness, aug.contrast, aug.saturation, aug.hue];
    const factors = ranges.map((r) => (r ? Math.fround(r[0] + (r[1] - r[0]) * rng.next()) : null));
    for (const fn of order) {
      const factor = factors[fn];
      if (factor !== null) rgb = JITTER[fn](rgb, factor);
    }
  }
  if (aug.grayScaleProb > 0 && rng.next() < aug.grayScaleProb) rgb = toGrayscale(rgb);
  return rgb;
}
