/**
 * The same images give the same embeddings through every source: an image folder, a TSV, WebDataset
 * shards, a Parquet file and an Arrow file holding the same files (RGB shapes and tinted
 * Fashion-MNIST-like digits, several sizes, PNG/JPEG/WebP), captions with commas, quotes and
 * non-ASCII, embedded with one random-init model at 64 px.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { Binary, Field, Int64, Struct, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";
import { openDataset } from "../../src/data/open";
import type { Dataset } from "../../src/data/dataset";
import { preparedStream } from "../../src/data/stream";
import { encodeImages } from "../../src/eval/encode";
import { modelTransform } from "../../src/model/config";
import { Clip } from "../../src/model/clip";
import { initBackend } from "../../src/backend/select";
import { Random } from "../../src/util/random";
import { tmpDir } from "../helpers/fixtures";
import { writeParquet } from "../helpers/parquet_writer";
import { TINY_64, shapePng } from "../report/shapes_data";

const CLASSES = ["bag", "shape"];
interface Sample {
  name: string;
  ext: string;
  bytes: Buffer;
  label: number;
  caption: string;
}

/** A tinted 28x28 "digit": a grey blob on black, coloured and upscaled. */
async function tintedDigit(seed: number, size: number, format: "jpeg" | "webp"): Promise<Buffer> {
  const rng = new Random(seed);
  const tint = [rng.int(256), rng.int(256), rng.int(256)];
  const px = new Uint8Array(28 * 28 * 3);
  for (let y = 4; y < 24; y++) for (let x = 6 + rng.int(3); x < 22; x++) {
    const v = 120 + rng.int(135);
    px.set(tint.map((t) => Math.round((t * v) / 255)), (y * 28 + x) * 3);
  }
  const img = sharp(px, { raw: { width: 28, height: 28, channels: 3 } }).resize(size, size, { kernel: "nearest" });
  return format === "jpeg" ? img.jpeg({ quality: 92 }).toBuffer() : img.webp({ lossless: true }).toBuffer();
}

let samples: Sample[];
let dir: string;
let clip: Clip;

before(async () => {
  await initBackend();
  dir = tmpDir();
  samples = [];
  for (let i = 0; i < 4; i++) {
    samples.push({ name: `shape${i}`, ext: "png", bytes: await shapePng(i % 3, 50 + 13 * i, 70 - 5 * i, i), label: 1, caption: `shape ${i}, "quoted" · ünïcødé` });
    const format = i % 2 ? "jpeg" : "webp";
    samples.push({ name: `digit${i}`, ext: format === "jpeg" ? "jpg" : "webp", bytes: await tintedDigit(10 + i, 40 + 20 * i, format), label: 0, caption: `a digit, number ${i}; «tinted»` });
  }
  // In the image folder's order (class folder, then file name), so every source lists them alike.
  samples.sort((a, b) => a.label - b.label || (a.name < b.name ? -1 : 1));
  clip = Clip.create(JSON.parse(JSON.stringify(TINY_64)), { seed: 5 });
});

/** Features of every item, in source order, with the labels it read. */
async function features(ds: Dataset): Promise<{ rows: Float32Array[]; labels: number[] }> {
  const t = modelTransform(clip.config);
  const out = await encodeImages(clip, preparedStream(ds, t), { mean: t.mean, std: t.std, batchSize: 3 });
  return { rows: Array.from({ length: out.n }, (_, i) => out.values.slice(i * out.dim, (i + 1) * out.dim)), labels: Array.from(out.labels) };
}

describe("same images, same embeddings, every source", () => {
  it("imagefolder, csv, wds, parquet and arrow agree exactly", async () => {
    // imagefolder
    const folder = path.join(dir, "folder");
    for (const s of samples) {
      fs.mkdirSync(path.join(folder, CLASSES[s.label]), { recursive: true });
      fs.writeFileSync(path.join(folder, CLASSES[s.label], `${s.name}.${s.ext}`), s.bytes);
    }
    // TSV beside an images folder
    const flat = path.join(dir, "files");
    fs.mkdirSync(flat);
    for (const s of samples) fs.writeFileSync(path.join(flat, `${s.name}.${s.ext}`), s.bytes);
    const q = (x: string) => `"${x.replace(/"/g, '""')}"`;
    const tsv = path.join(dir, "pairs.tsv");
    fs.writeFileSync(tsv, ["filepath\ttitle\tlabel", ...samples.map((s) => `files/${s.name}.${s.ext}\t${q(s.caption)}\t${CLASSES[s.label]}`)].join("\n") + "\n");
    // WebDataset: two shards, key.{ext,txt,cls}
    const stage = path.join(dir, "stage");
    fs.mkdirSync(stage);
    const shards = path.join(dir, "shards");
    fs.mkdirSync(shards);
    for (let k = 0; k < 2; k++) {
      const members: string[] = [];
      for (const s of samples.slice(k * 4, k * 4 + 4)) {
        fs.writeFileSync(path.join(stage, `${s.name}.${s.ext}`), s.bytes);
        fs.writeFileSync(path.join(stage, `${s.name}.txt`), s.caption);
        fs.writeFileSync(path.join(stage, `${s.name}.cls`), String(s.label));
        members.push(`${s.name}.${s.ext}`, `${s.name}.txt`, `${s.name}.cls`);
      }
      execFileSync("tar", ["--format=pax", "-cf", path.join(shards, `${String(k).padStart(4, "0")}.tar`), "-C", stage, "--", ...members]);
    }
    fs.writeFileSync(path.join(shards, "classnames.txt"), CLASSES.join("\n") + "\n");
    // Parquet (Hugging Face layout: image struct {bytes, path})
    const parquet = path.join(dir, "train.parquet");
    writeParquet(parquet, [
      { name: "image", kind: "image", values: samples.map((s) => ({ bytes: new Uint8Array(s.bytes), path: `${s.name}.${s.ext}` })) },
      { name: "text", kind: "string", values: samples.map((s) => s.caption) },
      { name: "label", kind: "int64", values: samples.map((s) => s.label) },
    ], { rowGroupSize: 3 });
    // Arrow IPC file, same layout
    const arrow = path.join(dir, "train.arrow");
    const imgType = new Struct([new Field("bytes", new Binary(), true), new Field("path", new Utf8(), true)]);
    fs.writeFileSync(arrow, tableToIPC(new Table({
      image: vectorFromArray(samples.map((s) => ({ bytes: new Uint8Array(s.bytes), path: `${s.name}.${s.ext}` })), imgType),
      text: vectorFromArray(samples.map((s) => s.caption), new Utf8()),
      label: vectorFromArray(samples.map((s) => BigInt(s.label)), new Int64()),
    }), "file"));

    const reference = await features(await openDataset(`imagefolder:${folder}`));
    assert.equal(reference.rows.length, samples.length);
    assert.deepEqual(reference.labels, samples.map((s) => s.label));
    const specs: [string, object][] = [
      [`csv:${tsv}`, { labelKey: "label" }],
      [`wds:${path.join(shards, "{0000..0001}.tar")}`, {}],
      [`parquet:${parquet}`, {}],
      [`arrow:${arrow}`, {}],
    ];
    for (const [spec, opts] of specs) {
      const ds = await openDataset(spec, opts);
      assert.ok(ds.hasCaptions, `${spec} carries the captions`);
      const got = await features(ds);
      assert.deepEqual(got.labels, reference.labels, `${spec}: labels`);
      got.rows.forEach((f, i) => assert.deepEqual(f, reference.rows[i], `${spec}: ${samples[i].name}`));
    }
  });
});
