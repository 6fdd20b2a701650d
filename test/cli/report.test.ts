/**
 * `cliplab report --quick` in-process on a small Fashion-MNIST slice, and `--checkpoint F --data
 * SPEC` with a tiny 64 px model on an image folder and an open_clip TSV: the HTML files it writes,
 * opened in headless Chromium. By default a labelled source also gets the prompt study and the
 * robustness audit, and a source with a group column the fairness audit; the tests that pin the
 * base report name its four sections with --sections.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli as run } from "../helpers/cli";
import { plotlyBundle } from "../../src/viz/html";
import { tmpDir } from "../helpers/fixtures";
import { sliceDataDir } from "../helpers/data";
import { checkHtmlFiles } from "../../scripts/lib/browser_check";
import sharp from "sharp";
import { initBackend } from "../../src/backend/select";
import { SHAPES, saveTiny64, shapePng, writeShapeFolder, writeShapeTsv } from "../report/shapes_data";

const MARK = plotlyBundle().code.slice(1000, 1200);
const count = (s: string, sub: string) => s.split(sub).length - 1;

/** The JSON payload of every figure script, checked to contain no raw '<'. */
function figurePayloads(html: string): any[] {
  const out: any[] = [];
  for (const m of html.matchAll(/<script>cliplabPlot\("(figure-\d+)", (.*?)\);<\/script>/g)) {
    assert.ok(!m[2].includes("<"), `${m[1]}: no raw '<' in the figure data`);
    out.push(JSON.parse(m[2]));
  }
  return out;
}

/** The audits' section titles (their own section builders). */
const PROMPTS_TITLE = "Zero-shot classification, prompt ensembling and prompt tuning";
const ROBUSTNESS_TITLE = "Robustness: corruptions and adversarial attacks";
let mainFigures = 0;

