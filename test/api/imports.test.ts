/**
 * Two rules on every relative import in src/ (only code counts: comments may show notebook usage).
 *
 * tslab (the notebook kernel) loads local TypeScript through its own require hook, which does not
 * resolve a directory to its index file: `import "./data"` fails in a notebook even though Node and
 * tsx accept it. Every relative import in src/ must name a file.
 *
 * Layers: a file's layer is its top folder in src/ (src/index.ts
 * is `index`; src/api/ holds the barrels of index's namespaces), and a layer imports only itself and the layers of its row in LAYERS, which always
 * sit lower in the table. README's layout section shows the same table; a third test keeps the two
 * equal.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const SRC = path.join(__dirname, "..", "..", "src");
const README = path.join(__dirname, "..", "..", "README.md");

/** Bottom to top: each layer and the layers it may import ("*": any). */
const LAYERS: Record<string, readonly string[] | "*"> = {
  util: [],
  backend: ["util"],
  image: ["util"],
  text: ["util"],
  model: ["backend", "image", "text", "util"],
  loss: ["model", "backend", "image", "text", "util"],
  io: ["model", "backend", "image", "text", "util"],
  data: ["io", "loss", "model", "backend", "image", "text", "util"],
  engine: ["io", "loss", "model", "backend", "image", "text", "util"],
  eval: ["data", "engine", "io", "loss", "model", "backend", "image", "text", "util"],
  train: ["eval", "data", "engine", "io", "loss", "model", "backend", "image", "text", "util"],
  prompts: ["train", "eval", "data", "engine", "io", "loss", "model", "backend", "image", "text", "util"],
  audit: ["prompts", "train", "eval", "data", "engine", "io", "loss", "model", "backend", "image", "text", "util"],
  viz: ["audit", "prompts", "train", "eval", "data", "engine", "io", "loss", "model", "backend", "image", "text", "util"],
  report: ["viz", "audit", "prompts", "train", "eval", "data", "engine", "io", "loss", "model", "backend", "image", "text", "util"],
  notebook: ["report", "viz", "audit", "prompts", "train", "eval", "data", "engine", "io", "loss", "model", "backend", "image", "text", "util"],
  cli: ["report", "viz", "audit", "prompts", "train", "eval", "data", "engine", "io", "loss", "model", "backend", "image", "text", "util"],
  api: "*",
  index: "*",
};

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

/** Every relative import of every file in src/: the file, the import as written, and its absolute target. */
function relativeImports(): { file: string; spec: string; target: string }[] {
  return tsFiles(SRC).flatMap((file) => {
    const text = fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    return [...text.matchAll(/(?:from|import|import\(|require\()\s*["'](\.{1,2}\/[^"']*)["']/g)].map((m) => ({
      file,
      spec: m[1],
      target: path.resolve(path.dirname(file), m[1]),
    }));
  });
}

/** The layer of a path in src/: its top folder, or the file's name without .ts at the top. */
function layerOf(p: string): string {
  const top = path.relative(SRC, p).split(path.sep)[0];
  return top.replace(/\.(ts|json)$/, "");
}

it("no relative import in src/ resolves only to a directory index", () => {
  const bad: string[] = [];
  for (const { file, spec, target } of relativeImports()) {
    const isFile = [".ts", ".json", ""].some((ext) => fs.existsSync(target + ext) && fs.statSync(target + ext).isFile());
    if (!isFile) bad.push(`${path.relative(SRC, file)}: "${spec}"`);
  }
  assert.deepEqual(bad, []);
});

it("every import in src/ goes down the layer table", () => {
  const bad: string[] = [];
  for (const top of fs.readdirSync(SRC)) {
    const layer = top.replace(/\.ts$/, "");
    if (!(layer in LAYERS) && (top.endsWith(".ts") || fs.statSync(path.join(SRC, top)).isDirectory())) bad.push(`${top}: not in the layer table`);
  }
  for (const { file, spec, target } of relativeImports()) {
    const from = layerOf(file);
    const rel = path.relative(SRC, target);
    if (rel.startsWith("..")) {
      bad.push(`${path.relative(SRC, file)}: "${spec}" (outside src/)`);
      continue;
    }
    const to = layerOf(target);
    const allowed = LAYERS[from];
    if (from === to || allowed === undefined || allowed === "*" || allowed.includes(to)) continue;
    bad.push(`${path.relative(SRC, file)}: "${spec}" (layer ${from} may not import layer ${to})`);
  }
  assert.deepEqual(bad, []);
});

it("every layer imports only layers below it, and README's layer table is this one", () => {
  const order = Object.keys(LAYERS);
  for (const [layer, allowed] of Object.entries(LAYERS)) {
    if (allowed === "*") continue;
    for (const to of allowed) {
      assert.ok(order.indexOf(to) >= 0 && order.indexOf(to) < order.indexOf(layer), `LAYERS: ${layer} may import ${to}, which is not below it`);
    }
  }
  // The rows of README's layout section: | `layer` | `a`, `b` | (or "nothing", or "any layer").
  const readme = fs.readFileSync(README, "utf8");
  const start = readme.indexOf("\n## Layout\n");
  assert.ok(start >= 0, "README.md has no ## Layout section");
  const end = readme.indexOf("\n## ", start + 1);
  const layout = readme.slice(start, end < 0 ? undefined : end);
  const rows: Record<string, readonly string[] | "*"> = {};
  for (const m of layout.matchAll(/^\| `([a-z]+)` \| ([^|]*) \|$/gm)) {
    rows[m[1]] = m[2].trim() === "any layer" ? "*" : [...m[2].matchAll(/`([a-z]+)`/g)].map((n) => n[1]);
  }
  assert.deepEqual(rows, LAYERS);
});
