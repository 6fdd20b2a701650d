/**
 * Captions for contrastive training on labelled images. The templates, synonyms and attribute
 * words are data (`datasets/fashion-mnist/captions.json`), as are the per-class attribute
 * thresholds (`datasets/fashion-mnist/attribute_thresholds.json`, the training-set medians).
 *
 * A training caption is a random template filled with a random synonym of the class and, with
 * probability `attributeProbability`, one or more attribute words measured from the pixels
 * ("a photo of a dark wide coat."). Evaluation prompts are the evaluation templates (disjoint from
 * the training ones) filled with each class's canonical name.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Random } from "../util/random";
import type { LabelledImages } from "./fashion_mnist";
import { fillPrompt } from "../text/fill";

/** Repository folder holding the Fashion-MNIST caption data. */
export const FASHION_MNIST_DATA_DIR = path.join(__dirname, "..", "..", "datasets", "fashion-mnist");
export const DEFAULT_CAPTIONS_FILE = path.join(FASHION_MNIST_DATA_DIR, "captions.json");
export const DEFAULT_ATTRIBUTE_THRESHOLDS_FILE = path.join(FASHION_MNIST_DATA_DIR, "attribute_thresholds.json");

/** A pixel brighter than this (0-255) belongs to the object; the background is 0 or near it. */
export const OBJECT_PIXEL_MIN = 16;

/** The measurements that attributes are made from. */
export const ATTRIBUTE_KEYS = ["brightness", "width", "area"] as const;
export type AttributeKey = (typeof ATTRIBUTE_KEYS)[number];

/**
 * Measurements of one grey image's object pixels (those > `OBJECT_PIXEL_MIN`):
 * - `brightness`: their mean intensity, 0-255;
 * - `width`: over the rows that hold object pixels, the mean of (rightmost - leftmost + 1) / width,
 *   i.e. how wide the silhouette is (a fraction; the item's bounding box is useless here because
 *   Fashion-MNIST scales every shoe and bag to the full 28 columns);
 * - `area`: their fraction of the image.
 * An image with no object pixels measures 0 on all three.
 */
export type ImageAttributes = Record<AttributeKey, number>;

