/**
 * Berg et al.'s ranking measures (src/audit/fairness/ranking_bias.ts): MaxSkew@k and NDKL against
 * hand calculations under both targets, the aggregation over queries, k capped at N, intervals,
 * permutation p-values (calibrated under the null), and the probe inside the audit flagging a
 * planted bias while clearing a control under both targets.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { RANKING_TARGET_CODES, rankingBias, rankingOrders, type RankingBiasResult, type RankingMeasure } from "../../src/audit/fairness/ranking_bias";
import { maxSkewAtK, ndkl } from "../../src/audit/fairness/metrics";
import { runFairnessAudit } from "../../src/audit/fairness/audit";
import { plantedTestSet } from "../../src/audit/fairness/planted_bias";
import { Random } from "../../src/util/random";
import { assertThrowsOneLine } from "../helpers/errors";
import { NEUTRAL_QUERIES, fakeAuditModel, fakeAuditOptions, fakeDataset, fakeImages } from "./fairness_fake_model";
import { assertRejectsOneLine, useCpu } from "./fairness_helpers";

before(useCpu);

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);
const w = (i: number) => 1 / Math.log2(i + 1);
/** sum_i w_i KL_i / sum_i w_i over prefixes i = 1..k. */
const discounted = (kls: number[]) => kls.reduce((s, kl, j) => s + w(j + 1) * kl, 0) / kls.reduce((s, _, j) => s + w(j + 1), 0);

/** Similarities [Q, N] that rank the items of each query in the given order. */
function simsFor(orders: number[][], n: number): Float32Array {
  const s = new Float32Array(orders.length * n);
  orders.forEach((ord, q) => ord.forEach((item, rank) => (s[q * n + item] = -rank)));
  return s;
}

const find = (r: RankingBiasResult, metric: string, target: string, k: number, attribute = r.attributes[0].name): RankingMeasure => {
  const m = r.measures.find((x) => x.metric === metric && x.target === target && x.k === k && x.attribute === attribute);
  assert.ok(m, `${attribute} ${metric} ${target} @${k}`);
  return m;
};

