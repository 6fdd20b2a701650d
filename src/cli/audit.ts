/**
 * `cliplab audit <kind>`: audits of a checkpoint, one subcommand per audit (a table, so new audits
 * add a row). `audit robustness` runs the corruption and attack audit (src/audit/robustness) on
 * Fashion-MNIST test images and writes `robustness.arrow` (one row per measurement) and
 * `robustness.json` (the full result: `robustnessSection(result)` turns it into a report section).
 * With --json the last line of stdout is one JSON object.
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadCheckpoint } from "../io/checkpoint";
import { makeTable, writeArrowFile } from "../io/arrow";
import { loadFashionMnist } from "../data/fashion_mnist";
import { auditRobustness, type RobustnessAuditOptions, type RobustnessResult } from "../audit/robustness/audit";
import { formatEps } from "../audit/robustness/section";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { ProgressLine, progressBar } from "./progress";
import { FAIRNESS_USAGE, fairnessCommand } from "./audit_fairness";

type Subcommand = { run: (argv: string[], io: CliIO) => Promise<number>; usage: string; summary: string };

export const ROBUSTNESS_USAGE =
  "usage: cliplab audit robustness --checkpoint FILE [--quick] [--limit N] [--attack-limit N] [--seed S] [--data-dir D] [--out DIR] [--json]";

/** The --quick settings: a smoke run in seconds (every corruption and severity, few images, short attacks). */
export const QUICK_AUDIT: RobustnessAuditOptions = {
  limit: 64,
  attackLimit: 32,
  pgdSteps: 3,
  moreSteps: 6,
  linfEps: [0, 8 / 255],
  l2Eps: [0, 1],
  examples: 2,
  batchSize: 64,
};

/** Writes `text` to `file` atomically (temporary file, then rename). */
function writeFileAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`${file}: cannot write: ${(err as Error).message}`);
  }
}

