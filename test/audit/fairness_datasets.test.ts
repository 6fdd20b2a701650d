/**
 * The fairness audit on datasets: groups from a source column, from a list, or planted (on the
 * 28x28 grey image for Fashion-MNIST, on the prepared model input for anything else); an image
 * folder at 64 px and a CSV source with a group column, with a random-init tiny model.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { runFairnessAudit, zeroShotAccuracy, type FairnessAuditOptions } from "../../src/audit/fairness/audit";
import { FRAMED, plantedTestSet, scaledBorderWidth } from "../../src/audit/fairness/planted_bias";
import { CaptionSet } from "../../src/data/captions";
import { FashionMnistDataset } from "../../src/data/sources/fashion_mnist";
import { openDataset } from "../../src/data/open";
import type { SkippedItem } from "../../src/data/dataset";
import type { Clip } from "../../src/model/clip";
import { fakeAuditModel, fakeAuditOptions, fakeDataset, fakeImages, type FakeAuditModel } from "./fairness_fake_model";
import { assertRejectsOneLine, useCpu } from "./fairness_helpers";
import { tiny64, writeShapeFolder } from "./fairness_images";

const QUICK = { bootstrap: 50, permutations: 50, weatPermutations: 100 };

let fair: FakeAuditModel;
let biased: FakeAuditModel;
let dir: string;
before(async () => {
  await useCpu();
  fair = fakeAuditModel(0, 0);
  biased = fakeAuditModel(1.5, 0.8);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "fair-data-"));
});
after(() => {
  fair.dispose();
  biased.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("runFairnessAudit: where the groups come from", () => {
  const test = plantedTestSet(fakeImages(200), { seed: 3 });
  const opts = (m: FakeAuditModel): FairnessAuditOptions => ({ ...fakeAuditOptions(m), ...QUICK, k: 20 });

  it("a group column of the source gives the same audit as the same labels listed in source order", async () => {
    const listed = await runFairnessAudit(biased, fakeDataset(test.data), test.groups, opts(biased));
    const column = await runFairnessAudit(biased, fakeDataset(test.data, { name: "frame", values: test.groups }), { column: "frame" }, opts(biased));
    assert.deepEqual(column, listed);
    assert.deepEqual(listed.groups.map((g) => [g.group, g.count]), [["framed", 100], ["plain", 100]]);
    assert.equal(listed.focusGroup, FRAMED, "focus defaults to framed");
  });

  it("listed labels follow source positions: with a limit, items take the first labels", async () => {
    const r = await runFairnessAudit(fair, fakeDataset(test.data), test.groups, { ...opts(fair), limit: 60 });
    assert.equal(r.n, 60);
    const framed = test.groups.slice(0, 60).filter((g) => g === FRAMED).length;
    assert.equal(r.groups.find((g) => g.group === FRAMED)!.count, framed);
  });

  it("column:NAME that the source does not carry lists its group keys; an empty value names its item", async () => {
    const ds = fakeDataset(test.data, { name: "frame", values: test.groups });
    await assertRejectsOneLine(() => runFairnessAudit(fair, ds, { column: "skin" }, opts(fair)), /^fake: has no group column "skin" \(its group keys: frame\)$/);
    await assertRejectsOneLine(() => runFairnessAudit(fair, fakeDataset(test.data), { column: "skin" }, opts(fair)), /\(its group keys: none\)$/);
    const holes = test.groups.map((g, i) => (i === 7 ? " " : g));
    await assertRejectsOneLine(() => runFairnessAudit(fair, fakeDataset(test.data, { name: "frame", values: holes }), { column: "frame" }, opts(fair)), /^fake#7: empty value for group column "frame"$/);
    await assertRejectsOneLine(() => runFairnessAudit(fair, ds, { planted: "stripes" } as never, opts(fair)), /planted groups must be "border", got "stripes"/);
  });

  it("planted groups on any dataset: the frame on the prepared input, the groups of plantedTestSet, clean accuracy without it", async () => {
    // The fake model sees 28 px inputs unresampled, so a frame drawn after preprocessing is the
    // same 2 px frame plantedTestSet draws on the grey images: the audits must agree exactly.
    const before = tf.memory().numTensors;
    const planted = await runFairnessAudit(biased, fakeDataset(fakeImages(200)), { planted: "border", seed: 3 }, opts(biased));
    assert.equal(tf.memory().numTensors, before, "no tensor leaked");
    const stamped = await runFairnessAudit(biased, fakeDataset(test.data), test.groups, opts(biased));
    const { cleanAccuracy, ...rest } = planted;
    assert.deepEqual(rest, stamped);
    assert.ok(probeP(planted, "positiveRateGap") < 0.05, "the planted class bias is found");
    // Clean accuracy: the same images without the frame, as zeroShotAccuracy measures them.
    const clean = await zeroShotAccuracy(biased, fakeDataset(fakeImages(200)), { classNames: ["alpha", "beta"], templates: ["a {}."], tokenizer: biased.tokenizer, bootstrap: 50 });
    assert.equal(cleanAccuracy!.value, clean.value);
    assert.notEqual(cleanAccuracy!.value, planted.accuracy.value, "the frame changes the biased model's predictions");
    // A placebo assigns the same groups and draws nothing: the fair and the biased model then agree with their clean selves.
    const placebo = await runFairnessAudit(biased, fakeDataset(fakeImages(200)), { planted: "border", seed: 3, placebo: true }, opts(biased));
    assert.deepEqual(placebo.groups.map((g) => g.count), planted.groups.map((g) => g.count));
    assert.equal(placebo.accuracy.value, placebo.cleanAccuracy!.value);
  });

  it("planted groups on Fashion-MNIST stamp the 28x28 grey image before it is padded onto the 32 px canvas", async () => {
    const base = fakeImages(40);
    const ds = new FashionMnistDataset("fashion-mnist", base, "test", CaptionSet.load(), ["alpha", "beta"]);
    const seen: Float32Array[] = [];
    const recorder = { ...fair, config: { ...fair.config, vision_cfg: { image_size: 32 } }, encodeImage: (p: tf.Tensor4D) => record(p, seen) };
    const r = await runFairnessAudit(recorder, ds, { planted: "border", seed: 5 }, { ...opts(fair), k: 10 });
    const groups = plantedTestSet(base, { seed: 5 }).groups;
    assert.deepEqual(r.groups.map((g) => g.count), [groups.filter((g) => g === FRAMED).length, groups.filter((g) => g !== FRAMED).length]);
    // The first 40 inputs are the framed pass: white at rows 2-3 (the image's own border), black canvas at rows 0-1.
    const px = (img: Float32Array, y: number, x: number) => img[(y * 32 + x) * 3];
    const white = (1 - 0.48145466) / 0.26862954;
    for (let i = 0; i < 40; i++) {
      const img = seen[i];
      assert.ok(px(img, 0, 16) < 0, `item ${i}: canvas row 0 stays black`);
      if (groups[i] === FRAMED) assert.ok(Math.abs(px(img, 2, 16) - white) < 1e-4 && Math.abs(px(img, 3, 16) - white) < 1e-4, `item ${i}: framed`);
      else assert.ok(px(img, 2, 16) < 0, `item ${i}: plain`);
    }
    assert.equal(scaledBorderWidth(2, 32), 2);
  });
});

/** Records every input image of a batch (normalised pixels, [S, S, 3] each) and returns zero-ish features. */
function record(pixels: tf.Tensor4D, seen: Float32Array[]): tf.Tensor2D {
  const [b, s] = pixels.shape;
  const all = pixels.dataSync() as Float32Array;
  for (let i = 0; i < b; i++) seen.push(all.slice(i * s * s * 3, (i + 1) * s * s * 3));
  return tf.tidy(() => tf.concat([tf.mean(pixels, [1, 2]), tf.ones([b, 1])], 1) as tf.Tensor2D); // [b, 3 + 1]
}

