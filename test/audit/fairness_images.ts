/**
 * Real image sources for the fairness tests: an image folder of coloured-shape PNGs (discs and
 * squares of random colours, positions and sizes on a grey ground, written with sharp), and a
 * random-init tiny CLIP at 64 px whose config is built by hand.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { Clip } from "../../src/model/clip";
import { Random } from "../../src/util/random";

export const SHAPE_CLASSES = ["disc", "square"] as const;

/** A tiny ViT CLIP at 64 px (patch 16): the config a user would write for their own model. */
export const TINY_64_CONFIG = {
  embed_dim: 32,
  quick_gelu: false,
  vision_cfg: { image_size: 64, layers: 1, width: 32, patch_size: 16, head_width: 16 },
  text_cfg: { context_length: 16, vocab_size: 49408, width: 32, heads: 2, layers: 1 },
};

export function tiny64(seed = 0): Clip {
  return Clip.create(structuredClone(TINY_64_CONFIG), { seed });
}

/** One `size` x `size` RGB PNG: a disc or a square of a random colour at a random place. */
export async function shapePng(shape: (typeof SHAPE_CLASSES)[number], size: number, rng: Random): Promise<Buffer> {
  const px = new Uint8Array(size * size * 3).fill(128);
  const colour = [rng.int(256), rng.int(256), rng.int(256)];
  const r = Math.round(size * (0.15 + 0.15 * rng.next()));
  const cx = r + rng.int(size - 2 * r);
  const cy = r + rng.int(size - 2 * r);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inside = shape === "disc" ? (x - cx) ** 2 + (y - cy) ** 2 <= r * r : Math.abs(x - cx) <= r && Math.abs(y - cy) <= r;
      if (inside) px.set(colour, (y * size + x) * 3);
    }
  }
  return sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

/**
 * Writes `dir/disc/NNN.png` and `dir/square/NNN.png` (`perClass` each, `size` px; the sizes vary
 * when `size` is an array, cycled) and returns the files in the folder source's order (class
 * folders sorted, then paths sorted).
 */
export async function writeShapeFolder(dir: string, perClass: number, size: number | number[], seed = 0): Promise<string[]> {
  const rng = new Random(seed);
  const sizes = Array.isArray(size) ? size : [size];
  const files: string[] = [];
  for (const shape of SHAPE_CLASSES) {
    fs.mkdirSync(path.join(dir, shape), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const file = path.join(dir, shape, `${String(i).padStart(3, "0")}.png`);
      fs.writeFileSync(file, await shapePng(shape, sizes[i % sizes.length], rng));
      files.push(file);
    }
  }
  return files;
}
