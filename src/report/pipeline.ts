/**
 * cliplab's whole pipeline as a report, without Jupyter, on any dataset: train (the default
 * recipe on Fashion-MNIST, or on another source) or load a checkpoint; evaluate zero-shot where
 * the data has labels and retrieval on its captions (its own, or one generated per image); measure
 * the modality gap (Liang et al. 2022, https://arxiv.org/abs/2203.02053) against a freshly
 * initialised model of the same configuration; map images, captions and class embeddings with
 * UMAP (https://arxiv.org/abs/1802.03426), hovering the model's inputs; and assemble the sections.
 * `cliplab report` writes the result with `writeReport`. Images are read once, through the data
 * pipeline and the batched encoder (pipeline_measure.ts). Then the audits the data supports
 * (pipeline_audits.ts): the prompt study, robustness, fairness, with settings sized for the
 * report. `sections` picks what the report holds (sections.ts). Progress goes out through
 * callbacks; nothing is printed here.
 *
 * On Fashion-MNIST with no other data given, this is the report it always was: the default recipe
 * trained on the training split (in memory, exactly the measured batches), evaluated on the test
 * split (zero-shot on all 10,000 images with the evaluation templates).
 */
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../model/clip";
import { modelTransform } from "../model/config";
import { loadCheckpoint } from "../io/checkpoint";
import type { Dataset, SkippedItem } from "../data/dataset";
import { openDataset } from "../data/open";
import { isFashionMnist } from "../data/sources/fashion_mnist";
import type { FeatureMatrix, EncodeProgress } from "../eval/encode";
import { PLAIN_TEMPLATES } from "../eval/evaluate_dataset";
import { fillPrompt } from "../text/fill";
import { trainClip, type TrainCallbacks } from "../train/trainer";
import type { TrainOptions } from "../train/options";
import { embeddingUmap, type EmbeddingGroup } from "../viz/embedding_map";
import type { UmapOptions, UmapProgress } from "../viz/umap_layout";
import { imageThumbnails } from "../viz/png";
import { hasTrainingHistory, readTrainingHistory, type TrainingHistory } from "../train/history";
import type { ImageBlock, Report, ReportSection } from "./types";
import { embeddingSection, retrievalSection, skippedSection, trainingSection, zeroShotSection } from "./sections/pipeline";
import { cosineTable, encodePairs, headRows, measureDataset, pairStats, retrievalOf, textsOfFirst, type ReportMeasures } from "./pipeline_measure";
import { resolveSections, type ReportSectionName } from "./sections/select";
import {
  REPORT_AUDITS,
  datasetGroups,
  fairnessReportSection,
  promptsSection,
  robustnessReportSection,
  type AuditContext,
  type ReportAuditSettings,
  type ReportGroups,
} from "./pipeline_audits";

export interface PipelineReportOptions {
  /** Report title suffix and default run name. */
  name: string;
  /**
   * What the report evaluates (a dataset from `openDataset`); default Fashion-MNIST's test split
   * from `dataDir`. It needs labels (zero-shot) or captions (retrieval), or both.
   */
  data?: Dataset;
  /** Fashion-MNIST directory (the default data, and the default training data); default the Debian package's. */
  dataDir?: string;
  /** Load this checkpoint (model.safetensors); without it, train. */
  checkpoint?: string;
  /** Training options when training (merged over TRAIN_DEFAULTS by trainClip). */
  train?: Partial<TrainOptions>;
  /** Training data when training; default Fashion-MNIST's training split (the in-memory path of the recipe). */
  trainData?: Dataset;
  /** Evaluated after every epoch of training; default trainClip's (Fashion-MNIST's test split when training on it, else none). */
  valData?: Dataset;
  /** Class names of the prompts; default the dataset's (a `--classnames` file is applied when opening it). */
  classNames?: readonly string[];
  /** Zero-shot templates; default the dataset's, else CLIP's plain "a photo of a {}.". */
  templates?: readonly string[];
  /** Go on past unreadable images (listed in the report and the summary), instead of stopping at the first. */
  skipBadImages?: boolean;
  /** Images (and their captions) in the UMAP and the modality gap; default 1000. */
  points?: number;
  /** Images for zero-shot accuracy; default 10000. */
  zeroShotLimit?: number;
  /** Images (with their captions) for retrieval; default 1000. */
  retrievalLimit?: number;
  /** Seed of the generated captions, the UMAP and the freshly initialised model; default 0. */
  seed?: number;
  umap?: Omit<UmapOptions, "seed" | "onProgress">;
  /** The sections to include (sections.ts); default every one the data supports. */
  sections?: readonly ReportSectionName[];
  /** The fairness section's groups; default the data's own group columns (the first is the main grouping). */
  groups?: ReportGroups;
  /** The audits' settings, per audit; default REPORT_AUDITS (sized for a report of about ten minutes). */
  audits?: Partial<ReportAuditSettings>;
  /**
   * A labelled split for the prompt study to choose prompts on, disjoint from `data`; default
   * Fashion-MNIST's training split when reporting on Fashion-MNIST, the training data when it is
   * not the data reported on, else `data` split in two by a seeded hash.
   */
  selectionData?: Dataset;
}

