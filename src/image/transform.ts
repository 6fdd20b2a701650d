/**
 * How a model wants its images: open_clip's `PreprocessCfg` (size, mean, std, interpolation,
 * resize_mode, fill_color; https://github.com/mlfoundations/open_clip, `src/open_clip/transform.py`)
 * resolved against the model's input size, validated where it enters.
 *
 * resize modes:
 * - `shortest` (OpenAI's and open_clip's default): resize the shorter side to `size`, centre crop;
 * - `longest`: resize the longer side to `size`, centre pad with `fill_color`;
 * - `squash`: resize both sides to `size`, ignoring the aspect ratio;
 * - `pad` (cliplab's small presets, which train on 28 px Fashion-MNIST at 32 px): an image that
 *   fits is centred on a `fill_color` canvas without resampling; a larger one is resized as
 *   `shortest`. This is what the Fashion-MNIST models were trained with.
 */

/** Per-channel RGB mean of CLIP's training images (clip.py `_transform`). */
export const CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
/** Per-channel RGB standard deviation of CLIP's training images (clip.py `_transform`). */
export const CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export const RESIZE_MODES = ["shortest", "longest", "squash", "pad"] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];
export const INTERPOLATIONS = ["bicubic", "bilinear", "nearest"] as const;
export type Interpolation = (typeof INTERPOLATIONS)[number];

/** open_clip's preprocess_cfg as it appears in `open_clip_config.json` (every field optional). */
export interface PreprocessCfg {
  size?: number | [number, number];
  mode?: string;
  mean?: number[];
  std?: number[];
  interpolation?: string;
  resize_mode?: string;
  fill_color?: number;
}

/** A preprocess_cfg with every field filled in and checked. */
export interface ImageTransform {
  /** Output side in pixels (square). */
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
  interpolation: Interpolation;
  resizeMode: ResizeMode;
  /** 0-255 grey level of padding. */
  fillColor: number;
}

const KEYS = ["size", "mode", "mean", "std", "interpolation", "resize_mode", "fill_color"];

function triple(name: string, v: unknown, what: string): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
    throw new RangeError(`${what}: ${name} must be 3 finite numbers (R, G, B), got ${JSON.stringify(v)}`);
  }
  return [v[0], v[1], v[2]];
}

/**
 * Resolves a preprocess_cfg for a model whose image side is `imageSize`. Unknown keys and bad
 * values are one-line errors naming the field and listing the valid values.
 */
export function resolveTransform(imageSize: number, cfg: PreprocessCfg = {}, what = "preprocess_cfg"): ImageTransform {
  if (cfg === null || typeof cfg !== "object") throw new TypeError(`${what}: expected an object with keys ${KEYS.join(", ")}`);
  for (const k of Object.keys(cfg)) {
    if (!KEYS.includes(k)) throw new RangeError(`${what}: unknown key ${JSON.stringify(k)}; valid keys: ${KEYS.join(", ")}`);
  }
  let size = cfg.size ?? imageSize;
  if (Array.isArray(size)) {
    if (size.length !== 2 || size[0] !== size[1]) throw new RangeError(`${what}: size must be one number or a square [n, n], got ${JSON.stringify(size)}`);
    size = size[0];
  }
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`${what}: size must be a positive integer, got ${JSON.stringify(size)}`);
  if (size !== imageSize) throw new RangeError(`${what}: size ${size} differs from the model's image_size ${imageSize}`);
  if (cfg.mode !== undefined && cfg.mode !== "RGB") throw new RangeError(`${what}: mode must be "RGB", got ${JSON.stringify(cfg.mode)}`);
  const interpolation = (cfg.interpolation ?? "bicubic") as Interpolation;
  if (!INTERPOLATIONS.includes(interpolation)) {
    throw new RangeError(`${what}: interpolation must be one of ${INTERPOLATIONS.join(", ")}, got ${JSON.stringify(cfg.interpolation)}`);
  }
  const resizeMode = (cfg.resize_mode ?? "shortest") as ResizeMode;
  if (!RESIZE_MODES.includes(resizeMode)) {
    throw new RangeError(`${what}: resize_mode must be one of ${RESIZE_MODES.join(", ")}, got ${JSON.stringify(cfg.resize_mode)}`);
  }
  const fillColor = cfg.fill_color ?? 0;
  if (!Number.isInteger(fillColor) || fillColor < 0 || fillColor > 255) throw new RangeError(`${what}: fill_color must be an integer 0-255, got ${JSON.stringify(cfg.fill_color)}`);
  const std = triple("std", cfg.std ?? [...CLIP_STD], what);
  if (std.some((s) => s === 0)) throw new RangeError(`${what}: std must be non-zero, got ${JSON.stringify(std)}`);
  return { size, mean: triple("mean", cfg.mean ?? [...CLIP_MEAN], what), std, interpolation, resizeMode, fillColor };
}

/** The preprocess_cfg form of a transform (what `open_clip_config.json` stores). */
export function transformToCfg(t: ImageTransform): Required<Omit<PreprocessCfg, "size">> & { size: number } {
  return { size: t.size, mode: "RGB", mean: [...t.mean], std: [...t.std], interpolation: t.interpolation, resize_mode: t.resizeMode, fill_color: t.fillColor };
}
