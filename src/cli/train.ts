/**
 * `cliplab train`: train a CLIP from scratch or fine-tune one (`--init`) on Fashion-MNIST or any
 * source, with open_clip's flag names (--lock-image, --accum-freq, --grad-checkpointing,
 * --lr-scheduler, --warmup, --wd, ...) and a progress display. With --json, the last line of
 * stdout is one JSON object.
 */
import { parseArgs } from "node:util";
import * as path from "node:path";
import { trainClip } from "../train/trainer";
import { LR_SCHEDULERS, type LrSchedulerName } from "../train/options";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { ProgressLine, formatDuration, progressBar } from "./progress";
import { DATA_OPTIONS, DATA_USAGE, SkipLog, dataSpec, openDataFromFlags } from "./data_options";

export const TRAIN_USAGE =
  "usage: cliplab train [--model PRESET|config.json] [--init CHECKPOINT] [--epochs N] [--max-steps N] [--batch-size B] [--lr LR] [--loss infonce|siglip] [--seed S] [--data SPEC] [--val-data SPEC] [--out runs/NAME] [--resume] [--time-limit SECONDS] [--augment] [--json]\n" +
  "  fine-tuning (open_clip's flags): [--lock-image] [--lock-image-unlocked-groups N] [--lock-text] [--lock-text-unlocked-layers N] [--accum-freq K] [--grad-checkpointing] (default: on when the run would not fit without it)\n" +
  `  schedule and optimizer: [--lr-scheduler ${LR_SCHEDULERS.join("|")}] [--warmup STEPS] [--epochs-cooldown N] [--lr-cooldown-end LR] [--lr-cooldown-power P] [--wd WD] [--beta1 B1] [--beta2 B2] [--eps EPS]\n` +
  `  data flags: ${DATA_USAGE}\n` +
  "  --data defaults to Fashion-MNIST's training split (validation: its test split); any other source trains with its own captions, or captions made from its class names.\n" +
  "  --init loads any checkpoint cliplab reads (OpenAI/open_clip/Hugging Face names, F32/F16/BF16, an open_clip hub folder) with its config; --model must then be absent or the same architecture. --batch is --batch-size.";

function numberArg(name: string, value: string | undefined, min: "positive" | "nonNegative" = "positive"): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || (min === "positive" ? n <= 0 : n < 0)) {
    throw new UsageError(`--${name} must be a ${min === "positive" ? "positive number" : "number >= 0"}, got ${value}`);
  }
  return n;
}

/** One value from two names of the same flag (open_clip's and ours). */
function either(values: Record<string, unknown>, a: string, b: string): string | undefined {
  const x = values[a] as string | undefined;
  const y = values[b] as string | undefined;
  if (x !== undefined && y !== undefined && x !== y) throw new UsageError(`--${a} and --${b} are the same flag; give one`);
  return x ?? y;
}

/** The augmentation `--augment` turns on: small shifts, mirror images of the left-right symmetric classes, mild rotation. */
const DEFAULT_AUGMENT = { shift: 2, flip: 0.5, flipClasses: [0, 1, 2, 3, 4, 6, 8], rotate: 8 };

