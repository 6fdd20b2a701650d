/**
 * A minimal Parquet writer for tests (no pyarrow here, and hyparquet only reads): optional
 * columns of binary, UTF-8 strings, int32 and int64, and Hugging Face's image struct
 * `{bytes: binary, path: string}`; data page v1, PLAIN values, RLE definition levels; one page
 * per column chunk; row groups of a chosen size; uncompressed, snappy (literal-only) or gzip;
 * key-value metadata (e.g. Hugging Face's `huggingface` features).
 * Format: https://github.com/apache/parquet-format (Thrift compact protocol for the metadata).
 */
import * as fs from "node:fs";
import * as zlib from "node:zlib";

export type ImageCell = { bytes: Uint8Array | null; path: string | null } | null;

export type PqColumn =
  | { name: string; kind: "binary"; values: (Uint8Array | null)[] }
  | { name: string; kind: "string"; values: (string | null)[] }
  | { name: string; kind: "int32" | "int64"; values: (number | null)[] }
  | { name: string; kind: "image"; values: ImageCell[] };

export interface WriteParquetOptions {
  rowGroupSize?: number;
  codec?: "UNCOMPRESSED" | "SNAPPY" | "GZIP";
  keyValue?: Record<string, string>;
}

// ---- Thrift compact protocol ----
type TValue =
  | { t: "i32"; v: number }
  | { t: "i64"; v: number }
  | { t: "bin"; v: Uint8Array | string }
  | { t: "list"; elem: "i32" | "bin" | "struct"; items: TValue[] }
  | { t: "struct"; fields: [number, TValue][] };

const TYPE_ID = { i32: 5, i64: 6, bin: 8, list: 9, struct: 12 } as const;
const enc = new TextEncoder();

class ThriftWriter {
  readonly out: number[] = [];

  varint(n: number): void {
    while (n >= 0x80) {
      this.out.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.out.push(n);
  }

  zigzag(n: number): void {
    this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  value(v: TValue): void {
    switch (v.t) {
      case "i32":
      case "i64":
        return this.zigzag(v.v);
      case "bin": {
        const b = typeof v.v === "string" ? enc.encode(v.v) : v.v;
        this.varint(b.length);
        for (const x of b) this.out.push(x);
        return;
      }
      case "list": {
        const id = TYPE_ID[v.elem];
        if (v.items.length < 15) this.out.push((v.items.length << 4) | id);
        else {
          this.out.push(0xf0 | id);
          this.varint(v.items.length);
        }
        for (const it of v.items) this.value(it);
        return;
      }
      case "struct": {
        let last = 0;
        for (const [id, f] of v.fields) {
          const delta = id - last;
          if (delta > 0 && delta <= 15) this.out.push((delta << 4) | TYPE_ID[f.t]);
          else {
            this.out.push(TYPE_ID[f.t]);
            this.zigzag(id);
          }
          this.value(f);
          last = id;
        }
        this.out.push(0);
        return;
      }
    }
  }
}

function thrift(v: TValue): Uint8Array {
  const w = new ThriftWriter();
  w.value(v);
  return Uint8Array.from(w.out);
}

const i32 = (v: number): TValue => ({ t: "i32", v });
const i64 = (v: number): TValue => ({ t: "i64", v });
const bin = (v: Uint8Array | string): TValue => ({ t: "bin", v });
const struct = (...fields: [number, TValue][]): TValue => ({ t: "struct", fields });

// ---- encodings ----
const PARQUET_TYPE = { BYTE_ARRAY: 6, INT32: 1, INT64: 2 } as const;
const CODEC = { UNCOMPRESSED: 0, SNAPPY: 1, GZIP: 2 } as const;

/** RLE runs of the RLE/bit-packed hybrid, with the 4-byte length prefix of data page v1. */
function rleLevels(levels: number[], bitWidth: number): Uint8Array {
  const w = new ThriftWriter();
  const bytesPerValue = Math.ceil(bitWidth / 8);
  for (let i = 0; i < levels.length; ) {
    let j = i;
    while (j < levels.length && levels[j] === levels[i]) j++;
    w.varint((j - i) * 2);
    for (let b = 0; b < bytesPerValue; b++) w.out.push((levels[i] >> (8 * b)) & 0xff);
    i = j;
  }
  const body = Uint8Array.from(w.out);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, 4);
  return out;
}

function plainValues(kind: "binary" | "string" | "int32" | "int64", values: (Uint8Array | string | number)[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const v of values) {
    if (kind === "int32") {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setInt32(0, v as number, true);
      parts.push(b);
    } else if (kind === "int64") {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigInt64(0, BigInt(v as number), true);
      parts.push(b);
    } else {
      const data = typeof v === "string" ? enc.encode(v) : (v as Uint8Array);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, data.length, true);
      parts.push(len, data);
    }
  }
  return Buffer.concat(parts);
}

/** Snappy with literals only: valid input for any snappy decoder. */
function snappyLiterals(data: Uint8Array): Uint8Array {
  const w = new ThriftWriter();
  w.varint(data.length);
  for (let i = 0; i < data.length; i += 65536) {
    const chunk = data.subarray(i, Math.min(data.length, i + 65536));
    const n = chunk.length - 1;
    if (n < 60) w.out.push(n << 2);
    else if (n < 256) w.out.push(60 << 2, n);
    else w.out.push(61 << 2, n & 0xff, n >> 8);
    for (const x of chunk) w.out.push(x);
  }
  return Uint8Array.from(w.out);
}

function compress(codec: keyof typeof CODEC, data: Uint8Array): Uint8Array {
  if (codec === "SNAPPY") return snappyLiterals(data);
  if (codec === "GZIP") return new Uint8Array(zlib.gzipSync(data));
  return data;
}

