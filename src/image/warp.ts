/**
 * Geometric resampling of float planes (h * w values; borders as planes.ts names them), as the
 * ImageNet-C reference (https://arxiv.org/abs/1903.12261) calls it:
 *
 * - `clippedZoom`: the reference's clipped_zoom. Crop the centre ceil(h / z) rows (and columns),
 *   enlarge by z with scipy.ndimage.zoom's order-1 (bilinear, corner-aligned: output o reads input
 *   o * (n - 1) / (m - 1) for m = round(n * z) outputs), trim the centre h back out.
 * - `affineFromPoints`: OpenCV's getAffineTransform (the 2x3 matrix taking three points to three).
 * - `warpAffine`: cv2.warpAffine with bilinear interpolation: output p reads the input at
 *   M^-1 p.
 * - `displace`: scipy.ndimage.map_coordinates(order=1): output (y, x) reads the input at
 *   (y + dy, x + dx), bilinear.
 */
import { borderIndex, type Border } from "./planes";

/** Bilinear sample of a plane at (y, x); integer neighbours outside read through `border`. */
export function sampleBilinear(p: ArrayLike<number>, h: number, w: number, y: number, x: number, border: Border): number {
  const y0 = Math.floor(y);
  const x0 = Math.floor(x);
  const fy = y - y0;
  const fx = x - x0;
  if (y0 >= 0 && x0 >= 0 && y0 + 1 < h && x0 + 1 < w) {
    const i = y0 * w + x0;
    const top = p[i] + fx * (p[i + 1] - p[i]);
    const bottom = p[i + w] + fx * (p[i + w + 1] - p[i + w]);
    return top + fy * (bottom - top);
  }
  const at = (yy: number, xx: number) => {
    const a = borderIndex(yy, h, border);
    const b = borderIndex(xx, w, border);
    return a < 0 || b < 0 ? 0 : p[a * w + b];
  };
  const v00 = at(y0, x0);
  const v01 = fx === 0 ? v00 : at(y0, x0 + 1);
  const top = v00 + fx * (v01 - v00);
  if (fy === 0) return top;
  const v10 = at(y0 + 1, x0);
  const v11 = fx === 0 ? v10 : at(y0 + 1, x0 + 1);
  const bottom = v10 + fx * (v11 - v10);
  return top + fy * (bottom - top);
}

/** For one axis of clippedZoom: the input coordinate each of the `n` outputs reads. */
function zoomAxis(n: number, z: number): Float64Array {
  const crop = Math.ceil(n / z);
  const top = Math.floor((n - crop) / 2);
  const m = Math.round(crop * z);
  const trim = Math.floor((m - n) / 2);
  const coords = new Float64Array(n);
  for (let o = 0; o < n; o++) coords[o] = top + (m > 1 ? ((o + trim) * (crop - 1)) / (m - 1) : 0);
  return coords;
}

/** The reference's clipped_zoom of one plane by `z` >= 1 (see the module comment). */
export function clippedZoom(p: ArrayLike<number>, h: number, w: number, z: number): Float32Array {
  if (!(z >= 1) || !Number.isFinite(z)) throw new RangeError(`clippedZoom: zoom must be a finite number >= 1, got ${z}`);
  const axis = (n: number) => {
    const c = zoomAxis(n, z);
    const i0 = new Int32Array(n);
    const i1 = new Int32Array(n);
    const f = new Float64Array(n);
    for (let o = 0; o < n; o++) {
      const v = Math.min(n - 1, Math.max(0, c[o]));
      i0[o] = Math.floor(v);
      i1[o] = Math.min(n - 1, i0[o] + 1);
      f[o] = v - i0[o];
    }
    return { i0, i1, f };
  };
  const ys = axis(h);
  const xs = axis(w);
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const r0 = ys.i0[y] * w;
    const r1 = ys.i1[y] * w;
    const fy = ys.f[y];
    for (let x = 0; x < w; x++) {
      const a = xs.i0[x];
      const b = xs.i1[x];
      const fx = xs.f[x];
      const top = p[r0 + a] + fx * (p[r0 + b] - p[r0 + a]);
      const bottom = p[r1 + a] + fx * (p[r1 + b] - p[r1 + a]);
      out[y * w + x] = top + fy * (bottom - top);
    }
  }
  return out;
}

/** A 2x3 affine matrix [a, b, c, d, e, f]: (x, y) -> (a x + b y + c, d x + e y + f). */
export type Affine = [number, number, number, number, number, number];

/** The affine map taking `from[i]` to `to[i]` (three [x, y] points, not collinear). */
export function affineFromPoints(from: [number, number][], to: [number, number][]): Affine {
  const [[x0, y0], [x1, y1], [x2, y2]] = from;
  const det = x0 * (y1 - y2) - y0 * (x1 - x2) + (x1 * y2 - x2 * y1);
  if (Math.abs(det) < 1e-12) throw new RangeError("affineFromPoints: the three source points are collinear");
  const solve = (u0: number, u1: number, u2: number): [number, number, number] => [
    (u0 * (y1 - y2) - y0 * (u1 - u2) + (u1 * y2 - u2 * y1)) / det,
    (x0 * (u1 - u2) - u0 * (x1 - x2) + (x1 * u2 - x2 * u1)) / det,
    (x0 * (y1 * u2 - y2 * u1) - y0 * (x1 * u2 - x2 * u1) + u0 * (x1 * y2 - x2 * y1)) / det,
  ];
  const [a, b, c] = solve(to[0][0], to[1][0], to[2][0]);
  const [d, e, f] = solve(to[0][1], to[1][1], to[2][1]);
  return [a, b, c, d, e, f];
}

/** The inverse of an affine map. */
export function invertAffine([a, b, c, d, e, f]: Affine): Affine {
  const det = a * e - b * d;
  if (Math.abs(det) < 1e-12) throw new RangeError("invertAffine: the affine map is singular");
  return [e / det, -b / det, (b * f - c * e) / det, -d / det, a / det, (c * d - a * f) / det];
}

/** cv2.warpAffine of one plane by `m` (output p reads the input at m^-1 p), bilinear. */
export function warpAffine(p: ArrayLike<number>, h: number, w: number, m: Affine, border: Border): Float32Array {
  const [a, b, c, d, e, f] = invertAffine(m);
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) out[y * w + x] = sampleBilinear(p, h, w, d * x + e * y + f, a * x + b * y + c, border);
  }
  return out;
}

/** map_coordinates(order=1) of one plane: output (y, x) reads (y + dy[y, x], x + dx[y, x]). */
export function displace(p: ArrayLike<number>, h: number, w: number, dy: ArrayLike<number>, dx: ArrayLike<number>, border: Border): Float32Array {
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      out[i] = sampleBilinear(p, h, w, y + dy[i], x + dx[i], border);
    }
  }
  return out;
}
