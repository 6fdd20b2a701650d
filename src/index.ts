/**
 * cliplab's public API. Only what is exported here is supported; everything else is internal.
 */

// Compute backend
export { initBackend, currentBackend, shutdownBackend } from "./backend/select";
export type { BackendChoice, BackendName } from "./backend/select";

// Model
export { Clip } from "./model/clip";
export type { ClipOutput, EncodeOptions, StateTensor } from "./model/clip";
export { validateConfig, visionTower, visionHeads, ConfigError } from "./model/config";
export type { ClipConfig, VisionConfig, TextConfig } from "./model/config";
export { listModels, getModelConfig, addModelConfig, resolveModelConfig } from "./model/registry";

// Checkpoints and files
export { loadCheckpoint, saveCheckpoint, readCheckpointConfig, writeHfConfig, CheckpointError } from "./io/checkpoint";
export type { LoadCheckpointOptions, SaveCheckpointOptions } from "./io/checkpoint";
export { openSafetensors, writeSafetensors, SafetensorsError } from "./io/safetensors";
export { makeTable, vectorColumn, writeArrowFile, readArrowFile, readVectorColumn } from "./io/arrow";

// Text
export { tokenize, tokenizeToIds, SOT_TOKEN, EOT_TOKEN } from "./text/tokenize";
export { ClipBpe } from "./text/bpe";

// Images
export { decodeImage } from "./image/decode";
export { preprocessImage, loadImages, normalizePixels, CLIP_MEAN, CLIP_STD } from "./image/preprocess";

// Losses
export { clipLoss, clipLogits, infoNceFromLogits } from "./loss/info_nce";
export { sigLipLoss } from "./loss/siglip";

// Data
export { loadFashionMnist, FASHION_MNIST_CLASSES, CaptionSet, Batcher, augmentBatch, readIdx } from "./data/index";
export { exportSplitArrow, importSplitArrow, exportEmbeddingsArrow, importEmbeddingsArrow } from "./data/index";
export type { LabelledImages, Batch, AugmentConfig } from "./data/index";

// Training
export { trainClip, TrainingDivergedError } from "./train/trainer";
export type { TrainCallbacks, TrainResult, StepEvent, EpochEvent } from "./train/trainer";
export { TRAIN_DEFAULTS } from "./train/options";
export type { TrainOptions } from "./train/options";
export { AdamW } from "./train/adamw";
export type { AdamWOptions } from "./train/adamw";
export { cosineLr } from "./train/schedule";
export { evaluateClip } from "./train/evaluate";

// Evaluation
export { zeroShotClassifier, ensembleWeights } from "./eval/zero_shot";
export type { ZeroShotClassifier, ZeroShotEvaluation } from "./eval/zero_shot";
export { recallAtK, recallAtKByLabel, medianRank, retrievalMetrics } from "./eval/retrieval";
export { modalityGap } from "./eval/modality_gap";
export { classificationMetrics, expectedCalibrationError, fitLogitScale, softmaxRows } from "./eval/classifier_metrics";
export type { ClassificationMetrics, ReliabilityBin } from "./eval/classifier_metrics";
export { bootstrapMean, bootstrapCi } from "./eval/bootstrap";
export type { BootstrapOptions } from "./eval/bootstrap";
export { trainLinearProbe } from "./eval/linear_probe";
export type { LinearProbe, LinearProbeOptions } from "./eval/linear_probe";
export { sampleFewShot } from "./eval/few_shot";
export { temperatureSweep, gapShiftSweep } from "./eval/gap_temperature";
export type { TemperatureRow, GapShiftRow } from "./eval/gap_temperature";

