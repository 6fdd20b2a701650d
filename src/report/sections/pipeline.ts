/**
 * The sections of cliplab's pipeline report, built from results already computed (so they can be
 * tested, and reused by notebooks): training, the embedding space, zero-shot classification,
 * retrieval and the images `--skip-bad-images` left out. `runPipelineReport` (../pipeline.ts)
 * computes the inputs.
 */
import type { ImageBlock, ReportSection, TableCell } from "../types";
import type { Figure } from "../../viz/figure";
import type { TrainingHistory } from "../../train/history";
import { trainingCurves } from "../../viz/training_curves";
import { confusionMatrix } from "../../viz/confusion_matrix";
import { wilsonInterval } from "../../eval/intervals";
import { barWithCI } from "../../viz/bar_ci";
import { similarityHeatmap } from "../../viz/similarity_heatmap";
import type { UmapLayout } from "../../viz/umap_layout";
import type { ZeroShotEvaluation } from "../../eval/zero_shot";
import type { RetrievalMetrics } from "../../eval/retrieval";
import type { SkippedItem } from "../../data/dataset";

/** A fraction as a percentage; "—" for NaN (a measure the data could not give). */
const pct = (x: number): string => (Number.isNaN(x) ? "—" : `${(100 * x).toFixed(2)}%`);

/** Where the captions of the report's images come from. */
export type CaptionOrigin = "generated" | "own";

/** Loss, learning rate, temperature and evaluation curves, and the last evaluation as a table. */
export function trainingSection(history: TrainingHistory | null, source: string): ReportSection {
  if (!history || history.steps.length === 0) {
    return {
      title: "Training",
      blocks: [{ kind: "text", text: `No training records were found for ${source} (metrics.arrow and eval.arrow sit next to a checkpoint written by cliplab train).` }],
    };
  }
  const last = history.steps[history.steps.length - 1];
  const evalLast = history.evals[history.evals.length - 1];
  const rows: TableCell[][] = [
    ["steps", last.step + 1],
    ["final loss", last.loss],
    ["final temperature exp(logit_scale)", Math.exp(last.logitScale)],
    ["training time (s, steps only)", history.steps.reduce((s, r) => s + r.seconds, 0)],
  ];
  if (evalLast) {
    rows.push(
      ["zero-shot top-1 (last evaluation)", pct(evalLast.zeroShotTop1)],
      ["zero-shot top-5", pct(evalLast.zeroShotTop5)],
      ["R@1 image→text / text→image", `${pct(evalLast.recallAt1ImageToText)} / ${pct(evalLast.recallAt1TextToImage)}`],
      ["R@5 image→text / text→image", `${pct(evalLast.recallAt5ImageToText)} / ${pct(evalLast.recallAt5TextToImage)}`],
    );
  }
  return {
    title: "Training",
    blocks: [
      { kind: "text", text: `From ${source}: ${history.steps.length} logged steps and ${history.evals.length} evaluation(s). The temperature is CLIP's learned logit multiplier, clamped at 100.` },
      { kind: "figure", figure: trainingCurves(history.steps, history.evals), caption: "Loss (raw and smoothed), learning rate, temperature, and the evaluations after each epoch." },
      { kind: "table", columns: ["metric", "value"], rows, caption: "End of training", digits: 4 },
    ],
  };
}

export interface EmbeddingSectionInput {
  figure: Figure;
  layout: UmapLayout;
  images: number;
  /** Captions of the images (the modality gap uses all of them). */
  captions: number;
  /** Distinct captions among them (the points in the map). */
  distinctCaptions: number;
  /** Class embeddings in the map (0 for a source without labels). */
  classPrompts: number;
  /** "generated" (one per image, seeded, like training captions) or the source's "own"; default "generated". */
  captionOrigin?: CaptionOrigin;
  /** What the images are, for the prose; default "test images". */
  imageNoun?: string;
  /** Modality gap and mean cosine of matching image-caption pairs, for the trained model and a fresh one. */
  trained: { gap: number; matchingCosine: number; otherCosine: number };
  initial: { gap: number; matchingCosine: number; otherCosine: number; seed: number };
}

