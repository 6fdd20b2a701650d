/**
 * Opens HTML files (reports, executed notebooks) in headless Chromium and checks what a reader
 * would see: every plotly figure drawn (an SVG with content, or a WebGL canvas), no JavaScript
 * error, no failed request (a report must open offline). Uses Debian's chromium through
 * playwright-core; no browser is ever downloaded.
 */
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM_PATH = process.env.CLIPLAB_CHROMIUM ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface FigureCheck {
  /** The figure div's id (or its position when it has none). */
  id: string;
  /** Plotly drew its main SVG. */
  hasSvg: boolean;
  /** Drawn marks: traces, heatmap images or WebGL canvases. */
  marks: number;
  width: number;
  height: number;
}

export interface HtmlCheck {
  file: string;
  /** Calls of Plotly.newPlot/react made by the page. */
  plotCalls: number;
  figures: FigureCheck[];
  /** Uncaught exceptions, console errors and failed requests, one line each. */
  errors: string[];
  /** Empty when the page passes. */
  problems: string[];
}

/**
 * Counts Plotly.newPlot/react calls, however the page defines window.Plotly. A string, not a
 * function: tsx's transform would add helper calls the page does not have.
 */
const INSTRUMENT_PLOTLY = `(() => {
  window.__cliplabPlotCalls = 0;
  let plotly;
  const wrap = (p) => {
    for (const name of ["newPlot", "react"]) {
      const original = p[name];
      if (typeof original !== "function" || original.__cliplabWrapped) continue;
      const wrapped = function (...args) { window.__cliplabPlotCalls += 1; return original.apply(this, args); };
      wrapped.__cliplabWrapped = true;
      p[name] = wrapped;
    }
  };
  Object.defineProperty(window, "Plotly", { configurable: true, get: () => plotly, set: (v) => { plotly = v; if (v) wrap(v); } });
})();`;

const COUNT_DRAWN = `Array.from(document.querySelectorAll(".js-plotly-plot")).filter((d) => d.querySelector(".main-svg")).length >= window.__cliplabPlotCalls`;

const INSPECT_FIGURES = `(() => {
  const divs = Array.from(document.querySelectorAll(".js-plotly-plot"));
  return {
    plotCalls: window.__cliplabPlotCalls,
    figures: divs.map((d, i) => {
      const box = d.getBoundingClientRect();
      const marks = d.querySelectorAll("g.trace, g.hm, image, path.point, path.surface").length + d.querySelectorAll("canvas").length;
      return { id: d.id || "#" + i, hasSvg: d.querySelector("svg.main-svg") !== null, marks, width: box.width, height: box.height };
    }),
  };
})()`;

async function inspect(browser: Browser, file: string, timeoutMs: number): Promise<HtmlCheck> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message.split("\n")[0]}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console.error: ${m.text().split("\n")[0]}`);
  });
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url().slice(0, 120)} (${r.failure()?.errorText ?? "?"})`));
  // Anything beyond the file itself and inline data is a network dependency: refuse it.
  await page.route(/^(https?|wss?):/, (route) => {
    errors.push(`network request: ${route.request().url().slice(0, 120)}`);
    return route.abort();
  });
  try {
    await page.addInitScript(INSTRUMENT_PLOTLY);
    await page.goto(`file://${path.resolve(file)}`, { waitUntil: "load", timeout: timeoutMs });
    // Plotly draws asynchronously; wait until every plotted div has its SVG (or give up at the timeout).
    await page.waitForFunction(COUNT_DRAWN, undefined, { timeout: timeoutMs, polling: 200 }).catch(() => undefined);
    await page.waitForTimeout(300);
    const { plotCalls, figures } = (await page.evaluate(INSPECT_FIGURES)) as { plotCalls: number; figures: FigureCheck[] };
    const problems = [...errors];
    if (figures.length < plotCalls) problems.push(`${plotCalls} figures were plotted but only ${figures.length} rendered`);
    for (const f of figures) {
      if (!f.hasSvg) problems.push(`figure ${f.id}: no SVG`);
      else if (f.marks === 0) problems.push(`figure ${f.id}: empty (no traces drawn)`);
      else if (f.width < 10 || f.height < 10) problems.push(`figure ${f.id}: ${f.width}x${f.height} px`);
    }
    return { file, plotCalls, figures, errors, problems };
  } finally {
    await page.close();
  }
}

/** Checks each file in one browser session. */
export async function checkHtmlFiles(files: string[], opts: { timeoutMs?: number } = {}): Promise<HtmlCheck[]> {
  for (const f of files) if (!fs.existsSync(f)) throw new Error(`check-html: ${f} does not exist`);
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(`check-html: no browser at ${CHROMIUM_PATH}; install Debian's chromium (bash scripts/setup.sh) or set CLIPLAB_CHROMIUM`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  try {
    const out: HtmlCheck[] = [];
    for (const f of files) out.push(await inspect(browser, f, opts.timeoutMs ?? 60_000));
    return out;
  } finally {
    await browser.close();
  }
}

/** Saves a full-page screenshot (for looking at a report). */
export async function screenshot(file: string, png: string, opts: { width?: number; height?: number } = {}): Promise<void> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: opts.width ?? 1400, height: opts.height ?? 1000 } });
    await page.goto(`file://${path.resolve(file)}`, { waitUntil: "load" });
    await page.waitForTimeout(1500);
    await page.screenshot({ path: png, fullPage: true });
  } finally {
    await browser.close();
  }
}
