/**
 * cliplab's public API: what a notebook or a program needs. Only what is exported here is
 * supported; everything else is internal. In a notebook: `import * as cl from "./src/index";`.
 *
 * The everyday API is on the top level; the specialised parts are namespaces:
 *   robustness  corruptions, attacks (FGSM, PGD, APGD), corruption errors, TeCoA and augmentation remedies
 *   fairness    ranking / WEAT / group metrics, the planted-bias study, debiasing and training remedies
 *   prompts     prompt bank, template sensitivity and selection, paraphrases, CoOp
 *   stats       bootstrap and binomial intervals, permutation tests, classification and calibration metrics
 *   formats     safetensors, Arrow, ONNX export, IDX
 *
 * The value names (namespaces as `ns.name`) are snapshotted in test/api/exports.snapshot.txt, so a
 * change to the public surface shows as a diff there. Every relative import names a file (tslab).
 */

// Compute backend
export { initBackend, currentBackend, shutdownBackend } from "./backend/select";
export type { BackendChoice, BackendName, InitOptions } from "./backend/select";

// Model
export { Clip } from "./model/clip";
export type { ClipOutput, EncodeOptions, StateTensor } from "./model/clip";
export { validateConfig, modelTransform, ConfigError } from "./model/config";
export type { ClipConfig, VisionConfig, TextConfig } from "./model/config";
export { listModels, getModelConfig, addModelConfig, resolveModelConfig } from "./model/registry";
export { OnnxEngine } from "./engine/onnx";
export type { OnnxEngineOptions } from "./engine/onnx";
export type { EmbeddingEngine } from "./engine/engine";

// Checkpoints
export { loadCheckpoint, saveCheckpoint, readCheckpointConfig, writeHfConfig, CheckpointError } from "./io/checkpoint";
export type { LoadCheckpointOptions, SaveCheckpointOptions } from "./io/checkpoint";

// Text and prompt templates
export { tokenize, tokenizeToIds, SOT_TOKEN, EOT_TOKEN } from "./text/tokenize";
export { ClipBpe } from "./text/bpe";
export { listTemplateSets, loadTemplateSet, checkPromptsFit } from "./text/templates";
export type { TemplateSet } from "./text/templates";
export { PLAIN_TEMPLATES } from "./eval/evaluate_dataset";

// Images
export { decodeImage, ImageDecodeError } from "./image/decode";
export type { RGBImage } from "./image/decode";
export { preprocessImage, loadImages, normalizePixels, CLIP_MEAN, CLIP_STD } from "./image/preprocess";
export type { ImageTransform } from "./image/transform";

// Datasets
export { openDataset, SOURCE_KINDS } from "./data/open";
export type { DatasetOptions, SourceKind } from "./data/open";
export { DataError } from "./data/dataset";
export type { Dataset, DataItem, SkippedItem } from "./data/dataset";
export { prepareSet } from "./data/stream";
export type { StreamOptions } from "./data/stream";
export { preparedItems } from "./data/prepared";
export type { PreparedSet, PreparedImage } from "./data/prepared";
export { isFashionMnist } from "./data/sources/fashion_mnist";
export { loadFashionMnist, FASHION_MNIST_CLASSES, CaptionSet, imageAttributes, Batcher, augmentBatch } from "./data/index";
export type { LabelledImages, Batch, AugmentConfig, ImageAttributes } from "./data/index";

// Losses
export { clipLoss, clipLogits, infoNceFromLogits } from "./loss/info_nce";
export { l2NormalizeRows } from "./util/tensor";
export { sigLipLoss } from "./loss/siglip";

// Training
export { trainClip, TrainingDivergedError } from "./train/trainer";
export type { TrainCallbacks, TrainResult, StepEvent, EpochEvent } from "./train/trainer";
export { TRAIN_DEFAULTS } from "./train/options";
export type { TrainOptions } from "./train/options";
export type { StepRecord, EvalRecord } from "./train/run_state";
export { readTrainingHistory } from "./train/history";
export type { TrainingHistory } from "./train/history";
export { AdamW } from "./train/adamw";
export type { AdamWOptions } from "./train/adamw";
export { cosineLr } from "./train/schedule";
export { evaluateClip } from "./train/evaluate";