export function embeddingSection(x: EmbeddingSectionInput): ReportSection {
  const total = x.images + x.distinctCaptions + x.classPrompts;
  const noun = x.imageNoun ?? "test images";
  const origin = x.captionOrigin === "own" ? "own" : "generated";
  const stars = x.classPrompts
    ? ` and the ${x.classPrompts} class embeddings of the zero-shot classifier (stars, each the ensemble of the evaluation prompts). Colour is the class.`
    : ". The source has no labels: one colour for everything.";
  return {
    title: "Embedding space",
    blocks: [
      {
        kind: "text",
        text:
          `UMAP (McInnes et al. 2018, arXiv:1802.03426) of ${total} points in the joint space: ${x.images} ${noun} (circles; hover for the model's input), ` +
          `the ${x.distinctCaptions} distinct captions among the images' ${x.captions} ${origin} captions (diamonds; identical captions have identical embeddings)${stars} ` +
          `Neighbours are exact cosine neighbours (k = ${x.layout.nNeighbors}); the layout ran ${x.layout.nEpochs} epochs from a seeded start.\n\n` +
          `The modality gap (Liang et al. 2022, arXiv:2203.02053) is the distance between the centroids of the L2-normalised image and text embeddings: ` +
          `${x.trained.gap.toFixed(4)} for this model, ${x.initial.gap.toFixed(4)} for a freshly initialised model of the same configuration (seed ${x.initial.seed}). ` +
          `UMAP keeps neighbourhoods, not distances, so a gap shows as images and texts lying in separate clouds.`,
      },
      { kind: "figure", figure: x.figure, caption: `${total} points; UMAP took ${(x.layout.knnSeconds + x.layout.graphSeconds + x.layout.layoutSeconds).toFixed(1)} s.` },
      {
        kind: "table",
        columns: ["model", "modality gap", "mean cos(image, its caption)", "mean cos(image, other captions)"],
        rows: [
          ["trained", x.trained.gap, x.trained.matchingCosine, x.trained.otherCosine],
          [`freshly initialised (seed ${x.initial.seed})`, x.initial.gap, x.initial.matchingCosine, x.initial.otherCosine],
        ],
        caption: `Measured on the ${x.images} ${noun} and their ${x.captions} captions.`,
        digits: 4,
      },
    ],
  };
}

export interface ZeroShotSectionOptions {
  /** What the images are, for the prose; default "test images". */
  imageNoun?: string;
  /** The prompts were held out from the training captions (Fashion-MNIST's evaluation templates); default false. */
  heldOut?: boolean;
}

export function zeroShotSection(ev: ZeroShotEvaluation, classNames: readonly string[], templates: readonly string[], opts: ZeroShotSectionOptions = {}): ReportSection {
  const noun = opts.imageNoun ?? "test images";
  const correct = ev.confusion.map((row, c) => row[c]);
  const intervals = ev.support.map((n, c) => (n ? wilsonInterval(correct[c], n) : ([0, 0] as [number, number])));
  const perClass = ev.perClass.map((a) => (Number.isNaN(a) ? 0 : a));
  const overall = wilsonInterval(Math.round(ev.top1 * ev.n), ev.n);
  const shown = templates.length > 8 ? `${templates.slice(0, 8).map((t) => JSON.stringify(t)).join(", ")}, ...` : templates.map((t) => JSON.stringify(t)).join(", ");
  return {
    title: "Zero-shot classification",
    blocks: [
      {
        kind: "text",
        text: `Each of ${classNames.length} classes is the ensemble of ${templates.length} prompt${templates.length === 1 ? "" : "s"} (${shown})${opts.heldOut ? ", held out from the training captions" : ""}; an image is assigned the class of highest cosine similarity (CLIP, arXiv:2103.00020, §3.1.4). ${ev.n} ${noun}.`,
      },
      {
        kind: "table",
        columns: ["metric", "value", "95% interval (Wilson)"],
        rows: [
          ["top-1 accuracy (acc1)", pct(ev.top1), `${pct(overall[0])} – ${pct(overall[1])}`],
          ["top-5 accuracy (acc5)", pct(ev.top5), null],
          ["mean per-class accuracy (mean_per_class_recall)", pct(ev.meanPerClass), null],
          [noun, ev.n, null],
        ],
      },
      { kind: "figure", figure: confusionMatrix(ev.confusion, classNames), caption: "Rows: true class; columns: predicted class; each row sums to 1 (counts on hover)." },
      {
        kind: "figure",
        figure: barWithCI(classNames, perClass, intervals, { title: "Per-class accuracy", yTitle: "top-1 accuracy", percent: true, range: [0, 1.05] }),
        caption: `Error bars: 95% Wilson score intervals from each class's number of ${noun}.`,
      },
    ],
  };
}

