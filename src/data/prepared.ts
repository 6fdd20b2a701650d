/**
 * Preprocessed items: what the data pipeline yields (the model's input as uint8 RGB at its
 * resolution, before normalisation) and a materialised set of them, for the studies that go over
 * the same images many times (corruptions, attacks, fairness probes).
 *
 * A set is refused before it is read when its pixels would pass a memory ceiling, with the
 * estimate in the message; the studies cap their image counts (`limit`) well below it.
 */
import * as tf from "@tensorflow/tfjs";
import type { PreparedItem } from "./prepare";

/** One preprocessed item (what the pipeline yields): uint8 RGB `[S, S, 3]` at the model's input size. */
export type PreparedImage = PreparedItem;

/** The per-item columns that travel with images and their features. */
export interface ImageRows {
  keys: string[];
  /** Source positions (before sharding). */
  indices: Int32Array;
  /** Class per item, -1 where the source has none. */
  labels: Int32Array;
  captions: string[][];
  groups: Readonly<Record<string, string>>[];
}

/** Preprocessed images in memory: `pixels` is `[n, size, size, 3]` uint8. */
export interface PreparedSet extends ImageRows {
  pixels: Uint8Array;
  n: number;
  size: number;
}

/** Pixels a set may hold by default: 2 GiB (about 14,000 images at 224 px). */
export const DEFAULT_PREPARED_CEILING = 2 * 2 ** 30;

export interface CollectOptions {
  /** Items the caller expects (from the source's size and its own limit): checked against the ceiling first. */
  expected?: number;
  /** Bytes of pixels allowed; default DEFAULT_PREPARED_CEILING. */
  ceilingBytes?: number;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/** The rows of items, as columns. */
export function rowsOf(items: readonly Omit<PreparedImage, "pixels">[]): ImageRows {
  return {
    keys: items.map((it) => it.key),
    indices: Int32Array.from(items, (it) => it.index),
    labels: Int32Array.from(items, (it) => it.label ?? -1),
    captions: items.map((it) => it.captions),
    groups: items.map((it) => it.groups ?? {}),
  };
}

/** Reads a stream of prepared items into one set (all of one size). */
export async function collectPrepared(items: AsyncIterable<PreparedImage>, size: number, opts: CollectOptions = {}): Promise<PreparedSet> {
  const per = size * size * 3;
  const ceiling = opts.ceilingBytes ?? DEFAULT_PREPARED_CEILING;
  if (opts.expected !== undefined && opts.expected * per > ceiling) {
    throw new RangeError(
      `${opts.expected} images at ${size}x${size} need ${gib(opts.expected * per)} of pixels in memory, over the ${gib(ceiling)} ceiling; use a smaller --limit`,
    );
  }
  let pixels = new Uint8Array(per * Math.min(opts.expected ?? 64, Math.floor(ceiling / per)));
  const meta: Omit<PreparedImage, "pixels">[] = [];
  for await (const it of items) {
    if (it.pixels.length !== per) throw new RangeError(`${it.key}: ${it.pixels.length} pixel values, expected ${size}x${size}x3`);
    if ((meta.length + 1) * per > ceiling) throw new RangeError(`more than ${meta.length} images at ${size}x${size} pass the ${gib(ceiling)} ceiling for pixels in memory; use a smaller --limit`);
    if ((meta.length + 1) * per > pixels.length) {
      const grown = new Uint8Array(Math.min(Math.max(2 * pixels.length, (meta.length + 1) * per), Math.floor(ceiling / per) * per));
      grown.set(pixels);
      pixels = grown;
    }
    pixels.set(it.pixels, meta.length * per);
    const { pixels: _p, ...rest } = it;
    meta.push(rest);
  }
  const n = meta.length;
  return { ...rowsOf(meta), pixels: pixels.length === n * per ? pixels : pixels.slice(0, n * per), n, size };
}

function checkRange(set: PreparedSet, start: number, end: number, fn: string): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > set.n || start >= end) {
    throw new RangeError(`${fn}: images [${start}, ${end}) outside the set's [0, ${set.n})`);
  }
}

/** Images [start, end) as `[b, S, S, 3]` float32 in [0, 1] (what attacks and corruptions act on). */
export function preparedBatch01(set: PreparedSet, start: number, end: number): tf.Tensor4D {
  checkRange(set, start, end, "preparedBatch01");
  const per = set.size * set.size * 3;
  const values = new Float32Array((end - start) * per);
  const src = set.pixels.subarray(start * per, end * per);
  for (let i = 0; i < values.length; i++) values[i] = src[i] / 255;
  return tf.tensor4d(values, [end - start, set.size, set.size, 3], "float32");
}

/** The subset of rows `indices` (a copy). */
export function subsetPrepared(set: PreparedSet, indices: ArrayLike<number>): PreparedSet {
  const per = set.size * set.size * 3;
  const pixels = new Uint8Array(indices.length * per);
  const meta: Omit<PreparedImage, "pixels">[] = [];
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i];
    if (!Number.isInteger(r) || r < 0 || r >= set.n) throw new RangeError(`subsetPrepared: index ${r} outside [0, ${set.n})`);
    pixels.set(set.pixels.subarray(r * per, (r + 1) * per), i * per);
    meta.push({ key: set.keys[r], index: set.indices[r], label: set.labels[r] >= 0 ? set.labels[r] : undefined, captions: set.captions[r], groups: set.groups[r] });
  }
  return { ...rowsOf(meta), pixels, n: indices.length, size: set.size };
}

/** The items of a set, as a stream (to encode it with the batched encoder). */
export async function* preparedItems(set: PreparedSet): AsyncGenerator<PreparedImage> {
  const per = set.size * set.size * 3;
  for (let i = 0; i < set.n; i++) {
    yield {
      key: set.keys[i],
      index: set.indices[i],
      label: set.labels[i] >= 0 ? set.labels[i] : undefined,
      captions: set.captions[i],
      groups: set.groups[i],
      pixels: set.pixels.subarray(i * per, (i + 1) * per),
    };
  }
}
