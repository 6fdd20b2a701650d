/** `cliplab audit fairness`, in-process, on the tiny reference checkpoint and the first test images. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCli } from "../helpers/cli";

const CHECKPOINT = path.join(__dirname, "..", "fixtures", "tiny_vit.safetensors");

describe("cliplab audit fairness", () => {
  it("--groups planted:border: every probe with interval and p-value; --json ends with the result", async () => {
    const r = await runCli(["audit", "fairness", "--checkpoint", CHECKPOINT, "--groups", "planted:border", "--limit", "60", "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.out[0], /on 60 test images: framed 30, plain 30; focus framed/);
    assert.ok(r.out.some((l) => /equalised-odds gap \(shirt\): -?\d\.\d{3} \[/.test(l)), r.out.join("\n"));
    const json = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(json.n, 60);
    assert.ok(json.probes.length >= 9);
    assert.ok(json.probes.every((p: { pValue: number }) => p.pValue > 0 && p.pValue <= 1));
    assert.equal(typeof json.cleanAccuracy.value, "number");
  });

  it("--groups file:PATH reads one label per line; --focus picks the group", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fair-cli-"));
    const file = path.join(dir, "groups.txt");
    fs.writeFileSync(file, Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? "left" : "right")).join("\n") + "\n");
    const r = await runCli(["audit", "fairness", "--checkpoint", CHECKPOINT, "--groups", `file:${file}`, "--limit", "40", "--focus", "right"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.out[0], /left 10, right 30; focus right/);
    const short = await runCli(["audit", "fairness", "--checkpoint", CHECKPOINT, "--groups", `file:${file}`, "--limit", "50"]);
    assert.equal(short.code, 2);
    assert.match(short.err[0], /holds 40 labels, but 50 test images are audited/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("usage errors: exit 2 with one line naming the option", async () => {
    const cases: [string[], RegExp][] = [
      [["--groups", "planted:border"], /--checkpoint is required/],
      [["--checkpoint", CHECKPOINT], /--groups is required \(planted:border or file:PATH\)/],
      [["--checkpoint", CHECKPOINT, "--groups", "tint"], /--groups must be planted:border or file:PATH, got "tint"/],
      [["--checkpoint", CHECKPOINT, "--groups", "planted:border", "--positive-class", "12"], /--positive-class must be a class index 0-9, got 12/],
      [["--checkpoint", CHECKPOINT, "--groups", "planted:border", "--focus", "tinted", "--limit", "20"], /--focus "tinted" is not a group here \(groups: framed, plain\)/],
      [["--checkpoint", CHECKPOINT, "--groups", "file:/nonexistent/groups.txt"], /file not found/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(["audit", "fairness", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err.join("\n")}`);
      assert.match(r.err[0], re);
    }
  });
});
