/**
 * The ONNX writer (src/io/onnx/): protobuf wire bytes against the encoding guide's examples,
 * the exported graphs' structure (opset 17, standard operators, names and dynamic shapes), the
 * round trip through onnxruntime-node on the reference fixtures (outputs equal cliplab's and
 * OpenAI's to 1e-5 relative), exact GELU, external data with a lowered threshold, and bad inputs.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import * as tf from "@tensorflow/tfjs";
import { Clip, TensorSource } from "../../src/model/clip";
import { loadCheckpoint } from "../../src/io/checkpoint";
import { MessageWriter, readFields, readPackedVarints, toBytes } from "../../src/io/onnx/protobuf";
import { buildClipOnnx, clipTensorSource, exportCheckpointOnnx, exportClipOnnx, readOnnxExportConfig } from "../../src/io/onnx/export_clip";
import { EXTERNAL_ALIGNMENT, serializeModel, writeModelFile } from "../../src/io/onnx/model_file";
import { inspectOnnx } from "../../src/io/onnx/inspect";
import { GraphBuilder, modelOf } from "../../src/io/onnx/graph";
import { modelTransform, validateConfig } from "../../src/model/config";
import { resolveTransform } from "../../src/image/transform";
import { FixtureModel, fixtureImages, fixturePath, fixtureTokens, readExpected, tmpDir, useBackend } from "../helpers/fixtures";
import { assertThrowsOneLine } from "../helpers/errors";

/** max|got - ref| / max|ref|: the "relative" of "equal to 1e-5 relative". */
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

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("protobuf wire format", () => {
  it("encodes the encoding guide's examples and negative int64s", () => {
    assert.equal(hex(toBytes(new MessageWriter().int(1, 150).finish())), "089601");
    assert.equal(hex(toBytes(new MessageWriter().string(2, "testing").finish())), "120774657374696e67");
    assert.equal(hex(toBytes(new MessageWriter().int(1, 300).finish())), "08ac02");
    assert.equal(hex(toBytes(new MessageWriter().int(3, -1).finish())), "18ffffffffffffffffff01");
    assert.equal(hex(toBytes(new MessageWriter().int(1, 2 ** 40).finish())), "08808080808020");
    assert.equal(hex(toBytes(new MessageWriter().float(2, 1).finish())), "150000803f");
    assert.equal(hex(toBytes(new MessageWriter().packedInts(4, [3, 270, 86942]).finish())), "2206038e029ea705");
    const inner = new MessageWriter().int(1, 150).finish();
    assert.equal(hex(toBytes(new MessageWriter().message(3, inner).finish())), "1a03089601");
  });

  it("reads back what it wrote, and produces lazy parts once, checking their length", () => {
    let produced = 0;
    const payload = new Uint8Array(1000).map((_, i) => i % 251);
    const lazy = { length: 1000, produce: () => (produced++, payload) };
    const msg = new MessageWriter().int(1, -5).bytes(2, lazy).packedInts(3, [1, 2 ** 33]).finish();
    assert.equal(produced, 0, "nothing produced before writing");
    const bytes = toBytes(msg);
    assert.equal(produced, 1);
    assert.equal(bytes.length, msg.length);
    const fields = readFields(bytes);
    assert.equal(BigInt.asIntN(64, fields[0].varint!), -5n);
    assert.deepEqual(fields[1].bytes, payload);
    assert.deepEqual(readPackedVarints(fields[2].bytes!), [1n, 2n ** 33n]);
    const liar = new MessageWriter().bytes(1, { length: 10, produce: () => new Uint8Array(9) }).finish();
    assert.throws(() => toBytes(liar), /produced 9 bytes, announced 10/);
    assert.throws(() => readFields(Uint8Array.of(0x0a, 0x05, 1)), /runs past the end/);
  });
});

