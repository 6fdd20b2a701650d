/**
 * `cliplab report`: the whole pipeline without Jupyter — train the default preset (or load a
 * checkpoint), evaluate, embed, map the embedding space with UMAP, plot — into one self-contained
 * HTML file, reports/<name>.html, on Fashion-MNIST (the default) or any `--data` source, with the
 * audits the data supports (prompt study, robustness, fairness; `--sections` picks). Progress
 * goes to stderr; with --json the last line of stdout is a JSON summary (with `skipped`).
 */
import { parseArgs } from "node:util";
import * as path from "node:path";
import { runPipelineReport, type PipelineReportOptions } from "../report/pipeline";
import { writeReport } from "../report/render";
import { TRAIN_DEFAULTS } from "../train/options";
import { loadTemplateSet } from "../text/templates";
import { REPORT_AUDITS, REPORT_AUDITS_QUICK, type ReportGroups } from "../report/pipeline_audits";
import { REPORT_SECTIONS, parseSections, resolveSections } from "../report/sections/select";
import { GROUP_SPECS, parseGroupSpec, readGroupFile } from "./audit_fairness";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { DATA_OPTIONS, DATA_USAGE, dataSpec, openDataFromFlags } from "./data_options";
import { ProgressLine, formatDuration, progressBar } from "./progress";

export const REPORT_USAGE =
  "usage: cliplab report [--checkpoint FILE | --train] [--data SPEC] [--val-data SPEC] [--templates NAME|FILE] [--out reports/NAME.html] [--name NAME] [--run-dir runs/NAME] [--batch B]\n" +
  "                      [--sections LIST] [--groups column:NAME[,NAME...]|planted:border|file:PATH] [--quick] [--points N] [--seed S] [--json]\n" +
  `  data flags: ${DATA_USAGE}\n` +
  "  --data defaults to Fashion-MNIST (train the default recipe on its training split, report on its test split). Any other source needs\n" +
  "  labels (zero-shot) or captions (retrieval; images without their own get one made from their class name). With --train --data SPEC\n" +
  "  the default recipe trains on SPEC, and the report evaluates --val-data SPEC if given, else SPEC itself.\n" +
  `  --sections ${REPORT_SECTIONS.join(",")}: what the report holds (default: every section the data supports; prompts and robustness\n` +
  "  need labels, fairness labels and a group column or --groups). The audits run with smaller settings than their own commands (stated in\n" +
  `  each section): prompt study on ${REPORT_AUDITS.prompts.testLimit} test images, robustness on ${REPORT_AUDITS.robustness.limit} (${REPORT_AUDITS.robustness.attackLimit} attacked), fairness on ${REPORT_AUDITS.fairness.limit}.\n` +
  "  --groups: the fairness section's groups, as in cliplab audit fairness (default: the data's own group columns).";

/** What --quick shrinks to: a few training steps and a few hundred points (CI, tests). */
const QUICK = { steps: 8, batch: 32, trainLimit: 512, evalLimit: 200, points: 200, zeroShotLimit: 500, retrievalLimit: 200, umapEpochs: 100 };

