/**
 * The whole robustness audit on a tiny real CLIP (test/fixtures/tiny_vit) and a few Fashion-MNIST
 * test images: result shape (ImageNet-C's corruptions by default; FGSM, PGD, APGD-CE, APGD-T and
 * their worst case), sanity checks, weights untouched, no leaks, the report section, the remedy
 * comparison, TeCoA fine-tuning, option errors. Then on data of one's own: an image folder and a
 * CSV of coloured shapes, audited at 64 px by a random tiny CLIP (eps = 0 equals clean on RGB, the
 * L2 budgets scaled and respected, skipped images counted), an image folder at 224 px with a
 * baseline model (CE and mCE), and the one-line error for a dataset without labels.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { auditRobustness, resolveAuditOptions, sanityChecks, type AttackRow, type RobustnessResult } from "../../src/audit/robustness/audit";
import { robustnessSection } from "../../src/report/sections/robustness";
import { compareRobustness } from "../../src/audit/robustness/remedies";
import { tecoaFineTune } from "../../src/audit/robustness/tecoa";
import { listCorruptions } from "../../src/audit/robustness/corruptions";
import { compareCorruptionErrors } from "../../src/audit/robustness/mce";
import { appliedEps, l2Scale, L2_REFERENCE_VALUES } from "../../src/audit/robustness/budgets";
import { loadCheckpoint, readCheckpointConfig } from "../../src/io/checkpoint";
import { loadFashionMnist } from "../../src/data/fashion_mnist";
import { openDataset } from "../../src/data/open";
import { FashionMnistDataset } from "../../src/data/sources/fashion_mnist";
import { CaptionSet } from "../../src/data/captions";
import { fixturePath, tmpDir } from "../helpers/fixtures";
import { assertThrowsOneLine } from "../helpers/errors";
import { initBackend } from "../../src/backend/select";
import { rejectsOneLine, shapeCsv, shapeFolder, shapeImage, tinyClip64, SHAPES } from "./robustness_helpers";
import { Clip } from "../../src/model/clip";
import { getModelConfig } from "../../src/model/registry";
import * as fs from "node:fs";
import * as path from "node:path";

// WASM with cliplab's extra kernels (the patch-embedding weight gradient for TeCoA).
before(async () => {
  await initBackend({ prefer: "wasm" });
});

const OPTIONS = {
  limit: 12,
  attackLimit: 6,
  severities: [1, 3] as (1 | 3)[],
  linfEps: [4 / 255, 16 / 255],
  l2Eps: [1],
  pgdSteps: 2,
  apgdSteps: 3,
  apgdTargets: 2,
  examples: 2,
  batchSize: 8,
};

function bits(t: tf.Tensor): Uint32Array {
  return new Uint32Array((t.dataSync() as Float32Array).slice().buffer);
}

/**
 * The tiny fixture CLIP (48 px input) fed as the Fashion-MNIST presets are (resize_mode "pad": the
 * 28 px image centred on a black 48 px canvas), which is exactly what the audit fed it before it
 * took datasets.
 */
async function tinyVitPad() {
  const file = fixturePath("tiny_vit.safetensors");
  const { config } = readCheckpointConfig(file);
  return loadCheckpoint(file, { config: { ...config, preprocess_cfg: { resize_mode: "pad" } } });
}

/** The first `n` items of a Fashion-MNIST split as a dataset. */
function fashionMnist(split: "train" | "test", n: number): FashionMnistDataset {
  return new FashionMnistDataset("fashion-mnist", loadFashionMnist(split, { limit: n }), split);
}

