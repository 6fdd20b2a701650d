/**
 * CLIP model configuration in open_clip's model-config format (`embed_dim`, `vision_cfg`,
 * `text_cfg`), validated and filled with defaults where it enters the toolkit.
 * https://github.com/mlfoundations/open_clip/tree/main/src/open_clip/model_configs
 */
import { resolveTransform, type ImageTransform, type PreprocessCfg } from "../image/transform";

export interface VisionConfig {
  /** Input side in pixels; images are square. */
  image_size: number;
  /** A number: ViT depth. Four numbers: blocks per stage of a ModifiedResNet. */
  layers: number | [number, number, number, number];
  /** ViT width, or the ResNet stem width (the attention pool then works at width * 32). */
  width: number;
  /** ViT patch side; null selects the ModifiedResNet tower. */
  patch_size: number | null;
  /** Channels per attention head; heads = width / head_width (ResNet: width * 32 / head_width). */
  head_width: number;
  /** MLP hidden size as a multiple of the width (ViT only). */
  mlp_ratio: number;
}

export interface TextConfig {
  context_length: number;
  vocab_size: number;
  width: number;
  heads: number;
  layers: number;
  mlp_ratio: number;
}

export interface ClipConfig {
  /** Size of the shared embedding space. */
  embed_dim: number;
  /** QuickGELU `x * sigmoid(1.702 x)` as in OpenAI's weights; false selects exact GELU. */
  quick_gelu: boolean;
  vision_cfg: VisionConfig;
  text_cfg: TextConfig;
  /**
   * How images are prepared for this model (open_clip's preprocess_cfg); absent: OpenAI's
   * transform (shortest-side bicubic resize, centre crop, CLIP mean/std). See `modelTransform`.
   */
  preprocess_cfg?: PreprocessCfg;
}

export type ClipConfigInput = {
  embed_dim?: number;
  quick_gelu?: boolean;
  vision_cfg?: Partial<VisionConfig>;
  text_cfg?: Partial<TextConfig>;
  [extra: string]: unknown;
};

export type VisionTower = "VisionTransformer" | "ModifiedResNet";

export function visionTower(cfg: ClipConfig): VisionTower {
  return cfg.vision_cfg.patch_size === null ? "ModifiedResNet" : "VisionTransformer";
}

export function visionHeads(cfg: ClipConfig): number {
  const v = cfg.vision_cfg;
  return visionTower(cfg) === "ModifiedResNet" ? (v.width * 32) / v.head_width : v.width / v.head_width;
}

const VISION_DEFAULTS: Omit<VisionConfig, "image_size" | "layers" | "width" | "patch_size"> = {
  head_width: 64,
  mlp_ratio: 4,
};
const TEXT_DEFAULTS: TextConfig = {
  context_length: 77,
  vocab_size: 49408,
  width: 512,
  heads: 8,
  layers: 12,
  mlp_ratio: 4,
};

const TOP_KEYS = ["embed_dim", "quick_gelu", "vision_cfg", "text_cfg", "preprocess_cfg"];
const VISION_KEYS = ["image_size", "layers", "width", "patch_size", "head_width", "mlp_ratio"];
const TEXT_KEYS = ["context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"];

/**
 * open_clip keys that do not change the architecture we build when they hold their default
 * (or null/false). Anything else we do not know is an error rather than a silent mismatch.
 */
const IGNORABLE: Record<string, unknown[]> = {
  custom_text: [true, false],
  cast_dtype: ["fp16", "bf16", "fp32"],
  timm_pool: ["avg", ""],
  timm_proj: ["linear"],
  hf_model_pretrained: [true],
  patch_dropout: [0],
  pool_type: ["tok", "argmax"],
  proj_type: ["linear"],
  pad_id: [0],
  no_causal_mask: [],
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

function fail(field: string, value: unknown, expected: string): never {
  throw new ConfigError(`config.${field} = ${JSON.stringify(value)} is invalid: expected ${expected}`);
}

function positiveInt(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) fail(field, value, "a positive integer");
  return value;
}

function positiveNumber(field: string, value: unknown): number {
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) fail(field, value, "a positive number");
  return value;
}

