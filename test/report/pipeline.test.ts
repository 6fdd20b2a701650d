/**
 * The pipeline report's library side: the one-pass measurements (pipeline_measure.ts) against
 * hand computations, `runPipelineReport` on an image folder with a 64 px model (memory, errors),
 * the sections' data-dependent prose, and the RGB thumbnails.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import sharp from "sharp";
import { openDataset } from "../../src/data/open";
import { modelTransform } from "../../src/model/config";
import { loadCheckpoint } from "../../src/io/checkpoint";
import { encodeImages, encodeTexts } from "../../src/eval/encode";
import { preparedStream } from "../../src/data/stream";
import { cosineTable, headRows, measureDataset, pairStats, retrievalOf, textsOfFirst } from "../../src/report/pipeline_measure";
import { runPipelineReport } from "../../src/report/pipeline";
import { REPORT_AUDITS_QUICK } from "../../src/report/pipeline_audits";
import { retrievalSection, skippedSection, zeroShotSection } from "../../src/report/sections/pipeline";
import { imageThumbnails, greyThumbnails } from "../../src/viz/png";
import { initBackend } from "../../src/backend/select";
import { tmpDir } from "../helpers/fixtures";
import { assertThrowsOneLine } from "../helpers/errors";
import { SHAPES, saveTiny64, shapePng, writeShapeFolder } from "./shapes_data";
import * as fs from "node:fs";

const fm = (rows: number[][]) => ({ values: Float32Array.from(rows.flat()), n: rows.length, dim: rows[0].length });
const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

before(async () => {
  await initBackend();
});

describe("pipeline measurements", () => {
  it("pairStats: modality gap and matching / other cosines with several captions per image", () => {
    // Two images on the axes; image 0 has captions 0 and 1, image 1 has caption 2.
    const images = fm([[2, 0], [0, 3]]);
    const texts = fm([[1, 0], [1, 1], [0, -5]]);
    const s = pairStats(images, texts, Int32Array.from([0, 0, 1]));
    const r = Math.SQRT1_2;
    // Centroids: images (0.5, 0.5); texts ((1 + r) / 3, (r - 1) / 3).
    close(s.gap, Math.hypot(0.5 - (1 + r) / 3, 0.5 - (r - 1) / 3));
    close(s.matchingCosine, (1 + r - 1) / 3);
    close(s.otherCosine, (0 + r + 0) / 3);
  });

  it("retrievalOf: a hit when any of an image's captions ranks first; CLIP_benchmark names", () => {
    const images = fm([[1, 0], [0, 1]]);
    // Image 0's captions: [0.9, 0.1] (close) and [-1, 0] (far); image 1's: [0.1, 1].
    const texts = fm([[0.9, 0.1], [-1, 0], [0.1, 1]]);
    const r = retrievalOf(images, texts, Int32Array.from([0, 0, 1]));
    assert.equal(r.table.imageToText["R@1"], 1);
    close(r.table.textToImage["R@1"], 2 / 3, 1e-9); // the far caption finds image 1 first
    assert.equal(r.metrics["text_retrieval_recall@1"], 1);
    close(r.metrics["image_retrieval_recall@1"], 2 / 3, 1e-9);
    assert.equal(r.metrics["image_retrieval_recall@5"], 1);
  });

  it("textsOfFirst, headRows and cosineTable", () => {
    assert.equal(textsOfFirst(Int32Array.from([0, 0, 1, 2, 2]), 2), 3);
    assert.equal(textsOfFirst(Int32Array.from([0, 1]), 5), 2);
    const f = fm([[1, 0], [0, 2], [3, 3]]);
    assert.deepEqual([...headRows(f, 2).values], [1, 0, 0, 2]);
    assert.equal(headRows(f, 9).n, 3);
    const c = cosineTable(f, [0, 2], fm([[0, 1], [1, 1]]), [0, 1]);
    close(c[0][0], 0);
    close(c[1][1], 1);
    close(c[0][1], Math.SQRT1_2);
  });
});

describe("measureDataset and runPipelineReport on an image folder at 64 px", () => {
  const dir = tmpDir();
  const folder = path.join(dir, "shapes");
  const ckpt = path.join(dir, "m", "model.safetensors");
  before(async () => {
    await writeShapeFolder(folder, 5);
    await saveTiny64(ckpt);
  });

  it("reads once: the kept inputs, their generated captions, zero-shot on the labels; no tensor left behind", async () => {
    const ds = await openDataset(`imagefolder:${folder}`);
    const clip = await loadCheckpoint(ckpt);
    try {
      const transform = modelTransform(clip.config);
      encodeTexts(clip, ["warm-up"]); // the text tower caches its causal mask on first use
      const before = tf.memory().numTensors;
      const m = await measureDataset(clip, ds, { transform, keep: 6, zeroShot: { classNames: ds.classNames!, templates: ["a photo of a {}."], limit: 15 }, captionSeed: 0 });
      assert.equal(tf.memory().numTensors, before, "no tensor leaked");
      assert.equal(m.imagesRead, 15);
      assert.equal(m.kept.length, 6);
      assert.ok(m.kept.every((it) => it.pixels.length === 64 * 64 * 3));
      assert.equal(m.imageFeatures.n, 6);
      assert.deepEqual([...m.textImage], [0, 1, 2, 3, 4, 5], "one generated caption per image");
      assert.ok(m.texts.every((t, i) => t.includes(SHAPES[m.kept[i].label!])), `captions name the class: ${m.texts.join(" | ")}`);
      assert.equal(m.ownCaptions, false);
      assert.equal(m.zeroShot!.evaluation.n, 15);
      assert.deepEqual(m.zeroShot!.evaluation.support, [5, 5, 5]);
      assert.equal(m.zeroShot!.classWeights.n, 3);
      // The kept features are the encoder's features of the same images (read in another batch size: float32 rounding apart).
      const direct = await encodeImages(clip, preparedStream(ds, transform, { limit: 6 }), { mean: transform.mean, std: transform.std });
      assert.deepEqual(direct.keys, m.kept.map((it) => it.key));
      m.imageFeatures.values.forEach((v, i) => close(v, direct.values[i], 1e-5 * (1 + Math.abs(v))));
      // Captions are seeded per item: the same seed gives the same captions.
      const again = await measureDataset(clip, ds, { transform, keep: 6, captionSeed: 0 });
      assert.deepEqual(again.texts, m.texts);
      assert.equal(again.zeroShot, undefined);
    } finally {
      clip.dispose();
    }
  });

  it("runPipelineReport takes a Dataset: sections, summary, and nothing left in tfjs", async () => {
    const ds = await openDataset(`imagefolder:${folder}`);
    const stages: string[] = [];
    const before = tf.memory().numTensors;
    const { report, summary } = await runPipelineReport(
      { name: "shapes", checkpoint: ckpt, data: ds, points: 15, retrievalLimit: 15, umap: { nEpochs: 50 }, sections: ["training", "embedding", "zeroshot", "retrieval"] },
      { onStage: (s) => stages.push(s) },
    );
    assert.equal(tf.memory().numTensors, before, "no tensor leaked");
    assert.deepEqual(report.sections.map((s) => s.title), ["Training", "Embedding space", "Zero-shot classification", "Retrieval"]);
    assert.equal(summary.zeroShotImages, 15);
    assert.ok(summary.umapPoints >= 15 + 3 + 3 && summary.umapPoints <= 15 + 15 + 3, `15 images, their distinct captions (at least one per class), 3 class embeddings: ${summary.umapPoints}`);
    assert.deepEqual(summary.retrieval, { images: 15, texts: 15, captions: "generated" });
    assert.ok(stages.some((s) => s.startsWith("modality gap against a freshly initialised model (seed 0)")));
    assert.ok(summary.modalityGap.trained > 0 && summary.modalityGap.initial > 0);
    assert.notEqual(summary.modalityGap.trained, summary.modalityGap.initial, "a different model");
    assert.match(report.subtitle!, /evaluated on imagefolder:.*shapes \(15 images, 3 classes, generated captions\)/);
    const strip = report.sections[3].blocks.find((b) => b.kind === "image");
    assert.ok(strip && strip.kind === "image" && strip.channels === 3 && strip.height === 64 && strip.width === 3 * 64, "one 64 px RGB input per class");
  });

  it("the audits (quick settings) after the base sections, in report order, and nothing left in tfjs", async () => {
    const ds = await openDataset(`imagefolder:${folder}`);
    const stages: string[] = [];
    const before = tf.memory().numTensors;
    const { report, summary } = await runPipelineReport(
      { name: "audits", checkpoint: ckpt, data: ds, points: 15, retrievalLimit: 15, sections: ["robustness", "zeroshot", "prompts"], audits: REPORT_AUDITS_QUICK, groups: undefined },
      { onStage: (s) => stages.push(s) },
    );
    assert.equal(tf.memory().numTensors, before, "no tensor leaked");
    assert.deepEqual(report.sections.map((s) => s.title), ["Zero-shot classification", "Zero-shot classification, prompt ensembling and prompt tuning", "Robustness: corruptions and adversarial attacks"]);
    assert.deepEqual(summary.sections, ["zeroshot", "prompts", "robustness"]);
    assert.equal(summary.umapPoints, 0);
    assert.ok(summary.audits.prompts!.ensembleTop1! >= 0 && summary.audits.robustness!.cleanTop1 >= 0);
    assert.ok(!stages.some((s) => s.startsWith("UMAP")), "no UMAP without the embedding section");
    assert.ok(stages.includes("prompt study: k-shot k=1 seed=0"), "5 images per class: 2 to choose on, 1 validation image, k = 1 only");
    const note = (i: number) => (report.sections[i].blocks[0].kind === "text" ? (report.sections[i].blocks[0] as { text: string }).text : "");
    assert.match(note(1), /^Settings chosen for the report: 200 test images, .* 1 validation images per class, k-shot k = 1 /);
    assert.match(note(2), /^Settings chosen for the report: 15 images for the clean and corrupted metrics \(\d+ corruptions at severities 1, 3, 5\), the first 15 of them attacked/);
    await assert.rejects(runPipelineReport({ name: "x", checkpoint: ckpt, data: ds, sections: ["fairness"] }), /^RangeError: section fairness: imagefolder:.* has no group column/);
  });

  it("refuses data with nothing to measure, before loading the model", async () => {
    const flat = path.join(dir, "flat");
    fs.mkdirSync(flat, { recursive: true });
    fs.writeFileSync(path.join(flat, "a.png"), await shapePng(0, 30, 30, 1));
    const ds = await openDataset(`imagefolder:${flat}`);
    await assert.rejects(
      runPipelineReport({ name: "x", checkpoint: path.join(dir, "missing.safetensors"), data: ds }),
      (e: Error) => /^imagefolder:.*flat: has neither labels nor captions, so the report has nothing to measure \(zero-shot needs labels, retrieval needs captions\)$/.test(e.message),
    );
    await assert.rejects(runPipelineReport({ name: "x", checkpoint: ckpt, data: ds, points: 0 }), /^RangeError: runPipelineReport: points must be a positive integer, got 0$/);
  });
});

describe("pipeline sections on other data", () => {
  it("retrieval with the source's own captions says so and shows R@10", () => {
    const metrics = { imageToText: { "R@1": 0.5, "R@5": 1, "R@10": 1, medianRank: 1.5, meanRank: 1.5 }, textToImage: { "R@1": 0.25, "R@5": 1, "R@10": 1, medianRank: 2, meanRank: 2 } };
    const s = retrievalSection({
      metrics,
      pairs: 2,
      texts: 4,
      captionOrigin: "own",
      imageNoun: "images",
      heatmap: { similarity: [[1, 0], [0, 1]], imageLabels: ["a", "b"], captions: ["x", "y"] },
      strip: { kind: "image", pixels: new Uint8Array(2 * 3), height: 1, width: 2, channels: 3 },
    });
    const text = (s.blocks[0] as { text: string }).text;
    assert.match(text, /^The 2 images and their 4 own captions; a query succeeds at K if one of its partners/);
    const table = s.blocks[1] as { columns: string[]; rows: unknown[][] };
    assert.deepEqual(table.columns, ["direction", "R@1", "R@5", "R@10", "median rank"]);
    assert.deepEqual(table.rows[1], ["text → image (image_retrieval)", "25.00%", "100.00%", "100.00%", 2]);
  });

  it("zero-shot names its prompts (the first 8 of many) and held-out only when asked", () => {
    const ev = { top1: 0.5, top5: 1, perClass: [1, 0], meanPerClass: 0.5, confusion: [[1, 0], [1, 0]], support: [1, 1], n: 2 };
    const many = Array.from({ length: 10 }, (_, i) => `t${i} {}`);
    const text = (zeroShotSection(ev, ["a", "b"], many, { imageNoun: "images" }).blocks[0] as { text: string }).text;
    assert.match(text, /^Each of 2 classes is the ensemble of 10 prompts \("t0 \{\}", .*"t7 \{\}", \.\.\.\); an image/);
    assert.ok(!text.includes("held out"));
    assert.match((zeroShotSection(ev, ["a", "b"], ["{}"], { heldOut: true }).blocks[0] as { text: string }).text, /1 prompt \("\{\}"\), held out from the training captions;.* 2 test images\.$/);
  });

  it("skipped images: every item with its reason", () => {
    const s = skippedSection([{ key: "a/b.png", reason: "not an image", stage: "evaluation" }]);
    assert.equal(s.title, "Skipped images");
    assert.deepEqual((s.blocks[1] as { rows: unknown[][] }).rows, [["a/b.png", "not an image", "evaluation"]]);
  });
});

describe("imageThumbnails (the map's hover pictures)", () => {
  it("RGB images as PNGs, shrunk by whole factors to fit maxSide, grey ones as before", async () => {
    // Two 4x4 RGB images; the second is red on the left half, blue on the right.
    const images = new Uint8Array(2 * 4 * 4 * 3);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) images.set(x < 2 ? [255, 0, 0] : [0, 0, 255], 48 + (y * 4 + x) * 3);
    const [full] = imageThumbnails(images, 4, 4, 3, [1]);
    const a = await sharp(Buffer.from(full.split(",")[1], "base64")).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([a.info.width, a.info.height, a.info.channels], [4, 4, 3]);
    assert.deepEqual([...a.data.subarray(0, 3)], [255, 0, 0]);
    const [small] = imageThumbnails(images, 4, 4, 3, [1], { maxSide: 2 });
    const b = await sharp(Buffer.from(small.split(",")[1], "base64")).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([b.info.width, b.info.height], [2, 2]);
    assert.deepEqual([...b.data], [255, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255], "2x2 blocks averaged");
    const [odd] = imageThumbnails(images, 4, 4, 3, [1], { maxSide: 3 });
    assert.equal((await sharp(Buffer.from(odd.split(",")[1], "base64")).metadata()).width, 2, "factor 2: the smallest that fits");
    assert.equal(greyThumbnails(new Uint8Array(8), 2, 2, [1]).length, 1);
    assertThrowsOneLine(() => imageThumbnails(images, 4, 4, 3, [2]), /^imageThumbnails: image index 2 is outside the 2 images given$/);
    assertThrowsOneLine(() => imageThumbnails(images, 4, 4, 2 as 3, [0]), /^imageThumbnails: channels must be 1 \(grey\) or 3 \(RGB\), got 2$/);
    assertThrowsOneLine(() => imageThumbnails(images, 4, 4, 3, [0], { maxSide: 0 }), /^imageThumbnails: maxSide must be a positive integer, got 0$/);
  });
});
