/**
 * Executes a notebook headless on the tslab kernel with Debian's `jupyter nbconvert` and writes it
 * as HTML (offline template: no require.js or MathJax requests). A failing cell fails the run:
 * nbconvert stops at the first error and exits non-zero; we keep its error, one cell's worth.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const JUPYTER = process.env.CLIPLAB_JUPYTER ?? "/usr/bin/jupyter";
export const KERNEL_NAME = "tslab-cliplab";
const JUPYTER_DIR = path.join(REPO_ROOT, ".jupyter");
const TEMPLATES = path.join(REPO_ROOT, "scripts", "nbconvert");

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

/** The error nbconvert printed, without the Python traceback around it. */
function cellError(stderr: string): string {
  const at = stderr.indexOf("An error occurred while executing the following cell");
  const text = at >= 0 ? stderr.slice(at) : stderr.split("\n").slice(-15).join("\n");
  return text.trim().slice(0, 4000);
}

/**
 * Runs `notebook` and writes `<outDir>/<name>.html`. `env` is added to the kernel's environment
 * (e.g. CLIPLAB_QUICK=1). Rejects with the failing cell and its error.
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
  const args = [
    "nbconvert",
    "--execute",
    "--to",
    "html",
    `--TemplateExporter.extra_template_basedirs=${TEMPLATES}`,
    "--template",
    "offline",
    `--ExecutePreprocessor.kernel_name=${KERNEL_NAME}`,
    `--ExecutePreprocessor.timeout=${opts.timeoutSeconds ?? 1800}`,
    "--output-dir",
    outDir,
    "--output",
    name,
    notebook,
  ];
  const started = performance.now();
  const env = { ...process.env, ...opts.env, JUPYTER_PATH: JUPYTER_DIR };
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(JUPYTER, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (c) => resolve({ code: c, stderr: err }));
  });
  if (code !== 0) throw new NotebookError(`notebooks: ${path.relative(REPO_ROOT, notebook)} failed:\n${cellError(stderr)}`);
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
