/**
 * The preprocessing pipeline: worker threads, source order, equality with the main thread, bad
 * images, bounded prefetch, augmentation seeds, clean shutdown.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import sharp from "sharp";
import { DataError, type DataItem } from "../../src/data/dataset";
import { normalizeBatch, prepareItem, prepareItems, PreparePool, type PreparedItem } from "../../src/data/pipeline";
import { decodeStored } from "../../src/image/decode";
import { preprocessStored, preprocessStoredNormalized } from "../../src/image/preprocess";
import { resolveTransform } from "../../src/image/transform";
import { augmentStored, resolveAugmentation } from "../../src/image/augment";
import type { StoredImage } from "../../src/image/stored";
import { Random, mixSeed } from "../../src/util/random";

const T = resolveTransform(24, {});
const ROOT = path.join(__dirname, "..", "..");

function pattern(n: number, seed: number): Uint8Array {
  const rng = new Random(seed);
  return Uint8Array.from({ length: n }, (_, i) => ((i * 7) % 200) + rng.int(56));
}

/** A few encoded files of several formats and sizes, and decoded items whose pixels share one buffer. */
let encoded: { key: string; bytes: Uint8Array }[] = [];
const shared = pattern(3 * 28 * 28, 99); // three 28x28 grey images in one buffer, as Fashion-MNIST holds them
before(async () => {
  const make = async (w: number, h: number, c: 1 | 3 | 4, fmt: "png" | "jpeg" | "webp", seed: number) => {
    let s = sharp(pattern(w * h * c, seed), { raw: { width: w, height: h, channels: c } });
    if (c === 1) s = s.toColourspace("b-w");
    const buf = await (fmt === "png" ? s.png() : fmt === "jpeg" ? s.jpeg({ quality: 85 }) : s.webp({ quality: 80 })).toBuffer();
    return new Uint8Array(buf);
  };
  const specs: [number, number, 1 | 3 | 4, "png" | "jpeg" | "webp"][] = [
    [50, 37, 3, "jpeg"], [31, 45, 4, "png"], [24, 24, 1, "png"], [64, 20, 3, "webp"], [33, 29, 3, "png"], [40, 40, 3, "jpeg"], [19, 60, 4, "png"], [26, 30, 1, "jpeg"],
  ];
  encoded = await Promise.all(specs.map(async ([w, h, c, f], i) => ({ key: `img/${i}.${f}`, bytes: await make(w, h, c, f, i) })));
});

function items(): DataItem[] {
  const out: DataItem[] = encoded.map((e, i) => ({ key: e.key, index: i, image: { kind: "encoded", bytes: e.bytes }, label: i % 3, captions: [`a photo, "number" ${i}`], groups: { g: String(i % 2) } }));
  for (let k = 0; k < 3; k++) {
    out.push({ key: `fmnist#${k}`, index: out.length, image: { kind: "decoded", image: { width: 28, height: 28, mode: "L", data: shared.subarray(k * 784, (k + 1) * 784) } }, label: k, captions: [] });
  }
  return out;
}

/** An async source with small random delays, so workers finish out of order. */
async function* source(list: DataItem[], seed = 1, log?: { pulled: number; returned: boolean }): AsyncGenerator<DataItem> {
  const rng = new Random(seed);
  try {
    for (const item of list) {
      await new Promise((r) => setTimeout(r, rng.int(4)));
      if (log) log.pulled++;
      yield item;
    }
  } finally {
    if (log) log.returned = true;
  }
}

async function storedOf(item: DataItem): Promise<StoredImage> {
  const ref = item.image;
  return ref.kind === "encoded" ? decodeStored(ref.bytes, item.key) : ref.image;
}

async function expectedPixels(item: DataItem): Promise<Uint8Array> {
  return preprocessStored(await storedOf(item), T);
}

