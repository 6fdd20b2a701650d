/**
 * The data flags every command shares: `--data SPEC` and the column flags (open_clip's
 * `--csv-*` names, and generic `--*-key` names for Parquet, Arrow and WebDataset), `--classnames`,
 * `--skip-bad-images`, `--shard I/N`, and the old `--data-dir DIR` (= `fashion-mnist:DIR`).
 */
import { openDataset, SOURCE_KINDS, type DatasetOptions } from "../data/open";
import { parseShard, type Dataset, type Shard, type SkippedItem } from "../data/dataset";
import { UsageError, type CliIO } from "./io";
import type { Clip } from "../model/clip";
import type { EmbeddingEngine } from "../engine/engine";
import { ENGINE_KINDS, createEngine, type EngineKind } from "../engine/select";
import { QUANTIZATIONS, type Quantization } from "../io/onnx/quantize";

/** parseArgs option specs of the data flags (spread into a command's own). */
export const DATA_OPTIONS = {
  data: { type: "string" },
  "data-dir": { type: "string" },
  "csv-img-key": { type: "string" },
  "csv-caption-key": { type: "string" },
  "csv-separator": { type: "string" },
  "csv-label-key": { type: "string" },
  "csv-group-keys": { type: "string" },
  "image-key": { type: "string" },
  "caption-key": { type: "string" },
  "label-key": { type: "string" },
  "group-keys": { type: "string" },
  classnames: { type: "string" },
  "skip-bad-images": { type: "boolean", default: false },
} as const;

export const SHARD_OPTION = { shard: { type: "string" } } as const;

/** `--engine`: where inference runs (gradients always stay on tfjs); `--quantize int8`: int8 linear layers there. */
export const ENGINE_OPTION = { engine: { type: "string" }, quantize: { type: "string" } } as const;
export const ENGINE_USAGE = `[--engine ${ENGINE_KINDS.join("|")}] [--quantize ${QUANTIZATIONS.join("|")}]`;

type EngineFlags = { engine?: string; quantize?: string };

/** --engine and --quantize checked (usage errors), before any work starts. */
export function checkEngineFlags(values: EngineFlags): { kind: EngineKind; quantize?: Quantization } {
  const kind = (values.engine ?? "auto") as EngineKind;
  if (!ENGINE_KINDS.includes(kind)) throw new UsageError(`--engine must be one of ${ENGINE_KINDS.join(", ")}, got ${values.engine}`);
  const quantize = values.quantize as Quantization | undefined;
  if (quantize !== undefined && !QUANTIZATIONS.includes(quantize)) throw new UsageError(`--quantize must be one of ${QUANTIZATIONS.join(", ")}, got ${values.quantize}`);
  if (quantize && kind === "tfjs") throw new UsageError(`--quantize ${quantize} runs on onnxruntime: use --engine onnx or auto, not tfjs`);
  return { kind, quantize };
}

/**
 * The inference engine `--engine` asks for, default auto (onnxruntime when it loads: it is the
 * faster of the two for inference, bench/RESULTS.md; else tfjs), with `--quantize`; the engine in
 * use is said on stderr, like the backend.
 */
export async function engineFromFlags(clip: Clip, values: EngineFlags, io: CliIO): Promise<EmbeddingEngine> {
  const { kind, quantize } = checkEngineFlags(values);
  const { engine, reason } = await createEngine(clip, kind, { quantize });
  io.err(`engine: ${engine.name} (${reason})`);
  return engine;
}

export const DATA_USAGE =
  `[--data ${SOURCE_KINDS.map((k) => (k === "fashion-mnist" ? "fashion-mnist[:DIR]" : `${k}:PATH`)).join("|")}] ` +
  "[--csv-img-key filepath] [--csv-caption-key title] [--csv-separator SEP] [--csv-label-key COL] [--csv-group-keys a,b] " +
  "[--image-key K] [--caption-key K] [--label-key K] [--group-keys a,b] [--classnames FILE] [--skip-bad-images]";

type DataValues = { [K in keyof typeof DATA_OPTIONS]?: (typeof DATA_OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

function pick(values: DataValues, a: keyof DataValues, b: keyof DataValues): string | undefined {
  const x = values[a] as string | undefined;
  const y = values[b] as string | undefined;
  if (x !== undefined && y !== undefined && x !== y) throw new UsageError(`--${a} and --${b} name the same thing; give one`);
  return x ?? y;
}

function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw new UsageError(`a comma-separated list is empty: ${JSON.stringify(v)}`);
  return items;
}

/** The data spec the flags select (`fallback` when neither --data nor --data-dir is given). */
export function dataSpec(values: DataValues, fallback = "fashion-mnist"): string {
  if (values.data !== undefined && values["data-dir"] !== undefined) throw new UsageError("give --data or --data-dir (= fashion-mnist:DIR), not both");
  if (values["data-dir"] !== undefined) return `fashion-mnist:${values["data-dir"]}`;
  return values.data ?? fallback;
}

/** DatasetOptions from the flags. */
export function datasetOptions(values: DataValues, split?: "train" | "test"): DatasetOptions {
  const separator = values["csv-separator"];
  const unescaped = separator === "\\t" ? "\t" : separator;
  if (unescaped !== undefined && unescaped.length !== 1) throw new UsageError(`--csv-separator must be one character (or \\t), got ${JSON.stringify(separator)}`);
  return {
    split,
    imageKey: pick(values, "csv-img-key", "image-key"),
    captionKey: pick(values, "csv-caption-key", "caption-key"),
    labelKey: pick(values, "csv-label-key", "label-key"),
    groupKeys: list(pick(values, "csv-group-keys", "group-keys")),
    separator: unescaped,
    classnamesFile: values.classnames,
  };
}

/** Opens the dataset the flags name. */
export async function openDataFromFlags(values: DataValues, opts: { split?: "train" | "test"; spec?: string } = {}): Promise<Dataset> {
  return openDataset(opts.spec ?? dataSpec(values), datasetOptions(values, opts.split));
}

/** `--shard I/N`, or undefined. */
export function shardFromFlags(value: string | undefined): Shard | undefined {
  if (value === undefined) return undefined;
  try {
    return parseShard(value);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Collects the items `--skip-bad-images` left out, for the run's output and JSON. */
export class SkipLog {
  readonly items: SkippedItem[] = [];
  readonly onSkip = (s: SkippedItem): void => {
    this.items.push(s);
  };
  get count(): number {
    return this.items.length;
  }
}
