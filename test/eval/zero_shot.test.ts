/** Zero-shot classification on a hand-made 3-class model where every number is known. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  classifierFromWeights,
  ensembleWeights,
  ensembleWeightsPerClass,
  zeroShotClassifier,
} from "../../src/eval/zero_shot";
import { fillPrompt } from "../../src/text/fill";
import { checkTemplates } from "../../src/text/templates";
import { assertAllClose, assertNoLeak, dot, fakeClip, flatPixels, imagePixels, normalize, softmax, useTestBackend } from "./fake_clip";

const CLASSES = ["cat", "dog", "car"];
const TEMPLATES = ["a photo of a {}.", "a drawing of a {}."];
const PROMPTS: Record<string, number[]> = {
  "a photo of a cat.": [3, 4, 0],
  "a drawing of a cat.": [0, 0, 2],
  "a photo of a dog.": [0, 5, 0],
  "a drawing of a dog.": [0, 1, 1],
  "a photo of a car.": [1, 0, 0],
  "a drawing of a car.": [2, 0, 0],
};
const IMAGES = [
  [0.3, 0.4, 0.5], // cat
  [0, 1, 0.2], // dog
  [5, 0.1, 0], // car
  [0.1, 0.9, 0.3], // dog
  [1, 0.1, 0.1], // car (labelled cat in the evaluation below: a known mistake)
];
const SCALE = 10;

/** The ensemble by hand: normalise each prompt, average, renormalise. */
function handWeights(): number[][] {
  return CLASSES.map((c) => {
    const vs = TEMPLATES.map((t) => normalize(PROMPTS[fillPrompt(t, c)]));
    return normalize(vs[0].map((_, j) => vs.reduce((s, v) => s + v[j], 0) / vs.length));
  });
}

function handLogits(scale = SCALE): number[][] {
  const w = handWeights();
  return IMAGES.map((img) => w.map((row) => scale * dot(normalize(img), row)));
}

before(useTestBackend);

describe("ensembleWeights", () => {
  it("normalises each prompt, averages and renormalises (hand values)", () => {
    // cat: n([3,4,0]) = [.6,.8,0], n([0,0,2]) = [0,0,1]; mean [.3,.4,.5], norm sqrt(.5).
    const e = tf.tensor3d([[[3, 4, 0], [0, 0, 2]], [[1, 0, 0], [2, 0, 0]]]);
    const w = ensembleWeights(e);
    const s = Math.sqrt(0.5);
    assertAllClose(w.dataSync(), [0.3 / s, 0.4 / s, 0.5 / s, 1, 0, 0], "weights");
    // Not the normalised mean of the raw vectors ([1.5, 2, 1] / |.|).
    assert.ok(Math.abs(w.dataSync()[2] - 1 / Math.hypot(1.5, 2, 1)) > 0.1);
    tf.dispose([e, w]);
  });

  it("ensembleWeightsPerClass accepts different prompt counts per class", () => {
    const a = tf.tensor2d([[3, 4, 0], [0, 0, 2]]);
    const b = tf.tensor2d([[0, 0, 7]]);
    const w = ensembleWeightsPerClass([a, b]);
    const s = Math.sqrt(0.5);
    assertAllClose(w.dataSync(), [0.3 / s, 0.4 / s, 0.5 / s, 0, 0, 1], "weights");
    tf.dispose([a, b, w]);
  });

  it("rejects wrong ranks in one line", () => {
    const x = tf.zeros([2, 3]);
    assert.throws(() => ensembleWeights(x as unknown as tf.Tensor3D), /^Error: ensembleWeights: embeddings must have rank 3 \(\[C, P, D\]\), got shape \[2, 3\]$/);
    x.dispose();
  });
});

