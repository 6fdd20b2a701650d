/**
 * Where a checkpoint's architecture comes from, in order: the caller's config, a config JSON
 * beside the file (open_clip's `open_clip_config.json`, Hugging Face's `config.json`), the
 * safetensors `__metadata__`, and last the weights themselves, inferred as OpenAI's
 * `build_model` does (https://github.com/openai/CLIP/blob/main/clip/model.py).
 *
 * open_clip's hub layout both ways: a folder holding `open_clip_config.json` (`{model_cfg,
 * preprocess_cfg}`) and `open_clip_model.safetensors` loads here (the folder is resolved to its
 * weights file as open_clip's `_find_checkpoint_in_dir` does), and `openClipConfigJson` writes
 * that config for a model trained here, with the model config and the preprocessing split as
 * open_clip's `create_model` reads them (src/open_clip/factory.py).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ClipConfig, ConfigError, OpenAIClipArgs, configToJson, fromOpenAIArgs, modelTransform, toOpenAIArgs, validateConfig, visionTower } from "../model/config";
import { transformToCfg, type PreprocessCfg } from "../image/transform";
import { resolveModelConfig } from "../model/registry";
import type { TensorSource } from "../model/clip";

export type ConfigOrigin = "argument" | "open_clip_config.json" | "config.json" | "metadata" | "inferred";

/** Hugging Face `CLIPConfig` (config.json) -> ours. Only the ViT tower exists there. */
export function fromHfConfig(hf: Record<string, any>): ClipConfig {
  const t = hf.text_config ?? {};
  const v = hf.vision_config ?? {};
  const textWidth = t.hidden_size ?? 512;
  const visionWidth = v.hidden_size ?? 768;
  const textHeads = t.num_attention_heads ?? 8;
  const visionHeads = v.num_attention_heads ?? 12;
  const textAct = t.hidden_act ?? "quick_gelu";
  const visionAct = v.hidden_act ?? "quick_gelu";
  if (textAct !== visionAct || !["quick_gelu", "gelu"].includes(textAct)) {
    throw new ConfigError(
      `config.json hidden_act must be "quick_gelu" or "gelu" and the same in both towers, got text ${textAct} / vision ${visionAct}`,
    );
  }
  return validateConfig({
    embed_dim: hf.projection_dim ?? 512,
    quick_gelu: textAct === "quick_gelu",
    vision_cfg: {
      image_size: v.image_size ?? 224,
      layers: v.num_hidden_layers ?? 12,
      width: visionWidth,
      patch_size: v.patch_size ?? 32,
      head_width: visionWidth / visionHeads,
      mlp_ratio: (v.intermediate_size ?? 3072) / visionWidth,
    },
    text_cfg: {
      context_length: t.max_position_embeddings ?? 77,
      vocab_size: t.vocab_size ?? 49408,
      width: textWidth,
      heads: textHeads,
      layers: t.num_hidden_layers ?? 12,
      mlp_ratio: (t.intermediate_size ?? 2048) / textWidth,
    },
  });
}

/** Our config -> Hugging Face `CLIPConfig` (ViT only). */
export function toHfConfig(cfg: ClipConfig): Record<string, unknown> {
  if (visionTower(cfg) !== "VisionTransformer") {
    throw new ConfigError("Hugging Face CLIPModel has no ModifiedResNet tower; save this model with OpenAI names");
  }
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  const act = cfg.quick_gelu ? "quick_gelu" : "gelu";
  return {
    architectures: ["CLIPModel"],
    model_type: "clip",
    projection_dim: cfg.embed_dim,
    logit_scale_init_value: 2.6592,
    text_config: {
      hidden_size: t.width,
      intermediate_size: Math.round(t.width * t.mlp_ratio),
      num_attention_heads: t.heads,
      num_hidden_layers: t.layers,
      max_position_embeddings: t.context_length,
      vocab_size: t.vocab_size,
      hidden_act: act,
      layer_norm_eps: 1e-5,
      projection_dim: cfg.embed_dim,
    },
    vision_config: {
      hidden_size: v.width,
      intermediate_size: Math.round(v.width * v.mlp_ratio),
      num_attention_heads: v.width / v.head_width,
      num_hidden_layers: v.layers,
      image_size: v.image_size,
      patch_size: v.patch_size,
      hidden_act: act,
      layer_norm_eps: 1e-5,
      projection_dim: cfg.embed_dim,
    },
  };
}

