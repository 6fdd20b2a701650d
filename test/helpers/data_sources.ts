/** Shared helpers for the dataset-source tests: images made from raw pixels, item collection, async one-line errors. */
import assert from "node:assert/strict";
import sharp from "sharp";
import type { DataItem, ReadOptions, SkippedItem } from "../../src/data/dataset";
import { Random } from "../../src/util/random";

/** A `width` x `height` RGB image of seeded random blocks, encoded as PNG or JPEG. */
export async function makeImage(format: "png" | "jpeg", width: number, height: number, seed: number): Promise<Uint8Array> {
  const rng = new Random(seed);
  const px = new Uint8Array(width * height * 3);
  const colours = Array.from({ length: 4 }, () => [rng.int(256), rng.int(256), rng.int(256)]);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = colours[(x * 2 < width ? 0 : 1) + (y * 2 < height ? 0 : 2)];
      px.set(c, (y * width + x) * 3);
    }
  }
  const img = sharp(px, { raw: { width, height, channels: 3 } });
  const buf = format === "png" ? await img.png().toBuffer() : await img.jpeg({ quality: 90 }).toBuffer();
  return new Uint8Array(buf);
}

/** Every item of `items(opts)`, in order. */
export async function collect(source: { items(opts?: ReadOptions): AsyncIterable<DataItem> }, opts?: ReadOptions): Promise<DataItem[]> {
  const out: DataItem[] = [];
  for await (const it of source.items(opts)) out.push(it);
  return out;
}

/** Items read with skipBadImages, and what was skipped. */
export async function collectSkipping(source: { items(opts?: ReadOptions): AsyncIterable<DataItem> }, opts: ReadOptions = {}): Promise<{ items: DataItem[]; skipped: SkippedItem[] }> {
  const skipped: SkippedItem[] = [];
  const items = await collect(source, { ...opts, skipBadImages: true, onSkip: (s) => skipped.push(s) });
  return { items, skipped };
}

/** `fn` rejects with a one-line Error matching `re`. */
export async function rejectsOneLine(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

/** `re` matching `s` literally. */
export function lit(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