describe("templates", () => {
  it("need exactly one {}; the error names the template on one line", () => {
    const validateTemplates = (t: readonly string[]) => checkTemplates(t, "zeroShotClassifier", { allowDuplicates: true });
    assert.throws(() => validateTemplates(["a photo of a {}.", "no placeholder"]), {
      message: 'zeroShotClassifier: template 1 "no placeholder" must contain exactly one "{}" (where the class name goes), found 0',
    });
    assert.throws(() => validateTemplates(["{} and {}"]), /template 0 "\{\} and \{\}" .*found 2$/);
    assert.throws(() => validateTemplates([]), /templates must be a non-empty array/);
    assert.throws(() => validateTemplates([42 as unknown as string]), /template 0 is not a string/);
    try {
      validateTemplates(["line one\nline two"]);
      assert.fail("should throw");
    } catch (err) {
      assert.ok(!(err as Error).message.includes("\n"), "one line");
      assert.match((err as Error).message, /"line one\\nline two"/);
    }
  });

  it("an ensemble may repeat a template (it weights it); a template file may not", () => {
    assert.deepEqual(checkTemplates(["a {}", "a {}"], "zeroShotClassifier", { allowDuplicates: true }), ["a {}", "a {}"]);
    assert.throws(() => checkTemplates(["a {}", "a {}"], "set.json"), /^Error: set\.json: template 1 "a \{\}" appears twice$/);
  });

  it("zeroShotClassifier validates before encoding anything", () => {
    const fake = fakeClip(PROMPTS, IMAGES, SCALE);
    const before = tf.memory().numTensors;
    assert.throws(() => zeroShotClassifier(fake, CLASSES, ["a {} {}"], { tokenizer: fake.tokenizer }), /template 0 "a \{\} \{\}"/);
    assert.throws(() => zeroShotClassifier(fake, [], TEMPLATES, { tokenizer: fake.tokenizer }), /classNames must be a non-empty array/);
    assert.throws(() => zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer, batchSize: 0 }), /batchSize must be a positive integer, got 0/);
    assert.deepEqual(fake.textBatches, []);
    assert.equal(tf.memory().numTensors, before);
    fake.dispose();
  });

  it("fillPrompt inserts the class name literally (no $& patterns)", () => {
    assert.equal(fillPrompt("a photo of a {}.", "$& co"), "a photo of a $& co.");
    assert.equal(fillPrompt("{}", "x"), "x");
  });
});

