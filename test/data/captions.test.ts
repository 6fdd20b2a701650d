/** Captions (src/data/captions.ts) and their data files in datasets/fashion-mnist/. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ATTRIBUTE_KEYS,
  CaptionSet,
  DEFAULT_CAPTIONS_FILE,
  captionVocabulary,
  captionWords,
  computeAttributeThresholds,
  imageAttributes,
  loadAttributeThresholds,
  parseCaptionSpec,
} from "../../src/data/captions";
import { FASHION_MNIST_CLASSES } from "../../src/data/fashion_mnist";
import { Random } from "../../src/util/random";
import { realSplit, tmpDir } from "./util";

const set = CaptionSet.load();
const raw = JSON.parse(fs.readFileSync(DEFAULT_CAPTIONS_FILE, "utf8"));

describe("captions.json", () => {
  it("has >= 6 training and >= 4 evaluation templates, disjoint", () => {
    const { trainTemplates, evalTemplates, attributeTemplates } = set.spec;
    assert.ok(trainTemplates.length >= 6, `${trainTemplates.length} training templates`);
    assert.ok(evalTemplates.length >= 4, `${evalTemplates.length} evaluation templates`);
    assert.ok(attributeTemplates.length >= 2);
    const train = new Set(trainTemplates.map((t) => t.toLowerCase()));
    for (const t of evalTemplates) assert.ok(!train.has(t.toLowerCase()), `${t} is also a training template`);
    for (const t of attributeTemplates) assert.ok(!evalTemplates.includes(t));
  });

  it("lists the 10 classes in label order, each with synonyms that include its canonical name", () => {
    assert.deepEqual(set.classNames, FASHION_MNIST_CLASSES);
    for (const c of set.spec.classes) {
      assert.ok(c.synonyms.length >= 3, `${c.name} has ${c.synonyms.length} synonyms`);
      assert.ok(c.synonyms.includes(c.canonical));
    }
  });

  it("evaluation prompts use every evaluation template with the canonical name and fix articles", () => {
    for (let c = 0; c < 10; c++) {
      const prompts = set.evalPrompts(c);
      assert.equal(prompts.length, set.spec.evalTemplates.length);
      for (const p of prompts) assert.ok(p.includes(set.spec.classes[c].canonical), p);
    }
    assert.ok(set.evalPrompts(9).includes("a grey image of an ankle boot."));
    assert.equal(set.allEvalPrompts().length, 10);
    assert.throws(() => set.evalPrompts(10), /class index must be an integer in \[0, 9\], got 10/);
  });

  it("fills a class name holding $& or $1 literally (no replacement patterns)", () => {
    const o = JSON.parse(JSON.stringify(raw));
    o.classes[0].canonical = "$& shirt $1";
    o.classes[0].synonyms.push("$& shirt $1");
    const odd = new CaptionSet(parseCaptionSpec(o, "odd.json"));
    const prompts = odd.evalPrompts(0);
    assert.equal(prompts.length, odd.spec.evalTemplates.length);
    // String.replace would have put the matched "{}" in place of "$&" (and kept "$1").
    prompts.forEach((p, i) => assert.equal(p, odd.spec.evalTemplates[i].split("{}").join("$& shirt $1")));
  });

  it("every word of the evaluation prompts occurs in some training caption", () => {
    // Training captions use training templates, attribute templates and all synonyms.
    const trainWords = new Set<string>();
    const rng = new Random(3);
    for (let i = 0; i < 20000; i++) captionWords(set.captionForTraining(i % 10, { brightness: rng.next() * 255, width: rng.next(), area: rng.next() }, rng)).forEach((w) => trainWords.add(w));
    for (let c = 0; c < 10; c++) for (const p of set.evalPrompts(c)) for (const w of captionWords(p)) assert.ok(trainWords.has(w), `"${w}" (in "${p}") never occurs in training`);
  });
});

describe("captionForTraining", () => {
  const attrs = { brightness: 200, width: 0.9, area: 0.9 };

  it("is deterministic for a seed and differs between seeds", () => {
    const draw = (seed: number) => {
      const rng = new Random(seed);
      return Array.from({ length: 50 }, (_, i) => set.captionForTraining(i % 10, attrs, rng));
    };
    assert.deepEqual(draw(5), draw(5));
    assert.notDeepEqual(draw(5), draw(6));
  });

  it("uses every template and synonym, attributes about attributeProbability of the time, only vocabulary words", () => {
    const vocab = new Set(captionVocabulary(set));
    const rng = new Random(11);
    const seen = new Set<string>();
    let withAttr = 0;
    const N = 20000;
    const attrWords = ATTRIBUTE_KEYS.flatMap((k) => [set.spec.attributes[k]!.low, set.spec.attributes[k]!.high]);
    for (let i = 0; i < N; i++) {
      const label = i % 10;
      const cap = set.captionForTraining(label, { brightness: rng.next() * 255, width: rng.next(), area: rng.next() }, rng);
      seen.add(cap);
      const words = captionWords(cap);
      for (const w of words) assert.ok(vocab.has(w), `"${w}" of "${cap}" is not in the vocabulary`);
      if (words.some((w) => attrWords.includes(w))) withAttr++;
      assert.ok(set.spec.classes[label].synonyms.some((s) => cap.includes(s)), `${cap} has no synonym of ${set.classNames[label]}`);
      assert.doesNotMatch(cap, /\ba [aeiou]/, cap);
      assert.doesNotMatch(cap, /[{}]/);
    }
    const frac = withAttr / N;
    assert.ok(Math.abs(frac - set.attributeProbability) < 0.02, `attribute fraction ${frac}`);
    const all = [...seen].join("\n");
    for (const c of set.spec.classes) for (const s of c.synonyms) assert.ok(all.includes(s), `synonym ${s} never used`);
    for (const t of set.spec.trainTemplates) assert.match(all, templateRegExp(t, "m"), `template ${t} never used`);
  });

  it("picks the attribute word by the class threshold, and none without attributes or thresholds", () => {
    const th = set.thresholds!;
    const c = 4;
    const above = { brightness: th.values.brightness[c] + 1, width: th.values.width[c] + 0.01, area: th.values.area[c] + 0.01 };
    const below = { brightness: th.values.brightness[c] - 1, width: th.values.width[c] - 0.01, area: th.values.area[c] - 0.01 };
    assert.deepEqual(set.attributeWords(c, above), ["light", "wide", "large"]);
    assert.deepEqual(set.attributeWords(c, below), ["dark", "narrow", "small"]);
    const always = new CaptionSet(set.spec, set.thresholds, { attributeProbability: 1 });
    const rng = new Random(1);
    for (let i = 0; i < 200; i++) {
      const cap = always.captionForTraining(c, above, rng);
      const words = captionWords(cap).filter((w) => ["light", "wide", "large", "dark", "narrow", "small"].includes(w));
      assert.ok(words.length >= 1 && words.length <= set.spec.maxAttributes, cap);
      assert.ok(words.every((w) => ["light", "wide", "large"].includes(w)), cap);
    }
    const none = CaptionSet.load(DEFAULT_CAPTIONS_FILE, null, { attributeProbability: 1 });
    for (let i = 0; i < 100; i++) {
      const cap = i % 2 ? none.captionForTraining(c, above, rng) : always.captionForTraining(c, null, rng);
      assert.ok(set.spec.trainTemplates.some((t) => matches(t, cap)), `${cap} is not from a plain training template`);
    }
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Captions that a template can produce (any article "a" may have become "an"). */
function templateRegExp(template: string, flags = ""): RegExp {
  const [pre, post] = template.split("{}");
  return new RegExp(`^${esc(pre).replace(/(^|\s)a /g, "$1an? ")}.+${esc(post)}$`, flags);
}