describe("auditRobustness", () => {
  let result: RobustnessResult;

  it("measures clean, every corruption x severity and every attack, without touching the model or leaking", async () => {
    const clip = await tinyVitPad();
    const test = await openDataset("fashion-mnist");
    const snapshot = new Map([...clip.params].map(([name, v]) => [name, bits(v)]));
    // Warm-up (the model caches its causal mask on first use), then count.
    await auditRobustness(clip, test, { ...OPTIONS, corruptions: ["gaussian_blur"], severities: [1], linfEps: [], l2Eps: [], targeted: false });
    const start = tf.memory().numTensors;
    const events: string[] = [];
    result = await auditRobustness(clip, test, { ...OPTIONS, onProgress: (e) => events.push(`${e.phase} ${e.done}/${e.total}`) });
    assert.equal(tf.memory().numTensors, start, "the audit leaked tensors");
    for (const [name, v] of clip.params) assert.deepEqual(bits(v), snapshot.get(name), `weight ${name} changed`);
    clip.dispose();

    assert.equal(result.config.images, 12);
    assert.equal(result.config.attackImages, 6);
    assert.equal(result.config.dataset, "fashion-mnist");
    assert.equal(result.skipped, 0);
    // Fashion-MNIST keeps its caption set's class names and evaluation templates.
    const captions = CaptionSet.load();
    assert.deepEqual(result.config.classNames, captions.spec.classes.map((c) => c.canonical));
    assert.deepEqual(result.config.templates, captions.spec.evalTemplates);
    // tiny_vit's input: 48 px RGB, so L2 budgets apply x sqrt(48 * 48 * 3 / 3072) = 1.5.
    assert.equal(result.config.imageSize, 48);
    assert.equal(result.config.resizeMode, "pad");
    assert.equal(result.config.inputValues, 48 * 48 * 3);
    assert.equal(result.config.l2Scale, 1.5);
    assert.deepEqual(result.config.l2EpsApplied, [0, 1.5]);
    assert.deepEqual(result.config.linfEps, [0, 4 / 255, 16 / 255]); // 0 added
    // ImageNet-C's 15 by default.
    assert.deepEqual(result.config.corruptions, listCorruptions("imagenet-c"));
    assert.equal(result.corruptions.length, 15 * 2);
    for (const c of result.corruptions) {
      for (const k of ["top1", "recallAt1ImageToText", "recallAt1TextToImage"] as const) assert.ok(c[k] >= 0 && c[k] <= 1, `${c.name} ${k}`);
      assert.ok(c.matchCosine >= -1 && c.matchCosine <= 1);
    }
    assert.ok(Math.abs(result.corruptionSummary.relativeTop1 - result.corruptionSummary.meanTop1 / result.clean.top1) < 1e-12);
    // fgsm, pgd, apgd-ce, apgd-t and their worst case at 3 linf and 2 l2 budgets; more-steps runs at the median budget of each norm.
    assert.deepEqual(result.config.attacks, ["fgsm", "pgd", "apgd-ce", "apgd-t"]);
    assert.equal(result.attacks.length, 5 * (3 + 2));
    assert.deepEqual(result.attacks.slice(0, 5).map((a) => [a.attack, a.steps]), [["fgsm", 1], ["pgd", 2], ["apgd-ce", 3], ["apgd-t", 3], ["worst-case", 0]]);
    // The worst case is at most every attack's accuracy at its budget.
    for (const w of result.attacks.filter((a) => a.attack === "worst-case")) {
      for (const a of result.attacks.filter((x) => x.norm === w.norm && x.eps === w.eps)) assert.ok(w.top1 <= a.top1 + 1e-12, `${a.attack} ${a.norm} ${a.eps}`);
    }
    assert.deepEqual(result.moreStepsAttacks.map((a) => [a.norm, a.steps]), [["linf", 4], ["l2", 4]]);
    assert.equal(result.targetedAttacks.length, 3);
    assert.equal(result.sanity.epsZeroEqualsClean.pass, true, JSON.stringify(result.sanity.epsZeroEqualsClean));
    assert.equal(result.sanity.epsZeroEqualsClean.details.length, 10);
    // APGD (3 iterations) never weaker than PGD (2 steps) at any non-zero budget: 2 attacks x 3 budgets.
    assert.equal(result.sanity.apgdAtLeastPgd.details.length, 6);
    assert.equal(result.sanity.apgdAtLeastPgd.pass, true, JSON.stringify(result.sanity.apgdAtLeastPgd));
    for (const a of result.attacks.filter((x) => x.eps === 0)) assert.equal(a.cosineDrop, 0);
    for (const a of result.attacks) assert.equal(a.appliedEps, a.norm === "l2" ? a.eps * 1.5 : a.eps, `${a.attack} ${a.norm} ${a.eps}`);
    assert.equal(result.examples.length, Math.min(2, Math.round(result.attackClean.top1 * 6)));
    for (const e of result.examples) {
      // The attacked model input: 48 x 48 RGB.
      assert.equal(e.channels, 3);
      assert.equal(e.original.length, 48 * 48 * 3);
      assert.equal(e.key, `fashion-mnist-test#${e.index}`);
      // Padded, not resized: the canvas outside the centred 28 x 28 image is black, in every channel.
      for (const [y, x] of [[0, 0], [5, 47], [47, 20], [9, 9]]) for (let k = 0; k < 3; k++) assert.equal(e.original[(y * 48 + x) * 3 + k], 0);
      assert.equal(e.eps, 16 / 255);
      const linf = Math.max(...e.adversarial.map((v, i) => Math.abs(v - e.original[i])));
      assert.ok(linf <= e.eps + 1e-6);
      assert.equal(e.cleanTop.length, 3);
    }
    // 1 clean, 15 x 2 corruption cells, 5 budgets x 4 attacks + 3 targeted + 2 more-steps runs.
    assert.deepEqual([events[0], events[30], events[events.length - 1]], ["clean 1/1", "corruptions 30/30", "attacks 25/25"]);
    assert.equal(events.length, 1 + 30 + 25);
    // JSON-safe: survives a round trip unchanged.
    assert.deepEqual(JSON.parse(JSON.stringify(result)), result);
  });

  it("builds a report section: tables, plotly figures, image blocks", () => {
    const section = robustnessSection(JSON.parse(JSON.stringify(result)), { remedies: [compareRobustness("nothing", result, result)] });
    const kinds = section.blocks.map((b) => b.kind);
    assert.ok(kinds.filter((k) => k === "table").length >= 5);
    assert.equal(kinds.filter((k) => k === "figure").length, 3);
    const images = section.blocks.filter((b) => b.kind === "image");
    assert.equal(images.length, 1 + result.examples.length);
    for (const b of images) {
      if (b.kind !== "image") continue;
      assert.equal(b.pixels.length, b.height * b.width * b.channels);
      for (const v of b.pixels) assert.ok(v >= 0 && v <= 1);
    }
    const eps = section.blocks.find((b) => b.kind === "figure" && JSON.stringify(b.figure).includes("PGD linf top-1"));
    assert.ok(eps && eps.kind === "figure");
    const pgdLinf = eps.figure.data.find((t) => t.name === "PGD linf top-1")!;
    assert.deepEqual((pgdLinf.x as number[]).map((x) => Math.round(x)), [0, 4, 16]);
    const remedy = section.blocks[section.blocks.length - 1];
    assert.ok(remedy.kind === "table" && remedy.rows.every((r) => r[3] === 0));
  });

  it("compareRobustness refuses audits with different settings", () => {
    const other = { ...result, config: { ...result.config, l2Eps: [0, 2] } };
    assertThrowsOneLine(() => compareRobustness("x", result, other), /^compareRobustness: the audits differ in l2Eps \(\[0,1\] vs \[0,2\]\); run both with the same settings$/);
  });
});

