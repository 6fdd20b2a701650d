/**
 * `arrow:FILE`: an Arrow IPC file or stream (https://arrow.apache.org/docs/format/Columnar.html#serialization-and-interprocess-communication-ipc),
 * e.g. a Hugging Face datasets cache file, in the layout of table_source.ts, read with
 * apache-arrow. Record batches are the row groups. The file is read whole into memory (Arrow's
 * buffers are used in place, no decoding); Hugging Face writes its caches in pieces of at most
 * ~500 MB. For splits larger than memory, use Parquet. Keys are `FILE#ROW`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Vector, tableFromIPC, type Table } from "apache-arrow";
import { DataError } from "../dataset";
import type { DatasetOptions } from "../open";
import { openTable, type TableBackend, type TableDataset, type TablePart } from "./table_source";

/** An Arrow value as a plain JavaScript value: structs as objects, lists as arrays. */
function plain(v: unknown): unknown {
  if (v === null || v === undefined || typeof v !== "object" || v instanceof Uint8Array) return v ?? null;
  if (v instanceof Vector) return Array.from(v as Iterable<unknown>, plain); // a list
  const o = v as { toJSON?: () => unknown };
  if (typeof o.toJSON === "function") {
    // A struct row: its fields by name.
    const json = o.toJSON() as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(json)) out[k] = plain(x);
    return out;
  }
  return v;
}

class ArrowBackend implements TableBackend {
  readonly parts: TablePart[];
  readonly metadata: ReadonlyMap<string, string>;

  constructor(
    readonly file: string,
    private readonly table: Table,
  ) {
    this.parts = [{ file, columns: table.schema.fields.map((f) => f.name), groupRows: table.batches.map((b) => b.numRows) }];
    this.metadata = table.schema.metadata;
  }

  async readGroup(_part: number, group: number, columns: string[]): Promise<Record<string, unknown>[]> {
    const batch = this.table.batches[group];
    const vectors = columns.map((c) => [c, batch.getChild(c)] as const);
    const rows: Record<string, unknown>[] = [];
    for (let i = 0; i < batch.numRows; i++) {
      const row: Record<string, unknown> = {};
      for (const [c, vec] of vectors) row[c] = plain(vec?.get(i));
      rows.push(row);
    }
    return rows;
  }
}

export async function openArrow(target: string, opts: DatasetOptions, spec: string): Promise<TableDataset> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(target, code === "ENOENT" ? "Arrow file not found" : `cannot read the Arrow file (${code ?? (err as Error).message})`);
  }
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (err) {
    throw new DataError(target, `is not an Arrow IPC file or stream (${String((err as Error).message ?? err).split("\n")[0]})`);
  }
  if (table.schema.fields.length === 0) throw new DataError(target, "is not an Arrow IPC file or stream (no schema found)");
  return openTable(spec, path.basename(target).replace(/\.[^.]*$/, ""), new ArrowBackend(target, table), opts);
}
