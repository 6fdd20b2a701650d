/**
 * Evaluation of a CLIP trained on labelled images: zero-shot top-1/top-5 with the evaluation
 * templates ensembled (CLIP paper §3.1.4, https://arxiv.org/abs/2103.00020), and image<->text
 * Recall@1/5 on test images paired with one generated caption each.
 */
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../model/clip";
import { Batcher } from "../data/batcher";
import { CaptionSet, imageAttributes } from "../data/captions";
import type { LabelledImages } from "../data/fashion_mnist";
import { zeroShotClassifier } from "../eval/zero_shot";
import { retrievalMetrics } from "../eval/retrieval";
import { tokenize } from "../text/tokenize";
import { Random } from "../util/random";

export interface EvalResult {
  zeroShotTop1: number;
  zeroShotTop5: number;
  perClass: number[];
  confusion: number[][];
  recallAt1: { imageToText: number; textToImage: number };
  recallAt5: { imageToText: number; textToImage: number };
  images: number;
}

const EVAL_BATCH = 500;

export function evaluateClip(
  clip: Clip,
  test: LabelledImages,
  captions: CaptionSet,
  opts: { zeroShotLimit: number; retrievalLimit: number; seed: number },
): EvalResult {
  const n = Math.min(opts.zeroShotLimit, test.count);
  const imageBatcher = new Batcher(test, { batchSize: 1, seed: 0, imageSize: clip.config.vision_cfg.image_size, captions: null });
  const size = clip.config.vision_cfg.image_size;
  const pixelBatch = (start: number, end: number): tf.Tensor4D => {
    const idx = Int32Array.from({ length: end - start }, (_, i) => start + i);
    return tf.tensor4d(imageBatcher.pixelsFor(idx), [end - start, size, size, 3]);
  };
  const classNames = captions.spec.classes.map((c) => c.canonical);
  const classifier = zeroShotClassifier(clip, classNames, captions.spec.evalTemplates, {
    tokenizer: (texts) => tokenize(texts, { contextLength: clip.config.text_cfg.context_length, truncate: true }),
  });
  let zs;
  try {
    zs = classifier.evaluate({ pixels: pixelBatch, labels: Int32Array.from(test.labels.subarray(0, n)) }, { batchSize: EVAL_BATCH });
  } finally {
    classifier.dispose();
  }

  // Retrieval: each test image paired with one caption drawn like a training caption (seeded).
  const m = Math.min(opts.retrievalLimit, test.count);
  const rng = new Random(opts.seed);
  const texts: string[] = [];
  for (let i = 0; i < m; i++) {
    const attrs = imageAttributes(test.images, test.height, test.width, i * test.height * test.width);
    texts.push(captions.captionForTraining(test.labels[i], attrs, rng));
  }
  const imageEmb = tf.tidy(() => {
    const parts: tf.Tensor2D[] = [];
    for (let s = 0; s < m; s += EVAL_BATCH) {
      const px = pixelBatch(s, Math.min(m, s + EVAL_BATCH));
      parts.push(clip.encodeImage(px));
    }
    return tf.concat(parts, 0) as tf.Tensor2D;
  });
  const textEmb = tf.tidy(() => {
    const parts: tf.Tensor2D[] = [];
    for (let s = 0; s < m; s += EVAL_BATCH) {
      const tokens = tokenize(texts.slice(s, s + EVAL_BATCH), { contextLength: clip.config.text_cfg.context_length, truncate: true });
      parts.push(clip.encodeText(tokens));
    }
    return tf.concat(parts, 0) as tf.Tensor2D;
  });
  let r;
  try {
    r = retrievalMetrics(imageEmb, textEmb, [1, 5]);
  } finally {
    tf.dispose([imageEmb, textEmb]);
  }
  return {
    zeroShotTop1: zs.top1,
    zeroShotTop5: zs.top5,
    perClass: zs.perClass,
    confusion: zs.confusion,
    recallAt1: { imageToText: r.imageToText["R@1"], textToImage: r.textToImage["R@1"] },
    recallAt5: { imageToText: r.imageToText["R@5"], textToImage: r.textToImage["R@5"] },
    images: n,
  };
}
