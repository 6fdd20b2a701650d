/**
 * Memory of a CLIP run, known before it starts: an estimate from the config (weights, gradients,
 * AdamW's two moments, activations for the batch, kernel workspace) and the engine's ceiling
 * (tfjs-backend-wasm's heap is 32-bit: 4 GiB, and never shrinks), so that a run that cannot fit
 * is refused with one line instead of aborting the WASM module an hour in.
 *
 * Where the figures come from (float32 everywhere, 4 bytes a value):
 * - Inference activations per item are `activationBytes` (one transformer block's working set:
 *   the towers free each block's input, so depth does not add up).
 * - Training keeps, per block and item, the tensors the backward pass needs plus, until the
 *   backward pass ends, the gradient of every intermediate (tfjs runs the whole backward pass in
 *   one tidy). Measured with tf.profile on ViTs of width 128-256, 65-257 tokens, 2-8 heads:
 *   ~73 T·D + 1 H·T² values per block and item with cliplab's fused C kernels, ~146 T·D + 5 H·T²
 *   with tfjs' composite ops and QuickGELU, ~170 T·D with exact GELU (T tokens, D width, H heads,
 *   MLP ratio 4; the text mask adds one H·T²); the embeddings ~16 (fused) or ~30 T·D.
 *   ModifiedResNet (64 px, width 32): ~5.5 (fused) or ~11 values per element of each conv's output.
 * - Gradients: one copy of the trainable weights; backward workspace: one more (the transposed
 *   weights of every linear layer's input gradient, kept until the backward pass ends), two with
 *   the composite kernels. AdamW in tfjs ops (no fused C library) holds ~22 temporaries the size
 *   of the weights while it updates (all in one tidy); the C version updates in place.
 * - XNNPACK (tfjs-backend-wasm's matmul and conv without a native BLAS) keeps a packed copy of
 *   every weight matrix it multiplies by, for as long as the weight lives: a second copy of the
 *   model on the WASM heap, invisible to tf.memory().
 * These are estimates (within ~±30% of measured peaks); the refusal is for runs that are clearly
 * out of reach, e.g. AdamW on a ViT-L-14 on WASM.
 */
import * as os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { currentBackend } from "../backend/select";
import { ClipConfig, visionHeads, visionTower } from "./config";
import { clipParamSpecs, numel, resnetPlan, type ParamSpec } from "./params";

/** The 32-bit WASM heap: tfjs-backend-wasm cannot address more. */
export const WASM_HEAP_CEILING = 4 * 2 ** 30;

export type MemoryMode = "inference" | "training";

/** Which kernels run the model; they decide the workspace and what training keeps. */
export interface KernelPath {
  /** Matmuls and convolutions keep a packed copy of each weight (tfjs-backend-wasm's XNNPACK, when no native BLAS took over). */
  packsWeights: boolean;
  /** cliplab's fused C kernels (attention, LayerNorm, activations, BatchNorm, in-place AdamW). */
  fused: boolean;
}

export interface MemoryEstimateOptions {
  mode: MemoryMode;
  /** Items per encoder call (inference; images, and texts unless `texts` is given) or image-text pairs per step (training). */
  batch: number;
  /** Inference: texts per call, when not `batch`. */
  texts?: number;
  /** Training: the optimizer, whose state is two moments per trainable weight (default "adamw"). */
  optimizer?: "adamw";
  /** Training: the image tower is frozen (no gradients or moments; run outside the gradient tape, as open_clip's lock). */
  lockImage?: boolean;
  /** Training: the text tower is frozen. */
  lockText?: boolean;
  /** Training: each transformer block is recomputed in the backward pass, keeping only its input. */
  gradCheckpointing?: boolean;
  /** Default: the running backend's (see `activeKernelPath`). */
  kernels?: KernelPath;
}

/** Bytes, by part; `total` is their sum. */
export interface MemoryEstimate {
  mode: MemoryMode;
  batch: number;
  weights: number;
  /** XNNPACK's packed weight copies (0 with a native BLAS or off WASM). */
  packedWeights: number;
  gradients: number;
  /** AdamW's first and second moments. */
  optimizerState: number;
  /** Inference: the larger of one image batch's and one text batch's; training: what the backward pass keeps. */
  activations: number;
  /** Training: backward-pass or optimizer-update temporaries beyond the above, whichever phase peaks higher. */
  workspace: number;
  total: number;
}