export interface PipelineCallbacks extends TrainCallbacks {
  /** A stage begins ("loading checkpoint", "UMAP of 2010 points", ...). */
  onStage?(message: string): void;
  onUmapProgress?(event: UmapProgress): void;
  /** Images and texts encoded so far. */
  onEncodeProgress?(event: EncodeProgress): void;
  /** An image left out under `skipBadImages` (once per item and stage). */
  onSkip?(item: SkippedItem & { stage: "training" | "evaluation" }): void;
  /** Progress inside an audit (the robustness audit's corruptions and attacks). */
  onAuditProgress?(event: { audit: string; done: number; total: number; label: string }): void;
}

export interface PipelineSummary {
  name: string;
  source: string;
  checkpoint: string | null;
  /** The evaluated data's spec and name. */
  dataset: string;
  datasetName: string;
  /** The model's input side in pixels. */
  imageSize: number;
  /** Null where the data has no labels. */
  zeroShotTop1: number | null;
  zeroShotImages: number;
  /** CLIP_benchmark's metric names: acc1, acc5, mean_per_class_recall (with labels), image/text_retrieval_recall@1/5/10. */
  metrics: Record<string, number>;
  recallAt1: { imageToText: number; textToImage: number };
  /** Images and captions in the retrieval. */
  retrieval: { images: number; texts: number; captions: "own" | "generated" };
  modalityGap: { trained: number; initial: number };
  /** 0 when the embedding section is left out. */
  umapPoints: number;
  umapSeconds: number;
  /** The sections the report holds, in order. */
  sections: ReportSectionName[];
  /** Headline numbers and wall time of each audit run. */
  audits: {
    prompts?: { ensembleTop1?: number; seconds: number };
    robustness?: { cleanTop1: number; seconds: number };
    fairness?: { flagged: string[]; seconds: number };
  };
  /** Distinct images left out under skipBadImages, and which. */
  skipped: number;
  skippedItems: (SkippedItem & { stage: "training" | "evaluation" })[];
  seconds: number;
}

/** At most this many images in the similarity heatmap (one per class, or the first ones). */
const HEATMAP_MAX = 16;

function check(name: string, v: number | undefined, fallback: number): number {
  const x = v ?? fallback;
  if (!Number.isInteger(x) || x < 1) throw new RangeError(`runPipelineReport: ${name} must be a positive integer, got ${v}`);
  return x;
}

/** A one-line error unless the data has something to measure; returns the class names to prompt with (if labelled). */
function classNamesOf(ds: Dataset, given: readonly string[] | undefined): readonly string[] | undefined {
  if (!ds.hasLabels && !ds.hasCaptions) {
    throw new RangeError(`${ds.spec}: has neither labels nor captions, so the report has nothing to measure (zero-shot needs labels, retrieval needs captions)`);
  }
  if (!ds.hasLabels) return undefined;
  const names = given ?? ds.classNames;
  if (!names || names.length === 0) throw new RangeError(`${ds.spec}: has labels but no class names; pass --classnames FILE (one name per line, in label order)`);
  return names;
}

