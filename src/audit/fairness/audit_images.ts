/**
 * The images of a fairness audit: a dataset read through the data pipeline at the model's input
 * size, encoded by the batched encoder (src/eval/encode.ts), with each item's class and group.
 *
 * - Listed or column groups: the items stream through (`preparedStream` + `encodeImages`); no
 *   pixels are kept.
 * - Planted groups on Fashion-MNIST: the frame is stamped on the 28x28 grey images
 *   (`plantedTestSet`, exactly what the planted-bias models train with), then preprocessed.
 * - Planted groups on any other dataset: the frame is stamped on the prepared model input (uint8
 *   RGB at the model's size, `plantedPreparedSet`), because that is the one place every source
 *   shares and where the frame has a known size (`scaledBorderWidth`) whatever the photo's size.
 * Planted groups also give the features of the same images without the frame (clean accuracy).
 * Extra attributes (`attributes`: more group columns of the source, for the ranking probe and the
 * per-attribute table) are read from each item as it streams past; planted groups have none.
 */
import type { Dataset, SkippedItem } from "../../data/dataset";
import { preparedItems, type PreparedImage } from "../../data/prepared";
import { expectedItems, prepareSet, preparedStream } from "../../data/stream";
import { FashionMnistDataset, isFashionMnist } from "../../data/sources/fashion_mnist";
import { encodeImages, type EncodeProgress, type EncodedImages, type ImageFeatureModel } from "../../eval/encode";
import type { ImageTransform } from "../../image/transform";
import { checkGroupSource, groupOf, isPlanted, type ColumnGroups, type GroupSource } from "./groups";
import { plantedPreparedSet, plantedTestSet } from "./planted_bias";

export interface AuditReadOptions {
  transform: ImageTransform;
  limit?: number;
  skipBadImages?: boolean;
  onSkip?: (item: SkippedItem) => void;
  batchSize?: number;
  onProgress?: (p: EncodeProgress) => void;
  /** More group columns to read from every item (`DataItem.groups`); not with planted groups. */
  attributes?: readonly string[];
}

export interface AuditImages {
  /** Unnormalised image features [n, D] (with the frame, for planted groups) and the items' rows. */
  features: EncodedImages;
  /** The group of every audited item. */
  groups: string[];
  /** Each extra attribute's value for every audited item. */
  attributes: Record<string, string[]>;
  /** Planted groups: the features of the same images without the frame. */
  clean?: EncodedImages;
  /** Items left out under skipBadImages. */
  skipped: number;
}

/** Checks every item's group as it streams past, so a bad one stops the read before it is encoded. */
async function* withGroups(
  fn: string,
  items: AsyncIterable<PreparedImage>,
  source: readonly string[] | ColumnGroups,
  out: string[],
  extra: Record<string, string[]>,
): AsyncGenerator<PreparedImage> {
  const names = Object.keys(extra);
  for await (const it of items) {
    out.push(groupOf(fn, source, it));
    for (const name of names) extra[name].push(groupOf(fn, { column: name }, it));
    yield it;
  }
}

/** Reads, groups and encodes the audit's images. */
export async function readAuditImages(fn: string, model: ImageFeatureModel, ds: Dataset, source: GroupSource, numClasses: number, opts: AuditReadOptions): Promise<AuditImages> {
  checkGroupSource(fn, ds, source);
  const attributes = opts.attributes ?? [];
  for (const name of attributes) checkGroupSource(fn, ds, { column: name });
  if (attributes.length && isPlanted(source)) throw new RangeError(`${fn}: attributes (${attributes.join(", ")}) need groups from a column or a list; planted groups draw their own`);
  let skipped = 0;
  const read = {
    limit: opts.limit,
    skipBadImages: opts.skipBadImages,
    onSkip: (s: SkippedItem) => {
      skipped++;
      opts.onSkip?.(s);
    },
  };
  const { transform: t } = opts;
  const encode = (items: AsyncIterable<PreparedImage>, total?: number) =>
    encodeImages(model, items, { mean: t.mean, std: t.std, batchSize: opts.batchSize, onProgress: opts.onProgress, total });
  const total = expectedItems(ds, read);

  if (!isPlanted(source)) {
    const groups: string[] = [];
    const extra: Record<string, string[]> = Object.fromEntries(attributes.map((a) => [a, []]));
    const features = await encode(withGroups(fn, preparedStream(ds, t, read), source, groups, extra), total);
    return { features, groups, attributes: extra, skipped };
  }
  const stamp = { fraction: source.fraction, seed: source.seed, borderWidth: source.borderWidth, borderValue: source.borderValue, placebo: source.placebo };
  if (isFashionMnist(ds)) {
    const grouped = plantedTestSet(ds.labelled, { ...stamp, limit: opts.limit });
    const framed = new FashionMnistDataset(ds.spec, grouped.data, ds.split, ds.captionSet, [...ds.classNames]);
    const features = await encode(preparedStream(framed, t, read), grouped.data.count);
    const clean = await encode(preparedStream(ds, t, read), grouped.data.count);
    return { features, groups: grouped.groups, attributes: {}, clean, skipped };
  }
  const set = await prepareSet(ds, t, read);
  const planted = plantedPreparedSet(set, numClasses, stamp);
  const clean = await encode(preparedItems(set), set.n);
  const features = await encode(preparedItems(planted.set), set.n);
  return { features, groups: planted.groups, attributes: {}, clean, skipped };
}
