/** `cliplab export onnx`, run in-process through `main(argv, io)`. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli as run } from "../helpers/cli";
import { OnnxEngine } from "../../src/engine/onnx";
import { fixturePath, readExpected, tmpDir } from "../helpers/fixtures";

function maxRel(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(got[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return d / m;
}

describe("cliplab export onnx", () => {
  it("writes both models and config.json; the export embeds texts like OpenAI's model", async () => {
    const out = path.join(tmpDir(), "onnx");
    const r = await run(["export", "onnx", "--checkpoint", fixturePath("tiny_vit.safetensors"), "--out", out, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.deepEqual(fs.readdirSync(out).sort(), ["config.json", "text_model.onnx", "vision_model.onnx"]);
    assert.match(r.out[0], /^wrote .*vision_model\.onnx \(\d+\.\d MiB\)$/);
    assert.match(r.out[3], /^VisionTransformer, embed 48, opset 17: pixel_values NCHW float32 \[batch, 3, 48, 48\] -> image_embeds; input_ids int64 \[batch, sequence <= 20\] -> text_embeds/);
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(summary.vision.bytes, fs.statSync(path.join(out, "vision_model.onnx")).size);
    assert.equal(r.err.length, 0, "no backend is started without --verify");

    const engine = await OnnxEngine.fromDirectory(out, { threads: 1 });
    try {
      const expected = readExpected("tiny_vit");
      const rows = expected.texts.ids as number[][];
      const got = await engine.embedTexts(Int32Array.from(rows.flat()), rows.length, rows[0].length);
      assert.ok(maxRel(got, expected.f64.text_features.data) < 1e-5);
    } finally {
      engine.dispose();
    }
  });

  it("--verify runs onnxruntime against cliplab; --external-data always writes _data files", async () => {
    const out = tmpDir();
    const r = await run(["export", "onnx", "--checkpoint", fixturePath("tiny_rn.safetensors"), "--out", out, "--external-data", "always", "--verify", "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.err[0], /^backend: \w+/);
    assert.match(r.out[0], /weights in vision_model\.onnx_data: \d+\.\d MiB\)$/);
    const line = r.out.find((l) => l.startsWith("verify:"));
    assert.match(line ?? "", /^verify: onnxruntime-node matches cliplab on 2 random images and 2 texts \(image max\|Δ\|\/max\|ref\| \S+, text \S+\)$/);
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.ok(summary.verify.image < 1e-5 && summary.verify.text < 1e-5, JSON.stringify(summary.verify));
    assert.ok(fs.existsSync(path.join(out, "text_model.onnx_data")));
  });

  it("--quantize int8 adds the _quantized pair; --verify checks it against float32 by cosine", async () => {
    const out = tmpDir();
    const r = await run(["export", "onnx", "--checkpoint", fixturePath("tiny_vit.safetensors"), "--out", out, "--quantize", "int8", "--verify", "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.deepEqual(fs.readdirSync(out).sort(), ["config.json", "text_model.onnx", "text_model_quantized.onnx", "vision_model.onnx", "vision_model_quantized.onnx"]);
    assert.ok(r.out.some((l) => /^wrote .*vision_model_quantized\.onnx \(/.test(l)), r.out.join("\n"));
    const line = r.out.find((l) => l.startsWith("verify: the int8"));
    assert.match(line ?? "", /^verify: the int8 models agree with cliplab's float32 features \(min cosine image (0\.9\d+|1\.0+), text (0\.9\d+|1\.0+)\)$/);
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.ok(summary.verifyQuantized.image >= 0.99 && summary.verifyQuantized.image < 1, JSON.stringify(summary.verifyQuantized));
    assert.equal(summary.quantized.vision.bytes, fs.statSync(path.join(out, "vision_model_quantized.onnx")).size);
    const bad = await run(["export", "onnx", "--checkpoint", fixturePath("tiny_vit.safetensors"), "--out", tmpDir(), "--quantize", "int4"]);
    assert.equal(bad.code, 2);
    assert.match(bad.err[0], /--quantize must be one of int8, got "int4"/);
  });

  it("usage mistakes exit 2, failures exit 1, each with one line naming the problem", async () => {
    const ckpt = fixturePath("tiny_vit.safetensors");
    const cases: [string[], number, RegExp][] = [
      [["export", "--checkpoint", ckpt, "--out", "x"], 2, /^cliplab export: the export format must be "onnx", got nothing$/],
      [["export", "tflite", "--checkpoint", ckpt, "--out", "x"], 2, /format must be "onnx", got "tflite"/],
      [["export", "onnx", "--out", "x"], 2, /--checkpoint is required/],
      [["export", "onnx", "--checkpoint", ckpt], 2, /--out is required/],
      [["export", "onnx", "--checkpoint", ckpt, "--out", "x", "--external-data", "sometimes"], 2, /--external-data must be auto, always or never/],
      [["export", "onnx", "--checkpoint", ckpt, "--out", "x", "--bogus"], 2, /Unknown option '--bogus'/],
      [["export", "onnx", "--checkpoint", "/nonexistent/m.safetensors", "--out", "x"], 1, /^cliplab export: \/nonexistent\/m\.safetensors: no such file$/],
      [["export", "onnx", "--checkpoint", ckpt, "--out", ckpt], 1, /exists and is not a directory/],
      [["export", "onnx", "--checkpoint", ckpt, "--out", tmpDir(), "--config", "RN50"], 1, /tiny_vit\.safetensors: ONNX export: tensor ln_final\.bias has shape \[32\] but the config needs \[512\]/],
    ];
    for (const [argv, code, re] of cases) {
      const r = await run(argv);
      assert.equal(r.code, code, `${argv.join(" ")}: ${r.err.join(" | ")}`);
      assert.match(r.err[0], re);
    }
    const help = await run(["export", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out[0], /^usage: cliplab export onnx --checkpoint FILE --out DIR/);
  });
});
