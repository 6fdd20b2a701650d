/**
 * Reports as one self-contained HTML file: plotly.js inlined once (from the installed
 * plotly.js-dist-min), every figure a <div> drawn by a small script from its JSON, tables as
 * HTML tables, images as PNG data URLs; nothing is fetched, so the file opens offline and can be
 * mailed around. Every title, caption, label and cell is HTML-escaped; figure JSON is embedded
 * with `<` written as \u003c, and figure text is escaped for plotly by the builders in src/viz.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Report } from "./types";
import { REPORT_CSS, sectionHtml } from "./blocks";
import { escapeHtml, plotHelperScriptTag, plotlyScriptTag } from "../viz/html";
import { replaceFileAtomic } from "../util/atomic";

/** The report as an HTML document (a string of several MB when it has figures: plotly.js is inside). */
export function renderReport(report: Report): string {
  const fn = "renderReport";
  if (!report || typeof report !== "object") throw new TypeError(`${fn}: report must be { title, subtitle?, sections }`);
  if (typeof report.title !== "string") throw new TypeError(`${fn}: report.title must be a string`);
  if (report.subtitle !== undefined && typeof report.subtitle !== "string") throw new TypeError(`${fn}: report.subtitle must be a string`);
  if (!Array.isArray(report.sections)) throw new TypeError(`${fn}: report.sections must be an array of sections`);
  let figures = 0;
  const figureId = () => `figure-${++figures}`;
  const sections = report.sections.map((s, i) => {
    try {
      return sectionHtml(s, i, figureId);
    } catch (err) {
      const e = err as Error;
      throw new (e instanceof TypeError ? TypeError : RangeError)(`${fn}: ${e.message}`);
    }
  });
  const toc = report.sections.map((s, i) => `<li><a href="#section-${i + 1}">${escapeHtml(s.title)}</a></li>`).join("");
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(report.title)}</title>`,
    `<style>${REPORT_CSS}</style>`,
    ...(figures ? [plotlyScriptTag(), plotHelperScriptTag()] : []),
    "</head>",
    "<body>",
    "<main>",
    `<h1>${escapeHtml(report.title)}</h1>`,
    report.subtitle ? `<p class="subtitle">${escapeHtml(report.subtitle)}</p>` : "",
    report.sections.length > 1 ? `<nav><ol>${toc}</ol></nav>` : "",
    ...sections,
    "<footer>Made with cliplab. Self-contained: the figures are drawn by plotly.js inlined in this file.</footer>",
    "</main>",
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

/**
 * Renders and writes the report to `file` atomically (a temporary file in the same directory,
 * then a rename), creating the directory. Returns the absolute path.
 */
export function writeReport(file: string, report: Report): string {
  if (typeof file !== "string" || file === "") throw new TypeError("writeReport: file must be a non-empty path");
  const html = renderReport(report);
  const abs = path.resolve(file);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  replaceFileAtomic(abs, (tmp) => fs.writeFileSync(tmp, html));
  return abs;
}
