/** Configs, presets and shapes: open_clip's format in, validated, with errors that say what is allowed. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ConfigError, validateConfig, visionHeads } from "../../src/model/config";
import { addModelConfig, getModelConfig, listModels, resolveModelConfig } from "../../src/model/registry";
import { Clip } from "../../src/model/clip";
import { clipParamSpecs } from "../../src/model/params";

describe("presets", () => {
  it("lists the OpenAI shapes and the small CPU presets", () => {
    const names = listModels();
    for (const n of ["RN50", "ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-Tiny-28", "RN-Tiny-32"]) assert.ok(names.includes(n), n);
  });

  it("are shape-exact: parameter counts equal OpenAI's released models", () => {
    // Counts of torch's model.parameters() for openai/CLIP's RN50, ViT-B/32, ViT-B/16, ViT-L/14.
    const expected: Record<string, number> = { RN50: 102_007_137, "ViT-B-32": 151_277_313, "ViT-B-16": 149_620_737, "ViT-L-14": 427_616_513 };
    for (const [name, count] of Object.entries(expected)) {
      const specs = clipParamSpecs(getModelConfig(name)).filter((s) => s.trainable);
      assert.equal(specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0), count, name);
    }
    assert.equal(visionHeads(getModelConfig("ViT-L-14")), 16);
    assert.equal(visionHeads(getModelConfig("RN50")), 32);
  });

  it("getModelConfig returns a copy; addModelConfig validates", () => {
    const a = getModelConfig("ViT-B-32");
    a.embed_dim = 7;
    assert.equal(getModelConfig("ViT-B-32").embed_dim, 512);
    assert.throws(() => getModelConfig("ViT-Z-99"), /unknown model "ViT-Z-99" \(known models: .*ViT-B-32/);
    const cfg = addModelConfig("test-custom", { ...getModelConfig("ViT-Tiny-28"), embed_dim: 96 });
    assert.equal(resolveModelConfig("test-custom").embed_dim, cfg.embed_dim);
    assert.throws(() => addModelConfig("bad", { embed_dim: 0 }), ConfigError);
  });
});

describe("validateConfig", () => {
  const base = () => structuredClone(getModelConfig("ViT-Tiny-28")) as any;

  it("fills open_clip defaults and accepts the model_cfg wrapper", () => {
    const cfg = validateConfig({ model_cfg: { embed_dim: 64, vision_cfg: { image_size: 32, layers: 1, width: 64, patch_size: 8 }, text_cfg: {} } });
    assert.equal(cfg.text_cfg.context_length, 77);
    assert.equal(cfg.vision_cfg.head_width, 64);
    assert.equal(cfg.quick_gelu, false);
  });

  const bad: [string, (c: any) => void, RegExp][] = [
    ["zero embed_dim", (c) => (c.embed_dim = 0), /config\.embed_dim = 0 is invalid: expected a positive integer/],
    ["patch not dividing the image", (c) => (c.vision_cfg.patch_size = 5), /vision_cfg\.patch_size = 5 .*divisor of vision_cfg\.image_size \(28\)/],
    ["text heads not dividing width", (c) => (c.text_cfg.heads = 3), /text_cfg\.heads = 3 .*divisor of text_cfg\.width \(64\)/],
    ["ResNet with a scalar depth", (c) => (c.vision_cfg.patch_size = null), /vision_cfg\.layers = 2 .*four block counts/],
    ["ResNet image not a multiple of 32", (c) => { c.vision_cfg.patch_size = null; c.vision_cfg.layers = [1, 1, 1, 1]; }, /image_size = 28 .*multiple of 32/],
    ["unsupported key", (c) => (c.vision_cfg.timm_model_name = "convnext"), /vision_cfg\.timm_model_name .* not supported .*supported keys: image_size/],
    ["quick_gelu not boolean", (c) => (c.quick_gelu = "yes"), /quick_gelu = "yes" is invalid: expected true or false/],
  ];
  for (const [label, mutate, message] of bad) {
    it(`rejects ${label} in one line`, () => {
      const c = base();
      mutate(c);
      assert.throws(() => validateConfig(c), (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, message);
        assert.ok(!err.message.includes("\n"));
        return true;
      });
    });
  }
});

describe("any embedding dimension", () => {
  for (const embed of [256, 512, 768, 1024]) {
    it(`embed_dim ${embed} gives [B, ${embed}] features from both towers`, async () => {
      await tf.setBackend("cpu");
      for (const preset of ["ViT-Tiny-28", "RN-Tiny-32"]) {
        const cfg = getModelConfig(preset);
        cfg.embed_dim = embed;
        const clip = Clip.create(cfg, { seed: 1 });
        const size = cfg.vision_cfg.image_size;
        const images = tf.randomNormal([2, size, size, 3], 0, 1, "float32", 3) as tf.Tensor4D;
        const tokens = tf.tensor2d([[49406, 320, 49407], [49406, 49407, 0]], undefined, "int32");
        const { logitsPerImage } = clip.forward(images, tokens);
        const img = clip.encodeImage(images);
        assert.deepEqual(img.shape, [2, embed]);
        assert.deepEqual(logitsPerImage.shape, [2, 2]);
        assert.ok(Array.from(logitsPerImage.dataSync()).every(Number.isFinite));
        tf.dispose([images, tokens, logitsPerImage, img]);
        clip.dispose();
      }
    });
  }
});

describe("seeded initialisation", () => {
  it("is reproducible and differs between seeds", () => {
    const a = Clip.create("ViT-Tiny-28", { seed: 5 }).stateDict();
    const b = Clip.create("ViT-Tiny-28", { seed: 5 }).stateDict();
    const c = Clip.create("ViT-Tiny-28", { seed: 6 }).stateDict();
    const pick = (s: typeof a) => s.find((t) => t.name === "visual.proj")!.data;
    assert.deepEqual(pick(a), pick(b));
    assert.notDeepEqual(pick(a), pick(c));
    assert.ok(Math.abs(a.find((t) => t.name === "logit_scale")!.data[0] - Math.log(1 / 0.07)) < 1e-6);
  });
});

describe("input checks", () => {
  it("name the tensor and the expected shape", () => {
    const clip = Clip.create("ViT-Tiny-28", { seed: 0 });
    const wrong = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
    assert.throws(() => clip.encodeImage(wrong), /pixels must be \[B, 28, 28, 3\] .*got \[1,32,32,3\]/);
    const long = tf.zeros([1, 17], "int32") as tf.Tensor2D;
    assert.throws(() => clip.encodeText(long), /tokens must be \[B, T\] with 1 <= T <= 16/);
    const outOfVocab = tf.tensor2d([[49406, 60000, 49407]], undefined, "int32");
    assert.throws(() => clip.encodeText(outOfVocab), /tokens\[0, 1\] = 60000 is outside the vocabulary \[0, 49408\)/);
    tf.dispose([wrong, long, outOfVocab]);
    clip.dispose();
    assert.throws(() => clip.encodeImage(wrong), /disposed/);
  });
});