// Prompts: template sets, sensitivity, selection, CoOp, the prompt study and its report section
export { listTemplateSets, loadTemplateSet, checkPromptsFit, TEMPLATE_DIR } from "./prompts/templates";
export type { TemplateSet } from "./prompts/templates";
export { encodePromptBank, encodeImageFeatures, templateCosines, ensembleScores, ensembleClassWeights } from "./prompts/prompt_bank";
export type { PromptBank, FeatureSet } from "./prompts/prompt_bank";
export { promptSensitivity } from "./prompts/sensitivity";
export type { SensitivityResult } from "./prompts/sensitivity";
export { paraphraseRobustness, swapSynonyms, swapAdjacentWords, addTypo } from "./prompts/paraphrase";
export { greedyTemplateSelection, weightedTemplateEnsemble, carveValidation, selectionWeights } from "./prompts/selection";
export { trainCoOp, coopClassWeights } from "./prompts/coop";
export type { CoOpOptions, CoOpResult } from "./prompts/coop";
export { runPromptStudy } from "./prompts/study";
export type { PromptStudyOptions, PromptStudyResult } from "./prompts/study";
export { promptStudySection, templateAccuracyFigure, fewShotFigure } from "./prompts/report";

// Audits
export { corrupt, listCorruptions, listCorruptionSets, corruptionSpecs, resolveCorruptions, scaledParameters, CORRUPTION_SETS } from "./audit/robustness/corruptions";
export type { Severity, CorruptionSpec, CorruptionSetName, CorruptionParameter } from "./audit/robustness/corruptions";
export { fgsm, pgd, inputGradient, perturbationNorms } from "./audit/robustness/attacks";
export type { AttackLoss, AttackNorm, FgsmOptions, PgdOptions } from "./audit/robustness/attacks";
export { apgd, apgdCe, apgdT, apgdCheckpoints } from "./audit/robustness/apgd";
export type { ApgdObjective, ApgdOptions, ApgdTargetedOptions, ApgdOutcome, Logits01 } from "./audit/robustness/apgd";
export { toModelInput, zeroShotLoss, zeroShotLogitsFn } from "./audit/robustness/objective";
export { auditRobustness, ROBUSTNESS_DEFAULTS, ATTACK_NAMES } from "./audit/robustness/audit";
export type { RobustnessAuditOptions, RobustnessResult, AttackRow, AttackName, CorruptionRow, SanityChecks } from "./audit/robustness/audit";
export { compareCorruptionErrors } from "./audit/robustness/mce";
export type { CorruptionErrorComparison, CorruptionError } from "./audit/robustness/mce";
export { tecoaFineTune, TECOA_DEFAULTS } from "./audit/robustness/tecoa";
export type { TecoaOptions, TecoaResult } from "./audit/robustness/tecoa";
export { compareRobustness, ROBUSTNESS_AUGMENT } from "./audit/robustness/remedies";
export type { RemedyComparison } from "./audit/robustness/remedies";
export { robustnessSection } from "./audit/robustness/section";
export { maxSkewAtK, ndkl, skewAtK } from "./audit/fairness/metrics";
export { weatEffectSize, weatFromScores, associationScores } from "./audit/fairness/weat";
export type { WeatOptions, WeatResult } from "./audit/fairness/weat";
export { demographicParityDifference, equalizedOddsGap, equalizedOddsRates, perGroupAccuracy, accuracyGap, assignmentRates } from "./audit/fairness/group_metrics";
export type { GroupMetricOptions, EqualizedOddsRates } from "./audit/fairness/group_metrics";
export { permutationTest } from "./audit/fairness/permutation";
export type { PermutationOptions, PermutationResult } from "./audit/fairness/permutation";
export { projectionDebias, projectionMatrix, spuriousDirectionsFromPrompts } from "./audit/fairness/debias";
export { plantBias, plantedTestSet, plantedCaptionSet, stampBorder, PLANTED_DEFAULTS, FRAMED, PLAIN } from "./audit/fairness/planted_bias";
export type { PlantedBiasOptions, ResolvedPlantedBias, PlantedTrainingData, GroupedTestSet } from "./audit/fairness/planted_bias";
export { balancedResample, groupInvarianceRegularizer } from "./audit/fairness/remedies";
export type { BalancedSample, GroupInvarianceOptions } from "./audit/fairness/remedies";
export { runFairnessAudit, zeroShotAccuracy, classEmbeddings } from "./audit/fairness/audit";
export type { GroupSource, ColumnGroups, PlantedGroups } from "./audit/fairness/groups";
export type { FairnessAuditOptions, FairnessAuditResult, ProbeResult, GroupRow, AuditModel, AttributeSets, RankingProbeOptions } from "./audit/fairness/audit";
export { trainPlanted, auditPlanted, plantedAuditOptions, plantedSpuriousPairs, plantedSpuriousDirection, TRAINING_REMEDIES } from "./audit/fairness/study";
export type { PlantedRunOptions, PlantedRun, PlantedAuditResult, TrainingRemedy } from "./audit/fairness/study";
export { rankingBias, rankingOrders, RANKING_TARGETS, RANKING_TARGET_CODES, DEFAULT_RANKING_K } from "./audit/fairness/ranking_bias";
export type { RankingBiasOptions, RankingBiasResult, RankingMeasure, RankingTarget, RankingMetric, RankingAttribute } from "./audit/fairness/ranking_bias";
export { loadQuerySet, listQuerySets, checkQueries, DEFAULT_QUERY_SET } from "./audit/fairness/queries";
export type { QuerySet } from "./audit/fairness/queries";
export { loadHarmfulLabels, listHarmfulLabelSets, DEFAULT_HARMFUL_LABELS } from "./audit/fairness/distractors";
export type { Distractor, HarmfulLabelSet } from "./audit/fairness/distractors";
export { groupTable } from "./audit/fairness/group_table";
export type { AttributeTable, GroupTableRow, GroupSpread } from "./audit/fairness/group_table";
export { wordProbeOptions, wordDistractors } from "./audit/fairness/word_probes";
export { fairnessSection, fairnessStudySection, STUDY_PROBES } from "./audit/fairness/section";
export type { StudyRun } from "./audit/fairness/section";

