/**
 * The prompt study on datasets: Fashion-MNIST gives the numbers of the old in-memory study (kept
 * as a reference computation in legacy_study.ts); an image folder at 64 px and a CSV run end to
 * end; unlabelled or mismatched splits are one-line errors.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../../src/model/clip";
import { loadFashionMnist } from "../../src/data/fashion_mnist";
import { FashionMnistDataset } from "../../src/data/sources/fashion_mnist";
import { openDataset } from "../../src/data/open";
import type { SkippedItem } from "../../src/data/dataset";
import { defaultTemplateSets, runPromptStudy, type PromptStudyResult } from "../../src/prompts/study";
import { CaptionSet } from "../../src/data/captions";
import { promptStudySection } from "../../src/report/sections/prompts";
import { loadTemplateSet } from "../../src/text/templates";
import { modelTransform } from "../../src/model/config";
import { preparedStream } from "../../src/data/stream";
import { encodeImages, encodeTexts } from "../../src/eval/encode";
import { retrievalMetrics } from "../../src/eval/retrieval";
import { useTestBackend } from "../eval/fake_clip";
import { rejectsOneLine } from "../helpers/data_sources";
import { tmpDir } from "../helpers/fixtures";
import { legacyPromptStudy } from "./legacy_study";
import { SHAPE_NAMES, tiny64Clip, writeShapeFolder, writeShapeTsv } from "./shapes";

before(useTestBackend);

/** Small settings shared by every study here. */
const QUICK = { validationPerClass: 2, shots: [1, 2], coop: { steps: 2 }, paraphraseTrials: 1, bootstrapSamples: 50, probeL2Grid: [1e-2] };

/** The report section is well formed: two figures, rectangular tables, JSON-safe. */
function checkSection(r: PromptStudyResult): void {
  const section = promptStudySection(r);
  assert.equal(section.blocks.filter((x) => x.kind === "figure").length, 2);
  const tables = section.blocks.filter((x) => x.kind === "table");
  assert.ok(tables.length >= 8);
  for (const t of tables) if (t.kind === "table") for (const row of t.rows) assert.equal(row.length, t.columns.length);
  assert.doesNotThrow(() => JSON.stringify(section));
}

describe("runPromptStudy on Fashion-MNIST", () => {
  it("gives the old in-memory study's numbers (same pixels through the pad transform, same features, same carve)", async () => {
    // RN-Micro-32 pads the 28 px images onto its 32 px canvas, as the old Batcher did.
    const clip = Clip.create("RN-Micro-32", { seed: 3 });
    const train = loadFashionMnist("train", { limit: 200 });
    const test = loadFashionMnist("test", { limit: 60 });
    const fashion = loadTemplateSet("fashion").templates;
    const templateSets = { plain: ["a photo of a {}."], imagenet7: loadTemplateSet("imagenet7").templates, fashion };
    const common = { ...QUICK, validationPerClass: 4, retrievalImages: 30, seed: 2, templateSets, paraphraseTemplates: fashion.slice(0, 3) };
    const fmTrain = new FashionMnistDataset("fashion-mnist", train, "train");
    const fmTest = new FashionMnistDataset("fashion-mnist", test, "test");
    // The default sets on Fashion-MNIST are the old ones (the last is the source's evaluation templates).
    assert.deepEqual(Object.keys(defaultTemplateSets(fmTest)), ["plain", "imagenet7", "imagenet80", "fashion", "captions-eval"]);
    assert.deepEqual(defaultTemplateSets(fmTest)["captions-eval"], CaptionSet.load().spec.evalTemplates);
    try {
      const old = await legacyPromptStudy(clip, { ...common, train, test });
      const before = tf.memory().numTensors;
      const now = await runPromptStudy(clip, { ...common, train: fmTrain, test: fmTest });
      assert.equal(tf.memory().numTensors, before, "no tensors left");
      assert.equal(now.n.test, 60);
      assert.equal(now.n.validation, 40);
      assert.deepEqual(now.templates, old.templates);
      assert.deepEqual(now.templateSets.map((s) => s.name), ["plain", "imagenet7", "fashion"]);
      assert.deepEqual(now.paraphrase.map((p) => p.kind), ["clean", "synonym", "word order", "typo"], "Fashion-MNIST's synonyms by default");
      // Every classification number is identical, bit for bit.
      for (const key of ["classNames", "logitScale", "sensitivity", "templateSets", "paraphrase", "selection", "fewShot", "calibration"] as const) {
        assert.deepStrictEqual(now[key], old[key], key);
      }
      assert.deepEqual({ test: now.n.test, validation: now.n.validation, retrieval: now.n.retrieval }, old.n);
      // Retrieval pairs captions per item now (pairedCaptions), so only its shape is compared.
      assert.equal(now.n.retrievalTexts, 30);
      assert.ok(now.retrieval.imageToText["R@10"] >= now.retrieval.imageToText["R@1"]);
      assert.deepEqual(now.temperature.map((t) => t.scale), old.temperature.map((t) => t.scale));
      assert.deepEqual(now.datasets, { train: "fashion-mnist-train", test: "fashion-mnist-test" });
    } finally {
      clip.dispose();
    }
  });
});

