/** Template selection on validation data only: greedy forward selection and the weighted ensemble. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { encodePromptBank, ensembleScores, templateCosines, type FeatureSet } from "../../src/prompts/prompt_bank";
import { carveValidation, greedyTemplateSelection, selectionWeights, weightedTemplateEnsemble } from "../../src/prompts/selection";
import { top1Accuracy } from "../../src/eval/classifier_metrics";
import { runPromptStudy } from "../../src/prompts/study";
import { promptStudySection } from "../../src/report/sections/prompts";
import { Clip } from "../../src/model/clip";
import { fakeClip, useTestBackend } from "../eval/fake_clip";
import { assertThrowsOneLine } from "../helpers/errors";
import { syntheticImages } from "../data/util";
import { FashionMnistDataset } from "../../src/data/sources/fashion_mnist";
import { CLASSES, PROMPTS, TEMPLATES, toyFeatures } from "./prompt_bank.test";

before(useTestBackend);

describe("greedyTemplateSelection", () => {
  it("adds, at each step, the template whose ensemble scores best on validation", () => {
    const fake = fakeClip(PROMPTS, [[0.3, 0.4, 0.5], [0, 1, 0.2], [5, 0.1, 0], [0.1, 0.9, 0.3], [1, 0.1, 0.1], [0, 0.2, 1]], 10);
    const bank = encodePromptBank(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const val = toyFeatures(fake);
    const g = greedyTemplateSelection(bank, val, { logitScale: 10 });
    const cos = templateCosines(bank, val);
    const acc = (subset: number[]) => top1Accuracy(ensembleScores(bank, cos, selectionWeights(bank, subset)), val.labels, 3);
    // Brute force of each greedy step (ties are broken by NLL, so only check the accuracy is maximal).
    const chosen: number[] = [];
    for (const step of g.trace) {
      const best = Math.max(...[0, 1, 2].filter((p) => !chosen.includes(p)).map((p) => acc([...chosen, p])));
      assert.equal(step.validationTop1, best);
      assert.equal(acc([...chosen, step.index]), best);
      chosen.push(step.index);
    }
    assert.equal(g.trace.length, 3);
    assert.equal(g.validationTop1, Math.max(...g.trace.map((s) => s.validationTop1)));
    assert.equal(g.validationTop1, acc(g.selected));
    assert.deepEqual(g.templates, g.selected.map((i) => TEMPLATES[i]));
    assertThrowsOneLine(() => greedyTemplateSelection(bank, val, { maxTemplates: 0 }), /maxTemplates must be a positive integer, got 0/);
    fake.dispose();
  });

  it("the weighted ensemble starts uniform, lowers the validation loss, stays on the simplex, leaks nothing", () => {
    const fake = fakeClip(PROMPTS, [[0.3, 0.4, 0.5], [0, 1, 0.2], [5, 0.1, 0], [0.1, 0.9, 0.3], [1, 0.1, 0.1], [0, 0.2, 1]], 10);
    const bank = encodePromptBank(fake, CLASSES, TEMPLATES, { tokenizer: fake.tokenizer });
    const val = toyFeatures(fake);
    const before = tf.memory().numTensors;
    const w = weightedTemplateEnsemble(bank, val, { logitScale: 10, steps: 60 });
    assert.equal(tf.memory().numTensors, before, "no tensors left");
    assert.ok(Math.abs(w.weights.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    assert.ok(w.weights.every((x) => x > 0));
    assert.ok(w.losses[w.losses.length - 1] < w.losses[0], `loss ${w.losses[0]} -> ${w.losses[w.losses.length - 1]}`);
    // Deterministic.
    assert.deepEqual(weightedTemplateEnsemble(bank, val, { logitScale: 10, steps: 60 }).weights, w.weights);
    fake.dispose();
  });

  it("selection functions take a validation set only (no test argument exists)", () => {
    assert.equal(greedyTemplateSelection.length, 2); // (bank, validation, opts = {})
    assert.equal(weightedTemplateEnsemble.length, 2);
  });
});

describe("carveValidation", () => {
  it("is stratified, seeded, disjoint from the rest and covers every training index", () => {
    const labels = Uint8Array.from({ length: 50 }, (_, i) => i % 5);
    const a = carveValidation(labels, 5, 3, 7);
    assert.equal(a.validation.length, 15);
    for (let c = 0; c < 5; c++) assert.equal([...a.validation].filter((i) => labels[i] === c).length, 3);
    assert.deepEqual([...a.validation, ...a.rest].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual(carveValidation(labels, 5, 3, 7), a);
    assert.notDeepEqual(carveValidation(labels, 5, 3, 8).validation, a.validation);
    assertThrowsOneLine(() => carveValidation([0, 9], 5, 1), /label 1 = 9 outside \[0, 5\)/);
  });
});

describe("runPromptStudy never lets the test split steer a choice", () => {
  it("changing the test split changes test numbers but no choice made on validation", async () => {
    const clip = Clip.create("ViT-Tiny-28", { seed: 1 });
    const split = (count: number, seed: number, name: "train" | "test") => new FashionMnistDataset("fashion-mnist", syntheticImages(count, seed), name);
    const train = split(80, 11, "train");
    const common = {
      train,
      templateSets: { plain: ["a photo of a {}."], fashion: ["a catalogue photo of a {}.", "a {} on a black background.", "a blurry photo of a {}."] },
      validationPerClass: 3,
      shots: [1, 2],
      coop: { steps: 2 },
      paraphraseTrials: 1,
      retrievalImages: 20,
      bootstrapSamples: 100,
      probeL2Grid: [1e-3, 1e-1],
    };
    try {
      const a = await runPromptStudy(clip, { ...common, test: split(30, 21, "test") });
      const b = await runPromptStudy(clip, { ...common, test: split(40, 99, "test"), paraphraseTrials: 0 });
      assert.equal(a.n.test, 30);
      assert.equal(b.n.test, 40);
      assert.notDeepEqual(a.sensitivity.perTemplate, b.sensitivity.perTemplate, "the test splits differ");
      // Everything chosen on validation is identical.
      assert.deepEqual(a.selection.greedy, b.selection.greedy);
      assert.deepEqual(a.selection.weighted.weights, b.selection.weighted.weights);
      assert.deepEqual(a.selection.rows.map((r) => [r.method, r.validationTop1]), b.selection.rows.map((r) => [r.method, r.validationTop1]));
      assert.equal(a.calibration.fittedScale, b.calibration.fittedScale);
      assert.deepEqual(a.fewShot.rows.map((r) => r.probeL2), b.fewShot.rows.map((r) => r.probeL2));

      // The result is complete and the report section is well formed.
      assert.equal(a.templates.length, 4);
      assert.deepEqual(a.fewShot.curve.map((r) => r.k), [1, 2]);
      assert.deepEqual(a.paraphrase.map((r) => r.kind), ["clean", "synonym", "word order", "typo"]);
      assert.ok(a.retrieval.imageToText["R@10"] >= a.retrieval.imageToText["R@1"]);
      const section = promptStudySection(a);
      const figures = section.blocks.filter((x) => x.kind === "figure");
      assert.equal(figures.length, 2);
      const tables = section.blocks.filter((x) => x.kind === "table");
      assert.ok(tables.length >= 8);
      for (const t of tables) if (t.kind === "table") for (const row of t.rows) assert.equal(row.length, t.columns.length);
      assert.doesNotThrow(() => JSON.stringify(section));
    } finally {
      clip.dispose();
    }
  });
});
