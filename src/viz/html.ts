/**
 * Turning figures into HTML that needs no network: plotly.js inlined from the installed
 * `plotly.js-dist-min` bundle, figure JSON embedded safely in <script> elements, text escaped.
 * Shared by reports (src/report/render.ts) and notebooks (src/notebook/display.ts).
 * plotly.js: https://plotly.com/javascript/ (MIT)
 */
import * as fs from "node:fs";
import type { Figure } from "./figure";

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/**
 * JSON that is safe inside a <script> element: every `<` becomes `\u003c` (so no `</script>` or
 * `<!--` can end or confuse the element), `>` and `&` likewise, and U+2028/U+2029 are escaped.
 * `JSON.parse` of the result gives back the same value.
 */
export function jsonForScript(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError("jsonForScript: value is not serialisable to JSON");
  return json
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

let bundle: { file: string; version: string; code: string } | undefined;

/** The installed plotly.js-dist-min bundle (read once, ~4.8 MB) and its version. */
export function plotlyBundle(): { file: string; version: string; code: string } {
  if (bundle) return bundle;
  const file = require.resolve("plotly.js-dist-min");
  const pkg = require.resolve("plotly.js-dist-min/package.json");
  const version = (JSON.parse(fs.readFileSync(pkg, "utf8")) as { version: string }).version;
  const code = fs.readFileSync(file, "utf8");
  // Inlined as-is: a "</script" inside would end the element early.
  if (/<\/script/i.test(code)) throw new Error(`plotlyBundle: ${file} contains "</script" and cannot be inlined`);
  bundle = { file, version, code };
  return bundle;
}

/** A <script> element defining `window.Plotly` from the installed bundle. */
export function plotlyScriptTag(): string {
  const { version, code } = plotlyBundle();
  return `<script>/* plotly.js-dist-min ${version} (MIT), inlined by cliplab */\n${code}\n</script>`;
}

/**
 * `cliplabPlot(id, figure)`: draws a figure into the element `id`, and, for figures with
 * `hoverImages`, shows the hovered point's `customdata` (a PNG data URL) in a small box.
 * Defined once per page (a later definition is a no-op).
 */
export const PLOT_HELPER_JS = `(function () {
  if (window.cliplabPlot) return;
  function showImage(div, url, ev) {
    var box = div.querySelector(".cliplab-hover-image");
    if (!box) {
      box = document.createElement("img");
      box.className = "cliplab-hover-image";
      box.style.cssText = "position:absolute;z-index:1000;pointer-events:none;width:84px;height:84px;image-rendering:pixelated;border:1px solid #888;background:#fff;display:none";
      div.style.position = "relative";
      div.appendChild(box);
    }
    if (typeof url !== "string" || url.indexOf("data:image/png;base64,") !== 0) { box.style.display = "none"; return; }
    box.src = url;
    var r = div.getBoundingClientRect();
    var x = (ev && ev.clientX !== undefined ? ev.clientX - r.left : 10) + 16;
    var y = (ev && ev.clientY !== undefined ? ev.clientY - r.top : 10) - 100;
    box.style.left = Math.min(x, r.width - 90) + "px";
    box.style.top = Math.max(y, 0) + "px";
    box.style.display = "block";
  }
  window.cliplabPlot = function (id, fig) {
    var div = document.getElementById(id);
    if (!div) return;
    if (!window.Plotly) { div.textContent = "plotly.js is not loaded on this page, so this figure cannot be drawn."; return; }
    var config = Object.assign({ responsive: true, displaylogo: false }, fig.config || {});
    var done = window.Plotly.newPlot(div, fig.data, fig.layout || {}, config);
    if (fig.hoverImages) {
      Promise.resolve(done).then(function () {
        div.on("plotly_hover", function (e) { var p = e.points && e.points[0]; showImage(div, p && p.customdata, e.event); });
        div.on("plotly_unhover", function () { showImage(div, null); });
      });
    }
  };
})();`;

/** The <script> element defining `cliplabPlot`. */
export function plotHelperScriptTag(): string {
  return `<script>${PLOT_HELPER_JS}</script>`;
}

/** Figure height in CSS pixels: `layout.height` when set, else 450. */
export function figureHeight(fig: Figure): number {
  const h = fig.layout?.height;
  return typeof h === "number" && h > 0 ? h : 450;
}

/**
 * A figure as a <div> and the <script> that draws it with `cliplabPlot` (which must be defined
 * earlier on the page, with plotly.js). `id` must be unique on the page.
 */
export function figureHtml(fig: Figure, id: string): string {
  if (!/^[A-Za-z][\w-]*$/.test(id)) throw new Error(`figureHtml: id must be letters, digits, - or _, starting with a letter, got ${JSON.stringify(id)}`);
  checkFigure("figureHtml", fig);
  const payload: Record<string, unknown> = { data: fig.data, layout: fig.layout ?? {} };
  if (fig.config) payload.config = fig.config;
  if (fig.hoverImages) payload.hoverImages = true;
  return (
    `<div class="cliplab-figure" id="${id}" style="width:100%;height:${figureHeight(fig)}px"></div>\n` +
    `<script>cliplabPlot(${jsonForScript(id)}, ${jsonForScript(payload)});</script>`
  );
}

/** Throws (one line, naming `fn`) unless `fig` looks like a plotly figure. */
export function checkFigure(fn: string, fig: Figure): void {
  if (!fig || typeof fig !== "object" || !Array.isArray(fig.data)) {
    throw new TypeError(`${fn}: figure must be an object with a data array (a plotly figure), got ${fig === null ? "null" : typeof fig}`);
  }
  if (fig.layout !== undefined && (typeof fig.layout !== "object" || fig.layout === null)) {
    throw new TypeError(`${fn}: figure.layout must be an object`);
  }
}
