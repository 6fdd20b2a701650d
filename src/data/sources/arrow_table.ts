/**
 * `arrow:FILE`: an Arrow IPC file or stream (https://arrow.apache.org/docs/format/Columnar.html#serialization-and-interprocess-communication-ipc),
 * e.g. a Hugging Face datasets cache file or a Feather v2 file, in the layout of
 * table_source.ts. Record batches are the row groups.
 *
 * Opening reads only message headers (a stream's schema, dictionary and record-batch messages;
 * a file's footer and its batches' headers): where each batch is and how many rows it holds.
 * So the file never needs to fit in memory: a batch is read by cutting its bytes, with the
 * schema and the dictionaries before it, into a small IPC stream that apache-arrow decodes.
 * Keys are `FILE#ROW`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Message, MessageHeader, RecordBatchReader, Vector, tableFromIPC, type RecordBatch, type Schema } from "apache-arrow";
import { DataError } from "../dataset";
import type { DatasetOptions } from "../open";
import { openTable, type TableBackend, type TableDataset, type TablePart } from "./table_source";

const MAGIC = "ARROW1";
const EOS = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** An encapsulated IPC message: where it is (prefix, metadata and body) and, for a batch, its rows. */
interface MessageRef {
  offset: number;
  length: number;
  rows: number;
}

interface ArrowIndex {
  schema: Schema;
  /** The schema as an encapsulated message, to start the stream a batch is decoded from. */
  schemaBytes: Uint8Array;
  dictionaries: MessageRef[];
  batches: MessageRef[];
}

async function readAt(fh: fs.promises.FileHandle, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(out, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? out : out.subarray(0, got);
}

/** An encapsulated message: continuation marker, metadata length, metadata padded to 8 bytes. */
function frame(metadata: Uint8Array): Uint8Array {
  const padded = Math.ceil(metadata.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  const view = new DataView(out.buffer);
  view.setInt32(0, -1, true);
  view.setInt32(4, padded, true);
  out.set(metadata, 8);
  return out;
}

type Bad = (why: string) => DataError;

/** The message at `pos` (`end` bounds it): its metadata decoded, its total length; null at end of stream. */
async function messageAt(fh: fs.promises.FileHandle, pos: number, end: number, bad: Bad): Promise<{ message: Message; length: number } | null> {
  const prefix = await readAt(fh, pos, Math.min(8, end - pos));
  if (prefix.length < 4) throw bad(`truncated message at byte ${pos}; truncated?`);
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const continuation = view.getInt32(0, true) === -1;
  if (continuation && prefix.length < 8) throw bad(`the message at byte ${pos} is cut short; truncated?`);
  const metaLength = continuation ? view.getInt32(4, true) : view.getInt32(0, true);
  const prefixLength = continuation ? 8 : 4;
  if (metaLength === 0) return null; // end of stream
  if (metaLength < 0 || pos + prefixLength + metaLength > end) throw bad(`the message at byte ${pos} runs past the end of the file; truncated?`);
  let message: Message;
  try {
    message = Message.decode(await readAt(fh, pos + prefixLength, metaLength));
  } catch (err) {
    throw bad(`unreadable message at byte ${pos}: ${String((err as Error).message ?? err).split("\n")[0]}`);
  }
  const length = prefixLength + metaLength + Number(message.bodyLength);
  if (pos + length > end) throw bad(`the message at byte ${pos} runs past the end of the file; truncated?`);
  return { message, length };
}

function batchRows(message: Message): number {
  return Number((message.header() as { length: number | bigint }).length);
}

/** An IPC stream: walks its messages (schema first, then dictionaries and batches). */
async function indexStream(fh: fs.promises.FileHandle, size: number, bad: Bad): Promise<ArrowIndex> {
  let schema: Schema | undefined;
  let schemaBytes: Uint8Array | undefined;
  const dictionaries: MessageRef[] = [];
  const batches: MessageRef[] = [];
  for (let pos = 0; pos + 4 <= size; ) {
    const m = await messageAt(fh, pos, size, bad);
    if (!m) break;
    const ref: MessageRef = { offset: pos, length: m.length, rows: 0 };
    if (m.message.headerType === MessageHeader.Schema) {
      schema = m.message.header() as Schema;
      schemaBytes = await readAt(fh, pos, m.length);
    } else if (m.message.headerType === MessageHeader.DictionaryBatch) {
      dictionaries.push(ref);
    } else if (m.message.headerType === MessageHeader.RecordBatch) {
      ref.rows = batchRows(m.message);
      batches.push(ref);
    }
    pos += m.length;
  }
  if (!schema || !schemaBytes) throw bad("no schema message found");
  return { schema, schemaBytes, dictionaries, batches };
}

/** An IPC file: the footer gives the schema and where the dictionaries and batches are. */
async function indexFile(file: string, fh: fs.promises.FileHandle, size: number, bad: Bad): Promise<ArrowIndex> {
  const tail = await readAt(fh, Math.max(0, size - 6), 6);
  if (size < 18 || new TextDecoder().decode(tail) !== MAGIC) throw bad("an Arrow file must end with ARROW1; truncated?");
  const footerHandle = await fs.promises.open(file, "r");
  let schema: Schema;
  let blocks: { offset: number; length: number }[];
  let dictBlocks: { offset: number; length: number }[];
  try {
    const reader = await RecordBatchReader.from(footerHandle);
    await reader.open();
    if (!reader.isFile() || !reader.footer) throw new Error("no footer");
    schema = reader.schema;
    const toRef = (b: { offset: number | bigint; metaDataLength: number; bodyLength: number | bigint }) => ({ offset: Number(b.offset), length: b.metaDataLength + Number(b.bodyLength) });
    blocks = [...reader.footer.recordBatches()].map(toRef);
    dictBlocks = [...reader.footer.dictionaryBatches()].map(toRef);
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw bad(`unreadable footer: ${String((err as Error).message ?? err).split("\n")[0]}`);
  } finally {
    await footerHandle.close().catch(() => undefined);
  }
  const batches: MessageRef[] = [];
  for (const b of blocks) {
    const m = await messageAt(fh, b.offset, size, bad);
    if (!m || m.message.headerType !== MessageHeader.RecordBatch) throw bad(`the footer points at byte ${b.offset}, which holds no record batch`);
    batches.push({ offset: b.offset, length: b.length, rows: batchRows(m.message) });
  }
  return { schema, schemaBytes: frame(Message.encode(Message.from(schema))), dictionaries: dictBlocks.map((d) => ({ ...d, rows: 0 })), batches };
}

async function indexArrow(file: string, fh: fs.promises.FileHandle): Promise<ArrowIndex> {
  const size = (await fh.stat()).size;
  const bad: Bad = (why) => new DataError(file, `is not an Arrow IPC file or stream (${why})`);
  const head = await readAt(fh, 0, Math.min(size, 6));
  return new TextDecoder().decode(head) === MAGIC ? indexFile(file, fh, size, bad) : indexStream(fh, size, bad);
}

/** An Arrow value as a plain JavaScript value: structs as objects, lists as arrays. */
function plain(v: unknown): unknown {
  if (v === null || v === undefined || typeof v !== "object" || v instanceof Uint8Array) return v ?? null;
  if (v instanceof Vector) return Array.from(v as Iterable<unknown>, plain); // a list
  const o = v as { toJSON?: () => unknown };
  if (typeof o.toJSON === "function") {
    // A struct row: its fields by name.
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o.toJSON() as Record<string, unknown>)) out[k] = plain(x);
    return out;
  }
  return v;
}

