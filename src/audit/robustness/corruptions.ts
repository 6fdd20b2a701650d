/**
 * The corruption registry: natural image corruptions at five severities on RGB images of any
 * size, the model's preprocessed input in [0, 1] (the robustness audit corrupts exactly what the
 * model sees).
 *
 *   corrupt(images01, name, severity, seed, firstIndex) -> images01'   [B, H, W, 3] in [0, 1]
 *
 * Sets (`--corruptions SET|name,name`):
 * - "imagenet-c" (the default): ImageNet-C's 15 (Hendrycks & Dietterich 2019, "Benchmarking
 *   Neural Network Robustness to Common Corruptions and Perturbations",
 *   https://arxiv.org/abs/1903.12261), with the reference's parameter tables
 *   (github.com/hendrycks/robustness, ImageNet-C/create_c/make_imagenet_c.py): gaussian_noise,
 *   shot_noise, impulse_noise, defocus_blur, glass_blur, motion_blur, zoom_blur, snow, frost,
 *   fog, brightness, contrast, elastic_transform, pixelate, jpeg_compression;
 * - "imagenet-c-extra": the 4 held-out ones, speckle_noise, gaussian_blur, spatter, saturate;
 * - "cliplab": cliplab's own 11, tuned on 28 px Fashion-MNIST (corruptions_cliplab.ts), ids
 *   prefixed "cliplab/".
 * Implementations: imagenet_c_noise_blur.ts, imagenet_c_weather.ts, imagenet_c_digital.ts. How
 * parameters given for 224 px apply at other sizes: corruption_spec.ts (lengths in pixels x
 * S / 224, image-independent layers drawn on the 224 px grid and resized, per-pixel parameters as
 * given), so at 224 px every parameter is the reference's; `scaledParameters` gives the values
 * applied at a size.
 *
 * - Severity 0 is the identity (a copy).
 * - Seeded per image: image i of a call draws from `Random(mixSeed(seed, seedId, firstIndex + i))`
 *   (seedId fixed per corruption), so an image is corrupted the same whichever batch it comes in,
 *   and a corruption draws the same numbers whatever the severity.
 * - The pixel work is plain JavaScript on the tensor's values: deterministic on every backend.
 */
import * as tf from "@tensorflow/tfjs";
import { Random, mixSeed } from "../../util/random";
import { CORRUPTION_SETS, type CorruptionImpl, type CorruptionParameter, type CorruptionSetName, type CorruptionSpec, type Severity } from "./corruption_spec";
import { CLIPLAB_CORRUPTIONS } from "./corruptions_cliplab";
import { IMAGENET_C_NOISE_BLUR } from "./imagenet_c_noise_blur";
import { IMAGENET_C_WEATHER } from "./imagenet_c_weather";
import { IMAGENET_C_DIGITAL } from "./imagenet_c_digital";
import { checkSeed } from "../../util/checks";

export type { Severity, CorruptionSpec, CorruptionParameter, CorruptionSetName } from "./corruption_spec";
export { CORRUPTION_SETS, IMAGENET_C_SIDE } from "./corruption_spec";
export { OCCLUSION_FILL, REFERENCE_SIDE } from "./corruptions_cliplab";
export { jpegQuantTable } from "../../image/jpeg_quantise";
export { areaResize } from "../../image/planes";

/** ImageNet-C's 15, in the paper's order (noise, blur, weather, digital). */
const IMAGENET_C_ORDER = [
  "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
  "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
];
const EXTRA_ORDER = ["speckle_noise", "gaussian_blur", "spatter", "saturate"];

const IMAGENET_C_ALL = [...IMAGENET_C_NOISE_BLUR, ...IMAGENET_C_WEATHER, ...IMAGENET_C_DIGITAL];
const byName = (name: string) => IMAGENET_C_ALL.find((c) => c.name === name)!;

/** Every corruption: ImageNet-C's 15, the 4 extras, cliplab's 11. */
const IMPLS: CorruptionImpl[] = [...IMAGENET_C_ORDER.map(byName), ...EXTRA_ORDER.map(byName), ...CLIPLAB_CORRUPTIONS];
const BY_NAME = new Map(IMPLS.map((c) => [c.name, c]));

/** The set the audit runs by default. */
export const DEFAULT_CORRUPTION_SET: CorruptionSetName = "imagenet-c";

/** Every corruption id `corrupt` accepts, in a fixed order (ImageNet-C's 15, the 4 extras, cliplab's 11), or those of one set. */
export function listCorruptions(set?: CorruptionSetName): string[] {
  if (set !== undefined) checkSetName(set, "listCorruptions");
  return IMPLS.filter((c) => set === undefined || c.set === set).map((c) => c.name);
}

/** The set names and their corruptions. */
export function listCorruptionSets(): { name: CorruptionSetName; corruptions: string[] }[] {
  return CORRUPTION_SETS.map((name) => ({ name, corruptions: listCorruptions(name) }));
}

function copyParam(p: CorruptionParameter): CorruptionParameter {
  return typeof p === "number" ? p : [...p];
}

/** Every corruption's parameters at severities 1..5 (copies), or those of one set. */
export function corruptionSpecs(set?: CorruptionSetName): CorruptionSpec[] {
  return IMPLS.filter((c) => set === undefined || c.set === set).map(({ name, set: s, parameter, parameterNames, severities, scaling }) => ({
    name,
    set: s,
    parameter,
    ...(parameterNames ? { parameterNames: [...parameterNames] } : {}),
    severities: severities.map(copyParam) as unknown as CorruptionSpec["severities"],
    scaling,
  }));
}