export interface RetrievalSectionInput {
  /** Recall@1, @5 and @10 and the median rank, both directions (a hit when any positive is in the top K). */
  metrics: RetrievalMetrics;
  /** Images in the retrieval. */
  pairs: number;
  /** Captions in the retrieval (more than `pairs` when images have several); default `pairs`. */
  texts?: number;
  /** Default "generated". */
  captionOrigin?: CaptionOrigin;
  /** What the images are, for the prose; default "test images". */
  imageNoun?: string;
  heatmap: { similarity: number[][]; imageLabels: string[]; captions: string[] };
  strip: ImageBlock;
}

export function retrievalSection(x: RetrievalSectionInput): ReportSection {
  const noun = x.imageNoun ?? "test images";
  const texts = x.texts ?? x.pairs;
  const ks = [1, 5, 10].filter((k) => `R@${k}` in x.metrics.imageToText);
  const row = (name: string, d: RetrievalMetrics["imageToText"]): TableCell[] => [name, ...ks.map((k) => pct(d[`R@${k}`])), d.medianRank];
  const how =
    x.captionOrigin === "own"
      ? `The ${x.pairs} ${noun} and their ${texts} own captions; a query succeeds at K if one of its partners (any of an image's captions, or a caption's image) is among the K most similar items, as CLIP_benchmark counts it.`
      : `Each of ${x.pairs} ${noun} is paired with one caption generated like a training caption (seeded); a query succeeds at K if its own partner is among the K most similar items. Many captions are interchangeable (same class and words), so Recall@1 is bounded well below 1.`;
  return {
    title: "Retrieval",
    blocks: [
      { kind: "text", text: how },
      {
        kind: "table",
        columns: ["direction", ...ks.map((k) => `R@${k}`), "median rank"],
        rows: [row("image → text (text_retrieval)", x.metrics.imageToText), row("text → image (image_retrieval)", x.metrics.textToImage)],
        digits: 1,
      },
      {
        kind: "figure",
        figure: similarityHeatmap(x.heatmap.similarity, x.heatmap.imageLabels, x.heatmap.captions, { title: `Cosine similarity: ${x.heatmap.imageLabels.length} images vs. their captions`, rowTitle: "image", colTitle: "caption" }),
        caption: "Rows: the first image of each class (or the first images, without labels); columns: the first caption of each of those images, in the same order (the diagonal holds the matching pairs).",
      },
      x.strip,
    ],
  };
}

/** The items `--skip-bad-images` left out, and why (where: "training" or "evaluation"). */
export function skippedSection(items: readonly (SkippedItem & { stage?: string })[]): ReportSection {
  return {
    title: "Skipped images",
    blocks: [
      { kind: "text", text: `--skip-bad-images left out ${items.length} unreadable image${items.length === 1 ? "" : "s"}; every figure and number above is computed without ${items.length === 1 ? "it" : "them"}.` },
      { kind: "table", columns: ["item", "reason", "while"], rows: items.map((s) => [s.key, s.reason, s.stage ?? null]) },
    ],
  };
}
