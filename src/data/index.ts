/** Data: Fashion-MNIST loading, captions, augmentation, seeded batches and Arrow export. */
export { readIdx, encodeIdx, DataFileError } from "./idx";
export type { IdxArray, ReadIdxOptions } from "./idx";
export {
  FASHION_MNIST_CLASSES,
  DEFAULT_FASHION_MNIST_DIR,
  FASHION_MNIST_FILES,
  loadFashionMnist,
  checkLabelledImages,
} from "./fashion_mnist";
export type { LabelledImages, FashionMnistSplit, LoadFashionMnistOptions } from "./fashion_mnist";
export {
  CaptionSet,
  imageAttributes,
  computeAttributeThresholds,
  loadAttributeThresholds,
  attributeThresholdsToJson,
  parseCaptionSpec,
  captionWords,
  captionVocabulary,
  ATTRIBUTE_KEYS,
  OBJECT_PIXEL_MIN,
  DEFAULT_CAPTIONS_FILE,
  DEFAULT_ATTRIBUTE_THRESHOLDS_FILE,
} from "./captions";
export type { ImageAttributes, AttributeThresholds, AttributeKey, CaptionSpec, CaptionSetOptions } from "./captions";
export { augmentImage, augmentBatch, validateAugmentConfig, AUGMENT_KEYS } from "./augment";
export type { AugmentConfig, ResolvedAugmentConfig, AugmentImageOptions } from "./augment";
export { Batcher } from "./batcher";
export { mixSeed } from "../util/random";
export type { Batch, BatcherOptions, BatcherState } from "./batcher";
export { exportSplitArrow, importSplitArrow, exportEmbeddingsArrow, importEmbeddingsArrow } from "./arrow_dataset";
export type { ArrowSplit, EmbeddingRows, ExportSplitOptions, PixelFormat } from "./arrow_dataset";
