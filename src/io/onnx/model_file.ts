/**
 * Writing an ONNX model: to bytes in memory, or to a file, with the weights inside the protobuf
 * or in an external data file beside it (ONNX external data: `location`, `offset`, `length`;
 * https://github.com/onnx/onnx/blob/main/docs/ExternalData.md). Protobuf messages cannot exceed
 * 2 GiB, so a model whose weights do not fit goes external automatically. Files appear whole or
 * not at all: everything is written to temporary names, then renamed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../../util/atomic";
import { partBytes, toBytes } from "./protobuf";
import { ExternalLocation, ModelDef, encodeModel, tensorByteLength, tensorBytes } from "./onnx_proto";

/** Protobuf's hard limit on one message (2^31 - 1 bytes). */
export const PROTOBUF_LIMIT_BYTES = 2 ** 31 - 1;
/** Default: weights stay inline while the model stays this far under the protobuf limit. */
export const DEFAULT_MAX_INLINE_BYTES = 2 ** 31 - 64 * 2 ** 20;
/** Tensors smaller than this stay inline even when the rest goes external (onnx's default size_threshold). */
export const EXTERNAL_MIN_TENSOR_BYTES = 1024;
/** External tensors start at multiples of this (page size), so runtimes can mmap them. */
export const EXTERNAL_ALIGNMENT = 4096;

export interface WriteModelOptions {
  /**
   * "auto" (default): external data only when the initializers exceed `maxInlineBytes`;
   * "always": every tensor of at least 1 KiB goes external; "never": inline or fail.
   */
  externalData?: "auto" | "always" | "never";
  /** Largest total initializer size kept inline under "auto" (default just under 2 GiB). */
  maxInlineBytes?: number;
}

export interface WrittenModel {
  /** The .onnx file and its size. */
  file: string;
  bytes: number;
  /** The external data file (beside the model), when one was written. */
  dataFile?: string;
  dataBytes?: number;
}

/** Total bytes of a model's initializers. */
export function initializerBytes(model: ModelDef): number {
  return model.graph.initializers.reduce((n, t) => n + tensorByteLength(t), 0);
}

/** Offsets of the tensors that go to the external file `location` (aligned; small tensors stay inline). */
export function planExternalData(model: ModelDef, location: string): { placements: Map<string, ExternalLocation>; length: number } {
  const placements = new Map<string, ExternalLocation>();
  let offset = 0;
  for (const t of model.graph.initializers) {
    const length = tensorByteLength(t);
    if (length < EXTERNAL_MIN_TENSOR_BYTES) continue;
    offset = Math.ceil(offset / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
    placements.set(t.name, { location, offset, length });
    offset += length;
  }
  return { placements, length: offset };
}

/** The model as one protobuf buffer, weights inline (for `InferenceSession.create(bytes)`). */
export function serializeModel(model: ModelDef): Uint8Array {
  const encoded = encodeModel(model);
  if (encoded.length > PROTOBUF_LIMIT_BYTES) {
    throw new RangeError(
      `ONNX model ${model.graph.name} is ${(encoded.length / 2 ** 30).toFixed(2)} GiB, over protobuf's 2 GiB limit: write it to a file with external data`,
    );
  }
  return toBytes(encoded);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

function writeStream(file: string, write: (fd: number) => void): void {
  const fd = fs.openSync(file, "w");
  try {
    write(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes `file` (and `<file>_data` when the weights go external, the name transformers.js and
 * Hugging Face Optimum use). Tensor data is produced and written one tensor at a time.
 */
export function writeModelFile(file: string, model: ModelDef, opts: WriteModelOptions = {}): WrittenModel {
  const mode = opts.externalData ?? "auto";
  if (!["auto", "always", "never"].includes(mode)) {
    throw new RangeError(`externalData must be "auto", "always" or "never", got ${JSON.stringify(mode)}`);
  }
  const maxInline = opts.maxInlineBytes ?? DEFAULT_MAX_INLINE_BYTES;
  if (!(maxInline >= 0)) throw new RangeError(`maxInlineBytes must be a number >= 0, got ${maxInline}`);
  const weights = initializerBytes(model);
  const external = mode === "always" || (mode === "auto" && weights > maxInline);
  const dataFile = `${file}_data`;
  const plan = external ? planExternalData(model, path.basename(dataFile)) : { placements: new Map<string, ExternalLocation>(), length: 0 };
  const encoded = encodeModel(model, plan.placements);
  if (encoded.length > PROTOBUF_LIMIT_BYTES) {
    throw new RangeError(
      `${file}: the model is ${(encoded.length / 2 ** 30).toFixed(2)} GiB, over protobuf's 2 GiB limit` +
        (mode === "never" ? ` (externalData "never" was asked for; use "auto")` : ""),
    );
  }

  if (external) {
    // Data first: the model file never points at a data file that is not there yet.
    writeFileAtomic(dataFile, (tmp) => writeStream(tmp, (fd) => {
      let at = 0;
      const zeros = new Uint8Array(EXTERNAL_ALIGNMENT);
      for (const t of model.graph.initializers) {
        const place = plan.placements.get(t.name);
        if (!place) continue;
        if (place.offset > at) writeAll(fd, zeros.subarray(0, place.offset - at));
        writeAll(fd, partBytes(tensorBytes(t)));
        at = place.offset + place.length;
      }
    }));
  }
  writeFileAtomic(file, (tmp) => writeStream(tmp, (fd) => {
    for (const p of encoded.parts) writeAll(fd, partBytes(p));
  }));
  if (!external) fs.rmSync(dataFile, { force: true }); // a stale data file from an earlier external export
  return external ? { file, bytes: encoded.length, dataFile, dataBytes: plan.length } : { file, bytes: encoded.length };
}
