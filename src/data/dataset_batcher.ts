/**
 * Seeded, shuffled training batches from any random-access dataset (image folders, CSV, Parquet),
 * the counterpart of `Batcher` (Fashion-MNIST in memory): CLIP-normalised pixels `[B, S, S, 3]`
 * at the model's input size with open_clip's training augmentation, one caption per image (one of
 * its own, drawn per step, or one from the source's caption generator), labels and indices.
 *
 * Like `Batcher`, a batch is a pure function of (seed, epoch, step): the epoch's order is a
 * permutation seeded by (seed, epoch), and each image's caption draw and augmentation by
 * (seed, epoch, index). So a resumed run reproduces the uninterrupted one.
 * Decoding and preprocessing run in the pipeline's workers; `prefetch` starts the next batch while
 * the model trains on this one.
 */
import { normalizePixels } from "../image/preprocess";
import type { ImageTransform } from "../image/transform";
import type { AugmentationCfg } from "../image/augment";
import { Random, mixSeed } from "../util/random";
import type { Batch } from "./batcher";
import { DataError, type DataItem, type Dataset, type SkippedItem } from "./dataset";
import { PreparePool, prepareItems } from "./pipeline";

export interface DatasetBatcherOptions {
  batchSize: number;
  seed: number;
  /** The model's preprocessing (size, mean, std, resize mode). */
  transform: ImageTransform;
  /** open_clip's training augmentation; null or absent: the evaluation transform. */
  augment?: AugmentationCfg | null;
  /** Drop the last incomplete batch of each epoch (default true). */
  dropLast?: boolean;
  skipBadImages?: boolean;
  onSkip?: (s: SkippedItem) => void;
}

const STREAM_ORDER = 1;
const STREAM_BATCH = 2;
const STREAM_AUGMENT = 3;

export class DatasetBatcher {
  readonly batchSize: number;
  readonly seed: number;
  readonly stepsPerEpoch: number;
  readonly imageSize: number;
  private cachedEpoch = -1;
  private cachedOrder: Int32Array | null = null;
  private ahead: { epoch: number; step: number; batch: Promise<Batch> } | null = null;
  private pool: PreparePool | null = null;

  constructor(
    readonly data: Dataset,
    private readonly opts: DatasetBatcherOptions,
  ) {
    if (!data.get || data.size === undefined) {
      throw new RangeError(`${data.spec}: training needs a source with random access and a known size (image folders, CSV, Parquet, Arrow, Fashion-MNIST); WebDataset shards are read in order only`);
    }
    if (!data.hasCaptions && !data.captioner) throw new RangeError(`${data.spec}: has neither captions nor class names to make captions from; CLIP needs image-text pairs`);
    const { batchSize, seed } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`DatasetBatcher: batchSize must be a positive integer, got ${String(batchSize)}`);
    if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`DatasetBatcher: seed must be a non-negative integer, got ${String(seed)}`);
    this.batchSize = batchSize;
    this.seed = seed;
    this.imageSize = opts.transform.size;
    const dropLast = opts.dropLast ?? true;
    this.stepsPerEpoch = dropLast ? Math.floor(data.size / batchSize) : Math.ceil(data.size / batchSize);
    if (this.stepsPerEpoch === 0) throw new RangeError(`${data.spec}: ${data.size} items make no batch of ${batchSize}; use a smaller --batch`);
  }

  /** The dataset order of epoch `epoch`: a permutation depending only on (seed, epoch). */
  epochOrder(epoch: number): Int32Array {
    if (this.cachedEpoch !== epoch || !this.cachedOrder) {
      const order = Int32Array.from({ length: this.data.size! }, (_, i) => i);
      new Random(mixSeed(this.seed, STREAM_ORDER, epoch)).shuffle(order);
      this.cachedOrder = order;
      this.cachedEpoch = epoch;
    }
    return this.cachedOrder;
  }

  indicesAt(epoch: number, step: number): Int32Array {
    if (!Number.isInteger(step) || step < 0 || step >= this.stepsPerEpoch) throw new RangeError(`DatasetBatcher: step must be an integer in [0, ${this.stepsPerEpoch - 1}], got ${String(step)}`);
    const order = this.epochOrder(epoch);
    return order.slice(step * this.batchSize, Math.min((step + 1) * this.batchSize, order.length));
  }

  /** Batch (epoch, step), the same whenever it is asked for (a prefetched one is reused). */
  batchAt(epoch: number, step: number): Promise<Batch> {
    const a = this.ahead;
    this.ahead = null;
    if (a && a.epoch === epoch && a.step === step) return a.batch;
    return this.load(epoch, step);
  }

  /** Starts reading batch (epoch, step) in the background; `batchAt` picks it up. */
  prefetch(epoch: number, step: number): void {
    if (step >= this.stepsPerEpoch) {
      epoch += 1;
      step = 0;
    }
    const batch = this.load(epoch, step);
    batch.catch(() => undefined); // reported when (if) it is asked for
    this.ahead = { epoch, step, batch };
  }

  /** Stops the preprocessing workers (a later batch starts them again). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    this.ahead = null;
    await pool?.close();
  }

  private async load(epoch: number, step: number): Promise<Batch> {
    const indices = this.indicesAt(epoch, step);
    const { transform, augment, skipBadImages, onSkip } = this.opts;
    const ds = this.data;
    const seed = this.seed;
    const captionOf = new Map<number, string>();
    async function* items(): AsyncGenerator<DataItem> {
      for (const i of indices) {
        let item: DataItem;
        try {
          item = await ds.get!(i);
        } catch (err) {
          if (skipBadImages && err instanceof DataError) {
            onSkip?.({ key: err.where, reason: err.message.slice(err.where.length + 2) });
            continue;
          }
          throw err;
        }
        // Each image's caption has its own generator, so a skipped image never changes another's.
        const rng = new Random(mixSeed(seed, STREAM_BATCH, epoch, i));
        captionOf.set(i, item.captions.length ? item.captions[rng.int(item.captions.length)] : ds.captioner!.caption(item, rng));
        yield item;
      }
    }
    const per = transform.size * transform.size * 3;
    const parts: { index: number; label: number; pixels: Uint8Array }[] = [];
    const seedFor = (item: { index: number }) => mixSeed(this.seed, STREAM_AUGMENT, epoch, item.index);
    this.pool ??= new PreparePool(transform, { augment: augment ?? null });
    for await (const p of prepareItems(items(), transform, { pool: this.pool, skipBadImages, onSkip, seedFor })) {
      parts.push({ index: p.index, label: p.label ?? -1, pixels: p.pixels });
    }
    if (parts.length === 0) throw new DataError(`${ds.spec} epoch ${epoch} step ${step}`, "every image of the batch was unreadable");
    const pixels = new Float32Array(parts.length * per);
    parts.forEach((p, b) => pixels.set(normalizePixels(p.pixels, transform.mean, transform.std), b * per));
    return {
      pixels,
      labels: Int32Array.from(parts, (p) => p.label),
      captions: parts.map((p) => captionOf.get(p.index)!),
      indices: Int32Array.from(parts, (p) => p.index),
      size: parts.length,
      epoch,
      step,
    };
  }
}
