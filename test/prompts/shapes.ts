/**
 * Small datasets on disk for the prompt-study and `cliplab zeroshot` tests (not a test file
 * itself): coloured-shape PNGs written with sharp, as an image folder (one subfolder per class,
 * a classnames.txt, optional caption sidecars) or as an open_clip TSV, and a random-init CLIP at
 * 64 px whose config is written by hand.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { Clip } from "../../src/model/clip";
import { Random } from "../../src/util/random";

/** Folder names (sorted: the label order) and their readable names (classnames.txt). */
export const SHAPE_FOLDERS = ["circle", "square", "triangle"];
export const SHAPE_NAMES = ["red circle", "green square", "blue triangle"];
const COLOURS: [number, number, number][] = [
  [220, 40, 40],
  [40, 200, 60],
  [50, 70, 230],
];
/** Image sizes cycled through, so the model's resize and crop are exercised. */
const SIZES: [number, number][] = [
  [64, 64],
  [80, 60],
  [50, 70],
];

/** A `width` x `height` PNG of class `c`'s shape in its colour on a grey background, seeded. */
export async function shapePng(c: number, width: number, height: number, seed: number): Promise<Buffer> {
  const rng = new Random(seed);
  const px = new Uint8Array(width * height * 3).fill(90 + rng.int(40));
  const r = Math.min(width, height) * (0.25 + 0.15 * rng.next());
  const cx = width / 2 + (rng.next() - 0.5) * (width / 2 - r);
  const cy = height / 2 + (rng.next() - 0.5) * (height / 2 - r);
  const inside = (x: number, y: number): boolean => {
    const dx = x - cx;
    const dy = y - cy;
    if (c === 0) return dx * dx + dy * dy <= r * r;
    if (c === 1) return Math.abs(dx) <= r && Math.abs(dy) <= r;
    return dy <= r && dy >= -r && Math.abs(dx) <= (dy + r) / 2;
  };
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (inside(x, y)) px.set(COLOURS[c], (y * width + x) * 3);
  return sharp(px, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export interface ShapeFolderOptions {
  /** Write classnames.txt with SHAPE_NAMES; default true. */
  classnames?: boolean;
  /** Give each image a sidecar NAME.txt with these captions (`{}` = the class name). */
  captions?: string[];
  seed?: number;
}

/** `imagefolder:DIR` with `perClass` PNGs of each shape. Returns DIR. */
export async function writeShapeFolder(dir: string, perClass: number, opts: ShapeFolderOptions = {}): Promise<string> {
  const seed = opts.seed ?? 1;
  for (let c = 0; c < SHAPE_FOLDERS.length; c++) {
    const sub = path.join(dir, SHAPE_FOLDERS[c]);
    fs.mkdirSync(sub, { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const [w, h] = SIZES[i % SIZES.length];
      const base = path.join(sub, `img${String(i).padStart(3, "0")}`);
      fs.writeFileSync(`${base}.png`, await shapePng(c, w, h, seed * 1000 + c * 100 + i));
      if (opts.captions) fs.writeFileSync(`${base}.txt`, opts.captions.map((t) => t.replace("{}", SHAPE_NAMES[c])).join("\n") + "\n");
    }
  }
  if (opts.classnames ?? true) fs.writeFileSync(path.join(dir, "classnames.txt"), SHAPE_NAMES.join("\n") + "\n");
  return dir;
}

/**
 * An open_clip TSV (`filepath`, `title`, and a `label` column of class names) of `perClass`
 * shapes per class, images in DIR/images. Returns the file.
 */
export async function writeShapeTsv(dir: string, name: string, perClass: number, seed = 1): Promise<string> {
  fs.mkdirSync(path.join(dir, "images"), { recursive: true });
  const lines = ["filepath\ttitle\tlabel"];
  for (let i = 0; i < perClass; i++) {
    for (let c = 0; c < SHAPE_FOLDERS.length; c++) {
      const [w, h] = SIZES[(i + c) % SIZES.length];
      const rel = `images/${name}-${SHAPE_FOLDERS[c]}-${i}.png`;
      fs.writeFileSync(path.join(dir, rel), await shapePng(c, w, h, seed * 1000 + c * 100 + i));
      lines.push(`${rel}\ta photo of a ${SHAPE_NAMES[c]}, number ${i}\t${SHAPE_NAMES[c]}`);
    }
  }
  const file = path.join(dir, `${name}.tsv`);
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

/** A random-init CLIP with 64 px input, its config written by hand (a 16 px-patch ViT, CLIP's default preprocessing). */
export const TINY_64_CONFIG = {
  embed_dim: 32,
  quick_gelu: false,
  vision_cfg: { image_size: 64, layers: 1, width: 32, patch_size: 16, head_width: 16 },
  text_cfg: { context_length: 32, vocab_size: 49408, width: 32, heads: 2, layers: 1 },
};

export function tiny64Clip(seed = 1): Clip {
  return Clip.create(JSON.parse(JSON.stringify(TINY_64_CONFIG)), { seed });
}
