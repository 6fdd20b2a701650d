/** Notebook helpers with an injected display: plotly.js once per session, tables, images; a clear error outside tslab. */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { liveFigure, resetPlotly, setNotebookDisplay, showFigure, showImage, showSection, showTable, toTableBlock } from "../../src/notebook/display";
import { plotlyBundle } from "../../src/viz/html";
import type { Figure } from "../../src/viz/figure";

const fig: Figure = { data: [{ type: "bar", x: [1, 2], y: [3, 4], name: "</script><b>" }], layout: { title: { text: "t" } } };

function capture(): string[] {
  const out: string[] = [];
  setNotebookDisplay({ html: (s) => out.push(s) });
  return out;
}

/** A long, distinctive piece of the bundle: present iff plotly.js was inlined. */
const MARK = plotlyBundle().code.slice(1000, 1200);
const count = (s: string, sub: string) => s.split(sub).length - 1;

afterEach(() => setNotebookDisplay(undefined));

describe("showFigure", () => {
  it("inlines plotly.js with the first figure only", () => {
    const out = capture();
    showFigure(fig);
    showFigure(fig);
    showFigure(fig);
    assert.equal(out.length, 3);
    assert.equal(count(out[0], MARK), 1);
    assert.equal(count(out[1], MARK) + count(out[2], MARK), 0);
    for (const html of out) {
      assert.equal(count(html, 'class="cliplab-figure"'), 1);
      assert.equal(count(html, "</script><b>"), 0, "figure JSON cannot close the script");
      assert.match(html, /cliplabPlot\("cliplab-[0-9a-f]{12}", \{"data":\[\{"type":"bar"/);
    }
    const ids = out.map((h) => /id="(cliplab-[0-9a-f]+)"/.exec(h)![1]);
    assert.equal(new Set(ids).size, 3, "unique div ids");
    resetPlotly();
    showFigure(fig);
    assert.equal(count(out[3], MARK), 1, "after resetPlotly the bundle is sent again");
  });

  it("live figures redraw through their own display, sharing the session's plotly.js", () => {
    const main: string[] = [];
    const live: string[] = [];
    setNotebookDisplay({ html: (s) => main.push(s) }, () => ({ html: (s) => live.push(s) }));
    showFigure(fig);
    const l = liveFigure();
    l.update(fig);
    l.update(fig);
    assert.equal(main.length, 1);
    assert.equal(live.length, 2);
    assert.equal(count(live.join(""), MARK), 0);
  });

  it("a live figure that first carried plotly.js keeps carrying it in every redraw (each replaces the last)", () => {
    const live: string[] = [];
    setNotebookDisplay({ html: () => undefined }, () => ({ html: (s) => live.push(s) }));
    const l = liveFigure();
    l.update(fig);
    l.update(fig);
    l.update(fig);
    assert.deepEqual(live.map((h) => count(h, MARK)), [1, 1, 1]);
  });

  it("outside a tslab kernel, says so in one line", () => {
    setNotebookDisplay(undefined);
    assert.throws(() => showFigure(fig), (e: Error) => /^showFigure: not running in a tslab kernel/.test(e.message) && !e.message.includes("\n"));
    assert.throws(() => showTable([{ a: 1 }]), /^Error: showTable: not running in a tslab kernel/);
    assert.throws(() => showFigure({} as Figure), /^TypeError: showFigure: figure must be an object with a data array/);
  });
});

describe("showTable / showImage / showSection", () => {
  it("shows a danfojs-node DataFrame as an escaped HTML table", async () => {
    const dfd = await import("danfojs-node");
    const df = new dfd.DataFrame([{ cls: "<i>coat</i>", acc: 0.8125 }, { cls: "bag", acc: 0.5 }]);
    const out = capture();
    showTable(df as any, { digits: 2 });
    assert.equal(out.length, 1);
    assert.match(out[0], /<th>cls<\/th><th>acc<\/th>/);
    assert.match(out[0], /<td>&lt;i&gt;coat&lt;\/i&gt;<\/td><td class="num">0.81<\/td>/);
    assert.ok(!out[0].includes("<i>"));
  });

  it("shows row objects, filling missing cells", () => {
    assert.deepEqual(toTableBlock([{ a: 1, b: "x" }, { b: "y", c: true }]), { kind: "table", columns: ["a", "b", "c"], rows: [[1, "x", null], [null, "y", "true"]] });
    const out = capture();
    showTable([{ a: 1.23456 }], { caption: "cap <b>" });
    assert.match(out[0], /<caption>cap &lt;b&gt;<\/caption>/);
    assert.match(out[0], /<td class="num">1.2346<\/td>/);
  });

  it("shows images as PNG data URLs and sections with their figures", () => {
    const out = capture();
    showImage({ pixels: new Float32Array(4).fill(0.5), height: 2, width: 2, channels: 1, caption: "<x>" });
    assert.match(out[0], /^<figure class="cliplab-image"><img src="data:image\/png;base64,[A-Za-z0-9+/=]+" width="8" height="8" alt="&lt;x&gt;"/);
    showSection({ title: "S <1>", blocks: [{ kind: "text", text: "hello" }, { kind: "figure", figure: fig }] });
    assert.equal(count(out[1], MARK), 1, "the section's figure is the session's first");
    assert.match(out[1], /<h3>S &lt;1&gt;<\/h3>/);
    assert.throws(() => showImage({ pixels: new Uint8Array(3), height: 2, width: 2, channels: 1 }), /^RangeError: imageHtml: image pixels has 3 values, expected height\*width\*channels = 4$/);
  });
});
