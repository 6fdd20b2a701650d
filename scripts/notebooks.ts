/**
 * `npm run notebooks [-- [--quick] [names...]]`: executes every notebook (or the named ones) on the
 * tslab kernel into reports/notebooks/*.html, stopping at the first failing cell, then opens each
 * HTML in headless Chromium and checks that every plotly figure rendered and nothing logged an error.
 * `--quick` (or CLIPLAB_QUICK=1) shrinks the notebooks' work, as CI does.
 */
import path from "node:path";
import { REPO_ROOT, executeNotebook, listNotebooks } from "./lib/nbconvert";
import { checkHtmlFiles } from "./lib/browser_check";

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes("--quick") || process.env.CLIPLAB_QUICK === "1";
  const names = argv.filter((a) => !a.startsWith("--"));
  const all = listNotebooks();
  const chosen = names.length ? all.filter((nb) => names.some((n) => path.basename(nb).includes(n))) : all;
  if (chosen.length === 0) {
    console.error(`notebooks: nothing matches ${names.join(" ")} (notebooks: ${all.map((n) => path.basename(n)).join(", ")})`);
    return 2;
  }
  const outDir = path.join(REPO_ROOT, "reports", "notebooks");
  for (const nb of chosen) {
    process.stderr.write(`notebooks: executing ${path.basename(nb)}${quick ? " (quick)" : ""} ... `);
    const run = await executeNotebook(nb, outDir, { env: quick ? { CLIPLAB_QUICK: "1" } : {} });
    process.stderr.write(`${run.seconds.toFixed(0)} s\n`);
    const [check] = await checkHtmlFiles([run.html]);
    const rel = path.relative(REPO_ROOT, run.html);
    if (check.problems.length) {
      console.error(`notebooks: ${rel}: ${check.problems.length} problem(s):\n  ${check.problems.join("\n  ")}`);
      return 1;
    }
    console.log(`${rel}: ${check.figures.length} figures rendered, no errors`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