// Visualisation
export type { Figure, PlotlyTrace } from "./viz/figure";
export { embeddingUmap, embeddingScatter } from "./viz/embedding_map";
export type { EmbeddingGroup, ScatterGroup, EmbeddingMapInput, EmbeddingUmapResult, Modality } from "./viz/embedding_map";
export { umapLayout, UMAP_DEFAULTS } from "./viz/umap_layout";
export type { UmapOptions, UmapLayout, UmapProgress } from "./viz/umap_layout";
export { exactKnn } from "./viz/knn";
export type { KnnResult, KnnOptions } from "./viz/knn";
export { similarityHeatmap } from "./viz/similarity_heatmap";
export { confusionMatrix } from "./viz/confusion_matrix";
export { trainingCurves, readTrainingHistory } from "./viz/training_curves";
export type { TrainingHistory } from "./viz/training_curves";
export { barWithCI } from "./viz/bar_ci";
export { wilsonInterval } from "./eval/intervals";
export type { Estimate, Interval } from "./eval/intervals";
export { encodePng, pngDataUrl, greyThumbnails, imageThumbnails } from "./viz/png";
export type { ThumbnailOptions } from "./viz/png";
export { plotlyText, CLASS_COLORS } from "./viz/text";
export { showFigure, showTable, showImage, showSection, liveFigure, resetPlotly, setNotebookDisplay, toTableBlock } from "./viz/notebook";
export type { NotebookDisplay, TableLike } from "./viz/notebook";

// Reports
export type { Report, ReportSection, ReportBlock, TextBlock, FigureBlock, TableBlock, TableCell, ImageBlock } from "./report/types";
export { renderReport, writeReport } from "./report/render";
export { runPipelineReport } from "./report/pipeline";
export type { PipelineReportOptions, PipelineCallbacks, PipelineSummary } from "./report/pipeline";
export { trainingSection, embeddingSection, zeroShotSection, retrievalSection, skippedSection } from "./report/pipeline_sections";
export type { EmbeddingSectionInput, RetrievalSectionInput, ZeroShotSectionOptions, CaptionOrigin } from "./report/pipeline_sections";

// Utilities
export { Random } from "./util/random";