/** Metadata written into our safetensors: OpenAI's constructor args (JSON-encoded) and our config. */
export function configToMetadata(cfg: ClipConfig): Record<string, string> {
  const meta: Record<string, string> = { format: "pt" };
  for (const [k, v] of Object.entries(toOpenAIArgs(cfg))) meta[k] = JSON.stringify(v);
  meta.vision_tower = JSON.stringify(visionTower(cfg));
  meta.quick_gelu = JSON.stringify(cfg.quick_gelu);
  meta.open_clip_config = JSON.stringify(configToJson(cfg));
  return meta;
}

const OPENAI_ARG_KEYS = ["embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size", "context_length", "vocab_size", "transformer_width", "transformer_heads", "transformer_layers"];

/** Reads a config from safetensors metadata, or undefined if it holds none. */
export function configFromMetadata(meta: Record<string, string>): ClipConfig | undefined {
  const parse = (key: string): unknown => {
    try {
      return JSON.parse(meta[key]);
    } catch {
      throw new ConfigError(`metadata field ${key} is not valid JSON: ${JSON.stringify(meta[key]).slice(0, 80)}`);
    }
  };
  if (meta.open_clip_config !== undefined) return validateConfig(parse("open_clip_config"));
  if (!OPENAI_ARG_KEYS.every((k) => k in meta)) return undefined;
  const args: Record<string, unknown> = {};
  for (const k of [...OPENAI_ARG_KEYS, "vision_heads"]) if (k in meta) args[k] = parse(k);
  const quick = meta.quick_gelu === undefined ? true : parse("quick_gelu");
  if (typeof quick !== "boolean") throw new ConfigError(`metadata field quick_gelu must be true or false, got ${meta.quick_gelu}`);
  return fromOpenAIArgs(args as unknown as OpenAIClipArgs, quick);
}

function countIndices(names: string[], re: RegExp): number {
  const seen = new Set<string>();
  for (const n of names) {
    const m = re.exec(n);
    if (m) seen.add(m[1]);
  }
  return seen.size;
}

/** OpenAI's `build_model` inference from tensor shapes (OpenAI names). Heads: width / 64. */
export function inferConfig(source: TensorSource): ClipConfig {
  const names = [...source.names()];
  const shape = (n: string): readonly number[] => {
    const s = source.shape(n);
    if (!s) throw new ConfigError(`cannot infer the architecture: tensor ${n} is missing (pass a config)`);
    return s;
  };
  const isViT = names.includes("visual.proj");
  const transformerWidth = shape("ln_final.weight")[0];
  const transformerHeads = Math.floor(transformerWidth / 64);
  if (transformerHeads < 1) {
    throw new ConfigError(`cannot infer text heads for width ${transformerWidth} (OpenAI's rule width // 64 gives 0): pass a config`);
  }
  const common = {
    embed_dim: shape("text_projection")[1],
    context_length: shape("positional_embedding")[0],
    vocab_size: shape("token_embedding.weight")[0],
    transformer_width: transformerWidth,
    transformer_heads: transformerHeads,
    transformer_layers: countIndices(names, /^transformer\.resblocks\.(\d+)\./),
  };
  if (isViT) {
    const width = shape("visual.conv1.weight")[0];
    const patch = shape("visual.conv1.weight")[3];
    const grid = Math.round(Math.sqrt(shape("visual.positional_embedding")[0] - 1));
    return fromOpenAIArgs({
      ...common,
      image_resolution: patch * grid,
      vision_layers: countIndices(names, /^visual\.transformer\.resblocks\.(\d+)\./),
      vision_width: width,
      vision_patch_size: patch,
    });
  }
  const layers = [1, 2, 3, 4].map((b) => countIndices(names, new RegExp(`^visual\\.layer${b}\\.(\\d+)\\.`)));
  const outputWidth = Math.round(Math.sqrt(shape("visual.attnpool.positional_embedding")[0] - 1));
  return fromOpenAIArgs({
    ...common,
    image_resolution: outputWidth * 32,
    vision_layers: layers,
    vision_width: shape("visual.layer1.0.conv1.weight")[0],
    vision_patch_size: null,
  });
}

