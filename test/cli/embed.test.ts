/** `cliplab embed`, run in-process through `main(argv, io)`. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { runCli as run } from "../helpers/cli";
import { readArrowFile, readVectorColumn } from "../../src/io/arrow";
import { loadCheckpoint } from "../../src/io/checkpoint";
import { loadImages } from "../../src/image/preprocess";
import { tokenize } from "../../src/text/tokenize";
import { fixturePath, tmpDir } from "../helpers/fixtures";

const ROOT = path.join(__dirname, "..", "..");
const IMAGES = ["stripes.png", "rings.png"].map((f) => path.join(ROOT, "assets", "examples", f));
const TEXTS = ["a photo of a dog on the grass", "concentric rings with a square"];


describe("cliplab embed", () => {
  it("writes one Arrow row per input, equal to the model's features, and prints the cosine matrix", async () => {
    const dir = tmpDir();
    const out = path.join(dir, "emb.arrow");
    const checkpoint = fixturePath("tiny_vit.safetensors");
    const args = ["embed", "--checkpoint", checkpoint, ...IMAGES.flatMap((i) => ["--image", i]), ...TEXTS.flatMap((t) => ["--text", t]), "--out", out, "--json"];
    const result = await run(args);
    assert.equal(result.code, 0, result.err.join("\n"));
    assert.match(result.err[0], /^backend: \w+/);
    const summary = JSON.parse(result.out[result.out.length - 1]);
    assert.equal(summary.rows, 4);
    assert.equal(summary.dim, 48);

    const table = readArrowFile(out);
    assert.equal(table.numRows, 4);
    assert.deepEqual(table.getChild("kind")!.toArray(), ["image", "image", "text", "text"]);
    assert.deepEqual(table.getChild("key")!.toArray(), [...IMAGES, ...TEXTS]);
    assert.deepEqual(table.getChild("caption")!.toArray(), [null, null, ...TEXTS]);
    const { dim, values } = readVectorColumn(table, "embedding");
    assert.equal(dim, 48);

    const clip = await loadCheckpoint(checkpoint);
    const pixels = await loadImages(IMAGES, 48);
    const tokens = tokenize(TEXTS, { contextLength: 20 });
    const expected = new Float32Array([...clip.encodeImage(pixels).dataSync(), ...clip.encodeText(tokens).dataSync()]);
    assert.deepEqual(values, expected);
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const row = (i: number) => values.subarray(i * dim, (i + 1) * dim);
    const cos01 = row(0).reduce((s, x, k) => s + x * row(3)[k], 0) / (norm(row(0)) * norm(row(3)));
    assert.ok(Math.abs(summary.cosine[0][1] - cos01) < 1e-5);
    tf.dispose([pixels, tokens]);
    clip.dispose();
  });

  it("usage mistakes exit 2 with the usage line", async () => {
    const r = await run(["embed", "--text", "hi", "--out", "x.arrow"]);
    assert.equal(r.code, 2);
    assert.match(r.err[0], /cliplab embed: --checkpoint is required/);
    assert.equal((await run(["embed", "--bogus"])).code, 2);
    assert.equal((await run(["nope"])).code, 2);
  });

  for (const [label, make, message] of [
    ["a checkpoint that is not safetensors", (dir: string) => {
      const f = path.join(dir, "bad.safetensors");
      fs.writeFileSync(f, "not a checkpoint");
      return ["--checkpoint", f, "--text", "hi"];
    }, /^cliplab embed: .*bad\.safetensors: /],
    ["an image that is not an image", (dir: string) => {
      const f = path.join(dir, "notes.png");
      fs.writeFileSync(f, "hello");
      return ["--checkpoint", fixturePath("tiny_vit.safetensors"), "--image", f];
    }, /^cliplab embed: .*notes\.png.* not a PNG\/JPEG/],
    ["a caption longer than the context", () => ["--checkpoint", fixturePath("tiny_vit.safetensors"), "--text", "word ".repeat(40)],
      /^cliplab embed: .*more than contextLength 20/],
  ] as [string, (dir: string) => string[], RegExp][]) {
    it(`${label}: exit 1, one-line error, no output file`, async () => {
      const dir = tmpDir();
      const out = path.join(dir, "out.arrow");
      const r = await run(["embed", ...make(dir), "--out", out]);
      assert.equal(r.code, 1);
      const errors = r.err.filter((l) => !l.startsWith("backend:"));
      assert.equal(errors.length, 1, errors.join("\n"));
      assert.match(errors[0], message);
      assert.ok(!fs.existsSync(out));
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes("out.arrow")), []);
    });
  }
});
