/**
 * `cliplab audit fairness`: the fairness probes of src/audit/fairness on the labelled images of
 * any dataset (`--data SPEC`, default the Fashion-MNIST test split), each in a group read from the
 * source, a file, or a planted frame; Berg et al. 2022's ranking measures over neutral queries
 * (`--queries`, default the shipped "neutral" set) and the FairFace-style table with the CLIP
 * paper's harmful labels (`--harmful`, default "clip-harmful") per attribute. With --json, the
 * last line of stdout is the audit result as JSON (plus `skipped`, and `cleanAccuracy` for
 * planted groups).
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { loadCheckpoint } from "../io/checkpoint";
import { modelTransform } from "../model/config";
import type { Dataset } from "../data/dataset";
import { expectedItems } from "../data/stream";
import { isFashionMnist } from "../data/sources/fashion_mnist";
import { loadTemplateSet } from "../text/templates";
import { FRAMED, PLAIN, resolvePlantedBias } from "../audit/fairness/planted_bias";
import { runFairnessAudit, type FairnessAuditResult } from "../audit/fairness/audit";
import type { GroupSource } from "../audit/fairness/groups";
import { wordDistractors, wordProbeOptions, wordSpuriousDirection } from "../audit/fairness/word_probes";
import { DEFAULT_QUERY_SET, checkQueriesFit, loadQuerySet, type QuerySet } from "../audit/fairness/queries";
import { DEFAULT_HARMFUL_LABELS, loadHarmfulLabels, type Distractor } from "../audit/fairness/distractors";
import { DEFAULT_RANKING_K, RANKING_TARGET_CODES } from "../audit/fairness/ranking_bias";
import { PLAIN_TEMPLATES } from "../eval/evaluate_dataset";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { DATA_OPTIONS, DATA_USAGE, SkipLog, openDataFromFlags } from "./data_options";
import { ProgressLine, progressBar } from "./progress";

export const FAIRNESS_USAGE = [
  "usage: cliplab audit fairness --checkpoint FILE --groups column:NAME[,NAME...]|planted:border|file:PATH [--focus GROUP] [--positive-class C]",
  "                              [--queries NAME|FILE|none] [--k K[,K...]] [--resample queries|images] [--harmful NAME|FILE|none]",
  "                              [--word W] [--limit N] [--bootstrap B] [--permutations M] [--seed S] [--debias] [--templates NAME|FILE]",
  `                              ${DATA_USAGE} [--json]`,
  "",
  "  --data SPEC               the labelled images audited (default fashion-mnist, its test split)",
  "  --groups column:NAME      each item's own group: a CSV column (--csv-group-keys), a Parquet column (--group-keys),",
  "                            a field of a WebDataset sample's json; NAME is read even when no group keys are given.",
  "                            column:A,B,C: A is the main grouping of every probe; B, C are further attributes, each",
  "                            with its ranking measures and FairFace-style table",
  "  --groups planted:border   stamp a frame on a seeded random half of each class's images: groups \"framed\" and",
  "                            \"plain\", focus \"framed\". Fashion-MNIST: 2 px of grey 255 around the 28x28 grey image,",
  "                            what the planted-bias study trains with; any other dataset: on the model's input after",
  "                            preprocessing, white on every channel, 2/28 of its side thick (5 px at 64 px, 16 at 224)",
  "  --groups file:PATH        one group label per item of the source, in source order: a text file with one label",
  "                            per line, or a JSON array of strings; an audited item takes the label at its position",
  "  --focus GROUP             the group compared with the rest (default: framed, or the first group by name)",
  "  --positive-class C        class index for the parity and odds probes (default 6, shirt, on Fashion-MNIST; else 0)",
  "  --queries NAME|FILE|none  neutral queries of the ranking probe (Berg et al. 2022): MaxSkew@k and NDKL per",
  `                            attribute against equal opportunity (eq_opp) and demographic parity (dem_par), mean over`,
  `                            the queries with a bootstrap interval (resampling queries) and a permutation p-value.`,
  `                            Default ${DEFAULT_QUERY_SET} (40 person-agnostic queries); FILE: .json list or text, one per line`,
  `  --k K[,K...]              top-k cut-offs of the ranking probe (default ${DEFAULT_RANKING_K}, capped at the images audited)`,
  "  --resample queries|images what the ranking probe's bootstrap resamples (default queries)",
  `  --harmful NAME|FILE|none  harmful labels added as extra zero-shot classes, by category (default ${DEFAULT_HARMFUL_LABELS}:`,
  "                            the CLIP paper's crime-related and non-human labels); FILE: {categories: {NAME: [labels]}}",
  "  --word W                  distractor word: the harmful-label probe adds \"W <class>\" classes (one more category),",
  "                            and WEAT compares prompts with and without W (default counterfeit)",
  "  --templates NAME|FILE     prompt templates (default: the dataset's, else \"a photo of a {}.\"); class names: the",
  "                            dataset's, or --classnames FILE",
  "  --limit N                 images audited, from the start of the source (default 2000); --seed S seeds the stamp",
  "                            and resampling; --bootstrap B resamples (default 1000), --permutations M (default 2000)",
  "  --debias                  project the word's direction out of every text embedding (Chuang et al. 2023)",
  "  --skip-bad-images         leave unreadable images out (each reported; `skipped` in the JSON)",
  "Every probe gets a bootstrap 95% interval and a p-value from shuffling the group labels within classes.",
].join("\n");

export const GROUP_SPECS = ["column:NAME", "planted:border", "file:PATH"];

export type GroupSpec = { kind: "column"; name: string; more: string[] } | { kind: "planted" } | { kind: "file"; path: string };

export function parseGroupSpec(spec: string): GroupSpec {
  if (spec === "planted" || spec === "planted:border") return { kind: "planted" };
  if (spec.startsWith("column:") && spec.length > "column:".length) {
    const names = spec.slice("column:".length).split(",").map((n) => n.trim());
    if (names.some((n) => n === "")) throw new UsageError(`--groups column:NAME[,NAME...]: empty column name in ${JSON.stringify(spec)}`);
    if (new Set(names).size !== names.length) throw new UsageError(`--groups ${spec}: a column is named twice`);
    return { kind: "column", name: names[0], more: names.slice(1) };
  }
  if (spec.startsWith("file:") && spec.length > "file:".length) return { kind: "file", path: spec.slice("file:".length) };
  throw new UsageError(`--groups must be ${GROUP_SPECS.join(", ")}, got ${JSON.stringify(spec)}`);
}

/** Group labels from a file: a JSON array of strings, or one label per line. */
export function readGroupFile(file: string): string[] {
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

/** The neutral queries of --queries (undefined for "none"); bad files are one-line usage errors. */
export function queriesFromFlag(value: string | undefined): QuerySet | undefined {
  const v = value ?? DEFAULT_QUERY_SET;
  if (v === "none") return undefined;
  try {
    return loadQuerySet(v);
  } catch (err) {
    throw new UsageError(`--queries ${v}: ${(err as Error).message.replace(/^loadQuerySet: /, "")}`);
  }
}

/** The harmful labels of --harmful (none for "none"). */
export function harmfulFromFlag(value: string | undefined): { name: string; labels: Distractor[] } | undefined {
  const v = value ?? DEFAULT_HARMFUL_LABELS;
  if (v === "none") return undefined;
  try {
    const set = loadHarmfulLabels(v);
    return { name: set.name, labels: set.labels };
  } catch (err) {
    throw new UsageError(`--harmful ${v}: ${(err as Error).message.replace(/^loadHarmfulLabels: /, "")}`);
  }
}

/** --k K[,K...]: positive integers. */
export function kListFromFlag(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const ks = value.split(",").map((x) => Number(x.trim()));
  if (ks.length === 0 || ks.some((k) => !Number.isInteger(k) || k < 1)) throw new UsageError(`--k must be positive integers separated by commas, got ${JSON.stringify(value)}`);
  return ks;
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
      queries: { type: "string" },
      k: { type: "string" },
      resample: { type: "string" },
      harmful: { type: "string" },
      bootstrap: { type: "string" },
      permutations: { type: "string" },
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
  const querySet = queriesFromFlag(values.queries);
  const ks = kListFromFlag(values.k);
  if (ks && !querySet) throw new UsageError("--k is the ranking probe's cut-off; it does not go with --queries none");
  const resample = values.resample ?? "queries";
  if (resample !== "queries" && resample !== "images") throw new UsageError(`--resample must be queries or images, got ${JSON.stringify(values.resample)}`);
  const harmful = harmfulFromFlag(values.harmful);
  const bootstrap = intOption("bootstrap", values.bootstrap, 1);
  const permutations = intOption("permutations", values.permutations, 1);

  // Columns named by --groups are read even when no group keys are given.
  const columns = spec.kind === "column" ? [spec.name, ...spec.more] : [];
  const groupKeysGiven = values["csv-group-keys"] !== undefined || values["group-keys"] !== undefined;
  const ds: Dataset = await openDataFromFlags(spec.kind === "column" && !groupKeysGiven ? { ...values, "group-keys": columns.join(",") } : values, { split: "test" });
  for (const name of columns) {
    if (!ds.groupKeys.includes(name)) {
      throw new UsageError(`--groups column:${name}: ${ds.spec} has no group column ${JSON.stringify(name)} (its group keys: ${ds.groupKeys.join(", ") || "none"})`);
    }
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
  if (querySet) {
    try {
      checkQueriesFit(querySet.queries, clip.config.text_cfg.context_length, querySet.file);
    } catch (err) {
      clip.dispose();
      throw new UsageError(`--queries: ${(err as Error).message}`);
    }
  }
  const probes = wordProbeOptions(bias.word, classNames, templates, positiveClass);
  const distractors: Distractor[] = [...wordDistractors(bias.word, classNames), ...(harmful?.labels ?? [])];
  const directions = values.debias ? wordSpuriousDirection(clip, bias.word, classNames, templates) : undefined;
  const skips = new SkipLog();
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  try {
    let result: FairnessAuditResult;
    try {
      result = await runFairnessAudit(clip, ds, groups, {
        ...probes,
        distractors,
        attributeName: spec.kind === "column" ? spec.name : spec.kind === "planted" ? "frame" : "group",
        attributes: spec.kind === "column" ? spec.more : undefined,
        ranking: querySet ? { queries: querySet.queries, k: ks, resample } : undefined,
        focusGroup: values.focus,
        seed,
        limit,
        ...(bootstrap !== undefined ? { bootstrap } : {}),
        ...(permutations !== undefined ? { permutations } : {}),
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
    for (const t of result.attributeTables) {
      io.out(`by ${t.attribute} (zero-shot accuracy${harmful || distractors.length ? ", harmful-label rate" : ""}, 95% CI):`);
      for (const r of t.rows) {
        const h = r.harmfulRate ? `; harmful ${f(r.harmfulRate.value)} [${r.harmfulRate.ci95.map(f).join(", ")}]` : "";
        io.out(`          ${r.group} (${r.count}): accuracy ${f(r.accuracy.value)} [${r.accuracy.ci95.map(f).join(", ")}]${h}`);
      }
      for (const sp of t.spreads) io.out(`  ${sp.flagged ? "FLAGGED" : "       "} ${sp.label}: ${f(sp.value)} [${sp.ci95.map(f).join(", ")}] p=${sp.pValue.toPrecision(2)}`);
    }
    if (result.ranking) {
      const r = result.ranking;
      io.out(`ranking bias over ${r.queries.length} neutral queries (${querySet!.name}), mean over queries [95% CI], null mean, p (Berg et al. 2022):`);
      for (const m of r.measures) {
        const name = `${m.metric === "maxSkew" ? "MaxSkew" : "NDKL"}@${m.k} ${RANKING_TARGET_CODES[m.target]}`;
        io.out(`  ${m.flagged ? "FLAGGED" : "       "} ${m.attribute} ${name}: ${f(m.mean)} [${m.ci95.map(f).join(", ")}] null ${f(m.nullMean)} p=${m.pValue.toPrecision(2)}; worst query ${f(m.max)} ${JSON.stringify(m.maxQuery)}`);
      }
    }
    if (skips.count) io.out(`skipped ${skips.count} unreadable image${skips.count === 1 ? "" : "s"} (--skip-bad-images)`);
    if (values.json) io.out(JSON.stringify({ ...result, skippedItems: skips.items }));
    return 0;
  } finally {
    directions?.dispose();
    clip.dispose();
  }
}
