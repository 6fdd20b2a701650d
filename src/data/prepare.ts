/**
 * One item's model input: decode (when the source gave encoded bytes) in the stored mode, then
 * preprocess (evaluation: the model's ImageTransform) or augment (training: open_clip's
 * RandomResizedCrop and colour transforms, seeded per item). The same function runs on the main
 * thread (`prepareItem`) and in the pipeline's worker threads (pipeline_worker.ts), so both give
 * the same pixels. Reference: open_clip `image_transform` (src/open_clip/transform.py,
 * https://github.com/mlfoundations/open_clip).
 */
import { augmentStored, resolveAugmentation, type Augmentation, type AugmentationCfg } from "../image/augment";
import { decodeStored, ImageDecodeError } from "../image/decode";
import { preprocessStored } from "../image/preprocess";
import type { ImageTransform } from "../image/transform";
import { Random } from "../util/random";
import { DataError, type DataItem, type ImageRef } from "./dataset";

/** An item ready for the model: its metadata and `[S, S, 3]` uint8 RGB pixels (0-255, HWC). */
export interface PreparedItem {
  key: string;
  index: number;
  label?: number;
  captions: string[];
  groups?: Readonly<Record<string, string>>;
  /** `[S, S, 3]` uint8 RGB, S = transform.size, before normalisation. */
  pixels: Uint8Array;
}

/** What to do with every image: the model's transform, and for training an augmentation. */
export interface PrepareSpec {
  transform: ImageTransform;
  /** Training augmentation; when set, each item needs a seed. */
  augment?: Augmentation | null;
}

/** Accepts an open_clip AugmentationCfg or an already resolved Augmentation. */
export function toAugmentation(aug: AugmentationCfg | Augmentation | null | undefined, what: string): Augmentation | null {
  if (aug === undefined || aug === null) return null;
  if ("colorJitterProb" in aug) return aug as Augmentation;
  return resolveAugmentation(aug as AugmentationCfg, what);
}

/**
 * The pixels of one image: a DataError naming `key` for an image that cannot be decoded; other
 * errors (a malformed decoded image from a source, a missing seed) are thrown as they are.
 */
export async function preparePixels(image: ImageRef, key: string, spec: PrepareSpec, seed?: number): Promise<Uint8Array> {
  let img;
  if (image.kind === "encoded") {
    try {
      img = await decodeStored(image.bytes, key);
    } catch (err) {
      if (err instanceof ImageDecodeError) throw new DataError(key, err.detail);
      throw err;
    }
  } else if (image.kind === "decoded") {
    img = image.image;
  } else {
    throw new TypeError(`${key}: image must be {kind: "encoded", bytes} or {kind: "decoded", image}`);
  }
  if (spec.augment) {
    if (seed === undefined || !Number.isFinite(seed)) throw new RangeError(`${key}: an augmentation needs a finite seed per item (seedFor), got ${String(seed)}`);
    return augmentStored(img, spec.transform.size, spec.augment, new Random(seed));
  }
  return preprocessStored(img, spec.transform);
}

export interface PrepareItemOptions {
  /** Training augmentation (open_clip AugmentationCfg, or resolved). */
  augment?: AugmentationCfg | Augmentation | null;
  /** The item's seed, needed with `augment`. */
  seed?: number;
}

/** One item prepared on the calling thread (decode with sharp, preprocess in JS). */
export async function prepareItem(item: DataItem, transform: ImageTransform, opts: PrepareItemOptions = {}): Promise<PreparedItem> {
  const augment = toAugmentation(opts.augment, "prepareItem: augment");
  const pixels = await preparePixels(item.image, item.key, { transform, augment }, opts.seed);
  return withPixels(item, pixels);
}

/** The item's metadata with its pixels (no image bytes kept). */
export function withPixels(item: DataItem, pixels: Uint8Array): PreparedItem {
  const out: PreparedItem = { key: item.key, index: item.index, captions: item.captions, pixels };
  if (item.label !== undefined) out.label = item.label;
  if (item.groups !== undefined) out.groups = item.groups;
  return out;
}
