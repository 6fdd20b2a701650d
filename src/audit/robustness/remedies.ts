/**
 * Remedies for the robustness audit, each measured before and after on the same audit:
 * - training-time augmentation: `trainClip({ ..., augment: ROBUSTNESS_AUGMENT })` (shift = random
 *   crop of a padded image, rotation, contrast jitter, gaussian noise; src/data/augment.ts, which
 *   augments Fashion-MNIST's grey 28 px images: the shift is in those pixels and the mirrored
 *   classes are Fashion-MNIST's), for the common corruptions (Hendrycks & Dietterich 2019,
 *   https://arxiv.org/abs/1903.12261);
 * - adversarial fine-tuning with TeCoA (Mao et al. 2023, https://arxiv.org/abs/2212.07016;
 *   tecoa.ts: any labelled dataset), for the attacks.
 * `compareRobustness` lines up two audit results made with the same settings on the same data;
 * both clean and robust accuracy are reported, since robustness usually costs clean accuracy.
 */
import type { AugmentConfig } from "../../data/augment";
import type { RobustnessResult } from "./audit";

/**
 * Augmentation for robustness (Fashion-MNIST training): shifts up to 3 px (a random crop of the zero-padded image), mirror
 * images of the left-right symmetric classes, rotations up to 15 degrees, contrast factor in
 * [0.7, 1.3], gaussian noise with std 0.05 of the range.
 */
export const ROBUSTNESS_AUGMENT: Readonly<AugmentConfig> = Object.freeze({
  shift: 3,
  flip: 0.5,
  flipClasses: [0, 1, 2, 3, 4, 6, 8],
  rotate: 15,
  contrast: 0.3,
  noise: 0.05,
});

export interface RemedyRow {
  metric: string;
  before: number;
  after: number;
  /** after - before. */
  change: number;
}

export interface RemedyComparison {
  remedy: string;
  /** What each side is (e.g. a checkpoint path). */
  beforeLabel: string;
  afterLabel: string;
  rows: RemedyRow[];
}

function fmtEps(norm: string, eps: number): string {
  return norm === "linf" ? `${+(eps * 255).toFixed(2)}/255` : `${eps}`;
}

/**
 * Before/after table of two audits run with the same settings (images, budgets, steps, seed):
 * clean top-1 and matching cosine, the corruption means, each corruption's mean top-1, every
 * attack's robust top-1 and the targeted success rates.
 */
export function compareRobustness(
  remedy: string,
  before: RobustnessResult,
  after: RobustnessResult,
  labels: { before?: string; after?: string } = {},
): RemedyComparison {
  const fn = "compareRobustness";
  for (const k of ["dataset", "images", "attackImages", "imageSize", "pgdSteps", "apgdSteps", "seed"] as const) {
    if (before.config[k] !== after.config[k]) throw new RangeError(`${fn}: the audits differ in ${k} (${before.config[k]} vs ${after.config[k]}); run both with the same settings`);
  }
  for (const k of ["linfEps", "l2Eps", "corruptions", "severities", "attacks"] as const) {
    if (JSON.stringify(before.config[k]) !== JSON.stringify(after.config[k])) {
      throw new RangeError(`${fn}: the audits differ in ${k} (${JSON.stringify(before.config[k])} vs ${JSON.stringify(after.config[k])}); run both with the same settings`);
    }
  }
  const rows: RemedyRow[] = [];
  const add = (metric: string, b: number, a: number) => rows.push({ metric, before: b, after: a, change: a - b });
  add("clean top-1", before.clean.top1, after.clean.top1);
  add("clean matching cosine", before.clean.matchCosine, after.clean.matchCosine);
  add("clean R@1 image->caption", before.clean.recallAt1ImageToText, after.clean.recallAt1ImageToText);
  add("corrupted top-1 (mean)", before.corruptionSummary.meanTop1, after.corruptionSummary.meanTop1);
  add("corrupted / clean top-1", before.corruptionSummary.relativeTop1, after.corruptionSummary.relativeTop1);
  add("corrupted matching cosine (mean)", before.corruptionSummary.meanMatchCosine, after.corruptionSummary.meanMatchCosine);
  before.corruptionSummary.perCorruption.forEach((b, i) => add(`${b.name} top-1 (mean over severities)`, b.meanTop1, after.corruptionSummary.perCorruption[i].meanTop1));
  for (const b of before.attacks) {
    if (b.eps === 0) continue;
    const a = after.attacks.find((x) => x.attack === b.attack && x.norm === b.norm && x.eps === b.eps && x.steps === b.steps);
    if (a) add(`${b.attack.toUpperCase()} ${b.norm} eps=${fmtEps(b.norm, b.eps)} top-1`, b.top1, a.top1);
  }
  for (const b of before.targetedAttacks) {
    const a = after.targetedAttacks.find((x) => x.norm === b.norm && x.eps === b.eps && x.steps === b.steps);
    if (a) add(`targeted PGD ${b.norm} eps=${fmtEps(b.norm, b.eps)} success`, b.successRate, a.successRate);
  }
  return { remedy, beforeLabel: labels.before ?? "before", afterLabel: labels.after ?? "after", rows };
}
