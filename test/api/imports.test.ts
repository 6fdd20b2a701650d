/**
 * tslab (the notebook kernel) loads local TypeScript through its own require hook, which does not
 * resolve a directory to its index file: `import "./data"` fails in a notebook even though Node and
 * tsx accept it. Every relative import in src/ must name a file.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const SRC = path.join(__dirname, "..", "..", "src");

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

it("no relative import in src/ resolves only to a directory index", () => {
  const bad: string[] = [];
  for (const file of tsFiles(SRC)) {
    // Comments may show notebook usage ("./src/..."); only code counts.
    const text = fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    for (const m of text.matchAll(/(?:from|import|require\()\s*["'](\.{1,2}\/[^"']*)["']/g)) {
      const target = path.resolve(path.dirname(file), m[1]);
      const isFile = [".ts", ".json", ""].some((ext) => fs.existsSync(target + ext) && fs.statSync(target + ext).isFile());
      if (!isFile) bad.push(`${path.relative(SRC, file)}: "${m[1]}"`);
    }
  }
  assert.deepEqual(bad, []);
});
