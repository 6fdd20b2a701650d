/**
 * The audit sections of the pipeline report: the prompt study (src/prompts/study.ts), the
 * robustness audit (src/audit/robustness) and the fairness audit (src/audit/fairness), each run
 * with settings chosen to fit a report of about ten minutes on the default recipe (REPORT_AUDITS;
 * REPORT_AUDITS_QUICK for --quick), each section opened by a paragraph that states those settings,
 * and each built by the audit's own section builder. Nothing here prints.
 */
import type { Dataset, SkippedItem } from "../data/dataset";
import { isFashionMnist } from "../data/sources/fashion_mnist";
import type { EncodeProgress } from "../eval/encode";
import { PLAIN_TEMPLATES } from "../eval/evaluate_dataset";
import type { Clip } from "../model/clip";
import { runPromptStudy, type PromptStudyOptions } from "../prompts/study";
import { promptStudySection } from "./sections/prompts";
import { readLabels } from "../prompts/study_data";
import { auditRobustness } from "../audit/robustness/audit";
import type { RobustnessAuditOptions } from "../audit/robustness/types";
import { robustnessSection } from "./sections/robustness";
import { runFairnessAudit } from "../audit/fairness/audit";
import { fairnessSection } from "./sections/fairness";
import type { GroupSource } from "../audit/fairness/groups";
import { DEFAULT_QUERY_SET, loadQuerySet } from "../audit/fairness/queries";
import { DEFAULT_HARMFUL_LABELS, loadHarmfulLabels } from "../audit/fairness/distractors";
import { PLANTED_DEFAULTS } from "../audit/fairness/planted_bias";
import { wordDistractors, wordProbeOptions } from "../audit/fairness/word_probes";
import type { ReportSection } from "./types";
import { holdoutSplit } from "./holdout";

/** The prompt study's settings in a report (train and test come from the report). */
export type ReportPromptSettings = Omit<PromptStudyOptions, "train" | "test" | "onProgress" | "onEncodeProgress" | "onSkip" | "skipBadImages" | "classNames">;

export interface ReportFairnessSettings {
  /** Images audited (the first ones). */
  limit: number;
  bootstrap: number;
  permutations: number;
  weatPermutations: number;
  /** Neutral query set (name or file) of the ranking probe. */
  queries: string;
  /** Harmful-label set (name or file), or "none". */
  harmful: string;
  /** Top-k of the ranking probe (default Berg et al.'s 1000, capped at the images). */
  k?: number[];
}

export interface ReportAuditSettings {
  prompts: ReportPromptSettings;
  robustness: Omit<RobustnessAuditOptions, "onProgress" | "onSkip" | "skipBadImages">;
  fairness: ReportFairnessSettings;
}

/**
 * The report's audit settings: smaller than each audit's own defaults, so the whole report stays
 * near ten minutes on the default recipe. Measured here (2 vCPU, 32 px Fashion-MNIST model): the
 * robustness audit costs about 0.3 s per image for the 15 ImageNet-C corruptions at 5 severities
 * and 0.6 s per attacked image (FGSM, PGD, APGD-CE, APGD-T at every budget), hence 300 and 100; the
 * prompt study on 5000 test images takes about 15 s; the fairness audit on 2000 images about as
 * much (it runs only with groups).
 */
export const REPORT_AUDITS: ReportAuditSettings = {
  prompts: { testLimit: 5000, trainLimit: 10000, validationPerClass: 50, shots: [1, 4, 16], fewShotSeeds: [0], paraphraseTrials: 2, retrievalImages: 500, bootstrapSamples: 500, coop: { steps: 50 } },
  robustness: { limit: 300, attackLimit: 100 },
  fairness: { limit: 2000, bootstrap: 500, permutations: 500, weatPermutations: 2000, queries: DEFAULT_QUERY_SET, harmful: DEFAULT_HARMFUL_LABELS },
};

/** --quick: seconds each (tests, CI). */
export const REPORT_AUDITS_QUICK: ReportAuditSettings = {
  prompts: { testLimit: 200, trainLimit: 1000, validationPerClass: 10, shots: [1, 2], fewShotSeeds: [0], paraphraseTrials: 1, retrievalImages: 100, bootstrapSamples: 100, coop: { steps: 10 } },
  robustness: { limit: 64, attackLimit: 32, severities: [1, 3, 5], pgdSteps: 3, moreSteps: 6, linfEps: [0, 8 / 255], l2Eps: [0, 1], examples: 2 },
  fairness: { limit: 200, bootstrap: 100, permutations: 100, weatPermutations: 200, queries: DEFAULT_QUERY_SET, harmful: DEFAULT_HARMFUL_LABELS },
};

