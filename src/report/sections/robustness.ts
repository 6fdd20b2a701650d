/**
 * The report section of a robustness audit (src/audit/robustness/audit.ts): what was run, the
 * corruption table and curves (ImageNet-C, https://arxiv.org/abs/1903.12261), CE and mCE against
 * a baseline when the result has them, the eps curves of FGSM (https://arxiv.org/abs/1412.6572), PGD
 * (https://arxiv.org/abs/1706.06083), APGD-CE and APGD-T (https://arxiv.org/abs/2003.01690) and
 * their worst case, the sanity checks, adversarial examples next to their originals with the
 * classifier's top captions, and optional before/after tables of remedies. Figures are plain
 * plotly JSON (src/viz/figure.ts).
 */
import type { Figure, PlotlyTrace } from "../../viz/figure";
import type { ImageBlock, ReportBlock, ReportSection, TableCell } from "../types";
import type { AdversarialExample, RobustnessResult, SanityCheck } from "../../audit/robustness/audit";
import type { RemedyComparison } from "../../audit/robustness/remedies";

export interface RobustnessSectionOptions {
  title?: string;
  /** Before/after comparisons (`compareRobustness`) to append. */
  remedies?: RemedyComparison[];
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** eps as shown to people: k/255 for L-inf, the plain number for L2. */
export function formatEps(norm: string, eps: number): string {
  if (norm !== "linf") return String(+eps.toFixed(4));
  const k = eps * 255;
  return Math.abs(k - Math.round(k)) < 1e-6 ? `${Math.round(k)}/255` : `${+k.toFixed(2)}/255`;
}

function line(name: string, x: number[], y: number[], extra: Record<string, unknown> = {}): PlotlyTrace {
  return { type: "scatter", mode: "lines+markers", name, x, y, ...extra };
}

/** Top-1 against severity (0 = clean), one line per corruption. */
export function corruptionCurvesFigure(result: RobustnessResult, metric: "top1" | "matchCosine" = "top1"): Figure {
  const severities = [0, ...result.config.severities];
  const data = result.config.corruptions.map((name) =>
    line(
      name,
      severities,
      severities.map((s) => (s === 0 ? result.clean[metric] : result.corruptions.find((c) => c.name === name && c.severity === s)![metric])),
    ),
  );
  const label = metric === "top1" ? "zero-shot top-1" : "mean matching cosine";
  return {
    data,
    layout: {
      title: { text: `${label} under corruption` },
      xaxis: { title: { text: "severity (0 = clean)" }, dtick: 1 },
      yaxis: { title: { text: label }, ...(metric === "top1" ? { range: [0, 1], tickformat: ".0%" } : {}) },
      legend: { orientation: "v" },
    },
  };
}

/** Robust top-1 (and targeted success) against eps, one panel per norm. */
export function epsCurvesFigure(result: RobustnessResult): Figure {
  const data: PlotlyTrace[] = [];
  const norms = ["linf", "l2"] as const;
  norms.forEach((norm, i) => {
    const axis = i === 0 ? {} : { xaxis: "x2", yaxis: "y2" };
    const scale = norm === "linf" ? 255 : 1;
    for (const attack of ["fgsm", "pgd", "apgd-ce", "apgd-t", "worst-case"] as const) {
      const rows = result.attacks.filter((a) => a.attack === attack && a.norm === norm).sort((a, b) => a.eps - b.eps);
      if (rows.length) {
        const dash = attack === "worst-case" ? { line: { dash: "dash", width: 3 } } : {};
        data.push(line(`${attack.toUpperCase()} ${norm} top-1`, rows.map((r) => r.eps * scale), rows.map((r) => r.top1), { ...axis, ...dash, legendgroup: attack }));
      }
    }
    const t = result.targetedAttacks.filter((a) => a.norm === norm).sort((a, b) => a.eps - b.eps);
    if (t.length) {
      data.push(line(`targeted PGD ${norm} success`, t.map((r) => r.eps * scale), t.map((r) => r.successRate), { ...axis, line: { dash: "dot" }, legendgroup: "targeted" }));
    }
  });
  return {
    data,
    layout: {
      title: { text: `accuracy under attack (${result.config.attackImages} images, PGD ${result.config.pgdSteps} steps, APGD ${result.config.apgdSteps ?? "-"})` },
      grid: { rows: 1, columns: 2, pattern: "independent" },
      xaxis: { title: { text: "L-inf eps (x/255)" } },
      xaxis2: { title: { text: `L2 eps (nominal, 3x32x32; applied x${+result.config.l2Scale.toFixed(3)})` } },
      yaxis: { title: { text: "fraction" }, range: [0, 1], tickformat: ".0%" },
      yaxis2: { range: [0, 1], tickformat: ".0%" },
    },
  };
}

/** Images of equal size side by side (HWC values in [0, 1]) with a 1-pixel white gap. */
export function mosaic(images: { pixels: ArrayLike<number> }[], height: number, width: number, channels: 1 | 3): Omit<ImageBlock, "kind"> {
  const gap = 1;
  const totalWidth = images.length * width + (images.length - 1) * gap;
  const out = new Float32Array(height * totalWidth * channels).fill(1);
  images.forEach((img, k) => {
    const x0 = k * (width + gap);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < channels; c++) out[(y * totalWidth + x0 + x) * channels + c] = Math.min(1, Math.max(0, img.pixels[(y * width + x) * channels + c]));
      }
    }
  });
  return { pixels: out, height, width: totalWidth, channels };
}

