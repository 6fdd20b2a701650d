/**
 * Float image planes for the corruption toolkit (src/audit/robustness): one channel of one image,
 * `h * w` values row-major, or interleaved HWC images; border rules by name; resizing a plane.
 *
 * Border rules (what index -1 of a row reads):
 *   "nearest"    a a a | a b c d | d d d   (scipy/skimage "nearest", OpenCV BORDER_REPLICATE)
 *   "reflect"    c b a | a b c d | d c b   (scipy/skimage "reflect", half-sample symmetric)
 *   "reflect101" d c b | a b c d | c b a   (OpenCV's default BORDER_REFLECT_101)
 *   "constant"   0 0 0 | a b c d | 0 0 0
 */

export type Border = "nearest" | "reflect" | "reflect101" | "constant";

/** Index into [0, n) for index `i` under `border`, or -1 (constant: read 0). Any i, even far outside. */
export function borderIndex(i: number, n: number, border: Border): number {
  if (i >= 0 && i < n) return i;
  switch (border) {
    case "nearest":
      return i < 0 ? 0 : n - 1;
    case "reflect": {
      const p = 2 * n;
      let k = ((i % p) + p) % p;
      if (k >= n) k = p - 1 - k;
      return k;
    }
    case "reflect101": {
      if (n === 1) return 0;
      const p = 2 * n - 2;
      let k = ((i % p) + p) % p;
      if (k >= n) k = p - k;
      return k;
    }
    case "constant":
      return -1;
  }
}

/** Channel `k` of an HWC image with `c` channels, as a plane (a new array). */
export function getPlane(img: Float32Array, h: number, w: number, c: number, k: number): Float32Array {
  const p = new Float32Array(h * w);
  for (let i = 0; i < h * w; i++) p[i] = img[i * c + k];
  return p;
}

/** Writes `plane` into channel `k` of an HWC image. */
export function setPlane(img: Float32Array, plane: ArrayLike<number>, h: number, w: number, c: number, k: number): void {
  for (let i = 0; i < h * w; i++) img[i * c + k] = plane[i];
}

/** Applies `f` to every channel plane of an HWC image and writes the results back. */
export function mapPlanes(img: Float32Array, h: number, w: number, c: number, f: (plane: Float32Array, k: number) => ArrayLike<number>): void {
  for (let k = 0; k < c; k++) setPlane(img, f(getPlane(img, h, w, c, k), k), h, w, c, k);
}

/** Applies `f` to every value of `a` in place (a plain loop: typed-array `from` with a mapper is slow); returns `a`. */
export function mapValues<T extends Float32Array | Uint8Array>(a: T, f: (v: number) => number): T {
  for (let i = 0; i < a.length; i++) a[i] = f(a[i]);
  return a;
}

export function clip01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Clips every value of `a` to [0, 1] in place. */
export function clipAll01(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = a[i] < 0 ? 0 : a[i] > 1 ? 1 : a[i];
  return a;
}

/** For each of `m` output cells over `n` input cells: [input index, overlap length] pairs. */
function overlapWeights(n: number, m: number): [number, number][][] {
  const scale = n / m;
  return Array.from({ length: m }, (_, o) => {
    const a = o * scale;
    const b = (o + 1) * scale;
    const cells: [number, number][] = [];
    for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
      const overlap = Math.min(b, i + 1) - Math.max(a, i);
      if (overlap > 1e-12) cells.push([i, overlap]);
    }
    return cells;
  });
}

/**
 * Area-average resize of one plane (each output pixel averages the input area it covers, exact
 * overlaps; Pillow's BOX filter when shrinking).
 */
export function areaResize(p: ArrayLike<number>, h: number, w: number, nh: number, nw: number): Float32Array {
  const flat = (cells: [number, number][][]) => ({
    start: Int32Array.from(cells, (c) => c[0]?.[0] ?? 0),
    weights: cells.map((c) => Float64Array.from(c, (x) => x[1])),
  });
  const wy = flat(overlapWeights(h, nh));
  const wx = flat(overlapWeights(w, nw));
  const out = new Float32Array(nh * nw);
  for (let oy = 0; oy < nh; oy++) {
    const ky = wy.weights[oy];
    const y0 = wy.start[oy];
    for (let ox = 0; ox < nw; ox++) {
      const kx = wx.weights[ox];
      const x0 = wx.start[ox];
      let acc = 0;
      let total = 0;
      for (let a = 0; a < ky.length; a++) {
        const row = (y0 + a) * w + x0;
        let racc = 0;
        let rtot = 0;
        for (let c = 0; c < kx.length; c++) {
          racc += kx[c] * p[row + c];
          rtot += kx[c];
        }
        acc += ky[a] * racc;
        total += ky[a] * rtot;
      }
      out[oy * nw + ox] = acc / total;
    }
  }
  return out;
}

/** Nearest-neighbour resize (output centre (y + 0.5) * h / nh, floored: Pillow's BOX filter when enlarging). */
export function nearestResize(p: ArrayLike<number>, h: number, w: number, nh: number, nw: number): Float32Array {
  const out = new Float32Array(nh * nw);
  for (let y = 0; y < nh; y++) {
    const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / nh));
    for (let x = 0; x < nw; x++) out[y * nw + x] = p[sy * w + Math.min(w - 1, Math.floor(((x + 0.5) * w) / nw))];
  }
  return out;
}

/** Bilinear resize with pixel centres aligned ((y + 0.5) * h / nh - 0.5), edges replicated. */
export function bilinearResize(p: ArrayLike<number>, h: number, w: number, nh: number, nw: number): Float32Array {
  const out = new Float32Array(nh * nw);
  for (let y = 0; y < nh; y++) {
    const sy = Math.min(h - 1, Math.max(0, ((y + 0.5) * h) / nh - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(h - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < nw; x++) {
      const sx = Math.min(w - 1, Math.max(0, ((x + 0.5) * w) / nw - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(w - 1, x0 + 1);
      const fx = sx - x0;
      const top = p[y0 * w + x0] + fx * (p[y0 * w + x1] - p[y0 * w + x0]);
      const bottom = p[y1 * w + x0] + fx * (p[y1 * w + x1] - p[y1 * w + x0]);
      out[y * nw + x] = top + fy * (bottom - top);
    }
  }
  return out;
}

/**
 * A plane brought to nh x nw: a copy at the same size, area averaging when it shrinks (no
 * aliasing), bilinear when it grows.
 */
export function resizePlane(p: ArrayLike<number>, h: number, w: number, nh: number, nw: number): Float32Array {
  if (nh === h && nw === w) return Float32Array.from(p);
  return nh * nw <= h * w ? areaResize(p, h, w, nh, nw) : bilinearResize(p, h, w, nh, nw);
}
