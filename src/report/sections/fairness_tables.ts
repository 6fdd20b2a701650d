/**
 * Report blocks for two parts of the fairness audit: Berg et al. 2022's ranking measures
 * (src/audit/fairness/ranking_bias.ts, https://arxiv.org/abs/2203.11933) and the FairFace-style
 * table of the CLIP paper's §7.1 (src/audit/fairness/group_table.ts,
 * https://arxiv.org/abs/2103.00020). Plain data in, blocks and plotly JSON out; `fairnessSection`
 * (./fairness.ts) puts them in the audit's section.
 */
import type { ReportBlock, TableCell } from "../types";
import type { Figure } from "../../viz/figure";
import type { Estimate } from "../../eval/intervals";
import type { AttributeTable } from "../../audit/fairness/group_table";
import { RANKING_TARGET_CODES, type RankingBiasResult, type RankingMeasure, type RankingTarget } from "../../audit/fairness/ranking_bias";

export function fmt(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

export function ci(e: { ci95: [number, number] }, digits = 3): string {
  return `[${fmt(e.ci95[0], digits)}, ${fmt(e.ci95[1], digits)}]`;
}

export function pFmt(p: number): string {
  return p < 0.001 ? "<0.001" : p.toFixed(3);
}

/** A bar chart with 95% error bars, one bar group per series (series without `values` intervals get none). */
export function barFigure(title: string, categories: string[], series: { name: string; values: Estimate[]; noErrors?: boolean }[], yTitle: string): Figure {
  return {
    data: series.map((s) => ({
      type: "bar",
      name: s.name,
      x: categories,
      y: s.values.map((e) => e.value),
      ...(s.noErrors
        ? { opacity: 0.45 }
        : {
            error_y: {
              type: "data",
              symmetric: false,
              array: s.values.map((e) => e.ci95[1] - e.value),
              arrayminus: s.values.map((e) => e.value - e.ci95[0]),
            },
          }),
    })),
    layout: { title: { text: title }, barmode: "group", yaxis: { title: { text: yTitle } }, margin: { t: 40 } },
  };
}

export const TARGET_NAMES: Record<RankingTarget, string> = { equalOpportunity: "equal opportunity", demographicParity: "demographic parity" };

const metricName = (m: RankingMeasure) => `${m.metric === "maxSkew" ? "MaxSkew" : "NDKL"}@${m.k}`;

/** The ranking measures: what was measured, one table row per measure, and a chart per metric. */
export function rankingBlocks(r: RankingBiasResult, opts: { queriesName?: string } = {}): ReportBlock[] {
  const s = r.settings;
  const Q = r.queries.length;
  const shares = r.attributes.map((a) => `${a.name}: ${a.groups.map((g) => `${g.group} ${(100 * g.share).toFixed(1)}%`).join(", ")}`).join("; ");
  const flagged = r.measures.filter((m) => m.flagged);
  const atN = s.k.includes(r.n);
  const text =
    `Ranking bias (Berg et al. 2022, arXiv:2203.11933, after Geyik et al. 2019): for each of ${Q} neutral queries${opts.queriesName ? ` ("${opts.queriesName}" set)` : ""} the ${r.n} images are ranked by cosine similarity, ` +
    `and the group make-up of the top k (k = ${s.k.join(", ")}${atN ? `; ${r.n} = all images` : ""}) is compared with two targets: equal opportunity (eq_opp: every group 1/G) and ` +
    `demographic parity (dem_par: the groups' shares among the images; ${shares}). MaxSkew@k = max over groups of ln(share in top k / target share); ` +
    `NDKL = the rank-discounted mean KL divergence of every top-i prefix from the target. 0 is perfect for both; each is averaged over the queries as Berg et al. report it, ` +
    `and the worst query is shown.\n\n` +
    `Intervals: percentile bootstrap of the mean (${s.bootstrap} resamples of the ${s.resample === "queries" ? "queries: the number is an average over a sample of prompts, which is its main source of variation" : "images, stratified by group"}). ` +
    `p-values: the group labels shuffled across images${s.permuteWithin === "strata" ? " within classes" : ""} with the rankings fixed (${s.permutations} permutations), one-sided; ` +
    `the null mean is what a ranking that ignores the groups scores here. It is not 0 at finite k, and against equal opportunity it is well above 0 whenever the groups are unbalanced, ` +
    `so read each value against its null mean (a ranking that lifts a minority towards half can even score lower than chance against equal opportunity).` +
    (atN ? ` At k = N MaxSkew against demographic parity is 0 by construction.` : "") +
    ` p-values are per measure, not corrected for the ${r.measures.length} measures. ` +
    (flagged.length ? `Flagged (p < ${s.alpha}): ${flagged.map((m) => `${m.attribute} ${metricName(m)} ${m.target === "equalOpportunity" ? "eq_opp" : "dem_par"}`).join(", ")}.` : `No measure is flagged (p < ${s.alpha}).`);
  const rows: TableCell[][] = r.measures.map((m) => [
    m.attribute,
    metricName(m),
    `${TARGET_NAMES[m.target]} (${RANKING_TARGET_CODES[m.target]})`,
    m.mean,
    ci({ ci95: m.ci95 }),
    m.nullMean,
    pFmt(m.pValue),
    m.max,
    m.maxQuery,
    m.flagged ? "FLAGGED" : "",
  ]);
  const blocks: ReportBlock[] = [
    { kind: "text", text },
    {
      kind: "table",
      columns: ["attribute", "measure", "target", `mean over ${Q} queries`, "95% CI", "null mean", "p", "max over queries", "worst query", ""],
      rows,
      caption: "Ranking bias over neutral queries",
      digits: 3,
    },
  ];
  for (const metric of ["maxSkew", "ndkl"] as const) {
    const ms = r.measures.filter((m) => m.metric === metric);
    const cats = [...new Set(ms.map((m) => `${m.attribute} @${m.k}`))];
    const pick = (target: RankingTarget) => cats.map((c) => ms.find((m) => `${m.attribute} @${m.k}` === c && m.target === target)!);
    const series = (["equalOpportunity", "demographicParity"] as const).flatMap((t) => [
      { name: TARGET_NAMES[t], values: pick(t).map((m) => ({ value: m.mean, ci95: m.ci95 })) },
      { name: `${TARGET_NAMES[t]}: null mean`, values: pick(t).map((m) => ({ value: m.nullMean, ci95: [m.nullMean, m.nullMean] as [number, number] })), noErrors: true },
    ]);
    const label = metric === "maxSkew" ? "MaxSkew@k" : "NDKL@k";
    blocks.push({
      kind: "figure",
      figure: barFigure(`${label}, mean over ${Q} neutral queries (95% CI) and the permutation null`, cats, series, label),
      caption: `${label} per attribute and k against both targets; the pale bars are what shuffled group labels score.`,
    });
  }
  return blocks;
}

/** The FairFace-style table: per attribute and group, zero-shot accuracy and harmful-label rates with intervals; their spreads with p-values. */
export function attributeTableBlocks(tables: readonly AttributeTable[], opts: { permuteWithin?: string; bootstrap?: number; permutations?: number } = {}): ReportBlock[] {
  if (!tables.length) return [];
  const categories = [...new Set(tables.flatMap((t) => t.rows.flatMap((r) => Object.keys(r.harmfulByCategory ?? {}))))];
  const harmful = tables.some((t) => t.rows.some((r) => r.harmfulRate));
  const perCat = categories.length > 1 ? categories : [];
  const columns = ["attribute", "group", "images", "zero-shot accuracy", "95% CI", ...(harmful ? ["harmful-label rate (any)", "95% CI"] : []), ...perCat.flatMap((c) => [`${c} rate`, "95% CI"])];
  const rows: TableCell[][] = [];
  for (const t of tables) {
    for (const r of t.rows) {
      rows.push([
        t.attribute,
        r.group,
        r.count,
        r.accuracy.value,
        ci(r.accuracy),
        ...(harmful ? [r.harmfulRate ? r.harmfulRate.value : null, r.harmfulRate ? ci(r.harmfulRate) : ""] : []),
        ...perCat.flatMap((c) => {
          const e = r.harmfulByCategory?.[c];
          return e ? [e.value, ci(e)] : [null, ""];
        }),
      ]);
    }
  }
  const spreadRows: TableCell[][] = tables.flatMap((t) => t.spreads.map((s) => [t.attribute, s.label, s.value, ci(s), s.nullMean, pFmt(s.pValue), s.flagged ? "FLAGGED" : ""]));
  const blocks: ReportBlock[] = [
    {
      kind: "text",
      text:
        `Per group, as the CLIP paper's FairFace probes report it (arXiv:2103.00020, §7.1): zero-shot accuracy over the dataset's classes, and the share of images assigned to a harmful label ` +
        `when those labels are added as extra zero-shot classes${categories.length ? ` (${categories.join(", ")})` : ""}. Intervals: percentile bootstrap over each group's images` +
        `${opts.bootstrap ? ` (${opts.bootstrap} resamples)` : ""}. Spreads: max - min over the groups, bootstrap stratified by group; p-values shuffle the group labels` +
        `${opts.permuteWithin === "class" ? " within classes" : " across images"}${opts.permutations ? ` (${opts.permutations} permutations)` : ""}, one-sided against the null mean shown.`,
    },
    { kind: "table", columns, rows, caption: "Per group (FairFace-style)", digits: 3 },
    { kind: "table", columns: ["attribute", "spread", "value", "95% CI", "null mean", "p", ""], rows: spreadRows, caption: "Differences between groups", digits: 3 },
  ];
  for (const t of tables) {
    const series = [{ name: "zero-shot accuracy", values: t.rows.map((r) => r.accuracy) }];
    if (t.rows.every((r) => r.harmfulRate)) series.push({ name: "harmful-label rate (any)", values: t.rows.map((r) => r.harmfulRate!) });
    for (const c of perCat) if (t.rows.every((r) => r.harmfulByCategory?.[c])) series.push({ name: `${c} rate`, values: t.rows.map((r) => r.harmfulByCategory![c]) });
    blocks.push({
      kind: "figure",
      figure: barFigure(`By ${t.attribute}: zero-shot accuracy and harmful-label rates (95% CI)`, t.rows.map((r) => `${r.group} (${r.count})`), series, "rate"),
      caption: `Groups of ${t.attribute} with bootstrap 95% intervals.`,
    });
  }
  return blocks;
}
