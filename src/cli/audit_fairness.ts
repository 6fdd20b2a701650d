/**
 * `cliplab audit fairness`: the fairness probes of src/audit/fairness on the labelled images of
 * any dataset (`--data SPEC`, default the Fashion-MNIST test split), each in a group read from the
 * source, a file, or a planted frame. With --json, the last line of stdout is the audit result as
 * JSON (plus `skipped`, and `cleanAccuracy` for planted groups).
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { loadCheckpoint } from "../io/checkpoint";
import { modelTransform } from "../model/config";
import type { Dataset } from "../data/dataset";
import { expectedItems } from "../data/stream";
import { isFashionMnist } from "../data/sources/fashion_mnist";
import { loadTemplateSet } from "../prompts/templates";
import { FRAMED, PLAIN, resolvePlantedBias } from "../audit/fairness/planted_bias";
import { runFairnessAudit, type FairnessAuditResult } from "../audit/fairness/audit";
import type { GroupSource } from "../audit/fairness/groups";
import { wordProbeOptions, wordSpuriousDirection } from "../audit/fairness/word_probes";
import { PLAIN_TEMPLATES } from "../eval/evaluate_dataset";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { DATA_OPTIONS, DATA_USAGE, SkipLog, openDataFromFlags } from "./data_options";
import { ProgressLine, progressBar } from "./progress";

export const FAIRNESS_USAGE = [
  "usage: cliplab audit fairness --checkpoint FILE --groups column:NAME|planted:border|file:PATH [--focus GROUP] [--positive-class C]",
  `                              [--word W] [--limit N] [--seed S] [--debias] [--templates NAME|FILE] ${DATA_USAGE} [--json]`,
  "",
  "  --data SPEC               the labelled images audited (default fashion-mnist, its test split)",
  "  --groups column:NAME      each item's own group: a CSV column (--csv-group-keys), a Parquet column (--group-keys),",
  "                            a field of a WebDataset sample's json; NAME is read even when no group keys are given",
  "  --groups planted:border   stamp a frame on a seeded random half of each class's images: groups \"framed\" and",
  "                            \"plain\", focus \"framed\". Fashion-MNIST: 2 px of grey 255 around the 28x28 grey image,",
  "                            what the planted-bias study trains with; any other dataset: on the model's input after",
  "                            preprocessing, white on every channel, 2/28 of its side thick (5 px at 64 px, 16 at 224)",
  "  --groups file:PATH        one group label per item of the source, in source order: a text file with one label",
  "                            per line, or a JSON array of strings; an audited item takes the label at its position",
  "  --focus GROUP             the group compared with the rest (default: framed, or the first group by name)",
  "  --positive-class C        class index for the parity and odds probes (default 6, shirt, on Fashion-MNIST; else 0)",
  "  --word W                  distractor word: the harmful-label probe adds \"W <class>\" classes, and WEAT",
  "                            compares prompts with and without W (default counterfeit)",
  "  --templates NAME|FILE     prompt templates (default: the dataset's, else \"a photo of a {}.\"); class names: the",
  "                            dataset's, or --classnames FILE",
  "  --limit N                 images audited, from the start of the source (default 2000); --seed S seeds the stamp",
  "                            and resampling",
  "  --debias                  project the word's direction out of every text embedding (Chuang et al. 2023)",
  "  --skip-bad-images         leave unreadable images out (each reported; `skipped` in the JSON)",
  "Every probe gets a bootstrap 95% interval and a p-value from shuffling the group labels within classes.",
].join("\n");

export const GROUP_SPECS = ["column:NAME", "planted:border", "file:PATH"];

type GroupSpec = { kind: "column"; name: string } | { kind: "planted" } | { kind: "file"; path: string };

function parseGroupSpec(spec: string): GroupSpec {
  if (spec === "planted" || spec === "planted:border") return { kind: "planted" };
  if (spec.startsWith("column:") && spec.length > "column:".length) return { kind: "column", name: spec.slice("column:".length) };
  if (spec.startsWith("file:") && spec.length > "file:".length) return { kind: "file", path: spec.slice("file:".length) };
  throw new UsageError(`--groups must be ${GROUP_SPECS.join(", ")}, got ${JSON.stringify(spec)}`);
}

/** Group labels from a file: a JSON array of strings, or one label per line. */
function readGroupFile(file: string): string[] {
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
    throw new UsageError(`--groups file:${file}: expected one non-empty group label per item of the source`);
  }
  return groups as string[];
}

