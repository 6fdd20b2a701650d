/** Shared helpers of the robustness tests: async one-line errors, coloured-shape datasets on disk, a random 64 px CLIP. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { Clip } from "../../src/model/clip";
import { getModelConfig } from "../../src/model/registry";
import { Random } from "../../src/util/random";
import { tmpDir } from "../helpers/fixtures";

/** `fn` rejects with a one-line Error matching `re`. */
export async function rejectsOneLine(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

export const SHAPES = ["circle", "square", "triangle"] as const;
export type Shape = (typeof SHAPES)[number];

/**
 * A `width` x `height` RGB image of one shape in a class colour on a seeded mid-tone background
 * (away from 0 and 1, so small perturbations are rarely clipped), encoded as PNG or JPEG.
 */
export async function shapeImage(shape: Shape, width: number, height: number, seed: number, format: "png" | "jpeg" = "png"): Promise<Buffer> {
  const rng = new Random(seed);
  const bg = [60 + rng.int(80), 60 + rng.int(80), 60 + rng.int(80)];
  const fg = { circle: [220, 60, 50], square: [50, 200, 80], triangle: [60, 90, 230] }[shape];
  const cx = width * (0.4 + 0.2 * rng.next());
  const cy = height * (0.4 + 0.2 * rng.next());
  const r = 0.3 * Math.min(width, height);
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const inside =
        shape === "circle" ? dx * dx + dy * dy <= r * r : shape === "square" ? Math.abs(dx) <= r && Math.abs(dy) <= r : dy <= r && dy >= -r && Math.abs(dx) <= (dy + r) / 2;
      const c = inside ? fg : bg;
      for (let k = 0; k < 3; k++) px[(y * width + x) * 3 + k] = Math.min(255, Math.max(0, c[k] + rng.int(21) - 10));
    }
  }
  const img = sharp(px, { raw: { width, height, channels: 3 } });
  return format === "png" ? img.png().toBuffer() : img.jpeg({ quality: 92 }).toBuffer();
}

/** Sizes and formats the shape images cycle through (none square, some smaller than 64 on one side). */
const VARIANTS: { width: number; height: number; format: "png" | "jpeg" }[] = [
  { width: 80, height: 64, format: "png" },
  { width: 64, height: 96, format: "jpeg" },
  { width: 120, height: 100, format: "png" },
  { width: 50, height: 70, format: "png" },
];

/** An ImageFolder (one subfolder per shape, `perClass` images each) in a temp dir; returns its path. */
export async function shapeFolder(perClass: number): Promise<string> {
  const root = path.join(tmpDir("cliplab-robust-"), "shapes");
  for (const [c, shape] of SHAPES.entries()) {
    fs.mkdirSync(path.join(root, shape), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const v = VARIANTS[(c + i) % VARIANTS.length];
      fs.writeFileSync(path.join(root, shape, `${shape}_${i}.${v.format === "png" ? "png" : "jpg"}`), await shapeImage(shape, v.width, v.height, 100 * c + i, v.format));
    }
  }
  return root;
}

/**
 * A CSV (open_clip's layout plus a label column) of shape images with captions holding commas,
 * quotes and non-ASCII text; returns the file.
 */
export async function shapeCsv(perClass: number): Promise<string> {
  const dir = tmpDir("cliplab-robust-csv-");
  fs.mkdirSync(path.join(dir, "img"));
  const lines = ["filepath,title,label"];
  for (const [c, shape] of SHAPES.entries()) {
    for (let i = 0; i < perClass; i++) {
      const v = VARIANTS[(c + i) % VARIANTS.length];
      const file = `img/${shape}-${i}.png`;
      fs.writeFileSync(path.join(dir, file), await shapeImage(shape, v.width, v.height, 7 + 100 * c + i, "png"));
      lines.push(`${file},"a ${shape}, drawn ""by hand"" (n°${i}, café)",${shape}`);
    }
  }
  const file = path.join(dir, "pairs.csv");
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

/** A random-init tiny CLIP with a 64 px input: the ViT-Tiny-28 preset at 64 px, patch 16, OpenAI's transform. */
export function tinyClip64(seed = 1): Clip {
  const base = getModelConfig("ViT-Tiny-28");
  const { preprocess_cfg: _pad, ...rest } = base;
  return Clip.create({ ...rest, vision_cfg: { ...base.vision_cfg, image_size: 64, patch_size: 16 } }, { seed });
}
