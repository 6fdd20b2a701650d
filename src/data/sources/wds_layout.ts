/**
 * Where a WebDataset's shards and side files are: the shard list a `wds:` target names, and the
 * files CLIP_benchmark's export writes beside them
 * (https://github.com/LAION-AI/CLIP_benchmark, `webdataset_builder.py`):
 *
 *   ROOT/classnames.txt                           one class name per line, in label order
 *   ROOT/zeroshot_classification_templates.txt    one template per line, "{c}" for the class
 *   ROOT/dataset_type.txt                         "retrieval": `txt` holds one caption per line
 *   ROOT/SPLIT/nshards.txt                        the number of shards, named 0.tar .. N-1.tar
 *
 * Side files are looked for in the shards' folder first, then in its parent. open_clip's
 * `sizes.json` in the shards' folder (shard base name -> sample count) gives the size cheaply.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PLACEHOLDER } from "../../text/fill";
import { expandShardList } from "../braces";
import { DataError } from "../dataset";

export interface WdsLayout {
  shards: string[];
  /** The folder of the first shard. */
  dir: string;
  /** A side file in the shards' folder or its parent, when present. */
  sideFile(name: string): string | undefined;
}

/**
 * The shards `target` names: a brace pattern (or several joined by `::`), or a folder (its
 * `nshards.txt` names 0.tar .. N-1.tar, else every `*.tar` in it, sorted). Every shard must exist.
 */
export function resolveShards(target: string): WdsLayout {
  let shards: string[];
  if (isDirectory(target)) {
    const nshards = path.join(target, "nshards.txt");
    if (fs.existsSync(nshards)) {
      const text = fs.readFileSync(nshards, "utf8").trim();
      if (!/^\d+$/.test(text) || Number(text) < 1) throw new DataError(nshards, `expected a positive number of shards, got ${JSON.stringify(text)}`);
      shards = Array.from({ length: Number(text) }, (_, i) => path.join(target, `${i}.tar`));
    } else {
      shards = fs
        .readdirSync(target)
        .filter((f) => f.endsWith(".tar"))
        .sort()
        .map((f) => path.join(target, f));
      if (shards.length === 0) throw new DataError(target, "folder holds no .tar shards (and no nshards.txt); expected NAME.tar files or a brace pattern like shards/{0000..0009}.tar");
    }
  } else {
    let names: string[];
    try {
      names = expandShardList(target);
    } catch (err) {
      throw new DataError(target, (err as Error).message);
    }
    if (names.length === 0) throw new DataError(target, "the pattern names no shard");
    shards = names;
  }
  const missing = shards.filter((s) => !isFile(s));
  if (missing.length === shards.length) {
    throw new DataError(target, `no shard matches this pattern (${shards.length === 1 ? "" : `it names ${shards.length} files, e.g. `}${shards[0]}, and none exists)`);
  }
  if (missing.length > 0) {
    throw new DataError(missing[0], `shard not found (${missing.length} of the ${shards.length} shards ${JSON.stringify(target)} names are missing)`);
  }
  const dir = path.dirname(shards[0]);
  return {
    shards,
    dir,
    sideFile(name: string) {
      return [path.join(dir, name), path.join(dir, "..", name)].find(isFile);
    },
  };
}

/**
 * CLIP_benchmark's templates: one per line, blank lines skipped, "{c}" marking the class name,
 * returned with cliplab's "{}" instead. A template without a class slot is an error naming the line.
 */
export function readTemplates(file: string): string[] {
  const lines = fs.readFileSync(file, "utf8").replace(/^\uFEFF/, "").split(/\r?\n/);
  const out: string[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    const filled = line.split("{c}").join(PLACEHOLDER);
    if (filled.split(PLACEHOLDER).length !== 2) throw new DataError(`${file}:${i + 1}`, `template ${JSON.stringify(line)} must hold exactly one "{c}" where the class name goes`);
    out.push(filled);
  });
  if (out.length === 0) throw new DataError(file, "holds no template; expected one per line, with {c} for the class name");
  return out;
}

/** open_clip's `sizes.json`: the total over `shards`, or undefined when a shard is not listed. */
export function sizeFromSizesJson(file: string, shards: readonly string[]): number | undefined {
  let sizes: Record<string, unknown>;
  try {
    sizes = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new DataError(file, `is not valid JSON (${(err as Error).message.split("\n")[0]}); expected {"SHARD.tar": COUNT, ...}`);
  }
  let total = 0;
  for (const s of shards) {
    const n = Number(sizes?.[path.basename(s)]);
    if (!Number.isInteger(n) || n < 0) return undefined;
    total += n;
  }
  return total;
}

/** CLIP_benchmark's `dataset_type.txt` ("classification", "retrieval", "multilabel"), lower-cased. */
export function readDatasetType(file: string): string {
  return fs.readFileSync(file, "utf8").trim().toLowerCase();
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
