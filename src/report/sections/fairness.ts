/**
 * Report sections for the fairness audit: `fairnessSection` for one audit, `fairnessStudySection`
 * for the planted-bias study (the rho sweep and the remedies, before and after). Plain data in,
 * plain `ReportSection` out; the figures are plotly JSON built here.
 */
import type { ReportBlock, ReportSection, TableCell } from "../types";
import type { Figure } from "../../viz/figure";
import type { Estimate } from "../../eval/intervals";
import type { FairnessAuditResult, ProbeResult } from "../../audit/fairness/audit";
import { TARGET_NAMES, attributeTableBlocks, barFigure, ci, fmt, pFmt, rankingBlocks } from "./fairness_tables";

function coversZero(p: ProbeResult): boolean {
  return p.ci95[0] <= 0 && p.ci95[1] >= 0;
}

function probeRow(p: ProbeResult): TableCell[] {
  return [p.label, p.value, ci(p), pFmt(p.pValue), p.nullMean ?? null, p.kind === "signed" ? (coversZero(p) ? "yes" : "no") : "n/a", p.flagged ? "FLAGGED" : ""];
}

const PROBE_COLUMNS = ["probe", "value", "95% CI", "p", "null mean", "CI covers 0", ""];

/**
 * One audit: what was measured, the probes with intervals and p-values, the per-group table and a
 * chart; then, where the audit has them, Berg et al.'s ranking measures and the FairFace-style
 * table per attribute. `queriesName` names the query set in the prose; `note` is appended to the
 * first paragraph (e.g. the settings a report chose).
 */
export function fairnessSection(result: FairnessAuditResult, opts: { title?: string; queriesName?: string; note?: string } = {}): ReportSection {
  const flagged = result.probes.filter((p) => p.flagged);
  const groups = result.groups.map((g) => `${g.group} (${g.count})`).join(", ");
  const s = result.settings;
  const blocks: ReportBlock[] = [
    {
      kind: "text",
      text:
        `Zero-shot audit on ${result.n} images in groups ${groups}; focus group "${result.focusGroup}" against the rest, ` +
        `positive class "${result.positiveClassName}"${result.debiased ? ", text embeddings projection-debiased" : ""}. ` +
        `Overall zero-shot accuracy ${fmt(result.accuracy.value)} ${ci(result.accuracy)}.\n\n` +
        `Intervals: percentile bootstrap (${s.bootstrap} resamples, stratified by group${s.permuteWithin === "class" ? " and class" : ""}). p-values: group labels shuffled${s.permuteWithin === "class" ? " within classes" : ""} ` +
        `(${s.permutations} permutations; WEAT ${s.weatPermutations} re-partitions); signed probes two-sided, unsigned ones one-sided ` +
        `against the null mean shown. Flagged: p < ${result.alpha}. ` +
        (flagged.length ? `Flagged here: ${flagged.map((p) => p.key).join(", ")}.` : "No probe is flagged.") +
        (opts.note ? `\n\n${opts.note}` : ""),
    },
    { kind: "table", columns: PROBE_COLUMNS, rows: result.probes.map(probeRow), caption: "Bias probes", digits: 3 },
    {
      kind: "table",
      columns: ["group", "images", "accuracy", "95% CI", `P(pred ${result.positiveClassName})`, "95% CI", "TPR", "FPR", "harmful-label rate", "95% CI"],
      rows: result.groups.map((g) => [
        g.group,
        g.count,
        g.accuracy.value,
        ci(g.accuracy),
        g.positiveRate.value,
        ci(g.positiveRate),
        g.tpr,
        g.fpr,
        g.harmfulRate ? g.harmfulRate.value : null,
        g.harmfulRate ? ci(g.harmfulRate) : "",
      ]),
      caption: "Per group",
      digits: 3,
    },
    {
      kind: "figure",
      figure: barFigure(
        "Per-group rates (95% CI)",
        result.groups.map((g) => g.group),
        [
          { name: "accuracy", values: result.groups.map((g) => g.accuracy) },
          { name: `P(pred ${result.positiveClassName})`, values: result.groups.map((g) => g.positiveRate) },
          ...(result.groups.every((g) => g.harmfulRate) ? [{ name: "harmful-label rate", values: result.groups.map((g) => g.harmfulRate!) }] : []),
        ],
        "rate",
      ),
      caption: "Zero-shot rates per group with bootstrap 95% intervals.",
    },
  ];
  // Older results (saved JSON) may lack the per-attribute tables.
  if (result.attributeTables?.length) blocks.push(...attributeTableBlocks(result.attributeTables, { permuteWithin: s.permuteWithin, bootstrap: s.bootstrap, permutations: s.permutations }));
  if (result.ranking) blocks.push(...rankingBlocks(result.ranking, { queriesName: opts.queriesName }));
  return { title: opts.title ?? "Fairness audit", blocks };
}

