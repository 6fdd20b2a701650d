/**
 * A bias we plant ourselves, with a known strength, so the fairness probes can be checked against
 * the truth: a visible group attribute (a bright frame around the 28x28 grey image) that is
 * correlated with one class and with one caption word at a chosen rate rho.
 *
 *   class bias:  P(framed | class = c) = rho,   P(framed | class != c) = 1 - rho
 *   word bias:   P(caption says `word` | framed) = rho,   P(caption says `word` | plain) = 1 - rho
 *
 * rho = 0.5 makes the frame independent of both (the unbiased control). In the spirit of the
 * "spurious feature" benchmarks (Waterbirds, Sagawa et al. 2020, https://arxiv.org/abs/1911.08731)
 * and of CLIP's own bias probes (Radford et al. 2021, https://arxiv.org/abs/2103.00020, §7).
 *
 * How the word reaches the captions: the trainer draws each caption from the image's label only,
 * so an image whose captions carry the word gets the label `class + C` of a second copy of its
 * class whose synonyms all start with the word ("counterfeit tee"). The true class is `label % C`.
 * The caption set has no attribute words (they are measured from the pixels, which the frame
 * would change).
 */
import type { LabelledImages } from "../../data/fashion_mnist";
import { CaptionSet, type CaptionSpec } from "../../data/captions";
import type { PreparedSet } from "../../data/prepared";
import { Random } from "../../util/random";
import { checkProbability, checkSeed } from "../../util/checks";

export const FRAMED = "framed";
export const PLAIN = "plain";

export interface PlantedBiasOptions {
  /** Strength in [0, 1]; 0.5 is the unbiased control. */
  rho: number;
  /** The class the frame goes with (default 6, "Shirt": the class most often confused). */
  targetClass?: number;
  /** The caption word that goes with the frame (default "counterfeit"). */
  word?: string;
  /** Correlate the frame with `targetClass` (default true). */
  classBias?: boolean;
  /** Correlate the frame with `word` in the captions (default true). */
  wordBias?: boolean;
  /** Frame thickness in pixels (default 2) and grey value (default 255). */
  borderWidth?: number;
  borderValue?: number;
  seed?: number;
}

export interface ResolvedPlantedBias {
  rho: number;
  targetClass: number;
  word: string;
  classBias: boolean;
  wordBias: boolean;
  borderWidth: number;
  borderValue: number;
  seed: number;
}

export const PLANTED_DEFAULTS: Omit<ResolvedPlantedBias, "rho"> = {
  targetClass: 6,
  word: "counterfeit",
  classBias: true,
  wordBias: true,
  borderWidth: 2,
  borderValue: 255,
  seed: 0,
};

const KEYS = ["rho", ...Object.keys(PLANTED_DEFAULTS)];

