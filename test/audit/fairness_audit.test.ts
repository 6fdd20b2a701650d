/** The audit end to end on a fake model with a known bias (none, or planted), and its report section. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { runFairnessAudit, type FairnessAuditResult } from "../../src/audit/fairness/audit";
import { plantedTestSet } from "../../src/audit/fairness/planted_bias";
import { fairnessSection, fairnessStudySection } from "../../src/report/sections/fairness";
import { fakeAuditModel, fakeAuditOptions, fakeDataset, fakeImages, type FakeAuditModel } from "./fairness_fake_model";
import { assertRejectsOneLine, useCpu } from "./fairness_helpers";

let fair: FakeAuditModel;
let biased: FakeAuditModel;
const test = plantedTestSet(fakeImages(400), { seed: 3 });
const data = fakeDataset(test.data);
let fairResult: FairnessAuditResult;
let biasedResult: FairnessAuditResult;

before(async () => {
  await useCpu();
  fair = fakeAuditModel(0, 0);
  biased = fakeAuditModel(1.5, 0.8);
  const before = tf.memory().numTensors;
  fairResult = await runFairnessAudit(fair, data, test.groups, fakeAuditOptions(fair));
  biasedResult = await runFairnessAudit(biased, data, test.groups, fakeAuditOptions(biased));
  assert.equal(tf.memory().numTensors, before, "the audit leaks no tensor");
});
after(() => {
  fair.dispose();
  biased.dispose();
});

const probe = (r: FairnessAuditResult, key: string) => {
  const p = r.probes.find((q) => q.key === key);
  assert.ok(p, `probe ${key}`);
  return p;
};

describe("runFairnessAudit", () => {
  it("a model that ignores the group is not flagged: p > 0.05, signed intervals cover 0", () => {
    assert.equal(fairResult.n, 400);
    assert.equal(fairResult.skipped, 0);
    assert.deepEqual(fairResult.groups.map((g) => [g.group, g.count]), [["framed", 200], ["plain", 200]]);
    for (const p of fairResult.probes) {
      assert.ok(p.pValue > 0.05, `${p.key}: p = ${p.pValue}`);
      assert.equal(p.flagged, false);
      if (p.kind === "signed") assert.ok(p.ci95[0] <= 0 && p.ci95[1] >= 0, `${p.key}: ${p.ci95}`);
      else assert.ok(p.value <= p.ci95[1] + 1e-12);
    }
    // The fake is accurate but not perfect.
    assert.ok(fairResult.accuracy.value > 0.6 && fairResult.accuracy.value < 0.99, `${fairResult.accuracy.value}`);
  });

  it("a planted bias is flagged (p < 0.01) in the right direction by the probes that should see it", () => {
    for (const key of ["positiveRateGap", "demographicParity", "fprGap", "maxSkew", "ndkl", "weat:bad", "harmfulGap"]) {
      const p = probe(biasedResult, key);
      assert.ok(p.pValue < 0.01, `${key}: p = ${p.pValue}`);
      assert.ok(p.flagged);
      if (p.kind === "signed") assert.ok(p.ci95[0] > 0, `${key}: ${p.ci95}`);
      else assert.ok(p.value > p.nullMean!, `${key}: ${p.value} vs null ${p.nullMean}`);
    }
    const framed = biasedResult.groups.find((g) => g.group === "framed")!;
    const plain = biasedResult.groups.find((g) => g.group === "plain")!;
    assert.ok(framed.positiveRate.value > plain.positiveRate.value);
    assert.ok(framed.harmfulRate!.value > plain.harmfulRate!.value);
  });

  it("is deterministic for a seed", async () => {
    const again = await runFairnessAudit(fair, data, test.groups, fakeAuditOptions(fair));
    assert.deepEqual(again, fairResult);
  });

  it("projection debiasing along the word direction removes the harmful-label and WEAT bias", async () => {
    const dirs = tf.tensor2d([[0, 0, 1, 0]]);
    const r = await runFairnessAudit(biased, data, test.groups, { ...fakeAuditOptions(biased), spuriousDirections: dirs });
    dirs.dispose();
    assert.equal(r.debiased, true);
    assert.ok(Math.abs(probe(r, "weat:bad").value) < 1e-6, `${probe(r, "weat:bad").value}`);
    assert.ok(probe(r, "harmfulGap").pValue > 0.05);
    assert.ok(probe(r, "positiveRateGap").pValue < 0.01, "the class bias is in the images: projection leaves it");
  });

  it("bad input: too few labels, a single group, an unknown focus group, NaN features, unknown options", async () => {
    const opts = fakeAuditOptions(fair);
    await assertRejectsOneLine(() => runFairnessAudit(fair, data, test.groups.slice(1), opts), /runFairnessAudit: groups has 399 labels \(one per item in source order\), but fake#399 is item 399/);
    await assertRejectsOneLine(() => runFairnessAudit(fair, data, test.groups.map(() => "plain"), opts), /groups holds a single group \("plain"\)/);
    await assertRejectsOneLine(() => runFairnessAudit(fair, data, test.groups, { ...opts, focusGroup: "tinted" }), /focusGroup "tinted" is not among the groups \(framed, plain\)/);
    await assertRejectsOneLine(() => runFairnessAudit(fair, data, test.groups, { ...opts, k: 401 }), /k = 401 is larger than the number of images \(400\)/);
    await assertRejectsOneLine(() => runFairnessAudit(fair, data, test.groups, { ...opts, positiveClass: 2 }), /positiveClass must be an integer in \[0, 1\], got 2/);
    await assertRejectsOneLine(() => runFairnessAudit(fair, data, test.groups, { ...opts, bogus: 1 } as typeof opts), /unknown option "bogus" \(valid: classNames, /);
    const nanModel = { ...fair, encodeImage: (p: tf.Tensor4D) => tf.tidy(() => tf.mul(fair.encodeImage(p), NaN) as tf.Tensor2D) };
    const before = tf.memory().numTensors;
    await assertRejectsOneLine(() => runFairnessAudit(nanModel, data, test.groups, opts), /runFairnessAudit: the model's image features holds a non-finite value \(NaN\) at row 0/);
    assert.equal(tf.memory().numTensors, before);
  });
});

describe("fairnessSection / fairnessStudySection", () => {
  it("one table row per probe and per group, a figure, and the flagged probes named", () => {
    const s = fairnessSection(biasedResult);
    assert.equal(s.title, "Fairness audit");
    const tables = s.blocks.filter((b) => b.kind === "table");
    // Probes, per group, and (since the FairFace-style table) per group of each attribute and the spreads between groups.
    assert.equal(tables.length, 4);
    assert.equal(tables[2].kind === "table" && tables[2].rows.length, 2, "one FairFace row per group of the one attribute");
    assert.equal(tables[0].kind === "table" && tables[0].rows.length, biasedResult.probes.length);
    assert.equal(tables[1].kind === "table" && tables[1].rows.length, 2);
    assert.ok(s.blocks.some((b) => b.kind === "figure"));
    const text = s.blocks[0].kind === "text" ? s.blocks[0].text : "";
    assert.match(text, /Flagged here: .*harmfulGap/);
    assert.match(fairnessSection(fairResult).blocks[0].kind === "text" ? (fairnessSection(fairResult).blocks[0] as { text: string }).text : "", /No probe is flagged/);
  });

  it("study: the sweep and the remedies tables, before and after", () => {
    const acc = { value: 0.8, ci95: [0.78, 0.82] as [number, number] };
    const s = fairnessStudySection([
      { rho: 0.9, remedy: "none", cleanAccuracy: acc, audit: biasedResult },
      { rho: 0.5, remedy: "none", cleanAccuracy: acc, audit: fairResult },
      { rho: 0.9, remedy: "projection", cleanAccuracy: { ...acc, value: 0.79 }, audit: fairResult },
    ]);
    const tables = s.blocks.filter((b) => b.kind === "table") as { rows: (string | number | null)[][] }[];
    assert.equal(tables.length, 2);
    assert.equal(tables[0].rows[0][0], 0.5, "sorted by rho");
    const costRow = tables[1].rows.find((r) => r[2] === "clean zero-shot accuracy")!;
    assert.equal(costRow[6], "cost 0.010");
    assert.ok(s.blocks.some((b) => b.kind === "figure"));
  });
});
