/**
 * `formats` namespace of the public API (`cl.formats.readArrowFile(file)`): safetensors, Arrow
 * (tables, dataset splits, embeddings), the ONNX export and IDX files. Checkpoints
 * (`loadCheckpoint`, `saveCheckpoint`) and `OnnxEngine` are on the top level.
 */
export { openSafetensors, parseSafetensorsBytes, writeSafetensors, SafetensorsError } from "../io/safetensors";
export type { SafetensorsReader, SafetensorsDtype, TensorEntry, TensorToWrite, ParsedSafetensors } from "../io/safetensors";
export { makeTable, vectorColumn, writeArrowFile, readArrowFile, readVectorColumn } from "../io/arrow";
export type { ColumnValues } from "../io/arrow";
export { exportSplitArrow, importSplitArrow, exportEmbeddingsArrow, importEmbeddingsArrow } from "../data/arrow_dataset";
export type { ArrowSplit, EmbeddingRows, ExportSplitOptions, PixelFormat } from "../data/arrow_dataset";
export { exportClipOnnx, exportCheckpointOnnx, readOnnxExportConfig } from "../io/onnx/export_clip";
export type { OnnxExportConfig, ExportResult, ExportCheckpointOptions } from "../io/onnx/export_clip";
export { inspectOnnx } from "../io/onnx/inspect";
export type { OnnxOutline } from "../io/onnx/inspect";
export { readIdx, encodeIdx, DataFileError } from "../data/idx";
export type { IdxArray, ReadIdxOptions } from "../data/idx";
