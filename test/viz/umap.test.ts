/** UMAP layout (seeded, separates clusters) and the embedding map figure built from it. */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { umapLayout } from "../../src/viz/umap_layout";
import { embeddingScatter, embeddingUmap } from "../../src/viz/embedding_map";
import { Random } from "../../src/util/random";
import { useTestBackend } from "../eval/fake_clip";
import { assertThrowsOneLine } from "../helpers/errors";

before(useTestBackend);

/** `perCluster` points around each of `centres` random unit directions in `d` dims. */
function clusters(centres: number, perCluster: number, d: number, noise: number, seed: number): { x: tf.Tensor2D; labels: number[] } {
  const rng = new Random(seed);
  const c = Array.from({ length: centres }, () => Array.from({ length: d }, () => rng.normal()));
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < centres * perCluster; i++) {
    const k = i % centres;
    rows.push(c[k].map((v) => v + noise * rng.normal()));
    labels.push(k);
  }
  return { x: tf.tensor2d(rows), labels };
}

/** Fraction of points whose nearest other point in 2-D has the same label. */
function neighbourAgreement(coords: Float32Array, labels: number[]): number {
  let same = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = -1;
    let bestD = Infinity;
    for (let j = 0; j < labels.length; j++) {
      if (j === i) continue;
      const d = (coords[2 * i] - coords[2 * j]) ** 2 + (coords[2 * i + 1] - coords[2 * j + 1]) ** 2;
      if (d < bestD) [best, bestD] = [j, d];
    }
    if (labels[best] === labels[i]) same++;
  }
  return same / labels.length;
}

describe("umapLayout", () => {
  it("is reproducible from its seed and keeps clusters apart", async () => {
    const { x, labels } = clusters(4, 30, 16, 0.3, 1);
    const start = tf.memory().numTensors;
    const a = await umapLayout(x, { seed: 7, nEpochs: 100, nNeighbors: 10 });
    const b = await umapLayout(x, { seed: 7, nEpochs: 100, nNeighbors: 10 });
    const c = await umapLayout(x, { seed: 8, nEpochs: 100, nNeighbors: 10 });
    assert.equal(tf.memory().numTensors, start, "no tensors left behind");
    assert.equal(a.coords.length, 240);
    assert.ok(a.coords.every(Number.isFinite));
    assert.deepEqual(a.coords, b.coords, "same seed, same layout");
    assert.notDeepEqual(a.coords, c.coords, "another seed, another layout");
    assert.equal(a.nEpochs, 100);
    assert.ok(neighbourAgreement(a.coords, labels) > 0.95, `2-D neighbours share the cluster: ${neighbourAgreement(a.coords, labels)}`);
    x.dispose();
  });

  it("reports progress and rejects too few points in one line", async () => {
    const { x } = clusters(2, 10, 4, 0.1, 2);
    const stages: string[] = [];
    await umapLayout(x, { nNeighbors: 5, nEpochs: 30, onProgress: (e) => stages.push(e.stage) });
    assert.deepEqual([...new Set(stages)], ["knn", "graph", "layout", "done"]);
    await assert.rejects(umapLayout(x, { nNeighbors: 20 }), /^RangeError: umapLayout: needs more points than nNeighbors \(20\), got 20; lower nNeighbors$/);
    await assert.rejects(umapLayout(x, { nEpochs: 0 }), /^RangeError: umapLayout: nEpochs must be a positive integer, got 0$/);
    x.dispose();
  });
});

describe("embeddingUmap / embeddingScatter", () => {
  const classNames = ["cat", "<script>alert(1)</script>"];

  it("draws images and texts together: colour by class, symbol by modality, escaped hover, thumbnails", async () => {
    const img = clusters(2, 20, 8, 0.2, 3);
    const txt = tf.tensor2d([[...Array(8).keys()], [...Array(8).keys()].reverse()]);
    const start = tf.memory().numTensors;
    const thumb = "data:image/png;base64,AAAA";
    const { figure, layout } = await embeddingUmap(
      {
        classNames,
        groups: [
          { name: "images", modality: "image", embeddings: img.x, labels: img.labels, thumbnails: img.labels.map(() => thumb) },
          { name: "prompts", modality: "text", embeddings: txt, labels: [0, 1], hover: ["a cat", "a <b>bold</b> & odd prompt"] },
        ],
      },
      { nNeighbors: 5, nEpochs: 20, seed: 1, title: "map <i>" },
    );
    assert.equal(tf.memory().numTensors, start);
    assert.equal(layout.n, 42);
    assert.equal(figure.hoverImages, true);
    const points = figure.data.filter((t) => (t.x as unknown[])[0] !== null);
    assert.equal(points.length, 4, "one trace per (group, class)");
    assert.equal(points.reduce((n, t) => n + (t.x as number[]).length, 0), 42);
    const [imgCat, imgOther, txtCat] = points;
    assert.equal((imgCat.marker as any).color, (txtCat.marker as any).color, "colour follows the class");
    assert.notEqual((imgCat.marker as any).color, (imgOther.marker as any).color);
    assert.equal((imgCat.marker as any).symbol, "circle");
    assert.equal((txtCat.marker as any).symbol, "diamond");
    assert.equal(imgOther.name, "&lt;script&gt;alert(1)&lt;/script&gt;");
    assert.deepEqual(imgCat.customdata, Array(20).fill(thumb));
    assert.ok(!("customdata" in txtCat));
    const texts = points.flatMap((t) => t.text as string[]);
    assert.ok(texts.includes("prompts · &lt;script&gt;alert(1)&lt;/script&gt;<br>a &lt;b&gt;bold&lt;/b&gt; &amp; odd prompt"));
    assert.ok(!JSON.stringify(figure).includes("<script>"), "no raw markup from the inputs");
    assert.equal((figure.layout!.title as any).text, "map &lt;i&gt;");
    const legend = figure.data.filter((t) => (t.x as unknown[])[0] === null).map((t) => t.name);
    assert.deepEqual(legend, ["images (image)", "prompts (text)"]);
    tf.dispose([img.x, txt]);
  });

  it("rejects inconsistent input in one line", async () => {
    const a = tf.zeros([3, 4]) as tf.Tensor2D;
    const b = tf.zeros([2, 5]) as tf.Tensor2D;
    await assert.rejects(
      embeddingUmap({ classNames: ["x"], groups: [{ name: "a", modality: "image", embeddings: a, labels: [0, 0, 0] }, { name: "b", modality: "text", embeddings: b, labels: [0, 0] }] }),
      /^RangeError: embeddingUmap: group 1 \("b"\) has dimension 5, group 0 has 4$/,
    );
    await assert.rejects(
      embeddingUmap({ classNames: ["x"], groups: [{ name: "a", modality: "image", embeddings: a, labels: [0, 1, 0] }] }),
      /^RangeError: embeddingUmap: group 0 \("a"\): label 1 is 1, expected an integer in \[0, 1\)$/,
    );
    assertThrowsOneLine(() => embeddingScatter(new Float32Array(4), ["x"], [{ name: "a", modality: "image", labels: [0, 0, 0] }]), /^embeddingScatter: coords has 4 values, expected 2 per point = 6$/);
    assertThrowsOneLine(() => embeddingScatter(new Float32Array(2), ["x"], [{ name: "a", modality: "audio" as "image", labels: [0] }]), /modality must be "image" or "text", got "audio"$/);
    tf.dispose([a, b]);
  });
});
