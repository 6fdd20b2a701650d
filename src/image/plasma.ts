/**
 * A plasma fractal (diamond-square height map) for ImageNet-C's fog (Hendrycks & Dietterich 2019,
 * https://arxiv.org/abs/1903.12261; the reference's plasma_fractal, after
 * github.com/FLHerne/mapgen): a `size` x `size` map (size a power of two) that wraps around at its
 * edges, values scaled to [0, 1].
 *
 * Start with map[0, 0] = 0, step = size, wibble = 100. While step >= 2:
 *   squares:  each cell centre (step/2 off both corners) = mean of its 4 corners + noise;
 *   diamonds: each edge midpoint = mean of its 2 corners and 2 neighbouring centres + noise;
 *   step /= 2, wibble /= decay.
 * The noise is wibble * uniform(-wibble, wibble), as the reference writes it (so each level's
 * amplitude falls by decay^2). Larger `decay` gives a smoother map. Neighbours wrap around.
 */
import type { Random } from "../util/random";

export function plasmaFractal(size: number, decay: number, rng: Random): Float32Array {
  if (!Number.isInteger(size) || size < 2 || (size & (size - 1)) !== 0) throw new RangeError(`plasmaFractal: size must be a power of two >= 2, got ${size}`);
  if (!(decay > 0) || !Number.isFinite(decay)) throw new RangeError(`plasmaFractal: decay must be a finite number > 0, got ${decay}`);
  const map = new Float64Array(size * size);
  const mask = size - 1; // size is a power of two: wrapping is a bit mask
  let step = size;
  let wibble = 100;
  while (step >= 2) {
    const half = step / 2;
    const amp = wibble * wibble;
    // Squares: centres from the four corners.
    for (let y = half; y < size; y += step) {
      const up = ((y - half) & mask) * size;
      const down = ((y + half) & mask) * size;
      for (let x = half; x < size; x += step) {
        const l = (x - half) & mask;
        const r = (x + half) & mask;
        map[y * size + x] = (map[up + l] + map[down + l] + map[up + r] + map[down + r]) / 4 + amp * (2 * rng.next() - 1);
      }
    }
    // Diamonds on the corner rows (two corners left/right, two centres above/below) ...
    for (let y = 0; y < size; y += step) {
      const up = ((y - half) & mask) * size;
      const down = ((y + half) & mask) * size;
      const row = y * size;
      for (let x = half; x < size; x += step) {
        map[row + x] = (map[down + x] + map[up + x] + map[row + ((x - half) & mask)] + map[row + ((x + half) & mask)]) / 4 + amp * (2 * rng.next() - 1);
      }
    }
    // ... and on the centre rows (two corners above/below, two centres left/right).
    for (let y = half; y < size; y += step) {
      const up = ((y - half) & mask) * size;
      const down = ((y + half) & mask) * size;
      const row = y * size;
      for (let x = 0; x < size; x += step) {
        map[row + x] = (map[row + ((x + half) & mask)] + map[row + ((x - half) & mask)] + map[up + x] + map[down + x]) / 4 + amp * (2 * rng.next() - 1);
      }
    }
    step = half;
    wibble /= decay;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < map.length; i++) {
    if (map[i] < lo) lo = map[i];
    if (map[i] > hi) hi = map[i];
  }
  const span = hi - lo || 1;
  const out = new Float32Array(map.length);
  for (let i = 0; i < map.length; i++) out[i] = (map[i] - lo) / span;
  return out;
}