// ---- layout ----
interface Leaf {
  path: string[];
  kind: "binary" | "string" | "int32" | "int64";
  maxDef: number;
  /** Per row: definition level and value (when fully defined). */
  cells(rows: number[]): { levels: number[]; values: (Uint8Array | string | number)[] };
}

function leavesOf(col: PqColumn): Leaf[] {
  if (col.kind === "image") {
    const field = (name: "bytes" | "path", kind: "binary" | "string"): Leaf => ({
      path: [col.name, name],
      kind,
      maxDef: 2,
      cells(rows) {
        const levels: number[] = [];
        const values: (Uint8Array | string)[] = [];
        for (const r of rows) {
          const cell = col.values[r];
          const v = cell?.[name] ?? null;
          levels.push(cell === null ? 0 : v === null ? 1 : 2);
          if (v !== null) values.push(v);
        }
        return { levels, values };
      },
    });
    return [field("bytes", "binary"), field("path", "string")];
  }
  return [
    {
      path: [col.name],
      kind: col.kind,
      maxDef: 1,
      cells(rows) {
        const levels: number[] = [];
        const values: (Uint8Array | string | number)[] = [];
        for (const r of rows) {
          const v = col.values[r];
          levels.push(v === null ? 0 : 1);
          if (v !== null) values.push(v);
        }
        return { levels, values };
      },
    },
  ];
}

function schemaOf(columns: PqColumn[]): TValue[] {
  const out: TValue[] = [struct([4, bin("schema")], [5, i32(columns.length)])];
  const leafElement = (name: string, kind: Leaf["kind"]): TValue => {
    const type = kind === "int32" ? PARQUET_TYPE.INT32 : kind === "int64" ? PARQUET_TYPE.INT64 : PARQUET_TYPE.BYTE_ARRAY;
    const fields: [number, TValue][] = [[1, i32(type)], [3, i32(1)], [4, bin(name)]];
    if (kind === "string") fields.push([6, i32(0)]); // converted_type UTF8
    return struct(...fields);
  };
  for (const col of columns) {
    if (col.kind === "image") {
      out.push(struct([3, i32(1)], [4, bin(col.name)], [5, i32(2)]));
      out.push(leafElement("bytes", "binary"), leafElement("path", "string"));
    } else {
      out.push(leafElement(col.name, col.kind));
    }
  }
  return out;
}

/** Writes `columns` (all of the same length) to a Parquet file. */
export function writeParquet(file: string, columns: PqColumn[], opts: WriteParquetOptions = {}): void {
  const numRows = columns[0]?.values.length ?? 0;
  for (const c of columns) if (c.values.length !== numRows) throw new Error(`writeParquet: column ${c.name} has ${c.values.length} values, expected ${numRows}`);
  const groupSize = opts.rowGroupSize ?? Math.max(1, numRows);
  const codec = opts.codec ?? "UNCOMPRESSED";
  const leaves = columns.flatMap(leavesOf);
  const chunks: Uint8Array[] = [enc.encode("PAR1")];
  let offset = 4;
  const rowGroups: TValue[] = [];
  for (let start = 0; start < numRows; start += groupSize) {
    const rows = Array.from({ length: Math.min(groupSize, numRows - start) }, (_, i) => start + i);
    const columnChunks: TValue[] = [];
    let groupBytes = 0;
    for (const leaf of leaves) {
      const { levels, values } = leaf.cells(rows);
      const raw = Buffer.concat([rleLevels(levels, Math.ceil(Math.log2(leaf.maxDef + 1))), plainValues(leaf.kind, values)]);
      const body = compress(codec, raw);
      const header = thrift(
        struct([1, i32(0)], [2, i32(raw.length)], [3, i32(body.length)], [5, struct([1, i32(rows.length)], [2, i32(0)], [3, i32(3)], [4, i32(3)])]),
      );
      const pageOffset = offset;
      chunks.push(header, body);
      offset += header.length + body.length;
      const type = leaf.kind === "int32" ? PARQUET_TYPE.INT32 : leaf.kind === "int64" ? PARQUET_TYPE.INT64 : PARQUET_TYPE.BYTE_ARRAY;
      const size = header.length + body.length;
      groupBytes += header.length + raw.length;
      columnChunks.push(
        struct(
          [2, i64(pageOffset)],
          [
            3,
            struct(
              [1, i32(type)],
              [2, { t: "list", elem: "i32", items: [i32(0), i32(3)] }],
              [3, { t: "list", elem: "bin", items: leaf.path.map(bin) }],
              [4, i32(CODEC[codec])],
              [5, i64(rows.length)],
              [6, i64(header.length + raw.length)],
              [7, i64(size)],
              [9, i64(pageOffset)],
            ),
          ],
        ),
      );
    }
    rowGroups.push(struct([1, { t: "list", elem: "struct", items: columnChunks }], [2, i64(groupBytes)], [3, i64(rows.length)]));
  }
  const kv = Object.entries(opts.keyValue ?? {}).map(([k, v]) => struct([1, bin(k)], [2, bin(v)]));
  const metaFields: [number, TValue][] = [
    [1, i32(1)],
    [2, { t: "list", elem: "struct", items: schemaOf(columns) }],
    [3, i64(numRows)],
    [4, { t: "list", elem: "struct", items: rowGroups }],
  ];
  if (kv.length > 0) metaFields.push([5, { t: "list", elem: "struct", items: kv }]);
  metaFields.push([6, bin("cliplab test writer")]);
  const meta = thrift(struct(...metaFields));
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, meta.length, true);
  chunks.push(meta, len, enc.encode("PAR1"));
  fs.writeFileSync(file, Buffer.concat(chunks));
}
