/**
 * `parquet:FILE|DIR`: Parquet files in the Hugging Face datasets layout (see table_source.ts),
 * read with hyparquet (https://github.com/hyparam/hyparquet, pure JavaScript) and its
 * decompressors (snappy, gzip, zstd, brotli, lz4). A DIR reads its `*.parquet` files in sorted
 * order as one dataset; a `*` in the last path component selects files
 * (`parquet:data/train-*.parquet`). Only the needed columns of one row group are decoded at a
 * time, so a split never needs to fit in memory. Keys are `FILE#ROW` (the row within its file).
 *
 * `arrow:FILE` (Arrow IPC file or stream) is in arrow_table.ts and re-exported here.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { DataError } from "../dataset";
import type { DatasetOptions } from "../open";
import { listTableFiles, openTable, type TableBackend, type TableDataset, type TablePart } from "./table_source";

export { openArrow } from "./arrow_table";

/** Positioned reads of a local file (opened per read, so no handle outlives a call). */
function fileBuffer(file: string, byteLength: number): AsyncBuffer {
  return {
    byteLength,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = end ?? byteLength;
      const out = new Uint8Array(Math.max(0, stop - start));
      const fh = await fs.promises.open(file, "r");
      try {
        let got = 0;
        while (got < out.length) {
          const { bytesRead } = await fh.read(out, got, out.length - got, start + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
      } finally {
        await fh.close();
      }
      return out.buffer;
    },
  };
}

interface ParquetFile {
  file: string;
  buffer: AsyncBuffer;
  metadata: FileMetaData;
}

async function openParquetFile(file: string): Promise<ParquetFile> {
  const buffer = fileBuffer(file, fs.statSync(file).size);
  try {
    return { file, buffer, metadata: await parquetMetadataAsync(buffer) };
  } catch (err) {
    throw new DataError(file, `is not a readable Parquet file (${String((err as Error).message ?? err).split("\n")[0]})`);
  }
}

class ParquetBackend implements TableBackend {
  readonly parts: TablePart[];
  readonly metadata: ReadonlyMap<string, string>;

  constructor(private readonly files: ParquetFile[]) {
    this.parts = files.map((f) => ({
      file: f.file,
      columns: parquetSchema(f.metadata).children.map((c) => c.element.name),
      groupRows: f.metadata.row_groups.map((g) => Number(g.num_rows)),
    }));
    this.metadata = new Map((files[0].metadata.key_value_metadata ?? []).map((kv) => [kv.key, kv.value ?? ""]));
  }

  async readGroup(part: number, group: number, columns: string[]): Promise<Record<string, unknown>[]> {
    const f = this.files[part];
    const groups = f.metadata.row_groups;
    let rowStart = 0;
    for (let g = 0; g < group; g++) rowStart += Number(groups[g].num_rows);
    const rowEnd = rowStart + Number(groups[group].num_rows);
    try {
      return await parquetReadObjects({ file: f.buffer, metadata: f.metadata, columns, rowStart, rowEnd, compressors, utf8: false });
    } catch (err) {
      // A damaged file, not a bad image: never skipped.
      throw new Error(`${f.file}: row group ${group} (rows ${rowStart}..${rowEnd - 1}) cannot be read: ${String((err as Error).message ?? err).split("\n")[0]}`);
    }
  }
}

/** A short name: the file's base name, or the folder's (the one above a `data` folder, as on the Hub). */
function tableName(target: string, files: string[]): string {
  if (files.length === 1 && files[0] === target) return path.basename(target).replace(/\.[^.]*$/, "");
  const dir = path.resolve(fs.existsSync(target) && fs.statSync(target).isDirectory() ? target : path.dirname(target));
  return path.basename(dir) === "data" ? path.basename(path.dirname(dir)) : path.basename(dir);
}

export async function openParquet(target: string, opts: DatasetOptions, spec: string): Promise<TableDataset> {
  const files = listTableFiles(target, ".parquet");
  const opened: ParquetFile[] = [];
  for (const f of files) opened.push(await openParquetFile(f)); // one at a time: a folder may hold thousands
  return openTable(spec, tableName(target, files), new ParquetBackend(opened), opts);
}
