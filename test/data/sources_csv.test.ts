/** The CSV/TSV parser (src/data/csv_parse.ts) and the csv: source (src/data/sources/csv.ts). */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { CsvParser, parseCsv, readCsvRecords } from "../../src/data/csv_parse";
import { DataError, shardOrder, type DataItem } from "../../src/data/dataset";
import { openDataset } from "../../src/data/open";
import { collect, collectSkipping, lit, makeImage, rejectsOneLine } from "../helpers/data_sources";
import { assertThrowsOneLine } from "../helpers/errors";
import { tmpDir } from "./util";

const dir = tmpDir();

/** A CSV field as a writer quotes it (RFC 4180). */
function q(s: string, sep = ","): string {
  return /["\r\n]/.test(s) || s.includes(sep) ? `"${s.replace(/"/g, '""')}"` : s;
}

describe("parseCsv", () => {
  it("reads quoted separators, doubled quotes, line breaks in quotes, CRLF, a BOM, and skips blank lines", () => {
    const text = '\uFEFFa,b,c\r\n1,"x, y","say ""hi"""\r\n\r\n2,"two\nlines","crlf\r\ninside"\n3,,""\n4,ab"c,ü\r5,last,no newline';
    const recs = parseCsv(text, ",");
    assert.deepEqual(recs, [
      { fields: ["a", "b", "c"], line: 1 },
      { fields: ["1", "x, y", 'say "hi"'], line: 2 },
      { fields: ["2", "two\nlines", "crlf\r\ninside"], line: 4 },
      { fields: ["3", "", ""], line: 7 },
      { fields: ["4", 'ab"c', "ü"], line: 8 },
      { fields: ["5", "last", "no newline"], line: 9 },
    ]);
  });

  it("gives the same records whatever the chunking", () => {
    const text = 'k\tv\n"a\r\nb"\t"q""\tq"\r\n\r\nc\t"\r"\nd\te\r\n';
    const whole = parseCsv(text, "\t");
    for (const size of [1, 2, 3, 5]) {
      const p = new CsvParser("\t", "t");
      const recs = [];
      for (let i = 0; i < text.length; i += size) recs.push(...p.push(text.slice(i, i + size)));
      recs.push(...p.end());
      assert.deepEqual(recs, whole, `chunks of ${size}`);
    }
    assert.deepEqual(whole.map((r) => r.line), [1, 2, 5, 7]);
    assert.deepEqual(whole[1].fields, ["a\r\nb", 'q"\tq']);
    assert.deepEqual(whole[2].fields, ["c", "\r"]);
  });

  it("keeps an empty quoted field as a record; an unclosed quote or text after a closing quote names the line", () => {
    assert.deepEqual(parseCsv('""\n', ","), [{ fields: [""], line: 1 }]);
    assertThrowsOneLine(() => parseCsv('a,b\n1,"open\n\nstill open', ",", "f.csv"), /^f\.csv:2: a quoted field opened on this line is never closed$/);
    assertThrowsOneLine(() => parseCsv('a,b\n\n1,"x"y\n', ",", "f.csv"), /^f\.csv:3: unexpected "y" after the closing quote of a field/);
    assert.throws(() => new CsvParser('"', "f"), /separator must be one character/);
  });

  it("streams a file in small chunks, multi-byte characters split across them", async () => {
    const file = path.join(dir, "stream.tsv");
    const text = "x\ty\n" + Array.from({ length: 50 }, (_, i) => `${i}\t"ünïcødé ✓ ${i}\n2nd line"`).join("\n") + "\n";
    fs.writeFileSync(file, "\uFEFF" + text);
    const recs = [];
    for await (const r of readCsvRecords(file, "\t", 7)) recs.push(r);
    assert.deepEqual(recs, parseCsv(text, "\t"));
    assert.equal(recs.length, 51);
    assert.equal(recs[50].line, 100);
  });

  it("rejects bytes that are not UTF-8, naming the file", async () => {
    const file = path.join(dir, "latin1.csv");
    fs.writeFileSync(file, Buffer.from([0x61, 0x2c, 0x62, 0x0a, 0xe9, 0x2c, 0x78, 0x0a]));
    await rejectsOneLine(async () => {
      for await (const _ of readCsvRecords(file, ",")) void _;
    }, new RegExp(`^${lit(file)}: is not UTF-8 text`));
  });
});

describe("csv source", () => {
  const imgDir = path.join(dir, "pairs", "img");
  const rowsSpec = [
    { caption: 'a red square, "bright" and bold', label: "square", group: "f", format: "png" as const },
    { caption: "deux lignes\npour une légende", label: "circle", group: "m", format: "jpeg" as const },
    { caption: "日本語のキャプション", label: "square", group: "f", format: "png" as const },
    { caption: "tab\tinside, comma too", label: "triangle", group: "m", format: "jpeg" as const },
    { caption: "plain", label: "circle", group: "f", format: "png" as const },
  ];
  const images: Uint8Array[] = [];
  let csv: string;
  let tsv: string;
  const csvLines = [2, 3, 5, 6, 7]; // row 1's caption spans two lines

  before(async () => {
    fs.mkdirSync(imgDir, { recursive: true });
    for (let i = 0; i < rowsSpec.length; i++) images.push(await makeImage(rowsSpec[i].format, 12 + i, 10 + i, 100 + i));
    const names = rowsSpec.map((r, i) => `img/${i}.${r.format === "png" ? "png" : "jpg"}`);
    names.forEach((n, i) => fs.writeFileSync(path.join(dir, "pairs", n), images[i]));
    // Row 4 uses an absolute path.
    names[4] = path.join(dir, "pairs", names[4]);
    csv = path.join(dir, "pairs", "train.csv");
    const lines = ["filepath,title,label,gender", ...rowsSpec.map((r, i) => [names[i], r.caption, r.label, r.group].map((f) => q(f)).join(","))];
    fs.writeFileSync(csv, "\uFEFF" + lines.join("\r\n") + "\r\n");
    tsv = path.join(dir, "pairs", "train.tsv");
    const tlines = ["title\tfilepath\tlabel", ...rowsSpec.map((r, i) => [r.caption, names[i], String(i % 3)].map((f) => q(f, "\t")).join("\t"))];
    fs.writeFileSync(tsv, tlines.join("\n") + "\n");
  });

  function check(items: DataItem[], indices: number[], file = csv, lines = csvLines): void {
    assert.equal(items.length, indices.length);
    items.forEach((it, j) => {
      const i = indices[j];
      assert.equal(it.index, i);
      assert.equal(it.key, `${file}:${lines[i]}`);
      assert.deepEqual(it.captions, [rowsSpec[i].caption]);
      assert.deepEqual(it.image.kind === "encoded" ? Buffer.from(it.image.bytes) : null, Buffer.from(images[i]));
    });
  }

  it("reads open_clip's columns, labels by name (sorted unique classes), groups; keys are file:line", async () => {
    const ds = await openDataset(`csv:${csv}`, { labelKey: "label", groupKeys: ["gender"] });
    assert.equal(ds.name, "train");
    assert.equal(ds.size, 5);
    assert.equal(ds.hasCaptions, true);
    assert.equal(ds.hasLabels, true);
    assert.deepEqual(ds.classNames, ["circle", "square", "triangle"]);
    assert.deepEqual(ds.groupKeys, ["gender"]);
    const items = await collect(ds);
    check(items, [0, 1, 2, 3, 4]);
    assert.deepEqual(items.map((i) => i.label), [1, 0, 1, 2, 0]);
    assert.deepEqual(items.map((i) => i.groups), rowsSpec.map((r) => ({ gender: r.group })));
    const again = await ds.get!(3);
    assert.deepEqual(again, items[3]);
  });

  it("reads a .tsv with the default tab separator, labels as class indices", async () => {
    const ds = await openDataset(`csv:${tsv}`, { labelKey: "label" });
    check(await collect(ds), [0, 1, 2, 3, 4], tsv, [2, 3, 5, 6, 7]);
    assert.deepEqual(ds.classNames, ["0", "1", "2"]);
    assert.deepEqual((await collect(ds)).map((i) => i.label), [0, 1, 2, 0, 1]);
    const plain = await openDataset(`csv:${tsv}`);
    assert.equal(plain.hasLabels, false);
    assert.equal(plain.classNames, undefined);
    assert.equal((await plain.get!(0)).label, undefined);
  });

  it("takes a separator and column names by option", async () => {
    const file = path.join(dir, "pairs", "semi.csv");
    fs.writeFileSync(file, "img;caption\nimg/0.png;first; with semicolon? no: quoted\n".replace("first; with semicolon? no: quoted", '"first; quoted"'));
    const ds = await openDataset(`csv:${file}`, { separator: ";", imageKey: "img", captionKey: "caption" });
    const [item] = await collect(ds);
    assert.deepEqual(item.captions, ["first; quoted"]);
    assert.deepEqual(item.image.kind === "encoded" && Buffer.from(item.image.bytes), Buffer.from(images[0]));
  });

  it("class names from a classnames file: indices need enough names, names must be listed", async () => {
    const names = path.join(dir, "names3.txt");
    fs.writeFileSync(names, "zero\none\ntwo\n");
    const ds = await openDataset(`csv:${tsv}`, { labelKey: "label", classnamesFile: names });
    assert.deepEqual(ds.classNames, ["zero", "one", "two"]);
    const two = path.join(dir, "names2.txt");
    fs.writeFileSync(two, "zero\none\n");
    await rejectsOneLine(() => openDataset(`csv:${tsv}`, { labelKey: "label", classnamesFile: two }), new RegExp(`^${lit(two)}: has 2 class names but ${lit(tsv)}:5 has label 2 in column "label"; expected at least 3 names`));
    const shapes = path.join(dir, "shapes.txt");
    fs.writeFileSync(shapes, "triangle\nsquare\n");
    await rejectsOneLine(() => openDataset(`csv:${csv}`, { labelKey: "label", classnamesFile: shapes }), new RegExp(`^${lit(csv)}:3: label "circle" in column "label" is not among the 2 class names of ${lit(shapes)} \\("triangle", "square"\\)$`));
    fs.writeFileSync(shapes, "triangle\nsquare\ncircle\n");
    const named = await openDataset(`csv:${csv}`, { labelKey: "label", classnamesFile: shapes });
    assert.deepEqual((await collect(named)).map((i) => i.label), [1, 2, 1, 0, 2]);
  });

  it("shards cover every row once and concatenate back by shardOrder; limit counts after sharding", async () => {
    const ds = await openDataset(`csv:${csv}`);
    for (const count of [2, 3, 7]) {
      const all: DataItem[] = [];
      for (let s = 0; s < count; s++) {
        const part = await collect(ds, { shard: { index: s, count } });
        check(part, [0, 1, 2, 3, 4].filter((i) => i % count === s));
        all.push(...part);
      }
      assert.deepEqual(all.map((i) => i.index), Array.from(shardOrder(5, count)));
    }
    check(await collect(ds, { limit: 2 }), [0, 1]);
    check(await collect(ds, { limit: 1, shard: { index: 1, count: 2 } }), [1]);
  });

  it("an unreadable image is an error naming file:line and the image; skipped under skipBadImages", async () => {
    const file = path.join(dir, "pairs", "bad.csv");
    fs.writeFileSync(path.join(dir, "pairs", "img", "empty.png"), new Uint8Array(0));
    fs.writeFileSync(file, ["filepath,title", "img/0.png,ok", "img/missing.png,gone", "img/empty.png,empty", ",no path", "img/1.jpg,ok too"].join("\n"));
    const ds = await openDataset(`csv:${file}`);
    await rejectsOneLine(() => collect(ds), new RegExp(`^${lit(file)}:3: image file not found: ${lit(path.join(dir, "pairs", "img", "missing.png"))}$`));
    await rejectsOneLine(() => ds.get!(2), new RegExp(`^${lit(file)}:4: image file is empty: `));
    const { items, skipped } = await collectSkipping(ds);
    assert.deepEqual(items.map((i) => i.key), [`${file}:2`, `${file}:6`]);
    assert.deepEqual(skipped.map((s) => [s.key, s.reason.split(":")[0]]), [
      [`${file}:3`, "image file not found"],
      [`${file}:4`, "image file is empty"],
      [`${file}:5`, "empty image path"],
    ]);
  });

  it("errors are one line: missing column (columns found listed), wrong field count, empty file, no rows", async () => {
    await rejectsOneLine(() => openDataset(`csv:${csv}`, { captionKey: "caption" }), new RegExp(`^${lit(csv)}: has no column "caption" \\(the captions, --csv-caption-key\\); columns found \\(separator: comma\\): "filepath", "title", "label", "gender"$`));
    await rejectsOneLine(() => openDataset(`csv:${csv}`, { labelKey: "class" }), /has no column "class" \(the labels, --csv-label-key\)/);
    await rejectsOneLine(() => openDataset(`csv:${csv}`, { groupKeys: ["age"] }), /has no column "age" \(a group column, --csv-group-keys\)/);
    // A comma file read as tab-separated: one column, and the message shows it.
    await rejectsOneLine(() => openDataset(`csv:${csv}`, { separator: "\t" }), /has no column "filepath" \(the image paths, --csv-img-key\); columns found \(separator: tab\): "filepath,title,label,gender"$/);
    const ragged = path.join(dir, "ragged.csv");
    fs.writeFileSync(ragged, 'filepath,title\na.png,"two\nlines"\nb.png,x,extra\n');
    await rejectsOneLine(() => openDataset(`csv:${ragged}`), new RegExp(`^${lit(ragged)}:4: has 3 fields, expected 2 as in the header \\(separator: comma\\)$`));
    const empty = path.join(dir, "empty.csv");
    fs.writeFileSync(empty, "\n\n");
    await rejectsOneLine(() => openDataset(`csv:${empty}`), new RegExp(`^${lit(empty)}: is empty; expected a header line`));
    const headerOnly = path.join(dir, "header.csv");
    fs.writeFileSync(headerOnly, "filepath,title\n");
    await rejectsOneLine(() => openDataset(`csv:${headerOnly}`), /header\.csv: has a header but no rows$/);
    const twice = path.join(dir, "twice.csv");
    fs.writeFileSync(twice, "filepath,title,title\na,b,c\n");
    await rejectsOneLine(() => openDataset(`csv:${twice}`), /twice\.csv:1: column "title" appears twice in the header$/);
    const unclosed = path.join(dir, "unclosed.csv");
    fs.writeFileSync(unclosed, 'filepath,title\na.png,"never closed\nb.png,x\n');
    await rejectsOneLine(() => openDataset(`csv:${unclosed}`), /unclosed\.csv:2: a quoted field opened on this line is never closed$/);
    await rejectsOneLine(() => openDataset(`csv:${path.join(dir, "nope.csv")}`), /nope\.csv: CSV file not found$/);
    const err = await openDataset(`csv:${ragged}`).catch((e) => e);
    assert.ok(err instanceof DataError);
  });

  it("needs no caption column when labels are given", async () => {
    const file = path.join(dir, "pairs", "labels_only.csv");
    fs.writeFileSync(file, "filepath,label\nimg/0.png,cat\nimg/1.jpg,dog\n");
    const ds = await openDataset(`csv:${file}`, { labelKey: "label" });
    assert.equal(ds.hasCaptions, false);
    assert.ok(ds.captioner);
    const items = await collect(ds);
    assert.deepEqual(items.map((i) => [i.label, i.captions]), [[0, []], [1, []]]);
    await rejectsOneLine(() => openDataset(`csv:${file}`), /has no column "title" \(the captions, --csv-caption-key\)/);
  });
});
