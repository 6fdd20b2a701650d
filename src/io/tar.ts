/**
 * A streaming tar reader for WebDataset shards: one 512-byte header at a time, entry data read
 * only when asked (positioned reads, so skipped entries cost no I/O beyond their header).
 *
 * Formats: POSIX ustar (name + prefix), GNU (`L` long names, `K` long link names, base-256 sizes)
 * and POSIX.1-2001 pax (`x` extended headers: `path`, `linkpath`, `size`; `g` global headers are
 * read and ignored): what GNU tar, Python's tarfile (pax by default since 3.8) and webdataset's
 * TarWriter write. https://www.gnu.org/software/tar/manual/html_node/Standard.html
 *
 * Data follows a header only for regular files and for types this reader does not know, as
 * Python's tarfile assumes. The archive ends at the first all-zero block, or at the end of the
 * file on a block boundary; a header or data cut short, or a header whose checksum does not
 * match, is a TarError naming the file and the byte offset.
 */
import * as fs from "node:fs";

const BLOCK = 512;
const CHUNK = 1 << 20;

export type TarEntryType = "file" | "directory" | "link" | "other";

export interface TarEntry {
  /** The member's path: pax `path`, GNU long name, or ustar prefix + "/" + name. */
  name: string;
  type: TarEntryType;
  /** Bytes of data (0 for directories and links). */
  size: number;
  /** Byte offset of the member's header in the archive. */
  offset: number;
  /** The member's data (a fresh copy). Valid while the archive is being iterated. */
  read(): Promise<Uint8Array>;
}

