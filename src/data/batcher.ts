/**
 * Seeded, shuffled batches of labelled grey images with captions, ready for a CLIP step:
 * pixels `[B, S, S, 3]` float32 NHWC, CLIP-normalised, the grey value replicated to the three
 * channels and the 28x28 image centred on a black canvas when S > 28.
 *
 * Everything is a pure function of (seed, epoch, step): epoch k's order is a permutation drawn
 * from a generator seeded by (seed, k), and a batch's captions and augmentations from one seeded
 * by (seed, epoch, step). So `batchAt(epoch, step)` needs no history, and a run resumed from a
 * saved `state()` reproduces the uninterrupted run exactly; no generator state is saved.
 */
import { CLIP_MEAN, CLIP_STD } from "../image/preprocess";
import { Random, mixSeed } from "../util/random";
import { augmentImage, validateAugmentConfig, type AugmentConfig, type ResolvedAugmentConfig } from "./augment";
import { CaptionSet, imageAttributes } from "./captions";
import { checkLabelledImages, type LabelledImages } from "./fashion_mnist";

export interface Batch {
  /** `[B, S, S, 3]` float32, NHWC, CLIP-normalised. */
  pixels: Float32Array;
  /** Class of each image. */
  labels: Int32Array;
  /** One training caption per image. */
  captions: string[];
  /** Index of each image in the dataset. */
  indices: Int32Array;
  /** Images in this batch (`batchSize`, or fewer for the last batch when `dropLast` is false). */
  size: number;
  epoch: number;
  step: number;
}

export interface BatcherOptions {
  batchSize: number;
  seed: number;
  /** Output side S >= the image size (28); default the image size. */
  imageSize?: number;
  /** Drop the last incomplete batch of each epoch (default true). */
  dropLast?: boolean;
  /** Augmentation, applied to the source-size image before padding. */
  augment?: AugmentConfig;
  /**
   * Captions: default `CaptionSet.load()` (Fashion-MNIST's); `null` for none (`captions` is then
   * empty). Its class names must equal the dataset's.
   */
  captions?: CaptionSet | null;
}

/** Where a run stands: the next batch to produce. */
export interface BatcherState {
  epoch: number;
  step: number;
}

const STREAM_ORDER = 1;
const STREAM_BATCH = 2;

export class Batcher {
  readonly batchSize: number;
  readonly seed: number;
  readonly imageSize: number;
  readonly dropLast: boolean;
  readonly stepsPerEpoch: number;
  readonly captions: CaptionSet | null;
  private readonly augment: ResolvedAugmentConfig | null;
  private readonly table: Float32Array; // u8 -> normalised, per channel
  private readonly padValue: Float32Array; // black, normalised, per channel
  private cachedEpoch = -1;
  private cachedOrder: Int32Array | null = null;
  private cursor: BatcherState = { epoch: 0, step: 0 };

