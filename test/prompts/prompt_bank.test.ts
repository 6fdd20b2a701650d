/** The prompt bank, ensembles and the sensitivity study on a hand-made 3-class model. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { zeroShotClassifier } from "../../src/eval/zero_shot";
import {
  encodeImageFeatures,
  encodePromptBank,
  ensembleClassWeights,
  ensembleScores,
  singleTemplateScores,
  subsetBank,
  subsetFeatures,
  templateCosines,
} from "../../src/prompts/prompt_bank";
import { promptSensitivity } from "../../src/prompts/sensitivity";
import { assertAllClose, assertNoLeak, dot, fakeClip, imagePixels, normalize, useTestBackend } from "../eval/fake_clip";
import { assertThrowsOneLine } from "../helpers/errors";

before(useTestBackend);

export const CLASSES = ["cat", "dog", "car"];
export const TEMPLATES = ["a photo of a {}.", "a drawing of a {}.", "art of the {}."];
export const PROMPTS: Record<string, number[]> = {
  "a photo of a cat.": [3, 4, 0],
  "a drawing of a cat.": [0, 0, 2],
  "art of the cat.": [1, 0, 1],
  "a photo of a dog.": [0, 5, 0],
  "a drawing of a dog.": [0, 1, 1],
  "art of the dog.": [0, 1, 0],
  "a photo of a car.": [1, 0, 0],
  "a drawing of a car.": [2, 0, 0],
  "art of the car.": [0, 0, 1],
};
export const IMAGES = [
  [0.3, 0.4, 0.5],
  [0, 1, 0.2],
  [5, 0.1, 0],
  [0.1, 0.9, 0.3],
  [1, 0.1, 0.1],
  [0, 0.2, 1],
];
export const LABELS = [0, 1, 2, 1, 0, 2];

export function toyFeatures(fake: ReturnType<typeof fakeClip>) {
  const ids = IMAGES.map((_, i) => i);
  return encodeImageFeatures(fake, (s, e) => imagePixels(ids.slice(s, e)), LABELS, { batchSize: 4 });
}

/** Hand scores of the ensemble of template subset S: cos(img, n(sum_{p in S} n(t_pc))). */
function handScores(subset: number[]): number[][] {
  const w = CLASSES.map((c) => {
    const vs = subset.map((p) => normalize(PROMPTS[TEMPLATES[p].replace("{}", c)]));
    return normalize(vs[0].map((_, j) => vs.reduce((s, v) => s + v[j], 0)));
  });
  return IMAGES.map((img) => w.map((row) => dot(normalize(img), row)));
}