export interface MemoryCeiling {
  backend: string;
  /** The most the engine can hold: the WASM heap's 4 GiB (or the machine's memory, if less); else the machine's (or its cgroup's). */
  ceiling: number;
  /** What tensors hold now (tf.memory().numBytes), plus XNNPACK's packed copies of the live weights. */
  inUse: number;
  /** What a new run may use: the ceiling less what is in use, and no more than the machine has available. */
  free: number;
  /** Names the ceiling in messages, e.g. "the wasm backend's 4 GiB heap". */
  what: string;
}

/** A run that will not fit, refused before it starts. */
export class MemoryRefusedError extends Error {
  override name = "MemoryRefusedError";
  constructor(
    message: string,
    readonly estimate: MemoryEstimate,
    readonly ceiling: MemoryCeiling,
  ) {
    super(message);
  }
}

type AnyConfig = {
  vision_cfg?: { image_size?: number; width?: number; patch_size?: number | null; head_width?: number; mlp_ratio?: number };
  text_cfg?: { context_length?: number; width?: number; heads?: number; mlp_ratio?: number };
};

/**
 * Activation bytes per image and per text of one transformer block (the model frees each block's
 * input, so one block's working set is the peak): the residual stream, q/k/v, the MLP hidden
 * layer and the attention matrix, float32, with a factor 2 for the temporaries kernels hold.
 * A ModifiedResNet's peak is its stem at half resolution with width/2 channels, times 6 tensors.
 */
export function activationBytes(config: AnyConfig): { image: number; text: number } {
  const v = config.vision_cfg ?? {};
  const t = config.text_cfg ?? {};
  let image = 0;
  if (v.image_size && v.width) {
    if (v.patch_size) {
      const tokens = (v.image_size / v.patch_size) ** 2 + 1;
      const heads = v.width / (v.head_width ?? 64);
      image = 2 * 4 * (tokens * v.width * (4 + 2 * (v.mlp_ratio ?? 4)) + heads * tokens * tokens);
    } else {
      image = 2 * 4 * 6 * (v.image_size / 2) ** 2 * v.width;
    }
  }
  let text = 0;
  if (t.context_length && t.width) {
    const T = t.context_length;
    text = 2 * 4 * (T * t.width * (4 + 2 * (t.mlp_ratio ?? 4)) + (t.heads ?? 8) * T * T);
  }
  return { image, text };
}

/** The kernels of the running backend: packing unless a native BLAS runs the wasm matmuls; fused when cliplab's C library is loaded. */
export function activeKernelPath(): KernelPath {
  if (tf.getBackend() !== "wasm") return { packsWeights: false, fused: false };
  const choice = currentBackend();
  const ours = choice?.name === "wasm";
  return { packsWeights: !(ours && choice.blas), fused: Boolean(ours && choice.fused) };
}

function isVisual(name: string): boolean {
  return name.startsWith("visual.");
}

/** Weights that matmuls or convolutions take as their second operand (XNNPACK packs these). */
function isMatrixWeight(spec: ParamSpec): boolean {
  return spec.layout !== "same" || spec.name === "visual.proj" || spec.name === "text_projection";
}

function bytesOf(specs: ParamSpec[]): number {
  return 4 * specs.reduce((n, s) => n + numel(s.shape), 0);
}

/**
 * Training activations (values, not bytes) of `layers` pre-LN blocks per item; with gradient
 * checkpointing each block keeps its input and one block at a time is recomputed.
 */
function transformerTrainValues(tokens: number, width: number, heads: number, layers: number, mlpRatio: number, kernels: KernelPath, quickGelu: boolean, masked: boolean, checkpointed: boolean): number {
  const td = tokens * width * ((2 + mlpRatio) / 6);
  const att = heads * tokens * tokens;
  // Composite exact GELU (mul, erf, add, mul) keeps more than QuickGELU (mul, sigmoid, mul).
  const perBlock = kernels.fused ? 73 * td + (masked ? 2 : 1) * att : (quickGelu ? 146 : 170) * td + (masked ? 6 : 5) * att;
  const fused = kernels.fused;
  const blocks = checkpointed ? layers * tokens * width + perBlock : layers * perBlock;
  return blocks + (fused ? 16 : 30) * tokens * width;
}

