/** `cliplab train` and `cliplab eval` in-process, on a small Fashion-MNIST slice written as IDX files. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli as run } from "../helpers/cli";
import { tmpDir } from "../helpers/fixtures";
import { sliceDataDir } from "../helpers/data";

describe("cliplab train / eval", () => {
  const data = sliceDataDir(256, 100);
  const runDir = path.join(tmpDir(), "run");

  it("trains, checkpoints, and prints the JSON summary last", async () => {
    const r = await run(["train", "--max-steps", "4", "--batch", "32", "--data-dir", data, "--out", runDir, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    for (const key of ["steps", "epochs", "pairsPerSecond", "wallSeconds", "finalLoss", "checkpoint", "zeroShotTop1"]) assert.ok(key in summary, key);
    assert.equal(summary.steps, 4);
    assert.equal(summary.checkpoint, path.join(runDir, "model.safetensors"));
    assert.ok(summary.zeroShotTop1 >= 0 && summary.zeroShotTop1 <= 1);
    assert.ok(r.err.some((l) => /^training [\d,]+ parameters for 4 steps/.test(l)));
  });

  it("resumes a finished run without training further", async () => {
    const r = await run(["train", "--max-steps", "4", "--batch", "32", "--data-dir", data, "--out", runDir, "--resume", "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.equal(JSON.parse(r.out[r.out.length - 1]).steps, 4);
    const changed = await run(["train", "--max-steps", "4", "--batch", "16", "--data-dir", data, "--out", runDir, "--resume"]);
    assert.equal(changed.code, 1);
    assert.match(changed.err[changed.err.length - 1], /^cliplab train: cannot resume .*: option batchSize was 32, now 16$/);
  });

  it("evaluates a checkpoint", async () => {
    const r = await run(["eval", "--checkpoint", path.join(runDir, "model.safetensors"), "--data-dir", data, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const e = JSON.parse(r.out[r.out.length - 1]);
    // CLIP_benchmark's result object.
    assert.equal(e.task, "zeroshot_classification");
    assert.equal(e.dataset, "fashion-mnist-test");
    assert.ok(e.metrics.acc1 <= e.metrics.acc5);
    assert.ok(e.metrics.mean_per_class_recall >= 0 && e.metrics.mean_per_class_recall <= 1);
    const retrieval = await run(["eval", "--checkpoint", path.join(runDir, "model.safetensors"), "--data-dir", data, "--task", "zeroshot_retrieval", "--json"]);
    assert.equal(retrieval.code, 0, retrieval.err.join("\n"));
    const m = JSON.parse(retrieval.out[retrieval.out.length - 1]).metrics;
    assert.ok("image_retrieval_recall@1" in m && "text_retrieval_recall@5" in m);
  });

  it("bad arguments exit 2, bad files exit 1 with one line", async () => {
    assert.equal((await run(["train", "--loss", "hinge"])).code, 2);
    assert.equal((await run(["train", "--resume"])).code, 2);
    assert.equal((await run(["train", "--batch", "0"])).code, 2);
    const missing = await run(["eval", "--checkpoint", path.join(data, "nope.safetensors")]);
    assert.equal(missing.code, 1);
    assert.match(missing.err[missing.err.length - 1], /^cliplab eval: .*nope\.safetensors/);
    const noData = await run(["train", "--max-steps", "1", "--data-dir", path.join(data, "absent"), "--out", path.join(tmpDir(), "x")]);
    assert.equal(noData.code, 1);
    assert.match(noData.err[noData.err.length - 1], /^cliplab train: .*absent.*(dataset-fashion-mnist|--data-dir)/);
  });
});
