// Reader and writer for the safetensors checkpoint format, on plain typed arrays (no tfjs).
// Format: https://github.com/huggingface/safetensors#format
//
//   [u64 little-endian N][N bytes of UTF-8 JSON header][data section]
//
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} with offsets
// relative to the start of the data section, plus an optional "__metadata__" string->string map.
//
// Reading never loads the whole file: we read the 8-byte prefix and the header, validate all of
// it (so a bad file fails at open time, not halfway through building a model), and then read each
// tensor on demand with a positioned read. Checkpoints can be several GB (ViT-L-14 is 1.7 GB in
// F32): `readFloat32Chunks` streams a tensor through one reused chunk buffer, decoding half
// precision chunk by chunk, so a loader can write it straight into its destination (a tensor's
// memory) without ever holding the whole tensor, or the file, a second time.
//
// Validation follows upstream: tensors must exactly tile the data section (no overlaps, no
// holes, no trailing bytes), which also rules out files that hide extra data between tensors.
//
// Everything is decoded to Float32Array because that is what the models consume. All multi-byte
// values in the file are little-endian; we use DataView or an explicit host-endianness check so
// this also works on big-endian hosts.

import * as fs from "node:fs";
import { float32ToBfloat16Bits, float32ToFloat16Bits, float16BitsToFloat32Into, bfloat16BitsToFloat32Into } from "./float16";
import { replaceFileAtomic } from "../util/atomic";

export type SafetensorsDtype = "F32" | "F16" | "BF16" | "F64" | "I32" | "I64";

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute offset of the tensor's first byte in the file (or in the byte array). */
  byteOffset: number;
  byteLength: number;
}

export class SafetensorsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    // Messages must stay on one line so they read well in logs and CLI output; names from a
    // hostile file could carry newlines, so collapse any whitespace runs that contain one.
    super(message.replace(/\s*[\r\n]+\s*/g, " "), options);
    this.name = "SafetensorsError";
  }
}

export interface SafetensorsReader {
  path: string;
  /** The header's "__metadata__" map, or {} when absent. */
  metadata: Record<string, string>;
  /** Tensors in file (offset) order. */
  entries: Map<string, TensorEntry>;
  /** Read one tensor from disk and decode it to float32. Unknown name -> SafetensorsError. */
  readFloat32(name: string): Float32Array;
  /**
   * Stream one tensor from disk decoded to float32, in file order, at most `chunkElements` values
   * at a time (default 2^20, 4 MiB): `onChunk(values, start)` receives elements
   * [start, start + values.length) in a buffer that the next chunk reuses (copy what you keep).
   * Memory: one chunk of the stored dtype plus one of float32, whatever the tensor's size.
   */
  readFloat32Chunks(name: string, onChunk: ChunkSink, chunkElements?: number): void;
  close(): void;
}

/** Receives consecutive pieces of a tensor: `values` are elements [start, start + values.length), valid during the call only. */
export type ChunkSink = (values: Float32Array, start: number) => void;

/** Values per chunk when streaming a tensor (4 MiB of float32). */
export const DEFAULT_CHUNK_ELEMENTS = 1 << 20;

export interface TensorToWrite {
  name: string;
  shape: number[];
  /**
   * The values, or a function returning them, called once when the tensor is written: the writer
   * then holds one tensor at a time, not the whole model (its length is checked at that point).
   */
  data: Float32Array | (() => Float32Array);
  /** Storage dtype, default "F32". F16/BF16 are rounded to nearest, ties to even. */
  dtype?: "F32" | "F16" | "BF16";
}

/** Result of parseSafetensorsBytes: the same validation as openSafetensors, on bytes in memory. */
export interface ParsedSafetensors {
  metadata: Record<string, string>;
  entries: Map<string, TensorEntry>;
  read(name: string): Float32Array;
}

const DTYPE_SIZE: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8 };
const SUPPORTED_DTYPES = Object.keys(DTYPE_SIZE) as SafetensorsDtype[];
const WRITABLE_DTYPES = ["F32", "F16", "BF16"] as const;

/** A header larger than this is certainly not a real checkpoint header (they are KBs to a few MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const METADATA_KEY = "__metadata__";

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Node's readSync/writeSync take at most ~2 GB per call; stay well below. */
const IO_CHUNK = 1 << 30;

// ---------------------------------------------------------------------------------------------
// Shared helpers

function fail(label: string, message: string, cause?: unknown): never {
  throw new SafetensorsError(`${label}: ${message}`, cause === undefined ? undefined : { cause });
}

