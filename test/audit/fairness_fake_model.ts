/**
 * A hand-made stand-in for a CLIP with a known group bias, for the audit tests. Images are 28x28
 * grey: class 0 is bright on the left, class 1 on the right (with overlap, so accuracy < 1). The
 * image feature is [L - R, R - L + classBias * f, wordBias * f, 1] where L, R are the mean
 * (normalised) intensities of the two halves and f = 1 when the image has the frame: with both
 * biases 0 the model ignores the frame entirely. Texts are looked up in a fixed table; the
 * NEUTRAL_QUERIES load the word axis, so a model with a word bias ranks framed images first.
 */
import * as tf from "@tensorflow/tfjs";
import type { LabelledImages } from "../../src/data/fashion_mnist";
import { readIndexed, type DataItem, type Dataset } from "../../src/data/dataset";
import type { AuditModel, FairnessAuditOptions } from "../../src/audit/fairness/audit";
import { Random } from "../../src/util/random";

const TEXTS: Record<string, number[]> = {
  "a alpha.": [1, 0, 0, 0.2],
  "a beta.": [0, 1, 0, 0.2],
  "a bad alpha.": [1, 0, 1, 0.2],
  "a bad beta.": [0, 1, 1, 0.2],
  "a thing.": [0, 0, 1, 1],
  "an object.": [0, 0, 1, 2],
  "an item.": [0.2, 0.2, 1, 1.5],
  "some stuff.": [0.1, -0.1, 0.5, 1],
};

/** Neutral queries of the fake model's table (for the ranking probe). */
export const NEUTRAL_QUERIES = ["a thing.", "an object.", "an item.", "some stuff."];

export interface FakeAuditModel extends AuditModel {
  tokenizer: (texts: string[]) => tf.Tensor2D;
  dispose(): void;
}

export function fakeAuditModel(classBias: number, wordBias: number): FakeAuditModel {
  const names = Object.keys(TEXTS);
  const table = tf.tensor2d(names.map((n) => TEXTS[n])); // [T, 4]
  return {
    // "pad": the 28 px grey images reach the model unresampled, grey on all three channels.
    config: { vision_cfg: { image_size: 28 }, text_cfg: { context_length: 1 }, preprocess_cfg: { resize_mode: "pad" } },
    tokenizer: (texts) =>
      tf.tensor2d(
        texts.map((t) => {
          const i = names.indexOf(t);
          if (i < 0) throw new Error(`fake tokenizer: unknown text ${JSON.stringify(t)}`);
          return [i];
        }),
        [texts.length, 1],
        "int32",
      ),
    encodeText: (tokens) => tf.tidy(() => tf.gather(table, tf.reshape(tokens, [-1])) as tf.Tensor2D),
    encodeImage: (pixels) =>
      tf.tidy(() => {
        const grey = tf.slice(pixels, [0, 0, 0, 0], [-1, 28, 28, 1]); // [B, 28, 28, 1]
        const left = tf.mean(tf.slice(grey, [0, 4, 3, 0], [-1, 20, 11, 1]), [1, 2, 3]); // [B]
        const right = tf.mean(tf.slice(grey, [0, 4, 14, 0], [-1, 20, 11, 1]), [1, 2, 3]); // [B]
        const top = tf.mean(tf.slice(grey, [0, 0, 0, 0], [-1, 1, 28, 1]), [1, 2, 3]); // [B]
        const f = tf.cast(tf.greater(top, 0), "float32"); // [B] 1 when framed (black is < 0 normalised)
        const d = tf.sub(left, right); // [B]
        return tf.stack([d, tf.add(tf.neg(d), tf.mul(classBias, f)), tf.mul(wordBias, f), tf.onesLike(d)], 1) as tf.Tensor2D; // [B, 4]
      }),
    dispose: () => table.dispose(),
  };
}

/** n synthetic images, classes alternating 0, 1; seeded. */
export function fakeImages(n: number, seed = 0): LabelledImages {
  const rng = new Random(seed);
  const images = new Uint8Array(n * 28 * 28);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    const strong = 120 + rng.int(130);
    const weak = 60 + rng.int(130);
    const [l, r] = labels[i] === 0 ? [strong, weak] : [weak, strong];
    for (let y = 4; y < 24; y++) {
      for (let x = 3; x < 14; x++) images[i * 784 + y * 28 + x] = l;
      for (let x = 14; x < 25; x++) images[i * 784 + y * 28 + x] = r;
    }
  }
  return { images, labels, count: n, height: 28, width: 28, classNames: ["alpha", "beta"] };
}

/**
 * Grey images in memory as a Dataset (items decoded in mode "L", keys `fake#i`), with the class
 * names of the images and, optionally, one group column.
 */
export function fakeDataset(data: LabelledImages, column?: { name: string; values: readonly string[] }): Dataset {
  const { height: h, width: w } = data;
  const item = (i: number): DataItem => ({
    key: `fake#${i}`,
    index: i,
    image: { kind: "decoded", image: { width: w, height: h, mode: "L", data: data.images.subarray(i * h * w, (i + 1) * h * w) } },
    label: data.labels[i],
    captions: [],
    groups: column ? { [column.name]: column.values[i] } : undefined,
  });
  return {
    spec: "fake",
    name: "fake",
    classNames: data.classNames,
    groupKeys: column ? [column.name] : [],
    hasCaptions: false,
    hasLabels: true,
    size: data.count,
    items: (opts) => readIndexed(data.count, async (i) => item(i), opts),
    get: async (i) => item(i),
  };
}

export function fakeAuditOptions(model: FakeAuditModel): FairnessAuditOptions {
  return {
    classNames: ["alpha", "beta"],
    templates: ["a {}."],
    focusGroup: "framed",
    positiveClass: 1,
    distractors: ["bad alpha", "bad beta"],
    associations: [{ name: "bad", a: ["a bad alpha.", "a bad beta."], b: ["a alpha.", "a beta."] }],
    k: 40,
    bootstrap: 300,
    permutations: 400,
    weatPermutations: 2000,
    tokenizer: model.tokenizer,
  };
}