/** The groups of the fairness section. */
export interface ReportGroups {
  source: GroupSource;
  /** The main grouping's name in the tables. */
  name: string;
  /** More group columns (ranking measures and per-attribute tables). */
  attributes?: readonly string[];
}

/** The groups a dataset carries itself: its first group column, the others as further attributes. */
export function datasetGroups(ds: Dataset): ReportGroups | undefined {
  if (ds.groupKeys.length === 0) return undefined;
  return { source: { column: ds.groupKeys[0] }, name: ds.groupKeys[0], attributes: ds.groupKeys.slice(1) };
}

export interface AuditContext {
  clip: Clip;
  /** The data the report evaluates. */
  data: Dataset;
  /** A labelled split to choose prompts on, disjoint from `data`; undefined: `data` is split in two (./holdout.ts). */
  selectionData?: Dataset;
  classNames?: readonly string[];
  templates?: readonly string[];
  seed: number;
  skipBadImages?: boolean;
  onSkip: (s: SkippedItem) => void;
  onStage: (m: string) => void;
  onEncodeProgress?: (e: EncodeProgress) => void;
  onAuditProgress?: (e: { audit: string; done: number; total: number; label: string }) => void;
}

/** A section that says why an audit could not run on this data. */
function notRun(title: string, why: string): ReportSection {
  return { title, blocks: [{ kind: "text", text: `Not run: ${why}` }] };
}

function withNote(section: ReportSection, note: string): ReportSection {
  return { ...section, blocks: [{ kind: "text", text: note }, ...section.blocks] };
}

const list = (xs: readonly number[]) => xs.join(", ");

/** The prompt study on the report's data, shrunk to what the selection split can hold. */
export async function promptsSection(ctx: AuditContext, settings: ReportPromptSettings): Promise<{ section: ReportSection; top1?: number }> {
  const title = "Prompt study";
  const names = ctx.classNames ?? ctx.data.classNames!;
  let train = ctx.selectionData;
  let test = ctx.data;
  let how: string;
  if (train) {
    how = `Templates, weights and k-shot samples are chosen on ${train.spec} and scored on ${test.spec}.`;
  } else {
    const limit = settings.trainLimit !== undefined && settings.testLimit !== undefined ? settings.trainLimit + settings.testLimit : undefined;
    const all = await readLabels(ctx.data, names.length, { limit, skipBadImages: ctx.skipBadImages, onSkip: ctx.onSkip });
    const split = holdoutSplit(ctx.data, all, ctx.seed);
    train = split.selection;
    test = split.test;
    how =
      `${ctx.data.spec} has no separate training split here, so ${limit === undefined ? "it" : `its first ${limit} items`} are split in two, half of each class at random (seeded): ` +
      `prompts are chosen on one half and scored on the other.`;
  }
  const labels = await readLabels(train, names.length, { limit: settings.trainLimit, skipBadImages: ctx.skipBadImages, onSkip: ctx.onSkip });
  const counts = new Array<number>(names.length).fill(0);
  for (const l of labels.labels) counts[l]++;
  const fewest = Math.min(...counts);
  const perClass = Math.min(settings.validationPerClass ?? 100, Math.floor(fewest / 2));
  if (perClass < 1) return { section: notRun(title, `a class of ${train.spec} has only ${fewest} labelled image${fewest === 1 ? "" : "s"} to choose prompts on; the study needs at least 2 per class.`) };
  const shots = (settings.shots ?? [1, 2, 4, 8, 16]).filter((k) => k <= fewest - perClass);
  const opts: PromptStudyOptions = {
    ...settings,
    train,
    test,
    classNames: names,
    validationPerClass: perClass,
    shots,
    skipBadImages: ctx.skipBadImages,
    onSkip: ctx.onSkip,
    onProgress: (s) => ctx.onStage(`prompt study: ${s}`),
    onEncodeProgress: ctx.onEncodeProgress,
  };
  const result = await runPromptStudy(ctx.clip, opts);
  const note =
    `Settings chosen for the report: ${settings.testLimit ?? "all"} test images, labels of the first ${settings.trainLimit ?? "all"} selection images, ` +
    `${perClass} validation images per class, k-shot ${shots.length ? `k = ${list(shots)} (seed${(settings.fewShotSeeds ?? [0]).length > 1 ? "s" : ""} ${list(settings.fewShotSeeds ?? [0])})` : "skipped (too few images per class)"}, ` +
    `CoOp ${settings.coop?.steps ?? 100} steps, ${settings.paraphraseTrials ?? 5} paraphrase trial(s), ${settings.bootstrapSamples ?? 2000} bootstrap resamples. ${how} ` +
    `For the full study use the notebook (03) or runPromptStudy with its defaults.`;
  return { section: withNote(promptStudySection(result), note), top1: result.sensitivity.ensemble.top1 };
}

