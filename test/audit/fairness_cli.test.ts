/**
 * `cliplab audit fairness`, in-process: on the tiny reference checkpoint and the first Fashion-MNIST
 * test images, and on an image folder and a CSV source at 64 px with a random-init checkpoint.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCli } from "../helpers/cli";
import { saveCheckpoint } from "../../src/io/checkpoint";
import { tiny64, writeShapeFolder } from "./fairness_images";

const CHECKPOINT = path.join(__dirname, "..", "fixtures", "tiny_vit.safetensors");

describe("cliplab audit fairness", () => {
  it("--groups planted:border: every probe with interval and p-value; --json ends with the result", async () => {
    const r = await runCli(["audit", "fairness", "--checkpoint", CHECKPOINT, "--groups", "planted:border", "--limit", "60", "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.out[0], /on 60 images of fashion-mnist: framed 30, plain 30; focus framed/);
    assert.ok(r.out.some((l) => /equalised-odds gap \(shirt\): -?\d\.\d{3} \[/.test(l)), r.out.join("\n"));
    const json = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(json.n, 60);
    assert.equal(json.skipped, 0);
    assert.ok(json.probes.length >= 9);
    assert.ok(json.probes.every((p: { pValue: number }) => p.pValue > 0 && p.pValue <= 1));
    assert.equal(typeof json.cleanAccuracy.value, "number");
  });

  it("--groups file:PATH reads one label per line; --focus picks the group", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fair-cli-"));
    const file = path.join(dir, "groups.txt");
    fs.writeFileSync(file, Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? "left" : "right")).join("\n") + "\n");
    const r = await runCli(["audit", "fairness", "--checkpoint", CHECKPOINT, "--groups", `file:${file}`, "--limit", "40", "--focus", "right"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.out[0], /left 10, right 30; focus right/);
    const short = await runCli(["audit", "fairness", "--checkpoint", CHECKPOINT, "--groups", `file:${file}`, "--limit", "50"]);
    assert.equal(short.code, 2);
    assert.match(short.err[0], /holds 40 labels, but 50 images are audited/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("usage errors: exit 2 with one line naming the option", async () => {
    const cases: [string[], RegExp][] = [
      [["--groups", "planted:border"], /--checkpoint is required/],
      [["--checkpoint", CHECKPOINT], /--groups is required \(column:NAME, planted:border, file:PATH\)/],
      [["--checkpoint", CHECKPOINT, "--groups", "tint"], /--groups must be column:NAME, planted:border, file:PATH, got "tint"/],
      [["--checkpoint", CHECKPOINT, "--groups", "planted:border", "--positive-class", "12"], /--positive-class must be a class index 0-9, got 12/],
      [["--checkpoint", CHECKPOINT, "--groups", "planted:border", "--focus", "tinted", "--limit", "20"], /--focus "tinted" is not a group here \(groups: framed, plain\)/],
      [["--checkpoint", CHECKPOINT, "--groups", "file:/nonexistent/groups.txt"], /file not found/],
      [["--checkpoint", CHECKPOINT, "--groups", "column:skin"], /--groups column:skin: fashion-mnist has no group column "skin" \(its group keys: none\)$/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(["audit", "fairness", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err.join("\n")}`);
      assert.match(r.err[0], re);
      assert.equal(r.err.filter((l) => l.startsWith("cliplab audit:")).length, 1, "one error line");
    }
  });
});

describe("cliplab audit fairness on an image folder and a CSV at 64 px", () => {
  let dir: string;
  let checkpoint: string;
  let folder: string;
  let files: string[];
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "fair-cli-64-"));
    folder = path.join(dir, "shapes");
    files = await writeShapeFolder(folder, 10, [64, 96], 4);
    const clip = tiny64(2);
    checkpoint = path.join(dir, "tiny64.safetensors");
    await saveCheckpoint(clip, checkpoint);
    clip.dispose();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const quick = ["--limit", "20", "--seed", "1", "--json"];

  it("imagefolder with --groups planted:border and file:PATH; --templates and --skip-bad-images; skipped in the JSON", async () => {
    const planted = await runCli(["audit", "fairness", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--groups", "planted:border", ...quick]);
    assert.equal(planted.code, 0, planted.err.join("\n"));
    assert.match(planted.out[0], /on 20 images of imagefolder:.*: framed 10, plain 10; focus framed/);
    const pj = JSON.parse(planted.out[planted.out.length - 1]);
    assert.equal(pj.positiveClassName, "disc", "class 0 by default outside Fashion-MNIST");
    assert.ok(pj.settings.distractors.includes("counterfeit square"), "--word defaults to counterfeit");
    assert.equal(typeof pj.cleanAccuracy.value, "number");

    const broken = path.join(dir, "broken");
    fs.cpSync(folder, broken, { recursive: true });
    fs.writeFileSync(path.join(broken, path.relative(folder, files[3])), "broken");
    const labels = path.join(dir, "groups.json");
    fs.writeFileSync(labels, JSON.stringify(files.map((_, i) => (i % 2 ? "b" : "a"))));
    const listed = await runCli(["audit", "fairness", "--checkpoint", checkpoint, "--data", `imagefolder:${broken}`, "--groups", `file:${labels}`, "--templates", "plain", "--skip-bad-images", ...quick]);
    assert.equal(listed.code, 0, listed.err.join("\n"));
    assert.ok(listed.err.some((l) => /^skipped .*003\.png: /.test(l)), listed.err.join("\n"));
    const lj = JSON.parse(listed.out[listed.out.length - 1]);
    assert.equal(lj.n, 19);
    assert.equal(lj.skipped, 1);
    assert.deepEqual(lj.groups.map((g: { group: string; count: number }) => [g.group, g.count]), [["a", 10], ["b", 9]]);
    const strict = await runCli(["audit", "fairness", "--checkpoint", checkpoint, "--data", `imagefolder:${broken}`, "--groups", `file:${labels}`, ...quick]);
    assert.equal(strict.code, 1);
    assert.match(strict.err[strict.err.length - 1], /^cliplab audit: .*003\.png/);
    const noColumn = await runCli(["audit", "fairness", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--groups", "column:skin"]);
    assert.equal(noColumn.code, 2);
    assert.match(noColumn.err[0], /has no group column "skin" \(its group keys: none\)$/);
  });

  it("csv with --csv-label-key and --groups column:NAME (read without --csv-group-keys); a missing column lists the group keys", async () => {
    const tsv = path.join(dir, "shapes.tsv");
    const rows = files.map((f, i) => [path.relative(dir, f), `shape ${i}, “quoted”`, path.basename(path.dirname(f)), i % 5 === 0 ? "dark" : "light"].join("\t"));
    fs.writeFileSync(tsv, ["filepath\ttitle\tshape\tskin", ...rows].join("\n") + "\n");
    const r = await runCli(["audit", "fairness", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--csv-label-key", "shape", "--groups", "column:skin", "--positive-class", "1", ...quick]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.out[0], /dark 4, light 16; focus dark/);
    const json = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(json.positiveClassName, "square");
    assert.equal(json.skipped, 0);
    const missing = await runCli(["audit", "fairness", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--csv-label-key", "shape", "--csv-group-keys", "skin", "--groups", "column:age"]);
    assert.equal(missing.code, 2);
    assert.match(missing.err[0], /--groups column:age: csv:.*shapes\.tsv has no group column "age" \(its group keys: skin\)$/);
    const absent = await runCli(["audit", "fairness", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--csv-label-key", "shape", "--groups", "column:age"]);
    assert.notEqual(absent.code, 0);
    assert.match(absent.err[absent.err.length - 1], /age/);
  });

  it("--groups column:A,B --queries FILE --k: Berg et al.'s measures and the FairFace-style table for each attribute", async () => {
    const tsv = path.join(dir, "two.tsv");
    const rows = files.map((f, i) => [path.relative(dir, f), `shape ${i}`, path.basename(path.dirname(f)), i % 5 === 0 ? "dark" : "light", i % 2 ? "old" : "young"].join("\t"));
    fs.writeFileSync(tsv, ["filepath\ttitle\tshape\tskin\tage", ...rows].join("\n") + "\n");
    const queries = path.join(dir, "queries.txt");
    fs.writeFileSync(queries, "# two neutral queries\na nice thing.\na dull thing.\n");
    const base = ["audit", "fairness", "--checkpoint", checkpoint, "--data", `csv:${tsv}`, "--csv-label-key", "shape", "--bootstrap", "50", "--permutations", "50"];
    const r = await runCli([...base, "--groups", "column:skin,age", "--queries", queries, "--k", "5,1000", ...quick]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const json = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(json.attribute, "skin");
    assert.deepEqual(json.settings.attributes, ["age"]);
    assert.deepEqual(json.ranking.queries, ["a nice thing.", "a dull thing."]);
    assert.deepEqual(json.ranking.settings.k, [5, 20], "1000 capped at the 20 images");
    assert.deepEqual(json.ranking.attributes.map((a: { name: string }) => a.name), ["skin", "age"]);
    assert.equal(json.ranking.measures.length, 2 * 2 * 2 * 2, "2 attributes x 2 k x 2 targets x 2 metrics");
    assert.deepEqual(json.attributeTables.map((t: { attribute: string; rows: { group: string; count: number }[] }) => [t.attribute, t.rows.map((x) => [x.group, x.count])]), [["skin", [["dark", 4], ["light", 16]]], ["age", [["old", 10], ["young", 10]]]]);
    assert.ok(json.settings.distractors.includes("thief") && json.settings.distractors.includes("counterfeit disc"), "the CLIP paper's labels and the word's");
    assert.ok(json.settings.distractorCategories.includes("non-human"));
    assert.ok(r.out.some((l) => /^ +(FLAGGED )?age MaxSkew@5 eq_opp: \d\.\d{3} \[.*\] null \d\.\d{3} p=/.test(l)), r.out.join("\n"));
    assert.ok(r.out.some((l) => /^by age \(zero-shot accuracy, harmful-label rate, 95% CI\):$/.test(l)));

    const none = await runCli([...base, "--groups", "column:skin", "--queries", "none", "--harmful", "none", "--resample", "images", ...quick]);
    assert.equal(none.code, 0, none.err.join("\n"));
    const nj = JSON.parse(none.out[none.out.length - 1]);
    assert.equal(nj.ranking, undefined);
    assert.ok(nj.settings.distractors.every((d: string) => d.startsWith("counterfeit ")), "--harmful none: the word's distractors only");
  });

  it("--queries, --harmful, --k and --resample errors: exit 2 with one line naming the file or flag", async () => {
    const bad = path.join(dir, "bad-queries.json");
    fs.writeFileSync(bad, JSON.stringify(["a photo of a {}."]));
    const long = path.join(dir, "long.txt");
    fs.writeFileSync(long, "a very long neutral query about an object that goes on and on and on\n");
    const labels = path.join(dir, "labels.json");
    fs.writeFileSync(labels, JSON.stringify({ categories: { crime: [] } }));
    const base = ["audit", "fairness", "--checkpoint", checkpoint, "--data", `imagefolder:${folder}`, "--groups", "planted:border", "--limit", "20"];
    const cases: [string[], RegExp][] = [
      [["--queries", "people"], /^cliplab audit: --queries people: unknown query set "people"; valid sets: neutral/],
      [["--queries", bad], /--queries .*bad-queries\.json: .*query 0 "a photo of a \{\}\." holds a "\{\}" placeholder/],
      [["--queries", path.join(dir, "missing.txt")], /missing\.txt: query file not found/],
      [["--queries", long], /--queries: .*long\.txt: query 0 .* tokenizes to \d+ tokens \(with SOT\/EOT\), more than the model's context length 16/],
      [["--k", "0"], /--k must be positive integers separated by commas, got "0"/],
      [["--queries", "none", "--k", "10"], /--k is the ranking probe's cut-off; it does not go with --queries none/],
      [["--resample", "pixels"], /--resample must be queries or images, got "pixels"/],
      [["--harmful", "slurs"], /--harmful slurs: unknown label set "slurs"; valid sets: clip-harmful/],
      [["--harmful", labels], /labels\.json: category "crime" must be a non-empty list of labels/],
      [["--groups", "column:skin,,age"], /--groups column:NAME\[,NAME\.\.\.\]: empty column name/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli([...base, ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err.join("\n")}`);
      const line = r.err.filter((l) => l.startsWith("cliplab audit:"));
      assert.equal(line.length, 1, `one error line: ${r.err.join("\n")}`);
      assert.match(line[0], re);
    }
  });
});
