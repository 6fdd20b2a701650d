/**
 * Images the audit keeps for its report (corruption previews, adversarial examples): HWC values
 * in [0, 1], area-averaged down to at most PREVIEW_SIDE pixels a side so a 224 px audit's JSON
 * stays small. Area averaging keeps an L-inf bound: every averaged difference is within it.
 */
import { areaResize } from "../../image/planes";

/** Largest side of a kept image. */
export const PREVIEW_SIDE = 96;

/** One HWC image (`values`, h*w*c) as kept for the report. */
export function previewPixels(values: ArrayLike<number>, h: number, w: number, c: number): { pixels: number[]; height: number; width: number } {
  const f = Math.min(1, PREVIEW_SIDE / Math.max(h, w));
  if (f === 1) return { pixels: Array.from(values), height: h, width: w };
  const nh = Math.max(1, Math.round(h * f));
  const nw = Math.max(1, Math.round(w * f));
  const out = new Array<number>(nh * nw * c);
  const plane = new Float32Array(h * w);
  for (let k = 0; k < c; k++) {
    for (let i = 0; i < h * w; i++) plane[i] = values[i * c + k];
    const small = areaResize(plane, h, w, nh, nw);
    for (let i = 0; i < nh * nw; i++) out[i * c + k] = small[i];
  }
  return { pixels: out, height: nh, width: nw };
}
