/**
 * ImageNet-C's weather corruptions and spatter (Hendrycks & Dietterich 2019,
 * https://arxiv.org/abs/1903.12261), parameters of the reference's make_imagenet_c.py
 * (github.com/hendrycks/robustness). Each one draws a layer that does not depend on the image
 * (snowflakes, frost, fog, liquid) on the 224 px grid with the reference parameters, resizes it to
 * the image (area average down, bilinear up: its structure is the same fraction of the image at
 * any size, so its lengths scale by f = S / 224 exactly) and blends it per pixel:
 *
 *   snow     N(loc, scale) noise zoomed by `zoom` (clipped_zoom), values below `threshold`
 *            dropped, 8-bit, ImageMagick motion blur (radius, sigma) at an angle uniform in
 *            [-135, -45) degrees -> flakes F; the image greyed towards 1.5 grey + 0.5 by
 *            (1 - blend), then clip(x + F + F rotated 180 degrees)
 *   frost    clip(a x + b T) with T a seeded procedural frost texture (src/image/frost.ts): the
 *            reference crops one of six frost photographs, which cliplab does not ship, so the
 *            frost is of the same kind, not the same pixels
 *   fog      clip((x + a P) max(x) / (max(x) + a)), P a plasma fractal (src/image/plasma.ts,
 *            256-cell map, its 224 x 224 corner) of roughness `decay`
 *   spatter  (extra) N(loc, scale) smoothed by a gaussian (sigma), values below `threshold`
 *            dropped. Water (severities 1-3): the layer's Canny edges, the chamfer distance to
 *            them capped at 20 px, box blur, histogram equalisation, an emboss kernel, box blur,
 *            times the layer, scaled to a peak of `intensity` -> clip(x + m * pale turquoise).
 *            Mud (4-5): the mask layer > threshold, gaussian of sigma `intensity`, values below
 *            0.8 dropped -> x (1 - m) + m * brown.
 */
import type { Random } from "../../util/random";
import { getPlane, mapValues, resizePlane } from "../../image/planes";
import { boxBlur3, convolveTaps, gaussianBlur, motionKernel, tapsFromDense } from "../../image/filters";
import { clippedZoom } from "../../image/warp";
import { plasmaFractal } from "../../image/plasma";
import { frostTexture } from "../../image/frost";
import { canny } from "../../image/canny";
import { chamferDistance } from "../../image/distance_transform";
import { equalizeHist } from "../../image/equalize";
import { referenceGrid, tuple, type CorruptionImpl } from "./corruption_spec";

/** Clamp to [0, 1] (local: hot loops call it per value). */
const clip01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

const LAYER = "the layer is drawn on the 224 px grid with these parameters and resized to the image (lengths x f); blends per pixel";

/** A layer drawn at the reference grid, brought to h x w. */
function toImage(layer: Float32Array, grid: { h: number; w: number }, h: number, w: number): Float32Array {
  return resizePlane(layer, grid.h, grid.w, h, w);
}

/** The snow layer at the reference grid. */
function snowLayer(gh: number, gw: number, p: readonly number[], rng: Random): Float32Array {
  const [loc, scale, zoom, threshold, radius, sigma] = p;
  const noise = rng.fillNormal(new Float32Array(gh * gw), scale, loc);
  const zoomed = clippedZoom(noise, gh, gw, zoom);
  // Dropped below the threshold, then 8-bit (uint8 truncation, as the reference writes its PNG).
  const flakes = mapValues(zoomed, (v) => (v < threshold ? 0 : Math.floor(255 * clip01(v)) / 255));
  const taps = motionKernel(radius, sigma, -135 + 90 * rng.next());
  return mapValues(convolveTaps(flakes, gh, gw, taps, "nearest"), (v) => Math.round(255 * clip01(v)) / 255);
}

/** The spatter mask m (before the colour) at the reference grid, and whether it is mud. */
function spatterLayer(gh: number, gw: number, p: readonly number[], rng: Random): { m: Float32Array; mud: boolean } {
  const [loc, scale, sigma, threshold, intensity, mud] = p;
  const noise = rng.fillNormal(new Float32Array(gh * gw), scale, loc);
  const liquid = mapValues(gaussianBlur(noise, gh, gw, sigma), (v) => (v < threshold ? 0 : v));
  if (mud) {
    const mask = mapValues(liquid.slice(), (v) => (v > threshold ? 1 : 0));
    const m = mapValues(gaussianBlur(mask, gh, gw, intensity), (v) => (v < 0.8 ? 0 : v));
    return { m, mud: true };
  }
  const u8 = new Uint8Array(liquid.length);
  for (let i = 0; i < u8.length; i++) u8[i] = Math.min(255, Math.max(0, Math.floor(255 * liquid[i])));
  const notEdge = mapValues(canny(u8, gh, gw, 50, 150), (e) => 255 - e);
  const dist = mapValues(chamferDistance(notEdge, gh, gw), (v) => Math.min(v, 20));
  const blurred = boxBlur3(dist, gh, gw);
  const smooth8 = new Uint8Array(blurred.length);
  for (let i = 0; i < blurred.length; i++) smooth8[i] = Math.floor(blurred[i]);
  const eq = equalizeHist(smooth8);
  const emboss = tapsFromDense(Float64Array.from([-2, -1, 0, -1, 1, 1, 0, 1, 2]), 1);
  const embossed = mapValues(convolveTaps(eq, gh, gw, emboss, "reflect101"), (v) => Math.min(255, Math.max(0, Math.round(v))));
  const relief = boxBlur3(embossed, gh, gw);
  const m = new Float32Array(gh * gw);
  let peak = 0;
  for (let i = 0; i < m.length; i++) peak = Math.max(peak, (m[i] = liquid[i] * relief[i]));
  if (peak > 0) for (let i = 0; i < m.length; i++) m[i] = (m[i] / peak) * intensity;
  return { m, mud: false };
}

