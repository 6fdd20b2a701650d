/**
 * The lab as a person opens it: the server of `npm run lab` (scripts/lab.ts) driven in headless
 * Chromium through the notebook UI. Notebook 01 in quick mode runs through Cell > Run All; every
 * cell must finish with no error, a plotly figure must be drawn, and the live training figure must
 * change while its cell runs. One keyboard path (select a cell, Shift+Enter; insert a cell, type,
 * Shift+Enter). A deliberately broken copy of 01 must fail the same checks loudly. Nothing is
 * fetched from the network, and the server and its kernels are gone at the end.
 *
 * The notebooks run from copies in a temporary notebook directory (the kernel still starts in the
 * repository), so the UI's autosave can never write outputs into notebooks/.
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../../scripts/lib/browser_check";
import { REPO_ROOT } from "../../scripts/lib/nbconvert";
import { freePort, processesUsing, startLab, type LabServer } from "../../scripts/lab";
import { tmpDir } from "../helpers/fixtures";

/** Quick 01 runs in about a minute here; a cell that hangs fails the test instead of the suite. */
const RUN_TIMEOUT_MS = 8 * 60_000;

let dir: string;
let lab: LabServer;
let browser: Browser;

interface CodeCell {
  index: number;
  /** The execution count shown in `In [n]`, null when the cell never ran. */
  count: number | null;
  running: boolean;
  /** Error outputs ("ename: evalue") and what the cell printed on stderr. */
  errors: string[];
  stderr: string;
}

interface DrawnFigure {
  cell: number;
  hasSvg: boolean;
  /** Drawn marks: traces, heatmap images, WebGL canvases. */
  marks: number;
  width: number;
  height: number;
}

interface LabRun {
  cells: CodeCell[];
  /** execute_reply messages whose status was not "ok" (error or aborted). */
  failedReplies: { status: string; count: number | null; error: string }[];
  figures: DrawnFigure[];
  /** Per code cell with a figure: the points in its figures each time that number changed while the cell ran. */
  liveSeries: Record<number, number[]>;
  /** Console errors, uncaught exceptions, failed or off-server requests. */
  pageProblems: string[];
  seconds: number;
}

/**
 * Records, in the page, every execute_reply and, every 200 ms, the number of plotted points in each
 * cell's figures (a live figure replaces its output on each update). A string: tsx would add
 * helpers to a function that the page does not have.
 */
const RECORDER = `(() => {
  const nb = Jupyter.notebook;
  const rec = (window.__labRec = { replies: [], samples: [] });
  nb.events.on("shell_reply.Kernel", (ev, data) => {
    const r = data && data.reply;
    if (!r || r.header.msg_type !== "execute_reply") return;
    const c = r.content;
    rec.replies.push({ status: c.status, count: c.execution_count == null ? null : c.execution_count, error: [c.ename, c.evalue].filter(Boolean).join(": ") });
  });
  const last = {};
  rec.timer = setInterval(() => {
    nb.get_cells().forEach((c, i) => {
      if (c.cell_type !== "code") return;
      const divs = c.output_area.element[0].querySelectorAll(".js-plotly-plot");
      if (!divs.length) return;
      let points = 0;
      divs.forEach((d) => (d.data || []).forEach((t) => (points += (t.x || t.y || t.z || []).length)));
      const running = c.element.hasClass("running");
      if (last[i] !== points) rec.samples.push({ cell: i, points, running, t: Date.now() });
      last[i] = points;
    });
  }, 200);
})()`;

/** Whether every queued cell is done: none running or waiting (In [*]) and the kernel idle. */
const SETTLED = `(() => {
  const nb = Jupyter.notebook;
  const busy = nb.get_cells().some((c) => c.cell_type === "code" && (c.element.hasClass("running") || c.element.find(".input_prompt").text().includes("*")));
  return !busy && document.querySelector("#kernel_indicator_icon").classList.contains("kernel_idle_icon");
})()`;

