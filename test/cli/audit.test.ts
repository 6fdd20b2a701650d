/** `cliplab audit robustness` in-process on the tiny fixture model, and its argument errors. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli as run } from "../helpers/cli";
import { readArrowFile } from "../../src/io/arrow";
import { listCorruptions } from "../../src/audit/robustness/corruptions";
import { robustnessSection } from "../../src/audit/robustness/section";
import { fixturePath, tmpDir } from "../helpers/fixtures";

describe("cliplab audit robustness", () => {
  it("--quick writes the Arrow table and the JSON result, and prints the summary JSON last", async () => {
    const out = path.join(tmpDir(), "audit");
    const r = await run(["audit", "robustness", "--checkpoint", fixturePath("tiny_vit.safetensors"), "--quick", "--out", out, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.ok(summary.clean.top1 >= 0 && summary.clean.top1 <= 1);
    assert.equal(summary.corruptions.length, listCorruptions().length * 5);
    for (const c of summary.corruptions) assert.deepEqual(Object.keys(c), ["name", "severity", "top1", "matchCosine"]);
    assert.deepEqual(
      summary.attacks.map((a: { attack: string; norm: string; eps: number }) => `${a.attack} ${a.norm} ${a.eps}`),
      ["fgsm linf 0", "pgd linf 0", `fgsm linf ${8 / 255}`, `pgd linf ${8 / 255}`, "fgsm l2 0", "pgd l2 0", "fgsm l2 1", "pgd l2 1"],
    );
    for (const a of summary.attacks) assert.deepEqual(Object.keys(a), ["attack", "norm", "eps", "top1"]);
    assert.equal(summary.sanity.epsZeroEqualsClean, true);

    const table = readArrowFile(path.join(out, "robustness.arrow"));
    // clean + 55 corruption cells + 8 attacks + 2 more-steps runs + 2 targeted runs.
    assert.equal(table.numRows, 1 + 55 + 8 + 2 + 2);
    assert.deepEqual(table.getChild("kind")!.toArray().slice(0, 2), ["clean", "corruption"]);
    const saved = JSON.parse(fs.readFileSync(path.join(out, "robustness.json"), "utf8"));
    assert.equal(saved.checkpoint, fixturePath("tiny_vit.safetensors"));
    assert.equal(saved.clean.top1, summary.clean.top1);
    assert.ok(robustnessSection(saved).blocks.length > 5);
    assert.deepEqual(fs.readdirSync(out).sort(), ["robustness.arrow", "robustness.json"]);
  });

  it("bad arguments exit 2 with one error line and the usage; a missing checkpoint exits 1", async () => {
    const cases: [string[], RegExp][] = [
      [["audit"], /^cliplab audit: missing audit name \(audits: [^)]*\brobustness\b[^)]*\)$/],
      [["audit", "speed"], /^cliplab audit: unknown audit "speed" \(audits: [^)]*\brobustness\b[^)]*\)$/],
      [["audit", "robustness"], /^cliplab audit: --checkpoint is required$/],
      [["audit", "robustness", "--checkpoint", "x", "--limit", "0"], /^cliplab audit: --limit must be an integer >= 1, got 0$/],
      [["audit", "robustness", "--checkpoint", "x", "--seed=-1"], /^cliplab audit: --seed must be an integer >= 0, got -1$/],
      [["audit", "robustness", "--checkpoint", "x", "--eps", "3"], /^cliplab audit: Unknown option '--eps'/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.match(r.err[0], re);
      assert.match(r.err[1], /^usage: cliplab audit <audit>/);
    }
    const missing = await run(["audit", "robustness", "--checkpoint", path.join(tmpDir(), "nope.safetensors")]);
    assert.equal(missing.code, 1);
    assert.equal(missing.err.filter((l) => l.startsWith("cliplab audit:")).length, 1);
    assert.match(missing.err[missing.err.length - 1], /^cliplab audit: .*nope\.safetensors/);
    const help = await run(["audit", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out.join("\n"), /robustness .*\n +usage: cliplab audit robustness --checkpoint FILE/);
  });
});
