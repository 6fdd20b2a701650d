/** renderReport / writeReport: one self-contained file, plotly.js once, everything escaped. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { renderReport, writeReport } from "../../src/report/render";
import type { Report } from "../../src/report/types";
import { confusionMatrix } from "../../src/viz/confusion_matrix";
import { barWithCI } from "../../src/viz/bar_ci";
import { plotlyBundle } from "../../src/viz/html";
import { tmpDir } from "../helpers/fixtures";

const EVIL = "<script>alert(1)</script>";
const MARK = plotlyBundle().code.slice(1000, 1200);
const count = (s: string, sub: string) => s.split(sub).length - 1;

function sample(): Report {
  return {
    title: `Report ${EVIL}`,
    subtitle: "run on <today>",
    sections: [
      {
        title: `Zero-shot ${EVIL}`,
        blocks: [
          { kind: "text", text: `First paragraph ${EVIL}.\n\nSecond & last.` },
          { kind: "figure", figure: confusionMatrix([[2, 0], [1, 1]], ["coat", EVIL]), caption: `caption ${EVIL}` },
          { kind: "table", columns: ["class", EVIL], rows: [[EVIL, 0.123456], ["bag", null], ["shoe", 7]], caption: EVIL, digits: 3 },
        ],
      },
      {
        title: "Pictures",
        blocks: [
          { kind: "figure", figure: barWithCI(["a", "b"], [0.5, 0.7], [[0.4, 0.6], [0.6, 0.8]]) },
          { kind: "image", pixels: Uint8Array.from([0, 85, 170, 255, 10, 20]), height: 2, width: 3, channels: 1, caption: EVIL, scale: 10 },
        ],
      },
    ],
  };
}

describe("renderReport", () => {
  const html = renderReport(sample());

  it("inlines plotly.js exactly once and draws one div per figure", () => {
    assert.equal(count(html, MARK), 1);
    assert.equal(count(html, 'class="cliplab-figure"'), 2);
    assert.equal(count(html, "cliplabPlot(\"figure-"), 2);
    assert.match(html, /^<!DOCTYPE html>/);
  });

  it("escapes every caption, title, label and cell", () => {
    assert.equal(count(html, EVIL), 0, "the raw markup appears nowhere");
    assert.equal(count(html, "<script>alert"), 0);
    assert.equal(count(html, "alert(1)</script>"), 0);
    assert.ok(html.includes(`<title>Report &lt;script&gt;alert(1)&lt;/script&gt;</title>`));
    assert.ok(html.includes(`<h2>Zero-shot &lt;script&gt;alert(1)&lt;/script&gt;</h2>`));
    assert.ok(html.includes(`<figcaption>caption &lt;script&gt;alert(1)&lt;/script&gt;</figcaption>`));
    assert.ok(html.includes(`<th>&lt;script&gt;alert(1)&lt;/script&gt;</th>`));
    assert.ok(html.includes(`<td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td class="num">0.123</td>`));
    assert.ok(html.includes(`<td>bag</td><td>—</td>`));
    assert.ok(html.includes(`<td>shoe</td><td class="num">7</td>`));
    assert.ok(html.includes("<p>Second &amp; last.</p>"));
    assert.ok(html.includes('<p class="subtitle">run on &lt;today&gt;</p>'));
  });

  it("embeds figure JSON that parses back to the figure", () => {
    const fig = sample().sections[0].blocks[1] as { figure: { data: unknown[]; layout: unknown } };
    const m = /cliplabPlot\("figure-1", (.*)\);<\/script>/.exec(html);
    assert.ok(m);
    assert.ok(!m[1].includes("<"), "no '<' inside the script data");
    const parsed = JSON.parse(m[1]);
    assert.deepEqual(parsed.data, fig.figure.data);
    assert.deepEqual(parsed.layout, fig.figure.layout);
  });

  it("has no network references (outside plotly.js's own code)", () => {
    // (assert.ok rather than doesNotMatch: a failure must not print 5 MB of HTML)
    assert.ok(!/<script[^>]+src=/i.test(html), "no <script src>");
    assert.ok(!/<link[^>]+href=/i.test(html), "no <link href>");
    assert.ok(!/<(img|iframe|embed|object|source)[^>]+(src|data)=["']?(https?:)?\/\//i.test(html), "no remote media");
    const ours = html.replace(plotlyBundle().code, "");
    assert.equal(count(ours, "http://") + count(ours, "https://"), 0, "no URL at all in cliplab's part of the page");
    assert.ok(!/@import|url\(/i.test(ours), "no CSS imports or url()");
  });

  it("embeds images as PNG data URLs of the given pixels", async () => {
    const m = /<img src="data:image\/png;base64,([A-Za-z0-9+/=]+)" width="30" height="20" alt="&lt;script&gt;alert\(1\)&lt;\/script&gt;"/.exec(html);
    assert.ok(m, "image tag with scaled size and escaped alt");
    const png = Buffer.from(m[1], "base64");
    const { data } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([...data], [0, 85, 170, 255, 10, 20]);
  });

  it("leaves plotly.js out of a report without figures", () => {
    const plain = renderReport({ title: "t", sections: [{ title: "s", blocks: [{ kind: "text", text: "x" }] }] });
    assert.equal(count(plain, MARK), 0);
    assert.ok(plain.length < 10_000);
  });

  it("names the bad section and block in one line", () => {
    const bad = { title: "t", sections: [{ title: "ok", blocks: [] }, { title: "S", blocks: [{ kind: "text", text: "x" }, { kind: "video" }] }] } as unknown as Report;
    assert.throws(() => renderReport(bad), /^RangeError: renderReport: section 1 \("S"\) block 1: unknown block kind "video" \(valid: text, figure, table, image\)$/);
    const ragged = { title: "t", sections: [{ title: "S", blocks: [{ kind: "table", columns: ["a", "b"], rows: [[1]] }] }] } as unknown as Report;
    assert.throws(() => renderReport(ragged), /^RangeError: renderReport: section 0 \("S"\) block 0: tableHtml: table row 0 has 1 cells, expected 2 \(one per column\)$/);
  });
});

describe("writeReport", () => {
  it("writes atomically, creating the directory, and leaves no temporary file", () => {
    const dir = path.join(tmpDir(), "reports", "nested");
    const file = writeReport(path.join(dir, "r.html"), sample());
    assert.equal(file, path.join(dir, "r.html"));
    assert.equal(fs.readFileSync(file, "utf8"), renderReport(sample()));
    assert.deepEqual(fs.readdirSync(dir), ["r.html"]);
    // A failed render leaves the old file in place.
    assert.throws(() => writeReport(file, { title: 1 } as unknown as Report), /^TypeError: renderReport: report.title must be a string$/);
    assert.equal(fs.readFileSync(file, "utf8"), renderReport(sample()));
    assert.deepEqual(fs.readdirSync(dir), ["r.html"]);
  });
});
