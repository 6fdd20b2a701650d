/**
 * cliplab's own eleven corruptions (the set "cliplab"; the audit's default before ImageNet-C's),
 * tuned on 28 x 28 Fashion-MNIST images, on RGB images of any size. Ids are prefixed "cliplab/"
 * (five names are ImageNet-C's too, with other parameters).
 *
 * - Parameters per pixel value (noise, contrast, brightness, JPEG quality) and angles apply as
 *   given. Sizes are relative: pixelate's downsampled side, the crop window, the occluder's side
 *   and the shift are fractions of the image side; the one parameter in absolute pixels, the blur
 *   sigma, is given for 28 px and applied as sigma * H/28 vertically and sigma * W/28
 *   horizontally.
 * - A corruption draws the same numbers whatever the severity: for one seed the noise pattern,
 *   the occluder's centre, the rotation's sign and the shift's direction are the same at every
 *   severity; only the strength changes.
 * - JPEG: the in-process round trip of src/image/jpeg_quantise.ts with full-resolution chroma
 *   (4:4:4), every stage in floating point.
 * - Geometric corruptions (rotation, translation) sample bilinearly and fill uncovered pixels with
 *   black (0); `crop` zooms into a random window (bilinear, edge-clamped); `occlusion` pastes a
 *   mid-grey (0.5) square at a random centre.
 */
import type { Random } from "../../util/random";
import { areaResize, nearestResize } from "../../image/planes";
import { jpegRoundTrip } from "../../image/jpeg_quantise";
import type { CorruptionImpl } from "./corruption_spec";

interface Shape {
  b: number;
  h: number;
  w: number;
  c: number;
}

interface LegacyImpl {
  name: string;
  parameter: string;
  severities: readonly [number, number, number, number, number];
  apply(data: Float32Array, shape: Shape, param: number, rng: Random): void;
}

/** Value of mid-grey used by `occlusion`. */
export const OCCLUSION_FILL = 0.5;

/** Image side (px) the absolute-pixel parameters (the blur sigma) are given for; they scale by side / 28. */
export const REFERENCE_SIDE = 28;