/** original | adversarial | perturbation (mid-grey = 0, full black/white = -eps/+eps). */
function exampleBlock(e: AdversarialExample): ImageBlock {
  const delta = e.adversarial.map((v, i) => 0.5 + (0.5 * (v - e.original[i])) / (e.eps || 1));
  const channels = e.channels === 3 ? 3 : 1;
  const top = (xs: { caption: string; probability: number }[]) => xs.map((t) => `"${t.caption}" ${pct(t.probability)}`).join(", ");
  return {
    kind: "image",
    ...mosaic([{ pixels: e.original }, { pixels: e.adversarial }, { pixels: delta }], e.height, e.width, channels),
    caption:
      `image ${e.index} ${e.key} (${e.className}); left: original, top captions ${top(e.cleanTop)}; ` +
      `middle: ${e.attack.toUpperCase()} ${e.norm} eps=${formatEps(e.norm, e.eps)}, top captions ${top(e.adversarialTop)}; right: the perturbation (grey = 0, black/white = -/+eps).`,
    scale: 4,
  };
}

function sanityRows(name: string, check: SanityCheck): TableCell[][] {
  const fmt = (values: Record<string, number>) =>
    Object.entries(values)
      .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : (100 * v).toFixed(1) + "%"}`)
      .join(", ");
  if (check.details.length === 0) return [[name, "n/a", "nothing to compare (no matching runs)"]];
  return check.details.map((d) => [name, d.pass ? "pass" : "FAIL", `${d.label}: ${fmt(d.values)}`]);
}

/** The report section of one audit (and optional remedy comparisons). */
export function robustnessSection(result: RobustnessResult, opts: RobustnessSectionOptions = {}): ReportSection {
  const c = result.config;
  const s = result.sanity;
  const blocks: ReportBlock[] = [];
  const apgdCheck = s.apgdAtLeastPgd ?? { pass: true, details: [] };
  const allPass = s.epsZeroEqualsClean.pass && s.pgdAtLeastFgsm.pass && apgdCheck.pass && s.monotoneInEps.pass && s.moreStepsNoHelp.pass;
  const headline = result.attacks.some((a) => a.attack === "worst-case") ? "worst-case" : result.attacks.find((a) => a.eps > 0)?.attack ?? "pgd";
  const pgdRows = result.attacks.filter((a) => a.attack === headline && a.eps > 0);
  const attacksRun = [...new Set(result.attacks.filter((a) => a.attack !== "worst-case").map((a) => a.attack.toUpperCase()))].join(", ");
  blocks.push({
    kind: "text",
    text:
      `Zero-shot top-1 on ${c.images} test images: ${pct(result.clean.top1)} clean; ${pct(result.corruptionSummary.meanTop1)} on average over ` +
      `${c.corruptions.length} corruptions x ${c.severities.length} severities (${pct(result.corruptionSummary.relativeTop1)} of clean). ` +
      (result.attacks.length
        ? `Under attack (${attacksRun}; ${headline === "worst-case" ? "an image counts as robust only if it survives all of them" : headline.toUpperCase()}; first ${c.attackImages} images, clean ${pct(result.attackClean.top1)}): ` +
          pgdRows.map((a) => `${a.norm} eps=${formatEps(a.norm, a.eps)} ${pct(a.top1)}`).join(", ")
        : "No attacks were run") +
      `.\n\nSanity checks (tolerance ${pct(s.tolerance)}): ${allPass ? "all pass" : "SOME FAIL - the robust accuracies are then upper bounds"}. ` +
      `Corruptions and attacks act on the model's input (${c.imageSize}x${c.imageSize} RGB, in [0, 1], from ${c.dataset}) with the normalisation inside the differentiated path; ` +
      `L2 budgets are given for a 3x32x32 input and applied x${+c.l2Scale.toFixed(3)} (sqrt(${c.inputValues} / ${c.l2ReferenceValues})); ` +
      `prompts: ${c.templates.length} evaluation template${c.templates.length === 1 ? "" : "s"} ensembled.` +
      (result.skipped ? ` ${result.skipped} unreadable image${result.skipped === 1 ? " was" : "s were"} skipped.` : ""),
  });

  // Corruptions.
  const sevCols = c.severities.map((v) => `severity ${v}`);
  blocks.push({
    kind: "table",
    columns: ["corruption", "clean", ...sevCols, "mean", "mean / clean", "matching cosine (mean)"],
    rows: result.corruptionSummary.perCorruption.map((p) => [
      p.name,
      result.clean.top1,
      ...c.severities.map((v) => result.corruptions.find((x) => x.name === p.name && x.severity === v)!.top1),
      p.meanTop1,
      p.relativeTop1,
      p.meanMatchCosine,
    ]),
    caption: `Zero-shot top-1 per corruption and severity (${c.images} images). Clean matching cosine ${result.clean.matchCosine.toFixed(3)}.`,
    digits: 3,
  });
  blocks.push({
    kind: "table",
    columns: ["", "top-1", "matching cosine", "caption cosine", "R@1 image->caption", "R@1 caption->image"],
    rows: [
      ["clean", result.clean.top1, result.clean.matchCosine, result.clean.captionCosine, result.clean.recallAt1ImageToText, result.clean.recallAt1TextToImage],
      ...c.severities.map((v) => {
        const rows = result.corruptions.filter((x) => x.severity === v);
        const m = (k: "top1" | "matchCosine" | "captionCosine" | "recallAt1ImageToText" | "recallAt1TextToImage") => rows.reduce((a, x) => a + x[k], 0) / rows.length;
        return [`severity ${v} (mean)`, m("top1"), m("matchCosine"), m("captionCosine"), m("recallAt1ImageToText"), m("recallAt1TextToImage")];
      }),
      ["all corruptions (mean / clean)", result.corruptionSummary.relativeTop1, result.corruptionSummary.relativeMatchCosine, null, result.corruptionSummary.relativeRecallAt1, null],
    ],
    caption: `Means over the corruptions at each severity; retrieval over ${c.retrievalImages} images and one generated caption each.`,
    digits: 3,
  });
  blocks.push({ kind: "figure", figure: corruptionCurvesFigure(result, "top1"), caption: "Zero-shot top-1 against severity, per corruption." });
  blocks.push({ kind: "figure", figure: corruptionCurvesFigure(result, "matchCosine"), caption: "Mean cosine of each image with its class embedding against severity." });
  const pv = result.corruptionPreview;
  if (pv) {
    blocks.push({
      kind: "image",
      ...mosaic(pv.images, pv.height, pv.width, pv.channels === 3 ? 3 : 1),
      caption: `Image 0 (${pv.key}) at severity ${pv.severity}, left to right: ${pv.images.map((i) => i.name).join(", ")}.`,
      scale: 3,
    });
  }

  // Corruption errors against a baseline.
  const ce = result.corruptionErrors;
  if (ce) {
    const num = (v: number | null) => (v === null ? "undefined" : v);
    blocks.push({
      kind: "table",
      columns: ["corruption", "CE", "relative CE", ...ce.severities.map((v) => `error s${v}`), ...ce.severities.map((v) => `baseline error s${v}`)],
      rows: [
        ...ce.perCorruption.map((p) => [p.name, num(p.ce), num(p.relativeCe), ...p.errors, ...p.baselineErrors]),
        ["mean (mCE, relative mCE)", num(ce.mce), num(ce.relativeMce), ...ce.severities.map(() => null), ...ce.severities.map(() => null)],
      ],
      caption:
        `Corruption errors against ${ce.baseline} on the same images (E = 1 - top-1; clean error ${pct(ce.clean.error)}, baseline ${pct(ce.clean.baselineError)}): ` +
        `CE = sum_s E / sum_s E_base; relative CE = sum_s (E - E_clean) / sum_s (E_base - E_base,clean); below 1 is better than the baseline.` +
        (ce.undefinedCe.length ? ` Undefined (left out of the means): ${ce.undefinedCe.map((u) => `${u.name} ${u.which} (${u.reason})`).join("; ")}.` : ""),
      digits: 3,
    });
  }

  // Attacks.
  blocks.push({
    kind: "table",
    columns: ["attack", "norm", "eps", "applied eps", "steps", "top-1", "attack success", "matching cosine", "cosine drop"],
    rows: result.attacks.map((a) => [a.attack.toUpperCase(), a.norm, formatEps(a.norm, a.eps), formatEps(a.norm, a.appliedEps), a.steps, a.top1, a.successRate, a.matchCosine, a.cosineDrop]),
    caption: `Untargeted attacks on the first ${c.attackImages} test images (clean top-1 ${pct(result.attackClean.top1)}). Attack success: the share of correctly classified images that the attack flips.`,
    digits: 3,
  });
  if (result.targetedAttacks.length) {
    blocks.push({
      kind: "table",
      columns: ["norm", "eps", "steps", "success (target class)", "cosine with target (clean -> attacked)", "top-1"],
      rows: result.targetedAttacks.map((t) => [t.norm, formatEps(t.norm, t.eps), t.steps, t.successRate, `${t.cleanTargetCosine.toFixed(3)} -> ${t.targetCosine.toFixed(3)}`, t.top1]),
      caption: "Targeted PGD towards a random wrong class prompt (raising the image's similarity to the wrong text).",
      digits: 3,
    });
  }
  blocks.push({ kind: "figure", figure: epsCurvesFigure(result), caption: "Robust zero-shot top-1 against the budget; dotted: targeted success rate." });
  blocks.push({
    kind: "table",
    columns: ["check", "result", "numbers"],
    rows: [
      ...sanityRows("eps = 0 equals clean", s.epsZeroEqualsClean),
      ...sanityRows("PGD at least as strong as FGSM", s.pgdAtLeastFgsm),
      ...sanityRows("APGD at least as strong as PGD", apgdCheck),
      ...sanityRows("accuracy does not rise with eps", s.monotoneInEps),
      ...sanityRows("more PGD steps do not help the model", s.moreStepsNoHelp),
    ],
    caption: `Sanity checks of the attacks (tolerance ${pct(s.tolerance)} of accuracy, none for eps = 0).`,
  });
  for (const e of result.examples) blocks.push(exampleBlock(e));

  // Remedies.
  for (const r of opts.remedies ?? []) {
    blocks.push({
      kind: "table",
      columns: ["metric", r.beforeLabel, r.afterLabel, "change"],
      rows: r.rows.map((x) => [x.metric, x.before, x.after, x.change]),
      caption: `Remedy: ${r.remedy}. Same audit settings before and after.`,
      digits: 3,
    });
  }
  return { title: opts.title ?? "Robustness: corruptions and adversarial attacks", blocks };
}
