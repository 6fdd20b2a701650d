/**
 * Prompt sensitivity (CLIP §3.1.4, Radford et al. 2021, https://arxiv.org/abs/2103.00020): the
 * zero-shot accuracy of every single template, their mean, spread and worst case, and the
 * ensemble of all of them, with the ensemble's gain over the mean single template and a seeded
 * paired bootstrap 95% interval over test images:
 *
 *   gain_i = correct_ensemble(i) - mean_p correct_p(i)        gain = mean_i gain_i
 *
 * (mean_i of the second term is the mean single-template accuracy, so gain is exactly
 * "ensemble top-1 minus mean single-template top-1"; resampling images keeps the pairing.)
 */
import { bootstrapMean, type BootstrapOptions } from "../eval/bootstrap";
import type { Estimate } from "../eval/intervals";
import { classificationMetrics, labelRanks, type ClassificationMetrics } from "../eval/classifier_metrics";
import { ensembleScores, singleTemplateScores, templateCosines, type FeatureSet, type PromptBank } from "./prompt_bank";

export interface TemplateAccuracy {
  template: string;
  top1: number;
  top5: number;
}

export interface SpreadSummary {
  mean: number;
  /** Sample standard deviation (n - 1; 0 for one template). */
  std: number;
  min: number;
  max: number;
}

export interface SensitivityResult {
  perTemplate: TemplateAccuracy[];
  /** Of the single-template top-1 accuracies. */
  top1: SpreadSummary;
  top5: SpreadSummary;
  worst: TemplateAccuracy;
  best: TemplateAccuracy;
  /** The ensemble of all templates (top-1/5, per class, confusion, NLL and ECE at the logit scale). */
  ensemble: ClassificationMetrics;
  /** Ensemble top-1 minus mean single-template top-1 (fractions), with a paired bootstrap interval. */
  ensembleGain: Estimate;
  /** The bootstrap resamples behind `ensembleGain`'s interval. */
  bootstrapResamples: number;
}

export interface SensitivityOptions {
  /** Multiplier of the cosines for probabilities: exp(model.logitScale). Default 100. */
  logitScale?: number;
  /** The paired bootstrap of the gain: resamples (default 2000) and seed (default 0). */
  bootstrap?: Pick<BootstrapOptions, "resamples" | "seed">;
  /** Precomputed templateCosines(bank, test), to skip the matmul. */
  cosines?: Float32Array;
}

export function spread(values: readonly number[]): SpreadSummary {
  const n = values.length;
  if (n === 0) throw new Error("spread: no values");
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, min: Math.min(...values), max: Math.max(...values) };
}

export function promptSensitivity(bank: PromptBank, test: FeatureSet, opts: SensitivityOptions = {}): SensitivityResult {
  const p = bank.templates.length;
  const c = bank.classNames.length;
  const cos = opts.cosines ?? templateCosines(bank, test);
  if (cos.length !== test.n * p * c) throw new Error(`promptSensitivity: cosines hold ${cos.length} values, expected N x P x C = ${test.n * p * c}`);
  const k5 = Math.min(5, c);
  const meanCorrect = new Float64Array(test.n);
  const perTemplate: TemplateAccuracy[] = bank.templates.map((template, t) => {
    const ranks = labelRanks(singleTemplateScores(bank, cos, t), test.labels, c);
    let h1 = 0;
    let h5 = 0;
    ranks.forEach((r, i) => {
      if (r === 0) {
        h1++;
        meanCorrect[i] += 1 / p;
      }
      if (r < k5) h5++;
    });
    return { template, top1: h1 / test.n, top5: h5 / test.n };
  });
  const all = ensembleScores(bank, cos, new Array<number>(p).fill(1));
  const ensemble = classificationMetrics(all, test.labels, c, { logitScale: opts.logitScale ?? 100 });
  const ensRanks = labelRanks(all, test.labels, c);
  const gains = Float64Array.from(ensRanks, (r, i) => (r === 0 ? 1 : 0) - meanCorrect[i]);
  const byTop1 = perTemplate.map((t, i) => [t.top1, i] as const);
  // Worst: lowest top-1 (first on ties); best: highest (first on ties).
  const worst = byTop1.reduce((a, b) => (b[0] < a[0] ? b : a));
  const best = byTop1.reduce((a, b) => (b[0] > a[0] ? b : a));
  const resamples = opts.bootstrap?.resamples ?? 2000;
  return {
    perTemplate,
    top1: spread(perTemplate.map((t) => t.top1)),
    top5: spread(perTemplate.map((t) => t.top5)),
    worst: perTemplate[worst[1]],
    best: perTemplate[best[1]],
    ensemble,
    ensembleGain: bootstrapMean(gains, { resamples, seed: opts.bootstrap?.seed ?? 0 }),
    bootstrapResamples: resamples,
  };
}