export async function trainCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      init: { type: "string" },
      epochs: { type: "string" },
      "max-steps": { type: "string" },
      batch: { type: "string" },
      "batch-size": { type: "string" },
      lr: { type: "string" },
      warmup: { type: "string" },
      wd: { type: "string" },
      beta1: { type: "string" },
      beta2: { type: "string" },
      eps: { type: "string" },
      "lr-scheduler": { type: "string" },
      "epochs-cooldown": { type: "string" },
      "lr-cooldown-end": { type: "string" },
      "lr-cooldown-power": { type: "string" },
      "lock-image": { type: "boolean", default: false },
      "lock-image-unlocked-groups": { type: "string" },
      "lock-image-freeze-bn-stats": { type: "boolean", default: false },
      "lock-text": { type: "boolean", default: false },
      "lock-text-unlocked-layers": { type: "string" },
      "accum-freq": { type: "string" },
      "grad-checkpointing": { type: "boolean" },
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
  const scheduler = values["lr-scheduler"];
  if (scheduler !== undefined && !(LR_SCHEDULERS as readonly string[]).includes(scheduler)) {
    throw new UsageError(`--lr-scheduler must be one of ${LR_SCHEDULERS.join(", ")}, got ${scheduler}`);
  }
  if (scheduler === "const-cooldown" && values["epochs-cooldown"] === undefined) throw new UsageError("--lr-scheduler const-cooldown needs --epochs-cooldown N (the epochs of cooldown at the end)");
  if (values["lock-image-unlocked-groups"] !== undefined && !values["lock-image"]) throw new UsageError("--lock-image-unlocked-groups needs --lock-image");
  if (values["lock-text-unlocked-layers"] !== undefined && !values["lock-text"]) throw new UsageError("--lock-text-unlocked-layers needs --lock-text");
  // BatchNorm statistics of locked layers are always frozen here (open_clip needs --lock-image-freeze-bn-stats for that): the flag is accepted.
  if (values["lock-image-freeze-bn-stats"] && !values["lock-image"]) throw new UsageError("--lock-image-freeze-bn-stats needs --lock-image");

  const spec = dataSpec(values);
  const fashion = spec.startsWith("fashion-mnist");
  // Every number flag checked before the backend starts (usage errors first).
  const options = {
    model: values.model,
    init: values.init,
    epochs: intOption("epochs", values.epochs),
    maxSteps: intOption("max-steps", values["max-steps"]),
    batchSize: intOption(values["batch-size"] !== undefined ? "batch-size" : "batch", either(values, "batch-size", "batch")),
    lr: numberArg("lr", values.lr),
    warmupSteps: intOption("warmup", values.warmup, 0),
    weightDecay: numberArg("wd", values.wd, "nonNegative"),
    beta1: numberArg("beta1", values.beta1, "nonNegative"),
    beta2: numberArg("beta2", values.beta2, "nonNegative"),
    eps: numberArg("eps", values.eps),
    lrScheduler: scheduler as LrSchedulerName | undefined,
    epochsCooldown: intOption("epochs-cooldown", values["epochs-cooldown"]),
    lrCooldownEnd: numberArg("lr-cooldown-end", values["lr-cooldown-end"], "nonNegative"),
    lrCooldownPower: numberArg("lr-cooldown-power", values["lr-cooldown-power"]),
    lockImage: values["lock-image"],
    lockImageUnlockedGroups: intOption("lock-image-unlocked-groups", values["lock-image-unlocked-groups"], 0),
    lockText: values["lock-text"],
    lockTextUnlockedLayers: intOption("lock-text-unlocked-layers", values["lock-text-unlocked-layers"], 0),
    accumFreq: intOption("accum-freq", values["accum-freq"]),
    // Absent: the trainer turns it on when the run would not fit without it (and says so).
    gradCheckpointing: values["grad-checkpointing"] ? true : ("auto" as const),
    loss: values.loss as "infonce" | "siglip" | undefined,
    seed,
    dataDir: fashion ? spec.slice("fashion-mnist:".length) || undefined : undefined,
    outDir,
    resume: values.resume,
    timeLimitSeconds: numberArg("time-limit", values["time-limit"]),
    augment: values.augment ? DEFAULT_AUGMENT : undefined,
  };
  // Fashion-MNIST keeps its --data-dir route (the in-memory split and its test set); other sources open here.
  const train = fashion && values["val-data"] === undefined ? undefined : await openDataFromFlags(values, { split: "train", spec });
  const val = values["val-data"] !== undefined ? await openDataFromFlags(values, { split: "test", spec: values["val-data"] }) : undefined;
  const skips = new SkipLog();
  await startBackend(io);
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  const started = Date.now();
  const result = await trainClip(
    options,
    {
      onStart: (s) =>
        io.err(
          `training ${s.trainedParams === s.params ? "" : `${s.trainedParams.toLocaleString("en")} of `}${s.params.toLocaleString("en")} parameters for ${s.totalSteps} steps (${s.stepsPerEpoch} per epoch)` +
            `${values.init && !s.startStep ? ` from ${values.init}` : ""}${s.startStep ? `, resuming at step ${s.startStep}` : ""}` +
            `${s.gradCheckpointing === "auto" ? "; gradient checkpointing on (without it the run would not fit in memory)" : ""}`,
        ),
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
        const m = e.eval.metrics;
        // CLIP_benchmark's names: acc1 where the data has classes, the retrieval recalls where it has captions.
        const named = ["acc1", "mean_per_class_recall", "image_retrieval_recall@1", "text_retrieval_recall@1", "image_retrieval_recall@5", "text_retrieval_recall@5"]
          .filter((k) => m[k] !== undefined && !Number.isNaN(m[k]))
          .map((k) => `${k} ${pct(m[k])}`)
          .join(", ");
        io.err(
          e.eval.images === 0
            ? `epoch ${e.epoch + 1}: no validation data (--val-data) (${formatDuration(e.trainSeconds)} of training)`
            : `epoch ${e.epoch + 1} on ${e.eval.images} validation images: ${named} (${formatDuration(e.trainSeconds)} of training)`,
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
      `${Number.isNaN(result.zeroShotTop1) ? "" : `zero-shot top-1 ${(100 * result.zeroShotTop1).toFixed(2)}%; `}` +
      `${result.final.metrics["image_retrieval_recall@1"] !== undefined ? `image_retrieval_recall@1 ${(100 * result.final.metrics["image_retrieval_recall@1"]).toFixed(2)}%; ` : ""}checkpoint ${result.checkpoint}`,
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
        metrics: result.final.metrics,
        skipped: skips.count,
        skippedItems: skips.items,
      }),
    );
  }
  return 0;
}
