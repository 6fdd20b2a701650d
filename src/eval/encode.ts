/**
 * The batched encoder: images and texts through a CLIP (or any `EmbeddingEngine`) in batches whose
 * size comes from the model config and a memory budget, each batch freed before the next, with
 * progress events. Every study, audit, command and report encodes through here.
 *
 * Features come back unnormalised unless `normalize` is set (CLIP's cosine similarity, Radford et
 * al. 2021, https://arxiv.org/abs/2103.00020, normalises them where it compares them).
 *
 * Texts are tokenised with CLIP's BPE and each batch is cut to its longest row (`packTokens`):
 * under the causal mask the positions after a row's end-of-text token never reach the pooled
 * feature, so this equals the full context for less work.
 */
import * as tf from "@tensorflow/tfjs";
import type { EmbeddingEngine } from "../engine/engine";
import { normalizePixels } from "../image/preprocess";
import { packTokens, tokenizeToIds } from "../text/tokenize";
import { rowsOf, type ImageRows, type PreparedImage } from "../data/prepared";
import { fmtShape } from "./checks";
import { checkPositiveInt } from "../util/checks";
import { activationBytes, defaultActivationBudget } from "../model/memory";

export type { ImageRows, PreparedImage };

/** Row-major features `[n, dim]`. */
export interface FeatureMatrix {
  values: Float32Array;
  n: number;
  dim: number;
}

/** What the encoder needs of a tfjs text tower (`Clip` satisfies it). */
export interface TextFeatureModel {
  encodeText(tokens: tf.Tensor2D): tf.Tensor2D;
  readonly config: { readonly text_cfg: { readonly context_length: number } };
}

/** What the encoder needs of a tfjs image tower (`Clip` satisfies it). */
export interface ImageFeatureModel {
  encodeImage(pixels: tf.Tensor4D): tf.Tensor2D;
  readonly config: { readonly vision_cfg: { readonly image_size: number } };
}

export interface EncodeProgress {
  kind: "images" | "texts";
  done: number;
  /** Undefined when the source does not know its size. */
  total?: number;
}

export interface BatchEncodeOptions {
  /** Items per encoder call; default from the model config and `memoryBudgetBytes`. */
  batchSize?: number;
  /** Activation memory one batch may use; default a quarter of what the engine has free, within [16 MiB, 1 GiB]. */
  memoryBudgetBytes?: number;
  /** Unit-normalise each row. */
  normalize?: boolean;
  onProgress?: (p: EncodeProgress) => void;
}

export interface TextEncodeOptions extends BatchEncodeOptions {
  /** Token ids of a batch as a tensor (the encoder disposes it); default CLIP's BPE, truncating. */
  tokenizer?: (texts: string[]) => tf.Tensor2D;
}

export const DEFAULT_MEMORY_BUDGET = 256 * 2 ** 20;
/** Batches never exceed this, whatever the budget: beyond it the matmuls gain nothing. */
export const MAX_BATCH = 256;

type AnyConfig = {
  vision_cfg?: { image_size?: number; width?: number; patch_size?: number | null; head_width?: number; mlp_ratio?: number };
  text_cfg?: { context_length?: number; width?: number; heads?: number; mlp_ratio?: number };
};

// Per-item activation bytes live with the memory estimate (src/model/memory.ts).
export { activationBytes };

/** Batch sizes that keep one batch's activations within `budget` bytes (1..MAX_BATCH). */
export function batchSizes(config: AnyConfig, budget = DEFAULT_MEMORY_BUDGET): { images: number; texts: number } {
  const a = activationBytes(config);
  const fit = (per: number) => (per > 0 ? Math.max(1, Math.min(MAX_BATCH, Math.floor(budget / per))) : MAX_BATCH);
  return { images: fit(a.image), texts: fit(a.text) };
}

function batchSizeFor(kind: "images" | "texts", config: AnyConfig, opts: BatchEncodeOptions, fn: string): number {
  if (opts.batchSize !== undefined) return checkPositiveInt(fn, "batchSize", opts.batchSize);
  // By default a quarter of what the engine has free (memoryCeiling), within [16 MiB, 1 GiB].
  const budget = opts.memoryBudgetBytes ?? defaultActivationBudget();
  if (!(budget > 0)) throw new RangeError(`${fn}: memoryBudgetBytes must be > 0, got ${budget}`);
  return batchSizes(config, budget)[kind];
}

/** Unit-normalises the rows of `x` in place; a zero or non-finite row is an error naming it. */
export function normalizeRowsInPlace(x: Float32Array, dim: number, what: string): Float32Array {
  for (let r = 0; r < x.length / dim; r++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += x[r * dim + d] ** 2;
    const norm = Math.sqrt(s);
    if (!(norm > 0) || !Number.isFinite(norm)) throw new Error(`${what}: row ${r} has norm ${norm} (a zero or non-finite feature)`);
    for (let d = 0; d < dim; d++) x[r * dim + d] /= norm;
  }
  return x;
}