const READ_RUN = `(() => {
  const nb = Jupyter.notebook;
  clearInterval(window.__labRec.timer);
  const cells = [];
  const figures = [];
  nb.get_cells().forEach((c, i) => {
    if (c.cell_type !== "code") return;
    const outputs = c.output_area.outputs || [];
    cells.push({
      index: i,
      count: typeof c.input_prompt_number === "number" ? c.input_prompt_number : null,
      running: c.element.hasClass("running"),
      errors: outputs.filter((o) => o.output_type === "error").map((o) => [o.ename, o.evalue].filter(Boolean).join(": ")),
      stderr: outputs.filter((o) => o.output_type === "stream" && o.name === "stderr").map((o) => Array.isArray(o.text) ? o.text.join("") : o.text).join(""),
    });
    c.output_area.element[0].querySelectorAll(".js-plotly-plot").forEach((d) => {
      const box = d.getBoundingClientRect();
      const marks = d.querySelectorAll("g.trace, g.hm, image, path.point, path.surface").length + d.querySelectorAll("canvas").length;
      figures.push({ cell: i, hasSvg: d.querySelector("svg.main-svg") !== null, marks, width: box.width, height: box.height });
    });
  });
  return { cells, figures, replies: window.__labRec.replies, samples: window.__labRec.samples };
})()`;

/** Records what a reader's browser would complain about, and refuses every request off the server. */
function watchPage(page: Page, origin: string): string[] {
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message.split("\n")[0]}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console.error: ${m.text().split("\n")[0].slice(0, 200)}`);
  });
  page.on("requestfailed", (r) => {
    // Leaving the page cancels the kernel's long-poll and the like; anything else is a failure.
    if (r.failure()?.errorText !== "net::ERR_ABORTED" || !r.url().startsWith(origin)) problems.push(`request failed: ${r.url().slice(0, 120)} (${r.failure()?.errorText ?? "?"})`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url().replace(/token=\w+/, "token=…").slice(0, 120)}`);
  });
  void page.route((url) => !url.href.startsWith(origin), (route) => {
    problems.push(`network request: ${route.request().url().slice(0, 120)}`);
    return route.abort();
  });
  return problems;
}

async function openNotebook(page: Page, rel: string): Promise<void> {
  await page.goto(lab.notebookUrl(rel), { waitUntil: "load", timeout: 60_000 });
  await page.waitForFunction("window.Jupyter && Jupyter.notebook && Jupyter.notebook._fully_loaded && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()", undefined, { timeout: 60_000, polling: 200 });
  await page.waitForFunction(SETTLED, undefined, { timeout: 60_000, polling: 200 });
}

/** Opens `rel`, runs every cell with Cell > Run All, waits until the kernel is idle, and reads the page. */
async function runAllInLab(page: Page, rel: string): Promise<LabRun> {
  const pageProblems = watchPage(page, lab.origin);
  await openNotebook(page, rel);
  await page.evaluate(RECORDER);
  const started = performance.now();
  await page.click("#celllink");
  await page.click("#run_all_cells");
  // Run All queues every cell at once; wait for the first to start, then for the queue to drain.
  await page.waitForFunction(`!(${SETTLED})`, undefined, { timeout: 10_000, polling: 100 }).catch(() => undefined);
  await page.waitForFunction(SETTLED, undefined, { timeout: RUN_TIMEOUT_MS, polling: 500 });
  const seconds = (performance.now() - started) / 1000;
  const read = (await page.evaluate(READ_RUN)) as {
    cells: CodeCell[];
    figures: DrawnFigure[];
    replies: LabRun["failedReplies"];
    samples: { cell: number; points: number; running: boolean }[];
  };
  const liveSeries: Record<number, number[]> = {};
  for (const s of read.samples) if (s.running) (liveSeries[s.cell] ??= []).push(s.points);
  return { cells: read.cells, failedReplies: read.replies.filter((r) => r.status !== "ok"), figures: read.figures, liveSeries, pageProblems, seconds };
}