/** The groups of the audited items, where they are known before reading (planted, file). */
function knownGroups(spec: GroupSpec, labels: string[] | undefined, n: number | undefined): string[] | undefined {
  if (spec.kind === "planted") return [FRAMED, PLAIN];
  if (spec.kind === "file" && n !== undefined) return [...new Set(labels!.slice(0, n))].sort();
  return undefined;
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
      templates: { type: "string" },
      limit: { type: "string" },
      seed: { type: "string" },
      debias: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      ...DATA_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.checkpoint) throw new UsageError("--checkpoint is required");
  if (!values.groups) throw new UsageError(`--groups is required (${GROUP_SPECS.join(", ")})`);
  const spec = parseGroupSpec(values.groups);
  const limit = intOption("limit", values.limit, 1) ?? 2000;
  const seed = intOption("seed", values.seed, 0) ?? 0;
  const fileLabels = spec.kind === "file" ? readGroupFile(spec.path) : undefined;

  // A column named by --groups is read even when no group keys are given.
  const groupKeysGiven = values["csv-group-keys"] !== undefined || values["group-keys"] !== undefined;
  const ds: Dataset = await openDataFromFlags(spec.kind === "column" && !groupKeysGiven ? { ...values, "group-keys": spec.name } : values, { split: "test" });
  if (spec.kind === "column" && !ds.groupKeys.includes(spec.name)) {
    throw new UsageError(`--groups column:${spec.name}: ${ds.spec} has no group column ${JSON.stringify(spec.name)} (its group keys: ${ds.groupKeys.join(", ") || "none"})`);
  }
  const classNames = ds.classNames;
  if (!ds.hasLabels || !classNames || classNames.length < 2) throw new UsageError(`--data ${ds.spec}: the fairness audit needs labelled images of at least two classes (and their names: --classnames FILE)`);
  const C = classNames.length;
  const positiveClass = intOption("positive-class", values["positive-class"], 0) ?? (isFashionMnist(ds) ? 6 : 0);
  if (positiveClass >= C) throw new UsageError(`--positive-class must be a class index 0-${C - 1}, got ${positiveClass}`);
  const templates = values.templates ? loadTemplateSet(values.templates).templates : (ds.templates ?? PLAIN_TEMPLATES);
  const bias = resolvePlantedBias("cliplab audit fairness", { rho: 0.5, targetClass: positiveClass, word: values.word, seed }, C);

  const n = expectedItems(ds, { limit });
  if (fileLabels && n !== undefined && fileLabels.length < n) {
    throw new UsageError(`--groups file:${spec.kind === "file" ? spec.path : ""}: holds ${fileLabels.length} labels, but ${n} images are audited (lower --limit or add labels)`);
  }
  const names = knownGroups(spec, fileLabels, n);
  if (names && names.length < 2) throw new UsageError(`--groups: every audited image is in group ${JSON.stringify(names[0])}; a comparison needs at least two groups`);
  if (values.focus !== undefined && names && !names.includes(values.focus)) throw new UsageError(`--focus ${JSON.stringify(values.focus)} is not a group here (groups: ${names.join(", ")})`);
  const groups: GroupSource =
    spec.kind === "planted" ? { planted: "border", seed: seed + 1 } : spec.kind === "column" ? { column: spec.name } : fileLabels!;

  await startBackend(io);
  const clip = await loadCheckpoint(values.checkpoint);
  const directions = values.debias ? wordSpuriousDirection(clip, bias.word, classNames, templates) : undefined;
  const skips = new SkipLog();
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  try {
    let result: FairnessAuditResult;
    try {
      result = await runFairnessAudit(clip, ds, groups, {
        ...wordProbeOptions(bias.word, classNames, templates, positiveClass),
        focusGroup: values.focus,
        seed,
        limit,
        spuriousDirections: directions,
        transform: modelTransform(clip.config),
        skipBadImages: values["skip-bad-images"],
        onSkip: (s) => {
          skips.onSkip(s);
          io.err(`skipped ${s.key}: ${s.reason}`);
        },
        onProgress: (p) => progress.update(`${progressBar(n && p.kind === "images" ? Math.min(1, p.done / n) : 0)} ${p.kind} ${p.done}${p.total ? `/${p.total}` : ""}`),
      });
    } finally {
      progress.done();
    }
    const f = (x: number) => x.toFixed(3);
    const clean = result.cleanAccuracy;
    io.out(`fairness audit of ${values.checkpoint} on ${result.n} images of ${ds.spec}: ${result.groups.map((g) => `${g.group} ${g.count}`).join(", ")}; focus ${result.focusGroup}`);
    io.out(`zero-shot accuracy ${f(result.accuracy.value)} [${result.accuracy.ci95.map(f).join(", ")}]${clean ? `; without the frame ${f(clean.value)}` : ""}`);
    for (const p of result.probes) {
      io.out(`  ${p.flagged ? "FLAGGED" : "       "} ${p.label}: ${f(p.value)} [${p.ci95.map(f).join(", ")}] p=${p.pValue.toPrecision(2)}`);
    }
    if (skips.count) io.out(`skipped ${skips.count} unreadable image${skips.count === 1 ? "" : "s"} (--skip-bad-images)`);
    if (values.json) io.out(JSON.stringify({ ...result, skippedItems: skips.items }));
    return 0;
  } finally {
    directions?.dispose();
    clip.dispose();
  }
}
