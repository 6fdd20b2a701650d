/**
 * Options and result types of the robustness audit (audit.ts): corruptions
 * (https://arxiv.org/abs/1903.12261), FGSM (https://arxiv.org/abs/1412.6572), PGD
 * (https://arxiv.org/abs/1706.06083), APGD-CE and APGD-T (https://arxiv.org/abs/2003.01690), and
 * corruption errors against a baseline (mce.ts). Results are plain JSON-safe objects.
 *
 * Budgets: L-inf budgets are per pixel value (images in [0, 1]) and apply as given at any size.
 * L2 budgets are given for a reference input of 3x32x32 = 3072 values (RobustBench's CIFAR-10 L2
 * convention, eps = 0.5); for the model's input of d = S*S*3 values the audit applies
 * eps * sqrt(d / 3072), the same per-value perturbation energy, and reports both.
 */
import type { SkippedItem } from "../../data/dataset";
import type { Severity } from "./corruptions";
import type { AttackNorm } from "./attacks";
import type { CorruptionErrorComparison } from "./mce";

/** The attacks the audit runs (`--attacks`). */
export const ATTACK_NAMES = ["fgsm", "pgd", "apgd-ce", "apgd-t"] as const;
export type AttackName = (typeof ATTACK_NAMES)[number];

export interface RobustnessAuditOptions {
  /** Images for the clean and corrupted metrics (the first `limit` the dataset yields); default 1000. */
  limit?: number;
  /** The first `attackLimit` of those are attacked; default 500. */
  attackLimit?: number;
  /**
   * Corruptions to run: ids and set names ("imagenet-c", "imagenet-c-extra", "cliplab"; see
   * corruptions.ts); default ImageNet-C's 15.
   */
  corruptions?: string[];
  /** Severities to run; default 1-5. */
  severities?: Severity[];
  /**
   * L-inf budgets in [0, 1] pixel units; 0 is always added (the sanity check). Default 0, 2/255,
   * 4/255, 8/255, 16/255: Fashion-MNIST models need larger budgets than ImageNet ones (1-4/255).
   */
  linfEps?: number[];
  /**
   * Nominal L2 budgets per image, for a 3x32x32 reference input (3072 values); the audit applies
   * eps * sqrt(S*S*3 / 3072) at the model's input size S. 0 is always added. Default 0, 0.25,
   * 0.5, 1, 2.
   */
  l2Eps?: number[];
  /** Attacks to run at every budget; default all four. An empty list skips the attack phase. */
  attacks?: AttackName[];
  /** PGD steps; default 10. */
  pgdSteps?: number;
  /** APGD iterations per run (AutoAttack uses 100); default 20. */
  apgdSteps?: number;
  /** APGD-CE random restarts (each on the images not yet fooled); default 1 (AutoAttack's standard version). */
  apgdRestarts?: number;
  /** APGD-T target classes, most likely first; default 9 (min with classes - 1). */
  apgdTargets?: number;
  /** PGD steps of the "more steps do not help" check, at the median non-zero eps of each norm; default 2 * pgdSteps. */
  moreSteps?: number;
  /** PGD step size = factor * eps / steps (Madry et al. use 2.5); default 2.5. */
  stepSizeFactor?: number;
  /** Also run targeted PGD towards a random wrong class (default true). */
  targeted?: boolean;
  /**
   * Adversarial examples kept for the report: the first correctly classified attacked images under
   * L-inf PGD (else the first attack run of APGD-CE, APGD-T, FGSM) at the upper median of the
   * non-zero L-inf budgets; default 4.
   */
  examples?: number;
  /**
   * Images per encoder call and per attack (forward + backward) batch; default from the model
   * config and the batched encoder's memory budget (src/eval/encode.ts), smaller for attacks,
   * whose backward pass keeps every layer's activations.
   */
  batchSize?: number;
  seed?: number;
  /** Slack of the PGD >= FGSM, APGD >= PGD, monotone and more-steps checks, in accuracy (fraction); default 0.005. */
  tolerance?: number;
  /**
   * Class names in label order; default the dataset's (for Fashion-MNIST without --classnames:
   * its caption set's canonical names, as before).
   */
  classNames?: readonly string[];
  /**
   * Zero-shot templates, ensembled; default the dataset's (Fashion-MNIST: its caption set's
   * evaluation templates; WebDataset: zeroshot_classification_templates.txt), else CLIP's plain
   * "a photo of a {}.".
   */
  templates?: readonly string[];
  /** Go on past unreadable images (each reported through `onSkip` and counted in the result). */
  skipBadImages?: boolean;
  onSkip?: (item: SkippedItem) => void;
  /** Progress, for a CLI bar or a notebook. */
  onProgress?: (event: AuditProgress) => void;
}