/** Grows a feature buffer as batches arrive (the total is not always known in advance). */
class FeatureBuffer {
  private values = new Float32Array(0);
  n = 0;
  dim = 0;
  constructor(private readonly fn: string) {}
  push(f: Float32Array, rows: number): void {
    const dim = f.length / rows;
    if (this.n === 0) this.dim = dim;
    else if (dim !== this.dim) throw new Error(`${this.fn}: the encoder returned dimension ${dim}, earlier batches had ${this.dim}`);
    if ((this.n + rows) * dim > this.values.length) {
      const grown = new Float32Array(Math.max((this.n + rows) * dim, 2 * this.values.length));
      grown.set(this.values.subarray(0, this.n * dim));
      this.values = grown;
    }
    this.values.set(f, this.n * dim);
    this.n += rows;
  }
  result(normalize: boolean | undefined): FeatureMatrix {
    const values = this.values.length === this.n * this.dim ? this.values : this.values.slice(0, this.n * this.dim);
    if (normalize) normalizeRowsInPlace(values, this.dim, this.fn);
    return { values, n: this.n, dim: this.dim };
  }
}

/** Features of one tfjs call, read back and freed. */
function readFeatures(fn: string, f: tf.Tensor2D, rows: number): Float32Array {
  try {
    if (!(f instanceof tf.Tensor) || f.rank !== 2 || f.shape[0] !== rows) {
      throw new Error(`${fn}: the encoder returned ${f instanceof tf.Tensor ? `shape ${fmtShape(f)}` : typeof f} for ${rows} inputs, expected [${rows}, D]`);
    }
    return f.dataSync() as Float32Array;
  } finally {
    f.dispose();
  }
}

/** Token ids of one batch, packed to its longest row. */
function batchTokens(texts: string[], contextLength: number): { ids: Int32Array; length: number } {
  return packTokens(tokenizeToIds(texts, { contextLength, truncate: true }));
}

/** Text features `[texts.length, D]` from a tfjs text tower, synchronously. */
export function encodeTexts(model: TextFeatureModel, texts: readonly string[], opts: TextEncodeOptions = {}): FeatureMatrix {
  const fn = "encodeTexts";
  if (!Array.isArray(texts)) throw new TypeError(`${fn}: texts must be an array of strings`);
  const batchSize = batchSizeFor("texts", model.config as AnyConfig, opts, fn);
  const ctx = model.config.text_cfg.context_length;
  const out = new FeatureBuffer(fn);
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = texts.slice(start, start + batchSize) as string[];
    let tokens: tf.Tensor2D;
    if (opts.tokenizer) {
      tokens = opts.tokenizer(batch);
      if (!(tokens instanceof tf.Tensor) || tokens.rank !== 2 || tokens.shape[0] !== batch.length) {
        const got = tokens instanceof tf.Tensor ? `shape ${fmtShape(tokens)}` : typeof tokens;
        if (tokens instanceof tf.Tensor) tokens.dispose();
        throw new Error(`${fn}: the tokenizer must return [${batch.length}, T] token ids for ${batch.length} texts, got ${got}`);
      }
    } else {
      const { ids, length } = batchTokens(batch, ctx);
      tokens = tf.tensor2d(ids, [batch.length, length], "int32");
    }
    let f: tf.Tensor2D;
    try {
      f = model.encodeText(tokens); // [b, D]
    } finally {
      tokens.dispose();
    }
    out.push(readFeatures(fn, f, batch.length), batch.length);
    opts.onProgress?.({ kind: "texts", done: start + batch.length, total: texts.length });
  }
  return out.result(opts.normalize);
}

/** Text features through an engine (onnxruntime or tfjs), asynchronously. */
export async function encodeTextsWith(engine: EmbeddingEngine, texts: readonly string[], opts: BatchEncodeOptions = {}): Promise<FeatureMatrix> {
  const fn = "encodeTextsWith";
  const batchSize = opts.batchSize ?? MAX_BATCH;
  const out = new FeatureBuffer(fn);
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = texts.slice(start, start + batchSize) as string[];
    const { ids, length } = batchTokens(batch, engine.contextLength);
    out.push(await engine.embedTexts(ids, batch.length, length), batch.length);
    opts.onProgress?.({ kind: "texts", done: start + batch.length, total: texts.length });
  }
  return out.result(opts.normalize);
}

/**
 * Image features of `n` images whose CLIP-normalised pixels `pixels(start, end)` returns as a
 * tensor `[end - start, S, S, 3]` (disposed here), from a tfjs image tower, synchronously: the
 * path for pixels already in memory (corruptions, attacks, Fashion-MNIST).
 */