/** Elements of every conv output of a ModifiedResNet for one image. */
function resnetActivationElements(cfg: ClipConfig): number {
  const v = cfg.vision_cfg;
  let side = v.image_size / 2;
  let n = side * side * (v.width / 2) * 2 + side * side * v.width; // stem convs at half resolution
  side /= 2; // stem average pool
  n += side * side * v.width;
  for (const b of resnetPlan(cfg)) {
    const out = side / b.stride;
    n += 2 * side * side * b.planes + (b.stride > 1 ? out * out * b.planes : 0) + out * out * 4 * b.planes; // conv1, conv2, pool, conv3
    if (b.downsample) n += (b.stride > 1 ? out * out * b.inplanes : 0) + out * out * 4 * b.planes; // pool, conv
    n += out * out * 4 * b.planes; // residual sum and ReLU
    side = out;
  }
  return n;
}

function imageTrainBytes(cfg: ClipConfig, kernels: KernelPath, checkpointed: boolean): number {
  const v = cfg.vision_cfg;
  if (visionTower(cfg) === "ModifiedResNet") return 4 * (kernels.fused ? 6 : 11) * resnetActivationElements(cfg);
  const tokens = (v.image_size / (v.patch_size as number)) ** 2 + 1;
  return 4 * transformerTrainValues(tokens, v.width, visionHeads(cfg), v.layers as number, v.mlp_ratio, kernels, cfg.quick_gelu, false, checkpointed);
}

function textTrainBytes(cfg: ClipConfig, kernels: KernelPath, checkpointed: boolean): number {
  const t = cfg.text_cfg;
  return 4 * transformerTrainValues(t.context_length, t.width, t.heads, t.layers, t.mlp_ratio, kernels, cfg.quick_gelu, true, checkpointed);
}

function checkBatch(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`estimateMemory: ${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The memory a run of `config` needs, by part (bytes). */
export function estimateMemory(config: ClipConfig, opts: MemoryEstimateOptions): MemoryEstimate {
  if (opts.mode !== "inference" && opts.mode !== "training") {
    throw new RangeError(`estimateMemory: mode must be "inference" or "training", got ${JSON.stringify(opts.mode)}`);
  }
  if (opts.optimizer !== undefined && opts.optimizer !== "adamw") {
    throw new RangeError(`estimateMemory: optimizer must be "adamw", got ${JSON.stringify(opts.optimizer)}`);
  }
  const batch = checkBatch("batch", opts.batch);
  const kernels = opts.kernels ?? activeKernelPath();
  const specs = clipParamSpecs(config);
  const weights = bytesOf(specs);
  const packedWeights = kernels.packsWeights ? bytesOf(specs.filter(isMatrixWeight)) : 0;
  const perItem = activationBytes(config);
  const base = { mode: opts.mode, batch, weights, packedWeights };
  if (opts.mode === "inference") {
    const texts = opts.texts === undefined ? batch : checkBatch("texts", opts.texts);
    const activations = Math.max(batch * perItem.image, texts * perItem.text);
    return { ...base, gradients: 0, optimizerState: 0, activations, workspace: 0, total: weights + packedWeights + activations };
  }
  const locked = (s: ParamSpec) => (isVisual(s.name) ? Boolean(opts.lockImage) : s.name !== "logit_scale" && Boolean(opts.lockText));
  const trainable = specs.filter((s) => s.trainable && !locked(s));
  const gradients = bytesOf(trainable);
  const optimizerState = 2 * gradients;
  // A locked tower runs forward only: one block's working set for the batch.
  const ckpt = Boolean(opts.gradCheckpointing);
  const activations =
    batch * (opts.lockImage ? perItem.image : imageTrainBytes(config, kernels, ckpt)) + batch * (opts.lockText ? perItem.text : textTrainBytes(config, kernels, ckpt));
  const matrices = bytesOf(trainable.filter(isMatrixWeight));
  const backward = (kernels.fused ? 1 : 2) * gradients + (kernels.packsWeights ? matrices : 0);
  const update = kernels.fused ? 0 : 22 * gradients;
  const workspace = Math.max(backward, update - activations);
  return { ...base, gradients, optimizerState, activations, workspace, total: weights + packedWeights + gradients + optimizerState + activations + workspace };
}

function heapBytes(): number | undefined {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength;
}

/** Bytes XNNPACK packs for the live trainable weight matrices (not in tf.memory()). */
function packedBytesOfLiveWeights(): number {
  let n = 0;
  for (const v of Object.values(tf.engine().registeredVariables)) {
    if (v.isDisposed || !v.trainable || v.rank < 2 || /(token_embedding\.weight|positional_embedding|class_embedding)$/.test(v.name)) continue;
    n += 4 * v.size;
  }
  return n;
}

/** What the running engine can hold, holds, and has left (see `MemoryCeiling`). */
export function memoryCeiling(): MemoryCeiling {
  const backend = tf.getBackend();
  const tensors = tf.memory().numBytes;
  const constrained = typeof process.constrainedMemory === "function" ? process.constrainedMemory() : 0;
  const machine = constrained && constrained > 0 ? Math.min(constrained, os.totalmem()) : os.totalmem();
  const available = os.freemem();
  if (backend === "wasm") {
    const inUse = tensors + (activeKernelPath().packsWeights ? packedBytesOfLiveWeights() : 0);
    const ceiling = Math.min(WASM_HEAP_CEILING, machine);
    // The heap's grown but unused part is already resident, so it counts as available.
    const reusable = Math.max(0, (heapBytes() ?? 0) - inUse);
    const free = Math.max(0, Math.min(ceiling - inUse, available + reusable));
    return { backend, ceiling, inUse, free, what: ceiling === WASM_HEAP_CEILING ? "the wasm backend's 4 GiB heap" : `this machine's ${gib(ceiling)} GiB` };
  }
  return { backend, ceiling: machine, inUse: tensors, free: Math.max(0, Math.min(machine - tensors, available)), what: `this machine's ${gib(machine)} GiB (the ${backend} backend)` };
}

