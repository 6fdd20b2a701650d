/** The typed-array layout loop must reproduce umap-js's own optimisation bit for bit. */
import { it } from "node:test";
import assert from "node:assert/strict";
import { UMAP } from "umap-js";
import { Random } from "../../src/util/random";
import { layoutProblem } from "../../src/viz/umap_layout";
import { optimizeLayout2d } from "../../src/viz/umap_sgd";

/** 120 points in 6-D: three blobs, plus a duplicated point (distance 0 edges). */
function data(): number[][] {
  const rng = new Random(3);
  const pts = Array.from({ length: 120 }, (_, i) => Array.from({ length: 6 }, (_, d) => (d === i % 3 ? 4 : 0) + rng.normal()));
  pts[119] = [...pts[0]];
  return pts;
}

function fitted(seed: number): { umap: UMAP; rng: Random } {
  const rng = new Random(seed);
  const umap = new UMAP({ nComponents: 2, nNeighbors: 8, minDist: 0.1, nEpochs: 60, random: () => rng.next() });
  umap.initializeFit(data());
  return { umap, rng };
}

it("optimizeLayout2d equals umap-js's step() loop exactly, including its random draws", async () => {
  const ref = fitted(11);
  for (let e = 0; e < 60; e++) ref.umap.step();
  const expected = ref.umap.getEmbedding();

  const ours = fitted(11);
  const start = ours.umap.getEmbedding();
  const flat = new Float64Array(start.length * 2);
  start.forEach((p, i) => flat.set(p, 2 * i));
  let epochs = 0;
  await optimizeLayout2d(flat, layoutProblem(ours.umap), () => ours.rng.next(), (done) => {
    epochs = done;
  });
  assert.equal(epochs, 60);
  const moved = expected.some((p, i) => p[0] !== start[i][0]);
  assert.ok(moved, "the reference layout moved");
  for (let i = 0; i < expected.length; i++) {
    assert.equal(flat[2 * i], expected[i][0], `point ${i} x`);
    assert.equal(flat[2 * i + 1], expected[i][1], `point ${i} y`);
  }
  // Both consumed the same number of draws.
  assert.equal(ours.rng.next(), ref.rng.next());
});