/** Everything a person would see wrong in a run, one line each; empty when the notebook worked. */
function runProblems(run: LabRun): string[] {
  const problems: string[] = [];
  for (const c of run.cells) {
    if (c.running) problems.push(`cell ${c.index} is still running`);
    else if (c.count === null) problems.push(`cell ${c.index} never ran (In [ ])`);
    for (const e of c.errors) problems.push(`cell ${c.index}: error output ${e}`);
  }
  for (const r of run.failedReplies) {
    const cell = run.cells.find((c) => r.count !== null && c.count === r.count);
    const where = cell ? `cell ${cell.index}` : `execution ${r.count ?? "?"}`;
    const stderr = cell?.stderr.trim().split("\n")[0] ?? "";
    problems.push(`${where}: ${r.status}${r.error ? ` (${r.error})` : ""}${stderr ? `: ${stderr.slice(0, 200)}` : ""}`);
  }
  if (!run.figures.length) problems.push("no plotly figure was drawn");
  for (const f of run.figures) {
    if (!f.hasSvg) problems.push(`cell ${f.cell}: a figure without its SVG`);
    else if (f.marks === 0) problems.push(`cell ${f.cell}: an empty figure (no traces drawn)`);
    else if (f.width < 10 || f.height < 10) problems.push(`cell ${f.cell}: a figure of ${f.width}x${f.height} px`);
  }
  const live = Object.values(run.liveSeries).some((s) => new Set(s).size >= 3 && s[s.length - 1] > s[0]);
  if (!live) problems.push(`no live figure grew while its cell ran (points seen while running: ${JSON.stringify(run.liveSeries)})`);
  problems.push(...run.pageProblems);
  return problems;
}

before(async () => {
  dir = tmpDir("cliplab-lab-");
  const nbDir = path.join(dir, "notebooks");
  fs.mkdirSync(nbDir);
  const source = path.join(REPO_ROOT, "notebooks", "01-train.ipynb");
  fs.copyFileSync(source, path.join(nbDir, "01-train.ipynb"));
  // The broken copy: a type error right after the first cell, so nothing after it (the live
  // figure, the curves) can run.
  const nb = JSON.parse(fs.readFileSync(source, "utf8")) as { cells: Record<string, unknown>[] };
  const first = nb.cells.findIndex((c) => c.cell_type === "code");
  nb.cells.splice(first + 1, 0, { cell_type: "code", id: "broken", metadata: {}, execution_count: null, outputs: [], source: ['const broken: number = "deliberately not a number";'] });
  fs.writeFileSync(path.join(nbDir, "01-broken.ipynb"), JSON.stringify(nb, null, 1));
  lab = await startLab({ notebookDir: dir, stateDir: path.join(dir, "state"), port: await freePort(8950), env: { CLIPLAB_QUICK: "1" } });
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
});

