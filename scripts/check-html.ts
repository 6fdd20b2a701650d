/**
 * `npm run check-html -- FILE...`: opens each HTML file in headless Chromium and reports whether
 * every plotly figure rendered with no JavaScript error or network request. `--screenshot OUT.png`
 * also saves a full-page picture of the first file.
 */
import { checkHtmlFiles, screenshot } from "./lib/browser_check";

async function main(argv: string[]): Promise<number> {
  const at = argv.indexOf("--screenshot");
  const png = at >= 0 ? argv[at + 1] : undefined;
  const files = argv.filter((a, i) => !a.startsWith("--") && (at < 0 || i !== at + 1));
  if (files.length === 0) {
    console.error("usage: npm run check-html -- FILE.html... [--screenshot OUT.png]");
    return 2;
  }
  let failed = 0;
  for (const c of await checkHtmlFiles(files)) {
    if (c.problems.length) {
      failed += 1;
      console.error(`${c.file}: ${c.problems.join("; ")}`);
    } else console.log(`${c.file}: ${c.figures.length} figures rendered, no errors`);
  }
  if (png) await screenshot(files[0], png);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
