/**
 * WebDataset shards (src/data/sources/webdataset.ts), the tar reader (src/io/tar.ts) and brace
 * expansion (src/data/braces.ts). Shards are written by GNU tar (Debian's essential `tar`) in
 * its gnu, pax (what Python's tarfile and webdataset's TarWriter write) and ustar formats.
 */
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { expandBraces, expandShardList } from "../../src/data/braces";
import { shardOrder, type DataItem } from "../../src/data/dataset";
import { openDataset } from "../../src/data/open";
import { basePlusExt, openWebDataset } from "../../src/data/sources/webdataset";
import { readTar } from "../../src/io/tar";
import { collect, collectSkipping, lit, makeImage, rejectsOneLine } from "../helpers/data_sources";
import { tmpDir } from "./util";

const dir = tmpDir();
type Members = [string, Uint8Array | string][];
let stageN = 0;

/** Writes `members` (in order) into a tar with GNU tar in `format`. */
function writeTar(file: string, members: Members, format: "gnu" | "pax" | "ustar" = "pax"): string {
  const stage = path.join(dir, `stage${stageN++}`);
  for (const [name, data] of members) {
    fs.mkdirSync(path.dirname(path.join(stage, name)), { recursive: true });
    fs.writeFileSync(path.join(stage, name), data);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync("tar", [`--format=${format}`, "-cf", file, "-C", stage, "--", ...members.map(([n]) => n)]);
  return file;
}

async function entries(file: string): Promise<[string, string, Buffer][]> {
  const out: [string, string, Buffer][] = [];
  for await (const e of readTar(file)) out.push([e.type, e.name, Buffer.from(await e.read())]);
  return out;
}

describe("expandBraces", () => {
  it("expands zero-padded ranges, lists, nesting and products in order", () => {
    assert.deepEqual(expandBraces("shards/{0000..0003}.tar"), ["shards/0000.tar", "shards/0001.tar", "shards/0002.tar", "shards/0003.tar"]);
    assert.deepEqual(expandBraces("{8..11}"), ["8", "9", "10", "11"]);
    assert.deepEqual(expandBraces("{01..3}"), ["01", "02", "03"]);
    assert.deepEqual(expandBraces("{a,b}-{1..2}"), ["a-1", "a-2", "b-1", "b-2"]);
    assert.deepEqual(expandBraces("x{a,b{1..3}}y"), ["xay", "xb1y", "xb2y", "xb3y"]);
    assert.deepEqual(expandBraces("{5..1..2}"), ["5", "3", "1"]);
    assert.deepEqual(expandBraces("{a..c}"), ["a", "b", "c"]);
    assert.deepEqual(expandBraces("plain.tar"), ["plain.tar"]);
    assert.deepEqual(expandBraces("{x}{1,2}"), ["{x}1", "{x}2"]);
    assert.deepEqual(expandBraces("\\{a,b\\}"), ["{a,b}"]);
    assert.deepEqual(expandShardList("a/{0..1}.tar::b.tar"), ["a/0.tar", "a/1.tar", "b.tar"]);
  });

  it("rejects unbalanced braces in one line naming the pattern", () => {
    assert.throws(() => expandBraces("s/{0..3.tar"), /"s\/\{0\.\.3\.tar".*not closed/);
    assert.throws(() => expandBraces("s/0..3}.tar"), /no matching "\{"/);
  });
});

describe("readTar", () => {
  const long = `${"d".repeat(60)}/${"e".repeat(70)}/${"f".repeat(120)}.txt`; // 253 bytes: GNU L / pax path
  const split = `${"d".repeat(60)}/${"e".repeat(70)}/short.txt`; // 140 bytes: ustar prefix + name
  const big = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) % 251);
  const members: Members = [
    ["a.txt", "hello"],
    ["ünï cødé.cls", "3"],
    ["empty.bin", new Uint8Array(0)],
    ["big.bin", big],
    [split, "split"],
  ];

  for (const format of ["gnu", "pax", "ustar"] as const) {
    it(`reads GNU tar's ${format} format: names (long, non-ASCII), sizes and data`, async () => {
      const ms: Members = format === "ustar" ? members : [...members, [long, "long name"]];
      const file = writeTar(path.join(dir, `fmt-${format}.tar`), ms, format);
      const got = await entries(file);
      assert.deepEqual(
        got.map(([t, n]) => [t, n]),
        ms.map(([n]) => ["file", n]),
      );
      got.forEach(([, , data], i) => assert.deepEqual(data, Buffer.from(ms[i][1])));
    });
  }

  it("reports directories as such and reads on", async () => {
    const stage = path.join(dir, "dirstage");
    fs.mkdirSync(path.join(stage, "sub"), { recursive: true });
    fs.writeFileSync(path.join(stage, "sub", "x.txt"), "x");
    const file = path.join(dir, "dirs.tar");
    execFileSync("tar", ["--format=pax", "-cf", file, "-C", stage, "sub"]);
    const got = await entries(file);
    assert.deepEqual(
      got.map(([t, n]) => [t, n]),
      [
        ["directory", "sub/"],
        ["file", "sub/x.txt"],
      ],
    );
  });

  it("names the file and the byte offset for a truncated archive", async () => {
    const file = writeTar(path.join(dir, "whole.tar"), [["a.bin", new Uint8Array(2000)], ["b.txt", "b"]], "gnu");
    const bytes = fs.readFileSync(file);
    const midData = path.join(dir, "cut-data.tar");
    fs.writeFileSync(midData, bytes.subarray(0, 1500));
    await rejectsOneLine(() => entries(midData), new RegExp(`^${lit(midData)}: truncated tar: member "a.bin" at byte 0 needs 2000 bytes`));
    const midHeader = path.join(dir, "cut-header.tar");
    fs.writeFileSync(midHeader, bytes.subarray(0, 2560 + 100));
    await rejectsOneLine(() => entries(midHeader), new RegExp(`^${lit(midHeader)}: truncated tar: the header at byte 2560 is cut short`));
  });

  it("rejects a damaged header and a file that is not a tar", async () => {
    const file = writeTar(path.join(dir, "ok.tar"), [["a.txt", "a"], ["b.txt", "b"]], "pax");
    const bytes = Buffer.from(fs.readFileSync(file));
    const damaged = path.join(dir, "damaged.tar");
    const offsets: number[] = [];
    for await (const e of readTar(file)) offsets.push(e.offset);
    const second = offsets[1];
    bytes[second + 10] ^= 0x55; // inside the second member's name
    fs.writeFileSync(damaged, bytes);
    await rejectsOneLine(() => entries(damaged), new RegExp(`^${lit(damaged)}: corrupt tar: the header at byte ${second} fails its checksum`));
    const notTar = path.join(dir, "not.tar");
    fs.writeFileSync(notTar, Buffer.from("this is a text file, not an archive\n".repeat(40)));
    await rejectsOneLine(() => entries(notTar), /not\.tar: corrupt tar: the header at byte 0 fails its checksum/);
    await rejectsOneLine(() => entries(path.join(dir, "absent.tar")), /absent\.tar: tar file not found/);
  });
});

