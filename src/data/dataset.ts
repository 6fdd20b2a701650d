/**
 * The dataset layer: one interface for every source (Fashion-MNIST, image folders, CSV/TSV pairs,
 * WebDataset shards, Parquet/Arrow tables), streaming, so a split never needs to fit in memory.
 *
 * A source yields `DataItem`s in a fixed order. The image is either the file's encoded bytes
 * (decoded later, off the main thread, by the preprocessing pipeline) or already decoded in its
 * stored mode (Fashion-MNIST's grey pixels). Everything above the sources (the pipeline, the
 * batched encoder, training, the studies and audits, the CLI) sees only this interface.
 *
 * Sharding (`--shard I/N`): every N-th item from I (0-based) in source order, so N processes
 * together see each item exactly once and their outputs concatenate, in shard order then
 * position, to a permutation of the single-process output (`shardOrder` gives the permutation).
 */
import type { StoredImage } from "../image/stored";
import type { Random } from "../util/random";

/** An item's image: the file's bytes (PNG/JPEG/WebP/GIF/TIFF/AVIF), or decoded pixels. */
export type ImageRef = { kind: "encoded"; bytes: Uint8Array } | { kind: "decoded"; image: StoredImage };

export interface DataItem {
  /** Where the item comes from, for messages and outputs: a path, `file:line`, `shard.tar:key`, `file#row`. */
  key: string;
  /** Position in the source order (before sharding). */
  index: number;
  image: ImageRef;
  /** Class index into the dataset's `classNames`, when the source has labels. */
  label?: number;
  /** Zero or more captions. */
  captions: string[];
  /** Named attributes (a CSV column, a Parquet column, a `json` field), for fairness audits. */
  groups?: Readonly<Record<string, string>>;
}

export interface Shard {
  /** 0-based shard index, < count. */
  index: number;
  count: number;
}

/** An item left out under `--skip-bad-images`, and why. */
export interface SkippedItem {
  key: string;
  reason: string;
}

export interface ReadOptions {
  shard?: Shard;
  /** Stop after this many items (after sharding). */
  limit?: number;
  /** Go on past unreadable images, reporting each through `onSkip`; otherwise the first one throws. */
  skipBadImages?: boolean;
  onSkip?: (item: SkippedItem) => void;
}

/**
 * Captions made for items that have none: from class names and templates, or Fashion-MNIST's
 * generator (templates, synonyms and attributes measured from the pixels).
 */
export interface Captioner {
  /** One caption for `item`, drawn with `rng` (training: a fresh draw per step). */
  caption(item: DataItem, rng: Random): string;
}

export interface Dataset {
  /** The spec it was opened from, e.g. `imagefolder:photos`. */
  readonly spec: string;
  /** A short name for outputs (CLIP_benchmark's `dataset` field): the folder or file base name. */
  readonly name: string;
  /** Class names in label order, where the source has classes. */
  readonly classNames?: readonly string[];
  /** Zero-shot templates that came with the source (WebDataset's `zeroshot_classification_templates.txt`). */
  readonly templates?: readonly string[];
  /** Group attributes every item carries (keys of `DataItem.groups`). */
  readonly groupKeys: readonly string[];
  /** True when items carry their own captions. */
  readonly hasCaptions: boolean;
  /** True when items carry labels. */
  readonly hasLabels: boolean;
  /** Number of items, when known without reading them all (undefined for some shard sets). */
  readonly size?: number;
  /** A caption generator for items without captions (labelled sources). */
  readonly captioner?: Captioner;
  /** The items in source order (sharded and limited as asked). */
  items(opts?: ReadOptions): AsyncIterable<DataItem>;
  /** Random access, where the source supports it (every source but WebDataset shards). */
  get?(index: number): Promise<DataItem>;
}

/** A data problem: one line naming the file, row, shard or key, and what was expected. */
export class DataError extends Error {
  override name = "DataError";
  constructor(
    readonly where: string,
    detail: string,
  ) {
    super(`${where}: ${detail}`);
  }
}

/** Parses `I/N` (`--shard`): 0 <= I < N. */
export function parseShard(text: string, what = "--shard"): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(String(text).trim());
  if (!m) throw new RangeError(`${what} must be I/N with 0 <= I < N (e.g. 0/4), got ${JSON.stringify(text)}`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new RangeError(`${what} must be I/N with 0 <= I < N (e.g. 0/4), got ${JSON.stringify(text)}`);
  return { index, count };
}

/** True when the item at source position `index` belongs to `shard`. */
export function inShard(index: number, shard: Shard | undefined): boolean {
  return !shard || index % shard.count === shard.index;
}

/**
 * Source positions of the concatenation of shards 0..N-1 of `size` items: entry j is the source
 * index of the j-th row of the concatenated outputs.
 */
export function shardOrder(size: number, count: number): Int32Array {
  const out = new Int32Array(size);
  let j = 0;
  for (let s = 0; s < count; s++) for (let i = s; i < size; i += count) out[j++] = i;
  return out;
}

/**
 * The common loop of random-access sources: positions 0..size-1 filtered by shard and limit,
 * each read with `read` (which throws a DataError for an unreadable item). Under `skipBadImages`,
 * a DataError is reported through `onSkip` and the item is left out; other errors always throw.
 */
export async function* readIndexed(size: number, read: (index: number) => Promise<DataItem>, opts: ReadOptions = {}): AsyncGenerator<DataItem> {
  const limit = opts.limit ?? Infinity;
  let yielded = 0;
  for (let i = opts.shard ? opts.shard.index : 0; i < size && yielded < limit; i += opts.shard ? opts.shard.count : 1) {
    let item: DataItem;
    try {
      item = await read(i);
    } catch (err) {
      if (opts.skipBadImages && err instanceof DataError) {
        opts.onSkip?.({ key: err.where, reason: err.message.slice(err.where.length + 2) });
        continue;
      }
      throw err;
    }
    yielded++;
    yield item;
  }
}
