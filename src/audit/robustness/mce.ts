/**
 * Corruption errors against a baseline model (Hendrycks & Dietterich 2019,
 * https://arxiv.org/abs/1903.12261, §3): ImageNet-C normalises by AlexNet's errors, which exist
 * only for ImageNet, so cliplab normalises by a baseline model the user names, audited on the
 * same images with the same corruptions, severities and seed. With E = 1 - top-1:
 *
 *   CE_c           = sum_s E_{s,c} / sum_s E^base_{s,c}
 *   mCE            = mean over c of CE_c
 *   relative CE_c  = sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean)
 *   relative mCE   = mean over c of relative CE_c
 *
 * Values below 1 (100%) mean the model does better than the baseline. A CE whose denominator is 0
 * (the baseline makes no error, or loses nothing under a corruption) is undefined: null, and left
 * out of the mean (`undefinedCe` lists them).
 */
import type { RobustnessResult } from "./types";

export interface CorruptionError {
  name: string;
  /** E_{s,c} of the model and the baseline at the audited severities, in order. */
  errors: number[];
  baselineErrors: number[];
  ce: number | null;
  relativeCe: number | null;
}

export interface CorruptionErrorComparison {
  /** What the baseline is (e.g. its checkpoint path), as the caller names it. */
  baseline: string;
  severities: number[];
  clean: { error: number; baselineError: number };
  perCorruption: CorruptionError[];
  /** Mean CE over the corruptions with a defined CE (null when none). */
  mce: number | null;
  relativeMce: number | null;
  /** Corruptions left out of mCE / relative mCE, with why. */
  undefinedCe: { name: string; which: "ce" | "relativeCe"; reason: string }[];
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function meanDefined(xs: (number | null)[]): number | null {
  const ok = xs.filter((x): x is number => x !== null);
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : null;
}

/**
 * CE per corruption, mCE, relative CE and relative mCE of `result` against `baselineResult`, two
 * audits of the same images (dataset, image count, corruptions, severities, seed must agree;
 * their input sizes may differ: each model sees its own preprocessing of the same items).
 */
export function compareCorruptionErrors(result: RobustnessResult, baselineResult: RobustnessResult, baselineName = "baseline"): CorruptionErrorComparison {
  const fn = "compareCorruptionErrors";
  const a = result.config;
  const b = baselineResult.config;
  for (const k of ["dataset", "images", "corruptions", "severities", "seed"] as const) {
    if (!same(a[k], b[k])) throw new RangeError(`${fn}: the audits differ in ${k} (${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}); audit both models on the same images with the same corruptions, severities and seed`);
  }
  if (a.corruptions.length === 0) throw new RangeError(`${fn}: the audits ran no corruptions`);
  const error = (r: RobustnessResult, name: string, s: number) => {
    const row = r.corruptions.find((x) => x.name === name && x.severity === s);
    if (!row) throw new RangeError(`${fn}: no result for ${name} at severity ${s}`);
    return 1 - row.top1;
  };
  const clean = { error: 1 - result.clean.top1, baselineError: 1 - baselineResult.clean.top1 };
  const undefinedCe: CorruptionErrorComparison["undefinedCe"] = [];
  const perCorruption = a.corruptions.map((name): CorruptionError => {
    const errors = a.severities.map((s) => error(result, name, s));
    const baselineErrors = a.severities.map((s) => error(baselineResult, name, s));
    const sum = (xs: number[]) => xs.reduce((p, q) => p + q, 0);
    const den = sum(baselineErrors);
    const relDen = sum(baselineErrors.map((e) => e - clean.baselineError));
    let ce: number | null = null;
    let relativeCe: number | null = null;
    if (den > 0) ce = sum(errors) / den;
    else undefinedCe.push({ name, which: "ce", reason: "the baseline makes no error under it" });
    if (relDen !== 0) relativeCe = sum(errors.map((e) => e - clean.error)) / relDen;
    else undefinedCe.push({ name, which: "relativeCe", reason: "the baseline's error does not change under it" });
    return { name, errors, baselineErrors, ce, relativeCe };
  });
  return {
    baseline: baselineName,
    severities: [...a.severities],
    clean,
    perCorruption,
    mce: meanDefined(perCorruption.map((p) => p.ce)),
    relativeMce: meanDefined(perCorruption.map((p) => p.relativeCe)),
    undefinedCe,
  };
}
