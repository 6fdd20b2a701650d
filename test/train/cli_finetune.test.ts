/**
 * `cliplab train` with open_clip's fine-tuning flags, in-process: --init from a checkpoint folder
 * with --lock-image, --accum-freq, --grad-checkpointing and the const-cooldown schedule on a
 * captioned image folder; the CLIP_benchmark names in the epoch lines and the JSON; usage errors.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli as run } from "../helpers/cli";
import { tmpDir } from "../helpers/fixtures";
import { initBackend } from "../../src/backend/select";
import { Clip } from "../../src/model/clip";
import { loadCheckpoint, saveCheckpoint } from "../../src/io/checkpoint";
import { readStepRecords } from "../../src/train/run_state";
import { writeCaptionedFolder } from "./captioned_folder";

const root = tmpDir();
let data: string;
let initDir: string;

before(async () => {
  await initBackend({ prefer: "wasm" });
  data = await writeCaptionedFolder(path.join(root, "data"), { count: 32, seed: 4 });
  // A hub-style folder: the weights and open_clip_config.json side by side.
  initDir = path.join(root, "init");
  const clip = Clip.create("ViT-Tiny-28", { seed: 2 });
  await saveCheckpoint(clip, path.join(initDir, "model.safetensors"), { openClipConfig: true });
  clip.dispose();
});

describe("cliplab train: fine-tuning flags", () => {
  it("--init FOLDER --lock-image --accum-freq 2 --grad-checkpointing --lr-scheduler const-cooldown", async () => {
    const out = path.join(root, "run");
    const r = await run([
      "train", "--init", initDir, "--data", data, "--val-data", data, "--epochs", "2", "--batch-size", "8", "--accum-freq", "2",
      "--lock-image", "--grad-checkpointing", "--lr", "1e-3", "--warmup", "1", "--wd", "0.1",
      "--lr-scheduler", "const-cooldown", "--epochs-cooldown", "1", "--lr-cooldown-end", "1e-4", "--out", out, "--json",
    ]);
    assert.equal(r.code, 0, r.err.join("\n"));
    // 32 images, 16 per step (8 x 2 micro-batches): 2 steps per epoch; the image tower is not trained.
    assert.ok(r.err.some((l) => /^training [\d,]+ of [\d,]+ parameters for 4 steps \(2 per epoch\) from .*init$/.test(l)), r.err.join("\n"));
    assert.ok(r.err.some((l) => /^epoch 1 on 32 validation images: acc1 [\d.]+%, mean_per_class_recall [\d.]+%, image_retrieval_recall@1 [\d.]+%/.test(l)), r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(summary.steps, 4);
    assert.ok(summary.metrics["text_retrieval_recall@5"] >= 0);
    // const-cooldown: flat after the warm-up, then a linear cooldown over the last epoch to 1e-4.
    const lrs = readStepRecords(out).map((s) => s.lr);
    assert.deepEqual(lrs.map((x) => Number(x.toPrecision(6))), [0.001, 0.001, 0.001, 0.00055]);
    // The locked tower is bit-identical to the checkpoint it started from.
    const [a, b] = [await loadCheckpoint(initDir), await loadCheckpoint(path.join(out, "model.safetensors"))];
    for (const t of a.stateDict()) if (t.name.startsWith("visual.")) assert.deepEqual(b.params.get(t.name)!.dataSync(), a.params.get(t.name)!.dataSync(), t.name);
    a.dispose();
    b.dispose();
    assert.ok(fs.existsSync(path.join(out, "open_clip_config.json")));
  });

  it("usage errors exit 2 with one line", async () => {
    const cases: [string[], RegExp][] = [
      [["--lr-scheduler", "linear"], /--lr-scheduler must be one of cosine, const, const-cooldown, got linear/],
      [["--lr-scheduler", "const-cooldown"], /needs --epochs-cooldown/],
      [["--lock-image-unlocked-groups", "1"], /--lock-image-unlocked-groups needs --lock-image/],
      [["--accum-freq", "0"], /--accum-freq must be an integer >= 1, got 0/],
      [["--batch", "8", "--batch-size", "16"], /--batch-size and --batch are the same flag/],
      [["--wd=-1"], /--wd must be a number >= 0, got -1/],
    ];
    for (const [args, re] of cases) {
      const r = await run(["train", "--max-steps", "1", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err.join("\n")}`);
      assert.match(r.err[0], re); // then the usage
      assert.ok(!r.err[0].includes("\n"));
    }
  });
});
