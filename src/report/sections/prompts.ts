/**
 * The report section of a prompt study (`runPromptStudy`): tables of every number and two plotly
 * figures (per-template accuracy, k-shot curves of CoOp vs linear probe vs zero-shot). Plain data
 * only: `renderReport` (src/report) turns it into HTML, notebooks can display the figures.
 * Methods: CLIP prompt ensembling (https://arxiv.org/abs/2103.00020 §3.1.4), CoOp
 * (https://arxiv.org/abs/2109.01134), modality gap (https://arxiv.org/abs/2203.02053).
 */
import type { ReportBlock, ReportSection, TableCell } from "../types";
import type { Figure } from "../../viz/figure";
import type { PromptStudyResult } from "../../prompts/study";

const pct = (x: number): number => Math.round(1e4 * x) / 100;
const pts = (x: number): string => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)}`;

/** Horizontal bar chart of every template's top-1 (%), sorted, with the mean and the ensemble as lines. */
export function templateAccuracyFigure(result: PromptStudyResult): Figure {
  const rows = result.sensitivity.perTemplate.slice().sort((a, b) => a.top1 - b.top1);
  const mean = pct(result.sensitivity.top1.mean);
  const ens = pct(result.sensitivity.ensemble.top1);
  const line = (x: number, name: string, dash: string) => ({
    type: "scatter",
    mode: "lines",
    name,
    x: [x, x],
    y: [rows[0].template, rows[rows.length - 1].template],
    line: { dash },
  });
  return {
    data: [
      { type: "bar", orientation: "h", name: "single template", x: rows.map((r) => pct(r.top1)), y: rows.map((r) => r.template) },
      line(mean, `mean single (${mean.toFixed(1)}%)`, "dot"),
      line(ens, `ensemble of all (${ens.toFixed(1)}%)`, "dash"),
    ],
    layout: {
      title: { text: `Zero-shot top-1 of each of ${rows.length} templates (test, n = ${result.n.test})` },
      xaxis: { title: { text: "top-1 accuracy (%)" } },
      yaxis: { automargin: true, tickfont: { size: 9 } },
      height: Math.max(360, 14 * rows.length + 120),
      margin: { l: 260 },
    },
  };
}

/** Top-1 vs shots per class: CoOp, linear probe, and the zero-shot references as flat lines. */
export function fewShotFigure(result: PromptStudyResult): Figure {
  const f = result.fewShot;
  const ks = f.curve.map((r) => r.k);
  const flat = (y: number, name: string, dash: string) => ({ type: "scatter", mode: "lines", name, x: [Math.min(...ks), Math.max(...ks)], y: [pct(y), pct(y)], line: { dash } });
  const seeds = new Set(f.rows.map((r) => r.seed)).size;
  const err = (s: number[]) => (seeds > 1 ? { error_y: { type: "data", array: s.map(pct), visible: true } } : {});
  return {
    data: [
      { type: "scatter", mode: "lines+markers", name: "CoOp (learnt context)", x: ks, y: f.curve.map((r) => pct(r.coopTop1)), ...err(f.curve.map((r) => r.coopStd)) },
      { type: "scatter", mode: "lines+markers", name: "linear probe", x: ks, y: f.curve.map((r) => pct(r.probeTop1)), ...err(f.curve.map((r) => r.probeStd)) },
      flat(f.zeroShotPlainTop1, 'zero-shot "a photo of a {}."', "dot"),
      flat(f.zeroShotEnsembleTop1, "zero-shot ensemble (all templates)", "dash"),
    ],
    layout: {
      title: { text: `k-shot top-1 (test, n = ${result.n.test}; ${seeds} seed${seeds === 1 ? "" : "s"})` },
      xaxis: { title: { text: "shots per class (k)" }, type: "log", tickvals: ks, ticktext: ks.map(String) },
      yaxis: { title: { text: "top-1 accuracy (%)" } },
    },
  };
}

function table(columns: string[], rows: TableCell[][], caption: string, digits = 2): ReportBlock {
  return { kind: "table", columns, rows, caption, digits };
}

export function promptStudySection(result: PromptStudyResult): ReportSection {
  const s = result.sensitivity;
  const g = s.ensembleGain;
  const blocks: ReportBlock[] = [];
  blocks.push({
    kind: "text",
    text:
      `Zero-shot classification of ${result.classNames.length} classes on ${result.n.test} test images of ${result.datasets.test} with ${result.templates.length} prompt templates ` +
      `(logit scale ${result.logitScale.toFixed(2)}). Single templates reach ${(100 * s.top1.mean).toFixed(2)}% top-1 on average ` +
      `(std ${(100 * s.top1.std).toFixed(2)}, worst ${(100 * s.top1.min).toFixed(2)}%: ${JSON.stringify(s.worst.template)}, best ${(100 * s.top1.max).toFixed(2)}%: ${JSON.stringify(s.best.template)}). ` +
      `The ensemble of all templates reaches ${(100 * s.ensemble.top1).toFixed(2)}%, a gain of ${pts(g.value)} points over the mean single template ` +
      `(paired bootstrap 95% interval ${pts(g.ci95[0])} to ${pts(g.ci95[1])}, ${s.bootstrapResamples} resamples of the test images).\n\n` +
      `Templates, weights, the linear probe's penalty and the fitted temperature are all chosen on ${result.n.validation} validation images carved from the training split (${result.datasets.train}); the test split is only scored.` +
      (result.n.skipped ? ` ${result.n.skipped} unreadable image${result.n.skipped === 1 ? " was" : "s were"} skipped.` : ""),
  });
  blocks.push({ kind: "figure", figure: templateAccuracyFigure(result), caption: "Per-template zero-shot accuracy." });
  blocks.push(
    table(
      ["statistic", "top-1 (%)", "top-5 (%)"],
      [
        ["mean single template", pct(s.top1.mean), pct(s.top5.mean)],
        ["std over templates", pct(s.top1.std), pct(s.top5.std)],
        ["worst single template", pct(s.top1.min), pct(s.top5.min)],
        ["best single template (on test)", pct(s.top1.max), pct(s.top5.max)],
        ["ensemble of all templates", pct(s.ensemble.top1), pct(s.ensemble.top5)],
        [`ensemble gain, points (95% CI ${pts(g.ci95[0])} .. ${pts(g.ci95[1])})`, pct(g.value), null],
      ],
      "Prompt sensitivity over the template pool.",
    ),
  );
  blocks.push(
    table(
      ["template set", "templates", "mean single (%)", "min single (%)", "max single (%)", "ensemble top-1 (%)", "ensemble top-5 (%)"],
      result.templateSets.map((r) => [r.name, r.size, pct(r.meanSingleTop1), pct(r.minSingleTop1), pct(r.maxSingleTop1), pct(r.ensembleTop1), pct(r.ensembleTop5)]),
      "Template sets (test).",
    ),
  );
  blocks.push(
    table(
      ["choice (made on validation)", "templates", "validation top-1 (%)", "test top-1 (%)"],
      result.selection.rows.map((r) => [r.method, r.templates, pct(r.validationTop1), pct(r.testTop1)]),
      `Template selection. Greedy picks, in order: ${result.selection.greedy.templates.map((t) => JSON.stringify(t)).join(", ")}.`,
    ),
  );
  blocks.push(
    table(
      ["template", "weight"],
      result.selection.weighted.top.map((r) => [r.template, r.weight]),
      "Largest weights of the weighted ensemble (uniform would be " + (1 / result.templates.length).toFixed(4) + ").",
      4,
    ),
  );
  if (result.paraphrase.length) {
    blocks.push(
      table(
        ["perturbation", "trials", "mean top-1 (%)", "std", "min (%)", "change (points)", "example"],
        result.paraphrase.map((r) => [
          r.kind,
          r.trials.length,
          pct(r.top1.mean),
          pct(r.top1.std),
          pct(r.top1.min),
          Math.round(1e4 * r.change) / 100,
          r.kind === "word order" ? r.example.templates[0] : r.example.classNames.slice(0, 4).join(", "),
        ]),
        "Paraphrase robustness (ensemble of the paraphrase template set; seeded perturbations).",
      ),
    );
  }
  if (result.fewShot.rows.length) {
    blocks.push({ kind: "figure", figure: fewShotFigure(result), caption: `CoOp (init ${JSON.stringify(result.fewShot.coopInit)}) vs linear probe vs zero-shot.` });
    blocks.push(
      table(
        ["k", "seed", "CoOp top-1 (%)", "linear probe top-1 (%)", "probe L2"],
        result.fewShot.rows.map((r) => [r.k, r.seed, pct(r.coopTop1), pct(r.probeTop1), r.probeL2]),
        `k-shot results; zero-shot references: plain ${pct(result.fewShot.zeroShotPlainTop1)}%, ensemble ${pct(result.fewShot.zeroShotEnsembleTop1)}%.`,
      ),
    );
  }
  const r = result.retrieval;
  blocks.push(
    table(
      ["direction", "R@1 (%)", "R@5 (%)", "R@10 (%)", "median rank"],
      [
        ["image -> text", pct(r.imageToText["R@1"]), pct(r.imageToText["R@5"]), pct(r.imageToText["R@10"]), r.imageToText.medianRank],
        ["text -> image", pct(r.textToImage["R@1"]), pct(r.textToImage["R@5"]), pct(r.textToImage["R@10"]), r.textToImage.medianRank],
      ],
      result.n.retrievalTexts === result.n.retrieval
        ? `Retrieval: ${result.n.retrieval} test images, each paired with one caption (its own, or one generated from its class, seeded).`
        : `Retrieval: ${result.n.retrieval} test images and their ${result.n.retrievalTexts} captions (image -> text: a hit when any of the image's captions is in the top K).`,
    ),
  );
  blocks.push(
    table(
      ["logit scale", "InfoNCE loss", "p(match) i->t", "p(match) t->i", "gap", "R@1 i->t (%)", "R@1 t->i (%)"],
      result.temperature.map((t) => [t.scale, t.loss, t.matchProbImageToText, t.matchProbTextToImage, t.gap, pct(t.recallAt1ImageToText), pct(t.recallAt1TextToImage)]),
      "Temperature sweep (each image with its first caption): rescaling the logits after training leaves cosines, the gap and every ranking unchanged; only softmax quantities move.",
      3,
    ),
  );
  blocks.push(
    table(
      ["lambda", "gap", "R@1 i->t (%)", "R@1 t->i (%)", "median rank i->t", "loss at model scale", "mean pair cosine"],
      result.gapShift.map((x) => [x.lambda, x.gap, pct(x.recallAt1ImageToText), pct(x.recallAt1TextToImage), x.medianRankImageToText, x.loss, x.meanPairCosine]),
      "Gap shift (Liang et al. 2022): embeddings moved by lambda/2 of the gap vector towards each other and renormalised.",
      3,
    ),
  );
  const cal = result.calibration;
  blocks.push(
    table(
      ["temperature", "logit scale", "NLL", "ECE (15 bins)"],
      [
        ["model's own", cal.modelScale, cal.nllAtModel, cal.eceAtModel],
        ["fitted on validation", cal.fittedScale, cal.nllAtFitted, cal.eceAtFitted],
      ],
      "Calibration of the all-templates zero-shot classifier on test.",
      4,
    ),
  );
  return { title: "Zero-shot classification, prompt ensembling and prompt tuning", blocks };
}
