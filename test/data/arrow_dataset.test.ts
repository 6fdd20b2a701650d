/** Arrow export/import of splits and embeddings (src/data/arrow_dataset.ts). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { exportEmbeddingsArrow, exportSplitArrow, importEmbeddingsArrow, importSplitArrow } from "../../src/data/arrow_dataset";
import { Batcher } from "../../src/data/batcher";
import { CaptionSet } from "../../src/data/captions";
import { makeTable, readArrowFile, readUint8VectorColumn, vectorColumn, writeArrowFile } from "../../src/io/arrow";
import { Random } from "../../src/util/random";
import { realSplit, syntheticImages, tmpDir } from "./util";

const dir = tmpDir();
const data = syntheticImages(37, 3);

describe("split as Arrow", () => {
  it("round-trips uint8 and float32 pixels, labels, captions and metadata", () => {
    const rng = new Random(1);
    const set = CaptionSet.load();
    const captions = Array.from(data.labels, (l) => set.captionForTraining(l, null, rng));
    for (const pixelFormat of ["uint8", "float32"] as const) {
      const file = path.join(dir, `split-${pixelFormat}.arrow`);
      exportSplitArrow(file, data, { captions, pixelFormat, split: "train" });
      const back = importSplitArrow(file);
      assert.deepEqual(back, { ...data, captions, split: "train" });
      const table = readArrowFile(file);
      assert.equal(String(table.getChild("pixels")!.type), `FixedSizeList[784]<${pixelFormat === "uint8" ? "Uint8" : "Float32"}>`);
      assert.deepEqual(table.schema.fields.map((f) => f.name), ["pixels", "label", "caption"]);
    }
    const sizes = ["uint8", "float32"].map((f) => fs.statSync(path.join(dir, `split-${f}.arrow`)).size);
    assert.ok(sizes[0] * 3 < sizes[1], `uint8 ${sizes[0]} bytes, float32 ${sizes[1]}`);
  });

  it("defaults captions to class names and round-trips real test images", () => {
    const test = realSplit("test");
    const part = { ...test, count: 500, images: test.images.slice(0, 500 * 784), labels: test.labels.slice(0, 500) };
    const file = path.join(dir, "real.arrow");
    exportSplitArrow(file, part);
    const back = importSplitArrow(file);
    assert.deepEqual(back.images, part.images);
    assert.deepEqual(back.labels, part.labels);
    assert.deepEqual(back.captions, Array.from(part.labels, (l) => part.classNames[l]));
    assert.equal(back.split, undefined);
    // An imported split feeds the batcher like a loaded one.
    const b = new Batcher(back, { batchSize: 100, seed: 1 });
    assert.deepEqual(b.batchAt(0, 0).pixels, new Batcher(part, { batchSize: 100, seed: 1 }).batchAt(0, 0).pixels);
  });

  it("rejects files that do not match, naming the file and the part", () => {
    const file = path.join(dir, "bad.arrow");
    writeArrowFile(file, makeTable({ pixels: vectorColumn(new Uint8Array(8), 4), label: Int32Array.from([0, 1]) }));
    assert.throws(() => importSplitArrow(file), (e: Error) => e.message === `${file}: metadata height: expected a positive integer, got undefined`);
    const good = path.join(dir, "split-uint8.arrow");
    const table = readArrowFile(good);
    assert.equal(readUint8VectorColumn(table, "pixels").values.length, 37 * 784);
    assert.throws(() => exportSplitArrow(file, data, { captions: ["x"] }), /captions must be 37 strings/);
    assert.throws(() => exportSplitArrow(file, data, { pixelFormat: "f16" as never }), /pixelFormat must be "uint8" or "float32"/);
    assert.throws(() => importSplitArrow(path.join(dir, "missing.arrow")), /missing\.arrow: cannot read/);
  });
});

describe("embeddings as Arrow", () => {
  it("round-trips id, label, kind and float32 vectors", () => {
    const dim = 24;
    const n = 13;
    const rows = {
      ids: Int32Array.from({ length: n }, (_, i) => i * 7),
      labels: Int32Array.from({ length: n }, (_, i) => (i % 11) - 1),
      kinds: Array.from({ length: n }, (_, i) => (i < 10 ? "image" : "text")),
      embeddings: new Random(4).fillNormal(new Float32Array(n * dim)),
      dim,
    };
    const file = path.join(dir, "emb.arrow");
    exportEmbeddingsArrow(file, rows);
    assert.deepEqual(importEmbeddingsArrow(file), rows);
    assert.throws(() => exportEmbeddingsArrow(file, { ...rows, kinds: rows.kinds.slice(1) }), /kinds has 12 entries, the embeddings 13 rows/);
    assert.throws(() => importEmbeddingsArrow(path.join(dir, "split-uint8.arrow")), /split-uint8\.arrow: column id: missing/);
  });
});
