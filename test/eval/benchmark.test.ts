/** CLIP_benchmark's metric names and multi-caption retrieval, on hand-computed toys. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { classificationBenchmarkMetrics, retrievalBenchmarkMetrics } from "../../src/eval/benchmark";
import { useTestBackend } from "./fake_clip";

before(useTestBackend);

const m = (rows: number[][]) => ({ values: Float32Array.from(rows.flat()), n: rows.length, dim: rows[0].length });

describe("CLIP_benchmark metrics", () => {
  it("classification: acc1, acc5, mean_per_class_recall", () => {
    const e = { top1: 0.5, top5: 1, perClass: [1, 0], meanPerClass: 0.5, confusion: [], support: [], n: 2 };
    assert.deepEqual(classificationBenchmarkMetrics(e), { acc1: 0.5, acc5: 1, mean_per_class_recall: 0.5 });
  });

  it("retrieval: a hit when any of an image's captions is in the top K", () => {
    // Three images on the axes; image 0 has captions 0 and 1, image 1 caption 2, image 2 caption 3.
    const images = m([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    // caption 0 is closest to image 1 (a miss at K=1 for text->image), caption 1 to image 0,
    // caption 2 to image 1, caption 3 closest to image 0 then image 2.
    const texts = m([[0.1, 1, 0], [1, 0, 0], [0, 1, 0.1], [1, 0, 0.9]]);
    const r = retrievalBenchmarkMetrics(images, texts, Int32Array.from([0, 0, 1, 2]), [1, 2]);
    // text -> image: captions 1 and 2 hit at 1; 0 and 3 at 2.
    assert.equal(r["image_retrieval_recall@1"], 0.5);
    assert.equal(r["image_retrieval_recall@2"], 1);
    // image -> text: image 0's caption 1 is exact; image 1's caption 2 ties caption 0 (cos 0.995
    // each; a tie counts for the target); image 2 scores [0, 0, 0.0995, 0.669]: caption 3 first.
    assert.equal(r["text_retrieval_recall@1"], 1);
    assert.throws(() => retrievalBenchmarkMetrics(images, texts, Int32Array.from([0, 0, 1, 7])), /text 3 links to image 7, outside \[0, 3\)/);
  });
});