describe("prompt bank", () => {
  it("holds unit embeddings [P, C, D] and image features equal to the normalised hand vectors", () => {
    const fake = fakeClip(PROMPTS, IMAGES, 10);
    const bank = encodePromptBank(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer, batchSize: 4 });
    assert.equal(bank.dim, 3);
    TEMPLATES.forEach((t, p) =>
      CLASSES.forEach((c, k) => assertAllClose(bank.text.subarray((p * 3 + k) * 3, (p * 3 + k + 1) * 3), normalize(PROMPTS[t.replace("{}", c)]), `${t}/${c}`)),
    );
    const feats = toyFeatures(fake);
    assert.equal(feats.n, 6);
    IMAGES.forEach((img, i) => assertAllClose(feats.features.subarray(i * 3, i * 3 + 3), normalize(img), `image ${i}`));
    assert.deepEqual(Array.from(subsetFeatures(feats, [5, 0]).labels), [2, 0]);
    fake.dispose();
  });

  it("ensembleScores of every subset equals the hand ensemble (renormalised mean of normalised prompts)", () => {
    const fake = fakeClip(PROMPTS, IMAGES, 10);
    const bank = encodePromptBank(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const feats = toyFeatures(fake);
    const cos = templateCosines(bank, feats, 4);
    for (const subset of [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]]) {
      const a = [0, 1, 2].map((p) => (subset.includes(p) ? 1 : 0));
      assertAllClose(ensembleScores(bank, cos, a), handScores(subset).flat(), `subset ${subset}`);
    }
    // Positive scaling of the weights changes nothing (the ensemble is renormalised).
    assertAllClose(ensembleScores(bank, cos, [2, 2, 2]), handScores([0, 1, 2]).flat(), "scaled weights");
    assertAllClose(singleTemplateScores(bank, cos, 1), handScores([1]).flat(), "single template 1");
    // subsetBank gives the same as weights on the subset.
    const sub = subsetBank(bank, [2, 0]);
    assertAllClose(ensembleScores(sub, templateCosines(sub, feats), [1, 1]), handScores([0, 2]).flat(), "subsetBank");
    fake.dispose();
  });

  it("ensembleClassWeights are the zero-shot classifier's weights", () => {
    const fake = fakeClip(PROMPTS, IMAGES, 10);
    const bank = encodePromptBank(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const clf = zeroShotClassifier(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    assertAllClose(ensembleClassWeights(bank, [1, 1, 1]), clf.weights.dataSync(), "weights");
    clf.dispose();
    fake.dispose();
  });

  it("rejects bad weights and mismatched features in one line; leaks nothing", () => {
    const fake = fakeClip(PROMPTS, IMAGES, 10);
    const bank = encodePromptBank(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const feats = toyFeatures(fake);
    const cos = templateCosines(bank, feats);
    assertThrowsOneLine(() => ensembleScores(bank, cos, [1, 1]), /2 template weights for 3 templates/);
    assertThrowsOneLine(() => ensembleScores(bank, cos, [0, 0, 0]), /at least one template weight must be positive/);
    assertThrowsOneLine(() => ensembleScores(bank, cos, [1, -1, 0]), /template weight 1 must be >= 0/);
    assertThrowsOneLine(() => templateCosines(bank, { ...feats, dim: 2, features: new Float32Array(12) }), /dimension 2, the prompt bank 3/);
    assertNoLeak("bank + features + cosines", () => {
      const b = encodePromptBank(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer, batchSize: 2 });
      templateCosines(b, toyFeatures(fake), 4);
    });
    fake.dispose();
  });
});

describe("promptSensitivity", () => {
  it("per-template accuracy, spread, worst/best and the ensemble gain match hand values", () => {
    const fake = fakeClip(PROMPTS, IMAGES, 10);
    const bank = encodePromptBank(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const feats = toyFeatures(fake);
    const r = promptSensitivity(bank, feats, { logitScale: 10, bootstrap: { resamples: 500, seed: 3 } });
    const acc = (scores: number[][]) => scores.filter((row, i) => row.indexOf(Math.max(...row)) === LABELS[i]).length / LABELS.length;
    const singles = [0, 1, 2].map((p) => acc(handScores([p])));
    assert.deepEqual(r.perTemplate.map((t) => t.top1), singles);
    const mean = singles.reduce((a, b) => a + b, 0) / 3;
    assert.ok(Math.abs(r.top1.mean - mean) < 1e-12);
    assert.equal(r.top1.min, Math.min(...singles));
    assert.equal(r.worst.top1, Math.min(...singles));
    assert.equal(r.ensemble.top1, acc(handScores([0, 1, 2])));
    assert.ok(Math.abs(r.ensembleGain.value - (r.ensemble.top1 - mean)) < 1e-12, "gain = ensemble - mean single");
    assert.ok(r.ensembleGain.ci95[0] <= r.ensembleGain.value && r.ensembleGain.value <= r.ensembleGain.ci95[1]);
    // Seeded: the same interval again.
    const again = promptSensitivity(bank, feats, { logitScale: 10, bootstrap: { resamples: 500, seed: 3 } });
    assert.deepEqual(again.ensembleGain, r.ensembleGain);
    fake.dispose();
  });
});