function checkSetName(set: unknown, fn: string): CorruptionSetName {
  if (!(CORRUPTION_SETS as readonly unknown[]).includes(set)) throw new RangeError(`${fn}: unknown corruption set ${JSON.stringify(set)}; valid sets: ${CORRUPTION_SETS.join(", ")}`);
  return set as CorruptionSetName;
}

/** Throws a one-line error unless `name` is a corruption; returns it. */
export function checkCorruptionName(name: unknown, fn = "corrupt"): string {
  if (typeof name !== "string" || !BY_NAME.has(name)) {
    throw new RangeError(`${fn}: unknown corruption ${JSON.stringify(name)}; valid names: ${listCorruptions().join(", ")} (or a set: ${CORRUPTION_SETS.join(", ")})`);
  }
  return name;
}

/**
 * Corruption ids from a list of set names and ids (or one comma-separated string, as
 * `--corruptions` takes it): sets expand in their order, duplicates are dropped.
 */
export function resolveCorruptions(spec: string | readonly string[], fn = "resolveCorruptions"): string[] {
  const parts = typeof spec === "string" ? spec.split(",").map((s) => s.trim()).filter(Boolean) : [...spec];
  if (parts.length === 0) throw new RangeError(`${fn}: no corruptions given; name a set (${CORRUPTION_SETS.join(", ")}) or corruptions`);
  const out: string[] = [];
  for (const p of parts) {
    const names = (CORRUPTION_SETS as readonly string[]).includes(p) ? listCorruptions(p as CorruptionSetName) : [checkCorruptionName(p, fn)];
    for (const n of names) if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** Throws a one-line error unless `severity` is an integer 0..5. */
export function checkSeverity(severity: unknown, fn = "corrupt"): Severity {
  if (typeof severity !== "number" || !Number.isInteger(severity) || severity < 0 || severity > 5) {
    throw new RangeError(`${fn}: severity must be an integer 0-5 (0 = no corruption), got ${JSON.stringify(severity) ?? String(severity)}`);
  }
  return severity as Severity;
}

/** The parameter corruption `name` applies at `severity` (1-5) to an h x w image (spatial ones scaled; see corruption_spec.ts). */
export function scaledParameters(name: string, severity: Exclude<Severity, 0>, h: number, w = h): CorruptionParameter {
  const fn = "scaledParameters";
  const impl = BY_NAME.get(checkCorruptionName(name, fn))!;
  if (checkSeverity(severity, fn) === 0) throw new RangeError(`${fn}: severity 0 has no parameters (it is the identity)`);
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new RangeError(`${fn}: image size must be positive integers, got ${h} x ${w}`);
  const p = impl.severities[severity - 1];
  return copyParam(impl.scaled ? impl.scaled(p, h, w) : p);
}

/**
 * Throws unless `images01` is a float32 [B, H, W, C] tensor with values in [0, 1]; returns its
 * values (a copy the caller may modify).
 */
export function checkImages01(fn: string, images01: unknown): Float32Array {
  if (!(images01 instanceof tf.Tensor)) throw new TypeError(`${fn}: images01 must be a tf.Tensor4D [B, H, W, C] with values in [0, 1], got ${typeof images01}`);
  if (images01.rank !== 4 || (images01.shape as number[]).some((n) => n < 1)) {
    throw new RangeError(`${fn}: images01 must be a non-empty [B, H, W, C] tensor, got shape [${images01.shape.join(", ")}]`);
  }
  if (images01.dtype !== "float32") throw new TypeError(`${fn}: images01 must be float32, got ${images01.dtype}`);
  const data = Float32Array.from(images01.dataSync() as Float32Array);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(v >= 0 && v <= 1)) throw new RangeError(`${fn}: images01 must hold values in [0, 1] (pixels / 255, before CLIP normalisation), found ${v} at flat index ${i}`);
  }
  return data;
}


/**
 * `images01` RGB [B, H, W, 3] (values in [0, 1], any size) with corruption `name` at `severity`
 * (0 = an exact copy), seeded per image: image i draws from (seed, corruption, firstIndex + i), so
 * corrupting a set batch by batch (firstIndex = the batch's start) equals corrupting it whole.
 * The input is not disposed; the caller disposes the result.
 */
export function corrupt(images01: tf.Tensor4D, name: string, severity: Severity, seed = 0, firstIndex = 0): tf.Tensor4D {
  const fn = "corrupt";
  checkCorruptionName(name, fn);
  checkSeverity(severity, fn);
  checkSeed(fn, seed);
  if (!Number.isInteger(firstIndex) || firstIndex < 0) throw new RangeError(`${fn}: firstIndex must be an integer >= 0, got ${JSON.stringify(firstIndex) ?? String(firstIndex)}`);
  if (images01 instanceof tf.Tensor && images01.rank === 4 && images01.shape[3] !== 3) {
    throw new RangeError(`${fn}: images01 must be RGB [B, H, W, 3], got shape [${images01.shape.join(", ")}] (replicate a grey channel first)`);
  }
  const data = checkImages01(fn, images01);
  const [b, h, w, c] = images01.shape;
  if (severity > 0) {
    const impl = BY_NAME.get(name)!;
    const base = impl.severities[severity - 1];
    const param = impl.scaled ? impl.scaled(base, h, w) : base;
    const n = h * w * c;
    for (let i = 0; i < b; i++) impl.apply(data.subarray(i * n, (i + 1) * n), h, w, param, new Random(mixSeed(seed, impl.seedId, firstIndex + i)));
  }
  return tf.tensor4d(data, [b, h, w, c], "float32"); // [B, H, W, 3]
}