function readJson(file: string): Record<string, any> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A config JSON of either kind (open_clip, with or without `model_cfg`, or Hugging Face). */
export function configFromJsonFile(file: string): ClipConfig {
  const raw = readJson(file);
  try {
    if (raw.text_config || raw.vision_config || raw.model_type === "clip") return fromHfConfig(raw);
    // Our exact preprocessing, where open_clip has no equivalent (see openClipConfigJson).
    if (raw.model_cfg && raw[CLIPLAB_PREPROCESS_KEY]) return validateConfig({ model_cfg: raw.model_cfg, preprocess_cfg: raw[CLIPLAB_PREPROCESS_KEY] });
    return validateConfig(raw);
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
}

export function resolveCheckpointConfig(
  checkpointPath: string,
  metadata: Record<string, string>,
  source: TensorSource,
  given?: object | string,
): { config: ClipConfig; origin: ConfigOrigin } {
  if (given !== undefined) {
    const config = typeof given === "string" && fs.existsSync(given) ? configFromJsonFile(given) : resolveModelConfig(given);
    return { config, origin: "argument" };
  }
  const dir = path.dirname(checkpointPath);
  for (const name of ["open_clip_config.json", "config.json"] as const) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return { config: configFromJsonFile(file), origin: name };
  }
  const fromMeta = configFromMetadata(metadata);
  if (fromMeta) return { config: fromMeta, origin: "metadata" };
  return { config: inferConfig(source), origin: "inferred" };
}

/** open_clip's hub file names: the config, and the weights files `_find_checkpoint_in_dir` prefers, in its order (safetensors only). */
export const OPEN_CLIP_CONFIG_FILE = "open_clip_config.json";
export const OPEN_CLIP_WEIGHTS_FILES = ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "model.safetensors"] as const;

/** A top-level key of our `open_clip_config.json` (open_clip ignores it): the exact preprocessing when open_clip's differs. */
export const CLIPLAB_PREPROCESS_KEY = "cliplab_preprocess_cfg";

/**
 * A checkpoint path as given: a file is itself; a folder (an open_clip hub folder, a run
 * directory) resolves to its weights file, open_clip's preferred names first, else its only
 * `.safetensors` file. A one-line error otherwise, naming what the folder holds.
 */
export function resolveCheckpointFile(file: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return file; // the loader reports a missing file
  }
  if (!stat.isDirectory()) return file;
  for (const name of OPEN_CLIP_WEIGHTS_FILES) {
    const candidate = path.join(file, name);
    if (fs.existsSync(candidate)) return candidate;
  }
  const entries = fs.readdirSync(file);
  const safetensors = entries.filter((n) => n.endsWith(".safetensors") && !n.startsWith("trainer_state"));
  if (safetensors.length === 1) return path.join(file, safetensors[0]);
  const pickles = entries.filter((n) => /\.(bin|pth|pt)$/.test(n));
  throw new ConfigError(
    `${file}: a folder with ${safetensors.length ? `${safetensors.length} .safetensors files (${safetensors.join(", ")})` : "no .safetensors file"}; ` +
      `expected one of ${OPEN_CLIP_WEIGHTS_FILES.join(", ")}` +
      (pickles.length ? ` (PyTorch pickles such as ${pickles[0]} are not read; convert with safetensors.torch.save_file)` : ""),
  );
}

/**
 * `open_clip_config.json` for a model: `model_cfg` (embed_dim, quick_gelu, vision_cfg, text_cfg:
 * the keyword arguments of open_clip's `CLIP`) and `preprocess_cfg` (open_clip's PreprocessCfg
 * fields). open_clip's transforms know the resize modes shortest, longest and squash; our `pad`
 * (a small image centred on a canvas, larger ones as `shortest`) is written as `shortest`, with
 * the exact preprocessing kept under `cliplab_preprocess_cfg`, which this toolkit reads back.
 */
export function openClipConfigJson(cfg: ClipConfig): Record<string, unknown> {
  const { preprocess_cfg: _own, ...modelCfg } = configToJson(cfg) as Record<string, unknown> & { preprocess_cfg?: PreprocessCfg };
  const exact = transformToCfg(modelTransform(cfg));
  const out: Record<string, unknown> = { model_cfg: modelCfg, preprocess_cfg: exact };
  if (exact.resize_mode === "pad") {
    out.preprocess_cfg = { ...exact, resize_mode: "shortest" };
    out[CLIPLAB_PREPROCESS_KEY] = structuredClone(cfg.preprocess_cfg ?? exact);
  }
  return out;
}
