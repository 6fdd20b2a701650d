/**
 * `cliplab zeroshot`: zero-shot accuracy of a checkpoint on any labelled dataset with a template
 * set, every template alone and all of them ensembled (CLIP §3.1.4,
 * https://arxiv.org/abs/2103.00020). With --json the last line of stdout is
 *   {top1, top5, ensembleTop1, ensembleTop5, perTemplate: [{template, top1, top5}], templates, images, dataset, skipped}
 * where top1/top5 are the MEAN over single templates, ensembleTop1/5 the ensemble of all of them
 * (fractions; with one template they coincide).
 *
 * On a captioned source without labels zero-shot classification is impossible: the command says
 * so in one line and reports retrieval only (CLIP_benchmark's image/text Recall@1/5/10, a hit when
 * any of an image's captions is in the top K); the JSON line is then
 *   {retrievalOnly: true, metrics: {"image_retrieval_recall@1", ..., "text_retrieval_recall@10"}, images, texts, dataset, skipped}.
 */
import { parseArgs } from "node:util";
import { loadCheckpoint } from "../io/checkpoint";
import { modelTransform } from "../model/config";
import type { Dataset } from "../data/dataset";
import { preparedStream } from "../data/stream";
import { isFashionMnist } from "../data/sources/fashion_mnist";
import { loadTemplateSet, type TemplateSet } from "../text/templates";
import { encodePromptBank, ensembleScores, featureSetOf, singleTemplateScores, templateCosines } from "../prompts/prompt_bank";
import { encodeImages, encodeTexts, type EncodeProgress } from "../eval/encode";
import { retrievalBenchmarkMetrics, RETRIEVAL_KS } from "../eval/benchmark";
import { classificationMetrics } from "../eval/classifier_metrics";
import { CliIO, UsageError, intOption } from "./io";
import { startBackend } from "./backend";
import { DATA_OPTIONS, DATA_USAGE, SkipLog, openDataFromFlags } from "./data_options";
import { ProgressLine, progressBar } from "./progress";

export const ZEROSHOT_USAGE =
  `usage: cliplab zeroshot --checkpoint FILE ${DATA_USAGE} [--templates NAME|FILE] [--limit N] [--seed N] [--json]\n` +
  "  template sets: plain, imagenet7, imagenet80, fashion, or a .json file; default fashion on Fashion-MNIST, else the source's templates, else imagenet7.\n" +
  "  A captioned source without labels gets retrieval only (Recall@1/5/10 both ways).";

/** The template set: the flag's, else "fashion" on Fashion-MNIST, else the source's own, else imagenet7. */
function templateSetFor(ds: Dataset, flag: string | undefined): TemplateSet {
  if (flag !== undefined) return loadTemplateSet(flag);
  if (isFashionMnist(ds)) return loadTemplateSet("fashion");
  if (ds.templates?.length) return { name: "source", description: `the templates that came with ${ds.spec}`, templates: ds.templates.slice(), file: ds.spec };
  return loadTemplateSet("imagenet7");
}

