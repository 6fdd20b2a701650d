/**
 * `cliplab audit fairness`: the fairness probes of src/audit/fairness on Fashion-MNIST test images
 * that carry a group attribute. With --json, the last line of stdout is the audit result as JSON.
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { loadCheckpoint } from "../io/checkpoint";
import { loadFashionMnist } from "../data/fashion_mnist";
import { CaptionSet } from "../data/captions";
import { FRAMED, plantedTestSet, resolvePlantedBias } from "../audit/fairness/planted_bias";
import { plantedAuditOptions, plantedSpuriousDirection } from "../audit/fairness/study";
import { runFairnessAudit, zeroShotAccuracy } from "../audit/fairness/audit";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";

export const FAIRNESS_USAGE = [
  "usage: cliplab audit fairness --checkpoint FILE --groups SPEC [--focus GROUP] [--positive-class C] [--word W]",
  "                              [--limit N] [--seed S] [--debias] [--data-dir D] [--json]",
  "",
  "  --groups planted:border   stamp the planted frame (2 px, grey 255) on a seeded random half of the test",
  "                            images: groups \"framed\" and \"plain\", focus \"framed\" (what the study trains with)",
  "  --groups file:PATH        one group label per test image, in test-set order: a text file with one label",
  "                            per line, or a JSON array of strings; only the first N (--limit) are used",
  "  --focus GROUP             the group compared with the rest (default: framed, or the first group by name)",
  "  --positive-class C        class index 0-9 for the parity and odds probes (default 6, Shirt)",
  "  --word W                  distractor word: the harmful-label probe adds \"W <class>\" classes, and WEAT",
  "                            compares prompts with and without W (default counterfeit)",
  "  --limit N                 test images audited (default 2000); --seed S seeds the stamp and resampling",
  "  --debias                  project the word's direction out of every text embedding (Chuang et al. 2023)",
  "Every probe gets a bootstrap 95% interval and a p-value from shuffling the group labels within classes.",
].join("\n");

/** Group labels from a file: a JSON array of strings, or one label per line. */
function readGroupFile(file: string, n: number): string[] {
  if (!fs.existsSync(file)) throw new UsageError(`--groups file:${file}: file not found`);
  const text = fs.readFileSync(file, "utf8");
  let groups: unknown;
  if (text.trimStart().startsWith("[")) {
    try {
      groups = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`--groups file:${file}: invalid JSON: ${(err as Error).message.split("\n")[0]}`);
    }
  } else {
    groups = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  }
  if (!Array.isArray(groups) || groups.some((g) => typeof g !== "string" || g === "")) {
    throw new UsageError(`--groups file:${file}: expected one non-empty group label per test image`);
  }
  if (groups.length < n) throw new UsageError(`--groups file:${file}: holds ${groups.length} labels, but ${n} test images are audited (lower --limit or add labels)`);
  return (groups as string[]).slice(0, n);
}

export async function fairnessCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      groups: { type: "string" },
      focus: { type: "string" },
      "positive-class": { type: "string" },
      word: { type: "string" },
      limit: { type: "string" },
      seed: { type: "string" },
      debias: { type: "boolean", default: false },
      "data-dir": { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.checkpoint) throw new UsageError("--checkpoint is required");
  if (!values.groups) throw new UsageError("--groups is required (planted:border or file:PATH)");
  const spec = values.groups;
  const planted = spec === "planted" || spec === "planted:border";
  if (!planted && !spec.startsWith("file:")) throw new UsageError(`--groups must be planted:border or file:PATH, got ${JSON.stringify(spec)}`);
  const limit = intOption("limit", values.limit, 1) ?? 2000;
  const seed = intOption("seed", values.seed, 0) ?? 0;
  const positiveClass = intOption("positive-class", values["positive-class"], 0) ?? 6;
  if (positiveClass > 9) throw new UsageError(`--positive-class must be a class index 0-9, got ${positiveClass}`);
  const bias = resolvePlantedBias("cliplab audit fairness", { rho: 0.5, targetClass: positiveClass, word: values.word, seed }, 10);

  const test = loadFashionMnist("test", { dataDir: values["data-dir"], limit });
  let images = test;
  let groups: string[];
  if (planted) {
    const grouped = plantedTestSet(test, { seed: seed + 1 });
    images = grouped.data;
    groups = grouped.groups;
  } else {
    groups = readGroupFile(spec.slice("file:".length), test.count);
  }
  const names = [...new Set(groups)].sort();
  if (names.length < 2) throw new UsageError(`--groups: every audited image is in group ${JSON.stringify(names[0])}; a comparison needs at least two groups`);
  const focus = values.focus ?? (names.includes(FRAMED) ? FRAMED : names[0]);
  if (!names.includes(focus)) throw new UsageError(`--focus ${JSON.stringify(focus)} is not a group here (groups: ${names.join(", ")})`);

  await startBackend(io);
  const clip = await loadCheckpoint(values.checkpoint);
  const captions = CaptionSet.load();
  const directions = values.debias ? plantedSpuriousDirection(clip, bias, captions) : undefined;
  try {
    const opts = { ...plantedAuditOptions(bias, captions), focusGroup: focus, seed, spuriousDirections: directions };
    const result = runFairnessAudit(clip, images, groups, opts);
    const clean = planted ? zeroShotAccuracy(clip, test, opts.classNames, opts.templates, { seed, spuriousDirections: directions }) : undefined;
    const f = (x: number) => x.toFixed(3);
    io.out(`fairness audit of ${values.checkpoint} on ${result.n} test images: ${result.groups.map((g) => `${g.group} ${g.count}`).join(", ")}; focus ${focus}`);
    io.out(`zero-shot accuracy ${f(result.accuracy.value)} [${result.accuracy.ci95.map(f).join(", ")}]${clean ? `; without the frame ${f(clean.value)}` : ""}`);
    for (const p of result.probes) {
      io.out(`  ${p.flagged ? "FLAGGED" : "       "} ${p.label}: ${f(p.value)} [${p.ci95.map(f).join(", ")}] p=${p.pValue.toPrecision(2)}`);
    }
    if (values.json) io.out(JSON.stringify(clean ? { ...result, cleanAccuracy: clean } : result));
    return 0;
  } finally {
    directions?.dispose();
    clip.dispose();
  }
}
