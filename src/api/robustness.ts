/**
 * `robustness` namespace of the public API (`import * as cl from "./src/index"; cl.robustness.corrupt(...)`):
 * corruptions, attacks, the attack objectives, corruption errors and the remedies. The audit itself
 * (`auditRobustness`, `robustnessSection`) is on the top level.
 */
export { corrupt, listCorruptions, listCorruptionSets, corruptionSpecs, resolveCorruptions, scaledParameters, CORRUPTION_SETS } from "../audit/robustness/corruptions";
export type { Severity, CorruptionSpec, CorruptionSetName, CorruptionParameter } from "../audit/robustness/corruptions";
export { fgsm, pgd, inputGradient, perturbationNorms } from "../audit/robustness/attacks";
export type { AttackLoss, AttackNorm, FgsmOptions, PgdOptions } from "../audit/robustness/attacks";
export { apgd, apgdCe, apgdT } from "../audit/robustness/apgd";
export type { ApgdObjective, ApgdOptions, ApgdTargetedOptions, ApgdOutcome, Logits01 } from "../audit/robustness/apgd";
export { zeroShotLoss, zeroShotLogitsFn } from "../audit/robustness/objective";
export type { ZeroShotLossOptions } from "../audit/robustness/objective";
export { ROBUSTNESS_DEFAULTS, ATTACK_NAMES } from "../audit/robustness/audit";
export type { RobustnessAuditOptions, RobustnessResult, AuditProgress, AttackRow, AttackName, CorruptionRow, CorruptionSummary, SanityChecks } from "../audit/robustness/audit";
export { compareCorruptionErrors } from "../audit/robustness/mce";
export type { CorruptionErrorComparison, CorruptionError } from "../audit/robustness/mce";
export { tecoaFineTune, TECOA_DEFAULTS } from "../audit/robustness/tecoa";
export type { TecoaOptions, TecoaResult, TecoaStep } from "../audit/robustness/tecoa";
export { compareRobustness, ROBUSTNESS_AUGMENT } from "../audit/robustness/remedies";
export type { RemedyComparison, RemedyRow } from "../audit/robustness/remedies";