const STANDARD_OPS = new Set([
  "Add", "ArgMax", "AveragePool", "BatchNormalization", "Concat", "Conv", "Erf", "Expand", "Gather", "GatherND", "Gemm", "Identity",
  "LayerNormalization", "MatMul", "Mul", "ReduceMean", "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Transpose",
]);

/** Every node reads graph inputs, initializers or earlier outputs (topological order), only standard ops. */
function assertWellFormed(bytes: Uint8Array, label: string): ReturnType<typeof inspectOnnx> {
  const o = inspectOnnx(bytes);
  assert.equal(o.irVersion, 8, label);
  assert.deepEqual(o.opsets, [{ domain: "", version: 17 }], label);
  assert.equal(o.producerName, "cliplab");
  const known = new Set([...o.inputs.map((i) => i.name), ...o.initializers.map((t) => t.name)]);
  for (const n of o.nodes) {
    assert.ok(STANDARD_OPS.has(n.opType) && n.domain === "", `${label}: ${n.opType} in domain "${n.domain}" is not a standard op we expect`);
    for (const i of n.inputs) assert.ok(known.has(i), `${label}: node ${n.name} reads ${i} before it exists`);
    for (const out of n.outputs) known.add(out);
  }
  for (const out of o.outputs) assert.ok(known.has(out.name), `${label}: output ${out.name} is never produced`);
  return o;
}

async function session(bytes: Uint8Array | string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes as never, { graphOptimizationLevel: "all", intraOpNumThreads: 1 });
}

function nchw(images: tf.Tensor4D): { data: Float32Array; dims: number[] } {
  const t = tf.transpose(images, [0, 3, 1, 2]);
  const out = { data: t.dataSync() as Float32Array, dims: t.shape };
  t.dispose();
  return out;
}

function int64(ids: ArrayLike<number>): BigInt64Array {
  return BigInt64Array.from(Array.from(ids), (v) => BigInt(v));
}

async function runVision(s: ort.InferenceSession, images: tf.Tensor4D): Promise<Float32Array> {
  const { data, dims } = nchw(images);
  return (await s.run({ pixel_values: new ort.Tensor("float32", data, dims) })).image_embeds.data as Float32Array;
}

async function runText(s: ort.InferenceSession, tokens: tf.Tensor2D): Promise<Float32Array> {
  return (await s.run({ input_ids: new ort.Tensor("int64", int64(tokens.dataSync()), tokens.shape) })).text_embeds.data as Float32Array;
}

before(() => useBackend("cpu"));

