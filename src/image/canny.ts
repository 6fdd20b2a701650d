/**
 * Canny edges of an 8-bit grey plane (Canny 1986, https://doi.org/10.1109/TPAMI.1986.4767851) as
 * OpenCV's cv2.Canny(img, low, high) computes them with its defaults (aperture 3, L1 gradient):
 *
 * 1. Sobel 3x3 derivatives dx, dy (border replicated); magnitude |dx| + |dy|.
 * 2. Non-maximum suppression along the gradient's direction, quantised to 0, 45, 90 or 135
 *    degrees (tan 22.5 deg boundaries): a pixel survives if its magnitude exceeds `low` and
 *    is > the neighbour behind and >= the one ahead (strictly > both on the diagonals).
 * 3. Hysteresis: survivors above `high` are edges, and so is every survivor 8-connected to one.
 *
 * Returns 255 on edges, 0 elsewhere (uint8, h * w).
 */

export function canny(img: ArrayLike<number>, h: number, w: number, low: number, high: number): Uint8Array {
  const dx = new Float64Array(h * w);
  const dy = new Float64Array(h * w);
  const mag = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    const up = Math.max(0, y - 1) * w;
    const mid = y * w;
    const down = Math.min(h - 1, y + 1) * w;
    for (let x = 0; x < w; x++) {
      const l = Math.max(0, x - 1);
      const r = Math.min(w - 1, x + 1);
      const gx = img[up + r] + 2 * img[mid + r] + img[down + r] - img[up + l] - 2 * img[mid + l] - img[down + l];
      const gy = img[down + l] + 2 * img[down + x] + img[down + r] - img[up + l] - 2 * img[up + x] - img[up + r];
      const i = mid + x;
      dx[i] = gx;
      dy[i] = gy;
      mag[i] = Math.abs(gx) + Math.abs(gy);
    }
  }
  const m = (y: number, x: number) => (y < 0 || y >= h || x < 0 || x >= w ? 0 : mag[y * w + x]);
  const TG22 = Math.tan(Math.PI / 8);
  // 0 = not a candidate, 1 = weak, 2 = strong.
  const state = new Uint8Array(h * w);
  const stack: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = mag[i];
      if (v <= low) continue;
      const ax = Math.abs(dx[i]);
      const ay = Math.abs(dy[i]);
      let isMax: boolean;
      if (ay < TG22 * ax) isMax = v > m(y, x - 1) && v >= m(y, x + 1);
      else if (ay > (TG22 + 2) * ax) isMax = v > m(y - 1, x) && v >= m(y + 1, x);
      else {
        const s = dx[i] * dy[i] < 0 ? -1 : 1;
        isMax = v > m(y - 1, x - s) && v > m(y + 1, x + s);
      }
      if (!isMax) continue;
      if (v > high) {
        state[i] = 2;
        stack.push(i);
      } else state[i] = 1;
    }
  }
  while (stack.length) {
    const i = stack.pop()!;
    const y = Math.floor(i / w);
    const x = i - y * w;
    for (let a = -1; a <= 1; a++) {
      for (let b = -1; b <= 1; b++) {
        const yy = y + a;
        const xx = x + b;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        const j = yy * w + xx;
        if (state[j] === 1) {
          state[j] = 2;
          stack.push(j);
        }
      }
    }
  }
  return Uint8Array.from(state, (s) => (s === 2 ? 255 : 0));
}
