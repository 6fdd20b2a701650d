/**
 * A streaming CSV/TSV parser (RFC 4180, https://www.rfc-editor.org/rfc/rfc4180): fields
 * separated by one character; a field in double quotes may hold separators, line breaks and
 * doubled quotes (`""` for `"`); records end at LF, CRLF or a lone CR. UTF-8, a leading BOM
 * dropped, invalid bytes an error. As pandas and Python's csv module read them: a quote inside
 * an unquoted field is kept literally, and blank lines are skipped. A character other than a
 * separator or a line break after a closing quote, or a quote never closed, is an error naming
 * the line.
 *
 * Each record carries the physical line (1-based) where it starts, for messages and item keys.
 */
import * as fs from "node:fs";
import { DataError } from "./dataset";

export interface CsvRecord {
  fields: string[];
  /** The physical line (1-based) the record starts on. */
  line: number;
}

const enum State {
  FieldStart,
  Unquoted,
  Quoted,
  /** A quote seen inside a quoted field: a doubled quote or the closing one. */
  QuoteInQuoted,
}

/** An incremental parser: `push` text chunks (any split), then `end`. */
export class CsvParser {
  private state = State.FieldStart;
  private field = "";
  private fields: string[] = [];
  private quotedField = false;
  private line = 1;
  private recordLine = 1;
  private quoteLine = 1;
  private prevCR = false;

  constructor(
    readonly separator: string,
    readonly file: string,
  ) {
    if (separator.length !== 1 || separator === '"' || separator === "\n" || separator === "\r") {
      throw new RangeError(`CSV separator must be one character other than a quote or a line break, got ${JSON.stringify(separator)}`);
    }
  }

  /** Parses `chunk`; returns the records it completed. */
  push(chunk: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    const sep = this.separator;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const ch = chunk[i];
      // A LF right after a CR: the CR already ended the line (or was kept inside quotes).
      if (this.prevCR && ch === "\n") {
        this.prevCR = false;
        if (this.state === State.Quoted) this.field += "\n";
        i++;
        continue;
      }
      this.prevCR = false;
      switch (this.state) {
        case State.FieldStart:
        case State.Unquoted: {
          if (this.state === State.FieldStart && ch === '"') {
            this.state = State.Quoted;
            this.quotedField = true;
            this.quoteLine = this.line;
            i++;
            break;
          }
          // Scan the unquoted run up to a separator or a line break.
          let j = i;
          while (j < n) {
            const c = chunk[j];
            if (c === sep || c === "\n" || c === "\r") break;
            j++;
          }
          this.field += chunk.slice(i, j);
          this.state = State.Unquoted;
          i = j;
          if (i < n) i = this.delimiter(chunk[i], i, out);
          break;
        }
        case State.Quoted: {
          const q = chunk.indexOf('"', i);
          const end = q < 0 ? n : q;
          const text = chunk.slice(i, end);
          this.countBreaks(text, q < 0);
          this.field += text;
          if (q < 0) {
            i = n;
          } else {
            this.state = State.QuoteInQuoted;
            i = q + 1;
          }
          break;
        }
        case State.QuoteInQuoted: {
          if (ch === '"') {
            this.field += '"';
            this.state = State.Quoted;
            i++;
          } else if (ch === sep || ch === "\n" || ch === "\r") {
            i = this.delimiter(ch, i, out);
          } else {
            throw new DataError(`${this.file}:${this.line}`, `unexpected ${JSON.stringify(ch)} after the closing quote of a field; a field holding quotes must be quoted whole, with each quote doubled`);
          }
          break;
        }
      }
    }
    return out;
  }

  /** Flushes the last record; an unclosed quote is an error. */
  end(): CsvRecord[] {
    if (this.state === State.Quoted) throw new DataError(`${this.file}:${this.quoteLine}`, "a quoted field opened on this line is never closed");
    const out: CsvRecord[] = [];
    if (this.fields.length > 0 || this.field !== "" || this.quotedField) this.finishRecord(out);
    return out;
  }

  /** Handles a separator or line break outside quotes at `chunk[i]`; returns the next position. */
  private delimiter(ch: string, i: number, out: CsvRecord[]): number {
    if (ch === this.separator) {
      this.fields.push(this.field);
      this.field = "";
      this.quotedField = false;
      this.state = State.FieldStart;
      return i + 1;
    }
    // A line break: the record ends (a blank line is no record).
    if (this.fields.length > 0 || this.field !== "" || this.quotedField) this.finishRecord(out);
    this.line++;
    this.recordLine = this.line;
    this.prevCR = ch === "\r";
    return i + 1;
  }

  private finishRecord(out: CsvRecord[]): void {
    this.fields.push(this.field);
    out.push({ fields: this.fields, line: this.recordLine });
    this.fields = [];
    this.field = "";
    this.quotedField = false;
    this.state = State.FieldStart;
  }

  /**
   * Counts the line breaks inside quoted text (LF, CRLF or CR). A CR ending the chunk may be the
   * first half of a CRLF split across chunks: the LF then opening the next chunk is not counted.
   */
  private countBreaks(text: string, endsChunk: boolean): void {
    for (let k = 0; k < text.length; k++) {
      const c = text[k];
      if (c === "\r") {
        this.line++;
        if (k + 1 < text.length) {
          if (text[k + 1] === "\n") k++;
        } else {
          this.prevCR = endsChunk;
        }
      } else if (c === "\n") {
        this.line++;
      }
    }
  }
}

/** Every record of `text` (whole). */
export function parseCsv(text: string, separator: string, file = "<text>"): CsvRecord[] {
  const p = new CsvParser(separator, file);
  return [...p.push(text.replace(/^\uFEFF/, "")), ...p.end()];
}

/** The records of a CSV file, streamed (the file never needs to fit in memory as text). */
export async function* readCsvRecords(file: string, separator: string, chunkBytes = 1 << 20): AsyncGenerator<CsvRecord> {
  const parser = new CsvParser(separator, file);
  const decoder = new TextDecoder("utf-8", { fatal: true }); // drops a leading BOM
  let offset = 0;
  const stream = fs.createReadStream(file, { highWaterMark: chunkBytes });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        throw new DataError(file, `is not UTF-8 text (an invalid byte sequence within bytes ${offset}..${offset + chunk.length}); save it as UTF-8`);
      }
      offset += chunk.length;
      for (const r of parser.push(text)) yield r;
    }
    try {
      const tail = decoder.decode();
      if (tail) for (const r of parser.push(tail)) yield r;
    } catch {
      throw new DataError(file, "is not UTF-8 text (it ends inside a multi-byte character); save it as UTF-8");
    }
    for (const r of parser.end()) yield r;
  } finally {
    stream.destroy();
  }
}
