/**
 * `cliplab audit robustness` in-process on the tiny fixture model (Fashion-MNIST, the default data:
 * ImageNet-C's corruptions, FGSM/PGD/APGD-CE/APGD-T) and on an image folder at 64 px with a random
 * tiny checkpoint (--corruptions, --attacks, --baseline for CE and mCE), and its argument errors.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli as run } from "../helpers/cli";
import { readArrowFile } from "../../src/io/arrow";
import { saveCheckpoint } from "../../src/io/checkpoint";
import { listCorruptions } from "../../src/audit/robustness/corruptions";
import { robustnessSection } from "../../src/report/sections/robustness";
import { fixturePath, tmpDir } from "../helpers/fixtures";
import { shapeFolder, shapeImage, tinyClip64, SHAPES } from "../audit/robustness_helpers";
import { initBackend } from "../../src/backend/select";

// The 64 px test builds its checkpoint before the CLI starts the backend.
before(async () => {
  await initBackend({ prefer: "wasm" });
});

describe("cliplab audit robustness", () => {
  it("--quick writes the Arrow table and the JSON result, and prints the summary JSON last", async () => {
    const out = path.join(tmpDir(), "audit");
    const r = await run(["audit", "robustness", "--checkpoint", fixturePath("tiny_vit.safetensors"), "--quick", "--out", out, "--json"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.ok(summary.clean.top1 >= 0 && summary.clean.top1 <= 1);
    assert.equal(summary.dataset, "fashion-mnist");
    assert.equal(summary.images, 64);
    assert.equal(summary.skipped, 0);
    assert.equal(summary.imageSize, 48);
    assert.equal(summary.l2Scale, 1.5);
    assert.equal(summary.corruptions.length, listCorruptions("imagenet-c").length * 5);
    for (const c of summary.corruptions) assert.deepEqual(Object.keys(c), ["name", "severity", "top1", "matchCosine"]);
    const every = (norm: string, eps: number) => ["fgsm", "pgd", "apgd-ce", "apgd-t", "worst-case"].map((a) => `${a} ${norm} ${eps}`);
    assert.deepEqual(
      summary.attacks.map((a: { attack: string; norm: string; eps: number }) => `${a.attack} ${a.norm} ${a.eps}`),
      [...every("linf", 0), ...every("linf", 8 / 255), ...every("l2", 0), ...every("l2", 1)],
    );
    for (const a of summary.attacks) {
      assert.deepEqual(Object.keys(a), ["attack", "norm", "eps", "appliedEps", "top1"]);
      assert.equal(a.appliedEps, a.norm === "l2" ? 1.5 * a.eps : a.eps);
    }
    assert.equal(summary.sanity.epsZeroEqualsClean, true);
    assert.equal(typeof summary.sanity.apgdAtLeastPgd, "boolean");
    assert.equal(summary.corruptionErrors, undefined);

    const table = readArrowFile(path.join(out, "robustness.arrow"));
    // clean + 75 corruption cells + 20 attack rows (4 attacks and their worst case at 4 budgets) + 2 more-steps runs + 2 targeted runs.
    assert.equal(table.numRows, 1 + 75 + 20 + 2 + 2);
    assert.deepEqual(table.getChild("kind")!.toArray().slice(0, 2), ["clean", "corruption"]);
    const applied = table.getChild("applied_eps")!.toArray();
    const norms = table.getChild("norm")!.toArray();
    const eps = table.getChild("eps")!.toArray();
    for (let i = 0; i < table.numRows; i++) if (norms[i] === "l2") assert.equal(applied[i], 1.5 * eps[i]);
    const saved = JSON.parse(fs.readFileSync(path.join(out, "robustness.json"), "utf8"));
    assert.equal(saved.checkpoint, fixturePath("tiny_vit.safetensors"));
    assert.equal(saved.clean.top1, summary.clean.top1);
    assert.equal(saved.skipped, 0);
    assert.deepEqual(saved.skippedItems, []);
    assert.ok(robustnessSection(saved).blocks.length > 5);
    assert.deepEqual(fs.readdirSync(out).sort(), ["robustness.arrow", "robustness.json"]);
  });

  it("--data imagefolder:DIR at 64 px: --classnames, --templates, --skip-bad-images (skipped: N, and the items in the JSON file)", async () => {
    const root = await shapeFolder(3);
    fs.writeFileSync(path.join(root, "circle", "circle_broken.png"), Buffer.from("\x89PNG but truncated"));
    const names = path.join(tmpDir(), "classnames.txt");
    fs.writeFileSync(names, "round shape\nbox\npointy shape\n");
    const ckpt = path.join(tmpDir(), "tiny64.safetensors");
    const clip = tinyClip64();
    await saveCheckpoint(clip, ckpt);
    clip.dispose();
    const out = path.join(tmpDir(), "audit64");
    const argv = ["audit", "robustness", "--checkpoint", ckpt, "--data", `imagefolder:${root}`, "--classnames", names, "--templates", "imagenet7", "--quick", "--attack-limit", "4", "--out", out, "--json"];
    const strict = await run(argv);
    assert.equal(strict.code, 1);
    assert.match(strict.err[strict.err.length - 1], /^cliplab audit: .*circle_broken\.png/);
    assert.equal(fs.existsSync(out), false, "nothing written after a bad image");

    const r = await run([...argv, "--skip-bad-images"]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(summary.dataset, `imagefolder:${root}`);
    assert.equal(summary.images, 9); // all readable images (--quick reads up to 64)
    assert.equal(summary.imageSize, 64);
    assert.equal(summary.l2Scale, 2);
    assert.equal(summary.skipped, 1);
    assert.equal(summary.sanity.epsZeroEqualsClean, true);
    for (const a of summary.attacks) assert.equal(a.appliedEps, a.norm === "l2" ? 2 * a.eps : a.eps);
    assert.ok(r.err.some((l) => /^skipped .*circle_broken\.png: /.test(l)), r.err.join("\n"));
    assert.ok(r.out.some((l) => /^skipped 1 unreadable image \(--skip-bad-images/.test(l)));
    const saved = JSON.parse(fs.readFileSync(path.join(out, "robustness.json"), "utf8"));
    assert.equal(saved.skipped, 1);
    assert.equal(saved.skippedItems.length, 1);
    assert.match(saved.skippedItems[0].key, /circle_broken\.png$/);
    assert.ok(saved.skippedItems[0].reason.length > 0);
    assert.deepEqual(saved.config.classNames, ["round shape", "box", "pointy shape"]);
    assert.equal(saved.config.templates.length, 7);
    assert.deepEqual(saved.config.l2EpsApplied, [0, 2]);
    assert.deepEqual(fs.readdirSync(out).sort(), ["robustness.arrow", "robustness.json"]);
  });

  it("--corruptions SET,name --attacks LIST --baseline FILE: CE and mCE in the summary, the JSON and the Arrow rows", async () => {
    const root = await shapeFolder(2);
    const ckpt = path.join(tmpDir(), "model64.safetensors");
    const base = path.join(tmpDir(), "baseline64.safetensors");
    for (const [file, seed] of [[ckpt, 1], [base, 2]] as const) {
      const clip = tinyClip64(seed);
      await saveCheckpoint(clip, file);
      clip.dispose();
    }
    const out = path.join(tmpDir(), "audit-baseline");
    const r = await run([
      "audit", "robustness", "--checkpoint", ckpt, "--baseline", base, "--data", `imagefolder:${root}`, "--corruptions", "gaussian_noise,imagenet-c-extra",
      "--attacks", "pgd,apgd-ce", "--apgd-steps", "3", "--quick", "--attack-limit", "3", "--out", out, "--json",
    ]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[r.out.length - 1]);
    assert.deepEqual([...new Set(summary.corruptions.map((c: { name: string }) => c.name))], ["gaussian_noise", "speckle_noise", "gaussian_blur", "spatter", "saturate"]);
    assert.deepEqual([...new Set(summary.attacks.map((a: { attack: string }) => a.attack))], ["pgd", "apgd-ce", "worst-case"]);
    const ce = summary.corruptionErrors;
    assert.equal(ce.baseline, base);
    assert.equal(ce.perCorruption.length, 5);
    const saved = JSON.parse(fs.readFileSync(path.join(out, "robustness.json"), "utf8"));
    assert.equal(saved.baseline.checkpoint, base);
    assert.equal(saved.baseline.config.attackImages, 0);
    assert.equal(saved.config.apgdSteps, 3);
    // CE_c by its definition, from the two audits' rows.
    for (const p of saved.corruptionErrors.perCorruption) {
      const err = (res: { corruptions: { name: string; top1: number }[] }) => res.corruptions.filter((c) => c.name === p.name).map((c) => 1 - c.top1);
      const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
      if (p.ce !== null) assert.ok(Math.abs(p.ce - sum(err(saved)) / sum(err(saved.baseline))) < 1e-12, p.name);
    }
    assert.ok(r.out.some((l) => /^against .*baseline64\.safetensors .*: mCE /.test(l)), r.out.join("\n"));
    const table = readArrowFile(path.join(out, "robustness.arrow"));
    const kinds = table.getChild("kind")!.toArray() as string[];
    assert.equal(kinds.filter((k) => k === "baseline_corruption").length, 5 * 5);
    assert.equal(kinds.filter((k) => k === "baseline_clean").length, 1);
    assert.equal(kinds.filter((k) => k === "corruption_error").length, 5 + 1);
    const names = table.getChild("name")!.toArray() as string[];
    const mean = kinds.findIndex((k, i) => k === "corruption_error" && names[i] === "mean");
    const mce = table.getChild("ce")!.toArray()[mean] as number;
    if (saved.corruptionErrors.mce !== null) assert.ok(Math.abs(mce - saved.corruptionErrors.mce) < 1e-6, `${mce} vs ${saved.corruptionErrors.mce}`);
    assert.ok(robustnessSection(saved).blocks.some((b) => b.kind === "table" && b.columns[1] === "CE"));
  });

  it("a dataset without labels, a bad template set: one error line, exit 1", async () => {
    const flat = path.join(tmpDir(), "flat");
    fs.mkdirSync(flat);
    for (const [i, shape] of SHAPES.entries()) fs.writeFileSync(path.join(flat, `${shape}.png`), await shapeImage(shape, 40, 40, i));
    const ckpt = fixturePath("tiny_vit.safetensors");
    const unlabelled = await run(["audit", "robustness", "--checkpoint", ckpt, "--data", `imagefolder:${flat}`, "--quick"]);
    assert.equal(unlabelled.code, 1);
    assert.match(unlabelled.err[unlabelled.err.length - 1], /^cliplab audit: auditRobustness: imagefolder:.*flat has no labels, but the robustness audit needs classes; /);
    const badSet = await run(["audit", "robustness", "--checkpoint", ckpt, "--templates", "nope", "--quick"]);
    assert.equal(badSet.code, 1);
    assert.match(badSet.err[badSet.err.length - 1], /^cliplab audit: loadTemplateSet: unknown template set "nope"; valid sets: .*imagenet7/);
  });

  it("bad arguments exit 2 with one error line and the usage; a missing checkpoint exits 1", async () => {
    const cases: [string[], RegExp][] = [
      [["audit"], /^cliplab audit: missing audit name \(audits: [^)]*\brobustness\b[^)]*\)$/],
      [["audit", "speed"], /^cliplab audit: unknown audit "speed" \(audits: [^)]*\brobustness\b[^)]*\)$/],
      [["audit", "robustness"], /^cliplab audit: --checkpoint is required$/],
      [["audit", "robustness", "--checkpoint", "x", "--limit", "0"], /^cliplab audit: --limit must be an integer >= 1, got 0$/],
      [["audit", "robustness", "--checkpoint", "x", "--seed=-1"], /^cliplab audit: --seed must be an integer >= 0, got -1$/],
      [["audit", "robustness", "--checkpoint", "x", "--eps", "3"], /^cliplab audit: Unknown option '--eps'/],
      [["audit", "robustness", "--checkpoint", "x", "--attacks", "pgd,cw"], /^cliplab audit: --attacks must be a comma list of fgsm, pgd, apgd-ce, apgd-t \(or none\), got "pgd,cw"$/],
      [["audit", "robustness", "--checkpoint", "x", "--corruptions", "fog,smog"], /^cliplab audit: --corruptions: unknown corruption "smog"; valid names: gaussian_noise, .* \(or a set: imagenet-c, imagenet-c-extra, cliplab\)$/],
      [["audit", "robustness", "--checkpoint", "x", "--apgd-steps", "0"], /^cliplab audit: --apgd-steps must be an integer >= 1, got 0$/],
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
    assert.match(help.out.join("\n"), /robustness .*\n +usage: cliplab audit robustness --checkpoint FILE \[--data /);
    assert.match(help.out.join("\n"), /L2 budgets are given for a 3x32x32 input \(3072 values, RobustBench's CIFAR-10 convention\) and applied as eps \* sqrt\(S\*S\*3 \/ 3072\)/);
  });
});