describe("sanityChecks", () => {
  const row = (attack: "fgsm" | "pgd", eps: number, top1: number, steps = attack === "pgd" ? 10 : 1): AttackRow => ({
    attack, norm: "linf", eps, appliedEps: eps, steps, top1, successRate: 0, matchCosine: 0, cosineDrop: 0, perturbation: { maxLinf: eps, maxL2: 0 },
  });
  it("passes a consistent set and flags each kind of failure", () => {
    const ok = sanityChecks(0.8, [row("fgsm", 0, 0.8), row("pgd", 0, 0.8), row("fgsm", 0.1, 0.5), row("pgd", 0.1, 0.3)], [row("pgd", 0.1, 0.28, 20)], 0.005);
    assert.ok(ok.epsZeroEqualsClean.pass && ok.pgdAtLeastFgsm.pass && ok.monotoneInEps.pass && ok.moreStepsNoHelp.pass);
    const bad = sanityChecks(0.8, [row("fgsm", 0, 0.79), row("pgd", 0, 0.8), row("fgsm", 0.1, 0.3), row("pgd", 0.1, 0.85)], [row("pgd", 0.1, 0.9, 20)], 0.005);
    assert.equal(bad.epsZeroEqualsClean.pass, false);
    assert.equal(bad.pgdAtLeastFgsm.pass, false);
    assert.equal(bad.monotoneInEps.pass, false);
    assert.equal(bad.moreStepsNoHelp.pass, false);
    assert.deepEqual(bad.moreStepsNoHelp.details[0].values, { steps: 10, top1: 0.85, moreSteps: 20, top1MoreSteps: 0.9 });
  });
});

