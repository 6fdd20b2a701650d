/**
 * What a corruption of the registry (corruptions.ts) is: its parameters at severities 1-5, how
 * they apply at other image sizes, and the function that corrupts one image.
 *
 * Sizes: ImageNet-C's parameters (https://arxiv.org/abs/1903.12261) are given for 224 x 224
 * images. At an image of h x w pixels the side S = sqrt(h * w) and the factor f = S / 224:
 * lengths in pixels (blur sigmas and radii, glass-blur shifts) are multiplied by f; layers drawn
 * independently of the image (snow, frost, fog, spatter, the elastic displacement field) are drawn
 * on the 224 px grid with the reference parameters and resized to the image (their lengths scale
 * by f too, exactly); per-pixel parameters (noise strengths, blends, thresholds, JPEG quality,
 * factors relative to the image such as zoom and pixelation) apply as given. At 224 px every
 * parameter is the reference's.
 */
import type { Random } from "../../util/random";

export type Severity = 0 | 1 | 2 | 3 | 4 | 5;

/** A severity's parameter: one number, or a tuple named by `parameterNames`. */
export type CorruptionParameter = number | readonly number[];

export const CORRUPTION_SETS = ["imagenet-c", "imagenet-c-extra", "cliplab"] as const;
export type CorruptionSetName = (typeof CORRUPTION_SETS)[number];

/** One corruption's five strengths (severity 1..5) and what they mean. */
export interface CorruptionSpec {
  name: string;
  set: CorruptionSetName;
  /** What the parameter is, with its unit. */
  parameter: string;
  /** Names of a tuple parameter's entries, in order (absent for a single number). */
  parameterNames?: readonly string[];
  /** Parameter at severities 1..5, as the reference gives it (ImageNet-C: for 224 px images). */
  severities: readonly [CorruptionParameter, CorruptionParameter, CorruptionParameter, CorruptionParameter, CorruptionParameter];
  /** How the parameters apply at other image sizes. */
  scaling: string;
}

export interface CorruptionImpl extends CorruptionSpec {
  /**
   * Fixed id of the corruption's random stream: image i draws from Random(mixSeed(seed, seedId,
   * i)), so adding or reordering corruptions never changes another's draws.
   */
  seedId: number;
  /** The parameter applied at an h x w image (default: as given). */
  scaled?: (param: CorruptionParameter, h: number, w: number) => CorruptionParameter;
  /** Corrupts one RGB image (`img`, h * w * 3 values in [0, 1], HWC) in place, drawing from `rng`. */
  apply: (img: Float32Array, h: number, w: number, param: CorruptionParameter, rng: Random) => void;
}

/** The reference side of ImageNet-C's parameters. */
export const IMAGENET_C_SIDE = 224;

/** f = sqrt(h * w) / 224: the factor lengths in pixels are multiplied by. */
export function sizeFactor(h: number, w: number): number {
  return Math.sqrt(h * w) / IMAGENET_C_SIDE;
}

/** The grid layers are drawn on for an h x w image: 224 x 224 for a square image, the same aspect otherwise. */
export function referenceGrid(h: number, w: number): { h: number; w: number } {
  const f = sizeFactor(h, w);
  return { h: Math.max(1, Math.round(h / f)), w: Math.max(1, Math.round(w / f)) };
}

/** `param` as a tuple (the entries of a tuple parameter). */
export function tuple(param: CorruptionParameter): readonly number[] {
  return typeof param === "number" ? [param] : param;
}

/** `param` as one number. */
export function single(param: CorruptionParameter): number {
  return typeof param === "number" ? param : param[0];
}
