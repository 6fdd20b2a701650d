/**
 * `classnames.txt`: one readable class name per line, in label order, as CLIP_benchmark ships them
 * (https://github.com/LAION-AI/CLIP_benchmark) beside image folders and WebDataset shards.
 */
import * as fs from "node:fs";
import { DataError } from "../dataset";

/**
 * Reads a classnames file: one name per line (UTF-8, BOM and CR stripped, surrounding spaces
 * trimmed, trailing blank lines ignored). With `expectedCount`, a different number of names is a
 * one-line error giving both counts; a blank line inside the list or a repeated name is one too.
 */
export function readClassnames(file: string, expectedCount?: number, what = "classes"): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(file, code === "ENOENT" ? "classnames file not found" : `cannot read the classnames file (${code ?? (err as Error).message})`);
  }
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) throw new DataError(file, "classnames file is empty; expected one class name per line");
  const blank = lines.indexOf("");
  if (blank >= 0) throw new DataError(`${file}:${blank + 1}`, "blank line in the class list; expected one class name per line");
  const seen = new Map<string, number>();
  lines.forEach((name, i) => {
    const first = seen.get(name);
    if (first !== undefined) throw new DataError(`${file}:${i + 1}`, `class name ${JSON.stringify(name)} repeats line ${first + 1}`);
    seen.set(name, i);
  });
  if (expectedCount !== undefined && lines.length !== expectedCount) {
    throw new DataError(file, `has ${lines.length} class names but the data has ${expectedCount} ${what}; expected one name per line in label order`);
  }
  return lines;
}