const WATER = [175 / 255, 238 / 255, 238 / 255];
const MUD = [63 / 255, 42 / 255, 20 / 255];

export const IMAGENET_C_WEATHER: CorruptionImpl[] = [
  {
    name: "snow",
    set: "imagenet-c",
    seedId: 107,
    parameter: "snow layer N(loc, scale) zoomed by zoom, kept above threshold, motion-blurred (radius, sigma px at 224); image blended with its brightened grey by blend",
    parameterNames: ["loc", "scale", "zoom", "threshold", "radius", "sigma", "blend"],
    severities: [
      [0.1, 0.3, 3, 0.5, 10, 4, 0.8],
      [0.2, 0.3, 2, 0.5, 12, 4, 0.7],
      [0.55, 0.3, 4, 0.9, 12, 8, 0.7],
      [0.55, 0.3, 4.5, 0.85, 12, 8, 0.65],
      [0.55, 0.3, 2.5, 0.85, 12, 12, 0.55],
    ],
    scaling: LAYER,
    apply: (img, h, w, param, rng) => {
      const p = tuple(param);
      const grid = referenceGrid(h, w);
      const flakes = toImage(snowLayer(grid.h, grid.w, p, rng), grid, h, w);
      const blend = p[6];
      const n = h * w;
      for (let i = 0; i < n; i++) {
        const grey = 0.299 * img[3 * i] + 0.587 * img[3 * i + 1] + 0.114 * img[3 * i + 2];
        const snowy = flakes[i] + flakes[n - 1 - i]; // the layer and its 180-degree rotation
        for (let k = 0; k < 3; k++) {
          const x = img[3 * i + k];
          img[3 * i + k] = clip01(blend * x + (1 - blend) * Math.max(x, 1.5 * grey + 0.5) + snowy);
        }
      }
    },
  },
  {
    name: "frost",
    set: "imagenet-c",
    seedId: 108,
    parameter: "clip(a x + b frost): the image's weight a and the frost texture's weight b",
    parameterNames: ["image_weight", "frost_weight"],
    severities: [[1, 0.4], [0.8, 0.6], [0.7, 0.7], [0.65, 0.7], [0.6, 0.75]],
    scaling: `${LAYER} (a seeded procedural frost texture, not the reference's photographs)`,
    apply: (img, h, w, param, rng) => {
      const [a, b] = tuple(param);
      const grid = referenceGrid(h, w);
      const tex = frostTexture(grid.h, grid.w, rng);
      const planes = [0, 1, 2].map((k) => toImage(getPlane(tex, grid.h, grid.w, 3, k), grid, h, w));
      for (let i = 0; i < h * w; i++) for (let k = 0; k < 3; k++) img[3 * i + k] = clip01(a * img[3 * i + k] + b * planes[k][i]);
    },
  },
  {
    name: "fog",
    set: "imagenet-c",
    seedId: 109,
    parameter: "fog strength a (plasma fractal added, then rescaled by max / (max + a)) and the fractal's roughness decay (larger is smoother)",
    parameterNames: ["strength", "decay"],
    severities: [[1.5, 2], [2, 2], [2.5, 1.7], [2.5, 1.5], [3, 1.4]],
    scaling: LAYER,
    apply: (img, h, w, param, rng) => {
      const [a, decay] = tuple(param);
      const grid = referenceGrid(h, w);
      let size = 256;
      while (size < Math.max(grid.h, grid.w)) size *= 2;
      const map = plasmaFractal(size, decay, rng);
      const corner = new Float32Array(grid.h * grid.w);
      for (let y = 0; y < grid.h; y++) for (let x = 0; x < grid.w; x++) corner[y * grid.w + x] = map[y * size + x];
      const fog = toImage(corner, grid, h, w);
      let max = 0;
      for (const v of img) max = Math.max(max, v);
      const k = max / (max + a);
      for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) img[3 * i + c] = clip01((img[3 * i + c] + a * fog[i]) * k);
    },
  },
  {
    name: "spatter",
    set: "imagenet-c-extra",
    seedId: 117,
    parameter: "liquid N(loc, scale) smoothed (sigma px at 224), kept above threshold; water: peak intensity of the turquoise relief; mud (mud = 1): the mask's gaussian sigma",
    parameterNames: ["loc", "scale", "sigma", "threshold", "intensity", "mud"],
    severities: [
      [0.65, 0.3, 4, 0.69, 0.6, 0],
      [0.65, 0.3, 3, 0.68, 0.6, 0],
      [0.65, 0.3, 2, 0.68, 0.5, 0],
      [0.65, 0.3, 1, 0.65, 1.5, 1],
      [0.67, 0.4, 1, 0.65, 1.5, 1],
    ],
    scaling: LAYER,
    apply: (img, h, w, param, rng) => {
      const grid = referenceGrid(h, w);
      const layer = spatterLayer(grid.h, grid.w, tuple(param), rng);
      const m = toImage(layer.m, grid, h, w);
      for (let i = 0; i < h * w; i++) {
        for (let k = 0; k < 3; k++) {
          const x = img[3 * i + k];
          img[3 * i + k] = layer.mud ? clip01(x * (1 - m[i]) + MUD[k] * m[i]) : clip01(x + m[i] * WATER[k]);
        }
      }
    },
  },
];