  constructor(
    readonly data: LabelledImages,
    opts: BatcherOptions,
  ) {
    checkLabelledImages(data, "Batcher: data");
    if (opts === null || typeof opts !== "object") throw new TypeError("Batcher: options {batchSize, seed, ...} are required");
    const known = ["batchSize", "seed", "imageSize", "dropLast", "augment", "captions"];
    for (const k of Object.keys(opts)) {
      if (!known.includes(k)) throw new RangeError(`Batcher: unknown option ${JSON.stringify(k)}; valid options: ${known.join(", ")}`);
    }
    const { batchSize, seed } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`Batcher: batchSize must be a positive integer, got ${String(batchSize)}`);
    if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`Batcher: seed must be a non-negative safe integer, got ${String(seed)}`);
    }
    if (data.height !== data.width) throw new RangeError(`Batcher: images must be square, got ${data.height}x${data.width}`);
    const imageSize = opts.imageSize ?? data.height;
    if (!Number.isInteger(imageSize) || imageSize < data.height) {
      throw new RangeError(`Batcher: imageSize must be an integer >= the image size ${data.height}, got ${String(imageSize)}`);
    }
    this.batchSize = batchSize;
    this.seed = seed;
    this.imageSize = imageSize;
    this.dropLast = opts.dropLast ?? true;
    this.stepsPerEpoch = this.dropLast ? Math.floor(data.count / batchSize) : Math.ceil(data.count / batchSize);
    if (this.stepsPerEpoch === 0) {
      throw new RangeError(`Batcher: ${data.count} images make no batch of ${batchSize}${this.dropLast ? " with dropLast" : ""}`);
    }
    this.augment = opts.augment === undefined ? null : validateAugmentConfig(opts.augment, "Batcher: augment");
    if (this.augment?.flipClasses) {
      for (const c of this.augment.flipClasses) {
        if (c >= data.classNames.length) throw new RangeError(`Batcher: augment.flipClasses has ${c}, but there are ${data.classNames.length} classes`);
      }
    }
    this.captions = opts.captions === undefined ? CaptionSet.load() : opts.captions;
    if (this.captions) {
      const a = this.captions.classNames;
      const b = data.classNames;
      if (a.length !== b.length || a.some((n, i) => n !== b[i])) {
        throw new RangeError(`Batcher: the caption set is for classes [${a.join(", ")}], the data has [${b.join(", ")}]`);
      }
    }
    // Same float32 chain as normalizePixels: ((v / 255) - mean) / std, each step rounded.
    this.table = new Float32Array(256 * 3);
    this.padValue = new Float32Array(3);
    for (let ch = 0; ch < 3; ch++) {
      for (let v = 0; v < 256; v++) this.table[ch * 256 + v] = normalise(v, ch);
      this.padValue[ch] = this.table[ch * 256];
    }
  }

  /** The dataset order of epoch `epoch`: a permutation that depends only on (seed, epoch). */
  epochOrder(epoch: number): Int32Array {
    return this.order(epoch).slice();
  }

  /** The cached order of one epoch (shared: never handed out). */
  private order(epoch: number): Int32Array {
    this.checkEpoch(epoch);
    if (this.cachedEpoch !== epoch || !this.cachedOrder) {
      const order = new Int32Array(this.data.count);
      for (let i = 0; i < order.length; i++) order[i] = i;
      new Random(mixSeed(this.seed, STREAM_ORDER, epoch)).shuffle(order);
      this.cachedOrder = order;
      this.cachedEpoch = epoch;
    }
    return this.cachedOrder;
  }

  /** The dataset indices of batch (epoch, step). */
  indicesAt(epoch: number, step: number): Int32Array {
    this.checkStep(step);
    const order = this.order(epoch);
    const start = step * this.batchSize;
    return order.slice(start, Math.min(start + this.batchSize, order.length));
  }

  /** Batch `step` of epoch `epoch`, the same whenever it is asked for. */
  batchAt(epoch: number, step: number): Batch {
    const indices = this.indicesAt(epoch, step);
    const size = indices.length;
    const { height: h, width: w, images, labels: allLabels } = this.data;
    const S = this.imageSize;
    const top = Math.floor((S - h) / 2);
    const left = Math.floor((S - w) / 2);
    const perImage = S * S * 3;
    // Without augmentation the pixels are exactly what evaluation sees.
    const pixels = this.augment ? new Float32Array(size * perImage) : this.pixelsFor(indices);
    const labels = new Int32Array(size);
    const captions: string[] = [];
    const rng = new Random(mixSeed(this.seed, STREAM_BATCH, epoch, step));
    const captionRng = rng.fork();
    const augmentRng = rng.fork();

    if (this.augment && (S > h || S > w)) {
      // Black canvas, then each image is written into its centre.
      const [p0, p1, p2] = this.padValue;
      for (let i = 0; i < pixels.length; i += 3) {
        pixels[i] = p0;
        pixels[i + 1] = p1;
        pixels[i + 2] = p2;
      }
    }
    const scratch = this.augment ? new Float32Array(h * w) : null;
    const t = this.table;
    for (let b = 0; b < size; b++) {
      const idx = indices[b];
      const label = allLabels[idx];
      labels[b] = label;
      const src = idx * h * w;
      const base = b * perImage;
      if (scratch) {
        augmentImage(images, h, w, this.augment!, augmentRng, { label, srcOffset: src, out: scratch });
        for (let y = 0; y < h; y++) {
          let o = base + ((top + y) * S + left) * 3;
          for (let x = 0; x < w; x++, o += 3) {
            const v = scratch[y * w + x];
            const g = v | 0;
            if (g === v) {
              // Whole grey levels (shift, flip, no augmentation): the table, as without augment.
              pixels[o] = t[g];
              pixels[o + 1] = t[256 + g];
              pixels[o + 2] = t[512 + g];
            } else {
              const f = Math.fround(v / 255);
              pixels[o] = Math.fround(Math.fround(f - MEAN32[0]) / STD32[0]);
              pixels[o + 1] = Math.fround(Math.fround(f - MEAN32[1]) / STD32[1]);
              pixels[o + 2] = Math.fround(Math.fround(f - MEAN32[2]) / STD32[2]);
            }
          }
        }
      }
      if (this.captions) {
        // Attributes are measured on the original image, so augmentation never changes a caption.
        const attrs = imageAttributes(images, h, w, src);
        captions.push(this.captions.captionForTraining(label, attrs, captionRng));
      }
    }
    return { pixels, labels, captions, indices, size, epoch, step };
  }

  /**
   * Unaugmented pixels `[indices.length, S, S, 3]` of the given images, in the given order:
   * what evaluation feeds the model.
   */
  pixelsFor(indices: Int32Array | readonly number[]): Float32Array {
    const { height: h, width: w, images, count } = this.data;
    const S = this.imageSize;
    const top = Math.floor((S - h) / 2);
    const left = Math.floor((S - w) / 2);
    const perImage = S * S * 3;
    const pixels = new Float32Array(indices.length * perImage);
    const [p0, p1, p2] = this.padValue;
    if (S > h || S > w) {
      for (let i = 0; i < pixels.length; i += 3) {
        pixels[i] = p0;
        pixels[i + 1] = p1;
        pixels[i + 2] = p2;
      }
    }
    const t = this.table;
    for (let b = 0; b < indices.length; b++) {
      const idx = indices[b];
      if (!Number.isInteger(idx) || idx < 0 || idx >= count) throw new RangeError(`Batcher.pixelsFor: index ${idx} outside [0, ${count})`);
      for (let y = 0; y < h; y++) {
        let o = b * perImage + ((top + y) * S + left) * 3;
        const row = idx * h * w + y * w;
        for (let x = 0; x < w; x++, o += 3) {
          const v = images[row + x];
          pixels[o] = t[v];
          pixels[o + 1] = t[256 + v];
          pixels[o + 2] = t[512 + v];
        }
      }
    }
    return pixels;
  }

  /** The next batch of the cursor, which then moves on (to the next epoch after the last step). */
  next(): Batch {
    const { epoch, step } = this.cursor;
    const batch = this.batchAt(epoch, step);
    this.cursor = step + 1 < this.stepsPerEpoch ? { epoch, step: step + 1 } : { epoch: epoch + 1, step: 0 };
    return batch;
  }

  /** Where the cursor stands (the batch `next()` returns next); save it with a checkpoint. */
  state(): BatcherState {
    return { ...this.cursor };
  }

  /** Moves the cursor to a saved `state()`. */
  restore(state: BatcherState): void {
    if (state === null || typeof state !== "object") throw new TypeError("Batcher.restore: expected {epoch, step}");
    this.checkEpoch(state.epoch);
    this.checkStep(state.step);
    this.cursor = { epoch: state.epoch, step: state.step };
  }

  /** The batches of one epoch, in order (from `fromStep`). */
  *epoch(epoch: number, fromStep = 0): Generator<Batch> {
    this.checkStep(fromStep);
    for (let s = fromStep; s < this.stepsPerEpoch; s++) yield this.batchAt(epoch, s);
  }

  private checkEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`Batcher: epoch must be a non-negative integer, got ${String(epoch)}`);
  }

  private checkStep(step: number): void {
    if (!Number.isInteger(step) || step < 0 || step >= this.stepsPerEpoch) {
      throw new RangeError(`Batcher: step must be an integer in [0, ${this.stepsPerEpoch - 1}], got ${String(step)}`);
    }
  }
}

/** `((v / 255) - mean[ch]) / std[ch]` with each operation rounded to float32, as normalizePixels does. */
function normalise(v: number, ch: number): number {
  const x = Math.fround(v / 255);
  return Math.fround(Math.fround(x - MEAN32[ch]) / STD32[ch]);
}

const MEAN32 = Float32Array.from(CLIP_MEAN);
const STD32 = Float32Array.from(CLIP_STD);
