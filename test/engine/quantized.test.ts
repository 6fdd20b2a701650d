/**
 * int8 towers (src/io/onnx/quantize.ts): the per-column quantiser, the exported graphs (int8
 * weights, the DynamicQuantizeLinear -> MatMulInteger fragment, float32 pair untouched), and the
 * onnx engine on them, from a Clip and from an export directory, against the float32 tfjs
 * features of the reference fixtures (cosine >= 0.99, same zero-shot argmax on the fixtures).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Clip } from "../../src/model/clip";
import { loadCheckpoint } from "../../src/io/checkpoint";
import { TEXT_QUANTIZED_FILE, VISION_QUANTIZED_FILE, exportClipOnnx, readOnnxExportConfig } from "../../src/io/onnx/export_clip";
import { quantizeColumns } from "../../src/io/onnx/quantize";
import { inspectOnnx } from "../../src/io/onnx/inspect";
import { ONNX_DTYPES } from "../../src/io/onnx/onnx_proto";
import { OnnxEngine } from "../../src/engine/onnx";
import { TfjsEngine } from "../../src/engine/tfjs";
import { createEngine } from "../../src/engine/select";
import { FixtureModel, fixtureImages, fixturePath, readExpected, tmpDir, useBackend } from "../helpers/fixtures";

function rowCosines(a: Float32Array, b: Float32Array, d: number): number[] {
  assert.equal(a.length, b.length);
  const out: number[] = [];
  for (let r = 0; r < a.length / d; r++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let i = r * d; i < (r + 1) * d; i++) {
      ab += a[i] * b[i];
      aa += a[i] * a[i];
      bb += b[i] * b[i];
    }
    out.push(ab / Math.sqrt(aa * bb));
  }
  return out;
}

/** For each image row, the text row of highest cosine (the zero-shot prediction over the fixture texts). */
function argmaxTexts(images: Float32Array, texts: Float32Array, d: number): number[] {
  const n = images.length / d;
  const m = texts.length / d;
  const norm = (x: Float32Array, r: number) => Math.hypot(...x.subarray(r * d, (r + 1) * d));
  return Array.from({ length: n }, (_, i) => {
    let best = -1;
    let bestScore = -Infinity;
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += images[i * d + k] * texts[j * d + k];
      s /= norm(images, i) * norm(texts, j);
      if (s > bestScore) [best, bestScore] = [j, s];
    }
    return best;
  });
}

before(() => useBackend("cpu"));

describe("quantizeColumns", () => {
  it("maps each column's largest magnitude to 127 and every value within half a step", () => {
    const rows = 5;
    const cols = 4;
    const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 1.7) * (1 + (i % cols)));
    w[2] = 0; // column 2 keeps its other values
    for (let r = 0; r < rows; r++) w[r * cols + 3] = 0; // an all-zero column
    const { values, scales } = quantizeColumns(w, rows, cols);
    assert.equal(values.length, rows * cols);
    assert.equal(scales.length, cols);
    for (let c = 0; c < 3; c++) {
      let max = 0;
      for (let r = 0; r < rows; r++) max = Math.max(max, Math.abs(w[r * cols + c]));
      assert.ok(Math.abs(scales[c] - max / 127) <= 1e-7 * max, `scale of column ${c}`);
      assert.equal(Math.max(...Array.from({ length: rows }, (_, r) => Math.abs(values[r * cols + c]))), 127, `column ${c} reaches 127`);
    }
    for (let i = 0; i < w.length; i++) {
      const c = i % cols;
      assert.ok(Math.abs(values[i] * scales[c] - w[i]) <= scales[c] / 2 + 1e-7, `element ${i}`);
    }
    assert.deepEqual(Array.from({ length: rows }, (_, r) => values[r * cols + 3]), [0, 0, 0, 0, 0], "zero column stays zero");
    assert.ok(scales[3] > 0, "a zero column gets a positive scale");
  });

  it("rejects a length that does not match the shape", () => {
    assert.throws(() => quantizeColumns(new Float32Array(5), 2, 3), /5 values for \[2, 3\]/);
  });
});