async function collect(gen: AsyncIterable<PreparedItem>): Promise<PreparedItem[]> {
  const out: PreparedItem[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

test("workers: items in source order, pixels equal to the main thread's, metadata carried, shared buffers untouched", async () => {
  const list = items();
  const before = shared.slice();
  const got = await collect(prepareItems(source(list), T, { workers: 2 }));
  assert.deepEqual(got.map((x) => x.key), list.map((x) => x.key));
  for (let i = 0; i < list.length; i++) {
    assert.deepEqual(got[i].pixels, await expectedPixels(list[i]), list[i].key);
    assert.equal(got[i].pixels.length, 24 * 24 * 3);
    assert.equal(got[i].index, list[i].index);
    assert.equal(got[i].label, list[i].label);
    assert.deepEqual(got[i].captions, list[i].captions);
    assert.deepEqual(got[i].groups, list[i].groups);
    assert.ok(!("image" in got[i]), "no image bytes kept");
  }
  assert.equal(shared.byteLength, 3 * 784, "the source's buffer is not detached");
  assert.deepEqual(shared, before);
  for (const e of encoded) assert.ok(e.bytes.byteLength > 0);
});

test("workers: 0 (main thread) and prepareItem give the same pixels; normalizeBatch is the float32 model input", async () => {
  const list = items();
  const main = await collect(prepareItems(source(list, 2), T, { workers: 0 }));
  const single = await prepareItem(list[1], T);
  assert.deepEqual(single.pixels, await expectedPixels(list[1]));
  for (let i = 0; i < list.length; i++) assert.deepEqual(main[i].pixels, await expectedPixels(list[i]));
  const batch = normalizeBatch(main.slice(0, 3), T);
  const per = 24 * 24 * 3;
  for (let i = 0; i < 3; i++) {
    const img = await storedOf(list[i]);
    assert.deepEqual(batch.subarray(i * per, (i + 1) * per), preprocessStoredNormalized(img, T));
  }
});

test("a bad image rejects with a one-line DataError naming the key, after the items before it", async () => {
  const list = items();
  list.splice(3, 0, { key: "photos/broken.jpg", index: 3, image: { kind: "encoded", bytes: encoded[0].bytes.subarray(0, 40) }, captions: [] });
  const seen: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const x of prepareItems(source(list), T, { workers: 2 })) seen.push(x.key);
    })(),
    (err: unknown) => {
      assert.ok(err instanceof DataError, String(err));
      assert.equal(err.where, "photos/broken.jpg");
      assert.match(err.message, /^photos\/broken\.jpg: not a PNG\/JPEG\/WebP\/GIF\/TIFF\/AVIF image, or corrupt \(.+\)$/);
      assert.ok(!err.message.includes("\n"));
      return true;
    },
  );
  assert.deepEqual(seen, list.slice(0, 3).map((x) => x.key));
});

test("skipBadImages: each bad image reported through onSkip in order and left out", async () => {
  const list = items();
  list.splice(2, 0, { key: "a.png", index: 100, image: { kind: "encoded", bytes: new TextEncoder().encode("not an image") }, captions: [] });
  list.splice(6, 0, { key: "b.png", index: 101, image: { kind: "encoded", bytes: new Uint8Array(0) }, captions: [] });
  const skipped: { key: string; reason: string }[] = [];
  const got = await collect(prepareItems(source(list), T, { workers: 2, skipBadImages: true, onSkip: (s) => skipped.push(s) }));
  assert.deepEqual(skipped.map((s) => s.key), ["a.png", "b.png"]);
  assert.match(skipped[0].reason, /^not a PNG\/JPEG.* image, or corrupt/);
  assert.equal(skipped[1].reason, "empty, not a PNG/JPEG/WebP/GIF/TIFF/AVIF image");
  assert.deepEqual(got.map((x) => x.key), list.filter((x) => x.key !== "a.png" && x.key !== "b.png").map((x) => x.key));
});

test("prefetch is bounded in items and bytes, and fills while the consumer waits", async () => {
  const list = Array.from({ length: 40 }, (_, i) => ({ ...items()[i % 8], index: i, key: `k${i}` }));
  const log = { pulled: 0, returned: false };
  const gen = prepareItems(source(list, 3, log), T, { workers: 0, prefetch: 4 });
  await gen.next();
  await new Promise((r) => setTimeout(r, 300)); // the consumer is busy elsewhere
  assert.ok(log.pulled >= 4 && log.pulled <= 5, `pulled ${log.pulled}: 1 taken + at most 4 ahead`);
  await gen.return(undefined);
  assert.ok(log.returned, "the source was closed");

  const log2 = { pulled: 0, returned: false };
  const gen2 = prepareItems(source(list, 3, log2), T, { workers: 0, maxBytes: 1 });
  await gen2.next();
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(log2.pulled <= 2, `maxBytes 1: one item at a time, pulled ${log2.pulled}`);
  await gen2.return(undefined);
});