export interface AuditProgress {
  phase: "clean" | "corruptions" | "attacks";
  done: number;
  total: number;
  /** What just finished, e.g. "blur 3" or "pgd linf eps=0.0078". */
  label: string;
}

/** Metrics of one set of (possibly corrupted) images. */
export interface ImageSetMetrics {
  /** Zero-shot top-1 accuracy. */
  top1: number;
  /** Mean cosine between each image and its true class's embedding (ensembled evaluation prompts). */
  matchCosine: number;
  /** Mean cosine between each image and its own generated caption. */
  captionCosine: number;
  /** Recall@1 of image -> caption and caption -> image over the images and their captions. */
  recallAt1ImageToText: number;
  recallAt1TextToImage: number;
}

export interface CorruptionRow extends ImageSetMetrics {
  name: string;
  severity: number;
}

export interface CorruptionSummary {
  /** Means over every corruption x severity cell. */
  meanTop1: number;
  meanMatchCosine: number;
  meanRecallAt1: number;
  /** Those means divided by the clean value. */
  relativeTop1: number;
  relativeMatchCosine: number;
  relativeRecallAt1: number;
  perCorruption: { name: string; meanTop1: number; relativeTop1: number; meanMatchCosine: number }[];
}

export interface AttackRow {
  /**
   * The attack; "worst-case": an image counts as robust only if it survived every attack run at
   * this budget (the ensemble's robust accuracy, as AutoAttack reports it).
   */
  attack: AttackName | "worst-case";
  norm: AttackNorm;
  /** The budget as given (L2: for the 3072-value reference input). */
  eps: number;
  /** The budget applied to the model's input (L-inf: eps; L2: eps * sqrt(d / 3072)). */
  appliedEps: number;
  /** Gradient steps (1 for FGSM; APGD: iterations per run; worst-case: 0). */
  steps: number;
  /** Robust zero-shot top-1 on the attacked images. */
  top1: number;
  /** Fraction of the clean-correct images that the attack makes wrong. */
  successRate: number;
  /** Mean cosine of the attacked images with their true class (worst-case: each image's lowest over the attacks). */
  matchCosine: number;
  /** Clean matchCosine (same images) minus this one. */
  cosineDrop: number;
  /** Size of the perturbations made, max over the images: what the budget check reads. */
  perturbation: { maxLinf: number; maxL2: number };
}

export interface TargetedRow {
  attack: "pgd";
  norm: AttackNorm;
  eps: number;
  appliedEps: number;
  steps: number;
  /** Fraction of images classified as their target class after the attack. */
  successRate: number;
  /** Mean cosine of the attacked images with their target class (clean value in `cleanTargetCosine`). */
  targetCosine: number;
  cleanTargetCosine: number;
  top1: number;
}

export interface SanityCheck {
  pass: boolean;
  /** What was compared; every item has its own pass flag and the numbers. */
  details: { label: string; values: Record<string, number>; pass: boolean }[];
}

