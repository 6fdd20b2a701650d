/**
 * Checkpoints: save/load round trips in OpenAI and Hugging Face naming, config resolution, and
 * bad files that must fail in one line, naming the file, without leaving tensors behind.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { loadCheckpoint, readCheckpointConfig, saveCheckpoint, writeHfConfig } from "../../src/io/checkpoint";
import { openSafetensors, writeSafetensors } from "../../src/io/safetensors";
import { configToJson, modelTransform, type ClipConfig } from "../../src/model/config";
import { openClipConfigJson } from "../../src/io/checkpoint_config";
import { clipParamSpecs } from "../../src/model/params";
import { Clip } from "../../src/model/clip";
import { getModelConfig } from "../../src/model/registry";
import { fixtureImages, fixturePath, fixtureTokens, tmpDir } from "../helpers/fixtures";

/** A config without its preprocessing (what formats that carry no preprocess_cfg can give back). */
function architecture(cfg: ClipConfig): ClipConfig {
  const { preprocess_cfg: _p, ...rest } = cfg;
  return rest;
}

function outputs(clip: Clip, size: number): Float32Array[] {
  return tf.tidy(() => {
    const images = tf.randomUniform([2, size, size, 3], -1, 1, "float32", 11) as tf.Tensor4D;
    const tokens = tf.tensor2d([[49406, 320, 1125, 49407, 0], [49406, 2368, 49407, 0, 0]], undefined, "int32");
    return [clip.encodeImage(images).dataSync() as Float32Array, clip.encodeText(tokens).dataSync() as Float32Array];
  });
}

/** Copies every tensor of a safetensors file into memory, optionally changed. */
function readAll(file: string): { name: string; shape: number[]; data: Float32Array }[] {
  const r = openSafetensors(file);
  const out = [...r.entries.values()].map((e) => ({ name: e.name, shape: e.shape, data: r.readFloat32(e.name) }));
  r.close();
  return out;
}

before(async () => {
  await tf.setBackend("cpu");
});

describe("round trip", () => {
  for (const preset of ["ViT-Tiny-28", "RN-Tiny-32"]) {
    it(`${preset}: save then load gives bit-identical outputs and config`, async () => {
      const dir = tmpDir();
      const file = path.join(dir, "model.safetensors");
      const clip = Clip.create(preset, { seed: 3 });
      await saveCheckpoint(clip, file);
      assert.deepEqual(fs.readdirSync(dir), ["model.safetensors"], "no temporary file left behind");
      const loaded = await loadCheckpoint(file);
      assert.deepEqual(loaded.config, clip.config);
      const size = clip.config.vision_cfg.image_size;
      assert.deepEqual(outputs(loaded, size), outputs(clip, size));
      clip.dispose();
      loaded.dispose();
    });
  }

  it("Hugging Face naming loads to the same outputs as OpenAI naming", async () => {
    const dir = tmpDir();
    const reference = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
    const hfFile = path.join(dir, "hf.safetensors");
    await saveCheckpoint(reference, hfFile, { naming: "hf" });
    const names = [...openSafetensors(hfFile).entries.keys()];
    assert.ok(names.includes("vision_model.encoder.layers.0.self_attn.q_proj.weight"));
    assert.ok(names.includes("vision_model.pre_layrnorm.weight"));
    assert.ok(names.includes("visual_projection.weight"));
    assert.ok(!names.some((n) => n.includes("in_proj")));
    const fromHf = await loadCheckpoint(hfFile);
    const images = fixtureImages("tiny_vit");
    const tokens = fixtureTokens("tiny_vit");
    const a = reference.forward(images, tokens).logitsPerImage.dataSync();
    const b = fromHf.forward(images, tokens).logitsPerImage.dataSync();
    assert.deepEqual(Array.from(b), Array.from(a));
    tf.dispose([images, tokens]);
    reference.dispose();
    fromHf.dispose();
  });

  it("a Hugging Face config.json beside the file is used, and ResNets refuse HF naming", async () => {
    const dir = tmpDir();
    const clip = Clip.create("ViT-Tiny-28", { seed: 4 });
    const file = path.join(dir, "model.safetensors");
    await saveCheckpoint(clip, file, { naming: "hf" });
    // Strip the metadata so that only config.json can tell the architecture.
    writeSafetensors(file, readAll(file));
    writeHfConfig(clip, path.join(dir, "config.json"));
    const { config, origin } = readCheckpointConfig(file);
    assert.equal(origin, "config.json");
    // config.json describes the architecture only (preprocessing lives in preprocessor_config.json).
    assert.deepEqual(config, architecture(clip.config));
    const rn = Clip.create("RN-Tiny-32", { seed: 4 });
    await assert.rejects(saveCheckpoint(rn, path.join(dir, "rn.safetensors"), { naming: "hf" }), /no ModifiedResNet tower/);
    clip.dispose();
    rn.dispose();
  });

  it("F16 and BF16 storage load within their precision", async () => {
    const dir = tmpDir();
    const clip = Clip.create("ViT-Tiny-28", { seed: 8 });
    const [img] = outputs(clip, 28);
    for (const dtype of ["F16", "BF16"] as const) {
      const file = path.join(dir, `${dtype}.safetensors`);
      await saveCheckpoint(clip, file, { dtype });
      const loaded = await loadCheckpoint(file);
      const [img2] = outputs(loaded, 28);
      const maxRef = Math.max(...Array.from(img).map(Math.abs));
      const maxDiff = Math.max(...Array.from(img).map((v, i) => Math.abs(v - img2[i])));
      assert.ok(maxDiff < (dtype === "F16" ? 2e-2 : 1e-1) * maxRef, `${dtype}: ${maxDiff} vs ${maxRef}`);
      loaded.dispose();
    }
    clip.dispose();
  });
});

