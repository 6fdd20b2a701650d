/**
 * `cliplab train` and `cliplab eval`: train a CLIP on Fashion-MNIST with a progress display,
 * evaluate a checkpoint. With --json, the last line of stdout is one JSON object.
 */
import { parseArgs } from "node:util";
import * as path from "node:path";
import { trainClip } from "../train/trainer";
import { TRAIN_DEFAULTS } from "../train/options";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { ProgressLine, formatDuration, progressBar } from "./progress";
import { DATA_OPTIONS, DATA_USAGE, SkipLog, dataSpec, openDataFromFlags } from "./data_options";

export const TRAIN_USAGE =
  "usage: cliplab train [--model PRESET|config.json] [--epochs N] [--max-steps N] [--batch B] [--lr LR] [--loss infonce|siglip] [--seed S] [--data SPEC] [--val-data SPEC] [--out runs/NAME] [--resume] [--time-limit SECONDS] [--augment] [--json]\n" +
  `  data flags: ${DATA_USAGE}\n` +
  "  --data defaults to Fashion-MNIST's training split (validation: its test split); any other source trains with its own captions, or captions made from its class names.";

function numberArg(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got ${value}`);
  return n;
}

/** The augmentation `--augment` turns on: small shifts, mirror images of the left-right symmetric classes, mild rotation. */
const DEFAULT_AUGMENT = { shift: 2, flip: 0.5, flipClasses: [0, 1, 2, 3, 4, 6, 8], rotate: 8 };

export async function trainCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      epochs: { type: "string" },
      "max-steps": { type: "string" },
      batch: { type: "string" },
      lr: { type: "string" },
      loss: { type: "string" },
      seed: { type: "string" },
      "val-data": { type: "string" },
      ...DATA_OPTIONS,
      out: { type: "string" },
      resume: { type: "boolean", default: false },
      "time-limit": { type: "string" },
      augment: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.resume && !values.out) throw new UsageError("--resume needs --out (the run to continue)");
  if (values.loss !== undefined && values.loss !== "infonce" && values.loss !== "siglip") {
    throw new UsageError(`--loss must be infonce or siglip, got ${values.loss}`);
  }
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0)) throw new UsageError(`--seed must be an integer >= 0, got ${values.seed}`);
  const outDir = values.out ?? path.join("runs", `train-${new Date().toISOString().replace(/[:.]/g, "-")}`);

  const spec = dataSpec(values);
  const fashion = spec.startsWith("fashion-mnist");
  // Fashion-MNIST keeps its --data-dir route (the in-memory split and its test set); other sources open here.
  const train = fashion && values["val-data"] === undefined ? undefined : await openDataFromFlags(values, { split: "train", spec });
  const val = values["val-data"] !== undefined ? await openDataFromFlags(values, { split: "test", spec: values["val-data"] }) : undefined;
  const skips = new SkipLog();
  await startBackend(io);
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  const started = Date.now();
  const result = await trainClip(
    {
      model: values.model ?? TRAIN_DEFAULTS.model,
      epochs: intOption("epochs", values.epochs),
      maxSteps: intOption("max-steps", values["max-steps"]),
      batchSize: intOption("batch", values.batch),
      lr: numberArg("lr", values.lr),
      loss: values.loss as "infonce" | "siglip" | undefined,
      seed,
      dataDir: fashion ? spec.slice("fashion-mnist:".length) || undefined : undefined,
      outDir,
      resume: values.resume,
      timeLimitSeconds: numberArg("time-limit", values["time-limit"]),
      augment: values.augment ? DEFAULT_AUGMENT : undefined,
    },
    {
      onStart: (s) =>
        io.err(`training ${s.params.toLocaleString("en")} parameters for ${s.totalSteps} steps (${s.stepsPerEpoch} per epoch)${s.startStep ? `, resuming at step ${s.startStep}` : ""}`),
      onStep: (e) => {
        const done = e.step + 1;
        const eta = ((e.totalSteps - done) * e.seconds) || NaN;
        progress.update(
          `${progressBar(done / e.totalSteps)} step ${done}/${e.totalSteps} epoch ${e.epoch + 1} loss ${e.loss.toFixed(3)} ` +
            `T ${Math.exp(e.logitScale).toFixed(1)} ${e.pairsPerSecond.toFixed(0)} pairs/s ETA ${formatDuration(eta)}`,
          done === e.totalSteps,
        );
      },
      onEpochEnd: (e) => {
        progress.done();
        const pct = (x: number) => (Number.isNaN(x) ? "n/a" : `${(100 * x).toFixed(1)}%`);
        io.err(
          e.eval.images === 0
            ? `epoch ${e.epoch + 1}: no validation data (--val-data) (${formatDuration(e.trainSeconds)} of training)`
            : `epoch ${e.epoch + 1}: zero-shot top-1 ${pct(e.eval.zeroShotTop1)} on ${e.eval.images} validation images, ` +
                `R@1 image->text ${pct(e.eval.recallAt1.imageToText)}, text->image ${pct(e.eval.recallAt1.textToImage)} ` +
                `(${formatDuration(e.trainSeconds)} of training)`,
        );
      },
    },
    {
      train,
      val,
      skipBadImages: values["skip-bad-images"],
      onSkip: (s) => {
        skips.onSkip(s);
        io.err(`skipped ${s.key}: ${s.reason}`);
      },
    },
  );
  result.model.dispose();
  io.out(
    `trained ${result.steps} steps in ${formatDuration(result.trainSeconds)} (${result.pairsPerSecond.toFixed(0)} pairs/s; ${formatDuration((Date.now() - started) / 1000)} with evaluation): ` +
      `zero-shot top-1 ${(100 * result.zeroShotTop1).toFixed(2)}%; checkpoint ${result.checkpoint}`,
  );
  if (values.json) {
    io.out(
      JSON.stringify({
        steps: result.steps,
        epochs: result.epochs,
        pairsPerSecond: result.pairsPerSecond,
        wallSeconds: result.wallSeconds,
        trainSeconds: result.trainSeconds,
        finalLoss: result.finalLoss,
        checkpoint: result.checkpoint,
        zeroShotTop1: result.zeroShotTop1,
        skipped: skips.count,
        skippedItems: skips.items,
      }),
    );
  }
  return 0;
}
