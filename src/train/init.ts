/**
 * The model a fine-tuning run starts from (`--init CHECKPOINT`): any checkpoint `loadCheckpoint`
 * reads (OpenAI, open_clip or Hugging Face names, F32/F16/BF16, an open_clip hub folder), with its
 * config. A `model` given as well must describe the same architecture.
 */
import { Clip } from "../model/clip";
import type { ClipConfig } from "../model/config";
import { resolveModelConfig } from "../model/registry";
import { loadCheckpoint } from "../io/checkpoint";

/** The first path at which two JSON values differ, or undefined when equal. */
function firstDifference(a: unknown, b: unknown, path = ""): string | undefined {
  if (a === b) return undefined;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return path || "(the config)";
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of [...keys].sort()) {
    const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    if (d) return d;
  }
  return undefined;
}

function valueAt(cfg: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), cfg);
}

/** The architecture (what the weights' shapes and the forward pass depend on): everything but the preprocessing. */
function architecture(cfg: ClipConfig): Omit<ClipConfig, "preprocess_cfg"> {
  const { preprocess_cfg: _ignored, ...rest } = cfg;
  return rest;
}

/**
 * Loads `init` for fine-tuning. `model` (a preset, JSON path or config) is optional; when given it
 * must equal the checkpoint's architecture (the preprocessing comes from the checkpoint).
 */
export async function initialModel(init: string, model?: string | object): Promise<Clip> {
  const clip = await loadCheckpoint(init);
  if (model === undefined) return clip;
  try {
    const given = architecture(resolveModelConfig(model));
    const stored = architecture(clip.config);
    const d = firstDifference(stored, given);
    if (d) {
      throw new RangeError(
        `train: model ${typeof model === "string" ? model : "(config)"} differs from ${init}'s config at ${d} ` +
          `(${JSON.stringify(valueAt(given, d))} vs ${JSON.stringify(valueAt(stored, d))} in the checkpoint); leave model out, the checkpoint brings its config`,
      );
    }
    return clip;
  } catch (err) {
    clip.dispose();
    throw err;
  }
}