test("augmentation: pixels depend only on seedFor(item), on workers and on the main thread alike", async () => {
  const list = items();
  const augment = { scale: [0.6, 1] as [number, number], color_jitter: [0.3, 0.3, 0.3, 0.05] as [number, number, number, number], color_jitter_prob: 0.8, gray_scale_prob: 0.2 };
  const seedFor = (item: DataItem) => mixSeed(11, 1, item.index); // (seed, epoch, index)
  const a = await collect(prepareItems(source(list), T, { workers: 2, augment, seedFor }));
  const b = await collect(prepareItems(source(list, 9), T, { workers: 0, augment, seedFor }));
  const aug = resolveAugmentation(augment);
  for (let i = 0; i < list.length; i++) {
    assert.deepEqual(a[i].pixels, b[i].pixels, list[i].key);
    const img = await storedOf(list[i]);
    assert.deepEqual(a[i].pixels, augmentStored(img, 24, aug, new Random(seedFor(list[i]))));
  }
  assert.notDeepEqual(a[0].pixels, await expectedPixels(list[0]));
  await assert.rejects(collect(prepareItems(source(list), T, { workers: 0, augment })), /prepareItems: augment needs seedFor\(item\) -> seed/);
});

test("a pool serves several runs (epochs) and rejects after close()", async () => {
  const pool = new PreparePool(T, { workers: 2 });
  const list = items();
  const e0 = await collect(prepareItems(source(list), T, { pool }));
  const e1 = await collect(prepareItems(source(list, 5), T, { pool }));
  assert.deepEqual(e0.map((x) => x.pixels), e1.map((x) => x.pixels));
  await pool.close();
  await assert.rejects(pool.run("x", list[0].image), /PreparePool: the pool is closed/);
});

test("a source that throws: its error comes out after the items before it; bad options are one-line errors", async () => {
  async function* failing(): AsyncGenerator<DataItem> {
    yield items()[0];
    yield items()[1];
    throw new DataError("data.csv:7", "column filepath is empty");
  }
  const seen: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const x of prepareItems(failing(), T, { workers: 0 })) seen.push(x.key);
    })(),
    /^DataError: data\.csv:7: column filepath is empty$/,
  );
  assert.equal(seen.length, 2);
  await assert.rejects(collect(prepareItems(source([]), T, { prefetchItems: 3 } as never)), /prepareItems: unknown option "prefetchItems"; valid options: workers, inflight, sharpThreads, augment, seedFor, prefetch, maxBytes, skipBadImages, onSkip, pool/);
  await assert.rejects(collect(prepareItems(source([]), T, { prefetch: 0 })), /prepareItems: prefetch must be an integer >= 1, got 0/);
  await assert.rejects(collect(prepareItems([] as never, T)), /source must be an AsyncIterable/);
});

/** Runs `body` in a fresh Node process that loads the pipeline; returns its exit status and output. */
function child(body: string): { status: number | null; out: string; ms: number } {
  const code = `
require("tsx/cjs");
const sharp = require("sharp");
const { prepareItems } = require("./src/data/pipeline.ts");
const { resolveTransform } = require("./src/image/transform.ts");
(async () => {
  const png = new Uint8Array(await sharp(Buffer.alloc(40 * 30 * 3, 90), { raw: { width: 40, height: 30, channels: 3 } }).png().toBuffer());
  async function* src() { for (let i = 0; i < 1000; i++) yield { key: "k" + i, index: i, image: { kind: "encoded", bytes: png }, captions: [] }; }
  ${body}
})();`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ["-e", code], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
  return { status: r.status, out: (r.stdout ?? "") + (r.stderr ?? ""), ms: Date.now() - t0 };
}

test("shutdown: the process exits on its own after a break, and when the iterator is just abandoned", () => {
  const broke = child(`let n = 0; for await (const x of prepareItems(src(), resolveTransform(32), { workers: 2 })) { if (++n === 5) break; } console.log("took", n);`);
  assert.equal(broke.status, 0, broke.out);
  assert.match(broke.out, /took 5/);
  const abandoned = child(`const it = prepareItems(src(), resolveTransform(32), { workers: 2 }); await it.next(); await it.next(); console.log("left it");`);
  assert.equal(abandoned.status, 0, abandoned.out);
  assert.match(abandoned.out, /left it/);
});