/** A damaged or truncated archive: one line naming the file and where. */
export class TarError extends Error {
  override name = "TarError";
  constructor(
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

/** Positioned reads through a forward read-ahead buffer. */
class FileReader {
  private buf = Buffer.alloc(0);
  private bufStart = 0;

  constructor(
    private readonly fh: fs.promises.FileHandle,
    readonly size: number,
  ) {}

  /** `n` bytes at `offset` (fewer only at the end of the file). The result may share the buffer. */
  async at(offset: number, n: number): Promise<Buffer> {
    if (offset >= this.bufStart && offset + n <= this.bufStart + this.buf.length) {
      return this.buf.subarray(offset - this.bufStart, offset - this.bufStart + n);
    }
    const want = Math.min(Math.max(n, CHUNK), Math.max(0, this.size - offset));
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.fh.read(buf, got, want - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    this.buf = buf.subarray(0, got);
    this.bufStart = offset;
    return this.buf.subarray(0, Math.min(n, got));
  }
}

interface Pending {
  path?: string;
  linkpath?: string;
  size?: number;
}

/** The members of the tar file at `file`, in archive order. */
export async function* readTar(file: string): AsyncGenerator<TarEntry> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TarError(file, code === "ENOENT" ? "tar file not found" : `cannot open the tar file (${code ?? (err as Error).message})`);
  }
  try {
    const reader = new FileReader(fh, (await fh.stat()).size);
    let offset = 0;
    let pending: Pending = {};
    while (offset < reader.size) {
      const header = await reader.at(offset, BLOCK);
      if (header.length < BLOCK) throw new TarError(file, `truncated tar: the header at byte ${offset} is cut short (the file ends at byte ${reader.size})`);
      if (isZeroBlock(header)) return;
      const h = parseHeader(header, file, offset);
      const dataStart = offset + BLOCK;
      const size = pending.size ?? h.size;
      const flag = h.typeflag;
      const hasData = !NO_DATA_TYPES.has(flag);
      const dataSize = hasData ? size : 0;
      if (dataStart + dataSize > reader.size) {
        throw new TarError(file, `truncated tar: member ${JSON.stringify(pending.path ?? h.name)} at byte ${offset} needs ${dataSize} bytes of data, the file ends at byte ${reader.size}`);
      }
      const readData = async (): Promise<Uint8Array> => Uint8Array.from(await reader.at(dataStart, dataSize));
      const next = dataStart + Math.ceil(dataSize / BLOCK) * BLOCK;
      if (flag === "x" || flag === "g") {
        const records = parsePax(await readData(), file, offset);
        if (flag === "x") pending = { ...pending, ...records };
      } else if (flag === "L" || flag === "K") {
        const name = decodeName(await readData());
        pending = flag === "L" ? { ...pending, path: name } : { ...pending, linkpath: name };
      } else {
        const name = pending.path ?? h.name;
        const type = entryType(flag, name);
        pending = {};
        yield { name, type, size: dataSize, offset, read: readData };
      }
      offset = next;
    }
  } finally {
    await fh.close();
  }
}

/** Types whose header is never followed by data: links, devices, directories, FIFOs. */
const NO_DATA_TYPES = new Set(["1", "2", "3", "4", "5", "6"]);

function entryType(flag: string, name: string): TarEntryType {
  if (flag === "5" || (flag === "\0" && name.endsWith("/"))) return "directory";
  if (flag === "0" || flag === "\0" || flag === "7") return "file";
  if (flag === "1" || flag === "2") return "link";
  return "other";
}

function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

interface Header {
  name: string;
  size: number;
  typeflag: string;
}

function parseHeader(b: Uint8Array, file: string, offset: number): Header {
  const stored = parseNumber(b, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 32 : b[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored === null || (stored !== unsigned && stored !== signed)) {
    throw new TarError(file, `corrupt tar: the header at byte ${offset} fails its checksum (not a tar file, or damaged)`);
  }
  const size = parseNumber(b, 124, 12);
  if (size === null) throw new TarError(file, `corrupt tar: the header at byte ${offset} has an unreadable size field`);
  const magic = latin1(b, 257, 6);
  let name = decodeName(b.subarray(0, 100));
  // POSIX ustar ("ustar\0"): a path longer than 100 bytes is split into prefix (345..500) + name.
  if (magic === "ustar\0") {
    const prefix = decodeName(b.subarray(345, 500));
    if (prefix) name = `${prefix}/${name}`;
  }
  return { name, size, typeflag: String.fromCharCode(b[156]) };
}

/** An octal field (NUL/space padded), or GNU's base-256 when the high bit of the first byte is set. */
function parseNumber(b: Uint8Array, at: number, len: number): number | null {
  if (b[at] & 0x80) {
    let v = b[at] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[at + i];
    return v;
  }
  const text = latin1(b, at, len).replace(/[\0 ]+$/, "").replace(/^[ \0]+/, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) return null;
  return parseInt(text, 8);
}

function latin1(b: Uint8Array, at: number, len: number): string {
  let s = "";
  for (let i = at; i < at + len; i++) s += String.fromCharCode(b[i]);
  return s;
}

const utf8 = new TextDecoder("utf-8");

function decodeName(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return utf8.decode(nul < 0 ? b : b.subarray(0, nul));
}

/** pax records: "LEN key=value\n", LEN counting the whole record in bytes. */
function parsePax(data: Uint8Array, file: string, offset: number): Pending {
  const out: Pending = {};
  let pos = 0;
  const bad = (why: string) => new TarError(file, `corrupt tar: the pax header at byte ${offset} ${why}`);
  while (pos < data.length) {
    if (data[pos] === 0) break; // padding
    const space = data.indexOf(0x20, pos);
    if (space < 0) throw bad("has a record without a length");
    const len = Number(latin1(data, pos, space - pos));
    if (!Number.isInteger(len) || len <= space - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) throw bad("has a record of a wrong length");
    const record = utf8.decode(data.subarray(space + 1, pos + len - 1));
    const eq = record.indexOf("=");
    if (eq < 0) throw bad("has a record without '='");
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === "path") out.path = value;
    else if (key === "linkpath") out.linkpath = value;
    else if (key === "size") {
      if (!/^\d+$/.test(value)) throw bad(`has a size ${JSON.stringify(value)} that is not a number`);
      out.size = Number(value);
    }
    pos += len;
  }
  return out;
}
