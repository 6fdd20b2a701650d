/**
 * Small datasets for the report tests (not a test file itself): coloured-shape PNGs of several
 * sizes written with sharp, as an image folder (one subfolder per class) or an open_clip TSV
 * (`filepath`, `title`, optional `label`), and a random-init tiny CLIP at 64 px built from a
 * config object and saved with `saveCheckpoint`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { Clip } from "../../src/model/clip";
import { saveCheckpoint } from "../../src/io/checkpoint";
import { Random } from "../../src/util/random";

export const SHAPES = ["circle", "square", "triangle"] as const;
const COLOURS: [number, number, number][] = [
  [220, 40, 40],
  [40, 200, 60],
  [50, 70, 230],
];
/** Sizes cycled through, so the model's resize and crop run (none is the model's 64 px). */
const SIZES: [number, number][] = [
  [72, 72],
  [90, 60],
  [50, 80],
];

/** A PNG of shape `c` in its colour on a seeded grey background. */
export async function shapePng(c: number, width: number, height: number, seed: number): Promise<Buffer> {
  const rng = new Random(seed);
  const px = new Uint8Array(width * height * 3).fill(80 + rng.int(60));
  const r = Math.min(width, height) * (0.2 + 0.15 * rng.next());
  const cx = width / 2 + (rng.next() - 0.5) * (width / 2 - r);
  const cy = height / 2 + (rng.next() - 0.5) * (height / 2 - r);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const inside = c === 0 ? dx * dx + dy * dy <= r * r : c === 1 ? Math.abs(dx) <= r && Math.abs(dy) <= r : Math.abs(dy) <= r && Math.abs(dx) <= (dy + r) / 2;
      if (inside) px.set(COLOURS[c], (y * width + x) * 3);
    }
  }
  return sharp(px, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** `imagefolder:DIR` with `perClass` images of each shape (DIR/circle/img000.png, ...). Returns DIR. */
export async function writeShapeFolder(dir: string, perClass: number): Promise<string> {
  for (let c = 0; c < SHAPES.length; c++) {
    fs.mkdirSync(path.join(dir, SHAPES[c]), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const [w, h] = SIZES[i % SIZES.length];
      fs.writeFileSync(path.join(dir, SHAPES[c], `img${String(i).padStart(3, "0")}.png`), await shapePng(c, w, h, 100 * c + i));
    }
  }
  return dir;
}

/**
 * An open_clip TSV in DIR (images in DIR/images): `filepath`, `title` (a caption with a comma,
 * quotes and non-ASCII), and `label` (the shape's name). With `groups`, two group columns too:
 * `tone` ("dark" for a third of the images, "light") and `size` ("small", "large", alternating).
 * Returns the file.
 */
export async function writeShapeTsv(dir: string, perClass: number, opts: { groups?: boolean; name?: string } = {}): Promise<string> {
  fs.mkdirSync(path.join(dir, "images"), { recursive: true });
  const lines = [`filepath\ttitle\tlabel${opts.groups ? "\ttone\tsize" : ""}`];
  for (let i = 0; i < perClass; i++) {
    for (let c = 0; c < SHAPES.length; c++) {
      const [w, h] = SIZES[(i + c) % SIZES.length];
      const rel = `images/${SHAPES[c]}-${i}.png`;
      fs.writeFileSync(path.join(dir, rel), await shapePng(c, w, h, 1000 + 100 * c + i));
      const groups = opts.groups ? `\t${(i + c) % 3 === 0 ? "dark" : "light"}\t${i % 2 ? "large" : "small"}` : "";
      lines.push(`${rel}\t"a ${SHAPES[c]}, drawn ""by hand"" · n°${i}"\t${SHAPES[c]}${groups}`);
    }
  }
  const file = path.join(dir, opts.name ?? "pairs.tsv");
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

/** A tiny ViT CLIP with 64 px input, from a config object (CLIP's default preprocessing). */
export const TINY_64 = {
  embed_dim: 32,
  quick_gelu: false,
  vision_cfg: { image_size: 64, layers: 1, width: 32, patch_size: 16, head_width: 16 },
  text_cfg: { context_length: 32, vocab_size: 49408, width: 32, heads: 2, layers: 1 },
};

/** Saves a random-init TINY_64 model to `file` (model.safetensors) and returns the path. */
export async function saveTiny64(file: string, seed = 3): Promise<string> {
  const clip = Clip.create(JSON.parse(JSON.stringify(TINY_64)), { seed });
  try {
    await saveCheckpoint(clip, file);
  } finally {
    clip.dispose();
  }
  return file;
}