/** One trained model of the planted-bias study. */
export interface StudyRun {
  /** Planted strength. */
  rho: number;
  /**
   * "none" for the sweep ("none, seed N" for a repeat with another training seed); "placebo" for a
   * placebo-group audit; otherwise the remedy ("resample", "regularizer", "projection").
   */
  remedy: string;
  cleanAccuracy: Estimate;
  audit: FairnessAuditResult;
  trainSeconds?: number;
}

/** The probes the study tables show, in order (others stay in the per-audit sections). */
export const STUDY_PROBES = ["accuracyGap", "positiveRateGap", "fprGap", "demographicParity", "equalizedOdds", "maxSkew", "ndkl", "harmfulGap"];

function studyProbes(run: StudyRun): ProbeResult[] {
  const byKey = new Map(run.audit.probes.map((p) => [p.key, p]));
  const weat = run.audit.probes.filter((p) => p.key.startsWith("weat:"));
  return [...STUDY_PROBES.flatMap((k) => (byKey.has(k) ? [byKey.get(k)!] : [])), ...weat];
}

/**
 * The rho sweep (runs with remedy "none") and the remedies (measured against the "none" run of
 * the same rho): long tables, one row per (run, probe), and a chart of the main probes against rho.
 */
export function fairnessStudySection(runs: readonly StudyRun[], opts: { title?: string; note?: string } = {}): ReportSection {
  const sweep = runs.filter((r) => r.remedy === "none" || r.remedy.startsWith("none,")).sort((a, b) => a.rho - b.rho);
  const remedies = runs.filter((r) => !sweep.includes(r) && r.remedy !== "placebo");
  const placebo = runs.filter((r) => r.remedy === "placebo").sort((a, b) => a.rho - b.rho);
  const blocks: ReportBlock[] = [];
  blocks.push({
    kind: "text",
    text:
      `A frame is planted on the training images with strength rho: P(framed | target class) = rho, P(framed | other class) = 1 - rho, ` +
      `and captions of framed images carry the planted word with probability rho (1 - rho for plain ones); rho = 0.5 is the unbiased control. ` +
      `Each model is audited on test images framed at random (half of each class), so any measured bias comes from the model; p-values shuffle the groups within classes.` +
      (opts.note ? `\n\n${opts.note}` : ""),
  });
  if (sweep.length) {
    const rows: TableCell[][] = [];
    for (const r of sweep) {
      const rho = r.remedy === "none" ? r.rho : `${r.rho} (${r.remedy.slice("none, ".length)})`;
      rows.push([rho, "clean zero-shot accuracy", r.cleanAccuracy.value, ci(r.cleanAccuracy), "", "", ""]);
      for (const p of studyProbes(r)) rows.push([rho, p.label, p.value, ci(p), pFmt(p.pValue), p.kind === "signed" ? (coversZero(p) ? "yes" : "no") : "n/a", p.flagged ? "FLAGGED" : ""]);
    }
    blocks.push({ kind: "table", columns: ["rho", "probe", "value", "95% CI", "p", "CI covers 0", ""], rows, caption: "rho sweep", digits: 3 });
    const keys = ["positiveRateGap", "fprGap", "harmfulGap", "maxSkew"];
    const figure: Figure = {
      data: keys.flatMap((key) => {
        const pts = sweep.filter((r) => r.remedy === "none").flatMap((r) => r.audit.probes.filter((p) => p.key === key).map((p) => ({ rho: r.rho, p })));
        if (!pts.length) return [];
        return [
          {
            type: "scatter",
            mode: "lines+markers",
            name: pts[0].p.label,
            x: pts.map((q) => q.rho),
            y: pts.map((q) => q.p.value),
            error_y: { type: "data", symmetric: false, array: pts.map((q) => q.p.ci95[1] - q.p.value), arrayminus: pts.map((q) => q.p.value - q.p.ci95[0]) },
          },
        ];
      }),
      layout: { title: { text: "Measured bias against planted strength (95% CI)" }, xaxis: { title: { text: "rho" } }, yaxis: { title: { text: "probe value" } }, margin: { t: 40 } },
    };
    blocks.push({ kind: "figure", figure, caption: "Probe values against rho; rho = 0.5 is the unbiased control." });
  }
  if (remedies.length) {
    const rows: TableCell[][] = [];
    for (const r of remedies) {
      const base = sweep.find((s) => s.rho === r.rho && s.remedy === "none");
      const cost = base ? base.cleanAccuracy.value - r.cleanAccuracy.value : null;
      rows.push([r.remedy, r.rho, "clean zero-shot accuracy", base ? base.cleanAccuracy.value : null, r.cleanAccuracy.value, ci(r.cleanAccuracy), cost === null ? "" : `cost ${fmt(cost)}`, ""]);
      for (const p of studyProbes(r)) {
        const before = base?.audit.probes.find((q) => q.key === p.key);
        rows.push([r.remedy, r.rho, p.label, before ? before.value : null, p.value, ci(p), pFmt(p.pValue), p.flagged ? "FLAGGED" : ""]);
      }
    }
    blocks.push({ kind: "table", columns: ["remedy", "rho", "probe", "before", "after", "after 95% CI", "after p", ""], rows, caption: "Remedies, before and after", digits: 3 });
  }
  if (placebo.length) {
    const rows: TableCell[][] = [];
    for (const r of placebo) {
      for (const p of studyProbes(r)) rows.push([r.rho, p.label, p.value, ci(p), pFmt(p.pValue), p.kind === "signed" ? (coversZero(p) ? "yes" : "no") : "n/a", p.flagged ? "FLAGGED" : ""]);
    }
    blocks.push({
      kind: "text",
      text: "Placebo: the same audit with the test images split into the same two groups at random but no frame drawn. Nothing can tell the groups apart, so a probe that flags this split is miscalibrated.",
    });
    blocks.push({ kind: "table", columns: ["model rho", "probe", "value", "95% CI", "p", "CI covers 0", ""], rows, caption: "Placebo groups (no frame)", digits: 3 });
  }
  const ranked = runs.filter((r) => r.audit.ranking);
  if (ranked.length) blocks.push(...rankingStudyBlocks(ranked, sweep));
  return { title: opts.title ?? "Planted bias: rho sweep and remedies", blocks };
}

