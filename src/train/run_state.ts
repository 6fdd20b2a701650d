/**
 * A training run on disk: `model.safetensors` (OpenAI names, loads in PyTorch as it is) with
 * open_clip's `open_clip_config.json` beside it (so the folder loads with
 * `open_clip.create_model("local-dir:RUN")`), `trainer_state.safetensors` (AdamW moments of the
 * trained parameters only, SigLIP bias, step, options), `metrics.arrow` (one row per step) and
 * `eval.arrow` (one row per evaluation: our columns, then CLIP_benchmark's metric names). Each
 * file is written to a temporary name and renamed; the step stored in both checkpoint files must
 * agree on resume.
 */
import * as fs from "node:fs";
import * as tf from "@tensorflow/tfjs";
import * as path from "node:path";
import { Clip } from "../model/clip";
import { loadCheckpoint, saveCheckpoint } from "../io/checkpoint";
import { openSafetensors, writeSafetensors } from "../io/safetensors";
import { makeTable, readArrowFile, writeArrowFile } from "../io/arrow";
import type { ClipOptimizer } from "./step";
import { TRAIN_DEFAULTS, type TrainOptions } from "./options";

export const MODEL_FILE = "model.safetensors";
export const STATE_FILE = "trainer_state.safetensors";
export const METRICS_FILE = "metrics.arrow";
export const EVAL_FILE = "eval.arrow";
const STATE_FORMAT = "cliplab-trainer-state-1";

/** Options that shape the run; a resume must use the same values. */
export const SCHEDULE_KEYS = [
  "epochs", "maxSteps", "batchSize", "lr", "warmupSteps", "weightDecay", "beta1", "beta2", "eps", "gradClipNorm", "loss", "seed", "trainLimit", "augment",
  "lockImage", "lockImageUnlockedGroups", "lockText", "lockTextUnlockedLayers", "accumFreq", "lrScheduler", "epochsCooldown", "lrCooldownEnd", "lrCooldownPower",
] as const;

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  logitScale: number;
  gradNorm: number;
  seconds: number;
}

export interface EvalRecord {
  epoch: number;
  step: number;
  zeroShotTop1: number;
  zeroShotTop5: number;
  recallAt1ImageToText: number;
  recallAt1TextToImage: number;
  recallAt5ImageToText: number;
  recallAt5TextToImage: number;
  trainSeconds: number;
}

/** An evaluation with CLIP_benchmark's metric names too (acc1, acc5, mean_per_class_recall, image_retrieval_recall@K, text_retrieval_recall@K): what the data gave. */
export interface BenchmarkEvalRecord extends EvalRecord {
  metrics: Record<string, number>;
}

export interface SavedPosition {
  /** Steps completed. */
  step: number;
}

export async function saveRunCheckpoint(dir: string, opt: ClipOptimizer, options: TrainOptions, position: SavedPosition): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const modelFile = path.join(dir, MODEL_FILE);
  const meta = { cliplab_step: String(position.step) };
  await saveCheckpoint(opt.clip, modelFile, { metadata: meta, openClipConfig: true });
  const state = opt.adamw.getState();
  const tensors = [];
  for (const p of opt.params) {
    const shape = p.variable.shape;
    tensors.push({ name: `adamw.m.${p.name}`, shape, data: state.m.get(p.name)! });
    tensors.push({ name: `adamw.v.${p.name}`, shape, data: state.v.get(p.name)! });
  }
  if (opt.logitBias) tensors.push({ name: "logit_bias", shape: [], data: new Float32Array(opt.logitBias.dataSync()) });
  const schedule: Record<string, unknown> = {};
  for (const k of SCHEDULE_KEYS) schedule[k] = options[k] ?? null;
  writeSafetensors(path.join(dir, STATE_FILE), tensors, {
    format: STATE_FORMAT,
    step: String(position.step),
    adamw_step: String(state.step),
    options: JSON.stringify(schedule),
  });
  return modelFile;
}

export interface LoadedRun {
  clip: Clip;
  step: number;
  restore(opt: ClipOptimizer): void;
}

