/**
 * Caption generators for labelled items that carry no captions of their own: a template filled
 * with the class name (CLIP's prompt convention, https://arxiv.org/abs/2103.00020 §3.1.4), or
 * Fashion-MNIST's generator (templates, synonyms and attribute words measured from the pixels).
 * Retrieval pairs each image with its own captions, or with one generated caption, seeded.
 */
import { fillPrompt } from "../text/fill";
import { Random, mixSeed } from "../util/random";
import { CaptionSet, imageAttributes } from "./captions";
import { DataError, type Captioner, type DataItem } from "./dataset";

/** Training-caption templates for a labelled source without captions (CLIP's plain prompts). */
export const DEFAULT_CAPTION_TEMPLATES: readonly string[] = Object.freeze([
  "a photo of a {}.",
  "a picture of a {}.",
  "an image of a {}.",
  "a photo of the {}.",
  "a close-up photo of a {}.",
  "a cropped photo of a {}.",
]);

/** "a photo of a {}."-style captions: a random template filled with the item's class name. */
export function templateCaptioner(classNames: readonly string[], templates: readonly string[] = DEFAULT_CAPTION_TEMPLATES): Captioner {
  if (templates.length === 0) throw new RangeError("templateCaptioner: templates must be a non-empty list");
  return {
    caption(item: DataItem, rng: Random): string {
      if (item.label === undefined) throw new DataError(item.key, "has no label, so no caption can be generated from class names");
      return fillPrompt(templates[rng.int(templates.length)], classNames[item.label]);
    },
  };
}

/** Fashion-MNIST's captions (datasets/fashion-mnist/captions.json), attributes measured on the grey pixels. */
export function captionSetCaptioner(set: CaptionSet): Captioner {
  return {
    caption(item: DataItem, rng: Random): string {
      if (item.label === undefined) throw new DataError(item.key, "has no label, so no caption can be generated");
      const img = item.image.kind === "decoded" ? item.image.image : null;
      const attrs = img && img.mode === "L" ? imageAttributes(img.data as Uint8Array, img.height, img.width) : null;
      return set.captionForTraining(item.label, attrs, rng);
    },
  };
}

const STREAM_PAIRING = 0x7e7;

/**
 * The caption(s) an item is paired with for retrieval and matching-pair measures: its own
 * captions when it has them, else one caption from the captioner drawn from a generator seeded
 * by (seed, item.index), so the pairing of an item does not depend on which others are read.
 */
export function pairedCaptions(item: DataItem, captioner: Captioner | undefined, seed: number): string[] {
  if (item.captions.length > 0) return item.captions;
  if (!captioner) throw new DataError(item.key, "has no caption and the source has no caption generator (no class names)");
  return [captioner.caption(item, new Random(mixSeed(seed, STREAM_PAIRING, item.index)))];
}
