/**
 * ImageNet-C's noise and blur corruptions (Hendrycks & Dietterich 2019, "Benchmarking Neural
 * Network Robustness to Common Corruptions and Perturbations", https://arxiv.org/abs/1903.12261),
 * with the parameters of the reference's make_imagenet_c.py (github.com/hendrycks/robustness,
 * ImageNet-C/create_c) at severities 1-5, on RGB images in [0, 1] of any size (see
 * corruption_spec.ts for the size rule: lengths in pixels x f = sqrt(h w) / 224):
 *
 *   gaussian_noise  clip(x + N(0, c^2))                                   per value
 *   shot_noise      clip(Poisson(c x) / c)                                per value
 *   impulse_noise   a fraction c of the values set to 0 or 1 (even odds)  per value (skimage "s&p")
 *   speckle_noise   clip(x + x N(0, c^2))                    (extra)      per value
 *   gaussian_blur   gaussian of sigma c f (skimage: truncate 4, edges replicated)        (extra)
 *   defocus_blur    a disc of radius r f, anti-aliased, smoothed by a gaussian of alias f
 *                   (OpenCV filter2D, border reflect101)
 *   glass_blur      gaussian (sigma f), 8-bit, then `iterations` passes over the pixels (bottom
 *                   right to top left, a margin of d left out) each taking the value of a random
 *                   neighbour at offsets in [-d, d) (d = shift f rounded, at least 1; below 1 px
 *                   a pixel takes it with probability shift f), then the gaussian again. The
 *                   reference's code swaps two numpy views, which copies one way: cliplab copies
 *                   one way too, so pixels are duplicated as in ImageNet-C
 *   motion_blur     ImageMagick's one-sided motion blur (radius f, sigma f) at an angle uniform in
 *                   [-45, 45) degrees, edges replicated
 *   zoom_blur       the mean of x and x zoomed about the centre by each of the factors
 *                   1, 1 + step, ... (relative to the image: as given)
 *
 * Differences from the reference: the disc is anti-aliased by pixel coverage (the reference's
 * disc is aliased before its small gaussian), so radii below a pixel still blur; the reference
 * stores every corrupted image as 8-bit JPEG of quality 85, cliplab keeps the floats.
 */
import type { Random } from "../../util/random";
import { clipAll01, mapPlanes, mapValues } from "../../image/planes";
import { convolveTaps, discKernel, gaussianBlur, motionKernel } from "../../image/filters";
import { clippedZoom } from "../../image/warp";
import { single, sizeFactor, tuple, type CorruptionImpl, type CorruptionParameter } from "./corruption_spec";

/** Clamp to [0, 1] (local: hot loops call it per value). */
const clip01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** Knuth's Poisson sampler (the means here are at most 60). */
function poisson(lambda: number, rng: Random): number {
  if (lambda <= 0) return 0;
  const limit = Math.exp(-lambda);
  let k = 0;
  let p = rng.next();
  while (p > limit) {
    k++;
    p *= rng.next();
  }
  return k;
}

const PER_VALUE = "per pixel value: as given at every size";

/** The zoom factors of zoom_blur at one severity: 1, 1 + step, ..., `count` of them. */
export function zoomFactors(param: CorruptionParameter): number[] {
  const [step, count] = tuple(param);
  return Array.from({ length: count }, (_, i) => 1 + i * step);
}

/** Glass blur's swap offset range d and swap probability at a shift of `shift` pixels. */
export function glassShift(shift: number): { d: number; probability: number } {
  const d = Math.max(1, Math.round(shift));
  return { d, probability: Math.min(1, shift) };
}

/** Multiplies the entries `which` of a tuple parameter by f. */
function scaleEntries(param: CorruptionParameter, which: number[], h: number, w: number): number[] {
  const f = sizeFactor(h, w);
  return tuple(param).map((v, i) => (which.includes(i) ? v * f : v));
}