after(async () => {
  await browser?.close();
  await lab?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it("serves the notebook tree with the cliplab kernel, and nothing from the network", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = watchPage(page, lab.origin);
  await page.goto(lab.url, { waitUntil: "load" });
  await page.waitForSelector("#notebook_list .item_link", { timeout: 30_000 });
  const links = (await page.evaluate(`Array.from(document.querySelectorAll("#notebook_list .item_link")).map((a) => a.textContent.trim())`)) as string[];
  assert.ok(links.includes("notebooks"), `the tree lists ${links.join(", ")}`);
  const specs = (await (await fetch(`${lab.origin}/api/kernelspecs?token=${lab.token}`)).json()) as { kernelspecs: Record<string, unknown> };
  assert.ok("tslab-cliplab" in specs.kernelspecs, `kernelspecs: ${Object.keys(specs.kernelspecs).join(", ")}`);
  await page.close();
  assert.deepEqual(problems, []);
});

it("runs notebook 01 (quick) through Cell > Run All: every cell finishes, figures draw, the live figure updates", async (t) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const run = await runAllInLab(page, "notebooks/01-train.ipynb");
    t.diagnostic(`Run All took ${run.seconds.toFixed(0)} s; ${run.figures.length} figures; points of the live figures while their cells ran: ${JSON.stringify(run.liveSeries)}`);
    assert.deepEqual(runProblems(run), [], `01-train.ipynb in the lab (${run.seconds.toFixed(0)} s)`);
    assert.ok(run.cells.length >= 5 && run.cells.every((c) => c.count !== null));
    const trainingCell = Object.entries(run.liveSeries).find(([, s]) => new Set(s).size >= 3);
    assert.ok(trainingCell, "a figure changed at least three times while its cell ran");

    // The keyboard: select the first code cell, clear its output from the menu, Shift+Enter.
    const first = run.cells[0].index;
    const cell = page.locator("#notebook-container > .cell").nth(first);
    await cell.locator(".input_prompt").click();
    assert.equal(await page.evaluate("Jupyter.notebook.get_selected_index()"), first);
    await page.click("#celllink");
    await page.hover("#current_outputs");
    await page.click("#clear_current_output");
    assert.equal(await cell.locator(".output_area").count(), 0, "the output was cleared");
    await page.keyboard.press("Shift+Enter");
    await cell.locator(".output_area").first().waitFor({ timeout: 60_000 });
    await page.waitForFunction(SETTLED, undefined, { timeout: 60_000, polling: 200 });
    assert.match((await cell.locator(".output_subarea").allTextContents()).join(""), /backend: \w+/);
    assert.ok(Number((await cell.locator(".input_prompt").textContent())?.match(/\[(\d+)\]/)?.[1]) > Math.max(...run.cells.map((c) => c.count ?? 0)), "the cell ran again");

    // ... and a new cell: Esc, B (insert below), Enter (edit), type, Shift+Enter.
    await page.keyboard.press("Escape");
    await page.keyboard.press("b");
    await page.keyboard.press("Enter");
    await page.keyboard.type("console.log(`six times seven is ${6 * 7}`);");
    await page.keyboard.press("Shift+Enter");
    await page.waitForFunction(SETTLED, undefined, { timeout: 60_000, polling: 200 });
    const added = page.locator("#notebook-container > .cell").nth(first + 2);
    assert.match((await added.locator(".output_subarea").allTextContents()).join(""), /six times seven is 42/);
    assert.deepEqual(run.pageProblems, [], "no console error while typing");
  } finally {
    await page.close();
  }
});

it("fails loudly on a deliberately broken copy: the erroring cell, the cells that never ran, the missing figures", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const run = await runAllInLab(page, "notebooks/01-broken.ipynb");
    const problems = runProblems(run);
    const text = problems.join("\n");
    const broken = run.cells[1].index;
    assert.match(text, new RegExp(`cell ${broken}: error`), text);
    assert.match(text, /deliberately not a number|not assignable/, text);
    assert.match(text, new RegExp(`cell ${run.cells[2].index} never ran`), text);
    assert.match(text, /no plotly figure was drawn/, text);
    assert.match(text, /no live figure grew/, text);
  } finally {
    await page.close();
  }
});

it("stops the server and its kernels: nothing is left running", async () => {
  const kernels = (await (await fetch(`${lab.origin}/api/kernels?token=${lab.token}`)).json()) as unknown[];
  assert.ok(kernels.length >= 2, `both notebooks started a kernel (${kernels.length})`);
  assert.ok(processesUsing(lab.runtimeDir).length >= 2, "the kernels run on the server's runtime directory");
  await lab.stop();
  assert.deepEqual(processesUsing(lab.runtimeDir), [], "no kernel left");
  assert.throws(() => process.kill(lab.pid, 0), /ESRCH/, "the server is gone");
  await assert.rejects(fetch(`${lab.origin}/api/status`, { signal: AbortSignal.timeout(2000) }));
});
