// `clip.tokenize`: texts → [B, contextLength] int32 ids with SOT/EOT and zero padding.
// Port of https://github.com/openai/CLIP/blob/main/clip/clip.py (tokenize) on top of
// https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py (see ./bpe.ts).

import * as tf from "@tensorflow/tfjs";
import { ClipBpe } from "./bpe";

export const SOT_TOKEN = 49406;
export const EOT_TOKEN = 49407;
export const DEFAULT_CONTEXT_LENGTH = 77;

export interface TokenizeOptions {
  /** Row length; default 77 as in every released CLIP. */
  contextLength?: number;
  /** Cut over-long texts (keeping EOT in the last slot) instead of throwing; default false. */
  truncate?: boolean;
}

let shared: ClipBpe | undefined;

/** The process-wide tokenizer behind `tokenize`; the vocab is read on first use. */
export function defaultBpe(): ClipBpe {
  shared ??= new ClipBpe();
  return shared;
}

function checkOptions(opts: TokenizeOptions): { contextLength: number; truncate: boolean } {
  const contextLength = opts.contextLength ?? DEFAULT_CONTEXT_LENGTH;
  // SOT and EOT alone need two slots.
  if (!Number.isInteger(contextLength) || contextLength < 2) {
    throw new RangeError(`tokenize: contextLength must be an integer >= 2, got ${String(contextLength)}`);
  }
  const truncate = opts.truncate ?? false;
  if (typeof truncate !== "boolean") {
    throw new TypeError(`tokenize: truncate must be a boolean, got ${String(truncate)}`);
  }
  return { contextLength, truncate };
}

/** `clip.tokenize` without tf: one zero-padded Int32Array of length contextLength per text. */
export function tokenizeToIds(texts: string | readonly string[], opts: TokenizeOptions = {}): Int32Array[] {
  const { contextLength, truncate } = checkOptions(opts);
  const list = typeof texts === "string" ? [texts] : texts;
  const bpe = defaultBpe();
  return list.map((text, i) => {
    if (typeof text !== "string") throw new TypeError(`tokenize: text ${i} is not a string (${typeof text})`);
    const body = bpe.encode(text);
    const row = new Int32Array(contextLength);
    const n = body.length + 2;
    if (n > contextLength && !truncate) {
      throw new Error(
        `tokenize: text ${i} has ${n} tokens (with SOT/EOT), more than contextLength ${contextLength}; pass truncate: true to cut it`,
      );
    }
    row[0] = SOT_TOKEN;
    const kept = Math.min(body.length, contextLength - 2);
    for (let j = 0; j < kept; j++) row[j + 1] = body[j];
    // Upstream cuts to contextLength and then overwrites the last slot with EOT.
    row[kept + 1] = EOT_TOKEN;
    return row;
  });
}

/** `clip.tokenize`: an int32 tensor [B, contextLength]; a single string gives B = 1. */
export function tokenize(texts: string | readonly string[], opts: TokenizeOptions = {}): tf.Tensor2D {
  const rows = tokenizeToIds(texts, opts);
  const { contextLength } = checkOptions(opts);
  const flat = new Int32Array(rows.length * contextLength);
  rows.forEach((row, i) => flat.set(row, i * contextLength));
  return tf.tensor2d(flat, [rows.length, contextLength], "int32");
}

/**
 * Token rows cut to the longest caption of the batch. Under the causal mask the positions after
 * a row's end-of-text token never influence it, so this equals the full context, for less work.
 */
export function packTokens(rows: Int32Array[]): { ids: Int32Array; length: number } {
  let length = 1;
  for (const row of rows) {
    let end = row.length;
    while (end > 1 && row[end - 1] === 0) end--;
    length = Math.max(length, end);
  }
  const ids = new Int32Array(rows.length * length);
  rows.forEach((row, i) => ids.set(row.subarray(0, length), i * length));
  return { ids, length };
}