function gib(bytes: number): string {
  const g = bytes / 2 ** 30;
  return g >= 10 ? g.toFixed(0) : g.toFixed(1);
}

/** "1.6 GiB", "37 MiB": GiB from a tenth of one up. */
export function formatBytes(bytes: number): string {
  return bytes >= 0.1 * 2 ** 30 ? `${gib(bytes)} GiB` : `${Math.ceil(bytes / 2 ** 20)} MiB`;
}

/** "weights 1.6 GiB + gradients 1.6 GiB + ...": the parts that are not 0. */
export function describeEstimate(e: MemoryEstimate): string {
  const parts: [string, number][] = [
    ["weights", e.weights],
    ["XNNPACK's packed weights", e.packedWeights],
    ["gradients", e.gradients],
    ["AdamW moments", e.optimizerState],
    [`activations at batch ${e.batch}`, e.activations],
    ["workspace", e.workspace],
  ];
  return parts
    .filter(([, b]) => b > 0)
    .map(([name, b]) => `${name} ${formatBytes(b)}`)
    .join(" + ");
}

/**
 * Refuses a run that will not fit (MemoryRefusedError, one line: the estimate, its parts, the
 * ceiling and what is free). `what` names the run ("AdamW training of ViT-L-14"); `resident` is
 * the part of the estimate already allocated (a model that is loaded), not needed again.
 */
export function assertFitsInMemory(estimate: MemoryEstimate, what: string, opts: { resident?: number; ceiling?: MemoryCeiling } = {}): void {
  const ceiling = opts.ceiling ?? memoryCeiling();
  const needed = estimate.total - (opts.resident ?? 0);
  if (needed <= ceiling.free) return;
  const remedy =
    estimate.mode === "training"
      ? "use a smaller batch or model, lock a tower, or a backend without the 4 GiB limit (CLIPLAB_BACKEND=tensorflow)"
      : "use a smaller batch or model, or a backend without the 4 GiB limit (CLIPLAB_BACKEND=tensorflow)";
  throw new MemoryRefusedError(
    `${what} needs ~${formatBytes(estimate.total)} (${describeEstimate(estimate)}), more than ${ceiling.what} has free (${formatBytes(ceiling.free)} of ${formatBytes(ceiling.ceiling)}, ${formatBytes(ceiling.inUse)} in use): ${remedy}`,
    estimate,
    ceiling,
  );
}

/**
 * The encoder's default activation budget for one batch: a quarter of what the engine has free,
 * within [16 MiB, 1 GiB] (large batches gain nothing, and the WASM heap never gives memory back).
 */
export function defaultActivationBudget(ceiling: MemoryCeiling = memoryCeiling()): number {
  return Math.min(2 ** 30, Math.max(16 * 2 ** 20, Math.floor(ceiling.free / 4)));
}

/** What the training check reads of the trainer's options (TrainOptions has these fields). */
export interface TrainingMemoryOptions {
  batchSize: number;
  lockImage?: boolean;
  lockText?: boolean;
  gradCheckpointing?: boolean;
  /** Micro-batches per step (open_clip's --accum-freq; default 1): memory follows `batchSize`, one micro-batch. */
  accumFreq?: number;
}

