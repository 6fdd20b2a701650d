/**
 * How the prompt study reads its two datasets: through the data pipeline (`preparedStream`, the
 * model's own preprocessing) and the batched encoder (`encodeImages`), never a loop of its own.
 *
 * Training split: the study needs only the validation images and the k-shot images, a few
 * hundred out of possibly many thousands, chosen from the labels. So it reads the labels first
 * (one pass over the items, no decoding), carves and samples positions from them, and then
 * decodes and encodes only the chosen items: by random access (`ds.get`) where the source has
 * it, else by a second pass that keeps the chosen positions (WebDataset shards).
 *
 * Test split: one pass, every image encoded, each paired with its own captions or one
 * generated caption (`pairedCaptions`, seeded by (seed, item index)) for retrieval.
 */
import { readIndexed, type DataItem, type Dataset, type ReadOptions, type SkippedItem } from "../data/dataset";
import { preparedStream } from "../data/stream";
import type { ImageTransform } from "../image/transform";
import { encodeImages, type EncodedImages, type EncodeProgress, type ImageFeatureModel } from "../eval/encode";
import type { FeatureSet } from "./prompt_bank";

/** Labels of a training split, by position in the read: item `indices[j]` has label `labels[j]`. */
export interface LabelPass {
  /** Source positions of the items read (gaps where an unreadable item was skipped). */
  indices: Int32Array;
  labels: Int32Array;
  keys: string[];
}

export interface SplitReadOptions {
  /** First N items; default all. */
  limit?: number;
  skipBadImages?: boolean;
  onSkip?: (s: SkippedItem) => void;
}

/** Reads every item's label (images are not decoded). Each item must have a label in [0, numClasses). */
export async function readLabels(ds: Dataset, numClasses: number, opts: SplitReadOptions = {}): Promise<LabelPass> {
  const indices: number[] = [];
  const labels: number[] = [];
  const keys: string[] = [];
  for await (const item of ds.items({ limit: opts.limit, skipBadImages: opts.skipBadImages, onSkip: opts.onSkip })) {
    if (item.label === undefined) throw new RangeError(`${item.key}: has no label; the prompt study's training split needs one for every image`);
    if (!(item.label >= 0 && item.label < numClasses)) throw new RangeError(`${item.key}: label ${item.label} outside the ${numClasses} classes [0, ${numClasses})`);
    indices.push(item.index);
    labels.push(item.label);
    keys.push(item.key);
  }
  if (labels.length === 0) throw new RangeError(`${ds.spec}: the training split has no items`);
  return { indices: Int32Array.from(indices), labels: Int32Array.from(labels), keys };
}

/**
 * The items of `ds` at source positions `positions` (sorted, distinct), as a dataset of their
 * own: by `ds.get` where the source has it, else by reading the first `readLimit` items and
 * keeping those positions.
 */
export function itemsAt(ds: Dataset, positions: Int32Array, readLimit?: number): Dataset {
  const wanted = new Set(positions);
  const get = ds.get?.bind(ds);
  return {
    spec: ds.spec,
    name: ds.name,
    classNames: ds.classNames,
    templates: ds.templates,
    groupKeys: ds.groupKeys,
    hasCaptions: ds.hasCaptions,
    hasLabels: ds.hasLabels,
    captioner: ds.captioner,
    size: positions.length,
    items(opts: ReadOptions = {}): AsyncIterable<DataItem> {
      const skip = { skipBadImages: opts.skipBadImages, onSkip: opts.onSkip };
      if (get) return readIndexed(positions.length, (j) => get(positions[j]), skip);
      return (async function* () {
        let left = wanted.size;
        for await (const item of ds.items({ limit: readLimit, ...skip })) {
          if (!wanted.has(item.index)) continue;
          yield item;
          if (--left === 0) return;
        }
      })();
    },
  };
}

export interface EncodeSplitOptions extends SplitReadOptions {
  transform: ImageTransform;
  batchSize?: number;
  /** Pair every item without captions with one generated caption, seeded (the test split). */
  captionSeed?: number;
  onProgress?: (p: EncodeProgress) => void;
}

/** Unit image features of a dataset's items (with their rows), through the pipeline and the batched encoder. */
export async function encodeSplit(model: ImageFeatureModel, ds: Dataset, opts: EncodeSplitOptions): Promise<EncodedImages> {
  const { transform } = opts;
  const items = preparedStream(ds, transform, { limit: opts.limit, skipBadImages: opts.skipBadImages, onSkip: opts.onSkip, captionSeed: opts.captionSeed });
  const total = ds.size === undefined ? opts.limit : Math.min(ds.size, opts.limit ?? Infinity);
  return encodeImages(model, items, { mean: transform.mean, std: transform.std, batchSize: opts.batchSize, normalize: true, onProgress: opts.onProgress, total });
}

/**
 * The feature set of the encoded rows at source positions `positions`, in that order. A position
 * the encoder never saw (its image was skipped as unreadable) is left out, or, with `required`,
 * is a one-line error naming the item.
 */
export function featuresAt(encoded: EncodedImages, positions: ArrayLike<number>, opts: { required?: string; keyOf?: (position: number) => string } = {}): FeatureSet {
  const row = new Map<number, number>();
  encoded.indices.forEach((p, r) => row.set(p, r));
  const dim = encoded.dim;
  const rows: number[] = [];
  for (let i = 0; i < positions.length; i++) {
    const r = row.get(positions[i]);
    if (r !== undefined) rows.push(r);
    else if (opts.required) throw new RangeError(`${opts.keyOf?.(positions[i]) ?? `item ${positions[i]}`}: was skipped as unreadable, but ${opts.required} needs it; remove the file or run without it`);
  }
  const features = new Float32Array(rows.length * dim);
  const labels = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    features.set(encoded.values.subarray(r * dim, (r + 1) * dim), i * dim);
    labels[i] = encoded.labels[r];
  });
  return { features, dim, n: rows.length, labels };
}
