/**
 * Model presets: plain JSON files in open_clip's model-config format under `configs/`,
 * loaded into a registry the way open_clip's factory does (`list_models`, `get_model_config`).
 * https://github.com/mlfoundations/open_clip/blob/main/src/open_clip/factory.py
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ClipConfig, ConfigError, validateConfig } from "./config";

const CONFIG_DIR = path.join(__dirname, "configs");
const registry = new Map<string, ClipConfig>();
let builtinsLoaded = false;

function loadBuiltins(): void {
  if (builtinsLoaded) return;
  builtinsLoaded = true;
  for (const file of fs.readdirSync(CONFIG_DIR).sort()) {
    if (!file.endsWith(".json")) continue;
    const name = file.slice(0, -".json".length);
    const raw = JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, file), "utf8"));
    registry.set(name, validateConfig(raw));
  }
}

/** Names of every registered preset, sorted. */
export function listModels(): string[] {
  loadBuiltins();
  return [...registry.keys()].sort();
}

/** A deep copy of the named preset, so callers can edit it freely. */
export function getModelConfig(name: string): ClipConfig {
  loadBuiltins();
  const cfg = registry.get(name);
  if (!cfg) throw new ConfigError(`unknown model "${name}" (known models: ${listModels().join(", ")})`);
  return structuredClone(cfg);
}

/** Registers (or replaces) a preset; the config is validated first. */
export function addModelConfig(name: string, config: unknown): ClipConfig {
  loadBuiltins();
  if (!name || typeof name !== "string") throw new ConfigError(`model name must be a non-empty string, got ${JSON.stringify(name)}`);
  const cfg = validateConfig(config);
  registry.set(name, cfg);
  return structuredClone(cfg);
}

/**
 * Resolves what a user passes as a model: a preset name, a path to a config JSON file, or a
 * config object.
 */
export function resolveModelConfig(model: string | object): ClipConfig {
  if (typeof model !== "string") return validateConfig(model);
  loadBuiltins();
  if (registry.has(model)) return getModelConfig(model);
  if (model.endsWith(".json") || fs.existsSync(model)) {
    let text: string;
    try {
      text = fs.readFileSync(model, "utf8");
    } catch (err) {
      throw new ConfigError(`cannot read model config ${model}: ${(err as Error).message}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`model config ${model} is not valid JSON: ${(err as Error).message}`);
    }
    try {
      return validateConfig(raw);
    } catch (err) {
      throw new ConfigError(`${model}: ${(err as Error).message}`);
    }
  }
  throw new ConfigError(`unknown model "${model}": not a preset (${listModels().join(", ")}) nor a config file`);
}

/** The name of the preset whose architecture equals `config` (preprocessing aside), or undefined. */
export function presetNameOf(config: ClipConfig): string | undefined {
  loadBuiltins();
  const arch = (c: ClipConfig) => JSON.stringify({ ...c, preprocess_cfg: undefined });
  const want = arch(config);
  for (const [name, cfg] of registry) if (arch(cfg) === want) return name;
  return undefined;
}
