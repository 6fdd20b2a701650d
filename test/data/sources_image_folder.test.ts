/** The image-folder and Fashion-MNIST sources, and the --data spec parser. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { openDataset, parseDataSpec } from "../../src/data/open";
import { parseShard, shardOrder } from "../../src/data/dataset";
import { FashionMnistDataset } from "../../src/data/sources/fashion_mnist";
import { pairedCaptions } from "../../src/data/captioner";
import { encodeIdx } from "../../src/data/idx";
import { tmpDir } from "../helpers/fixtures";
import { collect, collectSkipping, makeImage, rejectsOneLine } from "../helpers/data_sources";

async function folder(layout: Record<string, string[]>): Promise<string> {
  const root = tmpDir();
  let seed = 0;
  for (const [dir, files] of Object.entries(layout)) {
    fs.mkdirSync(path.join(root, dir), { recursive: true });
    for (const f of files) {
      const file = path.join(root, dir, f);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      if (f.endsWith(".txt")) fs.writeFileSync(file, "a red square\nrot, quadratisch, «ein Bild»\n");
      else fs.writeFileSync(file, await makeImage(f.endsWith(".jpg") ? "jpeg" : "png", 12 + seed, 10, seed++));
    }
  }
  return root;
}

describe("--data specs", () => {
  it("names the kind, and a bad kind lists the valid ones", () => {
    assert.deepEqual(parseDataSpec("imagefolder:a/b"), { kind: "imagefolder", target: "a/b" });
    assert.deepEqual(parseDataSpec("fashion-mnist"), { kind: "fashion-mnist", target: "" });
    assert.throws(() => parseDataSpec("folder:x"), /unknown source kind "folder"; valid kinds: fashion-mnist, imagefolder, csv, wds, parquet, arrow/);
    assert.throws(() => parseDataSpec("csv"), /csv needs a path/);
  });

  it("shards: I/N parsed, every N-th item from I, concatenation order known", () => {
    assert.deepEqual(parseShard("1/3"), { index: 1, count: 3 });
    for (const bad of ["3/3", "1", "-1/2", "a/b", "0/0"]) assert.throws(() => parseShard(bad), /--shard must be I\/N with 0 <= I < N/);
    assert.deepEqual(Array.from(shardOrder(7, 3)), [0, 3, 6, 1, 4, 2, 5]);
  });
});

describe("imagefolder source", () => {
  it("classes sorted by folder, images by path (recursively), labels and keys", async () => {
    const root = await folder({ zebra: ["b.png", "a.jpg", "sub/c.png"], apple: ["x.png", "notes.md"] });
    fs.writeFileSync(path.join(root, "apple", "notes.md"), "not an image");
    const ds = await openDataset(`imagefolder:${root}`);
    assert.deepEqual(ds.classNames, ["apple", "zebra"]);
    assert.equal(ds.size, 4);
    assert.ok(ds.hasLabels && !ds.hasCaptions);
    const items = await collect(ds);
    assert.deepEqual(items.map((i) => path.relative(root, i.key)), ["apple/x.png", "zebra/a.jpg", "zebra/b.png", "zebra/sub/c.png"]);
    assert.deepEqual(items.map((i) => i.label), [0, 1, 1, 1]);
    assert.deepEqual(items.map((i) => i.index), [0, 1, 2, 3]);
    const first = items[0].image;
    assert.equal(first.kind, "encoded");
    assert.deepEqual(first.kind === "encoded" && Buffer.from(first.bytes), fs.readFileSync(items[0].key));
    // Captions made from the class names, seeded by (seed, index).
    const c = pairedCaptions(items[1], ds.captioner, 7);
    assert.match(c[0], /zebra/);
    assert.deepEqual(pairedCaptions(items[1], ds.captioner, 7), c);
  });

  it("classnames.txt overrides the folder names; a wrong count is one line naming both counts", async () => {
    const root = await folder({ n01: ["a.png"], n02: ["b.png"] });
    fs.writeFileSync(path.join(root, "classnames.txt"), "goldfish\ngreat white shark\n");
    assert.deepEqual((await openDataset(`imagefolder:${root}`)).classNames, ["goldfish", "great white shark"]);
    fs.writeFileSync(path.join(root, "classnames.txt"), "goldfish\n");
    await rejectsOneLine(() => openDataset(`imagefolder:${root}`), /classnames\.txt: has 1 class names but the data has 2 class folders \(n01, n02\)/);
    const other = path.join(tmpDir(), "names.txt");
    fs.writeFileSync(other, "a\nb\n");
    assert.deepEqual((await openDataset(`imagefolder:${root}`, { classnamesFile: other })).classNames, ["a", "b"]);
  });

  it("a flat folder is unlabelled; sidecar .txt files are captions", async () => {
    const root = await folder({ ".": ["p1.png", "p1.txt", "p2.jpg"] });
    const ds = await openDataset(`imagefolder:${root}`);
    assert.ok(!ds.hasLabels && ds.hasCaptions);
    assert.equal(ds.classNames, undefined);
    const items = await collect(ds);
    assert.deepEqual(items[0].captions, ["a red square", "rot, quadratisch, «ein Bild»"]);
    assert.deepEqual(items[1].captions, []);
    assert.equal(items[1].label, undefined);
  });

  it("shards and limits", async () => {
    const root = await folder({ a: ["1.png", "2.png", "3.png"], b: ["4.png", "5.png"] });
    const ds = await openDataset(`imagefolder:${root}`);
    const all = (await collect(ds)).map((i) => i.key);
    const shards = [];
    for (let s = 0; s < 2; s++) shards.push(...(await collect(ds, { shard: { index: s, count: 2 } })).map((i) => i.key));
    assert.deepEqual(shards, Array.from(shardOrder(all.length, 2), (i) => all[i]));
    assert.equal((await collect(ds, { limit: 2 })).length, 2);
    assert.deepEqual((await collect(ds, { shard: { index: 1, count: 2 }, limit: 1 })).map((i) => i.index), [1]);
  });

  it("bad folders: one line each", async () => {
    await rejectsOneLine(() => openDataset(`imagefolder:${path.join(tmpDir(), "missing")}`), /missing: image folder not found/);
    await rejectsOneLine(() => openDataset(`imagefolder:${tmpDir()}`), /image folder is empty: no class subfolders and no images/);
    const root = await folder({ a: ["1.png"], b: [] });
    await rejectsOneLine(() => openDataset(`imagefolder:${root}`), /b: class folder has no images/);
    const file = path.join(tmpDir(), "x.png");
    fs.writeFileSync(file, "x");
    await rejectsOneLine(() => openDataset(`imagefolder:${file}`), /is not a folder/);
  });

  it("an unreadable file: an error naming it, or skipped and recorded", async () => {
    const root = await folder({ a: ["1.png", "2.png"] });
    fs.writeFileSync(path.join(root, "a", "2.png"), "");
    const ds = await openDataset(`imagefolder:${root}`);
    await rejectsOneLine(() => collect(ds), /2\.png: image file is empty/);
    const { items, skipped } = await collectSkipping(ds);
    assert.equal(items.length, 1);
    assert.deepEqual(skipped, [{ key: path.join(root, "a", "2.png"), reason: "image file is empty" }]);
  });
});

describe("fashion-mnist source", () => {
  it("items are the split's grey images (views), labels, prompt names and evaluation templates", async () => {
    const dir = tmpDir();
    const n = 5;
    const images = new Uint8Array(n * 28 * 28).map((_, i) => (i * 7) % 256);
    const labels = Uint8Array.from([3, 1, 4, 1, 5]);
    for (const [name, dims, data] of [
      ["t10k-images-idx3-ubyte.gz", [n, 28, 28], images],
      ["t10k-labels-idx1-ubyte.gz", [n], labels],
    ] as const) fs.writeFileSync(path.join(dir, name), zlib.gzipSync(encodeIdx([...dims], data)));
    const ds = (await openDataset(`fashion-mnist:${dir}`)) as FashionMnistDataset;
    assert.equal(ds.size, n);
    assert.equal(ds.classNames[1], "pair of trousers");
    assert.ok(ds.templates.length > 0 && ds.templates.every((t) => t.includes("{}")));
    const items = await collect(ds);
    assert.deepEqual(items.map((i) => i.label), [3, 1, 4, 1, 5]);
    const img = items[2].image;
    assert.ok(img.kind === "decoded" && img.image.mode === "L" && img.image.width === 28);
    assert.deepEqual(img.kind === "decoded" && Array.from(img.image.data), Array.from(images.subarray(2 * 784, 3 * 784)));
    // Captions come from captions.json's generator (synonyms, attributes), seeded per item.
    const c = pairedCaptions(items[0], ds.captioner, 1);
    assert.equal(c.length, 1);
    assert.match(c[0], /^an? .+\.$/);
    assert.deepEqual(pairedCaptions(items[0], ds.captioner, 1), c);
  });
});
