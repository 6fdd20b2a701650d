/**
 * A CLIP as two ONNX models, the split transformers.js and onnxruntime-web load:
 * `vision_model.onnx` (`pixel_values` NCHW float32 [batch, 3, S, S] -> `image_embeds` [batch, D])
 * and `text_model.onnx` (`input_ids` int64 [batch, sequence] -> `text_embeds` [batch, D]),
 * opset 17, standard operators only, built from cliplab's config and weights (no Python), plus
 * `config.json`: what a browser page needs to prepare inputs (image size, mean, std, resize mode,
 * context length, token ids) and to use the outputs (embed dim, logit scale). That config.json
 * holds an open_clip `model_cfg` and `preprocess_cfg`, so cliplab's checkpoint loader reads it too.
 *
 * Weights come from a `TensorSource` (PyTorch layout, OpenAI names): a `Clip` in memory or a
 * safetensors checkpoint read one tensor at a time, never two copies of the model at once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Clip, TensorSource } from "../../model/clip";
import { ClipConfig, configToJson, modelTransform, validateConfig, visionTower } from "../../model/config";
import { clipParamSpecs, toExternalLayout } from "../../model/params";
import { EOT_TOKEN, SOT_TOKEN } from "../../text/tokenize";
import { writeFileAtomic } from "../../util/atomic";
import { openSafetensors } from "../safetensors";
import { asOpenAISource } from "../state_dict_names";
import { resolveCheckpointConfig } from "../checkpoint_config";
import { GraphBuilder, OPSET_VERSION, modelOf } from "./graph";
import { WeightReader } from "./clip_layers";
import { INT8_SCHEME, Quantization, checkQuantization } from "./quantize";
import { VISION_INPUT, VISION_OUTPUT, buildVisionGraph } from "./clip_vision";
import { TEXT_INPUT, TEXT_OUTPUT, buildTextGraph } from "./clip_text";
import { ModelDef } from "./onnx_proto";
import { WriteModelOptions, WrittenModel, writeModelFile } from "./model_file";

export const VISION_FILE = "vision_model.onnx";
export const TEXT_FILE = "text_model.onnx";
/** The int8 pair, under the names transformers.js loads for its "q8" dtype. */
export const VISION_QUANTIZED_FILE = "vision_model_quantized.onnx";
export const TEXT_QUANTIZED_FILE = "text_model_quantized.onnx";
export const CONFIG_FILE = "config.json";
export const EXPORT_FORMAT = "cliplab-onnx";
export const EXPORT_FORMAT_VERSION = 1;

/** config.json of an export directory. */
export interface OnnxExportConfig {
  format: typeof EXPORT_FORMAT;
  format_version: number;
  /** open_clip model config (embed_dim, quick_gelu, vision_cfg, text_cfg). */
  model_cfg: Record<string, unknown>;
  /** open_clip preprocess_cfg, every field filled in. */
  preprocess_cfg: { size: number; mode: "RGB"; mean: number[]; std: number[]; interpolation: string; resize_mode: string; fill_color: number };
  vision_tower: "VisionTransformer" | "ModifiedResNet";
  image_size: number;
  embed_dim: number;
  context_length: number;
  vocab_size: number;
  /** CLIP's BPE start/end-of-text ids (only for the standard 49,408-token vocabulary). */
  sot_token_id?: number;
  eot_token_id?: number;
  /** exp(logit_scale): logits = logit_scale * cos(image, text). */
  logit_scale: number;
  opset: number;
  vision: { file: string; input: string; layout: "NCHW"; shape: (string | number)[]; output: string };
  text: { file: string; input: string; dtype: "int64"; shape: (string | number)[]; output: string; pooling: string };
  /** Present when the export also holds an int8 pair (same inputs and outputs as the float32 one). */
  quantized?: { dtype: Quantization; vision: string; text: string; scheme: string };
}

/** The two towers as ONNX models. */
export interface ClipOnnxPair {
  vision: ModelDef;
  text: ModelDef;
}

export interface ClipOnnx extends ClipOnnxPair {
  config: OnnxExportConfig;
  /** The int8 pair, when asked for (its weights, like the float32 pair's, are made when written). */
  quantized?: ClipOnnxPair;
}

export interface BuildClipOnnxOptions {
  /** Also build the towers with int8 linear layers (./quantize.ts). */
  quantize?: Quantization;
}