describe("tecoaFineTune", () => {
  it("moves only the image tower, is seeded, and leaks nothing", async () => {
    const train = fashionMnist("train", 32);
    const opts = { steps: 2, batchSize: 8, warmupSteps: 1, lr: 1e-3, eps: 8 / 255, seed: 3 };
    const run = async () => {
      const clip = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
      const before = new Map([...clip.params].map(([name, v]) => [name, bits(v)]));
      const start = tf.memory().numTensors;
      const r = await tecoaFineTune(clip, train, opts);
      // +1: the causal mask the model caches on its first encodeText.
      assert.equal(tf.memory().numTensors, start + 1, "tecoaFineTune leaked tensors");
      const after = new Map([...clip.params].map(([name, v]) => [name, bits(v)]));
      clip.dispose();
      return { r, before, after };
    };
    const a = await run();
    assert.equal(a.r.history.length, 2);
    assert.equal(a.r.images, 32);
    assert.equal(a.r.skipped, 0);
    for (const s of a.r.history) assert.ok(Number.isFinite(s.loss) && s.adversarialAccuracy >= 0 && s.adversarialAccuracy <= 1);
    for (const [name, v] of a.before) {
      const changed = v.some((x, i) => x !== a.after.get(name)![i]);
      if (name.startsWith("visual.")) assert.ok(a.r.tuned.includes(name));
      else assert.equal(changed, false, `${name} is not part of the image tower but changed`);
    }
    assert.ok(a.r.tuned.some((name) => a.before.get(name)!.some((x, i) => x !== a.after.get(name)![i])), "the image tower moved");
    const b = await run();
    for (const [name, v] of a.after) assert.deepEqual(b.after.get(name), v, `${name}: same seed, different weights`);
  });

  it("rejects bad options with one line", async () => {
    const clip = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
    const train = fashionMnist("train", 16);
    await rejectsOneLine(() => tecoaFineTune(clip, train, { stepz: 3 } as never), /^tecoaFineTune: unknown option "stepz"; valid options: steps, batchSize, /);
    await rejectsOneLine(() => tecoaFineTune(clip, train, { eps: -1 }), /^tecoaFineTune: eps must be a finite number >= 0/);
    await rejectsOneLine(() => tecoaFineTune(clip, train, { norm: "l0" as never }), /^tecoaFineTune: norm must be one of linf, l2, got "l0"$/);
    await rejectsOneLine(() => tecoaFineTune(clip, train, { batchSize: 64 }), /^tecoaFineTune: 16 training images make no batch of 64$/);
    await rejectsOneLine(() => tecoaFineTune(clip, loadFashionMnist("train", { limit: 16 }) as never, {}), /^tecoaFineTune: data must be a Dataset \(openDataset\(/);
    clip.dispose();
  });
});

describe("audit options", () => {
  it("are checked with one-line errors that list valid values", () => {
    assertThrowsOneLine(() => resolveAuditOptions({ limt: 3 } as never), /^auditRobustness: unknown option "limt"; valid options: limit, attackLimit, /);
    assertThrowsOneLine(() => resolveAuditOptions({ corruptions: ["snowy"] }), /unknown corruption "snowy"; valid names: gaussian_noise, .*cliplab\/translation \(or a set: imagenet-c, imagenet-c-extra, cliplab\)$/);
    assertThrowsOneLine(() => resolveAuditOptions({ attacks: ["pgd", "cw"] as never }), /^auditRobustness: attacks must be a list of fgsm, pgd, apgd-ce, apgd-t \(or empty for none\), got \["pgd","cw"\]$/);
    assertThrowsOneLine(() => resolveAuditOptions({ apgdSteps: 0 }), /^auditRobustness: apgdSteps must be a positive integer, got 0$/);
    assert.deepEqual(resolveAuditOptions({ corruptions: ["imagenet-c-extra", "cliplab/blur"] }).corruptions, ["speckle_noise", "gaussian_blur", "spatter", "saturate", "cliplab/blur"]);
    assert.deepEqual(resolveAuditOptions({ attacks: ["apgd-t", "fgsm"] }).attacks, ["fgsm", "apgd-t"]);
    assertThrowsOneLine(() => resolveAuditOptions({ severities: [0] }), /severities must be 1-5/);
    assertThrowsOneLine(() => resolveAuditOptions({ severities: [7 as never] }), /severity must be an integer 0-5.*got 7/);
    assertThrowsOneLine(() => resolveAuditOptions({ linfEps: [0.1, -0.01] }), /linfEps: eps must be a finite number >= 0.*got -0.01/);
    assertThrowsOneLine(() => resolveAuditOptions({ pgdSteps: 0 }), /^auditRobustness: pgdSteps must be a positive integer, got 0$/);
    assertThrowsOneLine(() => resolveAuditOptions({ tolerance: 2 }), /^auditRobustness: tolerance must be in \[0, 1\), got 2$/);
    assertThrowsOneLine(() => resolveAuditOptions({ captions: {} } as never), /^auditRobustness: unknown option "captions"; valid options: .*classNames, templates, skipBadImages/);
    assertThrowsOneLine(() => resolveAuditOptions({ skipBadImages: "yes" as never }), /^auditRobustness: skipBadImages must be true or false, got "yes"$/);
  });

  it("take a Dataset, not grey arrays", async () => {
    await rejectsOneLine(
      () => auditRobustness({} as never, loadFashionMnist("test", { limit: 4 }) as never),
      /^auditRobustness: data must be a Dataset \(openDataset\("fashion-mnist" \| "imagefolder:DIR" \| "csv:FILE" \| \.\.\.\)\), got object$/,
    );
  });
});

describe("L2 budgets scale with the input size", () => {
  it("eps * sqrt(d / 3072): unchanged at 3x32x32, x2 at 64 px, x7 at 224 px; L-inf never scaled", () => {
    assert.equal(L2_REFERENCE_VALUES, 3072);
    assert.equal(l2Scale(32 * 32 * 3), 1);
    assert.equal(l2Scale(64 * 64 * 3), 2);
    assert.equal(l2Scale(224 * 224 * 3), 7);
    assert.equal(appliedEps("l2", 0.5, 224 * 224 * 3), 3.5);
    assert.equal(appliedEps("linf", 4 / 255, 224 * 224 * 3), 4 / 255);
  });
});

describe("auditRobustness on data of one's own, at 64 px", () => {
  const SMALL = {
    limit: 9,
    attackLimit: 6,
    corruptions: ["gaussian_noise", "cliplab/blur", "jpeg_compression", "cliplab/occlusion"],
    severities: [1, 4] as (1 | 4)[],
    linfEps: [8 / 255],
    l2Eps: [0.5],
    pgdSteps: 2,
    moreSteps: 3,
    apgdSteps: 3,
    apgdTargets: 2,
    examples: 2,
    batchSize: 4,
  };

  /** What every 64 px audit must show: RGB at the model's size, eps = 0 = clean, L2 applied x2 and respected. */
  function checkAt64(r: RobustnessResult): void {
    assert.equal(r.config.imageSize, 64);
    assert.equal(r.config.inputValues, 64 * 64 * 3);
    assert.equal(r.config.l2ReferenceValues, 3072);
    assert.equal(r.config.l2Scale, 2);
    assert.deepEqual(r.config.l2Eps, [0, 0.5]);
    assert.deepEqual(r.config.l2EpsApplied, [0, 1]);
    assert.deepEqual(r.config.classNames, [...SHAPES]);
    // eps = 0 gives exactly the clean accuracy and cosine of the attacked RGB images.
    assert.equal(r.sanity.epsZeroEqualsClean.pass, true, JSON.stringify(r.sanity.epsZeroEqualsClean));
    const zero = r.attacks.filter((a) => a.eps === 0);
    assert.equal(zero.length, 10);
    for (const a of zero) {
      assert.equal(a.top1, r.attackClean.top1, `${a.attack} ${a.norm}`);
      assert.equal(a.matchCosine, r.attackClean.matchCosine, `${a.attack} ${a.norm}`);
    }
    for (const a of [...r.attacks, ...r.targetedAttacks]) {
      const applied = a.norm === "l2" ? 2 * a.eps : a.eps;
      assert.equal(a.appliedEps, applied, `${a.attack} ${a.norm} ${a.eps}`);
    }
    // The perturbations stay within the applied budget; FGSM's L2 step is longer than the nominal budget (so the scaling acts).
    for (const a of r.attacks) {
      assert.ok(a.perturbation.maxLinf <= (a.norm === "linf" ? a.appliedEps : Infinity) + 1e-6, `${a.attack} ${a.norm} linf ${a.perturbation.maxLinf}`);
      assert.ok(a.perturbation.maxL2 <= (a.norm === "l2" ? a.appliedEps * (1 + 1e-5) : Infinity) + 1e-6, `${a.attack} ${a.norm} l2 ${a.perturbation.maxL2}`);
      if (a.eps === 0) assert.equal(a.perturbation.maxL2, 0);
    }
    const fgsmL2 = r.attacks.find((a) => a.attack === "fgsm" && a.norm === "l2" && a.eps === 0.5)!;
    assert.ok(fgsmL2.perturbation.maxL2 > 0.5 * 1.2, `FGSM L2 moved ${fgsmL2.perturbation.maxL2}, nominal 0.5, applied 1`);
    // Previews and examples are the model's RGB input.
    assert.equal(r.corruptionPreview!.height, 64);
    assert.equal(r.corruptionPreview!.channels, 3);
    for (const im of r.corruptionPreview!.images) assert.equal(im.pixels.length, 64 * 64 * 3, im.name);
    for (const e of r.examples) assert.equal(e.original.length, 64 * 64 * 3);
    assert.equal(r.corruptions.length, 4 * 2);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
    const section = robustnessSection(r);
    assert.ok(section.blocks.some((b) => b.kind === "text" && b.text.includes("64x64 RGB") && b.text.includes("applied x2")));
  }

  it("an image folder (PNG and JPEG of several sizes): classes from the folders, CLIP's plain template, generated captions; skipped images counted", async () => {
    const root = await shapeFolder(3);
    // One corrupt file: an error naming it, or skipped and counted.
    fs.writeFileSync(path.join(root, "square", "square_9.png"), Buffer.from("not a png"));
    const ds = await openDataset(`imagefolder:${root}`);
    const clip = tinyClip64();
    await rejectsOneLine(() => auditRobustness(clip, ds, SMALL), /square_9\.png/);
    // Warm-up (the model caches its causal mask on first use), then count.
    await auditRobustness(clip, ds, { ...SMALL, limit: 2, attackLimit: 1, corruptions: ["cliplab/blur"], severities: [1], linfEps: [], l2Eps: [], targeted: false, skipBadImages: true });
    const start = tf.memory().numTensors;
    const seen: string[] = [];
    // limit 20 > the 10 files: all 9 readable images, the bad one skipped.
    const r = await auditRobustness(clip, ds, { ...SMALL, limit: 20, skipBadImages: true, onSkip: (s) => seen.push(s.key) });
    assert.equal(tf.memory().numTensors, start, "the audit leaked tensors");
    clip.dispose();
    checkAt64(r);
    assert.equal(r.config.images, 9);
    assert.equal(r.config.dataset, `imagefolder:${root}`);
    assert.deepEqual(r.config.templates, ["a photo of a {}."]);
    assert.equal(r.config.retrievalCaptions, 9, "one generated caption per image");
    assert.equal(r.config.resizeMode, "shortest");
    assert.equal(r.skipped, 1);
    assert.equal(r.skippedItems.length, 1);
    assert.match(r.skippedItems[0].key, /square_9\.png$/);
    assert.deepEqual(seen, [r.skippedItems[0].key]);
    for (const e of r.examples) assert.match(e.key, /\.(png|jpg)$/);
  });

  it("a CSV with its own captions (commas, quotes, non-ASCII) and a label column, with classNames and templates from the options", async () => {
    const file = await shapeCsv(3);
    const ds = await openDataset(`csv:${file}`, { labelKey: "label", classnamesFile: undefined });
    const clip = tinyClip64(2);
    const r = await auditRobustness(clip, ds, { ...SMALL, classNames: ["circle", "square", "triangle"], templates: ["a drawing of a {}.", "a {} shape."] });
    clip.dispose();
    checkAt64(r);
    assert.deepEqual(r.config.templates, ["a drawing of a {}.", "a {} shape."]);
    assert.equal(r.config.retrievalCaptions, 9, "the rows' own captions");
    assert.ok(r.clean.captionCosine >= -1 && r.clean.captionCosine <= 1);
    assert.equal(r.skipped, 0);
  });

  it("an image folder at 224 px (ImageNet-C's corruptions at the reference size, all four attacks) and a baseline model: CE and mCE from the two audits", async () => {
    const root = await shapeFolder(2);
    const ds = await openDataset(`imagefolder:${root}`);
    const config = (seed: number) => {
      const base = getModelConfig("ViT-Tiny-28");
      const { preprocess_cfg: _pad, ...rest } = base;
      return Clip.create({ ...rest, vision_cfg: { ...base.vision_cfg, image_size: 224, patch_size: 32 } }, { seed });
    };
    const clip = config(3);
    const baseline = config(4);
    const quick = { limit: 4, attackLimit: 2, severities: [1, 5] as (1 | 5)[], linfEps: [4 / 255], l2Eps: [0.5], pgdSteps: 2, moreSteps: 3, apgdSteps: 3, apgdTargets: 2, examples: 1, batchSize: 2 };
    const r = await auditRobustness(clip, ds, quick);
    const b = await auditRobustness(baseline, ds, { ...quick, attacks: [] });
    clip.dispose();
    baseline.dispose();
    assert.equal(r.config.imageSize, 224);
    assert.equal(r.config.l2Scale, 7);
    assert.equal(r.config.images, 4);
    assert.deepEqual(r.config.corruptions, listCorruptions("imagenet-c"));
    assert.equal(r.corruptions.length, 15 * 2);
    assert.equal(r.sanity.epsZeroEqualsClean.pass, true, JSON.stringify(r.sanity.epsZeroEqualsClean));
    assert.deepEqual([...new Set(r.attacks.map((a) => a.attack))], ["fgsm", "pgd", "apgd-ce", "apgd-t", "worst-case"]);
    // Within float32 rounding: the L2 projection's norm sums 224x224x3 float32 squares, whose order
    // changes with the thread count (2 threads put it 1.1e-5 above the budget).
    for (const a of r.attacks) {
      const size = a.norm === "linf" ? a.perturbation.maxLinf : a.perturbation.maxL2;
      assert.ok(size <= a.appliedEps * (1 + 1e-4) + 1e-6, `${a.attack} ${a.norm}: ${size} > ${a.appliedEps}`);
    }
    // The baseline ran no attacks: its result says so.
    assert.equal(b.config.attackImages, 0);
    assert.deepEqual(b.attacks, []);
    assert.equal(b.sanity.apgdAtLeastPgd.details.length, 0);
    const ce = compareCorruptionErrors(r, b, "random ViT at 224 px (seed 4)");
    assert.equal(ce.perCorruption.length, 15);
    // CE_c and relative CE_c from the rows, by the definitions.
    for (const p of ce.perCorruption) {
      const rows = (x: RobustnessResult) => x.corruptions.filter((c) => c.name === p.name).map((c) => 1 - c.top1);
      const e = rows(r);
      const eb = rows(b);
      assert.deepEqual(p.errors, e);
      const sum = (v: number[]) => v.reduce((x, y) => x + y, 0);
      if (p.ce !== null) assert.ok(Math.abs(p.ce - sum(e) / sum(eb)) < 1e-12, p.name);
      const den = sum(eb.map((v) => v - (1 - b.clean.top1)));
      if (p.relativeCe !== null) assert.ok(Math.abs(p.relativeCe - sum(e.map((v) => v - (1 - r.clean.top1))) / den) < 1e-12, p.name);
    }
    const defined = ce.perCorruption.filter((p) => p.ce !== null);
    if (ce.mce !== null) assert.ok(Math.abs(ce.mce - defined.reduce((x, p) => x + p.ce!, 0) / defined.length) < 1e-12);
    const section = robustnessSection({ ...r, corruptionErrors: ce });
    assert.ok(section.blocks.some((blk) => blk.kind === "table" && blk.columns[1] === "CE" && blk.rows.length === 16));
    assert.deepEqual(JSON.parse(JSON.stringify(ce)), ce);
  });

  it("a dataset without labels is a one-line error", async () => {
    // Images straight in the folder, no class subfolders: an unlabelled dataset.
    const flat = path.join(tmpDir("cliplab-robust-flat-"), "flat");
    fs.mkdirSync(flat);
    for (const [i, shape] of SHAPES.entries()) fs.writeFileSync(path.join(flat, `${shape}.png`), await shapeImage(shape, 64, 64, i));
    const ds = await openDataset(`imagefolder:${flat}`);
    assert.equal(ds.hasLabels, false);
    const clip = tinyClip64();
    await rejectsOneLine(
      () => auditRobustness(clip, ds, SMALL),
      /^auditRobustness: imagefolder:.*flat has no labels, but the robustness audit needs classes; use a labelled source \(an image folder with one subfolder per class, /,
    );
    await rejectsOneLine(() => tecoaFineTune(clip, ds, { steps: 1, batchSize: 1 }), /^tecoaFineTune: imagefolder:.*flat has no labels, but the robustness audit needs classes/);
    clip.dispose();
  });
});
