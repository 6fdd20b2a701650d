/**
 * A dataset's items, decoded and preprocessed for a model: the one way every study, audit and
 * command reads images. Items come in source order (sharded and limited as asked); decoding and
 * preprocessing run ahead of the consumer in the pipeline's workers.
 */
import type { ImageTransform } from "../image/transform";
import { pairedCaptions } from "./captioner";
import type { DataItem, Dataset, ReadOptions } from "./dataset";
import { collectPrepared, type CollectOptions, type PreparedImage, type PreparedSet } from "./prepared";
import { prepareItems } from "./pipeline";

export interface StreamOptions extends ReadOptions {
  /**
   * Give every item without captions one generated caption (the source's captioner, seeded by
   * (seed, item.index)): the pairing retrieval and matching-pair measures use.
   */
  captionSeed?: number;
}

/** Items with `pairedCaptions` filled in where they had none. */
async function* withPairedCaptions(ds: Dataset, items: AsyncIterable<DataItem>, seed: number): AsyncGenerator<DataItem> {
  for await (const item of items) yield item.captions.length ? item : { ...item, captions: pairedCaptions(item, ds.captioner, seed) };
}

/** The dataset's items as model inputs (uint8 RGB at `transform.size`). */
export function preparedStream(ds: Dataset, transform: ImageTransform, opts: StreamOptions = {}): AsyncIterable<PreparedImage> {
  const { captionSeed, ...read } = opts;
  const items = captionSeed === undefined ? ds.items(read) : withPairedCaptions(ds, ds.items(read), captionSeed);
  return prepareItems(items, transform, { skipBadImages: opts.skipBadImages, onSkip: opts.onSkip });
}

/** How many items a read will give, when the source knows its size. */
export function expectedItems(ds: Dataset, opts: StreamOptions = {}): number | undefined {
  if (ds.size === undefined) return undefined;
  let n = ds.size;
  if (opts.shard) n = Math.max(0, Math.ceil((n - opts.shard.index) / opts.shard.count));
  return opts.limit === undefined ? n : Math.min(n, opts.limit);
}

/** The dataset's items as a preprocessed set in memory (refused up front when it would not fit). */
export async function prepareSet(ds: Dataset, transform: ImageTransform, opts: StreamOptions & CollectOptions = {}): Promise<PreparedSet> {
  const { ceilingBytes, expected, ...read } = opts;
  return collectPrepared(preparedStream(ds, transform, read), transform.size, { ceilingBytes, expected: expected ?? expectedItems(ds, read) });
}
