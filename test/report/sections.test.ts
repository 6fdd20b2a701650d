/**
 * The report's section choice (src/report/sections/select.ts), the held-out split the prompt study uses
 * on a single dataset (src/report/holdout.ts), and the groups a dataset carries itself.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { DataItem, Dataset } from "../../src/data/dataset";
import { readIndexed } from "../../src/data/dataset";
import { REPORT_SECTIONS, parseSections, resolveSections } from "../../src/report/sections/select";
import { holdoutSplit } from "../../src/report/holdout";
import { datasetGroups } from "../../src/report/pipeline_audits";
import { assertThrowsOneLine } from "../helpers/errors";

function fake(n: number, opts: { labels?: boolean; groupKeys?: string[] } = {}): Dataset {
  const labels = opts.labels ?? true;
  const item = (i: number): DataItem => ({ key: `x${i}`, index: i, image: { kind: "bytes", bytes: new Uint8Array(0) } as never, label: labels ? i % 3 : undefined, captions: [] });
  return {
    spec: "fake",
    name: "fake",
    classNames: labels ? ["a", "b", "c"] : undefined,
    groupKeys: opts.groupKeys ?? [],
    hasCaptions: false,
    hasLabels: labels,
    size: n,
    items: (o) => readIndexed(n, async (i) => item(i), o),
  };
}

async function indices(ds: Dataset, limit?: number): Promise<number[]> {
  const out: number[] = [];
  for await (const it of ds.items({ limit })) out.push(it.index);
  return out;
}

describe("report sections", () => {
  it("parseSections checks the names and returns them in report order", () => {
    assert.deepEqual(parseSections("fairness, zeroshot,training"), ["training", "zeroshot", "fairness"]);
    assert.deepEqual(REPORT_SECTIONS, ["training", "embedding", "zeroshot", "retrieval", "prompts", "robustness", "fairness"]);
    assertThrowsOneLine(() => parseSections("zeroshot,umap"), /--sections: unknown section "umap"; valid sections: training, embedding, zeroshot, retrieval, prompts, robustness, fairness/);
    assertThrowsOneLine(() => parseSections(" , "), /--sections must name at least one of/);
  });

  it("by default every section the data supports: audits need labels, fairness also groups", () => {
    assert.deepEqual(resolveSections(fake(9), undefined, false), ["training", "embedding", "zeroshot", "retrieval", "prompts", "robustness"]);
    assert.deepEqual(resolveSections(fake(9), undefined, true), [...REPORT_SECTIONS]);
    assert.deepEqual(resolveSections(fake(9, { labels: false }), undefined, true), ["training", "embedding", "retrieval"]);
    assertThrowsOneLine(() => resolveSections(fake(9), ["zeroshot", "fairness"], false), /section fairness: fake has no group column \(give --groups column:NAME, planted:border or file:PATH\)/);
    assertThrowsOneLine(() => resolveSections(fake(9, { labels: false }), ["robustness"], false), /section robustness: fake has no labels with class names/);
  });

  it("datasetGroups: the first group column is the main grouping, the others further attributes", () => {
    assert.equal(datasetGroups(fake(3)), undefined);
    assert.deepEqual(datasetGroups(fake(3, { groupKeys: ["tone", "age"] })), { source: { column: "tone" }, name: "tone", attributes: ["age"] });
  });
});

describe("holdoutSplit", () => {
  it("two disjoint parts, half of each class at random (seeded), with their own limits and sizes", async () => {
    const ds = fake(400);
    const pass = { indices: Int32Array.from({ length: 399 }, (_, i) => i), labels: Int32Array.from({ length: 399 }, (_, i) => i % 3) };
    const { selection, test } = holdoutSplit(ds, pass, 3);
    const a = await indices(selection);
    const b = await indices(test);
    assert.equal(a.length + b.length, 399, "item 399 was not in the label pass: in neither part");
    assert.equal(new Set([...a, ...b]).size, 399, "disjoint");
    for (let c = 0; c < 3; c++) assert.equal(b.filter((i) => i % 3 === c).length, 67, `class ${c}: round(133 / 2) in the test part`);
    assert.equal(selection.size, a.length);
    assert.equal(test.size, b.length);
    assert.deepEqual(await indices(test, 5), b.slice(0, 5));
    assert.deepEqual(await indices(holdoutSplit(ds, pass, 3).test), b, "the same seed, the same split");
    assert.notDeepEqual(await indices(holdoutSplit(ds, pass, 4).test), b);
    assert.match(test.spec, /^fake \(test half\)$/);
    assertThrowsOneLine(() => holdoutSplit(ds, pass, 0, 1), /testShare must be in \(0, 1\), got 1/);
  });
});
