/**
 * Every notebook runs headless on the tslab kernel in quick mode (CLIPLAB_QUICK=1), and its HTML
 * export renders every figure in Chromium with no JavaScript error. Notebooks stay in git without
 * outputs.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { executeNotebook, listNotebooks } from "../../scripts/lib/nbconvert";
import { checkHtmlFiles } from "../../scripts/lib/browser_check";
import { tmpDir } from "../helpers/fixtures";

const notebooks = listNotebooks();

it("the lab ships its notebooks", () => {
  const names = notebooks.map((n) => path.basename(n));
  for (const expected of ["01-train.ipynb", "02-embedding-space.ipynb", "06-your-model-your-data.ipynb"]) assert.ok(names.includes(expected), `${expected} missing from notebooks/`);
});

describe("notebooks are committed without outputs", () => {
  for (const nb of notebooks) {
    it(path.basename(nb), () => {
      const json = JSON.parse(fs.readFileSync(nb, "utf8")) as { cells: { cell_type: string; outputs?: unknown[]; execution_count?: number | null }[]; metadata: { kernelspec?: { name?: string } } };
      assert.equal(json.metadata.kernelspec?.name, "tslab-cliplab");
      for (const [i, c] of json.cells.entries()) {
        if (c.cell_type !== "code") continue;
        assert.deepEqual(c.outputs, [], `cell ${i} has outputs`);
        assert.equal(c.execution_count ?? null, null, `cell ${i} has an execution count`);
      }
    });
  }
});

describe("notebooks execute in quick mode and render in Chromium", () => {
  const outDir = tmpDir("notebooks-");
  for (const nb of notebooks) {
    it(path.basename(nb), async () => {
      const run = await executeNotebook(nb, outDir, { env: { CLIPLAB_QUICK: "1" }, timeoutSeconds: 600 });
      const [check] = await checkHtmlFiles([run.html]);
      assert.deepEqual(check.problems, [], `${path.basename(nb)}: ${check.problems.join("; ")}`);
      assert.ok(check.figures.length >= 1, `${path.basename(nb)} drew no figure`);
    });
  }
});