describe("rankingBias: hand calculations", () => {
  // Ten items: 0-5 in group a, 6-9 in b (shares 0.6 / 0.4).
  const groups = [..."aaaaaabbbb"];
  const q0 = [0, 1, 2, 3, 6, 4, 5, 7, 8, 9]; // top 5: a a a a b
  const q1 = [6, 7, 0, 8, 1, 2, 3, 4, 5, 9]; // top 5: b b a b a
  const r = rankingBias(simsFor([q0, q1], 10), ["q0", "q1"], [{ name: "letter", groups }], { k: [5, 1000], bootstrap: 50, permutations: 50 });

  it("MaxSkew@5 under equal opportunity (1/2 each) and demographic parity (0.6 / 0.4), per query and averaged", () => {
    const eo = find(r, "maxSkew", "equalOpportunity", 5);
    // q0: p_a = 0.8 -> ln(0.8 / 0.5); q1: p_b = 0.6 -> ln(0.6 / 0.5).
    close(eo.perQuery[0], Math.log(1.6));
    close(eo.perQuery[1], Math.log(1.2));
    close(eo.mean, (Math.log(1.6) + Math.log(1.2)) / 2);
    close(eo.max, Math.log(1.6));
    assert.equal(eo.maxQuery, "q0");
    const dp = find(r, "maxSkew", "demographicParity", 5);
    // q0: ln(0.8 / 0.6) for a (b: ln(0.2 / 0.4) < 0); q1: ln(0.6 / 0.4) for b.
    close(dp.perQuery[0], Math.log(0.8 / 0.6));
    close(dp.perQuery[1], Math.log(1.5));
    assert.equal(dp.maxQuery, "q1");
    // The same numbers from the reference functions of metrics.ts.
    const ranked = (ord: number[]) => ord.map((i) => groups[i]);
    close(eo.perQuery[1], maxSkewAtK(ranked(q1), 5, { a: 0.5, b: 0.5 }));
    close(dp.perQuery[0], maxSkewAtK(ranked(q0), 5));
  });

  it("NDKL@5 under both targets: the discounted KL of every prefix", () => {
    const kl = (p: number[], q: number[]) => p.reduce((s, pi, a) => s + (pi > 0 ? pi * Math.log(pi / q[a]) : 0), 0);
    // Prefix shares (a, b) of q0: 1,0 x4 then 0.8,0.2; of q1: (0,1), (0,1), (1/3,2/3), (1/4,3/4), (2/5,3/5).
    const p0 = [[1, 0], [1, 0], [1, 0], [1, 0], [0.8, 0.2]];
    const p1 = [[0, 1], [0, 1], [1 / 3, 2 / 3], [1 / 4, 3 / 4], [0.4, 0.6]];
    const eo = find(r, "ndkl", "equalOpportunity", 5);
    close(eo.perQuery[0], discounted([Math.LN2, Math.LN2, Math.LN2, Math.LN2, 0.8 * Math.log(1.6) + 0.2 * Math.log(0.4)]));
    close(eo.perQuery[1], discounted(p1.map((p) => kl(p, [0.5, 0.5]))));
    const dp = find(r, "ndkl", "demographicParity", 5);
    close(dp.perQuery[0], discounted(p0.map((p) => kl(p, [0.6, 0.4]))));
    close(dp.perQuery[1], discounted([Math.log(1 / 0.4), Math.log(1 / 0.4), (1 / 3) * Math.log(1 / 3 / 0.6) + (2 / 3) * Math.log(2 / 3 / 0.4), 0.25 * Math.log(0.25 / 0.6) + 0.75 * Math.log(0.75 / 0.4), 0.4 * Math.log(0.4 / 0.6) + 0.6 * Math.log(0.6 / 0.4)]));
    close(dp.mean, (dp.perQuery[0] + dp.perQuery[1]) / 2);
    close(dp.perQuery[1], ndkl(q1.map((i) => groups[i]), 5));
  });

  it("k = 1000 is capped at N = 10, where MaxSkew against demographic parity is 0 by construction", () => {
    assert.deepEqual(r.settings.k, [5, 10]);
    const dp = find(r, "maxSkew", "demographicParity", 10);
    assert.deepEqual(dp.perQuery, [0, 0]);
    assert.equal(dp.pValue, 1, "nothing can beat 0");
    close(find(r, "maxSkew", "equalOpportunity", 10).mean, Math.log(0.6 / 0.5));
    assert.deepEqual(r.attributes, [{ name: "letter", groups: [{ group: "a", count: 6, share: 0.6 }, { group: "b", count: 4, share: 0.4 }] }]);
    assert.deepEqual(RANKING_TARGET_CODES, { equalOpportunity: "eq_opp", demographicParity: "dem_par" });
  });

  it("a group missing from the top k counts as 1/k; ties go to the lower index", () => {
    const t = rankingBias(new Float32Array([1, 1, 1, 0]), ["tie"], [{ name: "g", groups: ["x", "x", "y", "y"] }], { k: 2, bootstrap: 10, permutations: 10 });
    // Ties: items 0, 1 first (both x): p_x = 1, p_y -> 1/2. Equal opportunity: max(ln 2, ln 1) = ln 2.
    close(find(t, "maxSkew", "equalOpportunity", 2).mean, Math.LN2);
    assert.deepEqual(Array.from(rankingOrders(new Float32Array([1, 1, 1, 0]), 1, 4)[0]), [0, 1, 2, 3]);
  });
});

