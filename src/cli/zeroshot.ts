/**
 * `cliplab zeroshot`: zero-shot accuracy of a checkpoint on the Fashion-MNIST test split with a
 * template set, every template alone and all of them ensembled (CLIP §3.1.4,
 * https://arxiv.org/abs/2103.00020). With --json the last line of stdout is
 *   {top1, top5, ensembleTop1, ensembleTop5, perTemplate: [{template, top1, top5}], templates, images}
 * where top1/top5 are the MEAN over single templates, ensembleTop1/5 the ensemble of all of them
 * (fractions; with one template they coincide).
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { loadCheckpoint } from "../io/checkpoint";
import { loadFashionMnist } from "../data/fashion_mnist";
import { Batcher } from "../data/batcher";
import { CaptionSet } from "../data/captions";
import { loadTemplateSet } from "../prompts/templates";
import { encodeImageFeatures, encodePromptBank, ensembleScores, singleTemplateScores, templateCosines } from "../prompts/prompt_bank";
import { classificationMetrics } from "../eval/classifier_metrics";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";

export const ZEROSHOT_USAGE =
  "usage: cliplab zeroshot --checkpoint FILE [--templates NAME|FILE] [--data-dir D] [--limit N] [--json]   (template sets: plain, imagenet7, imagenet80, fashion (default), or a .json file)";

export async function zeroshotCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      templates: { type: "string" },
      "data-dir": { type: "string" },
      limit: { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.checkpoint) throw new UsageError("--checkpoint is required");
  const limit = intOption("limit", values.limit);
  // Before any heavy work: a bad template set or data directory fails fast.
  const set = loadTemplateSet(values.templates ?? "fashion");
  const captions = CaptionSet.load();
  const classNames = captions.spec.classes.map((c) => c.canonical);
  const test = loadFashionMnist("test", { dataDir: values["data-dir"], limit });
  await startBackend(io);
  const clip = await loadCheckpoint(values.checkpoint);
  try {
    const bank = encodePromptBank(clip, classNames, set.templates);
    const size = clip.config.vision_cfg.image_size;
    const batcher = new Batcher(test, { batchSize: 1, seed: 0, imageSize: size, captions: null });
    const features = encodeImageFeatures(
      clip,
      (s, e) => tf.tensor4d(batcher.pixelsFor(Int32Array.from({ length: e - s }, (_, i) => s + i)), [e - s, size, size, 3]),
      Int32Array.from(test.labels),
      { batchSize: 500 },
    );
    const cos = templateCosines(bank, features);
    const c = classNames.length;
    const perTemplate = set.templates.map((template, t) => {
      const m = classificationMetrics(singleTemplateScores(bank, cos, t), features.labels, c);
      return { template, top1: m.top1, top5: m.top5 };
    });
    const ens = classificationMetrics(ensembleScores(bank, cos, new Array<number>(set.templates.length).fill(1)), features.labels, c);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const top1 = mean(perTemplate.map((p) => p.top1));
    const top5 = mean(perTemplate.map((p) => p.top5));
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    for (const p of perTemplate) io.out(`${pct(p.top1).padStart(7)}  ${p.template}`);
    io.out(
      `zero-shot on ${features.n} test images, ${set.templates.length} templates (${set.name}): mean single template top-1 ${pct(top1)} (min ${pct(Math.min(...perTemplate.map((p) => p.top1)))}, max ${pct(Math.max(...perTemplate.map((p) => p.top1)))}), ensemble top-1 ${pct(ens.top1)}, top-5 ${pct(ens.top5)}`,
    );
    if (values.json) {
      io.out(JSON.stringify({ top1, top5, ensembleTop1: ens.top1, ensembleTop5: ens.top5, perTemplate, templates: set.name, images: features.n }));
    }
    return 0;
  } finally {
    clip.dispose();
  }
}