export async function zeroshotCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: "string" },
      templates: { type: "string" },
      limit: { type: "string" },
      seed: { type: "string" },
      json: { type: "boolean", default: false },
      ...DATA_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.checkpoint) throw new UsageError("--checkpoint is required");
  const limit = intOption("limit", values.limit);
  const seed = intOption("seed", values.seed, 0) ?? 0;
  // Before any heavy work: a bad template set or dataset fails fast.
  if (values.templates !== undefined) loadTemplateSet(values.templates);
  const ds = await openDataFromFlags(values, { split: "test" });
  const classify = ds.hasLabels;
  if (classify && !ds.classNames?.length) throw new Error(`${ds.spec}: has labels but no class names; pass --classnames FILE (one name per line, in label order)`);
  if (!classify && !ds.hasCaptions) {
    throw new Error(`${ds.spec}: has neither labels nor captions, so there is nothing to evaluate zero-shot (give a labelled source, or one with captions for retrieval)`);
  }
  const set = classify ? templateSetFor(ds, values.templates) : undefined;

  await startBackend(io);
  const clip = await loadCheckpoint(values.checkpoint);
  const skips = new SkipLog();
  const progress = new ProgressLine(io, Boolean(process.stderr.isTTY));
  const total = ds.size === undefined ? limit : Math.min(ds.size, limit ?? Infinity);
  const onProgress = (p: EncodeProgress) =>
    progress.update(`${progressBar(total && p.kind === "images" ? p.done / total : 0)} ${p.kind} ${p.done}${p.total ? `/${p.total}` : ""}`);
  try {
    const transform = modelTransform(clip.config);
    const items = preparedStream(ds, transform, {
      limit,
      skipBadImages: values["skip-bad-images"],
      onSkip: (s) => {
        skips.onSkip(s);
        io.err(`skipped ${s.key}: ${s.reason}`);
      },
    });
    const images = await encodeImages(clip, items, { mean: transform.mean, std: transform.std, normalize: true, onProgress, total });
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    const skipped = () => {
      if (skips.count) io.out(`skipped ${skips.count} unreadable image${skips.count === 1 ? "" : "s"} (--skip-bad-images)`);
    };

    if (!classify) {
      progress.done();
      io.out(`${ds.spec} has captions but no labels: zero-shot classification is impossible, retrieval only`);
      const texts: string[] = [];
      const textImage: number[] = [];
      images.captions.forEach((list, i) => {
        for (const caption of list) {
          texts.push(caption);
          textImage.push(i);
        }
      });
      if (texts.length === 0) throw new Error(`${ds.spec}: none of the ${images.n} images read has a caption, so there is nothing to retrieve`);
      const textFeatures = encodeTexts(clip, texts, { normalize: true });
      const metrics = retrievalBenchmarkMetrics(images, textFeatures, Int32Array.from(textImage));
      const ks = (kind: string) => RETRIEVAL_KS.map((k) => pct(metrics[`${kind}_retrieval_recall@${k}`])).join(" / ");
      io.out(`text -> image (image retrieval) R@1/5/10: ${ks("image")}`);
      io.out(`image -> text (text retrieval) R@1/5/10: ${ks("text")}`);
      io.out(`zero-shot retrieval on ${images.n} images and ${texts.length} captions of ${ds.spec}`);
      skipped();
      if (values.json) io.out(JSON.stringify({ retrievalOnly: true, metrics, images: images.n, texts: texts.length, dataset: ds.name, skipped: skips.count }));
      return 0;
    }

    const classNames = ds.classNames!;
    const c = classNames.length;
    const features = featureSetOf(images, c, "zero-shot classification");
    const bank = encodePromptBank(clip, classNames, set!.templates);
    progress.done();
    const cos = templateCosines(bank, features);
    const perTemplate = set!.templates.map((template, t) => {
      const m = classificationMetrics(singleTemplateScores(bank, cos, t), features.labels, c);
      return { template, top1: m.top1, top5: m.top5 };
    });
    const ens = classificationMetrics(ensembleScores(bank, cos, new Array<number>(set!.templates.length).fill(1)), features.labels, c);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const top1 = mean(perTemplate.map((p) => p.top1));
    const top5 = mean(perTemplate.map((p) => p.top5));
    for (const p of perTemplate) io.out(`${pct(p.top1).padStart(7)}  ${p.template}`);
    io.out(
      `zero-shot on ${features.n} test images, ${set!.templates.length} templates (${set!.name}): mean single template top-1 ${pct(top1)} (min ${pct(Math.min(...perTemplate.map((p) => p.top1)))}, max ${pct(Math.max(...perTemplate.map((p) => p.top1)))}), ensemble top-1 ${pct(ens.top1)}, top-5 ${pct(ens.top5)}`,
    );
    skipped();
    if (values.json) {
      io.out(JSON.stringify({ top1, top5, ensembleTop1: ens.top1, ensembleTop5: ens.top5, perTemplate, templates: set!.name, images: features.n, dataset: ds.name, skipped: skips.count }));
    }
    return 0;
  } finally {
    clip.dispose();
  }
}