export async function reportCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      train: { type: "boolean", default: false },
      "val-data": { type: "string" },
      templates: { type: "string" },
      out: { type: "string" },
      name: { type: "string" },
      "run-dir": { type: "string" },
      batch: { type: "string" },
      quick: { type: "boolean", default: false },
      points: { type: "string" },
      seed: { type: "string" },
      sections: { type: "string" },
      groups: { type: "string" },
      json: { type: "boolean", default: false },
      ...DATA_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.checkpoint && values.train) throw new UsageError("give either --checkpoint FILE or --train, not both");
  if (values.checkpoint && values["run-dir"]) throw new UsageError("--run-dir is where training writes; it does not go with --checkpoint");
  if (values.checkpoint && values.batch) throw new UsageError("--batch is the training batch size; it does not go with --checkpoint");
  if (values.checkpoint && values["val-data"]) throw new UsageError("--val-data is the validation data of training; with --checkpoint, give the data to report on as --data");
  const name = values.name ?? (values.checkpoint ? path.basename(path.dirname(path.resolve(values.checkpoint))) : values.quick ? "quick" : "default");
  if (!/^[\w.-]+$/.test(name)) throw new UsageError(`--name must be letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`);
  const out = values.out ?? path.join("reports", `${name}.html`);
  if (!out.endsWith(".html")) throw new UsageError(`--out must name an .html file, got ${out}`);
  const seed = values.seed === undefined ? 0 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be an integer >= 0, got ${values.seed}`);
  const batch = intOption("batch", values.batch);
  const points = intOption("points", values.points) ?? (values.quick ? QUICK.points : undefined);
  if (points !== undefined && points < 20) throw new UsageError(`--points must be at least 20 (UMAP needs more points than neighbours), got ${points}`);

  let sections;
  try {
    sections = values.sections === undefined ? undefined : parseSections(values.sections);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const groupSpec = values.groups === undefined ? undefined : parseGroupSpec(values.groups);
  const groupLabels = groupSpec?.kind === "file" ? readGroupFile(groupSpec.path) : undefined;
  // Columns named by --groups are read even when no group keys are given.
  const groupKeysGiven = values["csv-group-keys"] !== undefined || values["group-keys"] !== undefined;
  if (groupSpec?.kind === "column" && !groupKeysGiven) values["group-keys"] = [groupSpec.name, ...groupSpec.more].join(",");

  // The data: Fashion-MNIST keeps its own route (--data-dir, the in-memory training split, its
  // test split); any other source is opened here, so a bad spec fails before the backend starts.
  const spec = dataSpec(values);
  const fashion = spec === "fashion-mnist" || spec.startsWith("fashion-mnist:");
  const dataDir = fashion ? spec.slice("fashion-mnist:".length) || undefined : undefined;
  const training = !values.checkpoint;
  const trainData = training && (!fashion || values["val-data"] !== undefined) ? await openDataFromFlags(values, { split: "train", spec }) : undefined;
  const valData = values["val-data"] !== undefined ? await openDataFromFlags(values, { split: "test", spec: values["val-data"] }) : undefined;
  const data = valData ?? (trainData && !fashion ? trainData : await openDataFromFlags(values, { split: "test", spec }));
  const templates = values.templates !== undefined ? loadTemplateSet(values.templates).templates : undefined;
  let groups: ReportGroups | undefined;
  if (groupSpec?.kind === "column") {
    for (const c of [groupSpec.name, ...groupSpec.more]) {
      if (!data.groupKeys.includes(c)) throw new UsageError(`--groups column:${c}: ${data.spec} has no group column ${JSON.stringify(c)} (its group keys: ${data.groupKeys.join(", ") || "none"})`);
    }
    groups = { source: { column: groupSpec.name }, name: groupSpec.name, attributes: groupSpec.more };
  } else if (groupSpec?.kind === "planted") {
    groups = { source: { planted: "border", seed: seed + 1 }, name: "frame" };
  } else if (groupSpec?.kind === "file") {
    if (new Set(groupLabels).size < 2) throw new UsageError(`--groups file:${groupSpec.path}: every label is ${JSON.stringify(groupLabels![0])}; a comparison needs at least two groups (${GROUP_SPECS.join(", ")})`);
    groups = { source: groupLabels!, name: "group" };
  }
  try {
    resolveSections(data, sections, groups !== undefined || data.groupKeys.length > 0);
  } catch (err) {
    throw new UsageError(`--sections: ${(err as Error).message}`);
  }

  await startBackend(io);
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  const started = Date.now();
  const opts: PipelineReportOptions = {
    name,
    checkpoint: values.checkpoint,
    data,
    dataDir,
    trainData,
    valData,
    templates,
    skipBadImages: values["skip-bad-images"],
    seed,
    points,
    sections,
    groups,
    audits: values.quick ? REPORT_AUDITS_QUICK : REPORT_AUDITS,
    ...(values.quick ? { zeroShotLimit: QUICK.zeroShotLimit, retrievalLimit: QUICK.retrievalLimit, umap: { nEpochs: QUICK.umapEpochs } } : {}),
    train: values.checkpoint
      ? undefined
      : {
          model: TRAIN_DEFAULTS.model,
          seed,
          outDir: values["run-dir"] ?? path.join("runs", name),
          ...(values.quick
            ? { maxSteps: QUICK.steps, batchSize: QUICK.batch, trainLimit: QUICK.trainLimit, evalLimit: QUICK.evalLimit, finalEvalLimit: QUICK.evalLimit, retrievalLimit: QUICK.evalLimit }
            : {}),
          ...(batch !== undefined ? { batchSize: batch } : {}),
        },
  };
  const pct = (x: number) => (Number.isNaN(x) ? "n/a" : `${(100 * x).toFixed(1)}%`);
  const { report, summary } = await runPipelineReport(opts, {
    onStage: (m) => {
      progress.done();
      io.err(`${m} ...`);
    },
    onStart: (s) => io.err(`training ${s.params.toLocaleString("en")} parameters for ${s.totalSteps} steps (${s.stepsPerEpoch} per epoch) into ${opts.train?.outDir}`),
    onStep: (e) => {
      const done = e.step + 1;
      progress.update(
        `${progressBar(done / e.totalSteps)} step ${done}/${e.totalSteps} loss ${e.loss.toFixed(3)} ${e.pairsPerSecond.toFixed(0)} pairs/s ETA ${formatDuration((e.totalSteps - done) * e.seconds)}`,
        done === e.totalSteps,
      );
    },
    onEpochEnd: (e) => {
      progress.done();
      io.err(
        e.eval.images === 0
          ? `epoch ${e.epoch + 1}: no validation data (--val-data)`
          : trainData === undefined
            ? `epoch ${e.epoch + 1}: zero-shot top-1 ${(100 * e.eval.zeroShotTop1).toFixed(1)}% on ${e.eval.images} test images`
            : `epoch ${e.epoch + 1}: zero-shot top-1 ${pct(e.eval.zeroShotTop1)}, R@1 image->text ${pct(e.eval.recallAt1.imageToText)} on ${e.eval.images} validation images`,
      );
    },
    onEncodeProgress: (e) => progress.update(`${e.total ? progressBar(e.done / e.total) : ""} encoding ${e.kind} ${e.done}${e.total ? `/${e.total}` : ""}`),
    onSkip: (s) => {
      progress.done();
      io.err(`skipped ${s.key} (${s.stage}): ${s.reason}`);
    },
    onAuditProgress: (e) => progress.update(`${e.total ? progressBar(e.done / e.total) : ""} ${e.audit}: ${e.label}`),
    onUmapProgress: (e) => {
      if (e.stage === "layout" && e.epoch !== undefined && e.epochs) progress.update(`${progressBar(e.epoch / e.epochs)} UMAP epoch ${e.epoch}/${e.epochs}`);
    },
  });
  progress.done();
  const file = writeReport(out, report);
  const pct2 = (x: number) => `${(100 * x).toFixed(2)}%`;
  const measured =
    summary.zeroShotTop1 !== null
      ? `zero-shot top-1 ${pct2(summary.zeroShotTop1)} on ${summary.zeroShotImages} images`
      : `no labels, retrieval only: R@1 image->text ${pct2(summary.recallAt1.imageToText)}, text->image ${pct2(summary.recallAt1.textToImage)} on ${summary.retrieval.images} images`;
  io.out(
    `wrote ${out} in ${formatDuration((Date.now() - started) / 1000)}: ${measured}; ` +
      `modality gap ${summary.modalityGap.trained.toFixed(4)} (freshly initialised: ${summary.modalityGap.initial.toFixed(4)}); ` +
      (summary.umapPoints ? `UMAP of ${summary.umapPoints} points in ${summary.umapSeconds.toFixed(1)} s` : "no UMAP (embedding section left out)") +
      (summary.audits.prompts ? `; prompt study ${summary.audits.prompts.ensembleTop1 === undefined ? "not run" : `ensemble of all templates ${pct2(summary.audits.prompts.ensembleTop1)}`} (${formatDuration(summary.audits.prompts.seconds)})` : "") +
      (summary.audits.robustness ? `; robustness audit, clean ${pct2(summary.audits.robustness.cleanTop1)} (${formatDuration(summary.audits.robustness.seconds)})` : "") +
      (summary.audits.fairness ? `; fairness audit, ${summary.audits.fairness.flagged.length} flagged (${formatDuration(summary.audits.fairness.seconds)})` : "") +
      (summary.skipped ? `; skipped ${summary.skipped} unreadable image${summary.skipped === 1 ? "" : "s"}` : ""),
  );
  if (values.json) io.out(JSON.stringify({ out, file, ...summary }));
  return 0;
}
