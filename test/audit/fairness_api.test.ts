/** The fairness audit on the curated public API: its entry points, the `fairness` namespace, and its statistics in `stats`. */
import { it } from "node:test";
import assert from "node:assert/strict";
import * as cliplab from "../../src/index";

it("src/index.ts exports the fairness API", () => {
  for (const n of ["runFairnessAudit", "fairnessSection"]) assert.equal(typeof (cliplab as Record<string, unknown>)[n], "function", n);
  const names = [
    "maxSkewAtK", "ndkl", "weatEffectSize", "demographicParityDifference", "equalizedOddsGap", "projectionDebias",
    "plantBias", "plantedTestSet", "balancedResample", "groupInvarianceRegularizer",
    "zeroShotAccuracy", "trainPlanted", "auditPlanted", "fairnessStudySection",
    "rankingBias", "loadQuerySet", "loadHarmfulLabels", "groupTable", "wordDistractors", "wordProbeOptions",
  ];
  for (const n of names) assert.equal(typeof (cliplab.fairness as Record<string, unknown>)[n], "function", `fairness.${n}`);
  for (const n of ["bootstrapCi", "permutationTest"]) assert.equal(typeof (cliplab.stats as Record<string, unknown>)[n], "function", `stats.${n}`);
  for (const n of ["stampBorder", "FRAMED", "PLAIN"]) assert.equal(n in cliplab.fairness, false, `${n} is internal`);
});
