/**
 * Parquet and Arrow sources (src/data/sources/parquet.ts, arrow_table.ts, table_source.ts) on
 * the Hugging Face datasets layout. Parquet files come from the test writer
 * (test/helpers/parquet_writer.ts: no pyarrow here), Arrow files from apache-arrow.
 */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Binary, Dictionary, Field, Int32, Int64, List, RecordBatch, Schema, Struct, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";
import { parquetMetadata } from "hyparquet";
import { shardOrder, type DataItem } from "../../src/data/dataset";
import { openDataset } from "../../src/data/open";
import { collect, collectSkipping, lit, makeImage, rejectsOneLine } from "../helpers/data_sources";
import { writeParquet, type ImageCell } from "../helpers/parquet_writer";
import { tmpDir } from "./util";

const dir = tmpDir();
const CLASSES = ["airplane", "bird", "cat"];
const HF_META = JSON.stringify({
  info: { features: { image: { _type: "Image" }, text: { dtype: "string", _type: "Value" }, label: { names: CLASSES, _type: "ClassLabel" }, gender: { dtype: "string", _type: "Value" } } },
});

interface Row {
  bytes: Uint8Array;
  caption: string;
  label: number;
  group: string;
}

const rows: Row[] = [];
const captions = ['a plane, "high" in the sky', "zwei Zeilen\nund ein Vogel", "猫がいる", "plain", "l'oiseau, encore", "cat; again", "last one"];

