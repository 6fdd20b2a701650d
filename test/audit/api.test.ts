/** The robustness audit's names are part of the curated public API (src/index.ts, "Audits"). */
import { it } from "node:test";
import assert from "node:assert/strict";
import * as cliplab from "../../src";

it("src/index.ts exports the robustness audit", () => {
  const names = [
    "corrupt", "listCorruptions", "listCorruptionSets", "resolveCorruptions", "scaledParameters", "fgsm", "pgd", "apgd", "apgdCe", "apgdT",
    "auditRobustness", "compareCorruptionErrors", "robustnessSection", "tecoaFineTune", "compareRobustness", "zeroShotLoss", "zeroShotLogitsFn", "toModelInput",
  ];
  for (const n of names) assert.equal(typeof (cliplab as Record<string, unknown>)[n], "function", n);
  assert.ok(cliplab.listCorruptions().length >= 10);
  assert.equal(cliplab.listCorruptions("imagenet-c").length, 15);
  assert.deepEqual([...cliplab.ATTACK_NAMES], ["fgsm", "pgd", "apgd-ce", "apgd-t"]);
});
