/**
 * Fine-tuning on a generated captioned image folder: from a checkpoint (`init`) retrieval
 * improves, the evaluation reports CLIP_benchmark's metric names (eval.arrow and the epoch
 * events), a resumed run repeats the uninterrupted one, and a corrupt image mid-epoch is a
 * one-line error naming it (or skipped with skipBadImages) that never loses the last good checkpoint.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { initBackend } from "../../src/backend/select";
import { Clip } from "../../src/model/clip";
import { getModelConfig } from "../../src/model/registry";
import { openDataset } from "../../src/data/open";
import { DataError, type Dataset, type SkippedItem } from "../../src/data/dataset";
import { loadCheckpoint, saveCheckpoint } from "../../src/io/checkpoint";
import { evaluateOnDataset } from "../../src/train/evaluate";
import { trainClip, type EpochEvent } from "../../src/train/trainer";
import { readEvalRecords, readStepRecords } from "../../src/train/run_state";
import { tmpDir } from "../helpers/fixtures";
import { writeCaptionedFolder } from "./captioned_folder";

const TINY = (() => {
  const cfg = getModelConfig("ViT-Tiny-28");
  cfg.vision_cfg.width = 32;
  cfg.vision_cfg.layers = 1;
  cfg.text_cfg.width = 32;
  cfg.text_cfg.layers = 1;
  cfg.embed_dim = 32;
  return cfg;
})();

const RUN = { batchSize: 16, lr: 2e-3, warmupSteps: 2, evalLimit: 32, finalEvalLimit: 32, retrievalLimit: 32, seed: 1 };

let train: Dataset;
let val: Dataset;
let initFile: string;

before(async () => {
  await initBackend({ prefer: "wasm" });
  const root = tmpDir();
  train = await openDataset(await writeCaptionedFolder(path.join(root, "train"), { count: 64, seed: 1 }));
  val = await openDataset(await writeCaptionedFolder(path.join(root, "val"), { count: 32, seed: 2 }));
  // The starting checkpoint, in half precision (any precision the loader reads).
  const start = Clip.create(TINY, { seed: 11 });
  initFile = path.join(root, "start", "model.safetensors");
  await saveCheckpoint(start, initFile, { dtype: "F16" });
  start.dispose();
});

const evalOpts = { zeroShotLimit: 32, retrievalLimit: 32, seed: RUN.seed + 1 };
const recall = (m: Record<string, number>) => (m["image_retrieval_recall@5"] + m["text_retrieval_recall@5"]) / 2;

describe("fine-tuning from a checkpoint on a captioned image folder", () => {
  it("improves retrieval, and reports CLIP_benchmark's metric names per epoch", async () => {
    const start = await loadCheckpoint(initFile);
    const before = await evaluateOnDataset(start, val, evalOpts);
    start.dispose();
    const dir = tmpDir();
    const epochs: EpochEvent[] = [];
    const r = await trainClip({ ...RUN, init: initFile, epochs: 8, outDir: dir }, { onEpochEnd: (e) => epochs.push(e) }, { train, val });
    r.model.dispose();
    const after = r.final.metrics;
    assert.ok(recall(after) > recall(before.metrics) + 0.15, `recall@5 ${recall(before.metrics).toFixed(3)} -> ${recall(after).toFixed(3)}`);
    // Labelled (shape folders) and captioned: both kinds of metrics, under CLIP_benchmark's names.
    for (const k of ["acc1", "acc5", "mean_per_class_recall", "image_retrieval_recall@1", "image_retrieval_recall@5", "image_retrieval_recall@10", "text_retrieval_recall@1", "text_retrieval_recall@10"]) {
      assert.ok(k in after && after[k] >= 0 && after[k] <= 1, k);
      assert.ok(epochs.every((e) => k in e.eval.metrics), `epoch events carry ${k}`);
    }
    assert.equal(epochs.length, 8);
    const rows = readEvalRecords(dir);
    assert.equal(rows.length, 8);
    assert.equal(rows[7].metrics["image_retrieval_recall@5"], Math.fround(after["image_retrieval_recall@5"]));
    assert.equal(rows[7].recallAt5TextToImage, Math.fround(r.final.recallAt5.textToImage), "our fields stay");
    // The run folder loads in open_clip's layout: its config is split into model_cfg and preprocess_cfg.
    const oc = JSON.parse(fs.readFileSync(path.join(dir, "open_clip_config.json"), "utf8"));
    assert.deepEqual(Object.keys(oc.model_cfg).sort(), ["embed_dim", "quick_gelu", "text_cfg", "vision_cfg"]);
    assert.equal(oc.model_cfg.vision_cfg.width, 32);
  });

  it("takes the config from the checkpoint; a different --model is a one-line error naming the field", async () => {
    await assert.rejects(
      trainClip({ ...RUN, init: initFile, model: "ViT-Tiny-28", maxSteps: 1 }, {}, { train, val }),
      /^RangeError: train: model ViT-Tiny-28 differs from .*model\.safetensors's config at embed_dim \(128 vs 32 in the checkpoint\); leave model out/,
    );
    const same = await trainClip({ ...RUN, init: initFile, model: TINY, maxSteps: 1 }, {}, { train, val });
    assert.deepEqual(same.model.config.vision_cfg, TINY.vision_cfg);
    same.model.dispose();
  });

  it("resumes exactly on an image folder", async () => {
    const opts = { ...RUN, init: initFile, epochs: 2, augment: { shift: 2 } };
    const whole = await trainClip(opts, {}, { train });
    whole.model.dispose();
    const dir = tmpDir();
    const first = await trainClip({ ...opts, outDir: dir, stopAfterSteps: 3 }, {}, { train });
    first.model.dispose();
    const second = await trainClip({ ...opts, outDir: dir, resume: true }, {}, { train });
    second.model.dispose();
    assert.equal(second.steps, 8);
    assert.deepEqual(second.history.map((h) => h.loss), whole.history.map((h) => h.loss));
  });

  it("a corrupt image mid-epoch: a one-line error naming it with the last good checkpoint kept, or skipped with skipBadImages", async () => {
    const root = tmpDir();
    // 32 images, batches of 8: image 21 is in a batch after the first checkpoints.
    const bad = await openDataset(await writeCaptionedFolder(root, { count: 32, seed: 3, corrupt: [21] }));
    const badFile = path.join(root, "square", "img0021.png");
    const dir = tmpDir();
    let failure: Error | undefined;
    try {
      (await trainClip({ ...RUN, batchSize: 8, init: initFile, epochs: 3, outDir: dir, checkpointEvery: 1 }, {}, { train: bad })).model.dispose();
    } catch (err) {
      failure = err as Error;
    }
    assert.ok(failure instanceof DataError, String(failure));
    assert.ok(!failure.message.includes("\n"), "one line");
    assert.ok(failure.message.startsWith(badFile), failure.message);
    assert.match(failure.message, /; last good checkpoint: .*model\.safetensors \(step \d+\)$/);
    const steps = readStepRecords(dir).map((s) => s.step);
    assert.ok(steps.length >= 1, "steps before the bad batch were checkpointed");
    const kept = await loadCheckpoint(path.join(dir, "model.safetensors"));
    assert.ok(kept.stateDict().every((t) => t.data.every(Number.isFinite)));
    kept.dispose();
    const skipped: SkippedItem[] = [];
    const r = await trainClip({ ...RUN, batchSize: 8, init: initFile, epochs: 3 }, {}, { train: bad, skipBadImages: true, onSkip: (s) => skipped.push(s) });
    r.model.dispose();
    assert.equal(r.steps, 12);
    assert.ok(skipped.length >= 3 && skipped.every((s) => s.key === badFile), JSON.stringify(skipped.slice(0, 2)));
  });
});