describe("parquet and arrow sources", () => {
  const hf = path.join(dir, "hf_ds", "data");
  const files = [path.join(hf, "train-00000-of-00002.parquet"), path.join(hf, "train-00001-of-00002.parquet")];
  const split = [4, 3];

  before(async () => {
    fs.mkdirSync(hf, { recursive: true });
    for (let i = 0; i < captions.length; i++) {
      rows.push({ bytes: await makeImage(i % 2 ? "jpeg" : "png", 10 + i, 9 + (i % 4), 200 + i), caption: captions[i], label: i % 3, group: i % 2 ? "m" : "f" });
    }
    // Row 5 is stored as a path relative to its Parquet file (bytes null), as datasets does for local files.
    fs.mkdirSync(path.join(hf, "images"), { recursive: true });
    fs.writeFileSync(path.join(hf, "images", "five.jpg"), rows[5].bytes);
    let at = 0;
    split.forEach((n, f) => {
      const part = rows.slice(at, at + n);
      const cells: ImageCell[] = part.map((r, j) => (at + j === 5 ? { bytes: null, path: "images/five.jpg" } : { bytes: r.bytes, path: `${at + j}.png` }));
      writeParquet(
        files[f],
        [
          { name: "image", kind: "image", values: cells },
          { name: "text", kind: "string", values: part.map((r) => r.caption) },
          { name: "label", kind: "int64", values: part.map((r) => r.label) },
          { name: "gender", kind: "string", values: part.map((r) => r.group) },
        ],
        { rowGroupSize: 2, codec: f === 0 ? "SNAPPY" : "GZIP", keyValue: { huggingface: HF_META } },
      );
      at += n;
    });
  });

  const keyOf = (i: number) => (i < split[0] ? `${files[0]}#${i}` : `${files[1]}#${i - split[0]}`);

  function check(items: DataItem[], indices: number[], key = keyOf): void {
    assert.equal(items.length, indices.length);
    items.forEach((it, j) => {
      const i = indices[j];
      const r = rows[i];
      assert.equal(it.index, i);
      assert.equal(it.key, key(i));
      assert.deepEqual(it.captions, [r.caption]);
      assert.equal(it.label, r.label);
      assert.deepEqual(it.groups, { gender: r.group });
      assert.deepEqual(it.image.kind === "encoded" ? Buffer.from(it.image.bytes) : null, Buffer.from(r.bytes));
    });
  }

  it("reads a Hugging Face folder of Parquet files: image structs, text, ClassLabel names from the metadata, groups", async () => {
    const ds = await openDataset(`parquet:${hf}`, { groupKeys: ["gender"] });
    assert.equal(ds.name, "hf_ds");
    assert.equal(ds.size, 7);
    assert.deepEqual(ds.classNames, CLASSES);
    assert.equal(ds.hasCaptions, true);
    assert.equal(ds.hasLabels, true);
    assert.deepEqual(ds.groupKeys, ["gender"]);
    assert.ok(ds.captioner);
    const items = await collect(ds);
    check(items, [0, 1, 2, 3, 4, 5, 6]);
    // Random access, in any order, gives the same items.
    for (const i of [6, 0, 5, 2, 3]) assert.deepEqual(await ds.get!(i), items[i]);
  });

  it("selects files by a pattern in the last path component, or reads one file", async () => {
    const ds = await openDataset(`parquet:${path.join(hf, "train-*-of-00002.parquet")}`, { groupKeys: ["gender"] });
    check(await collect(ds), [0, 1, 2, 3, 4, 5, 6]);
    const one = await openDataset(`parquet:${files[1]}`, { groupKeys: ["gender"] });
    assert.equal(one.name, "train-00001-of-00002");
    const items = await collect(one);
    assert.deepEqual(items.map((i) => [i.index, i.key, i.label, i.captions[0]]), [4, 5, 6].map((i, j) => [j, `${files[1]}#${j}`, rows[i].label, rows[i].caption]));
    assert.deepEqual(items.map((i) => i.image.kind === "encoded" && Buffer.from(i.image.bytes)), [4, 5, 6].map((i) => Buffer.from(rows[i].bytes)));
  });

  it("shards cover every row once and concatenate back by shardOrder; limit counts after sharding", async () => {
    const ds = await openDataset(`parquet:${hf}`, { groupKeys: ["gender"] });
    for (const count of [2, 3, 8]) {
      const all: DataItem[] = [];
      for (let s = 0; s < count; s++) {
        const part = await collect(ds, { shard: { index: s, count } });
        check(part, [0, 1, 2, 3, 4, 5, 6].filter((i) => i % count === s));
        all.push(...part);
      }
      assert.deepEqual(all.map((i) => i.index), Array.from(shardOrder(7, count)));
    }
    check(await collect(ds, { limit: 3 }), [0, 1, 2]);
    check(await collect(ds, { limit: 2, shard: { index: 2, count: 3 } }), [2, 5]);
  });

  it("plain binary images, a caption column named caption, string labels as sorted unique classes", async () => {
    const file = path.join(dir, "plain.parquet");
    writeParquet(file, [
      { name: "img", kind: "binary", values: rows.slice(0, 3).map((r) => r.bytes) },
      { name: "caption", kind: "string", values: rows.slice(0, 3).map((r) => r.caption) },
      { name: "label", kind: "string", values: ["zebra", "ant", "zebra"] },
    ]);
    await rejectsOneLine(() => openDataset(`parquet:${file}`), new RegExp(`^${lit(file)}: has no column "image" \\(the images, --image-key\\); columns found: "img", "caption", "label"$`));
    const ds = await openDataset(`parquet:${file}`, { imageKey: "img" });
    assert.deepEqual(ds.classNames, ["ant", "zebra"]);
    const items = await collect(ds);
    assert.deepEqual(items.map((i) => [i.key, i.label, i.captions]), [
      [`${file}#0`, 1, [rows[0].caption]],
      [`${file}#1`, 0, [rows[1].caption]],
      [`${file}#2`, 1, [rows[2].caption]],
    ]);
    assert.deepEqual(items.map((i) => i.image.kind === "encoded" && Buffer.from(i.image.bytes)), rows.slice(0, 3).map((r) => Buffer.from(r.bytes)));
  });

  it("finds the image column by its Hugging Face Image feature; integer labels without names are 0..max", async () => {
    const file = path.join(dir, "cifar_like.parquet");
    writeParquet(
      file,
      [
        { name: "img", kind: "image", values: rows.slice(0, 2).map((r) => ({ bytes: r.bytes, path: null })) },
        { name: "label", kind: "int32", values: [3, 1] },
      ],
      { keyValue: { huggingface: JSON.stringify({ info: { features: { img: { _type: "Image" }, label: { dtype: "int32", _type: "Value" } } } }) } },
    );
    const ds = await openDataset(`parquet:${file}`);
    assert.equal(ds.hasCaptions, false);
    assert.deepEqual(ds.classNames, ["0", "1", "2", "3"]);
    assert.deepEqual((await collect(ds)).map((i) => [i.label, i.captions]), [[3, []], [1, []]]);
  });

  it("a row with no image bytes and no path is an error naming file#row; skipped under skipBadImages", async () => {
    const file = path.join(dir, "bad_images.parquet");
    writeParquet(
      file,
      [
        { name: "image", kind: "image", values: [{ bytes: rows[0].bytes, path: null }, { bytes: null, path: null }, null, { bytes: null, path: "missing.png" }, { bytes: new Uint8Array(0), path: null }, { bytes: rows[1].bytes, path: null }] },
        { name: "text", kind: "string", values: ["ok", "neither", "null struct", "missing file", "empty bytes", "ok too"] },
      ],
      { rowGroupSize: 4 },
    );
    const ds = await openDataset(`parquet:${file}`);
    await rejectsOneLine(() => collect(ds), new RegExp(`^${lit(file)}#1: image column "image" has no bytes and no path$`));
    const { items, skipped } = await collectSkipping(ds);
    assert.deepEqual(items.map((i) => i.key), [`${file}#0`, `${file}#5`]);
    assert.deepEqual(skipped, [
      { key: `${file}#1`, reason: 'image column "image" has no bytes and no path' },
      { key: `${file}#2`, reason: 'image column "image" has no bytes and no path' },
      { key: `${file}#3`, reason: `image file not found: ${path.join(dir, "missing.png")} (column "image" has no bytes, only this path)` },
      { key: `${file}#4`, reason: 'image column "image" holds empty bytes' },
    ]);
  });

  it("reads by row group: a damaged row group fails its own rows only, naming the file and the group", async () => {
    const file = path.join(dir, "damaged.parquet");
    writeParquet(
      file,
      [
        { name: "image", kind: "binary", values: rows.slice(0, 4).map((r) => r.bytes) },
        { name: "text", kind: "string", values: captions.slice(0, 4) },
      ],
      { rowGroupSize: 2, codec: "GZIP" },
    );
    const bytes = fs.readFileSync(file);
    const meta = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const chunk = meta.row_groups[1].columns[0].meta_data!;
    const at = Number(chunk.data_page_offset) + Number(chunk.total_compressed_size) - 12; // inside the gzip body of group 1
    for (let k = 0; k < 6; k++) bytes[at + k] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const ds = await openDataset(`parquet:${file}`);
    assert.equal((await ds.get!(1)).key, `${file}#1`);
    await rejectsOneLine(() => ds.get!(2), new RegExp(`^${lit(file)}: row group 1 \\(rows 2\\.\\.3\\) cannot be read: `));
    await rejectsOneLine(() => collectSkipping(ds), /row group 1 \(rows 2\.\.3\) cannot be read/);
  });

  it("errors are one line: missing columns, not Parquet, nothing to read, class names", async () => {
    await rejectsOneLine(() => openDataset(`parquet:${hf}`, { captionKey: "sentence" }), new RegExp(`^${lit(files[0])}: has no column "sentence" \\(the captions, --caption-key\\); columns found: "image", "text", "label", "gender"$`));
    await rejectsOneLine(() => openDataset(`parquet:${hf}`, { groupKeys: ["age"] }), /has no column "age" \(a group column, --group-keys\)/);
    await rejectsOneLine(() => openDataset(`parquet:${hf}`, { labelKey: "fine_label" }), /has no column "fine_label" \(the labels, --label-key\)/);
    const noText = path.join(dir, "no_text.parquet");
    writeParquet(noText, [{ name: "image", kind: "binary", values: [rows[0].bytes] }]);
    await rejectsOneLine(() => openDataset(`parquet:${noText}`), /has no caption column \("text" or "caption", --caption-key\) and no label column \("label", --label-key\); columns found: "image"$/);
    const notParquet = path.join(dir, "text.parquet");
    fs.writeFileSync(notParquet, "just some text, long enough to hold a footer\n");
    await rejectsOneLine(() => openDataset(`parquet:${notParquet}`), new RegExp(`^${lit(notParquet)}: is not a readable Parquet file \\(`));
    const empty = path.join(dir, "empty_dir");
    fs.mkdirSync(empty);
    await rejectsOneLine(() => openDataset(`parquet:${empty}`), new RegExp(`^${lit(empty)}: folder holds no \\.parquet files$`));
    await rejectsOneLine(() => openDataset(`parquet:${path.join(hf, "test-*.parquet")}`), /test-\*\.parquet: no file matches this pattern$/);
    await rejectsOneLine(() => openDataset(`parquet:${path.join(dir, "absent.parquet")}`), /absent\.parquet: file not found$/);
    const two = path.join(dir, "two.txt");
    fs.writeFileSync(two, "plane\nbird\n");
    await rejectsOneLine(() => openDataset(`parquet:${hf}`, { classnamesFile: two }), new RegExp(`^${lit(two)}: has 2 class names but the data has 3 classes in the ClassLabel of column "label"`));
    const three = path.join(dir, "three.txt");
    fs.writeFileSync(three, "plane\nsparrow\nkitty\n");
    assert.deepEqual((await openDataset(`parquet:${hf}`, { classnamesFile: three })).classNames, ["plane", "sparrow", "kitty"]);
    const outOfRange = path.join(dir, "range.parquet");
    writeParquet(
      outOfRange,
      [
        { name: "image", kind: "binary", values: [rows[0].bytes, rows[1].bytes] },
        { name: "label", kind: "int64", values: [1, 5] },
      ],
      { keyValue: { huggingface: HF_META } },
    );
    const ds = await openDataset(`parquet:${outOfRange}`);
    await rejectsOneLine(() => collect(ds), new RegExp(`^${lit(outOfRange)}#1: label 5 in column "label" is not a class index in \\[0, 3\\)$`));
  });

  describe("arrow", () => {
    function arrowTable(n: number, metadata: Map<string, string>): Table {
      const imgType = new Struct([new Field("bytes", new Binary(), true), new Field("path", new Utf8(), true)]);
      const part = rows.slice(0, n);
      const t = new Table({
        image: vectorFromArray(part.map((r) => ({ bytes: r.bytes, path: null })), imgType),
        text: vectorFromArray(part.map((r) => r.caption), new Utf8()),
        label: vectorFromArray(part.map((r) => BigInt(r.label)), new Int64()),
        gender: vectorFromArray(part.map((r) => r.group), new Dictionary(new Utf8(), new Int32())),
        alts: vectorFromArray(part.map((r) => [r.caption, `${r.caption} (alt)`]), new List(new Field("item", new Utf8(), true))),
      });
      // Two record batches: rows 0..2 and 3..n-1.
      const batches: RecordBatch[] = [...t.slice(0, 3).batches, ...t.slice(3).batches];
      return new Table(new Schema(t.schema.fields, metadata), batches);
    }

    for (const format of ["file", "stream"] as const) {
      it(`reads an Arrow IPC ${format}: structs, ClassLabel names, record batches as row groups, lists of captions`, async () => {
        const file = path.join(dir, `train.${format}.arrow`);
        fs.writeFileSync(file, tableToIPC(arrowTable(7, new Map([["huggingface", HF_META]])), format));
        const ds = await openDataset(`arrow:${file}`, { groupKeys: ["gender"] });
        assert.equal(ds.size, 7);
        assert.deepEqual(ds.classNames, CLASSES);
        const items = await collect(ds);
        check(items, [0, 1, 2, 3, 4, 5, 6], (i) => `${file}#${i}`);
        assert.deepEqual(await ds.get!(4), items[4]);
        const halves = [...(await collect(ds, { shard: { index: 0, count: 2 } })), ...(await collect(ds, { shard: { index: 1, count: 2 } }))];
        assert.deepEqual(halves.map((i) => i.index), Array.from(shardOrder(7, 2)));
        const alts = await openDataset(`arrow:${file}`, { captionKey: "alts" });
        assert.deepEqual((await alts.get!(1)).captions, [rows[1].caption, `${rows[1].caption} (alt)`]);
      });
    }

    it("rejects a file that is not Arrow, a truncated one and a missing one", async () => {
      const bad = path.join(dir, "bad.arrow");
      fs.writeFileSync(bad, "not arrow at all");
      await rejectsOneLine(() => openDataset(`arrow:${bad}`), new RegExp(`^${lit(bad)}: is not an Arrow IPC file or stream`));
      const whole = tableToIPC(arrowTable(7, new Map()), "stream");
      for (const format of ["stream", "file"] as const) {
        const cut = path.join(dir, `cut.${format}.arrow`);
        const bytes = format === "stream" ? whole : tableToIPC(arrowTable(7, new Map()), "file");
        fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
        await rejectsOneLine(() => openDataset(`arrow:${cut}`), new RegExp(`^${lit(cut)}: is not an Arrow IPC file or stream \\(.*truncated\\?\\)$`));
      }
      await rejectsOneLine(() => openDataset(`arrow:${path.join(dir, "nope.arrow")}`), /nope\.arrow: Arrow file not found$/);
    });
  });
});