describe("zeroShotClassifier on the 3-class toy", () => {
  it("weights are unit rows equal to the normalised mean of normalised prompts", () => {
    const fake = fakeClip(PROMPTS, IMAGES, SCALE);
    const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    assert.deepEqual(clf.weights.shape, [3, 3]);
    assertAllClose(clf.weights.dataSync(), handWeights().flat(), "weights");
    const norms = tf.tidy(() => tf.norm(clf.weights, 2, 1).dataSync());
    assertAllClose(norms, [1, 1, 1], "row norms");
    assert.deepEqual(clf.classNames, CLASSES);
    assert.deepEqual(clf.templates, TEMPLATES);
    clf.dispose();
    fake.dispose();
  });

  it("batches prompts by whole classes and gives the same weights for any batchSize", () => {
    const want = handWeights().flat();
    const cases: [number, number[]][] = [
      [256, [6]], // everything at once
      [5, [4, 2]], // two classes (4 prompts), then one
      [2, [2, 2, 2]], // one class per call
      [1, [1, 1, 1, 1, 1, 1]], // one class per chunk, one prompt per call
    ];
    for (const [batchSize, calls] of cases) {
      const fake = fakeClip(PROMPTS, IMAGES, SCALE);
      const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer, batchSize });
      assert.deepEqual(fake.textBatches, calls, `batchSize ${batchSize}`);
      assertAllClose(clf.weights.dataSync(), want, `weights at batchSize ${batchSize}`);
      clf.dispose();
      fake.dispose();
    }
  });

  it("predict: known answer, probs = softmax(exp(logitScale) * cos) rows summing to 1", () => {
    const fake = fakeClip(PROMPTS, IMAGES, SCALE);
    const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const pixels = imagePixels([0, 1, 2, 3, 4]);
    const logits = clf.logits(pixels);
    assertAllClose(logits.dataSync(), handLogits().flat(), "logits", 1e-4);
    const { top1, probs } = clf.predict(pixels);
    assert.deepEqual(Array.from(top1), [0, 1, 2, 1, 2]);
    assert.deepEqual(probs.shape, [5, 3]);
    assertAllClose(probs.dataSync(), handLogits().flatMap(softmax), "probs");
    const sums = tf.tidy(() => tf.sum(probs, 1).dataSync());
    assertAllClose(sums, [1, 1, 1, 1, 1], "row sums");
    tf.dispose([pixels, logits, probs]);
    clf.dispose();
    fake.dispose();
  });

  it("reads the temperature at call time", () => {
    const fake = fakeClip(PROMPTS, IMAGES, SCALE);
    const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const pixels = imagePixels([0, 1, 2, 3, 4]);
    fake.logitScale.assign(tf.scalar(Math.log(100)));
    const { probs } = clf.predict(pixels);
    assertAllClose(probs.dataSync(), handLogits(100).flatMap(softmax), "probs at scale 100");
    tf.dispose([pixels, probs]);
    clf.dispose();
    fake.dispose();
  });

  it("encodes images in batches of batchSize", () => {
    const fake = fakeClip(PROMPTS, IMAGES, SCALE);
    const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer, batchSize: 2 });
    const pixels = imagePixels([0, 1, 2, 3, 4]);
    const logits = clf.logits(pixels);
    assert.deepEqual(fake.imageBatches, [2, 2, 1]);
    assertAllClose(logits.dataSync(), handLogits().flat(), "logits", 1e-4);
    tf.dispose([pixels, logits]);
    clf.dispose();
    fake.dispose();
  });

  it("evaluate: top1, top5, perClass and confusion from Float32Array, tensor or batch function", () => {
    const fake = fakeClip(PROMPTS, IMAGES, SCALE);
    const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const ids = [0, 1, 2, 3, 4];
    const labels = new Int32Array([0, 1, 2, 1, 0]); // image 4 looks like a car
    const tensor = imagePixels(ids);
    const calls: [number, number][] = [];
    const sources = {
      float32: flatPixels(ids),
      tensor,
      fn: (start: number, end: number) => {
        calls.push([start, end]);
        return imagePixels(ids.slice(start, end));
      },
    };
    for (const [name, pixels] of Object.entries(sources)) {
      const r = clf.evaluate({ pixels, labels }, { batchSize: 2 });
      assert.equal(r.n, 5, name);
      assert.equal(r.top1, 4 / 5, name);
      assert.equal(r.top5, 1, `${name}: C = 3 <= 5, so top-5 = top-3 = 1`);
      assert.deepEqual(r.perClass, [1 / 2, 1, 1], name);
      assert.deepEqual(r.support, [2, 2, 1], name);
      assert.equal(r.meanPerClass, (0.5 + 1 + 1) / 3, name);
      assert.deepEqual(r.confusion, [[1, 0, 1], [0, 2, 0], [0, 0, 1]], name);
    }
    assert.deepEqual(calls, [[0, 2], [2, 4], [4, 5]]);
    tensor.dispose();
    clf.dispose();
    fake.dispose();
  });

  it("evaluate rejects bad labels and pixel sizes in one line", () => {
    const fake = fakeClip(PROMPTS, IMAGES, SCALE);
    const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const before = tf.memory().numTensors;
    assert.throws(() => clf.evaluate({ pixels: flatPixels([0, 1]), labels: [0, 3] }), /labels\[1\] = 3 is not an integer in \[0, 3\)/);
    assert.throws(() => clf.evaluate({ pixels: flatPixels([0, 1]), labels: [0, 1, 2] }), /pixels holds 6 values, expected 3 images x 1x1x3 = 9/);
    assert.throws(() => clf.evaluate({ pixels: () => imagePixels([0]), labels: [0, 1] }), /pixels\(0, 2\) returned shape \[1, 1, 1, 3\], expected \[2, 1, 1, 3\]/);
    assert.throws(() => clf.evaluate({ pixels: flatPixels([]), labels: [] }), /no images to evaluate/);
    assert.equal(tf.memory().numTensors, before, "failed calls leave nothing");
    clf.dispose();
    fake.dispose();
  });

  it("a bad tokenizer output or a zero text feature is a clear error, with nothing leaked", () => {
    const fake = fakeClip({ ...PROMPTS, "a photo of a void.": [0, 0, 0], "a drawing of a void.": [0, 0, 0] }, IMAGES, SCALE);
    const before = tf.memory().numTensors;
    assert.throws(
      () => zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: () => tf.zeros([1, 1], "int32") as tf.Tensor2D }),
      /the tokenizer must return \[6, T\] token ids for 6 texts, got shape \[1, 1\]/,
    );
    assert.throws(
      () => zeroShotClassifier(fake, ["cat", "void"], TEMPLATES, { tokenizer: fake.tokenizer }),
      /the class embedding of class 1 \("void"\) is not finite/,
    );
    assert.equal(tf.memory().numTensors, before);
    fake.dispose();
  });

  it("dispose frees the weights; a disposed classifier refuses work", () => {
    const fake = fakeClip(PROMPTS, IMAGES, SCALE);
    const before = tf.memory().numTensors;
    const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    assert.ok(tf.memory().numTensors > before);
    clf.dispose();
    clf.dispose(); // idempotent
    assert.equal(tf.memory().numTensors, before);
    assert.ok(clf.isDisposed && clf.weights.isDisposed);
    const pixels = imagePixels([0]);
    assert.throws(() => clf.predict(pixels), /this classifier has been disposed/);
    pixels.dispose();
    fake.dispose();
  });
});