describe("rankingBias: intervals and p-values", () => {
  it("resampling queries: identical queries give a degenerate interval; different ones an interval inside their range", () => {
    const groups = Array.from({ length: 40 }, (_, i) => (i % 2 ? "odd" : "even"));
    const ord = Array.from({ length: 40 }, (_, i) => i);
    const same = rankingBias(simsFor([ord, ord, ord], 40), ["a", "b", "c"], [{ name: "parity", groups }], { k: 3, bootstrap: 100, permutations: 20 });
    const m = find(same, "maxSkew", "equalOpportunity", 3);
    assert.deepEqual(m.ci95, [m.mean, m.mean]);
    const rng = new Random(5);
    const orders = Array.from({ length: 8 }, () => rng.shuffle(ord.slice()) as number[]);
    const diff = rankingBias(simsFor(orders, 40), orders.map((_, i) => `q${i}`), [{ name: "parity", groups }], { k: 10, bootstrap: 300, permutations: 20 });
    for (const x of diff.measures) {
      assert.ok(x.ci95[0] <= x.mean && x.mean <= x.ci95[1], `${x.metric} ${x.target}: ${x.ci95} vs ${x.mean}`);
      assert.ok(x.ci95[0] >= Math.min(...x.perQuery) - 1e-12 && x.ci95[1] <= Math.max(...x.perQuery) + 1e-12);
    }
    assert.equal(diff.settings.resample, "queries");
  });

  it("resampling images (stratified by group) keeps the shares: MaxSkew@N against demographic parity stays 0", () => {
    const groups = Array.from({ length: 30 }, (_, i) => (i < 10 ? "few" : "many"));
    const rng = new Random(2);
    const orders = Array.from({ length: 3 }, () => rng.shuffle(Array.from({ length: 30 }, (_, i) => i)) as number[]);
    const r = rankingBias(simsFor(orders, 30), ["a", "b", "c"], [{ name: "size", groups }], { k: [5, 30], bootstrap: 100, permutations: 20, resample: "images" });
    assert.deepEqual(find(r, "maxSkew", "demographicParity", 30).ci95, [0, 0]);
    const five = find(r, "ndkl", "equalOpportunity", 5);
    assert.ok(Number.isFinite(five.ci95[0]) && five.ci95[0] <= five.ci95[1]);
  });

  it("a ranking that puts one group first is flagged under both targets; random rankings are flagged at about the nominal rate", () => {
    const n = 60;
    const groups = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? "a" : "b")); // shares 1/3, 2/3
    const aFirst = [...Array.from({ length: n }, (_, i) => i).filter((i) => groups[i] === "a"), ...Array.from({ length: n }, (_, i) => i).filter((i) => groups[i] === "b")];
    // k = 20 (all of group a): against equal opportunity an all-b top 20 would score the same ln 2, but by chance only (2/3)^20 of the time.
    const biased = rankingBias(simsFor([aFirst, aFirst], n), ["x", "y"], [{ name: "g", groups }], { k: 20, bootstrap: 20, permutations: 200 });
    for (const x of biased.measures) {
      assert.ok(x.pValue < 0.01 && x.flagged, `${x.metric} ${x.target}: p = ${x.pValue}`);
      assert.ok(x.mean > x.nullMean);
    }
    // Null: 100 datasets of random rankings; at alpha = 0.05 a calibrated test flags about 5%.
    const rng = new Random(11);
    let flagged = 0;
    let tests = 0;
    for (let rep = 0; rep < 100; rep++) {
      const orders = Array.from({ length: 3 }, () => rng.shuffle(Array.from({ length: n }, (_, i) => i)) as number[]);
      const r = rankingBias(simsFor(orders, n), ["x", "y", "z"], [{ name: "g", groups }], { k: 10, bootstrap: 10, permutations: 99, seed: rep });
      for (const x of r.measures) {
        tests++;
        if (x.flagged) flagged++;
      }
    }
    assert.ok(flagged / tests < 0.1, `${flagged} of ${tests} null tests flagged`);
    // Under equal opportunity the null itself is far from 0 on unbalanced groups: compare with nullMean, not 0.
    const null1 = rankingBias(simsFor([rng.shuffle(Array.from({ length: n }, (_, i) => i)) as number[]], n), ["x"], [{ name: "g", groups }], { k: 30, bootstrap: 10, permutations: 200 });
    assert.ok(find(null1, "maxSkew", "equalOpportunity", 30).nullMean > 0.2, "ln((2/3) / (1/2)) = 0.29 without any association");
  });

  it("several attributes are measured on the same rankings; bad options are one-line errors", () => {
    const sims = simsFor([[0, 1, 2, 3]], 4);
    const r = rankingBias(sims, ["q"], [{ name: "u", groups: ["a", "b", "a", "b"] }, { name: "v", groups: ["c", "c", "d", "d"] }], { k: 2, bootstrap: 10, permutations: 10 });
    close(find(r, "maxSkew", "equalOpportunity", 2, "u").mean, 0);
    close(find(r, "maxSkew", "equalOpportunity", 2, "v").mean, Math.LN2);
    assert.equal(r.measures.length, 2 * 2 * 2);
    assertThrowsOneLine(() => rankingBias(sims, ["q"], [{ name: "u", groups: ["a", "b", "a"] }]), /rankingBias: attributes\[0\]\.groups \(u\) has 3 entries but there are 4 items/);
    assertThrowsOneLine(() => rankingBias(sims, ["q"], [{ name: "u", groups: ["a", "b", "a", "b"] }], { k: 0 }), /rankingBias: k must be a positive integer, got 0/);
    assertThrowsOneLine(() => rankingBias(sims, ["q"], [{ name: "u", groups: ["a", "b", "a", "b"] }], { resample: "pixels" as never }), /resample must be "queries" or "images", got "pixels"/);
    assertThrowsOneLine(() => rankingBias(sims, ["q", "r"], [{ name: "u", groups: ["a", "b", "a", "b"] }]), /attributes\[0\]\.groups \(u\) has 4 entries but there are 2 items/);
    assertThrowsOneLine(() => rankingBias(sims, ["q", "r", "s"], [{ name: "u", groups: ["a", "b", "a", "b"] }]), /similarity must hold 3 queries x N items values \(row-major \[Q, N\]\), got 4 values/);
    assertThrowsOneLine(() => rankingBias(sims, ["q"], [{ name: "u", groups: ["a", "a", "a", "a"] }]), /holds a single group \("a"\)/);
  });
});

