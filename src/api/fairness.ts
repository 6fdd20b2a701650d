/**
 * `fairness` namespace of the public API (`cl.fairness.trainPlanted(...)`): the ranking, WEAT and
 * group metrics, the planted-bias study, the remedies, and the shipped query and label sets. The
 * audit itself (`runFairnessAudit`, `fairnessSection`) is on the top level; the bootstrap and
 * permutation tests are in `stats`.
 */
export { maxSkewAtK, ndkl, skewAtK } from "../audit/fairness/metrics";
export { weatEffectSize, weatFromScores, associationScores } from "../audit/fairness/weat";
export type { WeatOptions, WeatResult } from "../audit/fairness/weat";
export { demographicParityDifference, equalizedOddsGap, equalizedOddsRates, perGroupAccuracy, accuracyGap, assignmentRates } from "../audit/fairness/group_metrics";
export type { GroupMetricOptions, EqualizedOddsRates } from "../audit/fairness/group_metrics";
export { rankingBias, RANKING_TARGETS, DEFAULT_RANKING_K } from "../audit/fairness/ranking_bias";
export type { RankingBiasOptions, RankingBiasResult, RankingMeasure, RankingTarget, RankingMetric, RankingAttribute } from "../audit/fairness/ranking_bias";
export { groupTable } from "../audit/fairness/group_table";
export type { AttributeTable, GroupTableRow, GroupSpread } from "../audit/fairness/group_table";
export { zeroShotAccuracy, classEmbeddings } from "../audit/fairness/audit";
export type { FairnessAuditOptions, FairnessAuditResult, ProbeResult, GroupRow, AuditModel, AttributeSets, RankingProbeOptions } from "../audit/fairness/audit";
export type { GroupSource, ColumnGroups, PlantedGroups } from "../audit/fairness/groups";
export { wordProbeOptions, wordDistractors } from "../audit/fairness/word_probes";
export type { WordProbes } from "../audit/fairness/word_probes";
export { loadQuerySet, listQuerySets, DEFAULT_QUERY_SET } from "../audit/fairness/queries";
export type { QuerySet } from "../audit/fairness/queries";
export { loadHarmfulLabels, listHarmfulLabelSets, DEFAULT_HARMFUL_LABELS } from "../audit/fairness/distractors";
export type { Distractor, HarmfulLabelSet } from "../audit/fairness/distractors";
// Remedies
export { projectionDebias, projectionMatrix, spuriousDirectionsFromPrompts } from "../audit/fairness/debias";
export { balancedResample, groupInvarianceRegularizer } from "../audit/fairness/remedies";
export type { BalancedSample, GroupInvarianceOptions } from "../audit/fairness/remedies";
// The planted-bias study
export { plantBias, plantedTestSet, plantedCaptionSet, PLANTED_DEFAULTS } from "../audit/fairness/planted_bias";
export type { PlantedBiasOptions, ResolvedPlantedBias, PlantedTrainingData, GroupedTestSet } from "../audit/fairness/planted_bias";
export { trainPlanted, auditPlanted, plantedAuditOptions, plantedSpuriousPairs, plantedSpuriousDirection, TRAINING_REMEDIES } from "../audit/fairness/study";
export type { PlantedRunOptions, PlantedRun, PlantedAuditResult, TrainingRemedy } from "../audit/fairness/study";
export { fairnessStudySection, STUDY_PROBES } from "../report/sections/fairness";
export type { StudyRun } from "../report/sections/fairness";
