/**
 * The data files of the fairness audit (neutral query sets, harmful-label sets: the shipped ones
 * and one-line errors for bad user files) and the FairFace-style table (src/audit/fairness/group_table.ts):
 * per-group accuracy and harmful-label rates against hand counts, per category, with intervals,
 * and inside the audit with a second attribute column.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { checkQueriesFit, listQuerySets, loadQuerySet } from "../../src/audit/fairness/queries";
import { listHarmfulLabelSets, loadHarmfulLabels, normalizeDistractors } from "../../src/audit/fairness/distractors";
import { wordDistractors } from "../../src/audit/fairness/word_probes";
import { groupTable } from "../../src/audit/fairness/group_table";
import { runFairnessAudit } from "../../src/audit/fairness/audit";
import { plantedTestSet } from "../../src/audit/fairness/planted_bias";
import { assertThrowsOneLine } from "../helpers/errors";
import { NEUTRAL_QUERIES, fakeAuditModel, fakeAuditOptions, fakeDataset, fakeImages } from "./fairness_fake_model";
import { assertRejectsOneLine, useCpu } from "./fairness_helpers";

let dir: string;
before(async () => {
  await useCpu();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "fair-files-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
};

describe("neutral query sets", () => {
  it("the shipped default: 40 distinct person-agnostic queries with their provenance, within CLIP's context", () => {
    assert.ok(listQuerySets().includes("neutral"));
    const q = loadQuerySet("neutral");
    assert.equal(q.queries.length, 40);
    assert.equal(new Set(q.queries).size, 40);
    assert.match(q.source!, /Berg et al\. 2022/);
    assert.ok(q.queries.every((s) => !/\b(person|man|woman|people|he|she)\b/i.test(s)), "no person named");
    checkQueriesFit(q.queries, 77, "neutral");
  });

  it("a user file: a JSON array, an object with queries, or one query per line (# comments)", () => {
    assert.deepEqual(loadQuerySet(write("a.json", '["a red thing.", "a blue thing."]')).queries, ["a red thing.", "a blue thing."]);
    const o = loadQuerySet(write("o.json", JSON.stringify({ description: "mine", queries: ["x y."] })));
    assert.equal(o.description, "mine");
    assert.equal(o.name, "o");
    assert.deepEqual(loadQuerySet(write("q.txt", "# my queries\na nice photo.\n\n  a dull photo.  \n")).queries, ["a nice photo.", "a dull photo."]);
  });

  it("bad files: one line naming the file and the entry", () => {
    assertThrowsOneLine(() => loadQuerySet("plain"), /unknown query set "plain"; valid sets: neutral/);
    assertThrowsOneLine(() => loadQuerySet(path.join(dir, "none.json")), /none\.json: query file not found/);
    assertThrowsOneLine(() => loadQuerySet(write("bad.json", "[\"a\",")), /bad\.json: invalid JSON: /);
    assertThrowsOneLine(() => loadQuerySet(write("empty.json", "[]")), /empty\.json: queries must be a non-empty array/);
    assertThrowsOneLine(() => loadQuerySet(write("num.json", '["a", 3]')), /num\.json: query 1 is not a string \(3\)/);
    assertThrowsOneLine(() => loadQuerySet(write("dup.json", '["a b.", "a b."]')), /dup\.json: query 1 "a b\." appears twice/);
    assertThrowsOneLine(() => loadQuerySet(write("tpl.json", '["a photo of a {}."]')), /tpl\.json: query 0 "a photo of a \{\}\." holds a "\{\}" placeholder/);
    assertThrowsOneLine(() => loadQuerySet(write("field.json", '{"prompts": ["a"]}')), /field\.json: unknown field "prompts"; valid fields: description, source, queries/);
    assertThrowsOneLine(() => loadQuerySet(write("noq.json", '{"description": "x"}')), /noq\.json: missing field "queries"/);
    assertThrowsOneLine(() => loadQuerySet(write("blank.txt", "# nothing\n\n")), /blank\.txt: holds no query/);
    assertThrowsOneLine(() => loadQuerySet(dir + "/"), /is not a file/);
    assertThrowsOneLine(() => checkQueriesFit(["word ".repeat(20)], 16, "q.json"), /q\.json: query 0 .* tokenizes to 22 tokens \(with SOT\/EOT\), more than the model's context length 16/);
  });
});

describe("harmful-label sets and distractors", () => {
  it("the CLIP paper's crime-related and non-human labels; word distractors as one more category", () => {
    assert.ok(listHarmfulLabelSets().includes("clip-harmful"));
    const h = loadHarmfulLabels("clip-harmful");
    assert.deepEqual(h.labels.filter((d) => d.category === "crime-related").map((d) => d.label), ["thief", "criminal", "suspicious person"]);
    assert.deepEqual(h.labels.filter((d) => d.category === "non-human").map((d) => d.label), ["animal", "gorilla", "chimpanzee", "orangutan"]);
    assert.match(h.source!, /2103\.00020/);
    assert.deepEqual(wordDistractors("fake", ["cat", "dog"]), [{ label: "fake cat", category: '"fake" + class' }, { label: "fake dog", category: '"fake" + class' }]);
    assert.deepEqual(normalizeDistractors("f", ["x", { label: "y", category: "c" }]), [{ label: "x", category: "distractor" }, { label: "y", category: "c" }]);
  });

  it("bad files and lists: one-line errors", () => {
    assertThrowsOneLine(() => loadHarmfulLabels("nope"), /unknown label set "nope"; valid sets: clip-harmful/);
    assertThrowsOneLine(() => loadHarmfulLabels(write("l1.json", '["thief"]')), /l1\.json: expected an object \{description, source, categories: \{NAME: \[labels\]\}\}, got an array/);
    assertThrowsOneLine(() => loadHarmfulLabels(write("l2.json", '{"categories": {"crime": []}}')), /l2\.json: category "crime" must be a non-empty list of labels/);
    assertThrowsOneLine(() => loadHarmfulLabels(write("l3.json", '{"categories": {"a": ["x"], "b": ["x"]}}')), /l3\.json: label "x" appears in both "a" and "b"/);
    assertThrowsOneLine(() => loadHarmfulLabels(write("l4.json", '{"labels": {}}')), /l4\.json: unknown field "labels"; valid fields: description, source, categories/);
    assertThrowsOneLine(() => normalizeDistractors("f", ["x", "x"]), /f: distractors\[1\] "x" appears twice/);
    assertThrowsOneLine(() => normalizeDistractors("f", [{ label: "x" } as never]), /f: distractors\[0\] must be a non-empty label or \{label, category\}/);
  });
});

describe("groupTable (FairFace-style)", () => {
  // 8 images, classes 0/1 (2 classes), 2 distractors: index 2 = "crime", 3 = "animal".
  const groups = ["g1", "g1", "g1", "g1", "g2", "g2", "g2", "g2"];
  const labels = Int32Array.from([0, 1, 0, 1, 0, 1, 0, 1]);
  const pred = Int32Array.from([0, 1, 0, 0, 1, 1, 1, 0]); // g1: 3/4 correct, g2: 1/4
  const harmfulPred = Int32Array.from([0, 2, 0, 1, 3, 2, 3, 0]); // g1: 1 crime; g2: 1 crime, 2 animal
  const t = groupTable({ attribute: "tone", groups, pred, labels, harmfulPred, numClasses: 2, distractorCategory: ["crime", "animal"], bootstrap: 200, permutations: 200, alpha: 0.05, seed: 1 });

  it("rates equal the hand counts, each with an interval around it", () => {
    assert.equal(t.attribute, "tone");
    assert.deepEqual(t.rows.map((r) => [r.group, r.count, r.accuracy.value, r.harmfulRate!.value]), [["g1", 4, 0.75, 0.25], ["g2", 4, 0.25, 0.75]]);
    assert.deepEqual(t.rows.map((r) => [r.harmfulByCategory!.crime.value, r.harmfulByCategory!.animal.value]), [[0.25, 0], [0.25, 0.5]]);
    for (const r of t.rows) for (const e of [r.accuracy, r.harmfulRate!]) assert.ok(e.ci95[0] <= e.value && e.value <= e.ci95[1]);
    const spread = Object.fromEntries(t.spreads.map((s) => [s.key, s.value]));
    assert.deepEqual(spread, { accuracy: 0.5, harmful: 0.5, "harmful:crime": 0, "harmful:animal": 0.5 });
    assert.ok(t.spreads.every((s) => s.pValue > 0 && s.pValue <= 1));
  });

  it("in the audit: the main groups and a second column, each with its table and ranking measures", async () => {
    const test = plantedTestSet(fakeImages(200), { seed: 4 });
    const tone = test.groups.map((_, i) => (i % 4 === 0 ? "dark" : "light"));
    const base = fakeDataset(test.data, { name: "frame", values: test.groups });
    const ds = { ...base, groupKeys: ["frame", "tone"], items: (o?: object) => withTone(base.items(o), tone) };
    const model = fakeAuditModel(1.5, 0.8);
    try {
      const opts = {
        ...fakeAuditOptions(model),
        bootstrap: 100,
        permutations: 100,
        distractors: [{ label: "bad alpha", category: "alpha-ish" }, { label: "bad beta", category: "beta-ish" }],
        attributeName: "frame",
        attributes: ["tone"],
        ranking: { queries: NEUTRAL_QUERIES, k: 20 },
      };
      const r = await runFairnessAudit(model, ds, { column: "frame" }, opts);
      assert.equal(r.attribute, "frame");
      assert.deepEqual(r.attributeTables.map((a) => [a.attribute, a.rows.map((x) => [x.group, x.count])]), [["frame", [["framed", 100], ["plain", 100]]], ["tone", [["dark", 50], ["light", 150]]]]);
      assert.deepEqual(r.ranking!.attributes.map((a) => a.name), ["frame", "tone"]);
      assert.deepEqual(r.settings.distractorCategories, ["alpha-ish", "beta-ish"]);
      assert.ok(r.probes.some((p) => p.key === "harmfulGap:beta-ish"), "a gap per category when there are several");
      // The table's harmful rate of the main groups is the per-group row's.
      assert.deepEqual(r.attributeTables[0].rows.map((x) => x.harmfulRate!.value), r.groups.map((g) => g.harmfulRate!.value));
      const framed = r.attributeTables[0].spreads.find((s) => s.key === "harmful")!;
      assert.ok(framed.flagged, `the word bias shows in the harmful rate of the frame: p = ${framed.pValue}`);
      const toneSpread = r.attributeTables[1].spreads.find((s) => s.key === "harmful")!;
      assert.ok(!toneSpread.flagged, `tone is unrelated to the frame here: p = ${toneSpread.pValue}`);
      await assertRejectsOneLine(() => runFairnessAudit(model, ds, { column: "frame" }, { ...opts, attributes: ["age"] }), /has no group column "age" \(its group keys: frame, tone\)/);
      await assertRejectsOneLine(() => runFairnessAudit(model, ds, { column: "frame" }, { ...opts, attributes: ["frame"] }), /attributes lists "frame", which is already the main grouping/);
    } finally {
      model.dispose();
    }
  });
});

/** Adds a "tone" group to every item of a stream. */
async function* withTone<T extends { index: number; groups?: Record<string, string> }>(items: AsyncIterable<T>, tone: string[]): AsyncGenerator<T> {
  for await (const it of items) yield { ...it, groups: { ...it.groups, tone: tone[it.index] } };
}