for (const model of ["tiny_vit", "tiny_rn"] as FixtureModel[]) {
  describe(`${model} exported to ONNX`, () => {
    const expected = readExpected(model);
    let clip: Clip;
    let vision: ort.InferenceSession;
    let text: ort.InferenceSession;
    let visionBytes: Uint8Array;
    let textBytes: Uint8Array;

    before(async () => {
      await useBackend("cpu");
      clip = await loadCheckpoint(fixturePath(`${model}.safetensors`));
      const models = buildClipOnnx(clip.config, clipTensorSource(clip));
      visionBytes = serializeModel(models.vision);
      textBytes = serializeModel(models.text);
      vision = await session(visionBytes);
      text = await session(textBytes);
    });

    it("is opset 17 with standard operators, named and shaped as transformers.js expects", () => {
      const size = clip.config.vision_cfg.image_size;
      const v = assertWellFormed(visionBytes, `${model} vision`);
      assert.deepEqual(v.inputs, [{ name: "pixel_values", elemType: 1, shape: ["batch", 3, size, size] }]);
      assert.deepEqual(v.outputs, [{ name: "image_embeds", elemType: 1, shape: ["batch", clip.config.embed_dim] }]);
      const t = assertWellFormed(textBytes, `${model} text`);
      assert.deepEqual(t.inputs, [{ name: "input_ids", elemType: 7, shape: ["batch", "sequence"] }]);
      assert.deepEqual(t.outputs, [{ name: "text_embeds", elemType: 1, shape: ["batch", clip.config.embed_dim] }]);
      assert.ok(t.nodes.some((n) => n.opType === "LayerNormalization"));
      assert.equal(clip.tower === "ModifiedResNet", v.nodes.some((n) => n.opType === "BatchNormalization"));
      for (const init of [...v.initializers, ...t.initializers]) assert.ok(init.rawBytes !== undefined && !init.external, `${init.name} inline`);
      assert.deepEqual(JSON.parse(v.metadata.cliplab_config), JSON.parse(JSON.stringify(clip.config)));
    });

    it("gives cliplab's and OpenAI's image features (batch 1 and all) to 1e-5 relative", async () => {
      const images = fixtureImages(model);
      const ours = clip.encodeImage(images);
      const all = await runVision(vision, images);
      assertRel(all, ours.dataSync(), `${model} image vs cliplab`);
      assertRel(all, expected.f64.image_features.data, `${model} image vs OpenAI f64`);
      const one = tf.slice(images, [1, 0, 0, 0], [1, -1, -1, -1]);
      const dim = clip.config.embed_dim;
      assertRel(await runVision(vision, one), ours.dataSync().subarray(dim, 2 * dim), `${model} image batch 1`);
      tf.dispose([images, ours, one]);
    });

    it("gives cliplab's and OpenAI's text features at several sequence lengths, batch 1 and all", async () => {
      const tokens = fixtureTokens(model);
      const ours = clip.encodeText(tokens);
      const full = await runText(text, tokens);
      assertRel(full, ours.dataSync(), `${model} text vs cliplab`);
      assertRel(full, expected.f64.text_features.data, `${model} text vs OpenAI f64`);
      const eot = expected.texts.eot_index_argmax as number[];
      const dim = clip.config.embed_dim;
      // Shorter sequences: the rows whose end-of-text token fits, cut at several lengths.
      for (const length of [Math.max(...eot.filter((e) => e < tokens.shape[1] - 2)) + 1, tokens.shape[1] - 1]) {
        const rows = eot.map((e, i) => (e < length ? i : -1)).filter((i) => i >= 0);
        const cut = tf.tidy(() => tf.slice(tf.gather(tokens, rows), [0, 0], [rows.length, length]) as tf.Tensor2D);
        const got = await runText(text, cut);
        const ref = Float32Array.from(rows.flatMap((r) => Array.from(ours.dataSync().subarray(r * dim, (r + 1) * dim))));
        assertRel(got, ref, `${model} text length ${length}`);
        const single = tf.slice(cut, [0, 0], [1, length]) as tf.Tensor2D;
        assertRel(await runText(text, single), ref.subarray(0, dim), `${model} text length ${length} batch 1`);
        tf.dispose([cut, single]);
      }
      tf.dispose([tokens, ours]);
    });

    it("is the same bytes whether exported from the checkpoint file or from the Clip", () => {
      const dirA = tmpDir();
      const dirB = tmpDir();
      exportCheckpointOnnx(fixturePath(`${model}.safetensors`), dirA);
      exportClipOnnx(clip, dirB);
      for (const f of ["vision_model.onnx", "text_model.onnx", "config.json"]) {
        assert.ok(fs.readFileSync(path.join(dirA, f)).equals(fs.readFileSync(path.join(dirB, f))), f);
      }
      assert.deepEqual(fs.readFileSync(path.join(dirA, "vision_model.onnx")), Buffer.from(visionBytes));
      const { config, clipConfig } = readOnnxExportConfig(dirA);
      const { preprocess_cfg, ...arch } = clipConfig;
      assert.deepEqual(arch, clip.config, "the architecture round-trips");
      assert.deepEqual(resolveTransform(clipConfig.vision_cfg.image_size, preprocess_cfg), modelTransform(clip.config), "and the preprocessing");
      assert.equal(config.image_size, clip.config.vision_cfg.image_size);
      assert.equal(config.context_length, clip.config.text_cfg.context_length);
      assert.ok(Math.abs(config.logit_scale - expected.logit_scale_exp_f32) < 1e-4);
      assert.deepEqual(config.preprocess_cfg.mean, expected.images.mean);
      assert.deepEqual(config.preprocess_cfg.std, expected.images.std);
      assert.equal(config.sot_token_id, model === "tiny_vit" ? 49406 : undefined, "token ids only for CLIP's own vocabulary");
      // The config.json doubles as an open_clip config for cliplab's checkpoint loader.
      assert.deepEqual(validateConfig(JSON.parse(fs.readFileSync(path.join(dirA, "config.json"), "utf8"))), clipConfig);
    });
  });
}