/** A Clip's weights as a tensor source in PyTorch's layout (read from the model when asked). */
export function clipTensorSource(clip: Clip): TensorSource {
  const specs = new Map(clip.specs.map((s) => [s.name, s]));
  return {
    names: () => specs.keys(),
    shape: (name) => specs.get(name)?.shape,
    read: (name) => {
      const spec = specs.get(name);
      const param = clip.params.get(name);
      if (!spec || !param) throw new Error(`ONNX export: the model has no tensor named ${name}`);
      if (clip.isDisposed) throw new Error(`ONNX export: the Clip was disposed before ${name} was written`);
      return toExternalLayout(param.dataSync() as Float32Array, spec.shape, spec.layout);
    },
  };
}

function checkSource(config: ClipConfig, source: TensorSource): void {
  const specs = clipParamSpecs(config);
  const expected = new Set(specs.map((s) => s.name));
  for (const spec of specs) {
    const shape = source.shape(spec.name);
    if (!shape) throw new Error(`ONNX export: missing tensor ${spec.name} for this config`);
    if (shape.length !== spec.shape.length || shape.some((n, i) => n !== spec.shape[i])) {
      throw new Error(`ONNX export: tensor ${spec.name} has shape [${shape}] but the config needs [${spec.shape}]`);
    }
  }
  for (const name of source.names()) {
    if (!expected.has(name)) throw new Error(`ONNX export: unexpected tensor ${name} for this config`);
  }
}

function exportConfig(config: ClipConfig, logitScale: number): OnnxExportConfig {
  const transform = modelTransform(config);
  const size = config.vision_cfg.image_size;
  const standardVocab = config.text_cfg.vocab_size === EOT_TOKEN + 1;
  const modelCfg = configToJson(config);
  delete modelCfg.preprocess_cfg; // it travels beside, filled in
  return {
    format: EXPORT_FORMAT,
    format_version: EXPORT_FORMAT_VERSION,
    model_cfg: modelCfg,
    preprocess_cfg: {
      size: transform.size,
      mode: "RGB",
      mean: [...transform.mean],
      std: [...transform.std],
      interpolation: transform.interpolation,
      resize_mode: transform.resizeMode,
      fill_color: transform.fillColor,
    },
    vision_tower: visionTower(config),
    image_size: size,
    embed_dim: config.embed_dim,
    context_length: config.text_cfg.context_length,
    vocab_size: config.text_cfg.vocab_size,
    ...(standardVocab ? { sot_token_id: SOT_TOKEN, eot_token_id: EOT_TOKEN } : {}),
    logit_scale: Math.exp(logitScale),
    opset: OPSET_VERSION,
    vision: { file: VISION_FILE, input: VISION_INPUT, layout: "NCHW", shape: ["batch", 3, size, size], output: VISION_OUTPUT },
    text: {
      file: TEXT_FILE,
      input: TEXT_INPUT,
      dtype: "int64",
      shape: ["batch", "sequence"],
      output: TEXT_OUTPUT,
      pooling: "features at the first argmax of input_ids (the end-of-text token), after ln_final",
    },
  };
}

function buildPair(config: ClipConfig, source: TensorSource, quantize?: Quantization): ClipOnnxPair {
  const doc = `CLIP (${visionTower(config)}, embed ${config.embed_dim}) exported by cliplab${quantize ? `, ${quantize} linear layers` : ""}`;
  const metadata: Record<string, string> = { cliplab_config: JSON.stringify(configToJson(config)) };
  if (quantize) metadata.cliplab_quantization = `${quantize}: ${INT8_SCHEME}`;
  const vg = new GraphBuilder("clip_vision");
  buildVisionGraph(vg, new WeightReader(vg, source, quantize), config);
  const tg = new GraphBuilder("clip_text");
  buildTextGraph(tg, new WeightReader(tg, source, quantize), config);
  return {
    vision: modelOf(vg.build(), { producerVersion: String(EXPORT_FORMAT_VERSION), docString: `${doc}: image tower`, metadata }),
    text: modelOf(tg.build(), { producerVersion: String(EXPORT_FORMAT_VERSION), docString: `${doc}: text tower`, metadata }),
  };
}

/** Builds both graphs (and the int8 pair with `quantize`); weights are read from `source` only when a model is serialised. */
export function buildClipOnnx(config: ClipConfig, source: TensorSource, opts: BuildClipOnnxOptions = {}): ClipOnnx {
  const quantize = checkQuantization(opts.quantize, "ONNX export: quantize");
  checkSource(config, source);
  const logitScale = source.read("logit_scale");
  const exported = exportConfig(config, logitScale[0]);
  if (!quantize) return { ...buildPair(config, source), config: exported };
  return {
    ...buildPair(config, source),
    quantized: buildPair(config, source, quantize),
    config: { ...exported, quantized: { dtype: quantize, vision: VISION_QUANTIZED_FILE, text: TEXT_QUANTIZED_FILE, scheme: INT8_SCHEME } },
  };
}