export function resolvePlantedBias(fn: string, opts: PlantedBiasOptions, numClasses: number): ResolvedPlantedBias {
  if (opts === null || typeof opts !== "object") throw new TypeError(`${fn}: options {rho, ...} are required`);
  for (const k of Object.keys(opts)) if (!KEYS.includes(k)) throw new RangeError(`${fn}: unknown option ${JSON.stringify(k)} (valid: ${KEYS.join(", ")})`);
  const o = { ...PLANTED_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as ResolvedPlantedBias;
  checkProbability(fn, "rho", o.rho);
  if (!Number.isInteger(o.targetClass) || o.targetClass < 0 || o.targetClass >= numClasses) {
    throw new RangeError(`${fn}: targetClass must be an integer in [0, ${numClasses - 1}], got ${String(o.targetClass)}`);
  }
  if (typeof o.word !== "string" || !/^[a-z][a-z-]*$/.test(o.word)) throw new RangeError(`${fn}: word must be one lower-case word (letters, hyphens), got ${JSON.stringify(o.word)}`);
  if (!Number.isInteger(o.borderWidth) || o.borderWidth < 1 || o.borderWidth > 4) throw new RangeError(`${fn}: borderWidth must be an integer in [1, 4], got ${String(o.borderWidth)}`);
  if (!Number.isInteger(o.borderValue) || o.borderValue < 0 || o.borderValue > 255) throw new RangeError(`${fn}: borderValue must be an integer in [0, 255], got ${String(o.borderValue)}`);
  checkSeed(fn, o.seed);
  return o;
}

/**
 * Draws a frame `borderWidth` pixels thick of value `value` around image `index` of a flat
 * [N, H, W, channels] buffer (grey: channels 1), in place, on every channel.
 */
export function stampBorder(images: Uint8Array, height: number, width: number, index: number, borderWidth = 2, value = 255, channels = 1): void {
  const base = index * height * width * channels;
  for (let y = 0; y < height; y++) {
    const edgeRow = y < borderWidth || y >= height - borderWidth;
    for (let x = 0; x < width; x++) {
      if (!(edgeRow || x < borderWidth || x >= width - borderWidth)) continue;
      const at = base + (y * width + x) * channels;
      for (let ch = 0; ch < channels; ch++) images[at + ch] = value;
    }
  }
}

/**
 * The frame's thickness on a model input of side `size`: the share of the side that
 * `borderWidth` pixels cover on a 28 px Fashion-MNIST image (2 px: 2 at 28-32 px, 5 at 64, 16 at 224).
 */
export function scaledBorderWidth(borderWidth: number, size: number): number {
  return Math.max(1, Math.round((borderWidth * size) / 28));
}

/** The training data of one planted-bias run. */
export interface PlantedTrainingData {
  /** Stamped images; `labels` are compound (class, or class + C when the captions carry the word). */
  train: LabelledImages;
  /** Caption set with 2C classes: the originals, then the copies whose synonyms carry the word. */
  captions: CaptionSet;
  /** "framed" or "plain" per image. */
  groups: string[];
  /** True class of each image. */
  classes: Int32Array;
  /** 1 where the image's captions say the word. */
  mentions: Uint8Array;
  options: ResolvedPlantedBias;
}

/** A caption set whose classes [C, 2C) are copies of [0, C) with `word` before every synonym; no attribute words. */
export function plantedCaptionSet(base: CaptionSet, word: string): CaptionSet {
  const classes = base.spec.classes;
  const spec: CaptionSpec = {
    ...base.spec,
    classes: [
      ...classes.map((c) => ({ ...c, synonyms: [...c.synonyms] })),
      ...classes.map((c) => ({ name: `${c.name} [${word}]`, canonical: `${word} ${c.canonical}`, synonyms: c.synonyms.map((s) => `${word} ${s}`) })),
    ],
  };
  return new CaptionSet(spec, null);
}

/**
 * The biased training set: a copy of `base` with a frame stamped on the images drawn by the rule
 * in the file header, and the caption word tied to the frame. Seeded; `base` is not changed.
 */
export function plantBias(base: LabelledImages, opts: PlantedBiasOptions, captions: CaptionSet = CaptionSet.load()): PlantedTrainingData {
  const fn = "plantBias";
  const C = base.classNames.length;
  const o = resolvePlantedBias(fn, opts, C);
  if (captions.numClasses !== C) throw new Error(`${fn}: captions has ${captions.numClasses} classes, the data ${C}`);
  const rng = new Random(o.seed);
  const images = base.images.slice();
  const labels = new Uint8Array(base.count);
  const groups: string[] = new Array(base.count);
  const classes = new Int32Array(base.count);
  const mentions = new Uint8Array(base.count);
  for (let i = 0; i < base.count; i++) {
    const c = base.labels[i];
    classes[i] = c;
    const pFramed = o.classBias ? (c === o.targetClass ? o.rho : 1 - o.rho) : 0.5;
    const framed = rng.next() < pFramed;
    if (framed) stampBorder(images, base.height, base.width, i, o.borderWidth, o.borderValue);
    groups[i] = framed ? FRAMED : PLAIN;
    const pWord = o.wordBias ? (framed ? o.rho : 1 - o.rho) : 0.5;
    mentions[i] = rng.next() < pWord ? 1 : 0;
    labels[i] = c + C * mentions[i];
  }
  const set = plantedCaptionSet(captions, o.word);
  return {
    train: { images, labels, count: base.count, height: base.height, width: base.width, classNames: set.classNames },
    captions: set,
    groups,
    classes,
    mentions,
    options: o,
  };
}

/**
 * The items that get the frame: round(fraction * n) of them, stratified by class (floor(fraction *
 * n_c) of each class c, plus one more for some classes drawn at random so the total is right), at
 * seeded random positions. `labels` are class ids in [0, numClasses).
 */
export function stratifiedSelection(labels: ArrayLike<number>, numClasses: number, fraction: number, seed: number): number[] {
  const n = labels.length;
  const rng = new Random(seed);
  const byClass = Array.from({ length: numClasses }, (_, c) => Int32Array.from({ length: n }, (_, i) => i).filter((i) => labels[i] === c));
  const quota = byClass.map((m) => Math.floor(fraction * m.length));
  const open = rng.shuffle(byClass.map((m, c) => c).filter((c) => fraction * byClass[c].length > quota[c])) as number[];
  let extra = Math.round(fraction * n) - quota.reduce((a, b) => a + b, 0);
  for (const c of open) if (extra-- > 0) quota[c]++;
  const framed: number[] = [];
  byClass.forEach((members, c) => {
    rng.shuffle(members);
    framed.push(...members.subarray(0, quota[c]));
  });
  return framed;
}

/**
 * A test set with the frame on a random `fraction` of each class's images (stratified, so the
 * frame is independent of the class and both groups have the same class mix). With
 * `placebo`, the same images are put in group "framed" but left unchanged: any probe that flags
 * such a split is miscalibrated (the check of the probes' false-alarm rate on a real model).
 */
export interface GroupedTestSet {
  data: LabelledImages;
  groups: string[];
}

/** The frame a test set gets: on a `fraction` of each class's images (default 0.5), seeded (default 1). */
export interface PlantedStampOptions {
  fraction?: number;
  seed?: number;
  /** Thickness in pixels of the 28 px Fashion-MNIST image (default 2; scaled on other inputs, `scaledBorderWidth`). */
  borderWidth?: number;
  /** Grey value 0-255 (default 255, white). */
  borderValue?: number;
  /** Assign the groups but draw no frame: a placebo attribute nothing can see (default false). */
  placebo?: boolean;
}

export function plantedTestSet(base: LabelledImages, opts: PlantedStampOptions & { limit?: number } = {}): GroupedTestSet {
  const fn = "plantedTestSet";
  const fraction = checkProbability(fn, "fraction", opts.fraction ?? 0.5);
  const seed = checkSeed(fn, opts.seed ?? 1);
  const n = Math.min(opts.limit ?? base.count, base.count);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${fn}: limit must be a positive integer, got ${String(opts.limit)}`);
  const size = base.height * base.width;
  const images = base.images.slice(0, n * size);
  const framed = stratifiedSelection(base.labels.subarray(0, n), base.classNames.length, fraction, seed);
  const groups: string[] = new Array(n).fill(PLAIN);
  for (const i of framed) {
    if (!opts.placebo) stampBorder(images, base.height, base.width, i, opts.borderWidth ?? PLANTED_DEFAULTS.borderWidth, opts.borderValue ?? PLANTED_DEFAULTS.borderValue);
    groups[i] = FRAMED;
  }
  return {
    data: { images, labels: base.labels.slice(0, n), count: n, height: base.height, width: base.width, classNames: [...base.classNames] },
    groups,
  };
}

/**
 * The frame on a prepared set (any dataset, at the model's input size): a copy whose images drawn
 * as in `plantedTestSet` (stratified by class, seeded) get a frame of `scaledBorderWidth` pixels
 * in grey `borderValue` on all three channels of the model input. Every item needs a label in
 * [0, numClasses).
 */
export function plantedPreparedSet(set: PreparedSet, numClasses: number, opts: PlantedStampOptions = {}): { set: PreparedSet; groups: string[] } {
  const fn = "plantedPreparedSet";
  const fraction = checkProbability(fn, "fraction", opts.fraction ?? 0.5);
  const seed = checkSeed(fn, opts.seed ?? 1);
  const borderWidth = opts.borderWidth ?? PLANTED_DEFAULTS.borderWidth;
  const borderValue = opts.borderValue ?? PLANTED_DEFAULTS.borderValue;
  if (!Number.isInteger(borderWidth) || borderWidth < 1 || borderWidth > 4) throw new RangeError(`${fn}: borderWidth must be an integer in [1, 4], got ${String(borderWidth)}`);
  if (!Number.isInteger(borderValue) || borderValue < 0 || borderValue > 255) throw new RangeError(`${fn}: borderValue must be an integer in [0, 255], got ${String(borderValue)}`);
  for (let i = 0; i < set.n; i++) {
    const c = set.labels[i];
    if (c < 0 || c >= numClasses) throw new RangeError(`${set.keys[i]}: ${c < 0 ? "has no label" : `label ${c} is outside the ${numClasses} classes`}; the planted frame is drawn on a share of each class`);
  }
  const pixels = set.pixels.slice();
  const framed = stratifiedSelection(set.labels, numClasses, fraction, seed);
  const groups: string[] = new Array(set.n).fill(PLAIN);
  const width = scaledBorderWidth(borderWidth, set.size);
  for (const i of framed) {
    if (!opts.placebo) stampBorder(pixels, set.size, set.size, i, width, borderValue, 3);
    groups[i] = FRAMED;
  }
  return { set: { ...set, pixels }, groups };
}
