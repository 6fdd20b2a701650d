/**
 * Executes a notebook headless on the tslab kernel with Debian's `jupyter nbconvert` and writes it
 * as HTML (offline template: no require.js or MathJax requests). A failing cell fails the run:
 * nbconvert stops at the first error and exits non-zero; we keep its error, one cell's worth.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const JUPYTER = process.env.CLIPLAB_JUPYTER ?? "/usr/bin/jupyter";
export const KERNEL_NAME = "tslab-cliplab";
const JUPYTER_DIR = path.join(REPO_ROOT, ".jupyter");
const TEMPLATES = path.join(REPO_ROOT, "scripts", "nbconvert");
const EXECUTE_PY = path.join(TEMPLATES, "execute.py");
/** Debian's Python, which has nbclient; a pyenv python3 earlier on PATH does not. */
const PYTHON = process.env.CLIPLAB_JUPYTER_PYTHON ?? "/usr/bin/python3";

export interface NotebookRun {
  notebook: string;
  html: string;
  seconds: number;
}

export class NotebookError extends Error {
  override name = "NotebookError";
}

function checkSetup(): void {
  if (!fs.existsSync(JUPYTER)) throw new NotebookError(`notebooks: ${JUPYTER} is missing; run \`bash scripts/setup.sh\` (installs jupyter-nbconvert)`);
  const spec = path.join(JUPYTER_DIR, "kernels", KERNEL_NAME, "kernel.json");
  if (!fs.existsSync(spec)) throw new NotebookError(`notebooks: kernelspec ${spec} is missing; run \`node scripts/install-kernel.js\``);
}

interface NotebookJson {
  cells: { cell_type: string; source: string | string[]; outputs?: { output_type: string; name?: string; text?: string | string[]; ename?: string; evalue?: string; traceback?: string[] }[] }[];
}

const joined = (t: string | string[] | undefined) => (Array.isArray(t) ? t.join("") : (t ?? ""));

/** What a cell printed on stderr and any error it raised (tslab reports type errors on stderr). */
export function cellErrorText(cell: NotebookJson["cells"][number]): string {
  const outputs = cell.outputs ?? [];
  const stderr = outputs.filter((o) => o.output_type === "stream" && o.name === "stderr").map((o) => joined(o.text)).join("");
  const errors = outputs
    .filter((o) => o.output_type === "error")
    .map((o) => [o.ename, o.evalue].filter(Boolean).join(": ") || (o.traceback ?? []).join("\n"))
    // tslab's tracebacks carry ANSI colours.
    .map((t) => t.replace(/\u001b\[[0-9;]*m/g, ""));
  return [stderr.trim(), ...errors].filter(Boolean).join("\n") || "(the kernel reported an error without a message)";
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (c) => resolve({ code: c, stderr: err }));
  });
}

/**
 * Runs `notebook` and writes `<outDir>/<name>.html`. `env` is added to the kernel's environment
 * (e.g. CLIPLAB_QUICK=1). Rejects with the first failing cell and its error, and then writes no HTML.
 * The notebook is executed to a temporary .ipynb with errors recorded (nbconvert's own failure
 * message drops what tslab prints on stderr, such as type errors), then rendered.
 */
export async function executeNotebook(
  notebook: string,
  outDir: string,
  opts: { env?: Record<string, string>; timeoutSeconds?: number } = {},
): Promise<NotebookRun> {
  checkSetup();
  if (!fs.existsSync(notebook)) throw new NotebookError(`notebooks: ${notebook} does not exist`);
  fs.mkdirSync(outDir, { recursive: true });
  const name = path.basename(notebook, ".ipynb");
  const html = path.join(outDir, `${name}.html`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "cliplab-nb-"));
  const env = { ...process.env, ...opts.env, JUPYTER_PATH: JUPYTER_DIR };
  const started = performance.now();
  try {
    // nbclient stops at the first failing cell, like nbconvert, but execute.py still writes the
    // notebook so that the cell's stderr (where tslab puts type errors) can be reported.
    const out = path.join(work, `${name}.ipynb`);
    const executed = await run(PYTHON, [EXECUTE_PY, notebook, out, KERNEL_NAME, String(opts.timeoutSeconds ?? 1800)], env);
    const failedAt = /failed-cell (\d+)/.exec(executed.stderr);
    if (failedAt && fs.existsSync(out)) {
      const index = Number(failedAt[1]);
      const cell = (JSON.parse(fs.readFileSync(out, "utf8")) as NotebookJson).cells[index];
      throw new NotebookError(
        `notebooks: ${path.relative(REPO_ROOT, notebook)} failed in cell ${index}:\n${cellErrorText(cell).slice(0, 4000)}\n--- cell source ---\n${joined(cell.source).slice(0, 1500)}`,
      );
    }
    if (executed.code !== 0 || !fs.existsSync(out)) {
      throw new NotebookError(`notebooks: ${path.relative(REPO_ROOT, notebook)} did not run: ${executed.stderr.trim().split("\n").slice(-5).join(" | ")}`);
    }
    const rendered = await run(
      JUPYTER,
      ["nbconvert", "--to", "html", `--TemplateExporter.extra_template_basedirs=${TEMPLATES}`, "--template", "offline", "--output-dir", work, "--output", name, out],
      env,
    );
    const tmpHtml = path.join(work, `${name}.html`);
    if (rendered.code !== 0 || !fs.existsSync(tmpHtml)) {
      throw new NotebookError(`notebooks: rendering ${name} as HTML failed: ${rendered.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    }
    // Into place in one step, so a failed run never leaves a half-written report.
    fs.copyFileSync(tmpHtml, `${html}.tmp`);
    fs.renameSync(`${html}.tmp`, html);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return { notebook, html, seconds: (performance.now() - started) / 1000 };
}

/** notebooks/NN-*.ipynb in order. */
export function listNotebooks(dir = path.join(REPO_ROOT, "notebooks")): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".ipynb"))
    .sort()
    .map((f) => path.join(dir, f));
}
