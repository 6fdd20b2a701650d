/**
 * cliplab's public API. Only what is exported here is supported; everything else is internal.
 */

// Compute backend
export { initBackend, currentBackend } from "./backend";
export type { BackendChoice, BackendName } from "./backend";

// Model
export { Clip } from "./model/clip";
export type { ClipOutput, StateTensor } from "./model/clip";
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
export { loadFashionMnist, FASHION_MNIST_CLASSES, CaptionSet, Batcher, augmentBatch, readIdx } from "./data";
export { exportSplitArrow, importSplitArrow, exportEmbeddingsArrow, importEmbeddingsArrow } from "./data";
export type { LabelledImages, Batch, AugmentConfig } from "./data";

// Training
export { trainClip, TrainingDivergedError } from "./train/trainer";
export type { TrainCallbacks, TrainResult, StepEvent, EpochEvent } from "./train/trainer";
export { TRAIN_DEFAULTS } from "./train/options";
export type { TrainOptions } from "./train/options";
export { AdamW } from "./train/adamw";
export { cosineLr } from "./train/schedule";
export { evaluateClip } from "./train/evaluate";

// Evaluation
export { zeroShotClassifier, ensembleWeights } from "./eval/zero_shot";
export type { ZeroShotClassifier, ZeroShotEvaluation } from "./eval/zero_shot";
export { recallAtK, recallAtKByLabel, medianRank, retrievalMetrics } from "./eval/retrieval";
export { modalityGap } from "./eval/modality_gap";

// Utilities
export { Random } from "./util/random";
