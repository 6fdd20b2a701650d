/**
 * Atomic file writes: the data goes to a temporary file beside the target, which is then renamed
 * over it, so a reader (or a crash) never sees a half-written file. This is the one place that
 * does it; every writer of a result file goes through it.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** A temporary name beside `file` (same folder, so the rename stays on one file system). */
function tempPathFor(file: string): string {
  return path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
}

/**
 * A temporary file beside `file` for a writer that spans several calls (a stream): write to
 * `tmp`, then `commit()` renames it over `file`, or `discard()` removes it.
 */
export class AtomicFile {
  readonly tmp: string;

  constructor(readonly file: string) {
    this.tmp = tempPathFor(file);
  }

  commit(): void {
    fs.renameSync(this.tmp, this.file);
  }

  discard(): void {
    fs.rmSync(this.tmp, { force: true });
  }
}

/**
 * `write(tmp)` fills a temporary file, which then replaces `file`; on any error the temporary
 * file is removed and the error is rethrown as it was (callers with their own error types keep
 * them). The folder must exist.
 */
export function replaceFileAtomic<T>(file: string, write: (tmp: string) => T): T {
  const f = new AtomicFile(file);
  try {
    const result = write(f.tmp);
    f.commit();
    return result;
  } catch (err) {
    f.discard();
    throw err;
  }
}

function cannotWrite(file: string, err: unknown): Error {
  return new Error(`${file}: cannot write: ${(err as Error).message.split("\n")[0]}`);
}

/**
 * Writes `data` to `file` atomically, creating its folder. `write` may be given instead of data to
 * fill the temporary file itself (e.g. a stream). Errors are one line naming the file.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array | ((tmp: string) => void)): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  try {
    replaceFileAtomic(file, (tmp) => (typeof data === "function" ? data(tmp) : fs.writeFileSync(tmp, data)));
  } catch (err) {
    throw cannotWrite(file, err);
  }
}
