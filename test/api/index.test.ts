/** The curated entry point exports the names other code is promised (issue-fixed API). */
import { it } from "node:test";
import assert from "node:assert/strict";
import * as cliplab from "../../src";

it("src/index.ts exports the public API", () => {
  const names = [
    "loadCheckpoint", "saveCheckpoint", "tokenize", "clipLoss", "sigLipLoss", "Clip", "initBackend",
    "listModels", "getModelConfig", "addModelConfig", "zeroShotClassifier", "recallAtK", "trainClip", "loadImages",
  ];
  for (const n of names) assert.equal(typeof (cliplab as Record<string, unknown>)[n], "function", n);
  for (const m of ["encodeImage", "encodeText", "forward", "dispose"]) assert.equal(typeof (cliplab.Clip.prototype as any)[m], "function", m);
});