function matches(template: string, caption: string): boolean {
  return templateRegExp(template).test(caption);
}

describe("caption file validation", () => {
  const dir = tmpDir();
  let k = 0;
  function check(mutate: (o: any) => void, field: RegExp): void {
    const o = JSON.parse(JSON.stringify(raw));
    mutate(o);
    const file = path.join(dir, `captions${k++}.json`);
    fs.writeFileSync(file, JSON.stringify(o));
    assert.throws(
      () => CaptionSet.load(file),
      (err: Error) => {
        assert.ok(!err.message.includes("\n"), err.message);
        assert.ok(err.message.startsWith(`${file}: `), err.message);
        assert.match(err.message, field);
        return true;
      },
    );
  }

  it("names the bad field in one line", () => {
    check((o) => delete o.trainTemplates, /field trainTemplates: expected a non-empty array of strings, got nothing/);
    check((o) => (o.trainTemplates[2] = "a photo"), /field trainTemplates\[2\]: expected exactly one "\{\}"/);
    check((o) => (o.evalTemplates[1] = o.trainTemplates[0]), /field evalTemplates\[1\]: expected a template not in trainTemplates/);
    check((o) => (o.attributeTemplates[0] = "a {}."), /field attributeTemplates\[0\]: expected exactly one "\{\}" \(the class\) and one "\{attr\}"/);
    check((o) => o.classes[3].synonyms.push("tee"), /field classes\[3\]\.synonyms\[4\]: expected a synonym not already used by classes\[0\]/);
    check((o) => (o.classes[2].synonyms = []), /field classes\[2\]\.synonyms: expected a non-empty array/);
    check((o) => (o.classes[1].canonical = "trousers"), /field classes\[1\]\.canonical: expected one of its synonyms/);
    check((o) => (o.classes[1].colour = "blue"), /field classes\[1\]\.colour: unknown; valid here: name, canonical, synonyms/);
    check((o) => (o.templates = []), /field templates: unknown; valid here: description, classes/);
    check((o) => (o.attributes.colour = { low: "red", high: "blue" }), /field attributes\.colour: unknown; valid here: brightness, width, area/);
    check((o) => (o.attributeProbability = 2), /field attributeProbability: expected a number in \[0, 1\], got 2/);
    check((o) => (o.classes[0].name = 7), /field classes\[0\]\.name: expected a non-empty string/);
  });

  it("reports unreadable and non-JSON files", () => {
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, "{ not json");
    assert.throws(() => CaptionSet.load(bad), (e: Error) => e.message.startsWith(`${bad}: invalid JSON`) && !e.message.includes("\n"));
    assert.throws(() => CaptionSet.load(path.join(dir, "none.json")), /none\.json: file not found/);
    assert.throws(() => parseCaptionSpec([], "x"), /x: field \(top level\): expected an object/);
  });

  it("checks the thresholds file", () => {
    const file = path.join(dir, "th.json");
    const th = JSON.parse(fs.readFileSync(path.join(path.dirname(DEFAULT_CAPTIONS_FILE), "attribute_thresholds.json"), "utf8"));
    th.width = th.width.slice(0, 9);
    fs.writeFileSync(file, JSON.stringify(th));
    assert.throws(() => loadAttributeThresholds(file), /th\.json: field width: expected an array of 10 numbers \(one per class\)/);
  });
});