export const IMAGENET_C_NOISE_BLUR: CorruptionImpl[] = [
  {
    name: "gaussian_noise",
    set: "imagenet-c",
    seedId: 100,
    parameter: "standard deviation c of additive gaussian noise (values in [0, 1])",
    severities: [0.08, 0.12, 0.18, 0.26, 0.38],
    scaling: PER_VALUE,
    apply: (img, _h, _w, c, rng) => {
      const noise = rng.fillNormal(new Float32Array(img.length), single(c));
      for (let i = 0; i < img.length; i++) img[i] = clip01(img[i] + noise[i]);
    },
  },
  {
    name: "shot_noise",
    set: "imagenet-c",
    seedId: 101,
    parameter: "photons per unit intensity c: Poisson(c x) / c (fewer is noisier)",
    severities: [60, 25, 12, 5, 3],
    scaling: PER_VALUE,
    apply: (img, _h, _w, param, rng) => {
      const c = single(param);
      for (let i = 0; i < img.length; i++) img[i] = clip01(poisson(c * img[i], rng) / c);
    },
  },
  {
    name: "impulse_noise",
    set: "imagenet-c",
    seedId: 102,
    parameter: "fraction c of the values replaced by salt (1) or pepper (0), even odds",
    severities: [0.03, 0.06, 0.09, 0.17, 0.27],
    scaling: PER_VALUE,
    apply: (img, _h, _w, param, rng) => {
      const amount = single(param);
      for (let i = 0; i < img.length; i++) {
        const flipped = rng.next() < amount;
        const salt = rng.next() < 0.5;
        if (flipped) img[i] = salt ? 1 : 0;
      }
    },
  },
  {
    name: "defocus_blur",
    set: "imagenet-c",
    seedId: 103,
    parameter: "disc radius and the gaussian that smooths the disc, in pixels of a 224 px image",
    parameterNames: ["radius", "alias_sigma"],
    severities: [[3, 0.1], [4, 0.5], [6, 0.5], [8, 0.5], [10, 0.5]],
    scaling: "radius and alias sigma x f",
    scaled: (p, h, w) => scaleEntries(p, [0, 1], h, w),
    apply: (img, h, w, param) => {
      const [radius, alias] = tuple(param);
      const taps = discKernel(radius, alias);
      mapPlanes(img, h, w, 3, (p) => clipAll01(convolveTaps(p, h, w, taps, "reflect101")));
    },
  },
  {
    name: "glass_blur",
    set: "imagenet-c",
    seedId: 104,
    parameter: "gaussian sigma, largest pixel shift, passes of local pixel shuffling (pixels of a 224 px image)",
    parameterNames: ["sigma", "max_shift", "iterations"],
    severities: [[0.7, 1, 2], [0.9, 2, 1], [1, 2, 3], [1.1, 3, 2], [1.5, 4, 2]],
    scaling: "sigma and shift x f (below 1 px a pixel moves with probability = the shift); passes as given",
    scaled: (p, h, w) => scaleEntries(p, [0, 1], h, w),
    apply: (img, h, w, param, rng) => {
      const [sigma, shift, iterations] = tuple(param);
      // gaussian, then 8 bits (the reference truncates to uint8).
      mapPlanes(img, h, w, 3, (p) => mapValues(gaussianBlur(p, h, w, sigma), (v) => Math.floor(255 * clip01(v)) / 255));
      const { d, probability } = glassShift(shift);
      for (let it = 0; it < iterations; it++) {
        for (let y = h - d; y > d; y--) {
          for (let x = w - d; x > d; x--) {
            const ox = rng.int(2 * d) - d;
            const oy = rng.int(2 * d) - d;
            if (probability < 1 && rng.next() >= probability) continue;
            // The reference "swaps" two numpy views (x[h, w], x[h', w'] = x[h', w'], x[h, w]), which
            // copies the neighbour into the pixel and leaves the neighbour as it was: so do we.
            const a = 3 * (y * w + x);
            const b = 3 * ((y + oy) * w + (x + ox));
            img[a] = img[b];
            img[a + 1] = img[b + 1];
            img[a + 2] = img[b + 2];
          }
        }
      }
      mapPlanes(img, h, w, 3, (p) => clipAll01(gaussianBlur(p, h, w, sigma)));
    },
  },
  {
    name: "motion_blur",
    set: "imagenet-c",
    seedId: 105,
    parameter: "ImageMagick motion-blur radius and sigma in pixels of a 224 px image; angle uniform in [-45, 45) degrees",
    parameterNames: ["radius", "sigma"],
    severities: [[10, 3], [15, 5], [15, 8], [15, 12], [20, 15]],
    scaling: "radius and sigma x f",
    scaled: (p, h, w) => scaleEntries(p, [0, 1], h, w),
    apply: (img, h, w, param, rng) => {
      const [radius, sigma] = tuple(param);
      const taps = motionKernel(radius, sigma, -45 + 90 * rng.next());
      mapPlanes(img, h, w, 3, (p) => clipAll01(convolveTaps(p, h, w, taps, "nearest")));
    },
  },
  {
    name: "zoom_blur",
    set: "imagenet-c",
    seedId: 106,
    parameter: "zoom factors 1, 1 + step, ..., count of them (numpy's arange(1, stop, step))",
    parameterNames: ["step", "count"],
    severities: [[0.01, 12], [0.01, 16], [0.02, 11], [0.02, 13], [0.03, 11]],
    scaling: "zoom factors are relative to the image: as given",
    apply: (img, h, w, param) => {
      const zooms = zoomFactors(param);
      mapPlanes(img, h, w, 3, (p) => {
        const acc = Float64Array.from(p);
        for (const z of zooms) {
          const zoomed = clippedZoom(p, h, w, z);
          for (let i = 0; i < acc.length; i++) acc[i] += zoomed[i];
        }
        const out = new Float32Array(acc.length);
        for (let i = 0; i < acc.length; i++) out[i] = clip01(acc[i] / (zooms.length + 1));
        return out;
      });
    },
  },
  {
    name: "speckle_noise",
    set: "imagenet-c-extra",
    seedId: 115,
    parameter: "standard deviation c of multiplicative gaussian noise: x + x N(0, c^2)",
    severities: [0.15, 0.2, 0.35, 0.45, 0.6],
    scaling: PER_VALUE,
    apply: (img, _h, _w, c, rng) => {
      const noise = rng.fillNormal(new Float32Array(img.length), single(c));
      for (let i = 0; i < img.length; i++) img[i] = clip01(img[i] + img[i] * noise[i]);
    },
  },
  {
    name: "gaussian_blur",
    set: "imagenet-c-extra",
    seedId: 116,
    parameter: "gaussian sigma in pixels of a 224 px image (truncated at 4 sigma, edges replicated)",
    severities: [1, 2, 3, 4, 6],
    scaling: "sigma x f",
    scaled: (p, h, w) => single(p) * sizeFactor(h, w),
    apply: (img, h, w, sigma) => mapPlanes(img, h, w, 3, (p) => clipAll01(gaussianBlur(p, h, w, single(sigma)))),
  },
];