// Evaluation
export { encodeImages, encodeTexts } from "./eval/encode";
export type { FeatureMatrix, EncodedImages, EncodeProgress } from "./eval/encode";
export { zeroShotClassifier, ensembleWeights } from "./eval/zero_shot";
export type { ZeroShotClassifier, ZeroShotEvaluation } from "./eval/zero_shot";
export { evaluateDataset } from "./eval/evaluate_dataset";
export type { DatasetEvalOptions, DatasetEvaluation } from "./eval/evaluate_dataset";
export { recallAtK, recallAtKByLabel, medianRank, retrievalMetrics } from "./eval/retrieval";
export type { RetrievalMetrics, RetrievalTargets } from "./eval/retrieval";
export { modalityGap } from "./eval/modality_gap";
export { trainLinearProbe } from "./eval/linear_probe";
export type { LinearProbe, LinearProbeOptions } from "./eval/linear_probe";
export { sampleFewShot } from "./eval/few_shot";
export { temperatureSweep, gapShiftSweep } from "./eval/gap_temperature";
export type { TemperatureRow, GapShiftRow } from "./eval/gap_temperature";

// Studies and audits (their specialised parts: the namespaces below)
export { runPromptStudy } from "./prompts/study";
export type { PromptStudyOptions, PromptStudyResult } from "./prompts/study";
export { promptStudySection } from "./report/sections/prompts";
export { auditRobustness } from "./audit/robustness/audit";
export type { RobustnessAuditOptions, RobustnessResult } from "./audit/robustness/audit";
export { robustnessSection } from "./report/sections/robustness";
export { runFairnessAudit } from "./audit/fairness/audit";
export type { FairnessAuditOptions, FairnessAuditResult } from "./audit/fairness/audit";
export type { GroupSource } from "./audit/fairness/groups";
export { fairnessSection } from "./report/sections/fairness";

// Figures
export type { Figure, PlotlyTrace } from "./viz/figure";
export { embeddingUmap, embeddingScatter } from "./viz/embedding_map";
export type { EmbeddingGroup, ScatterGroup, EmbeddingMapInput, EmbeddingUmapResult, Modality } from "./viz/embedding_map";
export { umapLayout, UMAP_DEFAULTS } from "./viz/umap_layout";
export type { UmapOptions, UmapLayout, UmapProgress } from "./viz/umap_layout";
export { similarityHeatmap } from "./viz/similarity_heatmap";
export { confusionMatrix } from "./viz/confusion_matrix";
export { trainingCurves } from "./viz/training_curves";
export { barWithCI } from "./viz/bar_ci";
export { encodePng, pngDataUrl, imageThumbnails } from "./viz/png";
export type { ThumbnailOptions } from "./viz/png";

// Notebook display
export { showFigure, showTable, showImage, showSection, liveFigure } from "./notebook/display";
export type { TableLike } from "./notebook/display";

// Reports: sections, the measures they show, rendering, and the `cliplab report` pipeline
export type { Report, ReportSection, ReportBlock, TextBlock, FigureBlock, TableBlock, TableCell, ImageBlock } from "./report/types";
export { renderReport, writeReport } from "./report/render";
export { toTableBlock } from "./notebook/display";
export { trainingSection, embeddingSection, zeroShotSection, retrievalSection } from "./report/sections/pipeline";
export type { EmbeddingSectionInput, RetrievalSectionInput, ZeroShotSectionOptions, CaptionOrigin } from "./report/sections/pipeline";
export { encodePairs, pairStats, retrievalOf, cosineTable } from "./report/pipeline_measure";
export type { PairStats, RetrievalMeasure } from "./report/pipeline_measure";
export { runPipelineReport } from "./report/pipeline";
export type { PipelineReportOptions, PipelineCallbacks, PipelineSummary } from "./report/pipeline";

// Utilities
export { Random } from "./util/random";

// Namespaces
export * as robustness from "./api/robustness";
export * as fairness from "./api/fairness";
export * as prompts from "./api/prompts";
export * as stats from "./api/stats";
export * as formats from "./api/formats";
