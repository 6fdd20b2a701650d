#!/usr/bin/env node
/**
 * Writes the Jupyter kernelspec "tslab-cliplab" into <repo>/.jupyter/kernels/. The kernel starts
 * tslab in the repository root, so notebooks import "./src/...". Jupyter finds it through
 * JUPYTER_PATH=<repo>/.jupyter (set by `npm run notebooks`; export it yourself for `jupyter lab`).
 * Plain JavaScript so that it runs right after `npm ci` with nothing compiled.
 */
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const repo = path.resolve(__dirname, "..");
const tslab = path.join(repo, "node_modules", ".bin", "tslab");
if (!fs.existsSync(tslab)) {
  console.error(`install-kernel: ${tslab} is missing; run \`npm ci\` first`);
  process.exit(1);
}
const dir = path.join(repo, ".jupyter", "kernels", "tslab-cliplab");
fs.mkdirSync(dir, { recursive: true });
// sh receives the connection file as $0; single quotes keep a repo path with spaces intact.
const quoted = `'${repo.replace(/'/g, `'\\''`)}'`;
const spec = {
  argv: ["/bin/sh", "-c", `cd ${quoted} && exec ./node_modules/.bin/tslab kernel --config-path "$0"`, "{connection_file}"],
  display_name: "TypeScript (cliplab)",
  language: "typescript",
};
const file = path.join(dir, "kernel.json");
fs.writeFileSync(`${file}.tmp`, JSON.stringify(spec, null, 2) + "\n");
fs.renameSync(`${file}.tmp`, file);
console.log(`install-kernel: wrote ${path.relative(repo, file)} (use JUPYTER_PATH=${path.join(repo, ".jupyter")})`);
