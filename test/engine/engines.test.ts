/**
 * The two EmbeddingEngines on the reference fixtures: the tfjs engine (a Clip; nothing leaks) and
 * the onnx engine (onnxruntime-node, from a Clip in memory and from an export directory), which
 * agree with each other and with OpenAI's features; NHWC pixels in, batch 1 and more, several
 * text lengths; bad inputs; onnxruntime-node missing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { Clip } from "../../src/model/clip";
import { loadCheckpoint } from "../../src/io/checkpoint";
import { exportClipOnnx } from "../../src/io/onnx/export_clip";
import { OnnxEngine } from "../../src/engine/onnx";
import { TfjsEngine } from "../../src/engine/tfjs";
import { createEngine } from "../../src/engine/select";
import { OnnxRuntimeUnavailableError, loadOnnxRuntime } from "../../src/engine/onnxruntime";
import { nhwcToNchw } from "../../src/engine/inputs";
import type { EmbeddingEngine } from "../../src/engine/engine";
import { FixtureModel, fixtureImages, fixturePath, readExpected, tmpDir, useBackend } from "../helpers/fixtures";

function relDiff(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(got.length, ref.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const x = Math.abs(got[i] - ref[i]);
    d = Number.isNaN(x) ? Infinity : Math.max(d, x);
    m = Math.max(m, Math.abs(ref[i]));
  }
  return d / m;
}

function assertRel(got: ArrayLike<number>, ref: ArrayLike<number>, label: string, tol = 1e-5): void {
  const r = relDiff(got, ref);
  assert.ok(r <= tol, `${label}: max|Δ|/max|ref| = ${r} > ${tol}`);
}

async function rejectsOneLine(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

function fixturePixels(model: FixtureModel): Float32Array {
  const t = fixtureImages(model);
  const data = t.dataSync() as Float32Array;
  t.dispose();
  return data;
}

function fixtureIds(model: FixtureModel): { ids: Int32Array; n: number; length: number } {
  const rows = readExpected(model).texts.ids as number[][];
  return { ids: Int32Array.from(rows.flat()), n: rows.length, length: rows[0].length };
}

before(() => useBackend("cpu"));

describe("nhwcToNchw", () => {
  it("moves channels in front of the plane", () => {
    // [1, 2, 2, 3]: value = 100 * h + 10 * w + c
    const nhwc = Float32Array.from([0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112]);
    assert.deepEqual(Array.from(nhwcToNchw(nhwc, 1, 2)), [0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112]);
  });
});

for (const model of ["tiny_vit", "tiny_rn"] as FixtureModel[]) {
  describe(`engines on ${model}`, () => {
    const expected = readExpected(model);
    let clip: Clip;
    let tfjs: TfjsEngine;
    let onnx: OnnxEngine;
    let fromDir: OnnxEngine;

    before(async () => {
      await useBackend("cpu");
      clip = await loadCheckpoint(fixturePath(`${model}.safetensors`));
      tfjs = new TfjsEngine(clip);
      onnx = await OnnxEngine.fromClip(clip, { threads: 1 });
      const dir = tmpDir();
      exportClipOnnx(clip, dir);
      fromDir = await OnnxEngine.fromDirectory(dir);
    });
    after(() => {
      onnx.dispose();
      fromDir.dispose();
      clip.dispose();
    });

    it("describe the model alike", () => {
      for (const e of [tfjs, onnx, fromDir] as EmbeddingEngine[]) {
        assert.equal(e.embedDim, clip.config.embed_dim);
        assert.equal(e.imageSize, clip.config.vision_cfg.image_size);
        assert.equal(e.contextLength, clip.config.text_cfg.context_length);
      }
      assert.deepEqual([tfjs.name, onnx.name], ["tfjs", "onnx"]);
      assert.equal(onnx.threads, 1);
      assert.equal(fromDir.threads, require("node:os").availableParallelism(), "intra-op threads default to the cores");
    });

    it("embed images like OpenAI (f64 reference) and like each other, batch 1 and all", async () => {
      const pixels = fixturePixels(model);
      const n = expected.images.shape_nchw[0];
      const ref = expected.f64.image_features.data as number[];
      const t = await tfjs.embedImages(pixels, n);
      const o = await onnx.embedImages(pixels, n);
      assertRel(t, ref, "tfjs vs OpenAI", 1e-4);
      assertRel(o, ref, "onnx vs OpenAI");
      assertRel(o, t, "onnx vs tfjs");
      assert.deepEqual(await fromDir.embedImages(pixels, n), o, "the export directory runs the same graph");
      const s = clip.config.vision_cfg.image_size;
      const last = pixels.subarray((n - 1) * s * s * 3);
      const d = clip.config.embed_dim;
      assertRel(await onnx.embedImages(last, 1), t.subarray((n - 1) * d), "onnx batch 1");
      assertRel(await tfjs.embedImages(last, 1), t.subarray((n - 1) * d), "tfjs batch 1", 1e-6);
    });

    it("embed texts like OpenAI at the full length and shorter ones", async () => {
      const { ids, n, length } = fixtureIds(model);
      const ref = expected.f64.text_features.data as number[];
      const t = await tfjs.embedTexts(ids, n, length);
      const o = await onnx.embedTexts(ids, n, length);
      assertRel(t, ref, "tfjs vs OpenAI", 1e-4);
      assertRel(o, ref, "onnx vs OpenAI");
      assertRel(o, t, "onnx vs tfjs");
      // Row 0 cut right after its end-of-text token, alone and as a batch of two copies.
      const eot = expected.texts.eot_index_argmax[0] as number;
      const short = ids.slice(0, eot + 1);
      const d = clip.config.embed_dim;
      for (const e of [tfjs, onnx] as EmbeddingEngine[]) {
        assertRel(await e.embedTexts(short, 1, eot + 1), t.subarray(0, d), `${e.name} length ${eot + 1}`);
        const twice = Int32Array.from([...short, ...short]);
        const both = await e.embedTexts(twice, 2, eot + 1);
        assertRel(both.subarray(d), t.subarray(0, d), `${e.name} length ${eot + 1}, batch 2`);
      }
    });

    it("the tfjs engine frees every tensor it makes", async () => {
      const pixels = fixturePixels(model);
      const { ids, n, length } = fixtureIds(model);
      const s = clip.config.vision_cfg.image_size;
      await tfjs.embedImages(pixels.subarray(0, s * s * 3), 1); // warm-up: tfjs' first calls keep a few tensors
      await tfjs.embedTexts(ids, n, length);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        await tfjs.embedImages(pixels, expected.images.shape_nchw[0]);
        await tfjs.embedTexts(ids, n, length);
        await tfjs.embedTexts(ids.slice(0, length - 1), 1, length - 1);
      }
      assert.equal(tf.memory().numTensors, before);
    });

    it("reject bad inputs with one-line errors naming the argument", async () => {
      const s = clip.config.vision_cfg.image_size;
      const ctx = clip.config.text_cfg.context_length;
      const vocab = clip.config.text_cfg.vocab_size;
      for (const e of [tfjs, onnx] as EmbeddingEngine[]) {
        await rejectsOneLine(e.embedImages(new Float32Array(s * s * 3), 2), new RegExp(`${e.name} engine embedImages: pixels holds ${s * s * 3} values, expected`));
        await rejectsOneLine(e.embedImages(new Float64Array(s * s * 3) as never, 1), /pixels must be a Float32Array/);
        await rejectsOneLine(e.embedImages(new Float32Array(0), -1), /n must be an integer >= 0/);
        await rejectsOneLine(e.embedTexts(new Int32Array(ctx + 1), 1, ctx + 1), new RegExp(`length must be an integer in \\[1, ${ctx}\\]`));
        await rejectsOneLine(e.embedTexts(new Int32Array(4), 1, 3), /ids holds 4 values, expected n \* length = 3/);
        const bad = new Int32Array(2 * ctx);
        bad[ctx + 2] = vocab;
        await rejectsOneLine(e.embedTexts(bad, 2, ctx), new RegExp(`ids\\[1, 2\\] = ${vocab} is outside the vocabulary \\[0, ${vocab}\\)`));
        await rejectsOneLine(e.embedTexts(Array.from(bad) as never, 2, ctx), /ids must be an Int32Array/);
        assert.equal((await e.embedImages(new Float32Array(0), 0)).length, 0);
        assert.equal((await e.embedTexts(new Int32Array(0), 0, 1)).length, 0);
      }
    });
  });
}

describe("onnx engine set-up", () => {
  let clip: Clip;
  before(async () => {
    clip = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
  });
  after(() => clip.dispose());

  it("says what to do when onnxruntime-node is missing, and auto falls back to tfjs", async () => {
    assert.throws(
      () => loadOnnxRuntime("onnxruntime-node-not-installed"),
      (e: unknown) =>
        e instanceof OnnxRuntimeUnavailableError &&
        !e.message.includes("\n") &&
        /needs onnxruntime-node-not-installed, which could not be loaded \(Cannot find module.*\); install it with `npm i onnxruntime-node` or use the tfjs engine/.test(e.message),
    );
    const auto = await createEngine(clip, "auto", { runtimeModule: "onnxruntime-node-not-installed" });
    assert.equal(auto.engine.name, "tfjs");
    assert.match(auto.reason, /^auto: the onnx engine needs .* using tfjs$/);
    await rejectsOneLine(createEngine(clip, "onnx", { runtimeModule: "onnxruntime-node-not-installed" }), /could not be loaded/);
    const real = await createEngine(clip, "auto", { threads: 1 });
    assert.equal(real.engine.name, "onnx");
    assert.match(real.reason, /^auto: onnxruntime-node, 1 intra-op thread$/);
    real.engine.dispose();
    assert.equal((await createEngine(clip, "tfjs")).engine.name, "tfjs");
    await rejectsOneLine(createEngine(clip, "gpu" as never), /engine must be one of auto, onnx, tfjs, got "gpu"/);
  });

  it("rejects bad options, bad directories and use after dispose", async () => {
    await rejectsOneLine(OnnxEngine.fromClip(clip, { threads: 0 }), /threads must be an integer >= 1, got 0/);
    await rejectsOneLine(OnnxEngine.fromClip(clip, { graphOptimizationLevel: "max" as never }), /graphOptimizationLevel must be one of/);
    const dir = tmpDir();
    await rejectsOneLine(OnnxEngine.fromDirectory(dir), /no config\.json/);
    exportClipOnnx(clip, dir);
    fs.writeFileSync(path.join(dir, "text_model.onnx"), "not a model");
    await rejectsOneLine(OnnxEngine.fromDirectory(dir), /onnxruntime could not load .*text_model\.onnx: /);
    fs.rmSync(path.join(dir, "vision_model.onnx"));
    await rejectsOneLine(OnnxEngine.fromDirectory(dir), /vision_model\.onnx is missing/);
    // A model over the in-memory limit (lowered here from 2 GiB) goes through external data in a temporary directory.
    const before = fs.readdirSync(require("node:os").tmpdir()).filter((f: string) => f.startsWith("cliplab-onnx-")).length;
    const made: string[] = [];
    const realFs = require("node:fs"); // the module object itself (an import namespace is read-only)
    const mkdtemp = realFs.mkdtempSync;
    realFs.mkdtempSync = (prefix: string) => (made.push(prefix), mkdtemp(prefix));
    let viaFiles: OnnxEngine;
    try {
      viaFiles = await OnnxEngine.fromClip(clip, { threads: 1, maxInlineBytes: 100_000 });
    } finally {
      realFs.mkdtempSync = mkdtemp;
    }
    assert.equal(made.length, 1, "one temporary export directory");
    assert.ok(relDiff(await viaFiles.embedImages(fixturePixels("tiny_vit"), 2), readExpected("tiny_vit").f64.image_features.data) < 1e-5);
    assert.equal(fs.readdirSync(require("node:os").tmpdir()).filter((f: string) => f.startsWith("cliplab-onnx-")).length, before, "temporary directory removed");
    viaFiles.dispose();
    const quiet = await OnnxEngine.fromClip(clip, { threads: 2, spinning: false, graphOptimizationLevel: "basic" });
    const pixels = fixturePixels("tiny_vit");
    assert.ok(relDiff(await quiet.embedImages(pixels, 2), readExpected("tiny_vit").f64.image_features.data) < 1e-5, "other session options, same features");
    quiet.dispose();
    const engine = await OnnxEngine.fromClip(clip, { threads: 1 });
    engine.dispose();
    await rejectsOneLine(engine.embedImages(new Float32Array(48 * 48 * 3), 1), /this engine has been disposed/);
  });
});