const LEGACY: LegacyImpl[] = [
  {
    name: "cliplab/gaussian_noise",
    parameter: "standard deviation of additive gaussian noise (pixel values in [0, 1])",
    severities: [0.04, 0.08, 0.12, 0.18, 0.26],
    apply: (d, _s, std, rng) => {
      for (let i = 0; i < d.length; i++) d[i] = clip01(d[i] + std * rng.normal());
    },
  },
  {
    name: "cliplab/shot_noise",
    parameter: "photons per unit intensity c: value = Poisson(c * x) / c (fewer is noisier)",
    severities: [60, 25, 12, 5, 3],
    apply: (d, _s, c, rng) => {
      for (let i = 0; i < d.length; i++) d[i] = clip01(poisson(c * d[i], rng) / c);
    },
  },
  {
    name: "cliplab/blur",
    parameter: `gaussian blur sigma in pixels of a ${REFERENCE_SIDE} px image (applied as sigma * side / ${REFERENCE_SIDE})`,
    severities: [0.5, 0.75, 1, 1.5, 2],
    apply: (d, s, sigma) => forEachPlane(d, s, (p) => gaussianBlur(p, s.h, s.w, (sigma * s.h) / REFERENCE_SIDE, (sigma * s.w) / REFERENCE_SIDE)),
  },
  {
    name: "cliplab/contrast",
    parameter: "contrast factor k: mean + k * (x - mean), mean over the image",
    severities: [0.6, 0.45, 0.3, 0.2, 0.1],
    apply: (d, s, k) => {
      const n = s.h * s.w * s.c;
      for (let b = 0; b < s.b; b++) {
        let mean = 0;
        for (let i = b * n; i < (b + 1) * n; i++) mean += d[i];
        mean /= n;
        for (let i = b * n; i < (b + 1) * n; i++) d[i] = clip01(mean + k * (d[i] - mean));
      }
    },
  },
  {
    name: "cliplab/brightness",
    parameter: "value added to every pixel, then clipped to [0, 1]",
    severities: [0.1, 0.2, 0.3, 0.4, 0.5],
    apply: (d, _s, delta) => {
      for (let i = 0; i < d.length; i++) d[i] = clip01(d[i] + delta);
    },
  },
  {
    name: "cliplab/pixelate",
    parameter: "side of the downsampled image as a fraction of the original (area average down, nearest up)",
    severities: [0.6, 0.5, 0.4, 0.3, 0.25],
    apply: (d, s, f) => {
      const nh = Math.max(1, Math.round(f * s.h));
      const nw = Math.max(1, Math.round(f * s.w));
      forEachPlane(d, s, (p) => nearestResize(areaResize(p, s.h, s.w, nh, nw), nh, nw, s.h, s.w));
    },
  },
  {
    name: "cliplab/jpeg",
    parameter: "JPEG quality (IJG scale, 1-100; lower is coarser)",
    severities: [25, 18, 15, 10, 7],
    apply: (d, s, quality) => jpegRoundTrip(d, s.b, s.h, s.w, quality, { subsampling: "4:4:4", eightBit: false }),
  },
  {
    name: "cliplab/crop",
    parameter: "side of a random crop as a fraction of the image, zoomed back to full size",
    severities: [0.9, 0.8, 0.7, 0.6, 0.5],
    apply: (d, s, f, rng) => {
      const n = s.h * s.w * s.c;
      for (let b = 0; b < s.b; b++) {
        const u = rng.next();
        const v = rng.next();
        const ch = f * s.h;
        const cw = f * s.w;
        const top = u * (s.h - ch);
        const left = v * (s.w - cw);
        const src = d.slice(b * n, (b + 1) * n);
        for (let y = 0; y < s.h; y++) {
          for (let x = 0; x < s.w; x++) {
            const sy = top + ((y + 0.5) * ch) / s.h - 0.5;
            const sx = left + ((x + 0.5) * cw) / s.w - 0.5;
            for (let k = 0; k < s.c; k++) d[b * n + (y * s.w + x) * s.c + k] = bilinearClamped(src, s, k, sy, sx);
          }
        }
      }
    },
  },
  {
    name: "cliplab/occlusion",
    parameter: "side of a mid-grey square at a random centre, as a fraction of the image side",
    severities: [0.2, 0.3, 0.4, 0.5, 0.6],
    apply: (d, s, f, rng) => {
      const n = s.h * s.w * s.c;
      for (let b = 0; b < s.b; b++) {
        const cy = rng.next() * s.h;
        const cx = rng.next() * s.w;
        const hs = (f * s.h) / 2;
        const ws = (f * s.w) / 2;
        const y0 = Math.max(0, Math.round(cy - hs));
        const y1 = Math.min(s.h, Math.round(cy + hs));
        const x0 = Math.max(0, Math.round(cx - ws));
        const x1 = Math.min(s.w, Math.round(cx + ws));
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) {
            for (let k = 0; k < s.c; k++) d[b * n + (y * s.w + x) * s.c + k] = OCCLUSION_FILL;
          }
        }
      }
    },
  },
  {
    name: "cliplab/rotation",
    parameter: "rotation angle in degrees about the centre (random sign), bilinear, black fill",
    severities: [6, 12, 18, 24, 30],
    apply: (d, s, degrees, rng) => {
      for (let b = 0; b < s.b; b++) {
        const sign = rng.next() < 0.5 ? -1 : 1;
        const a = (sign * degrees * Math.PI) / 180;
        const cos = Math.cos(a);
        const sin = Math.sin(a);
        const cy = (s.h - 1) / 2;
        const cx = (s.w - 1) / 2;
        warp(d, s, b, (y, x) => [cy + cos * (y - cy) - sin * (x - cx), cx + sin * (y - cy) + cos * (x - cx)]);
      }
    },
  },
  {
    name: "cliplab/translation",
    parameter: "shift as a fraction of the image side, in a random direction, bilinear, black fill",
    severities: [0.04, 0.08, 0.12, 0.16, 0.2],
    apply: (d, s, f, rng) => {
      for (let b = 0; b < s.b; b++) {
        const theta = 2 * Math.PI * rng.next();
        const dy = f * s.h * Math.sin(theta);
        const dx = f * s.w * Math.cos(theta);
        warp(d, s, b, (y, x) => [y - dy, x - dx]);
      }
    },
  },
];