describe("classifierFromWeights", () => {
  it("top-5 with more than 5 classes; ties go to the lower class index", () => {
    const eye = tf.eye(7) as tf.Tensor2D;
    const images = [
      [7, 6, 5, 4, 3, 2, 1], // ranking 0, 1, ..., 6
      [7, 6, 5, 4, 3, 2, 1],
      [1, 1, 0, 0, 0, 0, 0], // classes 0 and 1 tie
      [0, 0, 0, 0, 0, 0, 1],
    ];
    const fake = fakeClip({}, images, 1);
    const clf = classifierFromWeights(fake, eye, { batchSize: 3 });
    eye.dispose(); // the classifier holds its own reference
    const labels = [4, 5, 1, 6]; // rank 5 (hit), rank 6 (miss), tie lost at top-1 but top-5 hit, top-1 hit
    const r = clf.evaluate({ pixels: flatPixels([0, 1, 2, 3]), labels });
    assert.equal(r.top1, 1 / 4);
    assert.equal(r.top5, 3 / 4);
    assert.deepEqual(r.confusion[1], [1, 0, 0, 0, 0, 0, 0], "the tie predicts class 0");
    assert.ok(Number.isNaN(r.perClass[0]), "no image of class 0");
    assert.deepEqual(r.perClass.slice(1), [0, NaN, NaN, 0, 0, 1]);
    assert.equal(r.meanPerClass, 1 / 4, "mean over the 4 classes that have images");
    const pixels = imagePixels([2]);
    const { top1, probs } = clf.predict(pixels);
    assert.deepEqual(Array.from(top1), [0]);
    tf.dispose([pixels, probs]);
    clf.dispose();
    fake.dispose();
  });
});

describe("memory", () => {
  it("construction, logits, predict and evaluate leak nothing", () => {
    const fake = fakeClip(PROMPTS, IMAGES, SCALE);
    const pixels = imagePixels([0, 1, 2, 3, 4]);
    const labels = new Int32Array([0, 1, 2, 1, 0]);
    assertNoLeak("construct + dispose", () => zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer, batchSize: 3 }).dispose());
    const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer, batchSize: 2 });
    assertNoLeak("logits", () => clf.logits(pixels).dispose());
    assertNoLeak("predict", () => clf.predict(pixels).probs.dispose());
    assertNoLeak("evaluate (Float32Array)", () => clf.evaluate({ pixels: flatPixels([0, 1, 2, 3, 4]), labels }));
    assertNoLeak("evaluate (tensor)", () => clf.evaluate({ pixels, labels }, { batchSize: 3 }));
    assertNoLeak("evaluate (function)", () => clf.evaluate({ pixels: (s, e) => imagePixels([0, 1, 2, 3, 4].slice(s, e)), labels }));
    tf.dispose(pixels);
    clf.dispose();
    fake.dispose();
  });
});