export function imageAttributes(img: Uint8Array, h: number, w: number, offset = 0): ImageAttributes {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h <= 0 || w <= 0) {
    throw new RangeError(`imageAttributes: h and w must be positive integers, got ${h}x${w}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + h * w > img.length) {
    throw new RangeError(`imageAttributes: ${img.length} values cannot hold a ${h}x${w} image at offset ${offset}`);
  }
  let sum = 0;
  let count = 0;
  let rowSpan = 0;
  let rows = 0;
  for (let y = 0; y < h; y++) {
    const row = offset + y * w;
    let left = -1;
    let right = -1;
    for (let x = 0; x < w; x++) {
      const v = img[row + x];
      if (v > OBJECT_PIXEL_MIN) {
        sum += v;
        count++;
        if (left < 0) left = x;
        right = x;
      }
    }
    if (left >= 0) {
      rowSpan += right - left + 1;
      rows++;
    }
  }
  return {
    brightness: count ? sum / count : 0,
    width: rows ? rowSpan / rows / w : 0,
    area: count / (h * w),
  };
}

/** Per-class thresholds: an image whose measurement is above its class's value gets the "high" word. */
export interface AttributeThresholds {
  classes: string[];
  values: Record<AttributeKey, number[]>;
}

/** The median of each measurement within each class (so about half of each class is "high"). */
export function computeAttributeThresholds(data: LabelledImages): AttributeThresholds {
  const k = data.classNames.length;
  const per: Record<AttributeKey, number[][]> = {
    brightness: Array.from({ length: k }, () => []),
    width: Array.from({ length: k }, () => []),
    area: Array.from({ length: k }, () => []),
  };
  const size = data.height * data.width;
  for (let i = 0; i < data.count; i++) {
    const a = imageAttributes(data.images, data.height, data.width, i * size);
    for (const key of ATTRIBUTE_KEYS) per[key][data.labels[i]].push(a[key]);
  }
  const values = {} as Record<AttributeKey, number[]>;
  for (const key of ATTRIBUTE_KEYS) {
    values[key] = per[key].map((xs, c) => {
      if (xs.length === 0) throw new RangeError(`computeAttributeThresholds: class ${c} (${data.classNames[c]}) has no images`);
      return median(xs);
    });
  }
  return { classes: [...data.classNames], values };
}

function median(xs: number[]): number {
  const s = Float64Array.from(xs).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The JSON form of `AttributeThresholds` (attribute_thresholds.json). */
export function attributeThresholdsToJson(t: AttributeThresholds, source: string): string {
  const lines = [
    "{",
    `  "source": ${JSON.stringify(source)},`,
    `  "objectPixelMin": ${OBJECT_PIXEL_MIN},`,
    `  "classes": ${JSON.stringify(t.classes)},`,
    ...ATTRIBUTE_KEYS.map((k, i) => `  "${k}": ${JSON.stringify(t.values[k])}${i < ATTRIBUTE_KEYS.length - 1 ? "," : ""}`),
    "}",
  ];
  return lines.join("\n") + "\n";
}

/** Reads attribute_thresholds.json; a bad file is a one-line error naming the field. */
export function loadAttributeThresholds(file: string = DEFAULT_ATTRIBUTE_THRESHOLDS_FILE): AttributeThresholds {
  const raw = readJson(file);
  const bad = (field: string, expected: string, got: unknown): never => {
    throw new Error(`${file}: field ${field}: expected ${expected}, got ${show(got)}`);
  };
  if (!isObject(raw)) bad("(top level)", "an object", raw);
  const o = raw as Record<string, unknown>;
  if (o.objectPixelMin !== OBJECT_PIXEL_MIN) {
    bad("objectPixelMin", `${OBJECT_PIXEL_MIN} (the value src/data/captions.ts measures with; recompute the thresholds)`, o.objectPixelMin);
  }
  const classes = o.classes;
  if (!Array.isArray(classes) || classes.length === 0) bad("classes", "a non-empty array of class names", classes);
  (classes as unknown[]).forEach((c, i) => typeof c === "string" || bad(`classes[${i}]`, "a string", c));
  const values = {} as Record<AttributeKey, number[]>;
  for (const key of ATTRIBUTE_KEYS) {
    const v = o[key];
    if (!Array.isArray(v) || v.length !== (classes as string[]).length) {
      bad(key, `an array of ${(classes as string[]).length} numbers (one per class)`, v);
    }
    (v as unknown[]).forEach((x, i) => (typeof x === "number" && Number.isFinite(x)) || bad(`${key}[${i}]`, "a finite number", x));
    values[key] = v as number[];
  }
  return { classes: classes as string[], values };
}

/** One attribute's two words. */
export interface AttributeWords {
  low: string;
  high: string;
}

/** The validated contents of captions.json. */
export interface CaptionSpec {
  classes: { name: string; canonical: string; synonyms: string[] }[];
  trainTemplates: string[];
  evalTemplates: string[];
  attributeTemplates: string[];
  attributes: Partial<Record<AttributeKey, AttributeWords>>;
  /** Probability that a training caption carries attributes (when the image's are given). */
  attributeProbability: number;
  /** Most attribute words in one caption (1 or more; each caption draws 1..max uniformly). */
  maxAttributes: number;
}

const SPEC_KEYS = ["description", "classes", "trainTemplates", "evalTemplates", "attributeTemplates", "attributes", "attributeProbability", "maxAttributes"];

/** Validates a parsed captions.json; errors are one line `source: field F: expected X, got Y`. */
export function parseCaptionSpec(raw: unknown, source: string): CaptionSpec {
  const bad = (field: string, expected: string, got: unknown): never => {
    throw new Error(`${source}: field ${field}: expected ${expected}, got ${show(got)}`);
  };
  const unknown = (field: string, valid: readonly string[]): never => {
    throw new Error(`${source}: field ${field}: unknown; valid here: ${valid.join(", ")}`);
  };
  if (!isObject(raw)) bad("(top level)", "an object", raw);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!SPEC_KEYS.includes(k)) unknown(k, SPEC_KEYS);

  const str = (field: string, v: unknown): string => {
    if (typeof v !== "string" || v.trim() === "" || v !== v.trim()) bad(field, "a non-empty string without leading or trailing spaces", v);
    return v as string;
  };
  const strList = (field: string, v: unknown): string[] => {
    if (!Array.isArray(v) || v.length === 0) bad(field, "a non-empty array of strings", v);
    const list = (v as unknown[]).map((x, i) => str(`${field}[${i}]`, x));
    const seen = new Set<string>();
    list.forEach((s, i) => {
      const key = s.toLowerCase();
      if (seen.has(key)) bad(`${field}[${i}]`, "no duplicates", s);
      seen.add(key);
    });
    return list;
  };
  const templates = (field: string, v: unknown, withAttr: boolean): string[] => {
    const list = strList(field, v);
    list.forEach((t, i) => {
      const holes = t.split("{}").length - 1;
      const attrs = t.split("{attr}").length - 1;
      const stray = t.replace(/\{attr\}|\{\}/g, "").match(/[{}]/);
      if (holes !== 1 || attrs !== (withAttr ? 1 : 0) || stray) {
        bad(`${field}[${i}]`, withAttr ? 'exactly one "{}" (the class) and one "{attr}"' : 'exactly one "{}" (the class) and no other braces', t);
      }
    });
    return list;
  };

  if (!Array.isArray(o.classes) || o.classes.length === 0) bad("classes", "a non-empty array of {name, synonyms}", o.classes);
  const owner = new Map<string, number>();
  const classes = (o.classes as unknown[]).map((c, i) => {
    const f = `classes[${i}]`;
    if (!isObject(c)) bad(f, "an object {name, canonical?, synonyms}", c);
    const co = c as Record<string, unknown>;
    for (const k of Object.keys(co)) if (!["name", "canonical", "synonyms"].includes(k)) unknown(`${f}.${k}`, ["name", "canonical", "synonyms"]);
    const name = str(`${f}.name`, co.name);
    const synonyms = strList(`${f}.synonyms`, co.synonyms);
    synonyms.forEach((s, j) => {
      const prev = owner.get(s.toLowerCase());
      if (prev !== undefined && prev !== i) bad(`${f}.synonyms[${j}]`, `a synonym not already used by classes[${prev}]`, s);
      owner.set(s.toLowerCase(), i);
    });
    const canonical = co.canonical === undefined ? synonyms[0] : str(`${f}.canonical`, co.canonical);
    if (!synonyms.includes(canonical)) bad(`${f}.canonical`, `one of its synonyms (${synonyms.join(", ")})`, canonical);
    return { name, canonical, synonyms };
  });

  const trainTemplates = templates("trainTemplates", o.trainTemplates, false);
  const evalTemplates = templates("evalTemplates", o.evalTemplates, false);
  const trainSet = new Set(trainTemplates.map((t) => t.toLowerCase()));
  evalTemplates.forEach((t, i) => trainSet.has(t.toLowerCase()) && bad(`evalTemplates[${i}]`, "a template not in trainTemplates", t));
  const attributeTemplates = templates("attributeTemplates", o.attributeTemplates, true);

  if (!isObject(o.attributes)) bad("attributes", `an object mapping some of ${ATTRIBUTE_KEYS.join(", ")} to {low, high}`, o.attributes);
  const attributes: Partial<Record<AttributeKey, AttributeWords>> = {};
  const words = new Set<string>();
  for (const [k, v] of Object.entries(o.attributes as Record<string, unknown>)) {
    if (!(ATTRIBUTE_KEYS as readonly string[]).includes(k)) unknown(`attributes.${k}`, ATTRIBUTE_KEYS);
    if (!isObject(v) || Object.keys(v as object).sort().join() !== "high,low") bad(`attributes.${k}`, "{low, high}", v);
    const w = v as Record<string, unknown>;
    const low = str(`attributes.${k}.low`, w.low);
    const high = str(`attributes.${k}.high`, w.high);
    for (const [field, word] of [["low", low], ["high", high]]) {
      if (words.has(word)) bad(`attributes.${k}.${field}`, "a word not used by another attribute", word);
      words.add(word);
    }
    attributes[k as AttributeKey] = { low, high };
  }

  const p = o.attributeProbability ?? 0.5;
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) bad("attributeProbability", "a number in [0, 1]", p);
  const nAttr = Object.keys(attributes).length;
  const maxAttributes = o.maxAttributes ?? Math.min(2, nAttr);
  if (typeof maxAttributes !== "number" || !Number.isInteger(maxAttributes) || maxAttributes < (nAttr ? 1 : 0) || maxAttributes > nAttr) {
    bad("maxAttributes", `an integer in [${nAttr ? 1 : 0}, ${nAttr}] (the number of attributes)`, maxAttributes);
  }
  return { classes, trainTemplates, evalTemplates, attributeTemplates, attributes, attributeProbability: p as number, maxAttributes: maxAttributes as number };
}

/** Splits a caption into the words a word-level vocabulary needs: lower-case runs of letters and digits, and each other non-space character. */
export function captionWords(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+|[^\sa-z0-9]/g) ?? [];
}

/** "a apple" -> "an apple" (templates are written with "a"; some synonyms start with a vowel). */
function fixArticles(s: string): string {
  return s.replace(/(^|\s)([Aa]) (?=[aeiouAEIOU])/g, "$1$2n ");
}

function fill(template: string, cls: string, attr = ""): string {
  return fixArticles(fillPrompt(template, cls, { "{attr}": attr }));
}

export interface CaptionSetOptions {
  /** Override the file's `attributeProbability`. */
  attributeProbability?: number;
}

/** Captions for one class list: training captions, evaluation prompts and the vocabulary they use. */
export class CaptionSet {
  readonly classNames: string[];
  readonly attributeProbability: number;
  private readonly attrKeys: AttributeKey[];

  constructor(
    readonly spec: CaptionSpec,
    /** Per-class thresholds; without them training captions carry no attributes. */
    readonly thresholds: AttributeThresholds | null = null,
    opts: CaptionSetOptions = {},
  ) {
    this.classNames = spec.classes.map((c) => c.name);
    if (thresholds) {
      const same = thresholds.classes.length === this.classNames.length && thresholds.classes.every((c, i) => c === this.classNames[i]);
      if (!same) {
        throw new Error(`CaptionSet: attribute thresholds are for classes [${thresholds.classes.join(", ")}], the captions for [${this.classNames.join(", ")}]`);
      }
    }
    const p = opts.attributeProbability ?? spec.attributeProbability;
    if (typeof p !== "number" || !(p >= 0 && p <= 1)) throw new RangeError(`CaptionSet: attributeProbability must be in [0, 1], got ${String(p)}`);
    this.attributeProbability = p;
    this.attrKeys = ATTRIBUTE_KEYS.filter((k) => spec.attributes[k] !== undefined);
  }

  /**
   * Loads captions.json and (unless `thresholdsFile` is null) attribute_thresholds.json; each is
   * validated, and a bad file is a one-line error naming the file and the field.
   */
  static load(
    file: string = DEFAULT_CAPTIONS_FILE,
    thresholdsFile: string | null = DEFAULT_ATTRIBUTE_THRESHOLDS_FILE,
    opts: CaptionSetOptions = {},
  ): CaptionSet {
    const spec = parseCaptionSpec(readJson(file), file);
    const thresholds = thresholdsFile === null ? null : loadAttributeThresholds(thresholdsFile);
    return new CaptionSet(spec, thresholds, opts);
  }

  get numClasses(): number {
    return this.classNames.length;
  }

  private checkClass(fn: string, c: number): void {
    if (!Number.isInteger(c) || c < 0 || c >= this.classNames.length) {
      throw new RangeError(`CaptionSet.${fn}: class index must be an integer in [0, ${this.classNames.length - 1}], got ${String(c)}`);
    }
  }

  /** The attribute words for an image of class `label`, in `ATTRIBUTE_KEYS` order (empty without thresholds). */
  attributeWords(label: number, attrs: ImageAttributes): string[] {
    this.checkClass("attributeWords", label);
    if (!this.thresholds) return [];
    return this.attrKeys.map((k) => {
      const words = this.spec.attributes[k]!;
      return attrs[k] > this.thresholds!.values[k][label] ? words.high : words.low;
    });
  }

  /**
   * A random training caption for an image of class `label`: a random training template and a
   * random synonym; with probability `attributeProbability` (and when `attrs` and thresholds are
   * given) instead a random attribute template with 1..maxAttributes of the image's attribute
   * words in random order. Uses `rng` only, so a seeded generator reproduces the caption.
   */
  captionForTraining(label: number, attrs: ImageAttributes | null, rng: Random): string {
    this.checkClass("captionForTraining", label);
    const cls = this.spec.classes[label];
    const synonym = cls.synonyms[rng.int(cls.synonyms.length)];
    const withAttrs = attrs !== null && this.thresholds !== null && this.attrKeys.length > 0 && rng.next() < this.attributeProbability;
    if (!withAttrs) {
      const t = this.spec.trainTemplates;
      return fill(t[rng.int(t.length)], synonym);
    }
    const words = this.attributeWords(label, attrs!);
    const k = 1 + rng.int(this.spec.maxAttributes);
    const order = rng.shuffle(words.map((_, i) => i)) as number[];
    const phrase = order
      .slice(0, k)
      .map((i) => words[i])
      .join(" ");
    const t = this.spec.attributeTemplates;
    return fill(t[rng.int(t.length)], synonym, phrase);
  }

  /** The evaluation prompts of one class: every evaluation template with its canonical name. */
  evalPrompts(classIndex: number): string[] {
    this.checkClass("evalPrompts", classIndex);
    return this.spec.evalTemplates.map((t) => fill(t, this.spec.classes[classIndex].canonical));
  }

  /** `evalPrompts` of every class, in class order. */
  allEvalPrompts(): string[][] {
    return this.classNames.map((_, c) => this.evalPrompts(c));
  }

  /**
   * Every word (as split by `captionWords`) that any training caption or evaluation prompt can
   * contain, sorted: enough for a compact word-level vocabulary.
   */
  vocabulary(): string[] {
    const words = new Set<string>();
    const add = (s: string): void => captionWords(s).forEach((w) => words.add(w));
    const texts = [...this.spec.trainTemplates, ...this.spec.evalTemplates, ...this.spec.attributeTemplates];
    for (const t of texts) add(t.replace(/\{attr\}|\{\}/g, " "));
    for (const c of this.spec.classes) c.synonyms.forEach(add);
    for (const k of this.attrKeys) {
      add(this.spec.attributes[k]!.low);
      add(this.spec.attributes[k]!.high);
    }
    // Article agreement can turn any "a" into "an".
    if (words.has("a")) words.add("an");
    return [...words].sort();
  }
}

/** Every word the caption set can produce (see `CaptionSet.vocabulary`). */
export function captionVocabulary(set: CaptionSet): string[] {
  return set.vocabulary();
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`${file}: ${e.code === "ENOENT" ? "file not found" : `cannot read: ${e.message.split("\n")[0]}`}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${(err as Error).message.split("\n")[0]}`);
  }
}

function isObject(v: unknown): boolean {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