class ArrowBackend implements TableBackend {
  readonly parts: TablePart[];
  readonly metadata: ReadonlyMap<string, string>;

  constructor(
    readonly file: string,
    private readonly index: ArrowIndex,
  ) {
    this.parts = [{ file, columns: index.schema.fields.map((f) => f.name), groupRows: index.batches.map((b) => b.rows) }];
    this.metadata = index.schema.metadata;
  }

  /** Batch `group` decoded from a stream of its own: the schema, the dictionaries before it, the batch. */
  private async batch(group: number): Promise<RecordBatch> {
    const ref = this.index.batches[group];
    const refs = [...this.index.dictionaries.filter((d) => d.offset < ref.offset), ref];
    const fh = await fs.promises.open(this.file, "r");
    let parts: Uint8Array[];
    try {
      parts = await Promise.all(refs.map((r) => readAt(fh, r.offset, r.length)));
    } finally {
      await fh.close();
    }
    try {
      const table = tableFromIPC(Buffer.concat([this.index.schemaBytes, ...parts, EOS]));
      if (table.batches.length !== 1) throw new Error(`expected one record batch, got ${table.batches.length}`);
      return table.batches[0];
    } catch (err) {
      throw new Error(`${this.file}: record batch ${group} (at byte ${ref.offset}) cannot be read: ${String((err as Error).message ?? err).split("\n")[0]}`);
    }
  }

  async readGroup(_part: number, group: number, columns: string[]): Promise<Record<string, unknown>[]> {
    const batch = await this.batch(group);
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
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(target, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(target, code === "ENOENT" ? "Arrow file not found" : `cannot read the Arrow file (${code ?? (err as Error).message})`);
  }
  let index: ArrowIndex;
  try {
    index = await indexArrow(target, fh);
  } finally {
    await fh.close();
  }
  return openTable(spec, path.basename(target).replace(/\.[^.]*$/, ""), new ArrowBackend(target, index), opts);
}
