/** `cliplab report --quick` in-process on a small Fashion-MNIST slice: the HTML file it writes. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli as run } from "../helpers/cli";
import { plotlyBundle } from "../../src/viz/html";
import { tmpDir } from "../helpers/fixtures";
import { sliceDataDir } from "../helpers/data";
import { checkHtmlFiles } from "../../scripts/lib/browser_check";

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
    assert.deepEqual([...html.matchAll(/<h2>(.*?)<\/h2>/g)].map((m) => m[1]), ["Training", "Embedding space", "Zero-shot classification", "Retrieval"]);
    assert.equal(count(html, MARK), 1, "plotly.js inlined once");
    const figures = figurePayloads(html);
    assert.equal(figures.length, 5, "curves, UMAP, confusion, per-class bars, heatmap");
    assert.equal(count(html, 'class="cliplab-figure"'), figures.length, "one div per figure");
    assert.equal(count(html, "<script"), 2 + figures.length, "the bundle, the helper, one per figure: nothing else");
    assert.ok(!/<script[^>]+src=|<link[^>]+href=/i.test(html), "nothing fetched");
    assert.equal(count(html, "<img "), 1, "the heatmap's image strip");

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
    const r = await run(["report", "--checkpoint", path.join(runDir, "model.safetensors"), "--quick", "--points", "60", "--data-dir", data, "--out", out2]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.out[r.out.length - 1], /^wrote .*ckpt\.html in \d+:\d\d: zero-shot top-1 [\d.]+% on 240 images; modality gap [\d.]+ \(freshly initialised: [\d.]+\); UMAP of \d+ points/);
    const html = fs.readFileSync(out2, "utf8");
    assert.ok(html.includes("<p>From checkpoint "), "training section from metrics.arrow");
    assert.equal(figurePayloads(html).length, 5);
  });

  it("both reports render every figure in headless Chromium, offline, with no JavaScript error", async () => {
    const checks = await checkHtmlFiles([out, path.join(dir, "reports", "ckpt.html")]);
    for (const c of checks) {
      assert.deepEqual(c.problems, [], `${c.file}: ${c.problems.join("; ")}`);
      assert.equal(c.figures.length, 5, `${c.file}: figures drawn`);
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
