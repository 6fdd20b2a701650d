/**
 * Embeddings and tables in Apache Arrow IPC files (the "file" format, readable by pyarrow,
 * polars and DuckDB). Vectors are fixed-size lists of float32.
 * https://arrow.apache.org/docs/format/Columnar.html#ipc-file-format
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DataType, Field, Precision, FixedSizeList, Float32, Int32, RecordBatch, RecordBatchFileWriter, Schema, Table, Uint8, Utf8, makeData, makeVector, tableFromIPC, tableToIPC, vectorFromArray } from "apache-arrow";
import { AtomicFile, writeFileAtomic } from "../util/atomic";

export type ColumnValues =
  | string[]
  | (string | null)[]
  | Int32Array
  | Float32Array
  | number[]
  | { dim: number; values: Float32Array }
  | { dim: number; values: Uint8Array };

/**
 * A column of fixed-size vectors: `values` holds rows * dim numbers, row-major; float32, or uint8
 * (e.g. pixels: a quarter of the size).
 */
export function vectorColumn(values: Float32Array, dim: number): { dim: number; values: Float32Array };
export function vectorColumn(values: Uint8Array, dim: number): { dim: number; values: Uint8Array };
export function vectorColumn(values: Float32Array | Uint8Array, dim: number): { dim: number; values: Float32Array | Uint8Array } {
  if (!Number.isInteger(dim) || dim < 1 || values.length % dim !== 0) {
    throw new Error(`vector column: ${values.length} values do not split into rows of ${dim}`);
  }
  return { dim, values };
}

function toVector(name: string, column: ColumnValues) {
  if (Array.isArray(column)) {
    // Widened to unknown[]: TypeScript 5.0 (tslab's compiler) cannot call .every on a union of array types.
    const values: readonly unknown[] = column;
    if (values.every((v) => typeof v === "string" || v === null)) return vectorFromArray(column as (string | null)[], new Utf8());
    if (values.every((v) => typeof v === "number")) return makeVector(Float32Array.from(column as number[]));
    throw new Error(`column ${name}: mixes strings and numbers`);
  }
  if (column instanceof Int32Array) return makeVector(column);
  if (column instanceof Float32Array) return makeVector(column);
  const rows = column.values.length / column.dim;
  if (column.values instanceof Uint8Array) {
    const child = makeData({ type: new Uint8(), length: column.values.length, data: column.values });
    const type = new FixedSizeList(column.dim, new Field("item", new Uint8(), false));
    return makeVector(makeData({ type, length: rows, nullCount: 0, child }));
  }
  const child = makeData({ type: new Float32(), length: column.values.length, data: column.values });
  const type = new FixedSizeList(column.dim, new Field("item", new Float32(), false));
  return makeVector(makeData({ type, length: rows, nullCount: 0, child }));
}

/** Builds a table from equal-length columns, checking the lengths. */
export function makeTable(columns: Record<string, ColumnValues>): Table {
  const vectors: Record<string, ReturnType<typeof toVector>> = {};
  let rows: number | undefined;
  for (const [name, column] of Object.entries(columns)) {
    const v = toVector(name, column);
    if (rows !== undefined && v.length !== rows) {
      throw new Error(`column ${name} has ${v.length} rows, the others ${rows}`);
    }
    rows = v.length;
    vectors[name] = v;
  }
  return new Table(vectors);
}

/** Writes a table as an Arrow IPC file, atomically (temporary file, then rename). */
export function writeArrowFile(file: string, table: Table): void {
  writeFileAtomic(file, tableToIPC(table, "file"));
}

/**
 * An Arrow IPC file written batch by batch (a split never has to fit in memory), into a
 * temporary file renamed over `file` by `close()`; `abort()` leaves nothing behind. Every batch
 * must have the same columns and types as the first.
 */
export class ArrowFileStream {
  private readonly writer = new RecordBatchFileWriter();
  private readonly out: AtomicFile;
  private readonly finished: Promise<void>;
  private schema: Schema | undefined;
  rows = 0;

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.out = new AtomicFile(file);
    const out = fs.createWriteStream(this.out.tmp);
    this.finished = new Promise((resolve, reject) => {
      out.on("finish", () => resolve());
      out.on("error", (err) => reject(new Error(`${file}: cannot write Arrow file: ${err.message}`)));
    });
    this.writer.toNodeStream().pipe(out);
  }

  write(columns: Record<string, ColumnValues>): void {
    const table = makeTable(columns);
    if (!this.schema) this.schema = table.schema;
    else {
      const a = this.schema.fields.map((f) => `${f.name}:${f.type}`).join(",");
      const b = table.schema.fields.map((f) => `${f.name}:${f.type}`).join(",");
      if (a !== b) throw new Error(`${this.file}: batch columns (${b}) differ from the first batch's (${a})`);
    }
    for (const batch of table.batches) this.writer.write(new RecordBatch(this.schema, batch.data));
    this.rows += table.numRows;
  }

  async close(): Promise<void> {
    this.writer.finish();
    await this.finished;
    this.out.commit();
  }

  async abort(): Promise<void> {
    try {
      this.writer.finish();
      await this.finished;
    } catch {
      // the temporary file goes either way
    }
    this.out.discard();
  }
}

export function readArrowFile(file: string): Table {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    return tableFromIPC(bytes);
  } catch (err) {
    throw new Error(`${file}: not an Arrow IPC file (${(err as Error).message.split("\n")[0]})`);
  }
}

/** Copies a fixed-size-list column (all chunks) into one flat typed array. */
function readFixedSizeList<T extends Float32Array | Uint8Array>(
  table: Table,
  name: string,
  what: string,
  isItem: (item: DataType) => boolean,
  make: (n: number) => T,
): { dim: number; values: T } {
  const column = table.getChild(name);
  if (!column) throw new Error(`Arrow table has no column ${name} (columns: ${table.schema.fields.map((f) => f.name).join(", ")})`);
  const type = column.type;
  if (!(type instanceof FixedSizeList) || !isItem(type.children[0].type)) {
    throw new Error(`column ${name} is ${type}, expected a fixed-size list of ${what}`);
  }
  const dim = type.listSize;
  const values = make(column.length * dim);
  let offset = 0;
  for (const chunk of column.data) {
    const child = chunk.children[0];
    const flat = (child.values as T).subarray(chunk.offset * dim + child.offset, (chunk.offset + chunk.length) * dim + child.offset);
    values.set(flat, offset);
    offset += flat.length;
  }
  return { dim, values };
}

/** A fixed-size-list float32 column back as one flat array and its width. */
export function readVectorColumn(table: Table, name: string): { dim: number; values: Float32Array } {
  return readFixedSizeList(table, name, "float32", (t) => DataType.isFloat(t) && t.precision === Precision.SINGLE, (n) => new Float32Array(n));
}

/** A fixed-size-list uint8 column back as one flat array and its width. */
export function readUint8VectorColumn(table: Table, name: string): { dim: number; values: Uint8Array } {
  return readFixedSizeList(table, name, "uint8", (t) => DataType.isInt(t) && t.bitWidth === 8 && !t.isSigned, (n) => new Uint8Array(n));
}

export { Int32 };
