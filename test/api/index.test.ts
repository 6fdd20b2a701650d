/**
 * The curated entry point, src/index.ts: the names other code is promised, a snapshot of every
 * exported value (so a change to the public surface is a visible diff in review), and notebooks
 * that import the toolkit only through it.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import * as cliplab from "../../src/index";

const ROOT = path.join(__dirname, "..", "..");
const SNAPSHOT = path.join(__dirname, "exports.snapshot.txt");
const UPDATE = "UPDATE_SNAPSHOT=1 node --import tsx --test test/api/index.test.ts";

/** A namespace (`export * as ns from "./api/ns"`): a module object, not a plain exported constant. */
function isNamespace(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && (v as { __esModule?: unknown }).__esModule === true;
}

/** Every exported value name, sorted; a namespace's members as `ns.name` (types are not visible at run time). */
function exportedNames(): string[] {
  const names: string[] = [];
  for (const [name, value] of Object.entries(cliplab)) {
    if (isNamespace(value)) names.push(...Object.keys(value).map((member) => `${name}.${member}`));
    else names.push(name);
  }
  return names.sort();
}

it("src/index.ts exports the public API", () => {
  const names = [
    "loadCheckpoint", "saveCheckpoint", "tokenize", "clipLoss", "sigLipLoss", "Clip", "initBackend", "currentBackend", "shutdownBackend",
    "listModels", "getModelConfig", "addModelConfig", "zeroShotClassifier", "recallAtK", "trainClip", "loadImages", "openDataset",
    "runPromptStudy", "auditRobustness", "runFairnessAudit", "showFigure", "showTable", "showSection", "writeReport",
  ];
  for (const n of names) assert.equal(typeof (cliplab as Record<string, unknown>)[n], "function", n);
  for (const m of ["encodeImage", "encodeText", "forward", "dispose"]) assert.equal(typeof (cliplab.Clip.prototype as any)[m], "function", m);
  for (const ns of ["robustness", "fairness", "prompts", "stats", "formats"]) assert.ok(isNamespace((cliplab as Record<string, unknown>)[ns]), `namespace ${ns}`);
});

it("internals stay off the public API", () => {
  const names = new Set(exportedNames().map((n) => n.slice(n.lastIndexOf(".") + 1)));
  for (const n of ["toModelInput", "stampBorder", "FRAMED", "PLAIN", "plotlyText", "CLASS_COLORS", "carveValidation", "resetPlotly", "setNotebookDisplay"]) {
    assert.equal(names.has(n), false, `${n} is internal and must not be exported`);
  }
});

it("the exported values match test/api/exports.snapshot.txt", () => {
  const actual = exportedNames();
  for (const n of actual) {
    const [ns, member] = n.includes(".") ? n.split(".") : [undefined, n];
    const value = ns ? (cliplab as unknown as Record<string, Record<string, unknown>>)[ns][member] : (cliplab as Record<string, unknown>)[member];
    assert.notEqual(value, undefined, `${n} is exported as undefined`);
  }
  const text = actual.join("\n") + "\n";
  if (process.env.UPDATE_SNAPSHOT === "1") {
    fs.writeFileSync(SNAPSHOT, text);
    return;
  }
  const expected = fs.existsSync(SNAPSHOT) ? fs.readFileSync(SNAPSHOT, "utf8").split("\n").filter((l) => l !== "") : [];
  const added = actual.filter((n) => !expected.includes(n));
  const removed = expected.filter((n) => !actual.includes(n));
  assert.ok(
    added.length === 0 && removed.length === 0,
    `the public API changed (src/index.ts or src/api/*.ts): added ${added.length ? added.join(", ") : "nothing"}; removed ${removed.length ? removed.join(", ") : "nothing"}. ` +
      `If that is deliberate, rewrite the snapshot with \`${UPDATE}\` and commit test/api/exports.snapshot.txt with the change.`,
  );
  assert.equal(fs.readFileSync(SNAPSHOT, "utf8"), text, `test/api/exports.snapshot.txt is not sorted one name per line; rewrite it with \`${UPDATE}\``);
});

/** The module specifiers a notebook code cell imports or requires (static, side-effect, dynamic, export-from). */
function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)["']([^"']+)["']/g)) found.push(m[1]);
  return found;
}

it("notebooks import the toolkit only from ./src/index", () => {
  const dir = path.join(ROOT, "notebooks");
  const notebooks = fs.readdirSync(dir).filter((f) => f.endsWith(".ipynb")).sort();
  assert.ok(notebooks.length >= 6, "notebooks/ holds the notebooks");
  const deep: string[] = [];
  let viaIndex = 0;
  for (const file of notebooks) {
    const nb = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as { cells: { cell_type: string; source: string | string[] }[] };
    nb.cells.forEach((cell, i) => {
      if (cell.cell_type !== "code") return;
      for (const spec of specifiers(Array.isArray(cell.source) ? cell.source.join("") : cell.source)) {
        if (!spec.startsWith(".")) continue; // packages (tslab, @tensorflow/tfjs, node:fs, sharp)
        if (spec === "./src/index") viaIndex++;
        else deep.push(`${file} cell ${i}: "${spec}"`);
      }
    });
  }
  assert.deepEqual(deep, [], "a notebook imports past the public API; export what it needs from src/index.ts instead");
  assert.ok(viaIndex >= notebooks.length, "every notebook imports ./src/index");
});
