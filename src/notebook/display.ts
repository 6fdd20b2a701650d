/**
 * Showing figures, tables, images and report sections in a tslab notebook (the TypeScript Jupyter
 * kernel, https://github.com/yunabe/tslab). Output goes through tslab's `display.html`; plotly.js
 * is inlined with the first figure of a kernel session only (~4.8 MB), later figures send a
 * <div> and a call to `cliplabPlot` (which says so in the cell if plotly.js is missing, e.g. after
 * the first output was cleared: call `resetPlotly()` and show the figure again).
 *
 *   import { showFigure, showTable } from "./src/notebook/display";
 *   showFigure(confusionMatrix(result.confusion, classNames));
 *   showTable(df);                       // a danfojs-node DataFrame, or an array of row objects
 *
 * tslab is loaded on the first display, not on import, so this module imports anywhere; outside
 * a tslab kernel the helpers throw a one-line error unless a display was set with
 * `setNotebookDisplay` (tests do this).
 */
import * as crypto from "node:crypto";
import type { Figure } from "../viz/figure";
import type { ImageBlock, ReportSection, TableBlock, TableCell } from "../report/types";
import { checkFigure, figureHtml, plotHelperScriptTag, plotlyScriptTag } from "../viz/html";
import { imageHtml, sectionHtml, tableHtml } from "../report/blocks";

/** Where notebook output goes: tslab's `display` satisfies it. */
export interface NotebookDisplay {
  html(html: string): void;
}

/** Makes a display whose output replaces itself on each call (tslab's `newDisplay`). */
export type NewDisplay = () => NotebookDisplay;

let injected: { display: NotebookDisplay; newDisplay?: NewDisplay } | undefined;
let plotlySent = false;

/**
 * Sends notebook output to `display` instead of tslab (for tests, or another kernel); `undefined`
 * goes back to tslab. Also forgets whether plotly.js was sent.
 */
export function setNotebookDisplay(display: NotebookDisplay | undefined, newDisplay?: NewDisplay): void {
  if (display !== undefined && typeof display?.html !== "function") throw new TypeError("setNotebookDisplay: display must have an html(string) method");
  injected = display ? { display, newDisplay } : undefined;
  plotlySent = false;
}

/** The next figure inlines plotly.js again (e.g. after clearing the output that carried it). */
export function resetPlotly(): void {
  plotlySent = false;
}

interface TslabModule {
  display: NotebookDisplay;
  newDisplay(): NotebookDisplay;
}

function tslab(fn: string): TslabModule {
  let mod: TslabModule;
  try {
    // Loaded here, not at import: tslab pulls in its own TypeScript.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require("tslab") as TslabModule;
  } catch (err) {
    throw new Error(`${fn}: cannot load tslab (${(err as Error).message.split("\n")[0]}); install it with npm i tslab, or call setNotebookDisplay`);
  }
  return mod;
}

/** Wraps a tslab display so that use outside a kernel is a clear one-line error. */
function guarded(fn: string, d: NotebookDisplay): NotebookDisplay {
  return {
    html: (html) => {
      try {
        d.html(html);
      } catch (err) {
        if ((err as Error)?.message === "Not ready") {
          throw new Error(`${fn}: not running in a tslab kernel (tslab's display is not ready); use it in a notebook, or call setNotebookDisplay`);
        }
        throw err;
      }
    },
  };
}

function currentDisplay(fn: string): NotebookDisplay {
  if (injected) return injected.display;
  return guarded(fn, tslab(fn).display);
}

/** The HTML of a figure for a notebook output; the first one of a session carries plotly.js. */
function figureOutput(fig: Figure): { html: string; carriesPlotly: boolean } {
  const id = `cliplab-${crypto.randomBytes(6).toString("hex")}`;
  const carriesPlotly = !plotlySent;
  const head = carriesPlotly ? `${plotlyScriptTag()}\n${plotHelperScriptTag()}\n` : `${plotHelperScriptTag()}\n`;
  return { html: `${head}${figureHtml(fig, id)}`, carriesPlotly };
}

/** Displays a plotly figure (from src/viz) in the current cell. */
export function showFigure(fig: Figure): void {
  const fn = "showFigure";
  checkFigure(fn, fig);
  const display = currentDisplay(fn);
  const out = figureOutput(fig);
  display.html(out.html);
  if (out.carriesPlotly) plotlySent = true;
}

