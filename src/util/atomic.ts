/**
 * Atomic file writes: the data goes to a temporary file beside the target, which is then renamed
 * over it, so a reader (or a crash) never sees a half-written file.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** A temporary name beside `file` (same folder, so the rename stays on one file system). */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
}

/**
 * Writes `data` to `file` atomically, creating its folder. `write` may be given instead of data to
 * fill the temporary file itself (e.g. a stream). Errors are one line naming the file.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array | ((tmp: string) => void)): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = tempPathFor(file);
  try {
    if (typeof data === "function") data(tmp);
    else fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`${file}: cannot write: ${(err as Error).message.split("\n")[0]}`);
  }
}

/** The async form, for writers that await (an Arrow stream, a large buffer). */
export async function writeFileAtomicAsync(file: string, write: (tmp: string) => Promise<void>): Promise<void> {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = tempPathFor(file);
  try {
    await write(tmp);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`${file}: cannot write: ${(err as Error).message.split("\n")[0]}`);
  }
}
