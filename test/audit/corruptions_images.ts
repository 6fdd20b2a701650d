/**
 * Seeded synthetic "natural" RGB images for the corruption tests: a colour gradient, six flat
 * discs, an oblique sinusoidal texture and a little pixel noise, kept in [0.05, 0.95] and rounded
 * to 8 bits (what a decoded image gives). The same generator made the images the ImageNet-C
 * reference was run on (corruptions_imagenet_c.test.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { Random } from "../../src/util/random";

/** One size x size image, HWC values in [0, 1] (multiples of 1/255). */
export function naturalImage(size: number, seed: number): Float32Array {
  const rng = new Random(seed);
  const v = new Float32Array(size * size * 3);
  const blobs = Array.from({ length: 6 }, () => ({ y: rng.next(), x: rng.next(), r: 0.1 + 0.2 * rng.next(), c: [rng.next(), rng.next(), rng.next()] }));
  const fy = 4 + 10 * rng.next();
  const fx = 3 + 12 * rng.next();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = y / size;
      const w = x / size;
      for (let k = 0; k < 3; k++) {
        let val = 0.3 + 0.3 * (k === 0 ? u : k === 1 ? w : 1 - u);
        for (const b of blobs) if ((u - b.y) ** 2 + (w - b.x) ** 2 < b.r * b.r) val = 0.5 * val + 0.5 * b.c[k];
        val += 0.08 * Math.sin(2 * Math.PI * (fy * u + fx * w)) + 0.03 * (rng.next() - 0.5);
        v[(y * size + x) * 3 + k] = Math.round(255 * Math.min(0.95, Math.max(0.05, val))) / 255;
      }
    }
  }
  return v;
}

/** Images of seeds 1..n as a [n, size, size, 3] tensor. */
export function naturalImages(size: number, n: number): tf.Tensor4D {
  const all = new Float32Array(n * size * size * 3);
  for (let i = 0; i < n; i++) all.set(naturalImage(size, i + 1), i * size * size * 3);
  return tf.tensor4d(all, [n, size, size, 3]);
}