function checkKeys(section: string, obj: Record<string, unknown>, known: string[]): void {
  for (const [key, value] of Object.entries(obj)) {
    if (known.includes(key)) continue;
    const allowed = IGNORABLE[key];
    if (allowed && allowed.some((a) => a === value)) continue;
    if (value === null || value === false || value === undefined) continue;
    const where = section ? `${section}.${key}` : key;
    throw new ConfigError(
      `config.${where} = ${JSON.stringify(value)} is not supported by cliplab (supported keys: ${known.join(", ")})`,
    );
  }
}

/**
 * Fills defaults and checks every field. Accepts open_clip's `open_clip_config.json` wrapper
 * (`{model_cfg: {...}}`) as well as a bare model config.
 */
export function validateConfig(input: unknown): ClipConfig {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new ConfigError(`config must be an object with embed_dim, vision_cfg and text_cfg, got ${JSON.stringify(input)}`);
  }
  let raw = input as Record<string, unknown>;
  if (raw.model_cfg && typeof raw.model_cfg === "object") {
    // open_clip_config.json: {model_cfg, preprocess_cfg}; the preprocessing travels with the model.
    const wrapped = raw.preprocess_cfg;
    raw = raw.model_cfg as Record<string, unknown>;
    if (wrapped !== undefined && raw.preprocess_cfg === undefined) raw = { ...raw, preprocess_cfg: wrapped };
  }
  checkKeys("", raw, TOP_KEYS);
  const embed_dim = positiveInt("embed_dim", raw.embed_dim);
  const quick_gelu = raw.quick_gelu === undefined ? false : raw.quick_gelu;
  if (typeof quick_gelu !== "boolean") fail("quick_gelu", quick_gelu, "true or false");

  if (!raw.vision_cfg || typeof raw.vision_cfg !== "object") fail("vision_cfg", raw.vision_cfg, "an object");
  if (!raw.text_cfg || typeof raw.text_cfg !== "object") fail("text_cfg", raw.text_cfg, "an object");
  const rv = raw.vision_cfg as Record<string, unknown>;
  const rt = raw.text_cfg as Record<string, unknown>;
  checkKeys("vision_cfg", rv, VISION_KEYS);
  checkKeys("text_cfg", rt, TEXT_KEYS);

  const patch_size = rv.patch_size === undefined ? null : rv.patch_size;
  let layers: VisionConfig["layers"];
  if (patch_size === null) {
    if (!Array.isArray(rv.layers) || rv.layers.length !== 4) {
      fail("vision_cfg.layers", rv.layers, "four block counts [l1, l2, l3, l4] for a ModifiedResNet (patch_size null)");
    }
    layers = rv.layers.map((n, i) => positiveInt(`vision_cfg.layers[${i}]`, n)) as VisionConfig["layers"];
  } else {
    layers = positiveInt("vision_cfg.layers", rv.layers);
    positiveInt("vision_cfg.patch_size", patch_size);
  }
  const vision: VisionConfig = {
    image_size: positiveInt("vision_cfg.image_size", rv.image_size),
    layers,
    width: positiveInt("vision_cfg.width", rv.width),
    patch_size: patch_size as number | null,
    head_width: positiveInt("vision_cfg.head_width", rv.head_width ?? VISION_DEFAULTS.head_width),
    mlp_ratio: positiveNumber("vision_cfg.mlp_ratio", rv.mlp_ratio ?? VISION_DEFAULTS.mlp_ratio),
  };
  const text: TextConfig = {
    context_length: positiveInt("text_cfg.context_length", rt.context_length ?? TEXT_DEFAULTS.context_length),
    vocab_size: positiveInt("text_cfg.vocab_size", rt.vocab_size ?? TEXT_DEFAULTS.vocab_size),
    width: positiveInt("text_cfg.width", rt.width ?? TEXT_DEFAULTS.width),
    heads: positiveInt("text_cfg.heads", rt.heads ?? TEXT_DEFAULTS.heads),
    layers: positiveInt("text_cfg.layers", rt.layers ?? TEXT_DEFAULTS.layers),
    mlp_ratio: positiveNumber("text_cfg.mlp_ratio", rt.mlp_ratio ?? TEXT_DEFAULTS.mlp_ratio),
  };
  const cfg: ClipConfig = { embed_dim, quick_gelu, vision_cfg: vision, text_cfg: text };
  if (raw.preprocess_cfg !== undefined && raw.preprocess_cfg !== null) {
    try {
      resolveTransform(vision.image_size, raw.preprocess_cfg as PreprocessCfg);
    } catch (err) {
      throw new ConfigError(`config.${(err as Error).message}`);
    }
    cfg.preprocess_cfg = structuredClone(raw.preprocess_cfg as PreprocessCfg);
  }
  checkConsistency(cfg);
  return cfg;
}