function probeP(r: { probes: { key: string; pValue: number }[] }, key: string): number {
  const p = r.probes.find((q) => q.key === key);
  assert.ok(p, key);
  return p.pValue;
}

describe("runFairnessAudit on real image sources at 64 px (random-init tiny model)", () => {
  let clip: Clip;
  let folder: string;
  let files: string[];
  before(async () => {
    clip = tiny64(1);
    folder = path.join(dir, "shapes");
    files = await writeShapeFolder(folder, 12, [64, 80, 50], 2);
  });
  after(() => clip.dispose());

  const opts = (): FairnessAuditOptions => ({ positiveClass: 1, ...QUICK, k: 10, distractors: ["bad disc", "bad square"] });

  it("an image folder with listed groups and with the planted frame: every probe, class names from the folders", async () => {
    const ds = await openDataset(`imagefolder:${folder}`);
    const groups = files.map((_, i) => (i % 3 === 0 ? "left" : "right"));
    const r = await runFairnessAudit(clip, ds, groups, { ...opts(), focusGroup: "left" });
    assert.equal(r.n, 24);
    assert.equal(r.skipped, 0);
    assert.equal(r.positiveClassName, "square");
    assert.deepEqual(r.groups.map((g) => [g.group, g.count]), [["left", 8], ["right", 16]]);
    assert.equal(r.settings.queries[0], "a photo of a disc.", "the plain template when the source has none");
    for (const p of r.probes) assert.ok(p.pValue > 0 && p.pValue <= 1 && Number.isFinite(p.value), `${p.key}: ${p.value}, p = ${p.pValue}`);
    const before = tf.memory().numTensors; // after a first run: the model's own lazily made constants exist
    const planted = await runFairnessAudit(clip, ds, { planted: "border" }, opts());
    assert.equal(tf.memory().numTensors, before, "no tensor leaked");
    assert.deepEqual(planted.groups.map((g) => [g.group, g.count]), [["framed", 12], ["plain", 12]]);
    assert.ok(planted.cleanAccuracy && planted.cleanAccuracy.value >= 0 && planted.cleanAccuracy.value <= 1);
    assert.equal(scaledBorderWidth(2, 64), 5);
  });

  it("--skip-bad-images: a corrupt file is left out, reported and counted; listed labels keep their positions", async () => {
    const bad = path.join(dir, "shapes-bad");
    const badFiles = await writeShapeFolder(bad, 6, 64, 3);
    fs.writeFileSync(badFiles[2], "not a png");
    const ds = await openDataset(`imagefolder:${bad}`);
    const groups = badFiles.map((_, i) => (i < 6 ? (i % 2 ? "a" : "b") : i % 2 ? "b" : "a"));
    const skipped: SkippedItem[] = [];
    const r = await runFairnessAudit(clip, ds, groups, { ...opts(), skipBadImages: true, onSkip: (s) => skipped.push(s) });
    assert.equal(r.n, 11);
    assert.equal(r.skipped, 1);
    assert.equal(skipped.length, 1);
    assert.ok(skipped[0].key.endsWith(path.join("disc", "002.png")), skipped[0].key);
    assert.deepEqual(r.groups.map((g) => [g.group, g.count]), [["a", 6], ["b", 5]], "item 2 (group b) is the one left out");
    await assertRejectsOneLine(() => runFairnessAudit(clip, ds, groups, opts()), /002\.png/);
  });

  it("a CSV source with a label column and a group column (tab-separated, open_clip's filepath/title)", async () => {
    const rows = files.map((f, i) => [path.relative(dir, f), `a shape, number ${i}, café`, f.includes(`${path.sep}disc${path.sep}`) ? "disc" : "square", i % 4 === 0 ? "dark" : "light"]);
    const tsv = path.join(dir, "shapes.tsv");
    fs.writeFileSync(tsv, ["filepath\ttitle\tshape\tskin", ...rows.map((r) => r.join("\t"))].join("\n") + "\n");
    const ds = await openDataset(`csv:${tsv}`, { labelKey: "shape", groupKeys: ["skin"] });
    assert.deepEqual(ds.classNames, ["disc", "square"]);
    const r = await runFairnessAudit(clip, ds, { column: "skin" }, opts());
    assert.equal(r.n, 24);
    assert.equal(r.focusGroup, "dark", "the first group by name");
    assert.deepEqual(r.groups.map((g) => [g.group, g.count]), [["dark", 6], ["light", 18]]);
    // The same images from the image folder, with the same labels listed: the same audit.
    const viaFolder = await runFairnessAudit(clip, await openDataset(`imagefolder:${folder}`), rows.map((row) => row[3]), opts());
    assert.deepEqual(r, viaFolder);
    await assertRejectsOneLine(() => runFairnessAudit(clip, ds, { column: "age" }, opts()), /has no group column "age" \(its group keys: skin\)$/);
  });
});