describe("exact GELU and other towers (random weights)", () => {
  for (const preset of ["ViT-Tiny-28", "RN-Micro-32"]) {
    it(`${preset} (quick_gelu false) matches cliplab to 1e-5 relative`, async () => {
      const clip = Clip.create(preset, { seed: 3 });
      try {
        assert.equal(clip.config.quick_gelu, false);
        const models = buildClipOnnx(clip.config, clipTensorSource(clip));
        const vb = serializeModel(models.vision);
        const tb = serializeModel(models.text);
        assert.ok(inspectOnnx(tb).nodes.some((n) => n.opType === "Erf"), "exact GELU uses Erf");
        const s = clip.config.vision_cfg.image_size;
        const ctx = clip.config.text_cfg.context_length;
        const images = tf.randomNormal([3, s, s, 3], 0, 1, "float32", 5) as tf.Tensor4D;
        const ids = new Int32Array(3 * ctx);
        for (let r = 0; r < 3; r++) {
          const eot = [ctx - 1, 4, 1][r];
          ids[r * ctx] = 49406;
          for (let t = 1; t < eot; t++) ids[r * ctx + t] = 100 + 37 * t + r;
          ids[r * ctx + eot] = 49407;
        }
        const tokens = tf.tensor2d(ids, [3, ctx], "int32");
        const ourImages = clip.encodeImage(images);
        const ourTexts = clip.encodeText(tokens);
        assertRel(await runVision(await session(vb), images), ourImages.dataSync(), `${preset} images`);
        assertRel(await runText(await session(tb), tokens), ourTexts.dataSync(), `${preset} texts`);
        tf.dispose([images, tokens, ourImages, ourTexts]);
      } finally {
        clip.dispose();
      }
    });
  }
});