/**
 * A figure that redraws in place, e.g. live training curves:
 * `const live = liveFigure(); ... onStep: () => live.update(trainingCurves(history))`.
 */
export function liveFigure(): { update(fig: Figure): void } {
  const fn = "liveFigure";
  const display = injected ? (injected.newDisplay ?? (() => injected!.display))() : guarded(fn, tslab(fn).newDisplay());
  // Each update replaces the previous output, so the figure that first carried plotly.js must keep
  // carrying it, or the saved notebook would lose the library with the first redraw.
  let carrier = false;
  return {
    update(fig: Figure) {
      checkFigure(`${fn}.update`, fig);
      if (carrier) plotlySent = false;
      const out = figureOutput(fig);
      display.html(out.html);
      if (out.carriesPlotly) {
        plotlySent = true;
        carrier = true;
      }
    },
  };
}

/** What `showTable` accepts: a danfojs-node DataFrame (or anything with `columns` and `values`), row objects, or a table block. */
export type TableLike =
  | { columns: readonly string[]; values: readonly (readonly unknown[])[] }
  | readonly Record<string, unknown>[]
  | Omit<TableBlock, "kind">;

function cell(v: unknown): TableCell {
  if (v === null || v === undefined) return null;
  if (typeof v === "number" || typeof v === "string") return v;
  if (typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v) ?? String(v);
}

/** A table block from a DataFrame, row objects or a { columns, rows } table. */
export function toTableBlock(data: TableLike, opts: { caption?: string; digits?: number } = {}): TableBlock {
  const fn = "toTableBlock";
  let columns: string[];
  let rows: TableCell[][];
  if (Array.isArray(data)) {
    columns = [];
    for (const r of data as Record<string, unknown>[]) {
      if (!r || typeof r !== "object" || Array.isArray(r)) throw new TypeError(`${fn}: rows must be objects (column -> value)`);
      for (const k of Object.keys(r)) if (!columns.includes(k)) columns.push(k);
    }
    rows = (data as Record<string, unknown>[]).map((r) => columns.map((c) => cell(r[c])));
  } else if (data && typeof data === "object" && Array.isArray((data as { columns?: unknown }).columns) && Array.isArray((data as { values?: unknown }).values)) {
    const df = data as { columns: readonly unknown[]; values: readonly (readonly unknown[])[] };
    columns = df.columns.map(String);
    rows = df.values.map((r) => (Array.isArray(r) ? r.map(cell) : [cell(r)]));
  } else if (data && typeof data === "object" && Array.isArray((data as { rows?: unknown }).rows)) {
    const t = data as Omit<TableBlock, "kind">;
    return { kind: "table", columns: [...t.columns], rows: t.rows.map((r) => [...r]), caption: opts.caption ?? t.caption, digits: opts.digits ?? t.digits };
  } else {
    throw new TypeError(`${fn}: expected a DataFrame (columns + values), an array of row objects, or { columns, rows }`);
  }
  return { kind: "table", columns, rows, ...(opts.caption !== undefined ? { caption: opts.caption } : {}), ...(opts.digits !== undefined ? { digits: opts.digits } : {}) };
}

/** Displays a DataFrame, row objects or a table as an HTML table (escaped). */
export function showTable(data: TableLike, opts: { caption?: string; digits?: number } = {}): void {
  const fn = "showTable";
  const html = tableHtml(toTableBlock(data, opts));
  currentDisplay(fn).html(html);
}

/** Displays pixels (grey or RGB, [0, 1] floats or 0-255 bytes) as a PNG, scaled without smoothing. */
export function showImage(image: Omit<ImageBlock, "kind">): void {
  const fn = "showImage";
  const html = imageHtml({ kind: "image", ...image });
  currentDisplay(fn).html(html);
}

/** Displays a report section (e.g. an audit's) with its figures, tables and images. */
export function showSection(section: ReportSection): void {
  const fn = "showSection";
  const display = currentDisplay(fn);
  const hasFigure = section?.blocks?.some((b) => b?.kind === "figure");
  const carriesPlotly = hasFigure && !plotlySent;
  const head = hasFigure ? `${carriesPlotly ? plotlyScriptTag() + "\n" : ""}${plotHelperScriptTag()}\n` : "";
  const html = sectionHtml(section, 0, () => `cliplab-${crypto.randomBytes(6).toString("hex")}`, 3);
  display.html(head + html);
  if (carriesPlotly) plotlySent = true;
}