describe("the ranking probe in runFairnessAudit: a planted bias is flagged, the control is cleared, under both targets", () => {
  // 30% of the images framed, so the two targets differ (uniform 1/2 vs the shares 0.3 / 0.7).
  const test = plantedTestSet(fakeImages(400), { seed: 3, fraction: 0.3 });
  const data = fakeDataset(test.data);
  // k = 20: the biased model fills the top 20 with framed images. (At larger k it reaches about half
  // framed, which equal opportunity scores as fair: read the two targets together.)
  const ranking = { queries: NEUTRAL_QUERIES, k: [20, 1000], bootstrap: 200, permutations: 300 };

  it("fair (control) vs word-biased model", async () => {
    const fair = fakeAuditModel(0, 0);
    const biased = fakeAuditModel(1.5, 0.8);
    try {
      const before = tf.memory().numTensors;
      const f = await runFairnessAudit(fair, data, test.groups, { ...fakeAuditOptions(fair), ranking });
      const b = await runFairnessAudit(biased, data, test.groups, { ...fakeAuditOptions(biased), ranking });
      assert.equal(tf.memory().numTensors, before, "no tensor leaked");
      assert.equal(f.attribute, "group");
      assert.deepEqual(f.ranking!.settings.k, [20, 400]);
      assert.deepEqual(f.ranking!.queries, NEUTRAL_QUERIES);
      for (const x of f.ranking!.measures) {
        assert.ok(x.pValue > 0.05 && !x.flagged, `control ${x.metric} ${x.target} @${x.k}: p = ${x.pValue}`);
      }
      for (const x of b.ranking!.measures.filter((m) => m.k === 20)) {
        assert.ok(x.pValue < 0.01 && x.flagged, `biased ${x.metric} ${x.target}: p = ${x.pValue}`);
        assert.ok(x.mean > x.nullMean && x.ci95[0] > x.nullMean, `${x.metric} ${x.target}: ${x.ci95} vs null ${x.nullMean}`);
      }
      // The control is not 0 against equal opportunity (30/70 groups), only no larger than chance.
      const eo = f.ranking!.measures.find((m) => m.metric === "maxSkew" && m.target === "equalOpportunity" && m.k === 400)!;
      close(eo.mean, Math.log(0.7 / 0.5), 1e-9);
      await assertRejectsOneLine(() => runFairnessAudit(fair, data, test.groups, { ...fakeAuditOptions(fair), ranking: { queries: ["a {} thing."] } }), /ranking\.queries: query 0 "a \{\} thing\." holds a "\{\}" placeholder/);
    } finally {
      fair.dispose();
      biased.dispose();
    }
  });
});