export interface SanityChecks {
  epsZeroEqualsClean: SanityCheck;
  pgdAtLeastFgsm: SanityCheck;
  /** APGD-CE and APGD-T at least as strong as PGD at every budget of both norms (within tolerance). */
  apgdAtLeastPgd: SanityCheck;
  monotoneInEps: SanityCheck;
  moreStepsNoHelp: SanityCheck;
  tolerance: number;
}

export interface TopCaption {
  caption: string;
  probability: number;
}

/** One attacked image next to its original, with the classifier's top captions on both. */
export interface AdversarialExample {
  /** Position in the audited images, and the item's key (path, row, shard key). */
  index: number;
  key: string;
  label: number;
  className: string;
  attack: AttackName;
  norm: AttackNorm;
  eps: number;
  /** Size of the pixels below: the model's input, area-averaged down to at most PREVIEW_SIDE. */
  height: number;
  width: number;
  channels: number;
  /** HWC values in [0, 1]. */
  original: number[];
  adversarial: number[];
  cleanTop: TopCaption[];
  adversarialTop: TopCaption[];
}

/** One image under every corruption at one severity (for the report). */
export interface CorruptionPreview {
  severity: number;
  /** The first audited image's key. */
  key: string;
  height: number;
  width: number;
  channels: number;
  /** name -> HWC values in [0, 1]; "clean" included. */
  images: { name: string; pixels: number[] }[];
}

export interface RobustnessResult {
  config: {
    /** The dataset's spec (e.g. `imagefolder:photos`) and short name. */
    dataset: string;
    datasetName: string;
    images: number;
    attackImages: number;
    retrievalImages: number;
    /** Retrieval captions (the images' own, or one generated per image). */
    retrievalCaptions: number;
    /** The model's input side S and how images were brought to it (the model transform). */
    imageSize: number;
    resizeMode: string;
    /** Values per attacked input, d = S * S * 3. */
    inputValues: number;
    corruptions: string[];
    severities: number[];
    linfEps: number[];
    /** Nominal L2 budgets (for the reference input) ... */
    l2Eps: number[];
    /** ... the reference input's size (3072 = 3x32x32) ... */
    l2ReferenceValues: number;
    /** ... sqrt(inputValues / l2ReferenceValues) ... */
    l2Scale: number;
    /** ... and the budgets applied, l2Eps * l2Scale. */
    l2EpsApplied: number[];
    attacks: AttackName[];
    pgdSteps: number;
    apgdSteps: number;
    apgdRestarts: number;
    apgdTargets: number;
    moreSteps: number;
    stepSizeFactor: number;
    targeted: boolean;
    seed: number;
    classNames: string[];
    templates: string[];
  };
  clean: ImageSetMetrics;
  corruptions: CorruptionRow[];
  corruptionSummary: CorruptionSummary;
  /** Clean metrics of the attacked subset (the first `attackImages`). */
  attackClean: { top1: number; matchCosine: number; n: number };
  attacks: AttackRow[];
  /** The "more steps" PGD runs of the sanity check (also in `sanity`). */
  moreStepsAttacks: AttackRow[];
  targetedAttacks: TargetedRow[];
  sanity: SanityChecks;
  examples: AdversarialExample[];
  corruptionPreview: CorruptionPreview | null;
  /** Corruption errors against a baseline model (compareCorruptionErrors), when one was given. */
  corruptionErrors?: CorruptionErrorComparison;
  /** Items left out under `skipBadImages`, and why. */
  skipped: number;
  skippedItems: SkippedItem[];
  seconds: { read: number; clean: number; corruptions: number; attacks: number; total: number };
}

/** Options with defaults filled in (resolveAuditOptions). */
export type ResolvedAuditOptions = Required<Omit<RobustnessAuditOptions, "onProgress" | "onSkip" | "classNames" | "templates" | "batchSize">> & {
  batchSize?: number;
  classNames?: readonly string[];
  templates?: readonly string[];
  onSkip?: RobustnessAuditOptions["onSkip"];
  onProgress?: RobustnessAuditOptions["onProgress"];
};