/** The rows of `kept` in the heatmap: the first image of each class (up to HEATMAP_MAX), or the first images. */
function heatmapRows(kept: ReportMeasures["kept"], m: number, labelled: boolean): number[] {
  if (!labelled) return Array.from({ length: Math.min(m, HEATMAP_MAX) }, (_, i) => i);
  const first = new Map<number, number>();
  for (let i = 0; i < m; i++) {
    const l = kept[i].label ?? -1;
    if (l >= 0 && !first.has(l)) first.set(l, i);
  }
  return [...first.entries()].sort((a, b) => a[0] - b[0]).slice(0, HEATMAP_MAX).map(([, i]) => i);
}

/** The chosen model inputs side by side as one RGB image block. */
function stripBlock(kept: ReportMeasures["kept"], rows: readonly number[], size: number, names: string[]): ImageBlock {
  const width = size * rows.length;
  const strip = new Uint8Array(size * width * 3);
  rows.forEach((i, k) => {
    for (let y = 0; y < size; y++) strip.set(kept[i].pixels.subarray(y * size * 3, (y + 1) * size * 3), (y * width + k * size) * 3);
  });
  return {
    kind: "image",
    pixels: strip,
    height: size,
    width,
    channels: 3,
    scale: Math.max(0.25, Math.min(3, Math.round((96 / size) * 4) / 4)),
    caption: `The heatmap's images as the model sees them (${size}x${size} after preprocessing), left to right: ${names.join(", ")}.`,
  };
}

function toTensor(f: FeatureMatrix): tf.Tensor2D {
  return tf.tensor2d(f.values, [f.n, f.dim], "float32"); // [n, D]
}