describe("fairnessSection with the ranking measures", () => {
  it("a table row per measure with the targets' names, a chart per metric with the null means", async () => {
    const { fairnessSection } = await import("../../src/report/sections/fairness");
    const test = plantedTestSet(fakeImages(100), { seed: 2 });
    const m = fakeAuditModel(1.5, 0.8);
    try {
      const r = await runFairnessAudit(m, fakeDataset(test.data), test.groups, { ...fakeAuditOptions(m), bootstrap: 50, permutations: 50, weatPermutations: 100, ranking: { queries: NEUTRAL_QUERIES, k: [10, 1000] } });
      const s = fairnessSection(r, { queriesName: "fake", note: "Report settings: quick." });
      const table = s.blocks.find((b) => b.kind === "table" && b.caption === "Ranking bias over neutral queries");
      assert.ok(table && table.kind === "table");
      assert.equal(table.rows.length, r.ranking!.measures.length);
      assert.equal(table.rows.length, 2 * 2 * 2, "2 k x 2 targets x 2 metrics of one attribute");
      assert.ok(table.rows.some((row) => row[2] === "equal opportunity (eq_opp)") && table.rows.some((row) => row[2] === "demographic parity (dem_par)"));
      const figs = s.blocks.filter((b) => b.kind === "figure");
      assert.equal(figs.length, 1 + 1 + 2, "per-group rates, the FairFace chart of the one attribute, MaxSkew and NDKL");
      const skew = figs[figs.length - 2];
      assert.ok(skew.kind === "figure" && skew.figure.data.length === 4, "two targets, each with its null mean");
      const text = s.blocks.filter((b) => b.kind === "text").map((b) => (b.kind === "text" ? b.text : "")).join("\n");
      assert.match(text, /"fake" set/);
      assert.match(text, /At k = N MaxSkew against demographic parity is 0 by construction/);
      assert.match(text, /Report settings: quick\./);
      // The study section: the measures of every run, and the sweep against rho.
      const { fairnessStudySection } = await import("../../src/report/sections/fairness");
      const acc = { value: 0.8, ci95: [0.7, 0.9] as [number, number] };
      const study = fairnessStudySection([{ rho: 0.5, remedy: "none", cleanAccuracy: acc, audit: r }, { rho: 0.9, remedy: "none", cleanAccuracy: acc, audit: r }]);
      const per = study.blocks.find((b) => b.kind === "table" && b.caption === "Ranking bias per run");
      assert.ok(per && per.kind === "table" && per.rows.length === 2 * r.ranking!.measures.length);
      const vsRho = study.blocks.filter((b) => b.kind === "figure").pop();
      assert.ok(vsRho && vsRho.kind === "figure" && vsRho.figure.data.length === r.ranking!.measures.length, "one line per (metric, target, k)");
    } finally {
      m.dispose();
    }
  });
});
