/**
 * `cliplab train` and `cliplab eval`: train a CLIP on Fashion-MNIST with a progress display,
 * evaluate a checkpoint. With --json, the last line of stdout is one JSON object.
 */
import { parseArgs } from "node:util";
import * as path from "node:path";
import { trainClip } from "../train/trainer";
import { TRAIN_DEFAULTS } from "../train/options";
import { evaluateClip } from "../train/evaluate";
import { loadCheckpoint } from "../io/checkpoint";
import { loadFashionMnist } from "../data/fashion_mnist";
import { CaptionSet } from "../data/captions";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { ProgressLine, formatDuration, progressBar } from "./progress";

export const TRAIN_USAGE =
  "usage: cliplab train [--model PRESET|config.json] [--epochs N] [--max-steps N] [--batch B] [--lr LR] [--loss infonce|siglip] [--seed S] [--data-dir D] [--out runs/NAME] [--resume] [--time-limit SECONDS] [--augment] [--json]";
export const EVAL_USAGE = "usage: cliplab eval --checkpoint FILE [--data-dir D] [--limit N] [--json]";

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
      "data-dir": { type: "string" },
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
      dataDir: values["data-dir"],
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
        io.err(
          `epoch ${e.epoch + 1}: zero-shot top-1 ${(100 * e.eval.zeroShotTop1).toFixed(1)}% on ${e.eval.images} test images, ` +
            `R@1 image->text ${(100 * e.eval.recallAt1.imageToText).toFixed(1)}%, text->image ${(100 * e.eval.recallAt1.textToImage).toFixed(1)}% ` +
            `(${formatDuration(e.trainSeconds)} of training)`,
        );
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
      }),
    );
  }
  return 0;
}

export async function evalCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      "data-dir": { type: "string" },
      limit: { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.checkpoint) throw new UsageError("--checkpoint is required");
  const limit = intOption("limit", values.limit) ?? 10000;
  await startBackend(io);
  const clip = await loadCheckpoint(values.checkpoint);
  try {
    const test = loadFashionMnist("test", { dataDir: values["data-dir"] });
    const r = evaluateClip(clip, test, CaptionSet.load(), { zeroShotLimit: limit, retrievalLimit: Math.min(limit, 1000), seed: 1 });
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    io.out(`zero-shot on ${r.images} test images: top-1 ${pct(r.zeroShotTop1)}, top-5 ${pct(r.zeroShotTop5)}`);
    io.out(`retrieval: R@1 image->text ${pct(r.recallAt1.imageToText)}, text->image ${pct(r.recallAt1.textToImage)}; R@5 ${pct(r.recallAt5.imageToText)} / ${pct(r.recallAt5.textToImage)}`);
    if (values.json) {
      io.out(JSON.stringify({ zeroShotTop1: r.zeroShotTop1, zeroShotTop5: r.zeroShotTop5, recallAt1: r.recallAt1, recallAt5: r.recallAt5 }));
    }
    return 0;
  } finally {
    clip.dispose();
  }
}
