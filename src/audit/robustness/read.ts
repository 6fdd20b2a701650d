/**
 * How the robustness audit and TeCoA read their images: the first `limit` items of a labelled
 * dataset through the data pipeline (`prepareSet`: decoded, brought to the model's input by its
 * transform, uint8 RGB [n, S, S, 3] in memory), every item checked to carry a label of one of the
 * classes, unreadable ones skipped and counted under `skipBadImages`.
 */
import type { Captioner, Dataset, SkippedItem } from "../../data/dataset";
import type { PreparedSet } from "../../data/prepared";
import { prepareSet } from "../../data/stream";
import { modelTransform, type ClipConfig } from "../../model/config";
import type { ImageTransform } from "../../image/transform";

export interface LabelledRead {
  limit?: number;
  skipBadImages?: boolean;
  onSkip?: (item: SkippedItem) => void;
  /** Pair every item without captions with one generated caption, seeded by (seed, item index). */
  captionSeed?: number;
  /** Captions for items of a source without a caption generator (default: none needed). */
  fallbackCaptioner?: Captioner;
}

export interface LabelledSet {
  set: PreparedSet;
  transform: ImageTransform;
  skipped: SkippedItem[];
}

/** The dataset with `captioner` where it has none (a view: every other member is the dataset's). */
function withCaptioner(ds: Dataset, captioner: Captioner | undefined): Dataset {
  if (ds.captioner || !captioner) return ds;
  return Object.create(ds, { captioner: { value: captioner, enumerable: true } }) as Dataset;
}

/**
 * Reads the first `limit` items of `ds` at `config`'s input size. Throws a one-line error naming
 * the item when one has no label or a label outside the `numClasses` classes, and when nothing
 * could be read.
 */
export async function readLabelledSet(ds: Dataset, config: ClipConfig, numClasses: number, opts: LabelledRead, fn: string): Promise<LabelledSet> {
  const transform = modelTransform(config);
  const skipped: SkippedItem[] = [];
  const set = await prepareSet(withCaptioner(ds, opts.fallbackCaptioner), transform, {
    limit: opts.limit,
    skipBadImages: opts.skipBadImages,
    onSkip: (s) => {
      skipped.push(s);
      opts.onSkip?.(s);
    },
    captionSeed: opts.captionSeed,
  });
  if (set.n === 0) throw new RangeError(`${fn}: ${ds.spec} yielded no images${skipped.length ? ` (${skipped.length} skipped as unreadable)` : ""}`);
  for (let i = 0; i < set.n; i++) {
    const y = set.labels[i];
    if (y < 0) throw new RangeError(`${fn}: ${set.keys[i]} has no label, but the audit needs one for every image`);
    if (y >= numClasses) throw new RangeError(`${fn}: ${set.keys[i]} has label ${y}, but there are ${numClasses} class names`);
  }
  return { set, transform, skipped };
}