describe("runPromptStudy on any dataset", () => {
  it("an image folder at 64 px: class names from classnames.txt, default template sets, generated captions for retrieval", async () => {
    const root = tmpDir();
    const train = await openDataset(`imagefolder:${await writeShapeFolder(path.join(root, "train"), 8, { seed: 1 })}`);
    const test = await openDataset(`imagefolder:${await writeShapeFolder(path.join(root, "test"), 5, { seed: 2 })}`);
    const clip = tiny64Clip(5);
    const stages: string[] = [];
    try {
      const r = await runPromptStudy(clip, { ...QUICK, train, test, retrievalImages: 12, onProgress: (s) => stages.push(s) });
      assert.deepEqual(r.classNames, SHAPE_NAMES);
      assert.deepEqual(r.datasets, { train: "train", test: "test" });
      assert.deepEqual(r.n, { test: 15, validation: 6, retrieval: 12, retrievalTexts: 12, skipped: 0 });
      // No Fashion-MNIST sets and no synonyms off Fashion-MNIST.
      assert.deepEqual(r.templateSets.map((s) => s.name), ["plain", "imagenet7", "imagenet80"]);
      assert.equal(r.templates.length, 80, "imagenet7 and plain are inside imagenet80");
      assert.deepEqual(r.paraphrase.map((p) => p.kind), ["clean", "word order", "typo"]);
      assert.deepEqual(r.paraphrase[0].example.templates, loadTemplateSet("imagenet7").templates, "paraphrases of imagenet7");
      for (const t of r.sensitivity.perTemplate) assert.equal(Math.round(t.top1 * 15), t.top1 * 15, "a fraction of 15 images");
      assert.deepEqual(r.fewShot.curve.map((x) => x.k), [1, 2]);
      assert.ok(r.retrieval.textToImage["R@10"] >= r.retrieval.textToImage["R@5"]);
      assert.ok(stages.includes("training labels") && stages.includes("retrieval"));
      checkSection(r);
    } finally {
      clip.dispose();
    }
  });

  it("a CSV (open_clip TSV with a label column): own captions for retrieval; several captions per image count any hit", async () => {
    const root = tmpDir();
    const opts = { labelKey: "label", classnamesFile: undefined };
    const train = await openDataset(`csv:${await writeShapeTsv(root, "train", 6, 1)}`, opts);
    const test = await openDataset(`csv:${await writeShapeTsv(root, "test", 4, 2)}`, opts);
    assert.ok(test.hasCaptions && test.hasLabels);
    const clip = tiny64Clip(6);
    try {
      const r = await runPromptStudy(clip, { ...QUICK, train, test, templateSets: { plain: ["a photo of a {}."], two: ["a photo of a {}.", "a drawing of a {}."] } });
      // The CSV's classes are its sorted label names.
      assert.deepEqual(r.classNames, [...SHAPE_NAMES].sort());
      assert.deepEqual(r.n, { test: 12, validation: 6, retrieval: 12, retrievalTexts: 12, skipped: 0 });
      assert.deepEqual(r.templates, ["a photo of a {}.", "a drawing of a {}."]);
      checkSection(r);

      // Two captions per image (sidecar files): retrieval counts texts, image -> text hits on either.
      const multi = await openDataset(`imagefolder:${await writeShapeFolder(path.join(root, "multi"), 3, { seed: 3, captions: ["a photo of a {}.", "{} on grey"] })}`);
      const m = await runPromptStudy(clip, { ...QUICK, shots: [], paraphraseTrials: 0, train: await openDataset(`imagefolder:${await writeShapeFolder(path.join(root, "t2"), 4)}`), test: multi, templateSets: { plain: ["a photo of a {}."] } });
      assert.deepEqual(m.n, { test: 9, validation: 6, retrieval: 9, retrievalTexts: 18, skipped: 0 });
      // The same recalls computed here: image i's positives are both its captions.
      const transform = modelTransform(clip.config);
      const enc = await encodeImages(clip, preparedStream(multi, transform), { mean: transform.mean, std: transform.std, normalize: true });
      const texts = encodeTexts(clip, enc.captions.flat(), { normalize: true });
      const textImage = Int32Array.from(enc.captions.flatMap((list, i) => list.map(() => i)));
      const img = tf.tensor2d(enc.values, [enc.n, enc.dim]);
      const txt = tf.tensor2d(texts.values, [texts.n, texts.dim]);
      try {
        assert.deepEqual(m.retrieval, retrievalMetrics(img, txt, [1, 5, 10], { textToImageTargets: textImage }));
      } finally {
        tf.dispose([img, txt]);
      }
    } finally {
      clip.dispose();
    }
  });

  it("an unreadable test image is skipped once under skipBadImages and counted", async () => {
    const root = tmpDir();
    const testDir = await writeShapeFolder(path.join(root, "test"), 3, { seed: 2 });
    fs.writeFileSync(path.join(testDir, "square", "broken.png"), "not a png");
    const train = await openDataset(`imagefolder:${await writeShapeFolder(path.join(root, "train"), 4)}`);
    const test = await openDataset(`imagefolder:${testDir}`);
    const clip = tiny64Clip(7);
    const skipped: SkippedItem[] = [];
    try {
      const common = { ...QUICK, shots: [], paraphraseTrials: 0, train, test, templateSets: { plain: ["a photo of a {}."] } };
      await assert.rejects(() => runPromptStudy(clip, common), /broken\.png/);
      const r = await runPromptStudy(clip, { ...common, skipBadImages: true, onSkip: (s) => skipped.push(s) });
      assert.equal(r.n.test, 9);
      assert.equal(r.n.skipped, 1);
      assert.equal(skipped.length, 1);
      assert.match(skipped[0].key, /broken\.png$/);
    } finally {
      clip.dispose();
    }
  });

  it("a test split without labels, or splits with different classes, is a one-line error", async () => {
    const root = tmpDir();
    const flat = path.join(root, "flat");
    fs.mkdirSync(flat);
    fs.copyFileSync(path.join(await writeShapeFolder(path.join(root, "src"), 1), "circle", "img000.png"), path.join(flat, "a.png"));
    const train = await openDataset(`imagefolder:${path.join(root, "src")}`);
    const unlabelled = await openDataset(`imagefolder:${flat}`);
    const clip = tiny64Clip(8);
    try {
      await rejectsOneLine(() => runPromptStudy(clip, { ...QUICK, train, test: unlabelled }), /^runPromptStudy: the test dataset imagefolder:.*flat has no labels; the prompt study needs labelled train and test splits \(zero-shot classification needs classes\)$/);
      await rejectsOneLine(() => runPromptStudy(clip, { ...QUICK, train: unlabelled, test: train }), /the train dataset .* has no labels/);
      const fm = new FashionMnistDataset("fashion-mnist", loadFashionMnist("test", { limit: 20 }), "test");
      await rejectsOneLine(() => runPromptStudy(clip, { ...QUICK, train, test: fm }), /the train dataset imagefolder:.* has classes \["red circle",.*the test dataset fashion-mnist \["t-shirt",.*they must be the same classes in the same order/);
      await rejectsOneLine(() => runPromptStudy(clip, { ...QUICK, train: loadFashionMnist("test", { limit: 5 }) as never, test: fm }), /options \{ train, test \} \(Datasets, e\.g\. from openDataset\) are required/);
    } finally {
      clip.dispose();
    }
  });
});
