/** `cliplab zeroshot` in-process on the tiny reference ViT and a slice of the real test split. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { runCli as run } from "../helpers/cli";
import { encodeIdx } from "../../src/data/idx";
import { FASHION_MNIST_FILES, loadFashionMnist } from "../../src/data/fashion_mnist";
import { fixturePath, tmpDir } from "../helpers/fixtures";

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
});