export function encodePixels(model: ImageFeatureModel, pixels: (start: number, end: number) => tf.Tensor4D, n: number, opts: BatchEncodeOptions = {}): FeatureMatrix {
  const fn = "encodePixels";
  const batchSize = batchSizeFor("images", model.config as AnyConfig, opts, fn);
  const out = new FeatureBuffer(fn);
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const batch = pixels(start, end);
    let f: tf.Tensor2D;
    try {
      if (!(batch instanceof tf.Tensor) || batch.rank !== 4 || batch.shape[0] !== end - start) {
        throw new Error(`${fn}: pixels(${start}, ${end}) must return a tf.Tensor4D [${end - start}, S, S, 3], got ${batch instanceof tf.Tensor ? fmtShape(batch) : typeof batch}`);
      }
      f = model.encodeImage(batch); // [b, D]
    } finally {
      if (batch instanceof tf.Tensor) batch.dispose();
    }
    out.push(readFeatures(fn, f, end - start), end - start);
    opts.onProgress?.({ kind: "images", done: end, total: n });
  }
  return out.result(opts.normalize);
}

export interface EncodedImages extends FeatureMatrix, ImageRows {}

export interface ImageEncodeOptions extends BatchEncodeOptions {
  /** CLIP normalisation of the uint8 pixels (the model transform's mean and std). */
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
  /** Items expected, for progress. */
  total?: number;
}

type ImageTarget = ImageFeatureModel | EmbeddingEngine;

function isEngine(t: ImageTarget): t is EmbeddingEngine {
  return typeof (t as EmbeddingEngine).embedImages === "function";
}

/**
 * Encodes a stream of prepared items batch by batch: yields each batch's features `[b, D]` with
 * its rows, so a caller can write them out (embed) without holding the whole split.
 */
export async function* encodeImageBatches(
  target: ImageTarget,
  items: AsyncIterable<PreparedImage>,
  opts: ImageEncodeOptions,
): AsyncGenerator<{ features: Float32Array; rows: ImageRows; size: number }> {
  const fn = "encodeImageBatches";
  const size = isEngine(target) ? target.imageSize : target.config.vision_cfg.image_size;
  const batchSize = isEngine(target) ? (opts.batchSize ?? 8) : batchSizeFor("images", target.config as AnyConfig, opts, fn);
  const per = size * size * 3;
  let done = 0;
  let pending: PreparedImage[] = [];
  const flush = async () => {
    const b = pending.length;
    const pixels = new Float32Array(b * per);
    pending.forEach((it, i) => {
      if (it.pixels.length !== per) throw new Error(`${fn}: ${it.key} has ${it.pixels.length} pixel values, expected ${size}x${size}x3 = ${per} (the model's input)`);
      pixels.set(normalizePixels(it.pixels, opts.mean, opts.std), i * per);
    });
    let features: Float32Array;
    if (isEngine(target)) {
      features = await target.embedImages(pixels, b);
    } else {
      const x = tf.tensor4d(pixels, [b, size, size, 3], "float32");
      let f: tf.Tensor2D;
      try {
        f = target.encodeImage(x); // [b, D]
      } finally {
        x.dispose();
      }
      features = readFeatures(fn, f, b);
    }
    const rows = rowsOf(pending);
    pending = [];
    done += b;
    opts.onProgress?.({ kind: "images", done, total: opts.total });
    return { features, rows, size: b };
  };
  for await (const it of items) {
    pending.push(it);
    if (pending.length === batchSize) yield await flush();
  }
  if (pending.length) yield await flush();
}

/** Encodes a stream of prepared items into one feature matrix with its rows. */
export async function encodeImages(target: ImageTarget, items: AsyncIterable<PreparedImage>, opts: ImageEncodeOptions): Promise<EncodedImages> {
  const fn = "encodeImages";
  const out = new FeatureBuffer(fn);
  const rows: ImageRows = { keys: [], indices: new Int32Array(0), labels: new Int32Array(0), captions: [], groups: [] };
  const indices: number[] = [];
  const labels: number[] = [];
  for await (const b of encodeImageBatches(target, items, opts)) {
    out.push(b.features, b.size);
    rows.keys.push(...b.rows.keys);
    indices.push(...b.rows.indices);
    labels.push(...b.rows.labels);
    rows.captions.push(...b.rows.captions);
    rows.groups.push(...b.rows.groups);
  }
  if (out.n === 0) throw new Error(`${fn}: no images to encode (the source yielded none)`);
  return { ...out.result(opts.normalize), ...rows, indices: Int32Array.from(indices), labels: Int32Array.from(labels) };
}
