/**
 * The rows of `robustness.arrow` (what `cliplab audit robustness` writes beside robustness.json):
 * one row per measurement of a robustness audit, with a baseline audit's rows and the corruption
 * errors when there are any.
 */
import { makeTable } from "../../io/arrow";
import type { RobustnessResult } from "./audit";

/**
 * One row per measurement: clean, each corruption x severity, each attack, and with a baseline its
 * clean and corruption rows ("baseline_clean", "baseline_corruption") and one "corruption_error"
 * row per corruption plus "mean" (mCE, relative mCE) (NaN / "" where a column does not apply).
 */
export function robustnessTable(r: RobustnessResult, baseline?: RobustnessResult) {
  const kind: string[] = [];
  const name: string[] = [];
  const severity: number[] = [];
  const norm: string[] = [];
  const eps: number[] = [];
  const appliedEps: number[] = [];
  const steps: number[] = [];
  const images: number[] = [];
  const top1: number[] = [];
  const matchCosine: number[] = [];
  const captionCosine: number[] = [];
  const r1i2t: number[] = [];
  const r1t2i: number[] = [];
  const success: number[] = [];
  const ce: number[] = [];
  const relativeCe: number[] = [];
  type Row = { kind: string; name: string; severity?: number; norm?: string; eps?: number; appliedEps?: number; steps?: number; images: number; top1: number; matchCosine?: number; captionCosine?: number; r1i2t?: number; r1t2i?: number; success?: number; ce?: number | null; relativeCe?: number | null };
  const push = (row: Row) => {
    kind.push(row.kind);
    name.push(row.name);
    severity.push(row.severity ?? NaN);
    norm.push(row.norm ?? "");
    eps.push(row.eps ?? NaN);
    appliedEps.push(row.appliedEps ?? NaN);
    steps.push(row.steps ?? NaN);
    images.push(row.images);
    top1.push(row.top1);
    matchCosine.push(row.matchCosine ?? NaN);
    captionCosine.push(row.captionCosine ?? NaN);
    r1i2t.push(row.r1i2t ?? NaN);
    r1t2i.push(row.r1t2i ?? NaN);
    success.push(row.success ?? NaN);
    ce.push(row.ce ?? NaN);
    relativeCe.push(row.relativeCe ?? NaN);
  };
  const n = r.config.images;
  const m = r.config.attackImages;
  const c = r.clean;
  push({ kind: "clean", name: "clean", severity: 0, images: n, top1: c.top1, matchCosine: c.matchCosine, captionCosine: c.captionCosine, r1i2t: c.recallAt1ImageToText, r1t2i: c.recallAt1TextToImage });
  for (const x of r.corruptions) {
    push({ kind: "corruption", name: x.name, severity: x.severity, images: n, top1: x.top1, matchCosine: x.matchCosine, captionCosine: x.captionCosine, r1i2t: x.recallAt1ImageToText, r1t2i: x.recallAt1TextToImage });
  }
  for (const a of [...r.attacks, ...r.moreStepsAttacks]) {
    push({ kind: "attack", name: a.attack, norm: a.norm, eps: a.eps, appliedEps: a.appliedEps, steps: a.steps, images: m, top1: a.top1, matchCosine: a.matchCosine, success: a.successRate });
  }
  for (const t of r.targetedAttacks) {
    push({ kind: "targeted", name: t.attack, norm: t.norm, eps: t.eps, appliedEps: t.appliedEps, steps: t.steps, images: m, top1: t.top1, success: t.successRate });
  }
  if (baseline) {
    const bc = baseline.clean;
    push({ kind: "baseline_clean", name: "clean", severity: 0, images: baseline.config.images, top1: bc.top1, matchCosine: bc.matchCosine, captionCosine: bc.captionCosine, r1i2t: bc.recallAt1ImageToText, r1t2i: bc.recallAt1TextToImage });
    for (const x of baseline.corruptions) {
      push({ kind: "baseline_corruption", name: x.name, severity: x.severity, images: baseline.config.images, top1: x.top1, matchCosine: x.matchCosine, captionCosine: x.captionCosine, r1i2t: x.recallAt1ImageToText, r1t2i: x.recallAt1TextToImage });
    }
  }
  const errors = r.corruptionErrors;
  if (errors) {
    for (const p of errors.perCorruption) push({ kind: "corruption_error", name: p.name, images: n, top1: NaN, ce: p.ce, relativeCe: p.relativeCe });
    push({ kind: "corruption_error", name: "mean", images: n, top1: NaN, ce: errors.mce, relativeCe: errors.relativeMce });
  }
  return makeTable({
    kind,
    name,
    severity,
    norm,
    eps,
    applied_eps: appliedEps,
    steps,
    images,
    top1,
    match_cosine: matchCosine,
    caption_cosine: captionCosine,
    recall_at_1_image_to_text: r1i2t,
    recall_at_1_text_to_image: r1t2i,
    success_rate: success,
    ce,
    relative_ce: relativeCe,
  });
}
