/**
 * `cliplab report`: the whole pipeline without Jupyter — train the default preset (or load a
 * checkpoint), evaluate, embed, map the embedding space with UMAP, plot — into one self-contained
 * HTML file, reports/<name>.html. Progress goes to stderr; with --json the last line of stdout is
 * a JSON summary.
 */
import { parseArgs } from "node:util";
import * as path from "node:path";
import { runPipelineReport, type PipelineReportOptions } from "../report/pipeline";
import { writeReport } from "../report/render";
import { TRAIN_DEFAULTS } from "../train/options";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { ProgressLine, formatDuration, progressBar } from "./progress";

export const REPORT_USAGE =
  "usage: cliplab report [--checkpoint FILE | --train] [--out reports/NAME.html] [--name NAME] [--run-dir runs/NAME] [--quick] [--points N] [--seed S] [--data-dir D] [--json]";

/** What --quick shrinks to: a few training steps and a few hundred points (CI, tests). */
const QUICK = { steps: 8, batch: 32, trainLimit: 512, evalLimit: 200, points: 200, zeroShotLimit: 500, retrievalLimit: 200, umapEpochs: 100 };

export async function reportCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      train: { type: "boolean", default: false },
      out: { type: "string" },
      name: { type: "string" },
      "run-dir": { type: "string" },
      quick: { type: "boolean", default: false },
      points: { type: "string" },
      seed: { type: "string" },
      "data-dir": { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.checkpoint && values.train) throw new UsageError("give either --checkpoint FILE or --train, not both");
  if (values.checkpoint && values["run-dir"]) throw new UsageError("--run-dir is where training writes; it does not go with --checkpoint");
  const name = values.name ?? (values.checkpoint ? path.basename(path.dirname(path.resolve(values.checkpoint))) : values.quick ? "quick" : "default");
  if (!/^[\w.-]+$/.test(name)) throw new UsageError(`--name must be letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`);
  const out = values.out ?? path.join("reports", `${name}.html`);
  if (!out.endsWith(".html")) throw new UsageError(`--out must name an .html file, got ${out}`);
  const seed = values.seed === undefined ? 0 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be an integer >= 0, got ${values.seed}`);
  const points = intOption("points", values.points) ?? (values.quick ? QUICK.points : undefined);
  if (points !== undefined && points < 20) throw new UsageError(`--points must be at least 20 (UMAP needs more points than neighbours), got ${points}`);

  await startBackend(io);
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  const started = Date.now();
  const opts: PipelineReportOptions = {
    name,
    checkpoint: values.checkpoint,
    dataDir: values["data-dir"],
    seed,
    points,
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
        },
  };
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
      io.err(`epoch ${e.epoch + 1}: zero-shot top-1 ${(100 * e.eval.zeroShotTop1).toFixed(1)}% on ${e.eval.images} test images`);
    },
    onUmapProgress: (e) => {
      if (e.stage === "layout" && e.epoch !== undefined && e.epochs) progress.update(`${progressBar(e.epoch / e.epochs)} UMAP epoch ${e.epoch}/${e.epochs}`);
    },
  });
  progress.done();
  const file = writeReport(out, report);
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  io.out(
    `wrote ${out} in ${formatDuration((Date.now() - started) / 1000)}: zero-shot top-1 ${pct(summary.zeroShotTop1)} on ${summary.zeroShotImages} images; ` +
      `modality gap ${summary.modalityGap.trained.toFixed(4)} (freshly initialised: ${summary.modalityGap.initial.toFixed(4)}); UMAP of ${summary.umapPoints} points in ${summary.umapSeconds.toFixed(1)} s`,
  );
  if (values.json) io.out(JSON.stringify({ out, file, ...summary }));
  return 0;
}
