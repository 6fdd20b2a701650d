/**
 * `cliplab eval`: zero-shot evaluation of a checkpoint on any dataset, CLIP_benchmark style:
 * classification (acc1, acc5, mean_per_class_recall) on a labelled source, retrieval
 * (image/text recall@1/5/10) on a captioned one. With --json the last line of stdout is
 * CLIP_benchmark's result object, plus `skipped`.
 */
import { parseArgs } from "node:util";
import * as path from "node:path";
import { loadCheckpoint } from "../io/checkpoint";
import { modelTransform } from "../model/config";
import { presetNameOf } from "../model/registry";
import { BENCHMARK_TASKS, type BenchmarkResult, type BenchmarkTask } from "../eval/benchmark";
import { evaluateDataset } from "../eval/evaluate_dataset";
import { loadTemplateSet } from "../text/templates";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { DATA_OPTIONS, DATA_USAGE, ENGINE_OPTION, ENGINE_USAGE, SHARD_OPTION, SkipLog, checkEngineFlags, engineFromFlags, openDataFromFlags, shardFromFlags } from "./data_options";
import { ProgressLine, progressBar } from "./progress";

export const EVAL_USAGE =
  `usage: cliplab eval --checkpoint FILE ${DATA_USAGE} [--task ${BENCHMARK_TASKS.join("|")}] [--templates NAME|FILE] [--limit N] [--shard I/N] ${ENGINE_USAGE} [--json]\n` +
  "  The task defaults to what the data has: classification with labels, else retrieval (own captions, or one generated per image).";

export async function evalCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      task: { type: "string" },
      templates: { type: "string" },
      limit: { type: "string" },
      seed: { type: "string" },
      json: { type: "boolean", default: false },
      ...DATA_OPTIONS,
      ...SHARD_OPTION,
      ...ENGINE_OPTION,
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.checkpoint) throw new UsageError("--checkpoint is required");
  const task = values.task as BenchmarkTask | undefined;
  if (task !== undefined && !BENCHMARK_TASKS.includes(task)) throw new UsageError(`--task must be one of ${BENCHMARK_TASKS.join(", ")}, got ${values.task}`);
  const limit = intOption("limit", values.limit);
  const seed = intOption("seed", values.seed, 0) ?? 0;
  const shard = shardFromFlags(values.shard);
  checkEngineFlags(values);
  const ds = await openDataFromFlags(values, { split: "test" });
  const templates = values.templates ? loadTemplateSet(values.templates).templates : undefined;
  await startBackend(io);
  const clip = await loadCheckpoint(values.checkpoint);
  let engine;
  try {
    engine = await engineFromFlags(clip, values, io);
  } catch (err) {
    clip.dispose();
    throw err;
  }
  const skips = new SkipLog();
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  try {
    const total = limit ?? ds.size;
    const r = await evaluateDataset(clip, ds, {
      transform: modelTransform(clip.config),
      task,
      templates,
      engine,
      limit,
      shard,
      seed,
      skipBadImages: values["skip-bad-images"],
      onSkip: (s) => {
        skips.onSkip(s);
        io.err(`skipped ${s.key}: ${s.reason}`);
      },
      onProgress: (p) => progress.update(`${progressBar(total && p.kind === "images" ? p.done / total : 0)} ${p.kind} ${p.done}${p.total ? `/${p.total}` : ""}`),
    });
    progress.done();
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    const where = `${r.images} images of ${ds.spec}${shard ? ` (shard ${shard.index}/${shard.count})` : ""}`;
    if (r.task === "zeroshot_classification") {
      io.out(`zero-shot classification on ${where}: top-1 ${pct(r.metrics.acc1)}, top-5 ${pct(r.metrics.acc5)}, mean per-class recall ${pct(r.metrics.mean_per_class_recall)} (${r.classNames!.length} classes, ${r.templates!.length} templates)`);
    } else {
      if (!ds.hasLabels) io.out(`${ds.spec} has captions but no labels: zero-shot classification is impossible, retrieval only`);
      const m = r.metrics;
      io.out(`zero-shot retrieval on ${where} and ${r.texts} captions: image R@1/5/10 ${pct(m["image_retrieval_recall@1"])} / ${pct(m["image_retrieval_recall@5"])} / ${pct(m["image_retrieval_recall@10"])}, text R@1/5/10 ${pct(m["text_retrieval_recall@1"])} / ${pct(m["text_retrieval_recall@5"])} / ${pct(m["text_retrieval_recall@10"])}`);
    }
    if (skips.count) io.out(`skipped ${skips.count} unreadable image${skips.count === 1 ? "" : "s"} (--skip-bad-images)`);
    if (values.json) {
      const result: BenchmarkResult & { skipped: number; skippedItems: typeof skips.items; images: number; texts: number } = {
        dataset: ds.name,
        model: presetNameOf(clip.config) ?? "custom",
        pretrained: path.resolve(values.checkpoint),
        task: r.task,
        metrics: r.metrics,
        images: r.images,
        texts: r.texts,
        skipped: skips.count,
        skippedItems: skips.items,
      };
      io.out(JSON.stringify(result));
    }
    return 0;
  } finally {
    engine.dispose();
    clip.dispose();
  }
}
