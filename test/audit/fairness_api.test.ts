/** The fairness audit's issue-fixed names are on the public entry point. */
import { it } from "node:test";
import assert from "node:assert/strict";
import * as cliplab from "../../src";

it("src/index.ts exports the fairness API", () => {
  const names = [
    "maxSkewAtK", "ndkl", "weatEffectSize", "demographicParityDifference", "equalizedOddsGap", "projectionDebias",
    "bootstrapCi", "permutationTest", "plantBias", "plantedTestSet", "balancedResample", "groupInvarianceRegularizer",
    "runFairnessAudit", "zeroShotAccuracy", "trainPlanted", "auditPlanted", "fairnessSection", "fairnessStudySection",
    "rankingBias", "loadQuerySet", "loadHarmfulLabels", "groupTable", "wordDistractors",
  ];
  for (const n of names) assert.equal(typeof (cliplab as Record<string, unknown>)[n], "function", n);
});
