/** The robustness audit on the curated public API (src/index.ts): its entry points, and the `robustness` namespace. */
import { it } from "node:test";
import assert from "node:assert/strict";
import * as cliplab from "../../src/index";

it("src/index.ts exports the robustness audit", () => {
  for (const n of ["auditRobustness", "robustnessSection"]) assert.equal(typeof (cliplab as Record<string, unknown>)[n], "function", n);
  const names = [
    "corrupt", "listCorruptions", "listCorruptionSets", "resolveCorruptions", "scaledParameters", "fgsm", "pgd", "apgd", "apgdCe", "apgdT",
    "compareCorruptionErrors", "tecoaFineTune", "compareRobustness", "zeroShotLoss", "zeroShotLogitsFn",
  ];
  for (const n of names) assert.equal(typeof (cliplab.robustness as Record<string, unknown>)[n], "function", `robustness.${n}`);
  assert.equal("toModelInput" in cliplab.robustness, false, "toModelInput is internal");
  assert.ok(cliplab.robustness.listCorruptions().length >= 10);
  assert.equal(cliplab.robustness.listCorruptions("imagenet-c").length, 15);
  assert.deepEqual([...cliplab.robustness.ATTACK_NAMES], ["fgsm", "pgd", "apgd-ce", "apgd-t"]);
});