describe("config resolution", () => {
  it("reads the reference fixtures' metadata (head counts that OpenAI's rule would get wrong)", () => {
    const { config, origin } = readCheckpointConfig(fixturePath("tiny_rn.safetensors"));
    assert.equal(origin, "metadata");
    assert.deepEqual(config.vision_cfg.layers, [1, 2, 1, 1]);
    assert.equal(config.text_cfg.heads, 5);
    assert.equal(config.vision_cfg.width * 32 / config.vision_cfg.head_width, 5);
    assert.equal(config.quick_gelu, true);
  });

  it("infers like OpenAI's build_model when nothing else says, and says when it cannot", async () => {
    const dir = tmpDir();
    const cfg = getModelConfig("ViT-Tiny-28");
    cfg.vision_cfg.head_width = 64;
    cfg.text_cfg.heads = 1;
    cfg.quick_gelu = true;
    const clip = Clip.create(cfg, { seed: 2 });
    const file = path.join(dir, "bare.safetensors");
    writeSafetensors(file, clip.stateDict());
    const { config, origin } = readCheckpointConfig(file);
    assert.equal(origin, "inferred");
    // Weights alone say nothing about preprocessing.
    assert.deepEqual(config, architecture(clip.config));
    const tiny = path.join(dir, "tiny.safetensors");
    writeSafetensors(tiny, readAll(fixturePath("tiny_vit.safetensors")));
    assert.throws(() => readCheckpointConfig(tiny), /tiny\.safetensors: cannot infer text heads for width 32 .*pass a config/);
    clip.dispose();
  });

  it("an explicit config argument wins", () => {
    const config = {
      embed_dim: 48,
      quick_gelu: false,
      vision_cfg: { image_size: 48, layers: 1, width: 128, patch_size: 16, head_width: 128 },
      text_cfg: { context_length: 20, vocab_size: 49408, width: 32, heads: 1, layers: 3 },
    };
    const resolved = readCheckpointConfig(fixturePath("tiny_vit.safetensors"), { config });
    assert.equal(resolved.origin, "argument");
    assert.equal(resolved.config.text_cfg.heads, 1);
    assert.equal(resolved.config.quick_gelu, false);
  });
});