describe("basePlusExt", () => {
  it("splits at the first dot of the base name, directory kept", () => {
    assert.deepEqual(basePlusExt("s0001.jpg"), ["s0001", "jpg"]);
    assert.deepEqual(basePlusExt("dir.v2/s0001.seg.png"), ["dir.v2/s0001", "seg.png"]);
    assert.deepEqual(basePlusExt("a/b/c.json"), ["a/b/c", "json"]);
    assert.equal(basePlusExt("README"), null);
    assert.equal(basePlusExt("dir.x/README"), null);
  });
});

describe("wds source", () => {
  // CLIP_benchmark's layout: ROOT/{classnames.txt, zeroshot_classification_templates.txt}, ROOT/test/{nshards.txt, 0.tar..2.tar}.
  const root = path.join(dir, "bench_ds");
  const test = path.join(root, "test");
  const classes = ["cat", "dog", "sea turtle"];
  const captions = ['a cat, sitting on "the" mat', "ein Hund über der Wiese", "第三 — tortue de mer"];
  const perShard = [4, 3, 3];
  const images: Uint8Array[] = [];
  const expected: { key: string; label: number; caption: string; group: string; bytes: Uint8Array }[] = [];

  before(async () => {
    fs.mkdirSync(test, { recursive: true });
    fs.writeFileSync(path.join(root, "classnames.txt"), classes.join("\n") + "\n");
    fs.writeFileSync(path.join(root, "zeroshot_classification_templates.txt"), "a photo of a {c}.\nan origami {c}.\n");
    fs.writeFileSync(path.join(test, "nshards.txt"), `${perShard.length}\n`);
    let n = 0;
    for (let s = 0; s < perShard.length; s++) {
      const members: Members = [];
      for (let j = 0; j < perShard[s]; j++, n++) {
        const key = `s${String(n).padStart(7, "0")}`;
        const format = n % 2 === 0 ? "jpeg" : "png";
        const img = await makeImage(format, 20 + n, 16 + (n % 3), n + 1);
        images.push(img);
        const label = n % 3;
        const caption = `${captions[label]} #${n}`;
        const group = n % 2 === 0 ? "indoor" : "outdoor";
        members.push([`${key}.${format === "jpeg" ? "jpg" : "png"}`, img], [`${key}.cls`, `${label}\n`], [`${key}.txt`, caption], [`${key}.json`, JSON.stringify({ scene: group, id: n })]);
        expected.push({ key: `${path.join(test, `${s}.tar`)}:${key}`, label, caption, group, bytes: img });
      }
      writeTar(path.join(test, `${s}.tar`), members, (["gnu", "pax", "ustar"] as const)[s]);
    }
  });

  function check(items: DataItem[], indices: number[]): void {
    assert.equal(items.length, indices.length);
    items.forEach((it, j) => {
      const e = expected[indices[j]];
      assert.equal(it.index, indices[j]);
      assert.equal(it.key, e.key);
      assert.equal(it.label, e.label);
      assert.deepEqual(it.captions, [e.caption]);
      assert.deepEqual(it.groups, { scene: e.group });
      assert.equal(it.image.kind, "encoded");
      assert.deepEqual(it.image.kind === "encoded" ? Buffer.from(it.image.bytes) : null, Buffer.from(e.bytes));
    });
  }

  it("reads every sample across shards with labels, captions, groups, class names and templates", async () => {
    const spec = `wds:${test}/{0..2}.tar`;
    const ds = await openDataset(spec, { groupKeys: ["scene"] });
    assert.equal(ds.spec, spec);
    assert.equal(ds.name, "bench_ds");
    assert.deepEqual(ds.classNames, classes);
    assert.deepEqual(ds.templates, ["a photo of a {}.", "an origami {}."]);
    assert.deepEqual(ds.groupKeys, ["scene"]);
    assert.equal(ds.hasLabels, true);
    assert.equal(ds.hasCaptions, true);
    assert.equal(ds.size, undefined);
    assert.equal(ds.get, undefined);
    assert.ok(ds.captioner);
    check(await collect(ds, {}), expected.map((_, i) => i));
  });

  it("opens the split folder through its nshards.txt", async () => {
    const ds = await openWebDataset(test, { groupKeys: ["scene"] }, `wds:${test}`);
    assert.deepEqual(ds.shards, [0, 1, 2].map((i) => path.join(test, `${i}.tar`)));
    check(await collect(ds), expected.map((_, i) => i));
  });

  it("shards by sample position across all shards; shards concatenate to the whole", async () => {
    const ds = await openDataset(`wds:${test}/{0..2}.tar`, { groupKeys: ["scene"] });
    const n = expected.length;
    for (const count of [1, 3, 4]) {
      const parts: DataItem[] = [];
      for (let s = 0; s < count; s++) {
        const part = await collect(ds, { shard: { index: s, count } });
        check(part, expected.map((_, i) => i).filter((i) => i % count === s));
        parts.push(...part);
      }
      const order = shardOrder(n, count);
      assert.deepEqual(
        parts.map((p) => p.index),
        Array.from(order),
      );
    }
  });

  it("stops after limit items (after sharding)", async () => {
    const ds = await openDataset(`wds:${test}/{0..2}.tar`, { groupKeys: ["scene"] });
    check(await collect(ds, { limit: 5 }), [0, 1, 2, 3, 4]);
    check(await collect(ds, { limit: 2, shard: { index: 1, count: 2 } }), [1, 3]);
    assert.deepEqual(await collect(ds, { limit: 0 }), []);
  });

  it("takes the first image extension present in imageKey order; captions from a json field; size from sizes.json", async () => {
    const d = path.join(dir, "multi");
    const png = await makeImage("png", 8, 8, 50);
    const jpg = await makeImage("jpeg", 8, 8, 51);
    writeTar(path.join(d, "a.tar"), [
      ["k1.png", png],
      ["k1.jpg", jpg],
      ["k1.seg.png", png],
      ["k1.json", JSON.stringify({ caption: "from json, \"quoted\"", n: 1 })],
      ["__meta__/info.json", "{}"],
      ["README", "no dot: ignored"],
      ["sub/k2.webp", jpg],
      ["sub/k2.json", JSON.stringify({ caption: ["one", "two"] })],
    ]);
    fs.writeFileSync(path.join(d, "sizes.json"), JSON.stringify({ "a.tar": 2 }));
    const ds = await openDataset(`wds:${d}/a.tar`, { captionKey: "caption" });
    assert.equal(ds.size, 2);
    assert.equal(ds.hasLabels, false);
    assert.equal(ds.classNames, undefined);
    const items = await collect(ds);
    assert.deepEqual(items.map((i) => i.key), [`${d}/a.tar:k1`, `${d}/a.tar:sub/k2`]);
    assert.deepEqual(items[0].image.kind === "encoded" && Buffer.from(items[0].image.bytes), Buffer.from(jpg));
    assert.deepEqual(items[0].captions, ['from json, "quoted"']);
    assert.deepEqual(items[1].captions, ["one", "two"]);
    const pngFirst = await openDataset(`wds:${d}/a.tar`, { imageKey: "png;jpg" });
    const [first] = await collect(pngFirst, { limit: 1 });
    assert.deepEqual(first.image.kind === "encoded" && Buffer.from(first.image.bytes), Buffer.from(png));
  });

  it("splits txt into one caption per line under CLIP_benchmark's retrieval type", async () => {
    const d = path.join(dir, "retrieval");
    const img = await makeImage("png", 6, 6, 9);
    writeTar(path.join(d, "test", "0.tar"), [
      ["s0.webp", img],
      ["s0.txt", "first caption, with a comma\nsecond \"quoted\" caption\n"],
    ]);
    fs.writeFileSync(path.join(d, "dataset_type.txt"), "retrieval\n");
    const ds = await openDataset(`wds:${d}/test/0.tar`);
    const [item] = await collect(ds);
    assert.deepEqual(item.captions, ["first caption, with a comma", 'second "quoted" caption']);
    assert.equal(ds.hasLabels, false);
  });

  it("a sample without an image is an error naming shard and key, skipped under skipBadImages", async () => {
    const d = path.join(dir, "noimage");
    const img = await makeImage("png", 6, 6, 3);
    const shard = writeTar(path.join(d, "0.tar"), [
      ["a.png", img],
      ["a.txt", "ok"],
      ["b.txt", "no image here"],
      ["c.png", new Uint8Array(0)],
      ["c.txt", "empty image"],
      ["d.png", img],
      ["d.txt", "ok too"],
    ]);
    const ds = await openDataset(`wds:${shard}`);
    await rejectsOneLine(() => collect(ds), new RegExp(`^${lit(shard)}:b: sample has no image \\(looked for jpg, png, jpeg, webp; members: b\\.txt\\)$`));
    const { items, skipped } = await collectSkipping(ds);
    assert.deepEqual(items.map((i) => [i.key, i.index]), [[`${shard}:a`, 0], [`${shard}:d`, 3]]);
    assert.deepEqual(skipped, [
      { key: `${shard}:b`, reason: "sample has no image (looked for jpg, png, jpeg, webp; members: b.txt)" },
      { key: `${shard}:c`, reason: "image member c.png is empty" },
    ]);
  });

  it("a bad cls is an error naming shard and key", async () => {
    const d = path.join(dir, "badcls");
    const img = await makeImage("png", 6, 6, 4);
    const shard = writeTar(path.join(d, "0.tar"), [
      ["a.png", img],
      ["a.cls", "1"],
      ["b.png", img],
      ["b.cls", "dog?"],
      ["c.png", img],
      ["c.cls", "7"],
    ]);
    const ds = await openDataset(`wds:${shard}`);
    await rejectsOneLine(() => collect(ds), new RegExp(`^${lit(shard)}:b: cls "dog\\?" is not a class index$`));
    fs.writeFileSync(path.join(d, "classnames.txt"), "zero\none\ntwo\n");
    const named = await openDataset(`wds:${shard}`);
    const { items, skipped } = await collectSkipping(named);
    assert.deepEqual(items.map((i) => i.label), [1]);
    assert.deepEqual(skipped.map((s) => s.reason), ['cls "dog?" is not a class index in [0, 3)', 'cls "7" is not a class index in [0, 3)']);
  });

  it("a missing json group field lists the fields found", async () => {
    const ds = await openDataset(`wds:${test}/0.tar`, { groupKeys: ["weather"] });
    await rejectsOneLine(() => collect(ds), /0\.tar:s0000000: s0000000\.json has no field "weather"; fields found: scene, id$/);
  });

  it("a pattern matching no file names the pattern; a missing shard is named", async () => {
    const pattern = path.join(dir, "nowhere", "{0000..0009}.tar");
    await rejectsOneLine(() => openDataset(`wds:${pattern}`), new RegExp(`^${lit(pattern)}: no shard matches this pattern \\(it names 10 files`));
    const partial = `${test}/{0..4}.tar`;
    await rejectsOneLine(() => openDataset(`wds:${partial}`), new RegExp(`^${lit(path.join(test, "3.tar"))}: shard not found \\(2 of the 5 shards`));
    await rejectsOneLine(() => openDataset(`wds:${test}/{0..2.tar`), /not closed/);
  });

  it("a truncated shard is an error naming the shard", async () => {
    const d = path.join(dir, "truncated");
    fs.mkdirSync(d, { recursive: true });
    const whole = path.join(test, "1.tar");
    const at = new Map<string, number>();
    for await (const e of readTar(whole)) at.set(e.name, e.offset);
    const bytes = fs.readFileSync(whole);
    const cut = path.join(d, "1.tar");
    fs.writeFileSync(cut, bytes.subarray(0, at.get("s0000006.jpg")! + 700)); // inside the third sample's image
    const ds = await openDataset(`wds:${cut}`);
    await rejectsOneLine(() => collect(ds), new RegExp(`^${lit(cut)}: truncated tar: member "s0000006\\.jpg" at byte ${at.get("s0000006.jpg")} needs \\d+ bytes of data, the file ends at byte`));
    await rejectsOneLine(() => collectSkipping(ds), /truncated tar/);
    const early = path.join(d, "early.tar");
    fs.writeFileSync(early, bytes.subarray(0, at.get("s0000004.cls")! + 100));
    await rejectsOneLine(() => openDataset(`wds:${early}`), new RegExp(`^${lit(early)}: truncated tar: the header at byte ${at.get("s0000004.cls")} is cut short`));
  });

  it("a classnames file overriding classnames.txt must have as many names", async () => {
    const wrong = path.join(dir, "two_names.txt");
    fs.writeFileSync(wrong, "feline\ncanine\n");
    await rejectsOneLine(() => openDataset(`wds:${test}`, { classnamesFile: wrong }), new RegExp(`^${lit(wrong)}: has 2 class names but the data has 3 classes in ${lit(path.join(test, "..", "classnames.txt"))}`));
    const right = path.join(dir, "three_names.txt");
    fs.writeFileSync(right, "feline\ncanine\nturtle\n");
    const ds = await openDataset(`wds:${test}`, { classnamesFile: right });
    assert.deepEqual(ds.classNames, ["feline", "canine", "turtle"]);
  });

  it("a template without {c} is an error naming the file and line", async () => {
    const d = path.join(dir, "badtemplates");
    writeTar(path.join(d, "0.tar"), [["a.png", await makeImage("png", 4, 4, 1)]]);
    fs.writeFileSync(path.join(d, "zeroshot_classification_templates.txt"), "a photo of a {c}.\na photo.\n");
    await rejectsOneLine(() => openDataset(`wds:${d}/0.tar`), new RegExp(`^${lit(path.join(d, "zeroshot_classification_templates.txt"))}:2: template "a photo\\." must hold exactly one "\\{c\\}"`));
  });
});