/** Reads a run's checkpoint; `options` must match what the run was started with. */
export async function loadRunCheckpoint(dir: string, options: TrainOptions): Promise<LoadedRun> {
  const modelFile = path.join(dir, MODEL_FILE);
  const stateFile = path.join(dir, STATE_FILE);
  for (const f of [modelFile, stateFile]) {
    if (!fs.existsSync(f)) throw new Error(`cannot resume: ${f} does not exist`);
  }
  const reader = openSafetensors(stateFile);
  try {
    if (reader.metadata.format !== STATE_FORMAT) throw new Error(`${stateFile}: not a cliplab trainer state (format ${reader.metadata.format})`);
    const saved = JSON.parse(reader.metadata.options) as Record<string, unknown>;
    for (const k of SCHEDULE_KEYS) {
      const now = JSON.stringify(options[k] ?? null);
      // A run saved before an option existed ran with its default.
      const then = JSON.stringify((k in saved ? saved[k] : (TRAIN_DEFAULTS as unknown as Record<string, unknown>)[k]) ?? null);
      if (now !== then) throw new Error(`cannot resume ${dir}: option ${k} was ${then}, now ${now}`);
    }
    const step = Number(reader.metadata.step);
    const modelReader = openSafetensors(modelFile);
    const modelStep = Number(modelReader.metadata.cliplab_step);
    modelReader.close();
    if (modelStep !== step) throw new Error(`cannot resume ${dir}: ${MODEL_FILE} is at step ${modelStep} but ${STATE_FILE} at step ${step}`);
    const clip = await loadCheckpoint(modelFile);
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    let bias: Float32Array | undefined;
    for (const name of reader.entries.keys()) {
      if (name.startsWith("adamw.m.")) m.set(name.slice("adamw.m.".length), reader.readFloat32(name));
      else if (name.startsWith("adamw.v.")) v.set(name.slice("adamw.v.".length), reader.readFloat32(name));
      else if (name === "logit_bias") bias = reader.readFloat32(name);
    }
    const adamwStep = Number(reader.metadata.adamw_step);
    return {
      clip,
      step,
      restore(opt: ClipOptimizer) {
        opt.adamw.setState({ step: adamwStep, m, v });
        if (opt.logitBias) {
          if (!bias) throw new Error(`${stateFile}: no logit_bias for a SigLIP run`);
          const value = bias[0];
          tf.tidy(() => opt.logitBias!.assign(tf.scalar(value)));
        }
      },
    };
  } finally {
    reader.close();
  }
}

export function writeStepRecords(dir: string, records: StepRecord[]): void {
  const col = (k: keyof StepRecord) => Float32Array.from(records, (r) => r[k]);
  writeArrowFile(
    path.join(dir, METRICS_FILE),
    makeTable({
      step: Int32Array.from(records, (r) => r.step),
      epoch: Int32Array.from(records, (r) => r.epoch),
      loss: col("loss"),
      lr: col("lr"),
      logit_scale: col("logitScale"),
      grad_norm: col("gradNorm"),
      seconds: col("seconds"),
    }),
  );
}

export function readStepRecords(dir: string): StepRecord[] {
  const file = path.join(dir, METRICS_FILE);
  if (!fs.existsSync(file)) return [];
  const t = readArrowFile(file);
  const get = (name: string) => Array.from(t.getChild(name)!.toArray() as ArrayLike<number>);
  const [step, epoch, loss, lr, logitScale, gradNorm, seconds] = ["step", "epoch", "loss", "lr", "logit_scale", "grad_norm", "seconds"].map(get);
  return step.map((s, i) => ({ step: s, epoch: epoch[i], loss: loss[i], lr: lr[i], logitScale: logitScale[i], gradNorm: gradNorm[i], seconds: seconds[i] }));
}

const EVAL_FIELDS = ["epoch", "step", "zeroShotTop1", "zeroShotTop5", "recallAt1ImageToText", "recallAt1TextToImage", "recallAt5ImageToText", "recallAt5TextToImage", "trainSeconds"] as const;

/** eval.arrow: our columns, then one column per CLIP_benchmark metric any record has (NaN where a record lacks it). */
export function writeEvalRecords(dir: string, records: (EvalRecord & { metrics?: Record<string, number> })[]): void {
  if (!records.length) return;
  const cols: Record<string, Float32Array | Int32Array> = {};
  for (const k of EVAL_FIELDS) {
    cols[k] = k === "epoch" || k === "step" ? Int32Array.from(records, (r) => r[k]) : Float32Array.from(records, (r) => r[k]);
  }
  const names = [...new Set(records.flatMap((r) => Object.keys(r.metrics ?? {})))];
  for (const name of names) cols[name] = Float32Array.from(records, (r) => r.metrics?.[name] ?? NaN);
  writeArrowFile(path.join(dir, EVAL_FILE), makeTable(cols));
}

/** The records of a run's eval.arrow ([] when there is none), CLIP_benchmark's columns in `metrics`. */
export function readEvalRecords(dir: string): BenchmarkEvalRecord[] {
  const file = path.join(dir, EVAL_FILE);
  if (!fs.existsSync(file)) return [];
  const t = readArrowFile(file);
  const columns = t.schema.fields.map((f) => f.name);
  const get = (name: string) => Array.from(t.getChild(name)!.toArray() as ArrayLike<number>, Number);
  const fixed = Object.fromEntries(EVAL_FIELDS.map((k) => [k, get(k)]));
  const extra = columns.filter((c) => !(EVAL_FIELDS as readonly string[]).includes(c)).map((c) => [c, get(c)] as const);
  return Array.from({ length: t.numRows }, (_, i) => {
    const r = Object.fromEntries(EVAL_FIELDS.map((k) => [k, fixed[k][i]])) as unknown as BenchmarkEvalRecord;
    r.metrics = Object.fromEntries(extra.filter(([, v]) => !Number.isNaN(v[i])).map(([c, v]) => [c, v[i]]));
    return r;
  });
}