describe("bad checkpoints", () => {
  const dir = tmpDir();
  const good = fixturePath("tiny_vit.safetensors");
  const tensors = () => readAll(good);
  const meta = () => openSafetensors(good).metadata;

  const cases: [string, () => string, RegExp, object?][] = [
    ["a truncated file", () => {
      const f = path.join(dir, "truncated.safetensors");
      fs.writeFileSync(f, fs.readFileSync(good).subarray(0, 5000));
      return f;
    }, /truncated\.safetensors: /],
    ["a missing tensor", () => {
      const f = path.join(dir, "missing.safetensors");
      writeSafetensors(f, tensors().filter((t) => t.name !== "visual.ln_post.bias"), meta());
      return f;
    }, /missing\.safetensors: missing tensor\(s\) for this config: visual\.ln_post\.bias/],
    ["an extra tensor", () => {
      const f = path.join(dir, "extra.safetensors");
      writeSafetensors(f, [...tensors(), { name: "visual.surprise", shape: [2], data: new Float32Array(2) }], meta());
      return f;
    }, /extra\.safetensors: unexpected tensor\(s\) for this config: visual\.surprise/],
    ["a shape that contradicts the config", () => {
      const f = path.join(dir, "shape.safetensors");
      writeSafetensors(f, tensors(), { ...meta(), embed_dim: "40" });
      return f;
    }, /shape\.safetensors: tensor text_projection has shape \[32,48\] but the config needs \[32,40\]/],
    ["a config with an impossible value", () => good, /tiny_vit\.safetensors: config\.vision_cfg\.patch_size = 7 is invalid/, {
      config: { embed_dim: 48, vision_cfg: { image_size: 48, layers: 1, width: 128, patch_size: 7 }, text_cfg: {} },
    }],
    ["a file that is not safetensors", () => {
      const f = path.join(dir, "notes.safetensors");
      fs.writeFileSync(f, "this is a text file, not a checkpoint at all");
      return f;
    }, /notes\.safetensors: /],
    ["a PyTorch pickle", () => path.join(dir, "model.pt"), /model\.pt: expected a \.safetensors checkpoint/],
  ];
  for (const [label, make, message, opts] of cases) {
    it(`${label}: one-line error naming the file, no tensors left behind`, async () => {
      const file = make();
      const before = tf.memory().numTensors;
      await assert.rejects(loadCheckpoint(file, opts as any), (err: Error) => {
        assert.match(err.message, message);
        assert.ok(!err.message.includes("\n"), err.message);
        return true;
      });
      assert.equal(tf.memory().numTensors, before);
    });
  }
});