describe("external data", () => {
  it("moves every tensor of 1 KiB or more to <model>_data at page-aligned offsets, and onnxruntime reads it", async () => {
    const clip = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
    const dir = tmpDir();
    try {
      const models = buildClipOnnx(clip.config, clipTensorSource(clip));
      const inlineFile = path.join(dir, "inline.onnx");
      const inline = writeModelFile(inlineFile, models.vision); // default threshold: stays inline
      assert.equal(inline.dataFile, undefined);
      // A threshold lowered under the model's size (2 GiB in real use) sends the weights out.
      const file = path.join(dir, "vision_model.onnx");
      const written = writeModelFile(file, models.vision, { maxInlineBytes: 100_000 });
      assert.equal(written.dataFile, `${file}_data`);
      assert.equal(fs.statSync(written.dataFile!).size, written.dataBytes);
      assert.ok(written.bytes < 40_000, `the model file keeps only the graph (${written.bytes} bytes)`);
      const outline = assertWellFormed(fs.readFileSync(file), "external vision");
      const external = outline.initializers.filter((t) => t.external);
      assert.ok(external.length >= 8);
      const data = fs.readFileSync(written.dataFile!);
      const source = clipTensorSource(clip);
      for (const t of outline.initializers) {
        const bytes = t.dims.reduce((a, b) => a * b, 1) * (t.dataType === 7 ? 8 : 4);
        if (!t.external) {
          assert.ok(bytes < 1024 && t.rawBytes === bytes, `${t.name} (${bytes} bytes) stays inline`);
          continue;
        }
        assert.equal(t.external.location, "vision_model.onnx_data");
        const offset = Number(t.external.offset);
        assert.equal(offset % EXTERNAL_ALIGNMENT, 0, `${t.name} offset ${offset} aligned`);
        assert.equal(Number(t.external.length), bytes);
        if (t.name === "visual.positional_embedding") {
          const stored = new Float32Array(data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + bytes));
          assert.deepEqual(stored, source.read(t.name), "the bytes at the offset are the tensor");
        }
      }
      const images = fixtureImages("tiny_vit");
      const ref = clip.encodeImage(images);
      assertRel(await runVision(await session(file), images), ref.dataSync(), "external data features");
      // Back to inline: the stale data file goes.
      writeModelFile(file, models.vision);
      assert.equal(fs.existsSync(`${file}_data`), false);
      assert.ok(!fs.readdirSync(dir).some((f) => f.includes(".tmp-")), "no temporary files left");
      tf.dispose([images, ref]);
    } finally {
      clip.dispose();
    }
  });

  it("refuses a model over protobuf's 2 GiB limit in memory, without reading its weights", () => {
    const g = new GraphBuilder("huge");
    let reads = 0;
    const x = g.input("x", "float32", [1, 1]);
    const w = g.initializer("w", "float32", [1, 600_000_000], () => (reads++, new Float32Array(0)));
    g.output(g.node("MatMul", [x, w]), "y", "float32", [1, 600_000_000]);
    const model = modelOf(g.build(), { producerVersion: "test" });
    assertThrowsOneLine(() => serializeModel(model), /2\.\d+ GiB, over protobuf's 2 GiB limit: write it to a file with external data/);
    assertThrowsOneLine(() => writeModelFile(path.join(tmpDir(), "m.onnx"), model, { externalData: "never" }), /over protobuf's 2 GiB limit/);
    assert.equal(reads, 0);
  });
});

describe("bad inputs", () => {
  it("names the tensor that is missing or misshapen, on one line", async () => {
    const clip = await loadCheckpoint(fixturePath("tiny_rn.safetensors"));
    try {
      const good = clipTensorSource(clip);
      const without = (skip: string): TensorSource => ({
        names: () => [...good.names()].filter((n) => n !== skip),
        shape: (n) => (n === skip ? undefined : good.shape(n)),
        read: good.read,
      });
      assertThrowsOneLine(() => buildClipOnnx(clip.config, without("visual.attnpool.q_proj.weight")), /missing tensor visual\.attnpool\.q_proj\.weight/);
      const misshapen: TensorSource = { ...good, shape: (n) => (n === "text_projection" ? [1, 2] : good.shape(n)) };
      assertThrowsOneLine(() => buildClipOnnx(clip.config, misshapen), /text_projection has shape \[1,2\] but the config needs \[40,20\]/);
      const other = Clip.create("RN-Micro-32");
      try {
        assertThrowsOneLine(() => buildClipOnnx(other.config, good), /ONNX export: (missing|unexpected) tensor|has shape/);
      } finally {
        other.dispose();
      }
    } finally {
      clip.dispose();
    }
  });

  it("rejects files that are not safetensors checkpoints or exports", () => {
    const dir = tmpDir();
    assertThrowsOneLine(() => exportCheckpointOnnx(path.join(dir, "model.pt"), dir), /model\.pt: expected a \.safetensors checkpoint/);
    assertThrowsOneLine(() => exportCheckpointOnnx(path.join(dir, "absent.safetensors"), dir), /absent\.safetensors/);
    assertThrowsOneLine(() => readOnnxExportConfig(dir), /no config\.json \(not a cliplab ONNX export/);
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ model_type: "clip" }));
    assertThrowsOneLine(() => readOnnxExportConfig(dir), /format is undefined, expected "cliplab-onnx"/);
    assertThrowsOneLine(() => writeModelFile(path.join(dir, "x.onnx"), modelOf(new GraphBuilder("g").build(), { producerVersion: "t" })), /has no outputs/);
  });
});