/**
 * Training peaks run above the estimate's centre often enough to matter near the ceiling: a
 * ViT-B-32 at batch 4 without gradient checkpointing, estimated at 3.87 GiB, aborted the 4 GiB
 * WASM module ("memory access out of bounds") in its second AdamW step (bench/finetune_levers.ts),
 * while runs estimated at 2.7-3.1 GiB trained. So a training run must fit with this margin.
 */
export const TRAINING_MEMORY_MARGIN = 1.1;

/** Where a training run is checked: `ceiling` and `kernels` default to the running engine's. */
export interface TrainingFitContext {
  /** The model's weights are already allocated (checked after the model is built or loaded). */
  modelLoaded?: boolean;
  ceiling?: MemoryCeiling;
  kernels?: KernelPath;
}

function trainingFit(config: ClipConfig, { modelLoaded = false, ceiling, kernels }: TrainingFitContext) {
  const limit = ceiling ?? memoryCeiling();
  const estimateFor = (o: TrainingMemoryOptions) =>
    estimateMemory(config, { mode: "training", batch: o.batchSize, optimizer: "adamw", lockImage: o.lockImage, lockText: o.lockText, gradCheckpointing: o.gradCheckpointing, kernels });
  // A loaded model's weights (and on XNNPACK their packed copies) are already in memoryCeiling().inUse.
  const fits = (e: MemoryEstimate) => TRAINING_MEMORY_MARGIN * e.total - (modelLoaded ? e.weights + e.packedWeights : 0) <= limit.free;
  return { estimateFor, fits, limit };
}

/**
 * The trainer's `gradCheckpointing: "auto"`: true when the run does not fit without gradient
 * checkpointing and does with it (the gradients are the same either way; only time is spent).
 */
export function trainingNeedsCheckpointing(config: ClipConfig, opts: TrainingMemoryOptions, where: TrainingFitContext = {}): boolean {
  const { estimateFor, fits } = trainingFit(config, where);
  return !fits(estimateFor({ ...opts, gradCheckpointing: false })) && fits(estimateFor({ ...opts, gradCheckpointing: true }));
}

/**
 * Refuses AdamW training of `config` that will not fit, before the optimizer exists (see
 * `assertFitsInMemory`); `name` names the model in the message. `modelLoaded`: the weights are
 * already allocated (see `TrainingFitContext`). The refusal ends with the
 * open_clip flags that would fit, each with its estimate: --grad-checkpointing, --lock-image,
 * --lock-text, and the same global batch as --batch-size B/K --accum-freq K.
 */
export function assertTrainingFits(config: ClipConfig, opts: TrainingMemoryOptions, name: string, where: TrainingFitContext = {}): void {
  const { estimateFor, fits, limit } = trainingFit(config, where);
  const estimate = estimateFor(opts);
  if (fits(estimate)) return;
  const alternatives: string[] = [];
  const consider = (flags: string, o: TrainingMemoryOptions): boolean => {
    const e = estimateFor(o);
    if (fits(e)) alternatives.push(`${flags} (~${formatBytes(e.total)})`);
    return fits(e);
  };
  if (!opts.gradCheckpointing) consider("--grad-checkpointing", { ...opts, gradCheckpointing: true });
  // Locking the second tower too would leave nothing but the temperature to train.
  if (!opts.lockImage && !opts.lockText) consider("--lock-image", { ...opts, lockImage: true });
  if (!opts.lockImage && !opts.lockText) consider("--lock-text", { ...opts, lockText: true });
  // The same global batch in K micro-batches (open_clip's --accum-freq): the largest that fits.
  const accum = opts.accumFreq ?? 1;
  for (let k = 2; k <= opts.batchSize && opts.batchSize % k === 0; k *= 2) {
    if (consider(`--batch-size ${opts.batchSize / k} --accum-freq ${k * accum}`, { ...opts, batchSize: opts.batchSize / k })) break;
  }
  const margin = `${Math.round((TRAINING_MEMORY_MARGIN - 1) * 100)}%`;
  throw new MemoryRefusedError(
    `AdamW training of ${name} at batch ${opts.batchSize} needs ~${formatBytes(estimate.total)} (${describeEstimate(estimate)}), with a ${margin} margin more than ${limit.what} has free ` +
      `(${formatBytes(limit.free)} of ${formatBytes(limit.ceiling)}, ${formatBytes(limit.inUse)} in use): ` +
      (alternatives.length ? `would fit: ${alternatives.join(", ")}; or ` : "") +
      "use a smaller batch or model, lock a tower, or a backend without the 4 GiB limit (CLIPLAB_BACKEND=tensorflow)",
    estimate,
    limit,
  );
}
