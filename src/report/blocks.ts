/**
 * HTML for the blocks of a report (src/report/types.ts). Every string from a block is escaped;
 * figures become a <div> plus a script calling `cliplabPlot` (src/viz/html.ts), images PNG data
 * URLs. Shared by `renderReport` and the notebook helpers (src/notebook/display.ts).
 */
import type { ImageBlock, ReportBlock, ReportSection, TableBlock, TableCell } from "./types";
import { checkFigure, escapeHtml, figureHtml } from "../viz/html";
import { pngDataUrl } from "../viz/png";

export const BLOCK_KINDS = ["text", "figure", "table", "image"] as const;

/** A table cell as text: integers as they are, other numbers with `digits` decimals, null as "—". */
export function formatCell(cell: TableCell, digits: number): string {
  if (cell === null || cell === undefined) return "—";
  if (typeof cell === "number") {
    if (Number.isNaN(cell)) return "NaN";
    if (!Number.isFinite(cell)) return cell > 0 ? "∞" : "−∞";
    return Number.isInteger(cell) ? String(cell) : cell.toFixed(digits);
  }
  return String(cell);
}

export function checkTable(fn: string, t: TableBlock): void {
  if (!Array.isArray(t.columns) || t.columns.some((c) => typeof c !== "string")) throw new TypeError(`${fn}: table columns must be an array of strings`);
  if (!Array.isArray(t.rows)) throw new TypeError(`${fn}: table rows must be an array of arrays`);
  t.rows.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== t.columns.length) {
      throw new RangeError(`${fn}: table row ${i} has ${Array.isArray(r) ? r.length : "no"} cells, expected ${t.columns.length} (one per column)`);
    }
    r.forEach((c, j) => {
      if (c !== null && typeof c !== "string" && typeof c !== "number") throw new TypeError(`${fn}: table row ${i} cell ${j} must be a string, number or null, got ${typeof c}`);
    });
  });
  if (t.digits !== undefined && (!Number.isInteger(t.digits) || t.digits < 0 || t.digits > 20)) throw new RangeError(`${fn}: table digits must be an integer in [0, 20], got ${t.digits}`);
}

export function tableHtml(t: TableBlock): string {
  checkTable("tableHtml", t);
  const digits = t.digits ?? 4;
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("");
  const body = t.rows
    .map((r) => `<tr>${r.map((c) => `<td${typeof c === "number" ? ' class="num"' : ""}>${escapeHtml(formatCell(c, digits))}</td>`).join("")}</tr>`)
    .join("\n");
  const caption = t.caption ? `<caption>${escapeHtml(t.caption)}</caption>` : "";
  return `<table class="cliplab-table">${caption}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

export function checkImage(fn: string, b: ImageBlock): void {
  for (const k of ["height", "width"] as const) {
    if (!Number.isInteger(b[k]) || b[k] < 1) throw new RangeError(`${fn}: image ${k} must be a positive integer, got ${b[k]}`);
  }
  if (b.channels !== 1 && b.channels !== 3) throw new RangeError(`${fn}: image channels must be 1 or 3, got ${b.channels}`);
  if (!(b.pixels instanceof Float32Array || b.pixels instanceof Uint8Array)) throw new TypeError(`${fn}: image pixels must be a Float32Array in [0, 1] or a Uint8Array in 0-255`);
  const want = b.height * b.width * b.channels;
  if (b.pixels.length !== want) throw new RangeError(`${fn}: image pixels has ${b.pixels.length} values, expected height*width*channels = ${want}`);
  if (b.scale !== undefined && !(b.scale > 0)) throw new RangeError(`${fn}: image scale must be > 0, got ${b.scale}`);
}

export function imageHtml(b: ImageBlock): string {
  checkImage("imageHtml", b);
  const scale = b.scale ?? 4;
  const url = pngDataUrl(b.pixels, b.width, b.height, b.channels);
  const alt = escapeHtml(b.caption ?? "image");
  const img = `<img src="${url}" width="${Math.round(b.width * scale)}" height="${Math.round(b.height * scale)}" alt="${alt}" style="image-rendering:pixelated">`;
  return `<figure class="cliplab-image">${img}${b.caption ? `<figcaption>${escapeHtml(b.caption)}</figcaption>` : ""}</figure>`;
}

export function textHtml(text: string): string {
  if (typeof text !== "string") throw new TypeError(`textHtml: text must be a string, got ${typeof text}`);
  return text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => `<p>${escapeHtml(p)}</p>`)
    .join("\n");
}

/** One block as HTML; `figureId` names the figure's div (unique on the page). */
export function blockHtml(block: ReportBlock, figureId: () => string): string {
  switch (block?.kind) {
    case "text":
      return textHtml(block.text);
    case "figure": {
      checkFigure("blockHtml", block.figure);
      const caption = block.caption ? `<figcaption>${escapeHtml(block.caption)}</figcaption>` : "";
      return `<figure class="cliplab-figure-block">\n${figureHtml(block.figure, figureId())}\n${caption}</figure>`;
    }
    case "table":
      return tableHtml(block);
    case "image":
      return imageHtml(block);
    default:
      throw new RangeError(`unknown block kind ${JSON.stringify((block as { kind?: unknown })?.kind)} (valid: ${BLOCK_KINDS.join(", ")})`);
  }
}

/** A section's title and blocks as HTML (errors name the section and block). */
export function sectionHtml(section: ReportSection, index: number, figureId: () => string, level = 2): string {
  if (!section || typeof section.title !== "string" || !Array.isArray(section.blocks)) {
    throw new TypeError(`section ${index} must be { title: string, blocks: ReportBlock[] }`);
  }
  const parts = section.blocks.map((b, j) => {
    try {
      return blockHtml(b, figureId);
    } catch (err) {
      throw new (err instanceof TypeError ? TypeError : RangeError)(`section ${index} (${JSON.stringify(section.title)}) block ${j}: ${(err as Error).message}`);
    }
  });
  return `<section id="section-${index + 1}">\n<h${level}>${escapeHtml(section.title)}</h${level}>\n${parts.join("\n")}\n</section>`;
}

/** The report's stylesheet (no web fonts, nothing fetched). */
export const REPORT_CSS = `
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { margin-bottom: 4px; } .subtitle { color: #555; margin-top: 0; white-space: pre-line; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 40px; }
nav ol { columns: 2; color: #555; } nav a { color: #2a5db0; text-decoration: none; }
p { line-height: 1.5; white-space: pre-line; }
figure { margin: 16px 0; } figcaption { color: #555; font-size: 0.92em; margin-top: 4px; white-space: pre-line; }
.cliplab-table { border-collapse: collapse; margin: 12px 0; font-size: 0.92em; }
.cliplab-table caption { text-align: left; color: #555; padding-bottom: 4px; caption-side: top; }
.cliplab-table th, .cliplab-table td { border-bottom: 1px solid #e3e3e3; padding: 4px 10px; text-align: left; }
.cliplab-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cliplab-table thead th { border-bottom: 2px solid #bbb; }
footer { color: #888; font-size: 0.85em; margin-top: 48px; }
`;