/** One row per measurement: clean, each corruption x severity, each attack (NaN / "" where a column does not apply). */
export function robustnessTable(r: RobustnessResult) {
  const kind: string[] = [];
  const name: string[] = [];
  const severity: number[] = [];
  const norm: string[] = [];
  const eps: number[] = [];
  const steps: number[] = [];
  const images: number[] = [];
  const top1: number[] = [];
  const matchCosine: number[] = [];
  const captionCosine: number[] = [];
  const r1i2t: number[] = [];
  const r1t2i: number[] = [];
  const success: number[] = [];
  const push = (row: { kind: string; name: string; severity?: number; norm?: string; eps?: number; steps?: number; images: number; top1: number; matchCosine?: number; captionCosine?: number; r1i2t?: number; r1t2i?: number; success?: number }) => {
    kind.push(row.kind);
    name.push(row.name);
    severity.push(row.severity ?? NaN);
    norm.push(row.norm ?? "");
    eps.push(row.eps ?? NaN);
    steps.push(row.steps ?? NaN);
    images.push(row.images);
    top1.push(row.top1);
    matchCosine.push(row.matchCosine ?? NaN);
    captionCosine.push(row.captionCosine ?? NaN);
    r1i2t.push(row.r1i2t ?? NaN);
    r1t2i.push(row.r1t2i ?? NaN);
    success.push(row.success ?? NaN);
  };
  const n = r.config.images;
  const m = r.config.attackImages;
  const c = r.clean;
  push({ kind: "clean", name: "clean", severity: 0, images: n, top1: c.top1, matchCosine: c.matchCosine, captionCosine: c.captionCosine, r1i2t: c.recallAt1ImageToText, r1t2i: c.recallAt1TextToImage });
  for (const x of r.corruptions) {
    push({ kind: "corruption", name: x.name, severity: x.severity, images: n, top1: x.top1, matchCosine: x.matchCosine, captionCosine: x.captionCosine, r1i2t: x.recallAt1ImageToText, r1t2i: x.recallAt1TextToImage });
  }
  for (const a of [...r.attacks, ...r.moreStepsAttacks]) {
    push({ kind: "attack", name: a.attack, norm: a.norm, eps: a.eps, steps: a.steps, images: m, top1: a.top1, matchCosine: a.matchCosine, success: a.successRate });
  }
  for (const t of r.targetedAttacks) {
    push({ kind: "targeted", name: t.attack, norm: t.norm, eps: t.eps, steps: t.steps, images: m, top1: t.top1, success: t.successRate });
  }
  return makeTable({
    kind,
    name,
    severity,
    norm,
    eps,
    steps,
    images,
    top1,
    match_cosine: matchCosine,
    caption_cosine: captionCosine,
    recall_at_1_image_to_text: r1i2t,
    recall_at_1_text_to_image: r1t2i,
    success_rate: success,
  });
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
      "data-dir": { type: "string" },
      out: { type: "string" },
      json: { type: "boolean", default: false },
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
  const outDir = values.out ?? path.join("runs", `audit-robustness-${new Date().toISOString().replace(/[:.]/g, "-")}`);

  await startBackend(io);
  const test = loadFashionMnist("test", { dataDir: values["data-dir"] });
  const clip = await loadCheckpoint(values.checkpoint);
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  let result: RobustnessResult;
  try {
    result = auditRobustness(clip, test, {
      ...opts,
      onProgress: (e) => progress.update(`${progressBar(e.done / e.total)} ${e.phase} ${e.done}/${e.total} ${e.label}`, e.done === e.total),
    });
  } finally {
    progress.done();
    clip.dispose();
  }
  const arrowFile = path.join(outDir, "robustness.arrow");
  const jsonFile = path.join(outDir, "robustness.json");
  writeArrowFile(arrowFile, robustnessTable(result));
  writeFileAtomic(jsonFile, JSON.stringify({ checkpoint: values.checkpoint, ...result }) + "\n");

  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const s = result.sanity;
  io.out(`clean zero-shot top-1 ${pct(result.clean.top1)} on ${result.config.images} test images; corrupted mean ${pct(result.corruptionSummary.meanTop1)} (${pct(result.corruptionSummary.relativeTop1)} of clean)`);
  for (const p of result.corruptionSummary.perCorruption) io.out(`  ${p.name.padEnd(15)} mean top-1 ${pct(p.meanTop1)}`);
  io.out(`attacks on ${result.config.attackImages} images (clean ${pct(result.attackClean.top1)}):`);
  for (const a of result.attacks) io.out(`  ${a.attack.toUpperCase().padEnd(4)} ${a.norm.padEnd(4)} eps=${formatEps(a.norm, a.eps).padEnd(7)} top-1 ${pct(a.top1)}`);
  io.out(
    `sanity: eps=0 equals clean ${s.epsZeroEqualsClean.pass}, PGD >= FGSM ${s.pgdAtLeastFgsm.pass}, monotone in eps ${s.monotoneInEps.pass}, more steps do not help ${s.moreStepsNoHelp.pass}`,
  );
  io.out(`wrote ${arrowFile} and ${jsonFile}`);
  if (values.json) {
    io.out(
      JSON.stringify({
        clean: { top1: result.clean.top1 },
        corruptions: result.corruptions.map((c) => ({ name: c.name, severity: c.severity, top1: c.top1, matchCosine: c.matchCosine })),
        attacks: result.attacks.map((a) => ({ attack: a.attack, norm: a.norm, eps: a.eps, top1: a.top1 })),
        sanity: {
          epsZeroEqualsClean: s.epsZeroEqualsClean.pass,
          pgdAtLeastFgsm: s.pgdAtLeastFgsm.pass,
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
  robustness: { run: robustnessCommand, usage: ROBUSTNESS_USAGE, summary: "natural corruptions and FGSM/PGD attacks, with sanity checks" },
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
