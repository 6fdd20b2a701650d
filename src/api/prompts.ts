/**
 * `prompts` namespace of the public API (`cl.prompts.trainCoOp(...)`): the prompt bank, template
 * sensitivity, paraphrases, template selection, CoOp and the prompt study's figures. The study
 * itself (`runPromptStudy`, `promptStudySection`) and the template sets are on the top level.
 */
export { encodePromptBank, encodeImageFeatures, featureSetOf, templateCosines, ensembleScores, ensembleClassWeights } from "../prompts/prompt_bank";
export type { PromptBank, FeatureSet, PromptBankOptions } from "../prompts/prompt_bank";
export { promptSensitivity } from "../prompts/sensitivity";
export type { SensitivityResult, SensitivityOptions, TemplateAccuracy } from "../prompts/sensitivity";
export { paraphraseRobustness, swapSynonyms, swapAdjacentWords, addTypo } from "../prompts/paraphrase";
export type { ParaphraseRow, ParaphraseOptions, ParaphraseKind } from "../prompts/paraphrase";
export { greedyTemplateSelection, weightedTemplateEnsemble, selectionWeights } from "../prompts/selection";
export type { GreedySelection, SelectionOptions, WeightedEnsemble, WeightedEnsembleOptions } from "../prompts/selection";
export { trainCoOp, coopClassWeights } from "../prompts/coop";
export type { CoOpOptions, CoOpResult, CoOpModel } from "../prompts/coop";
export { templateAccuracyFigure, fewShotFigure } from "../report/sections/prompts";