/** The robustness audit (corruptions and attacks) on the report's data. */
export async function robustnessReportSection(ctx: AuditContext, settings: ReportAuditSettings["robustness"]): Promise<{ section: ReportSection; cleanTop1: number }> {
  const result = await auditRobustness(ctx.clip, ctx.data, {
    ...settings,
    ...(ctx.classNames ? { classNames: ctx.classNames } : {}),
    ...(ctx.templates ? { templates: ctx.templates } : {}),
    seed: ctx.seed,
    skipBadImages: ctx.skipBadImages,
    onSkip: ctx.onSkip,
    onProgress: (e) => ctx.onAuditProgress?.({ audit: "robustness", done: e.done, total: e.total, label: `${e.phase} ${e.label}` }),
  });
  const c = result.config;
  const note =
    `Settings chosen for the report: ${c.images} images for the clean and corrupted metrics (${c.corruptions.length} corruptions at severities ${list(c.severities)}), ` +
    `the first ${c.attackImages} of them attacked (${c.attacks.join(", ")}; PGD ${c.pgdSteps} steps); every other setting is the audit's default ` +
    `(cliplab audit robustness runs 1000 and 500 images).`;
  return { section: withNote(robustnessSection(result), note), cleanTop1: result.clean.top1 };
}

/** The fairness audit with Berg et al.'s ranking measures and the FairFace-style table. */
export async function fairnessReportSection(ctx: AuditContext, groups: ReportGroups, settings: ReportFairnessSettings): Promise<{ section: ReportSection; flagged: string[] }> {
  const ds = ctx.data;
  const names = ctx.classNames ?? ds.classNames!;
  const templates = ctx.templates ?? ds.templates ?? PLAIN_TEMPLATES;
  const positiveClass = isFashionMnist(ds) && names.length > PLANTED_DEFAULTS.targetClass ? PLANTED_DEFAULTS.targetClass : 0;
  const word = PLANTED_DEFAULTS.word;
  const querySet = loadQuerySet(settings.queries);
  const harmful = settings.harmful === "none" ? [] : loadHarmfulLabels(settings.harmful).labels;
  const result = await runFairnessAudit(ctx.clip, ds, groups.source, {
    ...wordProbeOptions(word, names, templates, positiveClass),
    distractors: [...wordDistractors(word, names), ...harmful],
    attributeName: groups.name,
    attributes: groups.attributes,
    ranking: { queries: querySet.queries, k: settings.k },
    limit: settings.limit,
    bootstrap: settings.bootstrap,
    permutations: settings.permutations,
    weatPermutations: settings.weatPermutations,
    seed: ctx.seed,
    skipBadImages: ctx.skipBadImages,
    onSkip: ctx.onSkip,
    onProgress: ctx.onEncodeProgress,
  });
  const note =
    `Settings chosen for the report: the first ${settings.limit} images (${result.n} audited), ${settings.bootstrap} bootstrap resamples, ${settings.permutations} permutations ` +
    `(WEAT ${settings.weatPermutations}); ranking probe over the ${querySet.queries.length} "${querySet.name}" queries at k = ${result.ranking!.settings.k.join(", ")}; ` +
    `harmful labels ${settings.harmful === "none" ? "none" : `"${settings.harmful}"`} plus "${word} <class>"; positive class "${names[positiveClass]}". ` +
    `cliplab audit fairness runs 2000 images with 1000 resamples and 2000 permutations.`;
  const flagged = [...result.probes.filter((p) => p.flagged).map((p) => p.key), ...(result.ranking?.measures.filter((m) => m.flagged).map((m) => `${m.attribute}:${m.metric}@${m.k}:${m.target}`) ?? [])];
  return { section: fairnessSection(result, { queriesName: querySet.name, note }), flagged };
}
