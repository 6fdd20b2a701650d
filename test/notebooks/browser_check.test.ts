/** The headless-Chromium checker must pass a good page and catch each way a page can be broken. */
import { before, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { checkHtmlFiles } from "../../scripts/lib/browser_check";
import { tmpDir } from "../helpers/fixtures";

const PLOTLY = fs.readFileSync(require.resolve("plotly.js-dist-min"), "utf8");
let dir: string;
const page = (name: string, body: string) => {
  const file = path.join(dir, `${name}.html`);
  fs.writeFileSync(file, `<!doctype html><html><head><meta charset="utf-8"><script>${PLOTLY}</script></head><body>${body}</body></html>`);
  return file;
};

before(() => {
  dir = tmpDir("browser-check");
});

it("passes a page whose scatter and heatmap render, and fails broken pages with the reason", async () => {
  const good = page("good", `<div id="a"></div><div id="b"></div><script>
    Plotly.newPlot("a", [{ x: [1, 2], y: [3, 4], type: "scatter" }]);
    Plotly.newPlot("b", [{ z: [[1, 2], [3, 4]], type: "heatmap" }]);</script>`);
  const thrown = page("thrown", `<div id="a"></div><script>Plotly.newPlot("a", [{ x: [1], y: [1] }]); notDefined();</script>`);
  const network = page("network", `<img src="https://example.invalid/x.png">`);
  const empty = page("empty", `<div id="a"></div><script>Plotly.newPlot("a", []);</script>`);
  const [g, t, n, e] = await checkHtmlFiles([good, thrown, network, empty]);
  assert.deepEqual(g.problems, []);
  assert.equal(g.figures.length, 2);
  assert.equal(g.plotCalls, 2);
  assert.ok(t.problems.some((p) => p.includes("notDefined")), t.problems.join("; "));
  assert.ok(n.problems.some((p) => p.includes("network request: https://example.invalid")), n.problems.join("; "));
  assert.ok(e.problems.some((p) => p.includes("empty")), e.problems.join("; "));
});

it("names a missing file", async () => {
  await assert.rejects(checkHtmlFiles([path.join(dir, "nope.html")]), /nope\.html does not exist/);
});