export interface ExportResult {
  dir: string;
  vision: WrittenModel;
  text: WrittenModel;
  /** The int8 pair, when the export has one. */
  quantized?: { vision: WrittenModel; text: WrittenModel };
  configFile: string;
  config: OnnxExportConfig;
}

export type ExportOptions = WriteModelOptions & BuildClipOnnxOptions;

/**
 * Writes vision_model.onnx, text_model.onnx (with `_data` files when external), the `_quantized`
 * pair when the models have one, and config.json into `dir`.
 */
export function writeClipOnnx(models: ClipOnnx, dir: string, opts: WriteModelOptions = {}): ExportResult {
  fs.mkdirSync(dir, { recursive: true });
  const vision = writeModelFile(path.join(dir, VISION_FILE), models.vision, opts);
  const text = writeModelFile(path.join(dir, TEXT_FILE), models.text, opts);
  const quantized = models.quantized && {
    vision: writeModelFile(path.join(dir, VISION_QUANTIZED_FILE), models.quantized.vision, opts),
    text: writeModelFile(path.join(dir, TEXT_QUANTIZED_FILE), models.quantized.text, opts),
  };
  const configFile = path.join(dir, CONFIG_FILE);
  writeFileAtomic(configFile, JSON.stringify(models.config, null, 2) + "\n"); // last: its presence marks a complete export
  return { dir, vision, text, ...(quantized ? { quantized } : {}), configFile, config: models.config };
}

/** Exports a Clip in memory to `dir`. */
export function exportClipOnnx(clip: Clip, dir: string, opts: ExportOptions = {}): ExportResult {
  return writeClipOnnx(buildClipOnnx(clip.config, clipTensorSource(clip), opts), dir, opts);
}

export interface ExportCheckpointOptions extends ExportOptions {
  /** A preset name, a config JSON path or a config object; overrides what the checkpoint says. */
  config?: object | string;
}

/**
 * Exports a safetensors checkpoint (OpenAI, open_clip or Hugging Face names) without building a
 * Clip: each tensor is read from disk when it is written. Errors name the checkpoint, on one line.
 */
export function exportCheckpointOnnx(checkpoint: string, dir: string, opts: ExportCheckpointOptions = {}): ExportResult {
  if (!checkpoint.endsWith(".safetensors")) throw new Error(`${checkpoint}: expected a .safetensors checkpoint`);
  const reader = openSafetensors(checkpoint);
  try {
    const source = asOpenAISource({
      names: () => reader.entries.keys(),
      shape: (n) => reader.entries.get(n)?.shape,
      read: (n) => reader.readFloat32(n),
    });
    const { config } = resolveCheckpointConfig(checkpoint, reader.metadata, source, opts.config);
    return writeClipOnnx(buildClipOnnx(config, source, opts), dir, opts);
  } catch (err) {
    const message = ((err as Error)?.message ?? String(err)).split("\n")[0];
    throw new Error(message.startsWith(checkpoint) ? message : `${checkpoint}: ${message}`);
  } finally {
    reader.close();
  }
}

/** Reads and checks an export directory's config.json; returns it with the model config it holds. */
export function readOnnxExportConfig(dir: string): { config: OnnxExportConfig; clipConfig: ClipConfig } {
  const file = path.join(dir, CONFIG_FILE);
  if (!fs.existsSync(file)) throw new Error(`${dir}: no ${CONFIG_FILE} (not a cliplab ONNX export; run cliplab export onnx)`);
  let raw: OnnxExportConfig;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message.split("\n")[0]})`);
  }
  if (raw?.format !== EXPORT_FORMAT) throw new Error(`${file}: format is ${JSON.stringify(raw?.format)}, expected "${EXPORT_FORMAT}"`);
  if (raw.format_version !== EXPORT_FORMAT_VERSION) {
    throw new Error(`${file}: format_version ${JSON.stringify(raw.format_version)} is not supported (this cliplab reads ${EXPORT_FORMAT_VERSION})`);
  }
  let clipConfig: ClipConfig;
  try {
    clipConfig = validateConfig({ model_cfg: raw.model_cfg, preprocess_cfg: raw.preprocess_cfg });
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return { config: raw, clipConfig };
}
