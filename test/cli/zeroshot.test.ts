/**
 * `cliplab zeroshot` in-process: the tiny reference ViT on a slice of the real test split, and a
 * random-init 64 px CLIP on an image folder, a CSV, and a captioned source without labels.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { runCli as run } from "../helpers/cli";
import { encodeIdx } from "../../src/data/idx";
import { FASHION_MNIST_FILES, loadFashionMnist } from "../../src/data/fashion_mnist";
import { fixturePath, tmpDir } from "../helpers/fixtures";
import { saveCheckpoint } from "../../src/io/checkpoint";
import { useTestBackend } from "../eval/fake_clip";
import { SHAPE_FOLDERS, tiny64Clip, writeShapeFolder, writeShapeTsv } from "../prompts/shapes";

function testSliceDir(n: number): string {
  const dir = tmpDir();
  const d = loadFashionMnist("test", { limit: n });
  fs.writeFileSync(path.join(dir, FASHION_MNIST_FILES.test.images), zlib.gzipSync(encodeIdx([n, 28, 28], d.images)));
  fs.writeFileSync(path.join(dir, FASHION_MNIST_FILES.test.labels), zlib.gzipSync(encodeIdx([n], d.labels)));
  return dir;
}

describe("cliplab zeroshot", () => {
  const data = testSliceDir(40);
  const checkpoint = fixturePath("tiny_vit.safetensors");

  it("prints every template's accuracy and the JSON summary last", async () => {
    const r = await run(["zeroshot", "--checkpoint", checkpoint, "--templates", "imagenet7", "--data-dir", data, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.deepEqual(Object.keys(summary).slice(0, 4), ["top1", "top5", "ensembleTop1", "ensembleTop5"]);
    assert.equal(summary.images, 40);
    assert.equal(summary.perTemplate.length, 7);
    assert.equal(summary.perTemplate[0].template, "itap of a {}.");
    for (const p of summary.perTemplate) {
      assert.ok(p.top1 >= 0 && p.top1 <= 1 && p.top5 >= p.top1);
      assert.equal(Math.round(p.top1 * 40), p.top1 * 40, "a fraction of 40 images");
    }
    const mean = summary.perTemplate.reduce((s: number, p: { top1: number }) => s + p.top1, 0) / 7;
    assert.ok(Math.abs(summary.top1 - mean) < 1e-12, "top1 is the mean single-template accuracy");
    assert.ok(summary.ensembleTop1 >= 0 && summary.ensembleTop1 <= 1);
    assert.equal(r.out.length, 7 + 2);
  });

  it("--limit, a template file, and without --json no JSON line", async () => {
    const file = path.join(tmpDir(), "two.json");
    fs.writeFileSync(file, JSON.stringify(["a photo of a {}.", "a {}."]));
    const r = await run(["zeroshot", "--checkpoint", checkpoint, "--templates", file, "--data-dir", data, "--limit", "10"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.out[r.out.length - 1], /^zero-shot on 10 test images, 2 templates \(two\)/);
    // One template: mean single = ensemble.
    const one = await run(["zeroshot", "--checkpoint", checkpoint, "--templates", "plain", "--data-dir", data, "--limit", "10", "--json"]);
    const s = JSON.parse(one.out[one.out.length - 1]);
    assert.equal(s.top1, s.ensembleTop1);
  });

  it("usage mistakes exit 2; bad templates, data or checkpoint exit 1 with one line", async () => {
    for (const args of [["zeroshot"], ["zeroshot", "--checkpoint", checkpoint, "--limit", "0"], ["zeroshot", "--bogus"]]) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.err[0], /^cliplab zeroshot: /);
    }
    const bad = path.join(tmpDir(), "bad.json");
    fs.writeFileSync(bad, JSON.stringify(["a photo of a cat."]));
    const cases: [string[], RegExp][] = [
      [["--templates", "imagenet81"], /^cliplab zeroshot: loadTemplateSet: unknown template set "imagenet81"; valid sets: fashion, imagenet7, imagenet80, plain/],
      [["--templates", bad], /bad\.json: template 0 "a photo of a cat\." must contain exactly one "\{\}"/],
      [["--data-dir", path.join(data, "absent")], /absent.*(dataset-fashion-mnist|--data-dir)/],
    ];
    for (const [extra, re] of cases) {
      const r = await run(["zeroshot", "--checkpoint", checkpoint, "--data-dir", data, ...extra]);
      assert.equal(r.code, 1, extra.join(" "));
      assert.equal(r.err.filter((l) => l.startsWith("cliplab zeroshot:")).length, 1);
      assert.match(r.err[r.err.length - 1], re);
    }
    const missing = await run(["zeroshot", "--checkpoint", path.join(data, "none.safetensors"), "--data-dir", data]);
    assert.equal(missing.code, 1);
    assert.match(missing.err[missing.err.length - 1], /^cliplab zeroshot: .*none\.safetensors/);
  });

  it("the JSON line counts skipped images (0 here) and names the dataset", async () => {
    const r = await run(["zeroshot", "--checkpoint", checkpoint, "--templates", "plain", "--data-dir", data, "--limit", "5", "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const s = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(s.skipped, 0);
    assert.equal(s.dataset, "fashion-mnist-test");
    assert.equal(s.images, 5);
  });
});

describe("cliplab zeroshot on any dataset (64 px, random weights)", () => {
  const root = tmpDir();
  const model = path.join(root, "tiny64.safetensors");
  before(async () => {
    await useTestBackend();
    const clip = tiny64Clip(3);
    await saveCheckpoint(clip, model);
    clip.dispose();
  });

  it("an image folder: classes from classnames.txt, default imagenet7, --skip-bad-images counts the skipped file", async () => {
    const dir = await writeShapeFolder(path.join(root, "folder"), 4);
    const r = await run(["zeroshot", "--checkpoint", model, "--data", `imagefolder:${dir}`, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const s = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(s.images, 12);
    assert.equal(s.templates, "imagenet7");
    assert.equal(s.perTemplate.length, 7);
    for (const p of s.perTemplate) assert.equal(Math.round(p.top1 * 12), p.top1 * 12, "a fraction of 12 images");
    assert.equal(s.top5, 1, "3 classes: every label is in the top 5");
    assert.equal(s.skipped, 0);

    fs.writeFileSync(path.join(dir, SHAPE_FOLDERS[1], "zz-broken.png"), "not a png");
    const bad = await run(["zeroshot", "--checkpoint", model, "--data", `imagefolder:${dir}`, "--templates", "plain"]);
    assert.equal(bad.code, 1);
    assert.match(bad.err[bad.err.length - 1], /^cliplab zeroshot: .*zz-broken\.png/);
    const skip = await run(["zeroshot", "--checkpoint", model, "--data", `imagefolder:${dir}`, "--templates", "plain", "--skip-bad-images", "--json"]);
    assert.equal(skip.code, 0, skip.err.join("\n"));
    const t = JSON.parse(skip.out[skip.out.length - 1]);
    assert.equal(t.images, 12);
    assert.equal(t.skipped, 1);
    assert.ok(skip.err.some((l) => /^skipped .*zz-broken\.png: /.test(l)), skip.err.join("\n"));
    assert.ok(skip.out.includes("skipped 1 unreadable image (--skip-bad-images)"));
  });

  it("a CSV with --csv-label-key classifies; without it (captions, no labels) it is retrieval only, said so", async () => {
    const file = await writeShapeTsv(path.join(root, "csv"), "pairs", 4);
    const r = await run(["zeroshot", "--checkpoint", model, "--data", `csv:${file}`, "--csv-label-key", "label", "--templates", "plain", "--limit", "9", "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const s = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(s.images, 9);
    assert.equal(s.top1, s.ensembleTop1);
    assert.equal(s.dataset, "pairs");

    const q = await run(["zeroshot", "--checkpoint", model, "--data", `csv:${file}`, "--json"]);
    assert.equal(q.code, 0, q.err.join("\n"));
    assert.equal(q.out.filter((l) => /retrieval only/.test(l)).length, 1);
    assert.match(q.out[0], /^csv:.*pairs\.tsv has captions but no labels: zero-shot classification is impossible, retrieval only$/);
    const j = JSON.parse(q.out[q.out.length - 1]);
    assert.equal(j.retrievalOnly, true);
    assert.equal(j.images, 12);
    assert.equal(j.texts, 12);
    assert.equal(j.skipped, 0);
    for (const dir of ["image", "text"]) {
      const [r1, r5, r10] = [1, 5, 10].map((k) => j.metrics[`${dir}_retrieval_recall@${k}`]);
      assert.ok(r1 >= 0 && r1 <= r5 && r5 <= r10 && r10 <= 1, `${dir}: ${r1} ${r5} ${r10}`);
      assert.equal(Math.round(r1 * 12), r1 * 12, "a fraction of 12 queries");
    }
  });

  it("a source with neither labels nor captions, or a bad --data, is one line and exit 1", async () => {
    const flat = path.join(root, "flat");
    fs.mkdirSync(flat);
    fs.writeFileSync(path.join(flat, "a.png"), fs.readFileSync(path.join(await writeShapeFolder(path.join(root, "one"), 1), SHAPE_FOLDERS[0], "img000.png")));
    const cases: [string[], RegExp][] = [
      [["--data", `imagefolder:${flat}`], /^cliplab zeroshot: imagefolder:.*flat: has neither labels nor captions, so there is nothing to evaluate zero-shot/],
      [["--data", "folder:x"], /^cliplab zeroshot: --data "folder:x": unknown source kind "folder"; valid kinds: fashion-mnist, imagefolder, csv/],
      [["--data", `imagefolder:${path.join(root, "absent")}`], /absent: image folder not found/],
    ];
    for (const [extra, re] of cases) {
      const r = await run(["zeroshot", "--checkpoint", model, ...extra]);
      assert.equal(r.code, 1, extra.join(" "));
      assert.equal(r.err.filter((l) => l.startsWith("cliplab zeroshot:")).length, 1);
      assert.match(r.err[r.err.length - 1], re);
    }
  });
});