/** Berg et al.'s ranking measures of every run that has them: one long table and, for the sweep, each measure against rho. */
function rankingStudyBlocks(runs: readonly StudyRun[], sweep: readonly StudyRun[]): ReportBlock[] {
  const rows: TableCell[][] = [];
  for (const r of runs) {
    for (const m of r.audit.ranking!.measures) {
      rows.push([r.rho, r.remedy, `${m.metric === "maxSkew" ? "MaxSkew" : "NDKL"}@${m.k}`, TARGET_NAMES[m.target], m.mean, ci(m), m.nullMean, pFmt(m.pValue), m.flagged ? "FLAGGED" : ""]);
    }
  }
  const first = runs[0].audit.ranking!;
  const blocks: ReportBlock[] = [
    {
      kind: "text",
      text:
        `Ranking bias over ${first.queries.length} neutral queries (Berg et al. 2022): MaxSkew@k and NDKL of the framed/plain make-up of each query's top k, ` +
        `against equal opportunity (1/2 each) and demographic parity (the test images' shares), mean over the queries with a bootstrap interval over queries; ` +
        `p-values shuffle the groups across images. Compare each value with its null mean: a frame any model can see may move images in every ranking, ` +
        `so the placebo split (no frame drawn) is the control that must stay quiet.`,
    },
    { kind: "table", columns: ["rho", "run", "measure", "target", "mean over queries", "95% CI", "null mean", "p", ""], rows, caption: "Ranking bias per run", digits: 3 },
  ];
  const plain = sweep.filter((r) => r.remedy === "none" && r.audit.ranking);
  if (plain.length > 1) {
    const keys = [...new Set(first.measures.map((m) => `${m.metric}|${m.target}|${m.k}`))];
    const data = keys.map((key) => {
      const pts = plain.map((r) => ({ rho: r.rho, m: r.audit.ranking!.measures.find((m) => `${m.metric}|${m.target}|${m.k}` === key)! })).filter((p) => p.m);
      const m0 = pts[0].m;
      return {
        type: "scatter",
        mode: "lines+markers",
        name: `${m0.metric === "maxSkew" ? "MaxSkew" : "NDKL"}@${m0.k}, ${TARGET_NAMES[m0.target]}`,
        x: pts.map((p) => p.rho),
        y: pts.map((p) => p.m.mean),
        error_y: { type: "data", symmetric: false, array: pts.map((p) => p.m.ci95[1] - p.m.mean), arrayminus: pts.map((p) => p.m.mean - p.m.ci95[0]) },
      };
    });
    blocks.push({
      kind: "figure",
      figure: { data, layout: { title: { text: "Ranking bias against planted strength (95% CI over queries)" }, xaxis: { title: { text: "rho" } }, yaxis: { title: { text: "mean over queries" } }, margin: { t: 40 } } },
      caption: "Berg et al.'s measures of the sweep's models against rho.",
    });
  }
  return blocks;
}