/** Human-readable type name for error messages ("array", "null", "number", ...). */
function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Short JSON rendering of a value for messages, truncated so one bad field can't flood a log. */
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Validates a shape and returns its element count. Returns a reason string instead of throwing so
 * the reader and writer can word the message for their own context.
 */
function checkShape(shape: unknown): number | string {
  if (!Array.isArray(shape)) return `must be an array of non-negative integers, got ${show(shape)}`;
  let count = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      return `must be an array of non-negative integers, got ${show(shape)}`;
    }
    count *= d;
  }
  // A product beyond 2^53 can't be an honest tensor and would make the byte arithmetic inexact.
  if (!Number.isSafeInteger(count)) return `${show(shape)} has too many elements`;
  return count;
}

// ---------------------------------------------------------------------------------------------
// Header parsing (shared by the file reader and the in-memory parser)

interface ByteSource {
  size: number;
  /** Returns a fresh Uint8Array (byteOffset 0) with exactly `length` bytes from `position`. */
  read(position: number, length: number): Uint8Array;
}

interface ParsedHeader {
  metadata: Record<string, string>;
  entries: Map<string, TensorEntry>;
}

function parseHeader(label: string, src: ByteSource): ParsedHeader {
  if (src.size < 8) {
    fail(label, `file is ${src.size} bytes, shorter than the 8-byte header-length prefix of a safetensors file`);
  }
  const prefix = src.read(0, 8);
  // Compare as bigint first: a garbage u64 can exceed 2^53 and would lose precision as a number.
  const headerLen64 = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    fail(label, `header length ${headerLen64} bytes is absurd (limit ${MAX_HEADER_BYTES}); not a safetensors file?`);
  }
  const headerLen = Number(headerLen64);
  if (headerLen > src.size - 8) {
    fail(
      label,
      `header length ${headerLen} bytes is larger than the file (${src.size} bytes, ${src.size - 8} after the 8-byte prefix)`,
    );
  }

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(src.read(8, headerLen));
  } catch (e) {
    fail(label, `header is not valid UTF-8`, e);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(label, `header is not valid JSON (${(e as Error).message})`, e);
  }
  if (!isPlainObject(header)) {
    fail(label, `header must be a JSON object mapping tensor names to entries, got ${typeName(header)}`);
  }

  const dataStart = 8 + headerLen;
  const dataLength = src.size - dataStart;
  let metadata: Record<string, string> = {};
  const unordered: Array<TensorEntry & { begin: number; end: number }> = [];

  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(label, raw);
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(raw)) {
      fail(label, `${where}: entry must be an object with dtype, shape and data_offsets, got ${typeName(raw)}`);
    }
    for (const field of ["dtype", "shape", "data_offsets"]) {
      if (!(field in raw)) fail(label, `${where}: entry is missing "${field}" (expected dtype, shape and data_offsets)`);
    }

    const dtype = raw.dtype;
    if (typeof dtype !== "string" || !(SUPPORTED_DTYPES as string[]).includes(dtype)) {
      fail(label, `${where}: unknown dtype ${show(dtype)} (supported: ${SUPPORTED_DTYPES.join(", ")})`);
    }
    const dt = dtype as SafetensorsDtype;

    const count = checkShape(raw.shape);
    if (typeof count === "string") fail(label, `${where}: shape ${count}`);
    const shape = (raw.shape as number[]).slice();

    const offs = raw.data_offsets;
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(label, `${where}: data_offsets must be [begin, end] with non-negative integers, got ${show(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) fail(label, `${where}: data_offsets [${begin}, ${end}] has begin after end`);
    if (end > dataLength) {
      fail(label, `${where}: data_offsets [${begin}, ${end}] are out of range of the ${dataLength}-byte data section`);
    }
    const byteLength = end - begin;
    const expected = count * DTYPE_SIZE[dt];
    if (byteLength !== expected) {
      fail(
        label,
        `${where}: data_offsets [${begin}, ${end}] span ${byteLength} bytes but ${dt} shape ${show(shape)} needs ${expected}`,
      );
    }
    unordered.push({ name, dtype: dt, shape, byteOffset: dataStart + begin, byteLength, begin, end });
  }

  // Tensors must tile the data section exactly. Sorting by (begin, end) puts a zero-length tensor
  // before a tensor starting at the same offset, so it does not count as an overlap.
  unordered.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: string | undefined;
  for (const t of unordered) {
    if (t.begin < cursor) {
      fail(
        label,
        `tensor ${JSON.stringify(t.name)}: data_offsets [${t.begin}, ${t.end}] overlap tensor ${JSON.stringify(prev)} which ends at ${cursor}`,
      );
    }
    if (t.begin > cursor) {
      const after = prev === undefined ? "the start of the data section" : `tensor ${JSON.stringify(prev)}`;
      fail(
        label,
        `tensor ${JSON.stringify(t.name)}: data_offsets [${t.begin}, ${t.end}] leave a hole of ${t.begin - cursor} bytes (${cursor}..${t.begin}) after ${after}; tensors must be contiguous`,
      );
    }
    cursor = t.end;
    prev = t.name;
  }
  if (cursor !== dataLength) {
    fail(
      label,
      `data section has ${dataLength - cursor} trailing bytes (${cursor}..${dataLength}) not covered by any tensor; tensors must cover it exactly`,
    );
  }

  const entries = new Map<string, TensorEntry>();
  for (const { name, dtype, shape, byteOffset, byteLength } of unordered) {
    entries.set(name, { name, dtype, shape, byteOffset, byteLength });
  }
  return { metadata, entries };
}

function parseMetadata(label: string, raw: unknown): Record<string, string> {
  if (!isPlainObject(raw)) fail(label, `${METADATA_KEY} must be an object of string values, got ${typeName(raw)}`);
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string") {
      fail(label, `${METADATA_KEY} field ${JSON.stringify(k)} must be a string, got ${typeName(v)} ${show(v)}`);
    }
  }
  // fromEntries defines own properties, so a key like "__proto__" stays a plain key.
  return Object.fromEntries(Object.entries(raw)) as Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Whole-tensor decode. `raw` must be a fresh array with byteOffset 0 (so typed-array views are
 * aligned). F32 on a little-endian host is returned as a view of `raw` (no copy).
 */
function decode(label: string, entry: TensorEntry, raw: Uint8Array): Float32Array {
  const n = raw.byteLength / DTYPE_SIZE[entry.dtype];
  if (entry.dtype === "F32" && HOST_LITTLE_ENDIAN) return new Float32Array(raw.buffer, raw.byteOffset, n);
  return decodeInto(label, entry, raw, new Float32Array(n), 0);
}

/**
 * Decodes `raw` (elements `first`.. of the tensor, byteOffset a multiple of the item size) into
 * `out` (exactly as many elements). `first` only numbers elements in messages.
 */
function decodeInto(label: string, entry: TensorEntry, raw: Uint8Array, out: Float32Array, first: number): Float32Array {
  const n = out.length;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);

  switch (entry.dtype) {
    case "F32": {
      if (HOST_LITTLE_ENDIAN) out.set(new Float32Array(raw.buffer, raw.byteOffset, n));
      else for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case "F16":
    case "BF16": {
      let bits: Uint16Array;
      if (HOST_LITTLE_ENDIAN) {
        bits = new Uint16Array(raw.buffer, raw.byteOffset, n);
      } else {
        bits = new Uint16Array(n);
        for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true);
      }
      return entry.dtype === "F16" ? float16BitsToFloat32Into(bits, out) : bfloat16BitsToFloat32Into(bits, out);
    }
    case "F64": {
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    case "I32": {
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    }
    case "I64": {
      // Values beyond 2^53 would already be wrong as JS numbers; refuse them rather than guess.
      const max = BigInt(Number.MAX_SAFE_INTEGER);
      for (let i = 0; i < n; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v > max || v < -max) {
          fail(
            label,
            `tensor ${JSON.stringify(entry.name)}: I64 element ${first + i} is ${v}, outside the safe integer range ±${Number.MAX_SAFE_INTEGER}`,
          );
        }
        out[i] = Number(v);
      }
      return out;
    }
  }
}

function lookup(label: string, entries: Map<string, TensorEntry>, name: string): TensorEntry {
  const entry = entries.get(name);
  if (entry === undefined) {
    fail(label, `no tensor named ${JSON.stringify(name)} (the file has ${entries.size} tensors)`);
  }
  return entry;
}

// ---------------------------------------------------------------------------------------------
// File reader

/** Reads exactly buf.length bytes at `position`; readSync may return short counts. */
function readFully(label: string, fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, Math.min(buf.length - done, IO_CHUNK), position + done);
    if (n === 0) {
      fail(label, `unexpected end of file reading ${buf.length} bytes at offset ${position} (was the file truncated?)`);
    }
    done += n;
  }
}

class FileReader implements SafetensorsReader {
  private fd: number | null;

  constructor(
    readonly path: string,
    fd: number,
    readonly metadata: Record<string, string>,
    readonly entries: Map<string, TensorEntry>,
  ) {
    this.fd = fd;
  }

  readFloat32(name: string): Float32Array {
    const entry = lookup(this.path, this.entries, name);
    if (this.fd === null) fail(this.path, `cannot read tensor ${JSON.stringify(name)}: reader is closed`);
    // A fresh buffer per tensor: the returned array owns its memory and F32 needs no copy.
    const raw = new Uint8Array(entry.byteLength);
    try {
      readFully(this.path, this.fd, raw, entry.byteOffset);
    } catch (e) {
      if (e instanceof SafetensorsError) throw e;
      fail(this.path, `tensor ${JSON.stringify(name)}: read failed: ${(e as Error).message}`, e);
    }
    return decode(this.path, entry, raw);
  }

  readFloat32Chunks(name: string, onChunk: ChunkSink, chunkElements = DEFAULT_CHUNK_ELEMENTS): void {
    const entry = lookup(this.path, this.entries, name);
    if (!Number.isSafeInteger(chunkElements) || chunkElements < 1) {
      fail(this.path, `tensor ${JSON.stringify(name)}: chunkElements must be a positive integer, got ${show(chunkElements)}`);
    }
    if (typeof onChunk !== "function") fail(this.path, `tensor ${JSON.stringify(name)}: onChunk must be a function, got ${typeName(onChunk)}`);
    const itemSize = DTYPE_SIZE[entry.dtype];
    const count = entry.byteLength / itemSize;
    const per = Math.min(chunkElements, count);
    // One raw buffer and, unless F32 on a little-endian host (read in place), one decoded buffer.
    const raw = new Uint8Array(per * itemSize);
    const inPlace = entry.dtype === "F32" && HOST_LITTLE_ENDIAN;
    const decoded = inPlace ? new Float32Array(raw.buffer) : new Float32Array(per);
    for (let start = 0; start < count; start += per) {
      if (this.fd === null) fail(this.path, `cannot read tensor ${JSON.stringify(name)}: reader is closed`);
      const n = Math.min(per, count - start);
      const bytes = raw.subarray(0, n * itemSize);
      try {
        readFully(this.path, this.fd, bytes, entry.byteOffset + start * itemSize);
      } catch (e) {
        if (e instanceof SafetensorsError) throw e;
        fail(this.path, `tensor ${JSON.stringify(name)}: read failed: ${(e as Error).message}`, e);
      }
      const values = decoded.subarray(0, n);
      if (!inPlace) decodeInto(this.path, entry, bytes, values, start);
      onChunk(values, start);
    }
  }

  close(): void {
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      fs.closeSync(fd);
    }
  }
}

/** Open a safetensors file and validate its header. Tensors are read later, one at a time. */
export function openSafetensors(path: string): SafetensorsReader {
  let fd: number;
  let size: number;
  try {
    fd = fs.openSync(path, "r");
  } catch (e) {
    fail(path, `cannot open: ${(e as Error).message}`, e);
  }
  try {
    size = fs.fstatSync(fd).size;
    const source: ByteSource = {
      size,
      read(position, length) {
        const buf = new Uint8Array(length);
        readFully(path, fd, buf, position);
        return buf;
      },
    };
    const { metadata, entries } = parseHeader(path, source);
    return new FileReader(path, fd, metadata, entries);
  } catch (e) {
    // Don't leak the descriptor when validation fails.
    fs.closeSync(fd);
    if (e instanceof SafetensorsError) throw e;
    fail(path, `cannot read: ${(e as Error).message}`, e);
  }
}

/** Same validation as openSafetensors, for a file already in memory. `label` names it in errors. */
export function parseSafetensorsBytes(bytes: Uint8Array, label = "<in-memory safetensors>"): ParsedSafetensors {
  const source: ByteSource = {
    size: bytes.byteLength,
    // Copy into a fresh array so results never alias the caller's buffer and typed-array views
    // are aligned. (Not bytes.slice: on a Node Buffer that returns an unaligned view, not a copy.)
    read: (position, length) => {
      const out = new Uint8Array(length);
      out.set(bytes.subarray(position, position + length));
      return out;
    },
  };
  const { metadata, entries } = parseHeader(label, source);
  return {
    metadata,
    entries,
    read(name: string): Float32Array {
      const entry = lookup(label, entries, name);
      return decode(label, entry, source.read(entry.byteOffset, entry.byteLength));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Writer

/** Little-endian bytes for one tensor in its storage dtype. May be a view of `data` (no copy). */
function encode(data: Float32Array, dtype: "F32" | "F16" | "BF16"): Uint8Array {
  if (dtype === "F32") {
    if (HOST_LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const out = new Uint8Array(data.length * 4);
    const view = new DataView(out.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true);
    return out;
  }
  const bits = dtype === "F16" ? float32ToFloat16Bits(data) : float32ToBfloat16Bits(data);
  if (HOST_LITTLE_ENDIAN) return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  const out = new Uint8Array(bits.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < bits.length; i++) view.setUint16(2 * i, bits[i], true);
  return out;
}

function checkData(path: string, t: TensorToWrite, data: unknown, count: number): Float32Array {
  const where = `tensor ${JSON.stringify(t.name)}`;
  if (!(data instanceof Float32Array)) fail(path, `${where}: data must be a Float32Array, got ${typeName(data)}`);
  if (data.length !== count) fail(path, `${where}: data has ${data.length} elements but shape ${show(t.shape)} needs ${count}`);
  return data;
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, Math.min(bytes.length - done, IO_CHUNK));
  }
}

/**
 * Write tensors (stored in name order, contiguous) and optional string metadata. The file is
 * written to a temporary file beside it and renamed into place (src/util/atomic.ts), so readers
 * never see a partial file; the temp file is removed if anything fails.
 */
export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  // Validate everything before touching the disk.
  if (!Array.isArray(tensors)) fail(path, `tensors must be an array, got ${typeName(tensors)}`);
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) fail(path, `metadata must be an object of string values, got ${typeName(metadata)}`);
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") fail(path, `metadata field ${JSON.stringify(k)} must be a string, got ${typeName(v)}`);
    }
  }
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t?.name !== "string" || t.name === "" || t.name === METADATA_KEY) {
      fail(path, `tensor name ${show(t?.name)} is not allowed (must be a non-empty string other than ${METADATA_KEY})`);
    }
    const where = `tensor ${JSON.stringify(t.name)}`;
    if (seen.has(t.name)) fail(path, `${where}: duplicate tensor name`);
    seen.add(t.name);
    const dtype = t.dtype ?? "F32";
    if (!(WRITABLE_DTYPES as readonly string[]).includes(dtype)) {
      fail(path, `${where}: cannot write dtype ${show(dtype)} (supported: ${WRITABLE_DTYPES.join(", ")})`);
    }
    const count = checkShape(t.shape);
    if (typeof count === "string") fail(path, `${where}: shape ${count}`);
    // A function is called when the tensor is written; its result is checked then.
    if (typeof t.data !== "function") checkData(path, t, t.data, count);
  }

  // Code-unit order, matching Python's sorted() for the usual ASCII names.
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Build the JSON by hand: a JS object would move integer-like keys ("0", "1") to the front and
  // treat "__proto__" specially. Metadata goes first, as upstream writers do.
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const fields = Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(",")}}`);
  }
  let offset = 0;
  for (const t of sorted) {
    const dtype = t.dtype ?? "F32";
    const byteLength = (checkShape(t.shape) as number) * DTYPE_SIZE[dtype];
    const info = `{"dtype":"${dtype}","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${offset + byteLength}]}`;
    parts.push(`${JSON.stringify(t.name)}:${info}`);
    offset += byteLength;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  // Pad with spaces (valid trailing JSON whitespace) so the data section starts 8-byte aligned,
  // which lets readers map tensors without unaligned access.
  const headerLen = Math.ceil(json.length / 8) * 8;
  const prefixAndHeader = new Uint8Array(8 + headerLen).fill(0x20);
  new DataView(prefixAndHeader.buffer).setBigUint64(0, BigInt(headerLen), true);
  prefixAndHeader.set(json, 8);

  try {
    replaceFileAtomic(path, (tmp) => {
      const fd = fs.openSync(tmp, "w");
      try {
        writeFully(fd, prefixAndHeader);
        // Encode one tensor at a time so peak extra memory is one tensor, not the whole file (and,
        // with data given as functions, the caller's copy is one tensor too).
        for (const t of sorted) {
          const data = typeof t.data === "function" ? checkData(path, t, t.data(), checkShape(t.shape) as number) : t.data;
          writeFully(fd, encode(data, t.dtype ?? "F32"));
        }
        // Flush before the rename so a crash can't leave a renamed-but-empty file behind.
        fs.fsyncSync(fd);
      } catch (e) {
        try {
          fs.closeSync(fd);
        } catch {
          // already failing; the original error is the useful one
        }
        throw e;
      }
      fs.closeSync(fd);
    });
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    fail(path, `write failed: ${(e as Error).message}`, e);
  }
}
