/**
 * The sections of cliplab's pipeline report, built from results already computed (so they can be
 * tested, and reused by notebooks): training, the embedding space, zero-shot classification and
 * retrieval. `runPipelineReport` (pipeline.ts) computes the inputs.
 */
import type { ImageBlock, ReportSection, TableCell } from "./types";
import type { Figure } from "../viz/figure";
import type { TrainingHistory } from "../viz/training_curves";
import { trainingCurves } from "../viz/training_curves";
import { confusionMatrix } from "../viz/confusion_matrix";
import { barWithCI, wilsonInterval } from "../viz/bar_ci";
import { similarityHeatmap } from "../viz/similarity_heatmap";
import type { UmapLayout } from "../viz/umap_layout";
import type { ZeroShotEvaluation } from "../eval/zero_shot";
import type { RetrievalMetrics } from "../eval/retrieval";

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

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
  classPrompts: number;
  /** Modality gap and mean cosine of matching image-caption pairs, for the trained model and a fresh one. */
  trained: { gap: number; matchingCosine: number; otherCosine: number };
  initial: { gap: number; matchingCosine: number; otherCosine: number; seed: number };
}

export function embeddingSection(x: EmbeddingSectionInput): ReportSection {
  const total = x.images + x.distinctCaptions + x.classPrompts;
  return {
    title: "Embedding space",
    blocks: [
      {
        kind: "text",
        text:
          `UMAP (McInnes et al. 2018, arXiv:1802.03426) of ${total} points in the joint space: ${x.images} test images (circles; hover for the picture), ` +
          `the ${x.distinctCaptions} distinct captions among the images' ${x.captions} generated captions (diamonds; identical captions have identical embeddings) and the ${x.classPrompts} class embeddings of the zero-shot classifier (stars, each the ensemble of the evaluation prompts). ` +
          `Colour is the class. Neighbours are exact cosine neighbours (k = ${x.layout.nNeighbors}); the layout ran ${x.layout.nEpochs} epochs from a seeded start.\n\n` +
          `The modality gap (Liang et al. 2022, arXiv:2203.02053) is the distance between the centroids of the L2-normalised image and text embeddings: ` +
          `${x.trained.gap.toFixed(4)} after training, ${x.initial.gap.toFixed(4)} for a freshly initialised model of the same configuration (seed ${x.initial.seed}). ` +
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
        caption: `Measured on the ${x.images} test images and their captions.`,
        digits: 4,
      },
    ],
  };
}

export function zeroShotSection(ev: ZeroShotEvaluation, classNames: readonly string[], templates: readonly string[]): ReportSection {
  const correct = ev.confusion.map((row, c) => row[c]);
  const intervals = ev.support.map((n, c) => (n ? wilsonInterval(correct[c], n) : ([0, 0] as [number, number])));
  const perClass = ev.perClass.map((a) => (Number.isNaN(a) ? 0 : a));
  const overall = wilsonInterval(Math.round(ev.top1 * ev.n), ev.n);
  return {
    title: "Zero-shot classification",
    blocks: [
      {
        kind: "text",
        text: `Each class is the ensemble of ${templates.length} evaluation prompts (${templates.map((t) => JSON.stringify(t)).join(", ")}), held out from the training captions; an image is assigned the class of highest cosine similarity (CLIP, arXiv:2103.00020, §3.1.4). ${ev.n} test images.`,
      },
      {
        kind: "table",
        columns: ["metric", "value", "95% interval (Wilson)"],
        rows: [
          ["top-1 accuracy", pct(ev.top1), `${pct(overall[0])} – ${pct(overall[1])}`],
          ["top-5 accuracy", pct(ev.top5), null],
          ["mean per-class accuracy", pct(ev.meanPerClass), null],
          ["test images", ev.n, null],
        ],
      },
      { kind: "figure", figure: confusionMatrix(ev.confusion, classNames), caption: "Rows: true class; columns: predicted class; each row sums to 1 (counts on hover)." },
      {
        kind: "figure",
        figure: barWithCI(classNames, perClass, intervals, { title: "Per-class accuracy", yTitle: "top-1 accuracy", percent: true, range: [0, 1.05] }),
        caption: "Error bars: 95% Wilson score intervals from each class's number of test images.",
      },
    ],
  };
}

export interface RetrievalSectionInput {
  metrics: RetrievalMetrics;
  pairs: number;
  heatmap: { similarity: number[][]; imageLabels: string[]; captions: string[] };
  strip: ImageBlock;
}

export function retrievalSection(x: RetrievalSectionInput): ReportSection {
  const row = (name: string, d: RetrievalMetrics["imageToText"]): TableCell[] => [name, pct(d["R@1"]), pct(d["R@5"]), d.medianRank];
  return {
    title: "Retrieval",
    blocks: [
      {
        kind: "text",
        text: `Each of ${x.pairs} test images is paired with one caption generated like a training caption (seeded); a query succeeds at K if its own partner is among the K most similar items. Many captions are interchangeable (same class and words), so Recall@1 is bounded well below 1.`,
      },
      { kind: "table", columns: ["direction", "R@1", "R@5", "median rank"], rows: [row("image → text", x.metrics.imageToText), row("text → image", x.metrics.textToImage)], digits: 1 },
      {
        kind: "figure",
        figure: similarityHeatmap(x.heatmap.similarity, x.heatmap.imageLabels, x.heatmap.captions, { title: "Cosine similarity: one test image per class vs. the images' captions", rowTitle: "image", colTitle: "caption" }),
        caption: "Rows: the first test image of each class; columns: the captions of those images, in the same order (the diagonal holds the matching pairs).",
      },
      x.strip,
    ],
  };
}
