/**
 * The whole robustness audit on a tiny real CLIP (test/fixtures/tiny_vit) and a few Fashion-MNIST
 * test images: result shape, sanity checks, weights untouched, no leaks, the report section, the
 * remedy comparison, TeCoA fine-tuning, option errors.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { auditRobustness, resolveAuditOptions, sanityChecks, type AttackRow, type RobustnessResult } from "../../src/audit/robustness/audit";
import { robustnessSection } from "../../src/audit/robustness/section";
import { compareRobustness } from "../../src/audit/robustness/remedies";
import { tecoaFineTune } from "../../src/audit/robustness/tecoa";
import { listCorruptions } from "../../src/audit/robustness/corruptions";
import { loadCheckpoint } from "../../src/io/checkpoint";
import { loadFashionMnist } from "../../src/data/fashion_mnist";
import { fixturePath } from "../helpers/fixtures";
import { assertThrowsOneLine } from "../helpers/errors";
import { initBackend } from "../../src/backend";

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
  examples: 2,
  batchSize: 8,
};

function bits(t: tf.Tensor): Uint32Array {
  return new Uint32Array((t.dataSync() as Float32Array).slice().buffer);
}

describe("auditRobustness", () => {
  let result: RobustnessResult;

  it("measures clean, every corruption x severity and every attack, without touching the model or leaking", async () => {
    const clip = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
    const test = loadFashionMnist("test", { limit: 12 });
    const snapshot = new Map([...clip.params].map(([name, v]) => [name, bits(v)]));
    // Warm-up (the model caches its causal mask on first use), then count.
    auditRobustness(clip, test, { ...OPTIONS, corruptions: ["blur"], severities: [1], linfEps: [], l2Eps: [], targeted: false });
    const start = tf.memory().numTensors;
    const events: string[] = [];
    result = auditRobustness(clip, test, { ...OPTIONS, onProgress: (e) => events.push(`${e.phase} ${e.done}/${e.total}`) });
    assert.equal(tf.memory().numTensors, start, "the audit leaked tensors");
    for (const [name, v] of clip.params) assert.deepEqual(bits(v), snapshot.get(name), `weight ${name} changed`);
    clip.dispose();

    assert.equal(result.config.images, 12);
    assert.equal(result.config.attackImages, 6);
    assert.deepEqual(result.config.linfEps, [0, 4 / 255, 16 / 255]); // 0 added
    assert.equal(result.corruptions.length, listCorruptions().length * 2);
    for (const c of result.corruptions) {
      for (const k of ["top1", "recallAt1ImageToText", "recallAt1TextToImage"] as const) assert.ok(c[k] >= 0 && c[k] <= 1, `${c.name} ${k}`);
      assert.ok(c.matchCosine >= -1 && c.matchCosine <= 1);
    }
    assert.ok(Math.abs(result.corruptionSummary.relativeTop1 - result.corruptionSummary.meanTop1 / result.clean.top1) < 1e-12);
    // fgsm + pgd at 3 linf and 2 l2 budgets; more-steps runs at the median budget of each norm.
    assert.equal(result.attacks.length, 2 * (3 + 2));
    assert.deepEqual(result.moreStepsAttacks.map((a) => [a.norm, a.steps]), [["linf", 4], ["l2", 4]]);
    assert.equal(result.targetedAttacks.length, 3);
    assert.equal(result.sanity.epsZeroEqualsClean.pass, true, JSON.stringify(result.sanity.epsZeroEqualsClean));
    assert.equal(result.sanity.epsZeroEqualsClean.details.length, 4);
    for (const a of result.attacks.filter((x) => x.eps === 0)) assert.equal(a.cosineDrop, 0);
    assert.equal(result.examples.length, Math.min(2, Math.round(result.attackClean.top1 * 6)));
    for (const e of result.examples) {
      assert.equal(e.original.length, 28 * 28);
      assert.equal(e.eps, 16 / 255);
      const linf = Math.max(...e.adversarial.map((v, i) => Math.abs(v - e.original[i])));
      assert.ok(linf <= e.eps + 1e-6);
      assert.equal(e.cleanTop.length, 3);
    }
    // 1 clean, 11 x 2 corruption cells, 5 budgets x (FGSM, PGD) + 3 targeted + 2 more-steps runs.
    assert.deepEqual([events[0], events[22], events[events.length - 1]], ["clean 1/1", "corruptions 22/22", "attacks 15/15"]);
    assert.equal(events.length, 1 + 22 + 15);
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
    attack, norm: "linf", eps, steps, top1, successRate: 0, matchCosine: 0, cosineDrop: 0,
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
    const train = loadFashionMnist("train", { limit: 32 });
    const opts = { steps: 2, batchSize: 8, warmupSteps: 1, lr: 1e-3, eps: 8 / 255, seed: 3 };
    const run = async () => {
      const clip = await loadCheckpoint(fixturePath("tiny_vit.safetensors"));
      const before = new Map([...clip.params].map(([name, v]) => [name, bits(v)]));
      const start = tf.memory().numTensors;
      const r = tecoaFineTune(clip, train, opts);
      // +1: the causal mask the model caches on its first encodeText.
      assert.equal(tf.memory().numTensors, start + 1, "tecoaFineTune leaked tensors");
      const after = new Map([...clip.params].map(([name, v]) => [name, bits(v)]));
      clip.dispose();
      return { r, before, after };
    };
    const a = await run();
    assert.equal(a.r.history.length, 2);
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
    const train = loadFashionMnist("train", { limit: 16 });
    assertThrowsOneLine(() => tecoaFineTune(clip, train, { stepz: 3 } as never), /^tecoaFineTune: unknown option "stepz"; valid options: steps, batchSize, /);
    assertThrowsOneLine(() => tecoaFineTune(clip, train, { eps: -1 }), /^tecoaFineTune: eps must be a finite number >= 0/);
    assertThrowsOneLine(() => tecoaFineTune(clip, train, { norm: "l0" as never }), /^tecoaFineTune: norm must be one of linf, l2, got "l0"$/);
    assertThrowsOneLine(() => tecoaFineTune(clip, train, { batchSize: 64 }), /^tecoaFineTune: 16 training images make no batch of 64$/);
    clip.dispose();
  });
});

describe("audit options", () => {
  it("are checked with one-line errors that list valid values", () => {
    assertThrowsOneLine(() => resolveAuditOptions({ limt: 3 } as never), /^auditRobustness: unknown option "limt"; valid options: limit, attackLimit, /);
    assertThrowsOneLine(() => resolveAuditOptions({ corruptions: ["snow"] }), /unknown corruption "snow"; valid names: gaussian_noise, .*translation$/);
    assertThrowsOneLine(() => resolveAuditOptions({ severities: [0] }), /severities must be 1-5/);
    assertThrowsOneLine(() => resolveAuditOptions({ severities: [7 as never] }), /severity must be an integer 0-5.*got 7/);
    assertThrowsOneLine(() => resolveAuditOptions({ linfEps: [0.1, -0.01] }), /linfEps: eps must be a finite number >= 0.*got -0.01/);
    assertThrowsOneLine(() => resolveAuditOptions({ pgdSteps: 0 }), /^auditRobustness: pgdSteps must be a positive integer, got 0$/);
    assertThrowsOneLine(() => resolveAuditOptions({ tolerance: 2 }), /^auditRobustness: tolerance must be in \[0, 1\), got 2$/);
  });
});
