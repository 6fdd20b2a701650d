/**
 * `cliplab audit <kind>`: audits of a checkpoint, one subcommand per audit (a table, so new audits
 * add a row). `audit robustness` runs the corruption and attack audit (src/audit/robustness) on
 * the first --limit images of any labelled dataset (`--data SPEC`, default Fashion-MNIST's test
 * split) at the model's input size: `--corruptions SET|name,name` (default ImageNet-C's 15),
 * `--attacks fgsm,pgd,apgd-ce,apgd-t` (default all four; `none` for none), and with
 * `--baseline B.safetensors` the baseline's corruption audit on the same images, for CE, mCE and
 * relative mCE. It writes `robustness.arrow` (one row per measurement) and `robustness.json` (the
 * full result, with the skipped items and the corruption errors: `robustnessSection(result)` turns
 * it into a report section). With --json the last line of stdout is one JSON object.
 */
import { parseArgs } from "node:util";
import * as path from "node:path";
import { loadCheckpoint } from "../io/checkpoint";
import { writeArrowFile } from "../io/arrow";
import { writeFileAtomic } from "../util/atomic";
import { loadTemplateSet } from "../text/templates";
import { ATTACK_NAMES, auditRobustness, type AttackName, type RobustnessAuditOptions, type RobustnessResult } from "../audit/robustness/audit";
import { robustnessTable } from "../audit/robustness/arrow";
import { CORRUPTION_SETS, resolveCorruptions } from "../audit/robustness/corruptions";
import { compareCorruptionErrors } from "../audit/robustness/mce";
import { L2_REFERENCE_VALUES } from "../audit/robustness/budgets";
import { formatEps } from "../report/sections/robustness";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { DATA_OPTIONS, DATA_USAGE, SkipLog, openDataFromFlags } from "./data_options";
import { ProgressLine, progressBar } from "./progress";
import { FAIRNESS_USAGE, fairnessCommand } from "./audit_fairness";

type Subcommand = { run: (argv: string[], io: CliIO) => Promise<number>; usage: string; summary: string };

export const ROBUSTNESS_USAGE =
  `usage: cliplab audit robustness --checkpoint FILE ${DATA_USAGE} [--templates NAME|FILE] [--corruptions SET|NAME,NAME] [--attacks ${ATTACK_NAMES.join(",")}|none] ` +
  `[--apgd-steps N] [--baseline FILE] [--quick] [--limit N] [--attack-limit N] [--seed S] [--out DIR] [--json]\n` +
  `      Corruption sets: ${CORRUPTION_SETS.join(", ")} (default imagenet-c). --baseline: a second checkpoint audited on the same images ` +
  `(corruptions only) for CE, mCE and relative mCE (E = 1 - top-1).\n` +
  `      Images are audited at the model's input size. L-inf budgets are per pixel value (k/255); L2 budgets are given for a 3x32x32 input ` +
  `(${L2_REFERENCE_VALUES} values, RobustBench's CIFAR-10 convention) and applied as eps * sqrt(S*S*3 / ${L2_REFERENCE_VALUES}) at input size S; both are reported.`;

/**
 * The --quick settings: a smoke run (every corruption and severity, few images, short attacks:
 * APGD 5 iterations, 3 targets). Batch sizes come from the model config, as in a full run.
 */
export const QUICK_AUDIT: RobustnessAuditOptions = {
  limit: 64,
  attackLimit: 32,
  pgdSteps: 3,
  moreSteps: 6,
  apgdSteps: 5,
  apgdTargets: 3,
  linfEps: [0, 8 / 255],
  l2Eps: [0, 1],
  examples: 2,
};

/** `--attacks`: a comma list of attack names, or "none". */
export function parseAttacks(value: string): AttackName[] {
  if (value.trim() === "none") return [];
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = names.find((n) => !(ATTACK_NAMES as readonly string[]).includes(n));
  if (bad !== undefined || names.length === 0) throw new UsageError(`--attacks must be a comma list of ${ATTACK_NAMES.join(", ")} (or none), got ${JSON.stringify(value)}`);
  return names as AttackName[];
}

