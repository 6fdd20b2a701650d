/** The figure builders: structure, escaping of labels, checks. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { similarityHeatmap } from "../../src/viz/similarity_heatmap";
import { confusionMatrix } from "../../src/viz/confusion_matrix";
import { wilsonInterval } from "../../src/eval/intervals";
import { barWithCI } from "../../src/viz/bar_ci";
import { smooth, trainingCurves } from "../../src/viz/training_curves";
import { readTrainingHistory } from "../../src/train/history";
import { writeEvalRecords, writeStepRecords } from "../../src/train/run_state";
import { assertThrowsOneLine } from "../helpers/errors";
import { tmpDir } from "../helpers/fixtures";
import { useTestBackend } from "../eval/fake_clip";

before(useTestBackend);

const EVIL = "<script>alert(1)</script>";
const ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;";

describe("similarityHeatmap", () => {
  it("keeps repeated labels as separate rows and escapes them", () => {
    const sim = tf.tensor2d([[0.9, 0.1, 0.2], [0.3, 0.8, 0.4]]);
    const fig = similarityHeatmap(sim, ["img 1", "img 1"], ["a", EVIL, "c"], { title: "T" });
    sim.dispose();
    const h = fig.data[0] as any;
    assert.equal(h.type, "heatmap");
    assert.deepEqual(h.y, [0, 1]);
    assert.deepEqual((fig.layout!.yaxis as any).ticktext, ["img 1", "img 1"]);
    assert.equal((fig.layout!.xaxis as any).ticktext[1], ESCAPED);
    assert.ok(Math.abs(h.z[1][1] - 0.8) < 1e-6);
    assert.ok(h.texttemplate, "small matrices write their values");
    assert.ok(!JSON.stringify(fig).includes("<script>"));
  });

  it("rejects mismatched labels and ragged rows in one line", () => {
    assertThrowsOneLine(() => similarityHeatmap([[1, 2]], ["a", "b"], ["x", "y"]), /^similarityHeatmap: rowLabels has 2 entries, expected 1$/);
    assertThrowsOneLine(() => similarityHeatmap([[1, 2], [3]], ["a", "b"], ["x", "y"]), /^similarityHeatmap: similarity row 1 has 1 values, row 0 has 2$/);
    assertThrowsOneLine(() => similarityHeatmap([[1, NaN]], ["a"], ["x", "y"]), /^similarityHeatmap: similarity\[0\]\[1\] is NaN, expected a number$/);
  });
});

describe("confusionMatrix", () => {
  it("normalises rows, keeps counts in the hover, escapes class names", () => {
    const fig = confusionMatrix([[3, 1], [0, 0]], ["ok", EVIL]);
    const h = fig.data[0] as any;
    assert.deepEqual(h.z, [[0.75, 0.25], [0, 0]]);
    assert.equal(h.text[0][1], `true ok<br>predicted ${ESCAPED}<br>1 of 4 images`);
    assert.deepEqual((fig.layout!.xaxis as any).ticktext, ["ok", ESCAPED]);
    assert.deepEqual((confusionMatrix([[3, 1], [0, 2]], ["a", "b"], { normalize: "none" }).data[0] as any).z, [[3, 1], [0, 2]]);
  });

  it("rejects non-square or negative input in one line", () => {
    assertThrowsOneLine(() => confusionMatrix([[1, 2, 3], [1, 2, 3]], ["a", "b"]), /^confusionMatrix: confusion must be square, got 2 x 3$/);
    assertThrowsOneLine(() => confusionMatrix([[1, -2], [1, 2]], ["a", "b"]), /^confusionMatrix: confusion\[0\]\[1\] is -2, expected a count >= 0$/);
    assertThrowsOneLine(() => confusionMatrix([[1]], ["a", "b"]), /^confusionMatrix: classNames has 2 entries, expected 1$/);
  });
});

describe("barWithCI and wilsonInterval", () => {
  it("turns intervals into asymmetric error bars", () => {
    const fig = barWithCI(["a", EVIL], [0.5, 0.9], [[0.4, 0.55], [0.8, 1]], { percent: true, title: "acc" });
    const bar = fig.data[0] as any;
    const e = bar.error_y;
    assert.equal(e.symmetric, false);
    assert.ok(Math.abs(e.array[0] - 0.05) < 1e-12 && Math.abs(e.arrayminus[0] - 0.1) < 1e-12);
    assert.ok(Math.abs(e.array[1] - 0.1) < 1e-12 && Math.abs(e.arrayminus[1] - 0.1) < 1e-12);
    assert.deepEqual((fig.layout!.xaxis as any).ticktext, ["a", ESCAPED]);
    assert.deepEqual(bar.customdata, ["40.0% – 55.0%", "80.0% – 100.0%"]);
    assert.ok(!("error_y" in (barWithCI(["a"], [1]).data[0] as object)), "no intervals, no error bars");
  });

  it("rejects intervals that miss their value", () => {
    assertThrowsOneLine(() => barWithCI(["a"], [0.5], [[0.6, 0.7]]), /^barWithCI: interval 0 \("a"\) \[0.6, 0.7\] does not contain its value 0.5$/);
    assertThrowsOneLine(() => barWithCI(["a", "b"], [0.5], undefined), /^barWithCI: 1 values for 2 labels$/);
  });

  it("Wilson intervals match hand values and stay in [0, 1]", () => {
    // 8 of 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416 = 0.71678, half 0.22657 -> [0.4902, 0.9433].
    const [lo, hi] = wilsonInterval(8, 10);
    assert.ok(Math.abs(lo - 0.4902) < 1e-3 && Math.abs(hi - 0.9433) < 1e-3, `${lo} ${hi}`);
    const [lo0, hi0] = wilsonInterval(0, 20);
    assert.equal(lo0, 0);
    assert.ok(hi0 > 0.1 && hi0 < 0.2);
    assert.ok(wilsonInterval(20, 20)[1] <= 1);
    assert.ok(wilsonInterval(0, 0).every(Number.isNaN));
    assertThrowsOneLine(() => wilsonInterval(3, 2), /^wilsonInterval: need 0 <= successes <= n, got successes 3, n 2$/);
  });
});

describe("trainingCurves", () => {
  const steps = Array.from({ length: 6 }, (_, i) => ({ step: i, epoch: 0, loss: 4 - i * 0.5, lr: 1e-3 * (i + 1), logitScale: Math.log(14 + i), gradNorm: 1, seconds: 0.1 }));
  const evals = [{ epoch: 0, step: 6, zeroShotTop1: 0.5, zeroShotTop5: 0.9, recallAt1ImageToText: 0.1, recallAt1TextToImage: 0.2, recallAt5ImageToText: 0.3, recallAt5TextToImage: 0.4, trainSeconds: 1 }];

  it("reads a run directory's Arrow files and plots the four panels", () => {
    const dir = path.join(tmpDir(), "run");
    require("node:fs").mkdirSync(dir);
    writeStepRecords(dir, steps);
    writeEvalRecords(dir, evals);
    const h = readTrainingHistory(dir);
    assert.equal(h.steps.length, 6);
    assert.ok(Math.abs(h.steps[2].lr - 3e-3) < 1e-9);
    assert.equal(h.evals.length, 1);
    assert.ok(Math.abs(h.evals[0].zeroShotTop1 - 0.5) < 1e-6);
    assert.equal(h.evals[0].step, 6);

    const fig = trainingCurves(h.steps, h.evals);
    const byName = new Map(fig.data.map((t) => [t.name as string, t]));
    assert.deepEqual(byName.get("loss")!.x, [1, 2, 3, 4, 5, 6], "after N steps");
    assert.ok(Math.abs((byName.get("temperature exp(t)")!.y as number[])[3] - 17) < 1e-4);
    assert.equal(byName.get("learning rate")!.yaxis, "y2");
    assert.equal(byName.get("zero-shot top-1")!.yaxis, "y4");
    assert.deepEqual(byName.get("zero-shot top-1")!.x, [6]);
  });

  it("smooths with bias correction (a constant stays constant)", () => {
    assert.deepEqual(smooth([2, 2, 2], 0.9).map((v) => Math.round(v * 1e9) / 1e9), [2, 2, 2]);
    const s = smooth([0, 10], 0.5); // avg 0 -> 0/(0.5); then 5 / 0.75
    assert.ok(Math.abs(s[1] - 5 / 0.75) < 1e-12);
    assertThrowsOneLine(() => trainingCurves(steps, [], { smoothing: 1 }), /^trainingCurves: smoothing must be in \[0, 1\), got 1$/);
    assertThrowsOneLine(() => readTrainingHistory("/nonexistent/run"), /^readTrainingHistory: \/nonexistent\/run is not a directory$/);
  });
});