describe("cliplab report", () => {
  const data = sliceDataDir(256, 240);
  const dir = tmpDir();
  const runDir = path.join(dir, "run");
  const out = path.join(dir, "reports", "quick.html");

  it("--train --quick trains, evaluates, maps and writes one self-contained HTML file", async () => {
    const r = await run(["report", "--train", "--quick", "--data-dir", data, "--run-dir", runDir, "--out", out, "--name", "q", "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(summary.out, out);
    assert.ok(summary.umapPoints > 200 + 10 && summary.umapPoints < 2 * 200 + 10, `200 images, the distinct ones of 200 captions, 10 class embeddings: ${summary.umapPoints}`);
    assert.ok(summary.modalityGap.trained > 0 && summary.modalityGap.trained < 2);
    assert.ok(summary.modalityGap.initial > 0 && summary.modalityGap.initial < 2);
    assert.notEqual(summary.modalityGap.trained, summary.modalityGap.initial, "training moved the embeddings");
    assert.equal(summary.zeroShotImages, 240);
    assert.ok(fs.existsSync(path.join(runDir, "model.safetensors")));
    assert.ok(r.err.some((l) => /^training [\d,]+ parameters for 8 steps/.test(l)));
    assert.ok(r.err.some((l) => l.startsWith(`UMAP of ${summary.umapPoints} points`)));

    const html = fs.readFileSync(out, "utf8");
    // The main job's report holds the audits the data supports: Fashion-MNIST has labels, no groups.
    assert.deepEqual([...html.matchAll(/<h2>(.*?)<\/h2>/g)].map((m) => m[1]), ["Training", "Embedding space", "Zero-shot classification", "Retrieval", PROMPTS_TITLE, ROBUSTNESS_TITLE]);
    assert.deepEqual(summary.sections, ["training", "embedding", "zeroshot", "retrieval", "prompts", "robustness"]);
    assert.ok(summary.audits.prompts.seconds > 0 && summary.audits.robustness.cleanTop1 >= 0);
    assert.ok(html.includes("Settings chosen for the report: "), "each audit says its settings");
    assert.equal(count(html, MARK), 1, "plotly.js inlined once");
    const figures = figurePayloads(html);
    assert.ok(figures.length > 5 + 2, "curves, UMAP, confusion, per-class bars, heatmap, then the audits' figures");
    mainFigures = figures.length;
    assert.equal(count(html, 'class="cliplab-figure"'), figures.length, "one div per figure");
    assert.equal(count(html, "<script"), 2 + figures.length, "the bundle, the helper, one per figure: nothing else");
    assert.ok(!/<script[^>]+src=|<link[^>]+href=/i.test(html), "nothing fetched");
    assert.ok(count(html, "<img ") >= 1, "the heatmap's image strip (and the robustness audit's examples)");

    const umap = figures[1];
    assert.equal(umap.hoverImages, true);
    const points = umap.data.filter((t: any) => t.x[0] !== null);
    assert.equal(points.reduce((n: number, t: any) => n + t.x.length, 0), summary.umapPoints);
    const captions = points.filter((t: any) => t.marker.symbol === "diamond").flatMap((t: any) => t.text);
    assert.equal(new Set(captions).size, captions.length, "each distinct caption once");
    assert.ok(points.some((t: any) => t.marker.symbol === "star"));
    assert.ok(points.filter((t: any) => t.customdata).every((t: any) => t.customdata.every((u: string) => u.startsWith("data:image/png;base64,"))));
    assert.ok(html.includes("T-shirt/top"));
    assert.ok(!html.includes("<br>T-shirt"), "hover markup lives inside escaped JSON only");
  });

  it("--checkpoint reads the run's training records", async () => {
    const out2 = path.join(dir, "reports", "ckpt.html");
    const r = await run(["report", "--checkpoint", path.join(runDir, "model.safetensors"), "--sections", "training,embedding,zeroshot,retrieval", "--quick", "--points", "60", "--data-dir", data, "--out", out2]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.out[r.out.length - 1], /^wrote .*ckpt\.html in \d+:\d\d: zero-shot top-1 [\d.]+% on 240 images; modality gap [\d.]+ \(freshly initialised: [\d.]+\); UMAP of \d+ points/);
    const html = fs.readFileSync(out2, "utf8");
    assert.ok(html.includes("<p>From checkpoint "), "training section from metrics.arrow");
    assert.equal(figurePayloads(html).length, 5);
  });

  it("both reports render every figure in headless Chromium, offline, with no JavaScript error", async () => {
    const checks = await checkHtmlFiles([out, path.join(dir, "reports", "ckpt.html")]);
    for (const [i, c] of checks.entries()) {
      assert.deepEqual(c.problems, [], `${c.file}: ${c.problems.join("; ")}`);
      assert.equal(c.figures.length, i === 0 ? mainFigures : 5, `${c.file}: figures drawn`);
      assert.ok(c.figures.every((f) => f.marks > 0));
    }
  });

  it("bad arguments exit 2, a missing checkpoint exits 1 with one line", async () => {
    assert.equal((await run(["report", "--train", "--checkpoint", "x.safetensors"])).code, 2);
    assert.equal((await run(["report", "--name", "a/b"])).code, 2);
    assert.equal((await run(["report", "--out", "x.txt"])).code, 2);
    assert.equal((await run(["report", "--points", "5"])).code, 2);
    const missing = await run(["report", "--checkpoint", path.join(dir, "nope.safetensors"), "--data-dir", data, "--out", path.join(dir, "n.html")]);
    assert.equal(missing.code, 1);
    assert.match(missing.err[missing.err.length - 1], /^cliplab report: .*nope\.safetensors/);
    assert.ok(!fs.existsSync(path.join(dir, "n.html")));
  });
});

/** The h2 titles of a report. */
const headings = (html: string) => [...html.matchAll(/<h2>(.*?)<\/h2>/g)].map((m) => m[1]);

/** The UMAP's data traces (not the legend-only ones). */
const mapPoints = (umap: any) => umap.data.filter((t: any) => t.x[0] !== null);

describe("cliplab report --checkpoint F --data SPEC (64 px model, image folder and CSV)", () => {
  const dir = tmpDir();
  const folder = path.join(dir, "shapes");
  const csvDir = path.join(dir, "csv");
  const ckpt = path.join(dir, "tiny64", "model.safetensors");
  const outs = { trained: path.join(dir, "r", "trained.html"), folder: path.join(dir, "r", "folder.html"), csv: path.join(dir, "r", "csv.html"), csvLabels: path.join(dir, "r", "csv-labels.html"), skip: path.join(dir, "r", "skip.html") };
  let tsv = "";
  before(async () => {
    await writeShapeFolder(folder, 8);
    tsv = await writeShapeTsv(csvDir, 8);
    await saveTiny64(ckpt);
  });

  it("on an image folder: zero-shot on its classes, retrieval on generated captions, RGB thumbnails of the 64 px inputs", async () => {
    const r = await run(["report", "--checkpoint", ckpt, "--data", `imagefolder:${folder}`, "--sections", "training,embedding,zeroshot,retrieval", "--quick", "--points", "24", "--out", outs.folder, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(summary.dataset, `imagefolder:${folder}`);
    assert.equal(summary.imageSize, 64);
    assert.equal(summary.zeroShotImages, 24);
    assert.ok(summary.zeroShotTop1 >= 0 && summary.zeroShotTop1 <= 1);
    assert.deepEqual(Object.keys(summary.metrics).sort(), ["acc1", "acc5", "mean_per_class_recall", ...[1, 5, 10].flatMap((k) => [`image_retrieval_recall@${k}`, `text_retrieval_recall@${k}`])].sort());
    assert.deepEqual(summary.retrieval, { images: 24, texts: 24, captions: "generated" });
    assert.equal(summary.skipped, 0);
    assert.match(r.out[r.out.length - 2], /^wrote .*folder\.html in \d+:\d\d: zero-shot top-1 [\d.]+% on 24 images; modality gap/);

    const html = fs.readFileSync(outs.folder, "utf8");
    assert.deepEqual(headings(html), ["Training", "Embedding space", "Zero-shot classification", "Retrieval"]);
    const figures = figurePayloads(html);
    assert.equal(figures.length, 4, "UMAP, confusion, per-class bars, heatmap (a bare checkpoint has no training curves)");
    const points = mapPoints(figures[0]);
    assert.equal(points.reduce((n: number, t: any) => n + t.x.length, 0), summary.umapPoints);
    assert.equal(points.filter((t: any) => t.marker.symbol === "star").reduce((n: number, t: any) => n + t.x.length, 0), 3, "one class embedding per folder");
    assert.deepEqual(figures[1].layout.xaxis.ticktext, [...SHAPES], "the confusion matrix names the folders' classes");
    const thumbs = points.filter((t: any) => t.customdata).flatMap((t: any) => t.customdata);
    assert.equal(thumbs.length, 24, "a thumbnail per image");
    const png = Buffer.from(thumbs[0].split(",")[1], "base64");
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [64, 64, 3], "the model's input, in RGB");
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.ok(data.some((v: number, i: number) => i % 3 === 0 && (v !== data[i + 1] || v !== data[i + 2])), "colour survives (not grey)");
    assert.equal(count(html, "<img "), 1, "the heatmap's image strip");
  });

  it("on a CSV without labels: retrieval on the file's own captions only, said so", async () => {
    const r = await run(["report", "--checkpoint", ckpt, "--data", `csv:${tsv}`, "--quick", "--points", "24", "--out", outs.csv, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(summary.zeroShotTop1, null);
    assert.equal(summary.zeroShotImages, 0);
    assert.deepEqual(summary.retrieval, { images: 24, texts: 24, captions: "own" });
    assert.ok(!("acc1" in summary.metrics) && "image_retrieval_recall@10" in summary.metrics);
    assert.match(r.out[r.out.length - 2], /: no labels, retrieval only: R@1 image->text [\d.]+%, text->image [\d.]+% on 24 images;/);
    assert.ok(r.err.some((l) => /no labels: retrieval only/.test(l)));
    const html = fs.readFileSync(outs.csv, "utf8");
    assert.deepEqual(headings(html), ["Training", "Embedding space", "Retrieval"]);
    const figures = figurePayloads(html);
    assert.equal(figures.length, 2, "UMAP and heatmap");
    const captions = mapPoints(figures[0]).filter((t: any) => t.marker.symbol === "diamond").flatMap((t: any) => t.text);
    assert.equal(captions.length, 24, "every own caption is distinct");
    assert.ok(captions.some((c: string) => c.includes('a square, drawn "by hand" · n°3')), "captions keep their commas, quotes and non-ASCII");
    assert.ok(!mapPoints(figures[0]).some((t: any) => t.marker.symbol === "star"), "no class embeddings without labels");
  });

  it("on a CSV with --csv-label-key: zero-shot on the label column as well", async () => {
    const r = await run(["report", "--checkpoint", ckpt, "--data", `csv:${tsv}`, "--csv-label-key", "label", "--sections", "training,embedding,zeroshot,retrieval", "--quick", "--points", "24", "--templates", "plain", "--out", outs.csvLabels, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(summary.zeroShotImages, 24);
    assert.equal(summary.retrieval.captions, "own");
    const html = fs.readFileSync(outs.csvLabels, "utf8");
    assert.deepEqual(headings(html), ["Training", "Embedding space", "Zero-shot classification", "Retrieval"]);
    assert.equal(figurePayloads(html).length, 4);
    assert.ok(html.includes("&quot;a photo of a {}.&quot;"), "the plain template set");
  });

  it("--skip-bad-images lists a corrupt image in the report and counts it in the JSON; without it, one line naming the file", async () => {
    const bad = path.join(dir, "with-bad");
    await writeShapeFolder(bad, 8);
    fs.writeFileSync(path.join(bad, "square", "broken.png"), Buffer.from("not a png at all"));
    const failed = await run(["report", "--checkpoint", ckpt, "--data", `imagefolder:${bad}`, "--quick", "--points", "24", "--out", path.join(dir, "r", "never.html")]);
    assert.equal(failed.code, 1);
    const last = failed.err[failed.err.length - 1];
    assert.match(last, /^cliplab report: .*broken\.png: /);
    assert.ok(!last.includes("\n") && !/\n\s+at /.test(failed.err.join("\n")), "one line, no stack");
    assert.ok(!fs.existsSync(path.join(dir, "r", "never.html")));

    const r = await run(["report", "--checkpoint", ckpt, "--data", `imagefolder:${bad}`, "--skip-bad-images", "--sections", "training,embedding,zeroshot,retrieval", "--quick", "--points", "24", "--out", outs.skip, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(summary.skipped, 1);
    assert.equal(summary.skippedItems.length, 1);
    assert.ok(summary.skippedItems[0].key.endsWith("broken.png"));
    assert.equal(summary.skippedItems[0].stage, "evaluation");
    assert.equal(summary.zeroShotImages, 24, "the other images all count");
    assert.ok(r.err.some((l) => /^skipped .*broken\.png \(evaluation\): /.test(l)));
    const html = fs.readFileSync(outs.skip, "utf8");
    assert.deepEqual(headings(html), ["Training", "Embedding space", "Zero-shot classification", "Retrieval", "Skipped images"]);
    assert.ok(html.includes("broken.png</td>"));
    assert.ok(html.includes("1 unreadable image left out"));
  });

  it("--train --data imagefolder:DIR --val-data SPEC trains the default recipe on the folder and reports on the validation data", async () => {
    const runDir = path.join(dir, "run-shapes");
    const r = await run(["report", "--train", "--sections", "training,embedding,zeroshot,retrieval", "--quick", "--batch", "12", "--data", `imagefolder:${folder}`, "--val-data", `csv:${tsv}`, "--csv-label-key", "label", "--run-dir", runDir, "--out", outs.trained, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(summary.source, `training run ${runDir} on imagefolder:${folder}`);
    assert.equal(summary.dataset, `csv:${tsv}`);
    assert.equal(summary.imageSize, 32, "the default recipe's input size");
    assert.ok(fs.existsSync(path.join(runDir, "model.safetensors")));
    assert.ok(r.err.some((l) => /^training [\d,]+ parameters for 4 steps \(2 per epoch\)/.test(l)), "24 images in batches of 12, two epochs");
    assert.ok(r.err.some((l) => /^epoch 1: zero-shot top-1 [\d.]+%, R@1 image->text [\d.]+% on 24 validation images$/.test(l)));
    const html = fs.readFileSync(outs.trained, "utf8");
    assert.deepEqual(headings(html), ["Training", "Embedding space", "Zero-shot classification", "Retrieval"]);
    assert.equal(figurePayloads(html).length, 5, "training curves too");
  });

  it("a source with neither labels nor captions, or a bad --data, is a one-line error before any work", async () => {
    const flat = path.join(dir, "flat");
    fs.mkdirSync(flat);
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(flat, `p${i}.png`), await shapePng(i, 40, 40, i));
    const r = await run(["report", "--checkpoint", ckpt, "--data", `imagefolder:${flat}`, "--out", path.join(dir, "r", "flat.html")]);
    assert.equal(r.code, 1);
    assert.match(r.err[r.err.length - 1], /^cliplab report: imagefolder:.*flat: has neither labels nor captions, so the report has nothing to measure/);
    const bad = await run(["report", "--checkpoint", ckpt, "--data", "photos", "--out", path.join(dir, "r", "x.html")]);
    assert.equal(bad.code, 1);
    assert.match(bad.err[bad.err.length - 1], /^cliplab report: --data "photos": unknown source kind "photos"; valid kinds: fashion-mnist, imagefolder, csv/);
    assert.equal((await run(["report", "--checkpoint", ckpt, "--val-data", `imagefolder:${folder}`])).code, 2, "--val-data is for training");
  });

  it("the image-folder, CSV and trained reports render every figure in headless Chromium, offline, with no JavaScript error", async () => {
    const checks = await checkHtmlFiles([outs.folder, outs.csv, outs.csvLabels, outs.skip, outs.trained]);
    const want = [4, 2, 4, 4, 5];
    checks.forEach((c, i) => {
      assert.deepEqual(c.problems, [], `${c.file}: ${c.problems.join("; ")}`);
      assert.equal(c.figures.length, want[i], `${c.file}: figures drawn`);
      assert.ok(c.figures.every((f) => f.marks > 0));
    });
  });
});

describe("cliplab report --sections on a CSV with group columns (64 px model)", () => {
  const dir = tmpDir();
  const ckpt = path.join(dir, "tiny64", "model.safetensors");
  const outs = { all: path.join(dir, "r", "all.html"), two: path.join(dir, "r", "two.html") };
  let tsv = "";
  before(async () => {
    await initBackend();
    tsv = await writeShapeTsv(path.join(dir, "csv"), 8, { groups: true });
    await saveTiny64(ckpt);
  });
  const data = () => ["--data", `csv:${tsv}`, "--csv-label-key", "label", "--csv-group-keys", "tone,size"];

  it("by default every section the data supports, the fairness audit by its group columns with Berg et al.'s measures", async () => {
    const r = await run(["report", "--checkpoint", ckpt, ...data(), "--quick", "--points", "24", "--out", outs.all, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.deepEqual(summary.sections, ["training", "embedding", "zeroshot", "retrieval", "prompts", "robustness", "fairness"]);
    assert.equal(summary.zeroShotImages, 24, "the zero-shot number of the same evaluation as before");
    assert.ok(Array.isArray(summary.audits.fairness.flagged));
    assert.match(r.out[r.out.length - 2], /; prompt study .*; robustness audit, clean [\d.]+% .*; fairness audit, \d+ flagged/);
    assert.ok(r.err.some((l) => l.startsWith("fairness audit by tone")));
    const html = fs.readFileSync(outs.all, "utf8");
    assert.deepEqual(headings(html), ["Training", "Embedding space", "Zero-shot classification", "Retrieval", PROMPTS_TITLE, ROBUSTNESS_TITLE, "Fairness audit"]);
    assert.ok(html.includes("are split in two, half of each class at random (seeded)"), "a single dataset: prompts chosen on one half, scored on the other");
    assert.ok(html.includes("Ranking bias over neutral queries"));
    assert.ok(html.includes("equal opportunity (eq_opp)") && html.includes("demographic parity (dem_par)"));
    assert.ok(html.includes("Per group (FairFace-style)"));
    for (const g of ["dark", "light", "small", "large"]) assert.ok(html.includes(`<td>${g}</td>`), `group ${g} in the tables`);
    assert.ok(html.includes("crime-related rate") && html.includes("non-human rate"), "the CLIP paper's harmful-label categories");
    const figures = figurePayloads(html);
    const titles = figures.map((f) => String(f.layout?.title?.text ?? ""));
    assert.ok(titles.some((t) => t.startsWith("MaxSkew@k")) && titles.some((t) => t.startsWith("NDKL@k")), titles.join(" | "));
    assert.ok(titles.some((t) => t.startsWith("By tone:")) && titles.some((t) => t.startsWith("By size:")));
    assert.equal(count(html, 'class="cliplab-figure"'), figures.length);
  });

  it("--sections zeroshot,fairness --groups column:size: only those two, by the named column", async () => {
    const r = await run(["report", "--checkpoint", ckpt, ...data(), "--sections", "zeroshot,fairness", "--groups", "column:size", "--quick", "--points", "24", "--out", outs.two, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.deepEqual(summary.sections, ["zeroshot", "fairness"]);
    assert.equal(summary.umapPoints, 0, "no UMAP without the embedding section");
    assert.match(r.out[r.out.length - 2], /no UMAP \(embedding section left out\)/);
    const html = fs.readFileSync(outs.two, "utf8");
    assert.deepEqual(headings(html), ["Zero-shot classification", "Fairness audit"]);
    assert.ok(html.includes("<td>small</td>") && !html.includes("<td>dark</td>"), "grouped by size only");
  });

  it("bad --sections or --groups: exit 2 with one line", async () => {
    const cases: [string[], RegExp][] = [
      [["--sections", "umap"], /--sections: unknown section "umap"; valid sections: training, embedding, zeroshot, retrieval, prompts, robustness, fairness/],
      [["--data", `imagefolder:${path.join(dir, "csv", "images")}`, "--sections", "fairness"], /--sections: section fairness: .* has no (labels|group column)/],
      [[...data(), "--groups", "column:age"], /--groups column:age: csv:.* has no group column "age" \(its group keys: tone, size\)/],
      [[...data(), "--groups", "stripes"], /--groups must be column:NAME, planted:border, file:PATH, got "stripes"/],
    ];
    for (const [args, re] of cases) {
      const r = await run(["report", "--checkpoint", ckpt, "--quick", "--out", path.join(dir, "r", "never.html"), ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err.join("\n")}`);
      const lines = r.err.filter((l) => l.startsWith("cliplab report:"));
      assert.equal(lines.length, 1, r.err.join("\n"));
      assert.match(lines[0], re);
    }
    assert.ok(!fs.existsSync(path.join(dir, "r", "never.html")));
  });

  it("both reports render every section's figures in headless Chromium, offline, with no JavaScript error", async () => {
    const checks = await checkHtmlFiles([outs.all, outs.two]);
    for (const c of checks) {
      assert.deepEqual(c.problems, [], `${c.file}: ${c.problems.join("; ")}`);
      const html = fs.readFileSync(c.file, "utf8");
      assert.equal(c.figures.length, figurePayloads(html).length, `${c.file}: every figure drawn`);
      assert.ok(c.figures.every((f) => f.marks > 0), `${c.file}: ${JSON.stringify(c.figures)}`);
    }
  });
});