describe("open_clip interop", () => {
  const fixtures = path.join(fixturePath("open_clip"));
  for (const file of fs.readdirSync(fixtures).filter((f) => f.endsWith(".state_dict.json"))) {
    const preset = file.replace(".state_dict.json", "");
    it(`${preset}: the tensors open_clip's CLIP has for our model_cfg are ours (names and shapes)`, () => {
      const fixture = JSON.parse(fs.readFileSync(path.join(fixtures, file), "utf8")) as { model_cfg: object; state_dict: [string, number[]][] };
      const config = getModelConfig(preset);
      // The fixture was made from what we write today.
      assert.deepEqual(openClipConfigJson(config).model_cfg, fixture.model_cfg);
      const theirs = new Map(fixture.state_dict.filter(([n]) => !n.endsWith(".num_batches_tracked")));
      const ours = new Map(clipParamSpecs(config).map((s) => [s.name, s.shape]));
      assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
      for (const [name, shape] of ours) assert.deepEqual(shape, theirs.get(name), name);
    });
  }

  it("saveCheckpoint writes open_clip_config.json split into model_cfg and preprocess_cfg, and it loads back exactly", async () => {
    for (const preset of ["RN-Tiny-32", "ViT-B-16"]) {
      const dir = tmpDir();
      const clip = Clip.create(preset, { seed: 1, init: "uniform" });
      await saveCheckpoint(clip, path.join(dir, "model.safetensors"), { openClipConfig: true });
      const oc = JSON.parse(fs.readFileSync(path.join(dir, "open_clip_config.json"), "utf8"));
      assert.deepEqual(Object.keys(oc.model_cfg).sort(), ["embed_dim", "quick_gelu", "text_cfg", "vision_cfg"]);
      assert.deepEqual(Object.keys(oc.preprocess_cfg).sort(), ["fill_color", "interpolation", "mean", "mode", "resize_mode", "size", "std"]);
      // open_clip knows shortest/longest/squash: our Fashion-MNIST "pad" is exported as shortest, the exact one kept aside.
      assert.ok(["shortest", "longest", "squash"].includes(oc.preprocess_cfg.resize_mode));
      const { config, origin } = readCheckpointConfig(dir);
      assert.equal(origin, "open_clip_config.json");
      assert.deepEqual(modelTransform(config), modelTransform(clip.config));
      assert.deepEqual(architecture(config), architecture(clip.config));
      if (clip.config.preprocess_cfg?.resize_mode === "pad") {
        assert.deepEqual(oc.cliplab_preprocess_cfg, clip.config.preprocess_cfg);
        assert.deepEqual(config.preprocess_cfg, clip.config.preprocess_cfg);
      }
      clip.dispose();
    }
    await assert.rejects(saveCheckpoint(Clip.create("ViT-Tiny-28"), path.join(tmpDir(), "m.safetensors"), { naming: "hf", openClipConfig: true }), /open_clip_config\.json goes with OpenAI names/);
  });

  it("an open_clip hub folder (open_clip_config.json + open_clip_model.safetensors) loads with its model_cfg and preprocess_cfg", async () => {
    const dir = tmpDir();
    const clip = Clip.create("ViT-Tiny-28", { seed: 9 });
    // open_clip's CustomTextCLIP names (`text.` prefix) in half precision, as hub folders often hold them.
    const tensors = clip.stateDict().map((t) => ({ ...t, name: /^(visual\.|logit_scale)/.test(t.name) ? t.name : `text.${t.name}`, dtype: "F16" as const }));
    writeSafetensors(path.join(dir, "open_clip_model.safetensors"), tensors, { format: "pt" });
    const { preprocess_cfg: _p, ...modelCfg } = configToJson(clip.config);
    const preprocess = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], interpolation: "bilinear", resize_mode: "squash" };
    fs.writeFileSync(path.join(dir, "open_clip_config.json"), JSON.stringify({ model_cfg: { ...modelCfg, custom_text: true }, preprocess_cfg: preprocess }));
    const loaded = await loadCheckpoint(dir);
    assert.deepEqual(architecture(loaded.config), architecture(clip.config));
    const t = modelTransform(loaded.config);
    assert.deepEqual([t.mean, t.std, t.interpolation, t.resizeMode], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], "bilinear", "squash"]);
    const [a, b] = [outputs(loaded, 28), outputs(clip, 28)];
    for (let k = 0; k < 2; k++) assert.ok(a[k].every((x, i) => Math.abs(x - b[k][i]) < 2e-2 * (1 + Math.abs(b[k][i]))), "F16 weights give the same features within half precision");
    assert.equal(readCheckpointConfig(dir).origin, "open_clip_config.json");
    loaded.dispose();
    clip.dispose();
    // A folder must say which weights: open_clip's names, else its only .safetensors file.
    const empty = tmpDir();
    fs.writeFileSync(path.join(empty, "open_clip_pytorch_model.bin"), "pickle");
    await assert.rejects(loadCheckpoint(empty), /^CheckpointError: .*: a folder with no \.safetensors file; expected one of open_clip_model\.safetensors, open_clip_pytorch_model\.safetensors, model\.safetensors \(PyTorch pickles such as open_clip_pytorch_model\.bin are not read/);
  });
});
