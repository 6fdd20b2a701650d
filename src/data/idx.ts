/**
 * IDX files (the MNIST / Fashion-MNIST container): a 4-byte magic `00 00 TT NN` (TT the element
 * type, NN the number of dimensions), NN big-endian uint32 sizes, then the elements row-major.
 * Only unsigned bytes (TT = 0x08) are read here: labels are `0x00000801`, images `0x00000803`.
 * Files may be gzipped (detected by the gzip magic 1f 8b, whatever the file name says).
 *
 * Every error is one line that names the file and says what was expected and what was found.
 */
import * as fs from "node:fs";
import * as zlib from "node:zlib";

/** The dimensions from the header and the elements (unsigned bytes), row-major. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export interface ReadIdxOptions {
  /** Require this many dimensions (1 for labels, 3 for images). */
  ndims?: number;
}

/** A malformed, missing or unreadable data file. `file` is the path as given. */
export class DataFileError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = "DataFileError";
  }
}

const IDX_TYPES: Record<number, string> = {
  0x08: "unsigned byte",
  0x09: "signed byte",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

const KIND_BY_NDIMS: Record<number, string> = { 1: "labels", 3: "images" };

function hex32(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, "0")}`;
}

function hex8(v: number): string {
  return `0x${v.toString(16).padStart(2, "0")}`;
}

function describeMagic(ndims: number): string {
  const kind = KIND_BY_NDIMS[ndims];
  return `${hex32(0x0800 | ndims)}${kind ? ` (${kind})` : ""}`;
}

/** The file's bytes, gunzipped when they start with the gzip magic. */
function readBytes(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT") throw new DataFileError(file, "file not found");
    if (e.code === "EISDIR") throw new DataFileError(file, "is a directory, expected an IDX file");
    throw new DataFileError(file, `cannot read: ${firstLine(e.message)}`);
  }
  if (raw.length < 2 || raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  try {
    // Big output chunks: the default 16 KiB ones make gunzip of the 47 MB training images ~20% slower.
    return zlib.gunzipSync(raw, { chunkSize: 1 << 22 });
  } catch (err) {
    // A cut-off download: decompress what there is, so the size check below can say how much.
    const e = err as NodeJS.ErrnoException;
    if (e.code === "Z_BUF_ERROR") {
      let partial: Buffer;
      try {
        partial = zlib.gunzipSync(raw, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      } catch {
        throw new DataFileError(file, `gzip stream is truncated (${raw.length} compressed bytes)`);
      }
      throw new DataFileError(
        file,
        `gzip stream is truncated: ${raw.length} compressed bytes decompress to only ${partial.length} bytes${truncatedDetail(partial)}`,
      );
    }
    throw new DataFileError(file, `corrupt gzip data (${firstLine(e.message)})`);
  }
}

/** For a truncated gzip stream: what the (intact) header announced, if it can be read. */
function truncatedDetail(partial: Buffer): string {
  try {
    const h = parseHeader(partial);
    return `, header says ${h.dims.join("x")} = ${h.expected} bytes of elements`;
  } catch {
    return "";
  }
}

interface Header {
  type: number;
  dims: number[];
  headerBytes: number;
  expected: number;
}

function parseHeader(bytes: Buffer): Header {
  if (bytes.length < 4) throw new Error(`${bytes.length} bytes, too short for an IDX header (at least 4)`);
  const type = bytes[2];
  const ndims = bytes[3];
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) throw new Error(`${bytes.length} bytes, too short for the ${ndims}-dimension header`);
  const dims: number[] = [];
  let expected = 1;
  for (let i = 0; i < ndims; i++) {
    const d = bytes.readUInt32BE(4 + 4 * i);
    dims.push(d);
    expected *= d;
  }
  return { type, dims, headerBytes, expected };
}

/**
 * Reads an IDX file of unsigned bytes (raw or gzipped). Checks the magic number, the element type,
 * the number of dimensions (when `opts.ndims` is given) and that the file holds exactly the
 * product of the dimensions in bytes after the header.
 */
export function readIdx(file: string, opts: ReadIdxOptions = {}): IdxArray {
  const want = opts.ndims;
  if (want !== undefined && (!Number.isInteger(want) || want < 1 || want > 255)) {
    throw new RangeError(`readIdx: ndims must be an integer in [1, 255], got ${String(want)}`);
  }
  const bytes = readBytes(file);
  const expectedMagic = want !== undefined ? describeMagic(want) : "0x00000801 (labels) or 0x00000803 (images)";
  if (bytes.length < 4) {
    throw new DataFileError(file, `${bytes.length} bytes, too short for an IDX header; expected magic ${expectedMagic}`);
  }
  const magic = bytes.readUInt32BE(0);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataFileError(file, `bad magic number ${hex32(magic)}, expected ${expectedMagic}; not an IDX file`);
  }
  const type = bytes[2];
  if (type !== 0x08) {
    const name = IDX_TYPES[type] ? `${hex8(type)} (${IDX_TYPES[type]})` : `${hex8(type)} (not an IDX type)`;
    throw new DataFileError(file, `data type ${name} in magic ${hex32(magic)}, expected 0x08 (unsigned byte)`);
  }
  const ndims = bytes[3];
  if (ndims === 0 || (want !== undefined && ndims !== want)) {
    throw new DataFileError(
      file,
      `magic ${hex32(magic)} has ${ndims} dimensions, expected ${want ?? "at least 1"}${want !== undefined ? ` (magic ${describeMagic(want)})` : ""}`,
    );
  }
  let header: Header;
  try {
    header = parseHeader(bytes);
  } catch (err) {
    throw new DataFileError(file, `truncated header: ${(err as Error).message}`);
  }
  const { dims, headerBytes, expected } = header;
  const found = bytes.length - headerBytes;
  const what = ndims === 3 ? "pixels" : ndims === 1 ? "labels" : "elements";
  const shape = dims.join("x");
  if (found < expected) {
    throw new DataFileError(file, `truncated: header says ${shape} = ${expected} bytes of ${what}, file has ${found}`);
  }
  if (found > expected) {
    throw new DataFileError(
      file,
      `too long: header says ${shape} = ${expected} bytes of ${what}, file has ${found} (${found - expected} extra)`,
    );
  }
  // A view when the Buffer owns its memory (large reads and gunzip output do), else a copy, so a
  // small file's bytes never pin Node's shared Buffer pool.
  const own = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length;
  const data = own ? new Uint8Array(bytes.buffer, headerBytes, expected) : new Uint8Array(bytes.subarray(headerBytes));
  return { dims, data };
}

/** Encodes an IDX file of unsigned bytes (the inverse of `readIdx`; for tests and exports). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Buffer {
  if (dims.length < 1 || dims.length > 255 || dims.some((d) => !Number.isInteger(d) || d < 0 || d > 0xffffffff)) {
    throw new RangeError(`encodeIdx: dims must be 1-255 non-negative 32-bit integers, got [${dims.join(", ")}]`);
  }
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new RangeError(`encodeIdx: data has ${data.length} bytes, dims [${dims.join(", ")}] need ${n}`);
  const out = Buffer.alloc(4 + 4 * dims.length + n);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => out.writeUInt32BE(d, 4 + 4 * i));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function firstLine(s: string): string {
  return s.split("\n")[0];
}
