/**
 * Distance of every pixel to the nearest zero pixel, by the 5x5 chamfer OpenCV's
 * cv2.distanceTransform(img, DIST_L2, 5) uses (Borgefors 1986,
 * https://doi.org/10.1016/S0734-189X(86)80047-0): steps of weight 1 (edge neighbours), 1.4
 * (diagonal) and 2.1969 (knight's moves), two raster passes. Pixels outside the image are never
 * zero; a plane without zeros gets a large value everywhere.
 */

const A = 1;
const B = 1.4;
const C = 2.1969;
/** Forward-pass neighbours [dy, dx, weight] (the backward pass mirrors them). */
const MASK: [number, number, number][] = [
  [-2, -1, C], [-2, 1, C],
  [-1, -2, C], [-1, -1, B], [-1, 0, A], [-1, 1, B], [-1, 2, C],
  [0, -1, A],
];

export function chamferDistance(img: ArrayLike<number>, h: number, w: number): Float32Array {
  const BIG = 1e6;
  const d = new Float64Array(h * w);
  for (let i = 0; i < h * w; i++) d[i] = img[i] === 0 ? 0 : BIG;
  const dy = Int32Array.from(MASK, (m) => m[0]);
  const dx = Int32Array.from(MASK, (m) => m[1]);
  const wt = Float64Array.from(MASK, (m) => m[2]);
  const k = MASK.length;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      let v = d[i];
      if (v === 0) continue;
      for (let t = 0; t < k; t++) {
        const yy = y + dy[t];
        const xx = x + dx[t];
        if (yy >= 0 && xx >= 0 && xx < w) {
          const c = d[yy * w + xx] + wt[t];
          if (c < v) v = c;
        }
      }
      d[i] = v;
    }
  }
  for (let y = h - 1; y >= 0; y--) {
    for (let x = w - 1; x >= 0; x--) {
      const i = y * w + x;
      let v = d[i];
      if (v === 0) continue;
      for (let t = 0; t < k; t++) {
        const yy = y - dy[t];
        const xx = x - dx[t];
        if (yy < h && xx >= 0 && xx < w) {
          const c = d[yy * w + xx] + wt[t];
          if (c < v) v = c;
        }
      }
      d[i] = v;
    }
  }
  return Float32Array.from(d);
}
