/**
 * A generated captioned image folder for the fine-tuning tests (not a test file itself): one
 * subfolder per shape (the labels), each image a coloured shape on black with a seeded position,
 * and a `NAME.txt` caption beside it naming colour and shape ("a red square").
 */
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { Random } from "../../src/util/random";

export const COLOURS: Record<string, [number, number, number]> = {
  red: [225, 30, 30],
  green: [30, 205, 45],
  blue: [45, 65, 235],
  yellow: [235, 220, 35],
};
export const SHAPES = ["bar", "square"] as const;

function inShape(shape: (typeof SHAPES)[number], x: number, y: number, cx: number, cy: number): boolean {
  if (shape === "square") return Math.abs(x - cx) <= 5 && Math.abs(y - cy) <= 5;
  return Math.abs(x - cx) <= 9 && Math.abs(y - cy) <= 2;
}

export interface FolderOptions {
  count: number;
  seed: number;
  size?: number;
  /** Indices (in generation order) written as unreadable files instead of images. */
  corrupt?: number[];
}

/** Writes the folder under `dir`; returns `imagefolder:DIR`. Image i has colour i % 4 and shape (i / 4) % 2. */
export async function writeCaptionedFolder(dir: string, opts: FolderOptions): Promise<string> {
  const size = opts.size ?? 28;
  const rng = new Random(opts.seed);
  const colours = Object.keys(COLOURS);
  for (const s of SHAPES) fs.mkdirSync(path.join(dir, s), { recursive: true });
  for (let i = 0; i < opts.count; i++) {
    const colour = colours[i % colours.length];
    const shape = SHAPES[Math.floor(i / colours.length) % SHAPES.length];
    const name = path.join(dir, shape, `img${String(i).padStart(4, "0")}`);
    fs.writeFileSync(`${name}.txt`, `a ${colour} ${shape}\n`);
    const cx = 9 + rng.int(size - 18);
    const cy = 9 + rng.int(size - 18);
    const gain = 0.75 + 0.25 * rng.next();
    if (opts.corrupt?.includes(i)) {
      fs.writeFileSync(`${name}.png`, Buffer.from("not a png at all"));
      continue;
    }
    const px = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        if (!inShape(shape, x, y, cx, cy)) continue;
        const c = COLOURS[colour];
        px.set([Math.round(c[0] * gain), Math.round(c[1] * gain), Math.round(c[2] * gain)], (y * size + x) * 3);
      }
    }
    await sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toFile(`${name}.png`);
  }
  return `imagefolder:${dir}`;
}