async function robustnessCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      quick: { type: "boolean", default: false },
      limit: { type: "string" },
      "attack-limit": { type: "string" },
      seed: { type: "string" },
      templates: { type: "string" },
      corruptions: { type: "string" },
      attacks: { type: "string" },
      "apgd-steps": { type: "string" },
      baseline: { type: "string" },
      out: { type: "string" },
      json: { type: "boolean", default: false },
      ...DATA_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.checkpoint) throw new UsageError("--checkpoint is required");
  const opts: RobustnessAuditOptions = { ...(values.quick ? QUICK_AUDIT : {}) };
  const limit = intOption("limit", values.limit, 1);
  const attackLimit = intOption("attack-limit", values["attack-limit"], 1);
  const seed = intOption("seed", values.seed, 0);
  if (limit !== undefined) opts.limit = limit;
  if (attackLimit !== undefined) opts.attackLimit = attackLimit;
  if (seed !== undefined) opts.seed = seed;
  const apgdSteps = intOption("apgd-steps", values["apgd-steps"], 1);
  if (apgdSteps !== undefined) opts.apgdSteps = apgdSteps;
  if (values.attacks !== undefined) opts.attacks = parseAttacks(values.attacks);
  if (values.corruptions !== undefined) {
    try {
      opts.corruptions = resolveCorruptions(values.corruptions, "--corruptions");
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const outDir = values.out ?? path.join("runs", `audit-robustness-${new Date().toISOString().replace(/[:.]/g, "-")}`);

  const ds = await openDataFromFlags(values, { split: "test" });
  if (values.templates !== undefined) opts.templates = loadTemplateSet(values.templates).templates;
  await startBackend(io);
  const clip = await loadCheckpoint(values.checkpoint);
  const skips = new SkipLog();
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  let result: RobustnessResult;
  try {
    result = await auditRobustness(clip, ds, {
      ...opts,
      skipBadImages: values["skip-bad-images"],
      onSkip: (s) => {
        skips.onSkip(s);
        io.err(`skipped ${s.key}: ${s.reason}`);
      },
      onProgress: (e) => progress.update(`${progressBar(e.done / e.total)} ${e.phase} ${e.done}/${e.total} ${e.label}`, e.done === e.total),
    });
  } finally {
    progress.done();
    clip.dispose();
  }
  // The baseline: the same images, corruptions, severities and seed; no attacks.
  let baseline: RobustnessResult | undefined;
  if (values.baseline !== undefined) {
    const base = await loadCheckpoint(values.baseline);
    try {
      baseline = await auditRobustness(base, ds, {
        ...opts,
        attacks: [],
        examples: 0,
        skipBadImages: values["skip-bad-images"],
        onProgress: (e) => progress.update(`${progressBar(e.done / e.total)} baseline ${e.phase} ${e.done}/${e.total} ${e.label}`, e.done === e.total),
      });
    } finally {
      progress.done();
      base.dispose();
    }
    result.corruptionErrors = compareCorruptionErrors(result, baseline, values.baseline);
  }
  const arrowFile = path.join(outDir, "robustness.arrow");
  const jsonFile = path.join(outDir, "robustness.json");
  writeArrowFile(arrowFile, robustnessTable(result, baseline));
  const baselineJson = baseline && {
    checkpoint: values.baseline,
    config: baseline.config,
    clean: baseline.clean,
    corruptions: baseline.corruptions,
    corruptionSummary: baseline.corruptionSummary,
    skipped: baseline.skipped,
  };
  writeFileAtomic(jsonFile, JSON.stringify({ checkpoint: values.checkpoint, ...result, ...(baselineJson ? { baseline: baselineJson } : {}) }) + "\n");

  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const s = result.sanity;
  const c = result.config;
  io.out(`${c.images} images of ${c.dataset} at ${c.imageSize}x${c.imageSize}, ${c.classNames.length} classes, ${c.templates.length} template${c.templates.length === 1 ? "" : "s"}`);
  if (skips.count) io.out(`skipped ${skips.count} unreadable image${skips.count === 1 ? "" : "s"} (--skip-bad-images; listed in ${jsonFile})`);
  io.out(`clean zero-shot top-1 ${pct(result.clean.top1)} on ${result.config.images} images; corrupted mean ${pct(result.corruptionSummary.meanTop1)} (${pct(result.corruptionSummary.relativeTop1)} of clean)`);
  const errors = result.corruptionErrors;
  const ceOf = (name: string) => errors?.perCorruption.find((p) => p.name === name);
  const num = (v: number | null | undefined) => (v === null || v === undefined ? "undefined" : pct(v));
  for (const p of result.corruptionSummary.perCorruption) {
    const e = ceOf(p.name);
    io.out(`  ${p.name.padEnd(18)} mean top-1 ${pct(p.meanTop1)}${e ? `  CE ${num(e.ce)}  relative CE ${num(e.relativeCe)}` : ""}`);
  }
  if (errors && baseline) {
    io.out(`against ${values.baseline} (clean top-1 ${pct(baseline.clean.top1)}, ${baseline.config.imageSize}x${baseline.config.imageSize}): mCE ${num(errors.mce)}, relative mCE ${num(errors.relativeMce)}`);
  }
  if (result.attacks.length) {
    io.out(`attacks on ${result.config.attackImages} images (clean ${pct(result.attackClean.top1)}; L2 budgets for 3x32x32, applied x${c.l2Scale.toFixed(3)}):`);
    for (const a of result.attacks) {
      const applied = a.norm === "l2" ? ` (applied ${formatEps(a.norm, a.appliedEps)})` : "";
      io.out(`  ${a.attack.toUpperCase().padEnd(10)} ${a.norm.padEnd(4)} eps=${formatEps(a.norm, a.eps).padEnd(7)}${applied} top-1 ${pct(a.top1)}`);
    }
    io.out(
      `sanity: eps=0 equals clean ${s.epsZeroEqualsClean.pass}, PGD >= FGSM ${s.pgdAtLeastFgsm.pass}, APGD >= PGD ${s.apgdAtLeastPgd.pass}, monotone in eps ${s.monotoneInEps.pass}, more steps do not help ${s.moreStepsNoHelp.pass}`,
    );
  }
  io.out(`wrote ${arrowFile} and ${jsonFile}`);
  if (values.json) {
    io.out(
      JSON.stringify({
        dataset: c.dataset,
        images: c.images,
        imageSize: c.imageSize,
        l2Scale: c.l2Scale,
        skipped: result.skipped,
        clean: { top1: result.clean.top1 },
        corruptions: result.corruptions.map((c) => ({ name: c.name, severity: c.severity, top1: c.top1, matchCosine: c.matchCosine })),
        attacks: result.attacks.map((a) => ({ attack: a.attack, norm: a.norm, eps: a.eps, appliedEps: a.appliedEps, top1: a.top1 })),
        ...(errors
          ? {
              corruptionErrors: {
                baseline: errors.baseline,
                mce: errors.mce,
                relativeMce: errors.relativeMce,
                perCorruption: errors.perCorruption.map((p) => ({ name: p.name, ce: p.ce, relativeCe: p.relativeCe })),
              },
            }
          : {}),
        sanity: {
          epsZeroEqualsClean: s.epsZeroEqualsClean.pass,
          pgdAtLeastFgsm: s.pgdAtLeastFgsm.pass,
          apgdAtLeastPgd: s.apgdAtLeastPgd.pass,
          monotoneInEps: s.monotoneInEps.pass,
          moreStepsNoHelp: s.moreStepsNoHelp.pass,
        },
        files: { arrow: arrowFile, json: jsonFile },
      }),
    );
  }
  return 0;
}

/** Audits by name; `cliplab audit <name>` dispatches here. */
export const AUDIT_SUBCOMMANDS: Record<string, Subcommand> = {
  robustness: { run: robustnessCommand, usage: ROBUSTNESS_USAGE, summary: "ImageNet-C corruptions (mCE against a baseline) and FGSM/PGD/APGD attacks, with sanity checks" },
  fairness: { run: fairnessCommand, usage: FAIRNESS_USAGE, summary: "group bias probes (accuracy gap, parity, odds, skew, WEAT, harmful labels) with CIs and p-values" },
};

export function auditUsage(): string {
  const lines = ["usage: cliplab audit <audit> [options]", "", "audits:"];
  for (const [name, s] of Object.entries(AUDIT_SUBCOMMANDS)) lines.push(`  ${name.padEnd(12)} ${s.summary}`, `    ${s.usage}`);
  return lines.join("\n");
}

/** `audit` and its usage, read when main prints help (so subcommands added later show up). */
export const AUDIT_USAGE = auditUsage();

export async function auditCommand(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) throw new UsageError(`missing audit name (audits: ${Object.keys(AUDIT_SUBCOMMANDS).join(", ")})`);
  const sub = AUDIT_SUBCOMMANDS[name];
  if (!sub) throw new UsageError(`unknown audit "${name}" (audits: ${Object.keys(AUDIT_SUBCOMMANDS).join(", ")})`);
  return sub.run(rest, io);
}