for (const model of ["tiny_vit", "tiny_rn"] as FixtureModel[]) {
  describe(`int8 export and engine on ${model}`, () => {
    const expected = readExpected(model);
    let clip: Clip;
    let dir: string;
    let fromClip: OnnxEngine;
    let fromDir: OnnxEngine;
    let pixels: Float32Array;
    let ids: Int32Array;
    let nImages: number;
    let nTexts: number;
    let length: number;

    before(async () => {
      await useBackend("cpu");
      clip = await loadCheckpoint(fixturePath(`${model}.safetensors`));
      dir = tmpDir();
      exportClipOnnx(clip, dir, { quantize: "int8" });
      fromClip = await OnnxEngine.fromClip(clip, { threads: 1, quantize: "int8" });
      fromDir = await OnnxEngine.fromDirectory(dir, { threads: 1, quantize: "int8" });
      const t = fixtureImages(model);
      pixels = t.dataSync() as Float32Array;
      nImages = t.shape[0];
      t.dispose();
      const rows = expected.texts.ids as number[][];
      ids = Int32Array.from(rows.flat());
      nTexts = rows.length;
      length = rows[0].length;
    });
    after(() => {
      fromClip.dispose();
      fromDir.dispose();
      clip.dispose();
    });

    it("writes the int8 pair beside the float32 one, and config.json names it", () => {
      const { config } = readOnnxExportConfig(dir);
      assert.deepEqual([config.quantized?.dtype, config.quantized?.vision, config.quantized?.text], ["int8", VISION_QUANTIZED_FILE, TEXT_QUANTIZED_FILE]);
      for (const [fp32, int8] of [["vision_model.onnx", VISION_QUANTIZED_FILE], ["text_model.onnx", TEXT_QUANTIZED_FILE]]) {
        const f = inspectOnnx(fs.readFileSync(path.join(dir, fp32)));
        const q = inspectOnnx(fs.readFileSync(path.join(dir, int8)));
        assert.ok(!f.nodes.some((n) => n.opType === "MatMulInteger"), `${fp32} stays float32`);
        const integerMatMuls = q.nodes.filter((n) => n.opType === "MatMulInteger").length;
        const dynamic = q.nodes.filter((n) => n.opType === "DynamicQuantizeLinear").length;
        assert.ok(integerMatMuls > 0 && integerMatMuls === dynamic, `${int8}: one DynamicQuantizeLinear per MatMulInteger (${dynamic} / ${integerMatMuls})`);
        assert.ok(!q.nodes.some((n) => n.opType === "Gemm"), `${int8}: no float Gemm left`);
        assert.ok(q.nodes.every((n) => n.domain === ""), `${int8}: standard operators only`);
        const int8Weights = q.initializers.filter((t) => t.dataType === ONNX_DTYPES.int8);
        assert.equal(int8Weights.length, integerMatMuls, "one int8 weight per integer product");
        for (const t of int8Weights) assert.equal(t.rawBytes, t.dims.reduce((a, b) => a * b, 1), `${t.name}: one byte per weight`);
        assert.match(q.metadata.cliplab_quantization ?? "", /^int8: /);
      }
    });

    it("from a Clip and from the directory give the same features, within cosine 0.99 of float32", async () => {
      assert.deepEqual([fromClip.precision, fromDir.precision], ["int8", "int8"]);
      const d = clip.config.embed_dim;
      const ref = new TfjsEngine(clip);
      const refImages = await ref.embedImages(pixels, nImages);
      const refTexts = await ref.embedTexts(ids, nTexts, length);
      const images = await fromClip.embedImages(pixels, nImages);
      const texts = await fromClip.embedTexts(ids, nTexts, length);
      assert.deepEqual(Array.from(await fromDir.embedImages(pixels, nImages)), Array.from(images));
      assert.deepEqual(Array.from(await fromDir.embedTexts(ids, nTexts, length)), Array.from(texts));
      const cosImages = rowCosines(images, refImages, d);
      const cosTexts = rowCosines(texts, refTexts, d);
      assert.ok(Math.min(...cosImages) >= 0.99, `image cosines ${cosImages.map((c) => c.toFixed(4))}`);
      assert.ok(Math.min(...cosTexts) >= 0.99, `text cosines ${cosTexts.map((c) => c.toFixed(4))}`);
      assert.ok(Math.min(...cosImages, ...cosTexts) < 1 - 1e-7, "int8 is not float32 in disguise");
      assert.deepEqual(argmaxTexts(images, texts, d), argmaxTexts(refImages, refTexts, d), "same best text for every image");
    });
  });
}

describe("int8 engine set-up", () => {
  it("refuses an export without the int8 pair, and a quantisation it does not know", async () => {
    await useBackend("cpu");
    const clip = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
    try {
      const dir = tmpDir();
      exportClipOnnx(clip, dir);
      await assert.rejects(OnnxEngine.fromDirectory(dir, { quantize: "int8" }), (e: Error) => {
        assert.ok(!e.message.includes("\n"));
        assert.match(e.message, /has no int8 models .*--quantize int8/);
        return true;
      });
      await assert.rejects(OnnxEngine.fromClip(clip, { quantize: "int4" as never }), /quantize must be one of int8, got "int4"/);
      assert.throws(() => exportClipOnnx(clip, tmpDir(), { quantize: "fp16" as never }), /quantize must be one of int8, got "fp16"/);
      const { engine, reason } = await createEngine(clip, "auto", { quantize: "int8", threads: 1 });
      try {
        assert.equal((engine as OnnxEngine).precision, "int8");
        assert.match(reason, /int8/);
      } finally {
        engine.dispose();
      }
      await assert.rejects(createEngine(clip, "tfjs", { quantize: "int8" }), /int8 .*onnx engine/);
    } finally {
      clip.dispose();
    }
  });
});