function checkConsistency(cfg: ClipConfig): void {
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  if (t.width % t.heads !== 0) {
    fail("text_cfg.heads", t.heads, `a divisor of text_cfg.width (${t.width})`);
  }
  if (t.context_length < 2) fail("text_cfg.context_length", t.context_length, "at least 2 (start and end tokens)");
  if (v.patch_size === null) {
    if (v.image_size % 32 !== 0) {
      fail("vision_cfg.image_size", v.image_size, "a multiple of 32 for a ModifiedResNet (it downsamples 32x)");
    }
    if (v.width % 2 !== 0) fail("vision_cfg.width", v.width, "an even number (the stem starts at width / 2)");
    if ((v.width * 32) % v.head_width !== 0) {
      fail("vision_cfg.head_width", v.head_width, `a divisor of the attention-pool width ${v.width * 32}`);
    }
  } else {
    if (v.image_size % v.patch_size !== 0) {
      fail("vision_cfg.patch_size", v.patch_size, `a divisor of vision_cfg.image_size (${v.image_size})`);
    }
    if (v.width % v.head_width !== 0) {
      fail("vision_cfg.head_width", v.head_width, `a divisor of vision_cfg.width (${v.width})`);
    }
  }
}

/** The image transform the model expects: its preprocess_cfg resolved at its image size. */
export function modelTransform(cfg: ClipConfig): ImageTransform {
  return resolveTransform(cfg.vision_cfg.image_size, cfg.preprocess_cfg ?? {});
}

/** The config as open_clip writes it (plain JSON, no derived fields). */
export function configToJson(cfg: ClipConfig): Record<string, unknown> {
  return JSON.parse(JSON.stringify(cfg));
}

/** OpenAI's `CLIP(...)` constructor arguments, as stored in the reference safetensors metadata. */
export interface OpenAIClipArgs {
  embed_dim: number;
  image_resolution: number;
  vision_layers: number | number[];
  vision_width: number;
  vision_patch_size: number | null;
  context_length: number;
  vocab_size: number;
  transformer_width: number;
  transformer_heads: number;
  transformer_layers: number;
  vision_heads?: number;
}

export function fromOpenAIArgs(args: OpenAIClipArgs, quickGelu = true): ClipConfig {
  const isResNet = Array.isArray(args.vision_layers);
  let headWidth = 64;
  if (args.vision_heads !== undefined && args.vision_heads > 0) {
    headWidth = isResNet ? (args.vision_width * 32) / args.vision_heads : args.vision_width / args.vision_heads;
  }
  return validateConfig({
    embed_dim: args.embed_dim,
    quick_gelu: quickGelu,
    vision_cfg: {
      image_size: args.image_resolution,
      layers: args.vision_layers as VisionConfig["layers"],
      width: args.vision_width,
      patch_size: isResNet ? null : args.vision_patch_size,
      head_width: headWidth,
    },
    text_cfg: {
      context_length: args.context_length,
      vocab_size: args.vocab_size,
      width: args.transformer_width,
      heads: args.transformer_heads,
      layers: args.transformer_layers,
    },
  });
}

export function toOpenAIArgs(cfg: ClipConfig): Required<OpenAIClipArgs> {
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  return {
    embed_dim: cfg.embed_dim,
    image_resolution: v.image_size,
    vision_layers: v.layers,
    vision_width: v.width,
    vision_patch_size: v.patch_size,
    context_length: t.context_length,
    vocab_size: t.vocab_size,
    transformer_width: t.width,
    transformer_heads: t.heads,
    transformer_layers: t.layers,
    vision_heads: visionHeads(cfg),
  };
}
