/**
 * cliplab's whole pipeline as a report, without Jupyter: train the default preset (or load a
 * checkpoint), evaluate zero-shot and retrieval on Fashion-MNIST's test set, embed test images
 * and captions, measure the modality gap (Liang et al. 2022, https://arxiv.org/abs/2203.02053)
 * against a freshly initialised model, map the joint space with UMAP
 * (https://arxiv.org/abs/1802.03426), and assemble the sections. `cliplab report` writes the result
 * with `writeReport`. Progress goes out through callbacks; nothing is printed here.
 */
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Clip } from "../model/clip";
import { loadCheckpoint } from "../io/checkpoint";
import { loadFashionMnist, type LabelledImages } from "../data/fashion_mnist";
import { CaptionSet, imageAttributes } from "../data/captions";
import { Batcher } from "../data/batcher";
import { tokenize } from "../text/tokenize";
import { zeroShotClassifier, type ZeroShotEvaluation } from "../eval/zero_shot";
import { retrievalMetrics } from "../eval/retrieval";
import { modalityGap } from "../eval/modality_gap";
import { l2NormalizeRows } from "../loss/info_nce";
import { trainClip, type TrainCallbacks } from "../train/trainer";
import type { TrainOptions } from "../train/options";
import { Random } from "../util/random";
import { embeddingUmap } from "../viz/embedding_map";
import type { UmapOptions, UmapProgress } from "../viz/umap_layout";
import { greyThumbnails } from "../viz/png";
import { hasTrainingHistory, readTrainingHistory, type TrainingHistory } from "../viz/training_curves";
import type { ImageBlock, Report } from "./types";
import { embeddingSection, retrievalSection, trainingSection, zeroShotSection } from "./pipeline_sections";

export interface PipelineReportOptions {
  /** Report title suffix and default run name. */
  name: string;
  /** Load this checkpoint (model.safetensors); without it, train. */
  checkpoint?: string;
  /** Training options when training (merged over TRAIN_DEFAULTS by trainClip). */
  train?: Partial<TrainOptions>;
  /** Fashion-MNIST directory; default the Debian package's. */
  dataDir?: string;
  /** Test images (and as many captions) in the UMAP and the modality gap; default 1000. */
  points?: number;
  /** Test images for zero-shot accuracy; default 10000 (all). */
  zeroShotLimit?: number;
  /** Image-caption pairs for retrieval; default 1000. */
  retrievalLimit?: number;
  /** Seed of the captions, the UMAP and the freshly initialised model; default 0. */
  seed?: number;
  umap?: Omit<UmapOptions, "seed" | "onProgress">;
}

export interface PipelineCallbacks extends TrainCallbacks {
  /** A stage begins ("loading checkpoint", "UMAP of 2010 points", ...). */
  onStage?(message: string): void;
  onUmapProgress?(event: UmapProgress): void;
}

export interface PipelineSummary {
  name: string;
  source: string;
  checkpoint: string | null;
  zeroShotTop1: number;
  zeroShotImages: number;
  recallAt1: { imageToText: number; textToImage: number };
  modalityGap: { trained: number; initial: number };
  umapPoints: number;
  umapSeconds: number;
  seconds: number;
}

const BATCH = 500;

/** Normalised pixels of test images [start, end) for the model's image size. */
function pixelSource(test: LabelledImages, size: number): (idx: ArrayLike<number>) => tf.Tensor4D {
  const batcher = new Batcher(test, { batchSize: 1, seed: 0, imageSize: size, captions: null });
  return (idx) => tf.tensor4d(batcher.pixelsFor(Array.from(idx)), [idx.length, size, size, 3]);
}

function encodeImages(clip: Clip, pixels: (idx: number[]) => tf.Tensor4D, n: number): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  try {
    for (let s = 0; s < n; s += BATCH) {
      const idx = Array.from({ length: Math.min(n, s + BATCH) - s }, (_, i) => s + i);
      const px = pixels(idx);
      try {
        parts.push(clip.encodeImage(px));
      } finally {
        px.dispose();
      }
    }
    return tf.concat(parts, 0) as tf.Tensor2D; // [n, D]
  } finally {
    tf.dispose(parts);
  }
}

function encodeTexts(clip: Clip, texts: string[]): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  try {
    for (let s = 0; s < texts.length; s += BATCH) {
      const tokens = tokenize(texts.slice(s, s + BATCH), { contextLength: clip.config.text_cfg.context_length, truncate: true });
      try {
        parts.push(clip.encodeText(tokens));
      } finally {
        tokens.dispose();
      }
    }
    return tf.concat(parts, 0) as tf.Tensor2D; // [n, D]
  } finally {
    tf.dispose(parts);
  }
}