/** Runs the pipeline and returns the report (render it with renderReport / writeReport) and a summary. */
export async function runPipelineReport(opts: PipelineReportOptions, callbacks: PipelineCallbacks = {}): Promise<{ report: Report; summary: PipelineSummary }> {
  const started = performance.now();
  const stage = (m: string) => callbacks.onStage?.(m);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`runPipelineReport: seed must be an integer >= 0, got ${opts.seed}`);
  const points = check("points", opts.points, 1000);
  const zeroShotLimit = check("zeroShotLimit", opts.zeroShotLimit, 10000);
  const retrievalLimit = check("retrievalLimit", opts.retrievalLimit, 1000);
  if (opts.checkpoint && (opts.trainData || opts.valData)) throw new RangeError("runPipelineReport: trainData and valData are for training; they do not go with checkpoint");

  const ds = opts.data ?? (await openDataset(opts.dataDir ? `fashion-mnist:${opts.dataDir}` : "fashion-mnist", { split: "test" }));
  const classNames = classNamesOf(ds, opts.classNames);
  const templates = opts.templates ?? ds.templates ?? PLAIN_TEMPLATES;
  const fashion = isFashionMnist(ds);
  // Fashion-MNIST's prompts use readable names ("pair of trousers"); its figures keep the official ones.
  const displayNames = fashion && !opts.classNames ? ds.labelled.classNames : classNames;
  const imageNoun = fashion ? "test images" : "images";
  const fairGroups = opts.groups ?? datasetGroups(ds);
  const chosen = resolveSections(ds, opts.sections, fairGroups !== undefined);
  const want = (n: ReportSectionName) => chosen.includes(n);
  const audits: ReportAuditSettings = { ...REPORT_AUDITS, ...opts.audits };

  const skipped = new Map<string, SkippedItem & { stage: "training" | "evaluation" }>();
  const onSkip = (where: "training" | "evaluation") => (s: SkippedItem) => {
    const id = `${where}\u0000${s.key}`;
    if (skipped.has(id)) return;
    const item = { ...s, stage: where };
    skipped.set(id, item);
    callbacks.onSkip?.(item);
  };

  // 1. The model: a checkpoint, or trained now.
  let clip: Clip;
  let history: TrainingHistory | null = null;
  let source: string;
  let checkpoint: string | null = null;
  let initialSeed = seed;
  if (opts.checkpoint) {
    stage(`loading ${opts.checkpoint}`);
    clip = await loadCheckpoint(opts.checkpoint);
    checkpoint = opts.checkpoint;
    const runDir = path.dirname(opts.checkpoint);
    source = `checkpoint ${opts.checkpoint}`;
    if (hasTrainingHistory(runDir)) history = readTrainingHistory(runDir);
  } else {
    stage(opts.trainData ? `training on ${opts.trainData.spec}` : "training");
    const data = opts.trainData || opts.valData ? { train: opts.trainData, val: opts.valData, skipBadImages: opts.skipBadImages, onSkip: onSkip("training") } : undefined;
    const result = await trainClip({ dataDir: opts.dataDir, ...opts.train }, callbacks, data);
    clip = result.model;
    checkpoint = result.checkpoint;
    history = { steps: result.history, evals: result.evals };
    initialSeed = opts.train?.seed ?? 0;
    source = `training run ${opts.train?.outDir ?? "(not saved)"}${opts.trainData ? ` on ${opts.trainData.spec}` : ""}`;
  }

  const cfg = clip.config;
  const size = cfg.vision_cfg.image_size;
  const transform = modelTransform(cfg);
  const modelDesc = `${clip.tower} CLIP, ${clip.numParams().toLocaleString("en")} parameters, ${size} px images, embedding dimension ${cfg.embed_dim}`;
  const built = new Map<ReportSectionName, ReportSection>();
  const sections: ReportSection[] = [];
  let summary: PipelineSummary;
  const toDispose: tf.Tensor[] = [];
  try {
    built.set("training", trainingSection(history, source));

    // 2. One pass over the data: zero-shot on the first zeroShotLimit images (with labels), the
    // first n kept with their captions for retrieval, the map and the modality gap.
    const n = Math.max(points, retrievalLimit);
    stage(classNames ? `zero-shot classification and embedding of ${ds.spec}` : `embedding ${ds.spec} (no labels: retrieval only)`);
    const measured = await measureDataset(clip, ds, {
      transform,
      keep: n,
      zeroShot: classNames ? { classNames, templates, limit: zeroShotLimit } : undefined,
      captionSeed: seed,
      skipBadImages: opts.skipBadImages,
      onSkip: onSkip("evaluation"),
      onProgress: callbacks.onEncodeProgress,
    });
    const { kept, texts, textImage } = measured;
    const origin = measured.ownCaptions ? "own" : "generated";
    const zs = measured.zeroShot;
    if (zs) built.set("zeroshot", zeroShotSection(zs.evaluation, displayNames!, templates, { imageNoun, heldOut: fashion && !opts.templates }));

    // 3. Retrieval on the first m images and all their captions; the heatmap.
    const m = Math.min(retrievalLimit, kept.length);
    const mt = textsOfFirst(textImage, m);
    stage(`retrieval on ${m} images and ${mt} captions`);
    const retrieval = retrievalOf(headRows(measured.imageFeatures, m), headRows(measured.textFeatures, mt), textImage.subarray(0, mt));
    const rows = heatmapRows(kept, m, Boolean(classNames));
    const firstCaption = rows.map((i) => textImage.indexOf(i));
    const label = (i: number) => `#${i} ${kept[i].label !== undefined && displayNames ? displayNames[kept[i].label!] : kept[i].key}`;
    built.set(
      "retrieval",
      retrievalSection({
        metrics: retrieval.table,
        pairs: m,
        texts: mt,
        captionOrigin: origin,
        imageNoun,
        heatmap: { similarity: cosineTable(measured.imageFeatures, rows, measured.textFeatures, firstCaption), imageLabels: rows.map(label), captions: firstCaption.map((j) => texts[j]) },
        strip: stripBlock(kept, rows, size, rows.map(label)),
      }),
    );

    // 4. Modality gap, this model vs a freshly initialised one, on the map's points.
    const p = Math.min(points, kept.length);
    const pt = textsOfFirst(textImage, p);
    const imgP = headRows(measured.imageFeatures, p);
    const txtP = headRows(measured.textFeatures, pt);
    const ownerP = textImage.subarray(0, pt);
    stage(`modality gap against a freshly initialised model (seed ${initialSeed})`);
    const trained = pairStats(imgP, txtP, ownerP);
    const fresh = Clip.create(clip.config, { seed: initialSeed });
    let initial;
    try {
      const f = await encodePairs(fresh, kept.slice(0, p), texts.slice(0, pt), transform);
      initial = { ...pairStats(f.images, f.texts, ownerP), seed: initialSeed };
    } finally {
      fresh.dispose();
    }

    // 5. UMAP of images, captions and class embeddings together (the embedding section only).
    // Captions repeat (a few templates and words per class); each distinct caption is one point,
    // since identical embeddings would form disconnected k-NN components that UMAP scatters at random.
    let total = 0;
    let umapSeconds = 0;
    if (want("embedding")) {
      const mapNames = displayNames ?? [ds.name];
      const classOf = (i: number) => (classNames ? (kept[i].label ?? 0) : 0);
      const firstIndex = new Map<string, number>();
      const uses = new Map<string, number>();
      for (let j = 0; j < pt; j++) {
        if (!firstIndex.has(texts[j])) firstIndex.set(texts[j], j);
        uses.set(texts[j], (uses.get(texts[j]) ?? 0) + 1);
      }
      const uniqueIdx = [...firstIndex.values()];
      const imgT = toTensor(imgP);
      toDispose.push(imgT);
      const txtU = tf.tidy(() => tf.gather(toTensor(txtP), tf.tensor1d(uniqueIdx, "int32")) as tf.Tensor2D); // [u, D]
      toDispose.push(txtU);
      const groups: EmbeddingGroup[] = [
        {
          name: fashion ? "test image" : "image",
          modality: "image",
          embeddings: imgT,
          labels: Array.from({ length: p }, (_, i) => classOf(i)),
          hover: kept.slice(0, p).map((it) => it.key),
          thumbnails: kept.slice(0, p).map((it) => imageThumbnails(it.pixels, size, size, 3, [0])[0]),
        },
        {
          name: "caption",
          modality: "text",
          embeddings: txtU,
          labels: uniqueIdx.map((j) => classOf(textImage[j])),
          hover: uniqueIdx.map((j) => `${texts[j]} (caption of ${uses.get(texts[j])} image${uses.get(texts[j]) === 1 ? "" : "s"})`),
          opacity: 0.7,
        },
      ];
      const classPrompts = zs ? zs.classWeights.n : 0;
      if (zs) {
        const w = toTensor(zs.classWeights);
        toDispose.push(w);
        groups.push({
          name: "class embedding",
          modality: "text",
          embeddings: w,
          labels: classNames!.map((_, c) => c),
          hover: classNames!.map((c) => `ensemble of ${templates.length} prompt${templates.length === 1 ? "" : "s"}, e.g. ${JSON.stringify(fillPrompt(templates[0], c))}`),
          symbol: "star",
          size: 16,
          opacity: 1,
        });
      }
      total = p + uniqueIdx.length + classPrompts;
      stage(`UMAP of ${total} points`);
      const { figure, layout } = await embeddingUmap(
        { classNames: mapNames, groups },
        { ...opts.umap, seed, onProgress: callbacks.onUmapProgress, title: "Joint embedding space (UMAP)" },
      );
      umapSeconds = layout.knnSeconds + layout.graphSeconds + layout.layoutSeconds;
      built.set("embedding", embeddingSection({ figure, layout, images: p, captions: pt, distinctCaptions: uniqueIdx.length, classPrompts, captionOrigin: origin, imageNoun, trained, initial }));
    }

    // 6. The audits, on the same data and model.
    const ctx: AuditContext = {
      clip,
      data: ds,
      selectionData: opts.selectionData ?? (fashion && !opts.trainData ? await openDataset(opts.dataDir ? `fashion-mnist:${opts.dataDir}` : "fashion-mnist", { split: "train" }) : opts.trainData && opts.trainData !== ds ? opts.trainData : undefined),
      classNames: opts.classNames,
      templates: opts.templates,
      seed,
      skipBadImages: opts.skipBadImages,
      onSkip: onSkip("evaluation"),
      onStage: stage,
      onEncodeProgress: callbacks.onEncodeProgress,
      onAuditProgress: callbacks.onAuditProgress,
    };
    const auditSummary: PipelineSummary["audits"] = {};
    const timed = async <T,>(f: () => Promise<T>): Promise<[T, number]> => {
      const t0 = performance.now();
      const r = await f();
      return [r, (performance.now() - t0) / 1000];
    };
    if (want("prompts")) {
      stage("prompt study");
      const [r, seconds] = await timed(() => promptsSection(ctx, audits.prompts));
      built.set("prompts", r.section);
      auditSummary.prompts = { ensembleTop1: r.top1, seconds };
    }
    if (want("robustness")) {
      stage("robustness audit");
      const [r, seconds] = await timed(() => robustnessReportSection(ctx, audits.robustness));
      built.set("robustness", r.section);
      auditSummary.robustness = { cleanTop1: r.cleanTop1, seconds };
    }
    if (want("fairness")) {
      stage(`fairness audit by ${fairGroups!.name}`);
      const [r, seconds] = await timed(() => fairnessReportSection(ctx, fairGroups!, audits.fairness));
      built.set("fairness", r.section);
      auditSummary.fairness = { flagged: r.flagged, seconds };
    }
    for (const name of chosen) {
      const sec = built.get(name);
      if (sec) sections.push(sec);
    }

    const skippedItems = [...skipped.values()];
    if (skippedItems.length) sections.push(skippedSection(skippedItems));
    summary = {
      name: opts.name,
      source,
      checkpoint,
      dataset: ds.spec,
      datasetName: ds.name,
      imageSize: size,
      zeroShotTop1: zs ? zs.evaluation.top1 : null,
      zeroShotImages: zs ? zs.evaluation.n : 0,
      metrics: { ...(zs?.metrics ?? {}), ...retrieval.metrics },
      recallAt1: { imageToText: retrieval.table.imageToText["R@1"], textToImage: retrieval.table.textToImage["R@1"] },
      retrieval: { images: m, texts: mt, captions: origin },
      modalityGap: { trained: trained.gap, initial: initial.gap },
      umapPoints: total,
      umapSeconds,
      sections: chosen.filter((n) => built.has(n)),
      audits: auditSummary,
      skipped: new Set(skippedItems.map((s) => s.key)).size,
      skippedItems,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    tf.dispose(toDispose);
    clip.dispose();
  }
  const evaluated = fashion ? "the Fashion-MNIST test set" : `${ds.spec} (${summary.zeroShotImages || summary.retrieval.images} images${classNames ? `, ${classNames.length} classes` : ", no labels"}, ${summary.retrieval.captions} captions)`;
  const onTrainingData = !opts.checkpoint && opts.trainData !== undefined && ds === opts.trainData ? ", the training data itself (no validation data given)" : "";
  const skipNote = opts.skipBadImages ? `\n--skip-bad-images: ${summary.skipped ? `${summary.skipped} unreadable image${summary.skipped === 1 ? "" : "s"} left out (listed at the end)` : "no image was left out"}.` : "";
  const report: Report = {
    title: `cliplab report: ${opts.name}`,
    subtitle:
      `${source}; ${modelDesc}; evaluated on ${evaluated}${onTrainingData}.${skipNote}\n` +
      `Made ${new Date().toISOString().replace("T", " ").slice(0, 16)} UTC in ${summary.seconds.toFixed(0)} s.`,
    sections,
  };
  return { report, summary };
}