describe("imageAttributes", () => {
  it("measures brightness, width and area of the object pixels", () => {
    // 4x5 image: rows 1-2 hold an object 3 and 1 pixels wide.
    const img = Uint8Array.from([0, 0, 0, 0, 0, 0, 100, 200, 30, 0, 0, 0, 250, 10, 0, 0, 0, 0, 0, 0]);
    const a = imageAttributes(img, 4, 5);
    assert.equal(a.brightness, (100 + 200 + 30 + 250) / 4);
    assert.equal(a.width, (3 / 5 + 1 / 5) / 2);
    assert.equal(a.area, 4 / 20);
    assert.deepEqual(imageAttributes(new Uint8Array(20), 4, 5), { brightness: 0, width: 0, area: 0 });
    const two = new Uint8Array(40);
    two.set(img, 20);
    assert.deepEqual(imageAttributes(two, 4, 5, 20), a);
    assert.throws(() => imageAttributes(img, 4, 5, 1), /cannot hold a 4x5 image at offset 1/);
  });

  it("on the real data: deterministic, the stored thresholds are the training medians, about half above in every class", () => {
    const train = realSplit("train");
    const recomputed = computeAttributeThresholds(train);
    const stored = set.thresholds!;
    assert.deepEqual(stored.classes, recomputed.classes);
    for (const k of ATTRIBUTE_KEYS) {
      for (let c = 0; c < 10; c++) assert.ok(Math.abs(stored.values[k][c] - recomputed.values[k][c]) < 1e-9, `${k}[${c}]`);
    }
    assert.deepEqual(imageAttributes(train.images, 28, 28, 784 * 123), imageAttributes(train.images, 28, 28, 784 * 123));
    for (const [split, lo, hi] of [["train", 0.45, 0.55], ["test", 0.4, 0.6]] as const) {
      const d = realSplit(split);
      const high = new Map<string, number>();
      const perClass = new Array(10).fill(0);
      for (let i = 0; i < d.count; i++) {
        perClass[d.labels[i]]++;
        set.attributeWords(d.labels[i], imageAttributes(d.images, 28, 28, i * 784)).forEach((w, j) => {
          const key = `${j}:${d.labels[i]}`;
          if (w === set.spec.attributes[ATTRIBUTE_KEYS[j]]!.high) high.set(key, (high.get(key) ?? 0) + 1);
        });
      }
      for (let j = 0; j < ATTRIBUTE_KEYS.length; j++) {
        for (let c = 0; c < 10; c++) {
          const f = (high.get(`${j}:${c}`) ?? 0) / perClass[c];
          assert.ok(f >= lo && f <= hi, `${split}: ${ATTRIBUTE_KEYS[j]} of class ${c} is high for ${f.toFixed(3)}`);
        }
      }
    }
  });
});

describe("vocabulary", () => {
  it("is sorted, unique and compact", () => {
    const v = set.vocabulary();
    assert.deepEqual(v, [...new Set(v)].sort());
    assert.ok(v.includes("an") && v.includes("ankle") && v.includes("dark") && v.includes("."));
    assert.ok(v.length < 100, `${v.length} words`);
    assert.deepEqual(captionWords("A T-shirt, please."), ["a", "t", "-", "shirt", ",", "please", "."]);
  });
});