/** The eleven, seeded by their old registry positions 0..10 (so their draws are as before). */
export const CLIPLAB_CORRUPTIONS: CorruptionImpl[] = LEGACY.map((c, i) => ({
  name: c.name,
  set: "cliplab",
  seedId: i,
  parameter: c.parameter,
  severities: c.severities,
  scaling: c.name === "cliplab/blur" ? `sigma given for ${REFERENCE_SIDE} px, applied x side / ${REFERENCE_SIDE}` : "relative to the image, or per pixel value: as given",
  apply: (img, h, w, param, rng) => c.apply(img, { b: 1, h, w, c: 3 }, param as number, rng),
}));

// ---------------------------------------------------------------------------------------------
// Pixel helpers (planes are one channel of one image, h*w values, row-major).

function clip01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Applies `f` to every channel plane of every image and writes the result back. */
function forEachPlane(d: Float32Array, s: Shape, f: (plane: Float32Array) => Float32Array): void {
  const plane = new Float32Array(s.h * s.w);
  const n = s.h * s.w * s.c;
  for (let b = 0; b < s.b; b++) {
    for (let k = 0; k < s.c; k++) {
      for (let i = 0; i < s.h * s.w; i++) plane[i] = d[b * n + i * s.c + k];
      const out = f(plane);
      for (let i = 0; i < s.h * s.w; i++) d[b * n + i * s.c + k] = clip01(out[i]);
    }
  }
}

/** Knuth's Poisson sampler (fine for the means <= 60 used here). */
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

/** Normalised 1-D gaussian kernel of radius ceil(3 sigma) (at least 1). */
function gaussianKernel(sigma: number): { kernel: Float64Array; r: number } {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += kernel[i + r] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  return { kernel, r };
}

/** Separable gaussian blur (sigmaY down the rows, sigmaX along them), edges replicated. */
function gaussianBlur(p: Float32Array, h: number, w: number, sigmaY: number, sigmaX: number): Float32Array {
  const kx = gaussianKernel(sigmaX);
  const ky = gaussianKernel(sigmaY);
  const tmp = new Float32Array(h * w);
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let i = -kx.r; i <= kx.r; i++) acc += kx.kernel[i + kx.r] * p[y * w + Math.min(w - 1, Math.max(0, x + i))];
      tmp[y * w + x] = acc;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let i = -ky.r; i <= ky.r; i++) acc += ky.kernel[i + ky.r] * tmp[Math.min(h - 1, Math.max(0, y + i)) * w + x];
      out[y * w + x] = acc;
    }
  }
  return out;
}

/** Bilinear sample of channel k of one image (`src` is that image's h*w*c values), edges clamped. */
function bilinearClamped(src: Float32Array, s: Shape, k: number, y: number, x: number): number {
  const cy = Math.min(s.h - 1, Math.max(0, y));
  const cx = Math.min(s.w - 1, Math.max(0, x));
  const y0 = Math.floor(cy);
  const x0 = Math.floor(cx);
  const y1 = Math.min(s.h - 1, y0 + 1);
  const x1 = Math.min(s.w - 1, x0 + 1);
  const fy = cy - y0;
  const fx = cx - x0;
  const at = (yy: number, xx: number) => src[(yy * s.w + xx) * s.c + k];
  const top = at(y0, x0) + fx * (at(y0, x1) - at(y0, x0));
  const bottom = at(y1, x0) + fx * (at(y1, x1) - at(y1, x0));
  return top + fy * (bottom - top);
}

/**
 * Resamples image `b` in place: output pixel (y, x) reads the source at `source(y, x)` bilinearly;
 * samples outside the image read black (0).
 */
function warp(d: Float32Array, s: Shape, b: number, source: (y: number, x: number) => [number, number]): void {
  const n = s.h * s.w * s.c;
  const src = d.slice(b * n, (b + 1) * n);
  const at = (yy: number, xx: number, k: number) => (yy < 0 || yy >= s.h || xx < 0 || xx >= s.w ? 0 : src[(yy * s.w + xx) * s.c + k]);
  for (let y = 0; y < s.h; y++) {
    for (let x = 0; x < s.w; x++) {
      const [sy, sx] = source(y, x);
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const fy = sy - y0;
      const fx = sx - x0;
      for (let k = 0; k < s.c; k++) {
        const top = at(y0, x0, k) + fx * (at(y0, x0 + 1, k) - at(y0, x0, k));
        const bottom = at(y0 + 1, x0, k) + fx * (at(y0 + 1, x0 + 1, k) - at(y0 + 1, x0, k));
        d[b * n + (y * s.w + x) * s.c + k] = clip01(top + fy * (bottom - top));
      }
    }
  }
}