/** Modality gap and mean cosine of matching (diagonal) and other pairs of paired embeddings [n, D]. */
function pairStats(img: tf.Tensor2D, txt: tf.Tensor2D): { gap: number; matchingCosine: number; otherCosine: number } {
  const n = img.shape[0];
  const [diag, total] = tf.tidy(() => {
    const a = l2NormalizeRows(img);
    const b = l2NormalizeRows(txt);
    const d = tf.sum(tf.mul(a, b)); // sum of matching cosines
    const t = tf.sum(tf.mul(tf.sum(a, 0), tf.sum(b, 0))); // sum of all cosines
    return [d.dataSync()[0], t.dataSync()[0]];
  });
  return { gap: modalityGap(img, txt), matchingCosine: diag / n, otherCosine: n > 1 ? (total - diag) / (n * n - n) : NaN };
}

function check(name: string, v: number | undefined, fallback: number): number {
  const x = v ?? fallback;
  if (!Number.isInteger(x) || x < 1) throw new RangeError(`runPipelineReport: ${name} must be a positive integer, got ${v}`);
  return x;
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

  const test = loadFashionMnist("test", { dataDir: opts.dataDir });
  const captions = CaptionSet.load();
  const classNames = captions.spec.classes.map((c) => c.canonical);
  const displayNames = test.classNames;

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
    stage("training");
    const result = await trainClip({ dataDir: opts.dataDir, ...opts.train }, callbacks);
    clip = result.model;
    checkpoint = result.checkpoint;
    history = { steps: result.history, evals: result.evals };
    initialSeed = opts.train?.seed ?? 0;
    source = `training run ${opts.train?.outDir ?? "(not saved)"}`;
  }

  const cfg = clip.config;
  const modelDesc = `${clip.tower} CLIP, ${clip.numParams().toLocaleString("en")} parameters, ${cfg.vision_cfg.image_size} px images, embedding dimension ${cfg.embed_dim}`;
  const sections = [];
  let summary: PipelineSummary;
  const toDispose: tf.Tensor[] = [];
  try {
    sections.push(trainingSection(history, source));
    const size = clip.config.vision_cfg.image_size;
    const pixels = pixelSource(test, size);

    // 2. Zero-shot classification.
    const nZero = Math.min(zeroShotLimit, test.count);
    stage(`zero-shot classification of ${nZero} test images`);
    const classifier = zeroShotClassifier(clip, classNames, captions.spec.evalTemplates);
    let ev: ZeroShotEvaluation;
    let classWeights: tf.Tensor2D;
    try {
      ev = classifier.evaluate(
        { pixels: (s, e) => pixels(Array.from({ length: e - s }, (_, i) => s + i)), labels: Int32Array.from(test.labels.subarray(0, nZero)) },
        { batchSize: BATCH },
      );
      classWeights = tf.clone(classifier.weights);
      toDispose.push(classWeights);
    } finally {
      classifier.dispose();
    }
    sections.push(zeroShotSection(ev, displayNames, captions.spec.evalTemplates));

    // 3. Test images and one generated caption each (seeded, as evaluateClip draws them).
    const n = Math.min(Math.max(points, retrievalLimit), test.count);
    const rng = new Random(seed + 1);
    const texts: string[] = [];
    for (let i = 0; i < n; i++) {
      const attrs = imageAttributes(test.images, test.height, test.width, i * test.height * test.width);
      texts.push(captions.captionForTraining(test.labels[i], attrs, rng));
    }
    stage(`embedding ${n} test images and their captions`);
    const imgEmb = encodeImages(clip, pixels, n);
    toDispose.push(imgEmb);
    const txtEmb = encodeTexts(clip, texts);
    toDispose.push(txtEmb);

    // 4. Retrieval and the heatmap of one image per class.
    const m = Math.min(retrievalLimit, n);
    const [imgR, txtR] = [tf.slice(imgEmb, [0, 0], [m, -1]), tf.slice(txtEmb, [0, 0], [m, -1])] as tf.Tensor2D[];
    toDispose.push(imgR, txtR);
    stage(`retrieval on ${m} image-caption pairs`);
    const metrics = retrievalMetrics(imgR, txtR, [1, 5]);
    const firstOfClass: number[] = [];
    for (let c = 0; c < displayNames.length; c++) {
      const i = Array.prototype.findIndex.call(test.labels.subarray(0, n), (l: number) => l === c);
      if (i >= 0) firstOfClass.push(i);
    }
    const similarity = tf.tidy(() => {
      const idx = tf.tensor1d(firstOfClass, "int32");
      const a = l2NormalizeRows(tf.gather(imgEmb, idx) as tf.Tensor2D);
      const b = l2NormalizeRows(tf.gather(txtEmb, idx) as tf.Tensor2D);
      return tf.matMul(a, tf.transpose(b)).arraySync() as number[][];
    });
    const hw = test.height * test.width;
    const strip = new Uint8Array(hw * firstOfClass.length);
    firstOfClass.forEach((i, k) => {
      for (let y = 0; y < test.height; y++) {
        strip.set(test.images.subarray(i * hw + y * test.width, i * hw + (y + 1) * test.width), (y * firstOfClass.length + k) * test.width);
      }
    });
    const stripBlock: ImageBlock = {
      kind: "image",
      pixels: strip,
      height: test.height,
      width: test.width * firstOfClass.length,
      channels: 1,
      scale: 3,
      caption: `The heatmap's images, left to right: ${firstOfClass.map((i) => `#${i} ${displayNames[test.labels[i]]}`).join(", ")}.`,
    };
    sections.push(
      retrievalSection({
        metrics,
        pairs: m,
        heatmap: { similarity, imageLabels: firstOfClass.map((i) => `#${i} ${displayNames[test.labels[i]]}`), captions: firstOfClass.map((i) => texts[i]) },
        strip: stripBlock,
      }),
    );

    // 5. Modality gap, trained vs freshly initialised, on the UMAP's points.
    const p = Math.min(points, n);
    const [imgP, txtP] = [tf.slice(imgEmb, [0, 0], [p, -1]), tf.slice(txtEmb, [0, 0], [p, -1])] as tf.Tensor2D[];
    toDispose.push(imgP, txtP);
    stage(`modality gap against a freshly initialised model (seed ${initialSeed})`);
    const trained = pairStats(imgP, txtP);
    const fresh = Clip.create(clip.config, { seed: initialSeed });
    let initial;
    try {
      const a = encodeImages(fresh, pixels, p);
      const b = encodeTexts(fresh, texts.slice(0, p));
      try {
        initial = { ...pairStats(a, b), seed: initialSeed };
      } finally {
        tf.dispose([a, b]);
      }
    } finally {
      fresh.dispose();
    }

    // 6. UMAP of images, captions and class embeddings together. Captions repeat (a few templates
    // and words per class); each distinct caption is one point, since identical embeddings would
    // form disconnected k-NN components that UMAP scatters at random.
    const labelsP = Array.from(test.labels.subarray(0, p));
    const firstIndex = new Map<string, number>();
    const uses = new Map<string, number>();
    texts.slice(0, p).forEach((t, i) => {
      if (!firstIndex.has(t)) firstIndex.set(t, i);
      uses.set(t, (uses.get(t) ?? 0) + 1);
    });
    const uniqueIdx = [...firstIndex.values()];
    const txtU = tf.gather(txtP, tf.tensor1d(uniqueIdx, "int32")) as tf.Tensor2D;
    toDispose.push(txtU);
    const total = p + uniqueIdx.length + classWeights.shape[0];
    stage(`UMAP of ${total} points`);
    const { figure, layout } = await embeddingUmap(
      {
        classNames: displayNames,
        groups: [
          {
            name: "test image",
            modality: "image",
            embeddings: imgP,
            labels: labelsP,
            hover: labelsP.map((_, i) => `test image #${i}`),
            thumbnails: greyThumbnails(test.images, test.height, test.width, labelsP.map((_, i) => i)),
          },
          {
            name: "caption",
            modality: "text",
            embeddings: txtU,
            labels: uniqueIdx.map((i) => labelsP[i]),
            hover: uniqueIdx.map((i) => `${texts[i]} (caption of ${uses.get(texts[i])} image${uses.get(texts[i]) === 1 ? "" : "s"})`),
            opacity: 0.7,
          },
          {
            name: "class embedding",
            modality: "text",
            embeddings: classWeights,
            labels: classNames.map((_, c) => c),
            hover: classNames.map((c) => `ensemble of ${captions.spec.evalTemplates.length} prompts, e.g. ${JSON.stringify(captions.spec.evalTemplates[0].replace("{}", c))}`),
            symbol: "star",
            size: 16,
            opacity: 1,
          },
        ],
      },
      { ...opts.umap, seed, onProgress: callbacks.onUmapProgress, title: "Joint embedding space (UMAP)" },
    );
    const umapSeconds = layout.knnSeconds + layout.graphSeconds + layout.layoutSeconds;
    sections.splice(1, 0, embeddingSection({ figure, layout, images: p, captions: p, distinctCaptions: uniqueIdx.length, classPrompts: classWeights.shape[0], trained, initial }));

    summary = {
      name: opts.name,
      source,
      checkpoint,
      zeroShotTop1: ev.top1,
      zeroShotImages: ev.n,
      recallAt1: { imageToText: metrics.imageToText["R@1"], textToImage: metrics.textToImage["R@1"] },
      modalityGap: { trained: trained.gap, initial: initial.gap },
      umapPoints: total,
      umapSeconds,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    tf.dispose(toDispose);
    clip.dispose();
  }
  const report: Report = {
    title: `cliplab report: ${opts.name}`,
    subtitle:
      `${source}; ${modelDesc}; evaluated on the Fashion-MNIST test set.\n` +
      `Made ${new Date().toISOString().replace("T", " ").slice(0, 16)} UTC in ${summary.seconds.toFixed(0)} s.`,
    sections,
  };
  return { report, summary };
}
