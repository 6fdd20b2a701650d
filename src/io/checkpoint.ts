/**
 * Loading and saving CLIP checkpoints in safetensors, under OpenAI's state_dict names (so
 * `clip.model.build_model` and open_clip load ours) or Hugging Face `CLIPModel` names.
 * https://github.com/openai/CLIP/blob/main/clip/model.py (`build_model`)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Clip } from "../model/clip";
import { ClipConfig } from "../model/config";
import { TensorToWrite, openSafetensors, writeSafetensors } from "./safetensors";
import { Naming, asOpenAISource, toHfTensors } from "./state_dict_names";
import {
  ConfigOrigin,
  OPEN_CLIP_CONFIG_FILE,
  configToMetadata,
  openClipConfigJson,
  resolveCheckpointConfig,
  resolveCheckpointFile,
  toHfConfig,
} from "./checkpoint_config";
import { replaceFileAtomic } from "../util/atomic";

export interface LoadCheckpointOptions {
  /** A preset name, a config JSON path, or a config object; overrides what the file says. */
  config?: object | string;
}

export interface SaveCheckpointOptions {
  /** State-dict names to write; "openai" (default) loads in OpenAI's code and open_clip. */
  naming?: Naming;
  /** Storage precision; weights are always computed in float32. */
  dtype?: "F32" | "F16" | "BF16";
  /** Extra string metadata (kept next to the config fields). */
  metadata?: Record<string, string>;
  /**
   * Also write open_clip's `open_clip_config.json` ({model_cfg, preprocess_cfg}) beside the file,
   * so the folder loads with `open_clip.create_model("local-dir:FOLDER")` (OpenAI names only).
   */
  openClipConfig?: boolean;
}

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** Prefixes every message with the file, on one line. */
function inFile(file: string, err: unknown): CheckpointError {
  const message = (err as Error)?.message ?? String(err);
  return new CheckpointError(message.startsWith(file) ? message : `${file}: ${message}`);
}

/** Reads a checkpoint's architecture without building the model. */
export function readCheckpointConfig(file: string, opts: LoadCheckpointOptions = {}): { config: ClipConfig; origin: ConfigOrigin } {
  file = checkpointFile(file);
  const reader = openSafetensors(file);
  try {
    const source = asOpenAISource({
      names: () => reader.entries.keys(),
      shape: (n) => reader.entries.get(n)?.shape,
      read: (n) => reader.readFloat32(n),
    });
    return resolveCheckpointConfig(file, reader.metadata, source, opts.config);
  } catch (err) {
    throw inFile(file, err);
  } finally {
    reader.close();
  }
}

/** The weights file of `file` (a folder resolves as open_clip's hub layout), extension checked. */
function checkpointFile(file: string): string {
  let resolved: string;
  try {
    resolved = resolveCheckpointFile(file);
  } catch (err) {
    throw inFile(file, err);
  }
  checkExtension(resolved);
  return resolved;
}

function checkExtension(file: string): void {
  if (!file.endsWith(".safetensors")) {
    throw new CheckpointError(`${file}: expected a .safetensors checkpoint (PyTorch pickles are not read; convert with safetensors.torch.save_file)`);
  }
}

/**
 * Loads a CLIP from a safetensors file in OpenAI, open_clip or Hugging Face naming. The
 * architecture comes from `opts.config`, else a config JSON beside the file, else the file's
 * metadata, else the tensor shapes (as OpenAI's `build_model`).
 */
export async function loadCheckpoint(file: string, opts: LoadCheckpointOptions = {}): Promise<Clip> {
  file = checkpointFile(file);
  let reader;
  try {
    reader = openSafetensors(file);
  } catch (err) {
    throw inFile(file, err);
  }
  try {
    const stored = reader;
    // Each tensor streams from the file in chunks (half precision decoded per chunk) straight
    // into its variable: the weights are never held twice, on disk's dtype or in float32.
    const source = asOpenAISource({
      names: () => stored.entries.keys(),
      shape: (n) => stored.entries.get(n)?.shape,
      read: (n) => stored.readFloat32(n),
      readChunks: (n, onChunk, chunkElements) => stored.readFloat32Chunks(n, onChunk, chunkElements),
    });
    const { config } = resolveCheckpointConfig(file, reader.metadata, source, opts.config);
    return Clip.fromSource(config, source);
  } catch (err) {
    throw inFile(file, err);
  } finally {
    reader.close();
  }
}

/**
 * Writes the model's weights and config metadata; the file appears whole or not at all
 * (written to a temporary name, then renamed). With Hugging Face naming a `config.json`
 * is written beside it only when asked through `writeHfConfigBeside`.
 */
export async function saveCheckpoint(clip: Clip, file: string, opts: SaveCheckpointOptions = {}): Promise<void> {
  checkExtension(file);
  const naming = opts.naming ?? "openai";
  if (naming !== "openai" && naming !== "hf") {
    throw new CheckpointError(`naming must be "openai" or "hf", got ${JSON.stringify(naming)}`);
  }
  const dtype = opts.dtype ?? "F32";
  if (!["F32", "F16", "BF16"].includes(dtype)) {
    throw new CheckpointError(`dtype must be one of F32, F16, BF16, got ${JSON.stringify(dtype)}`);
  }
  if (opts.openClipConfig && naming !== "openai") {
    throw new CheckpointError(`${file}: open_clip_config.json goes with OpenAI names (open_clip's), not naming ${JSON.stringify(naming)}`);
  }
  // OpenAI names: each tensor is read from the model when it is written, so saving holds one
  // tensor outside the backend, not the whole model. Hugging Face's split q/k/v are built first.
  const tensors: TensorToWrite[] =
    naming === "hf"
      ? toHfTensors(clip.stateDict()).map((t) => ({ ...t, dtype }))
      : clip.specs.map((spec) => ({ name: spec.name, shape: spec.shape.slice(), data: () => clip.stateTensor(spec.name), dtype }));
  const metadata = { ...(opts.metadata ?? {}), ...configToMetadata(clip.config) };
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    writeSafetensors(file, tensors, metadata);
    if (opts.openClipConfig) {
      writeOpenClipConfig(clip.config, path.join(path.dirname(path.resolve(file)), OPEN_CLIP_CONFIG_FILE));
    }
  } catch (err) {
    throw inFile(file, err);
  }
}

/** Writes open_clip's `open_clip_config.json` for `config` (atomically; see `openClipConfigJson`). */
export function writeOpenClipConfig(config: ClipConfig, file: string): void {
  replaceFileAtomic(file, (tmp) => fs.writeFileSync(tmp, JSON.stringify(openClipConfigJson(config), null, 2) + "\n"));
}

/** Writes Hugging Face's `config.json` for a ViT model (atomically), e.g. next to an "hf" checkpoint. */
export function writeHfConfig(clip: Clip, file: string): void {
  replaceFileAtomic(file, (tmp) => fs.writeFileSync(tmp, JSON.stringify(toHfConfig(clip.config), null, 2) + "\n"));
}
