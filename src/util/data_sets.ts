/**
 * What the shipped data-file sets (prompt templates, neutral queries, harmful labels) share: a
 * folder of JSON files named by set, and the header fields of a set's object form.
 */
import * as fs from "node:fs";

/** Names of the JSON sets in `dir` (file names without .json), sorted. */
export function listJsonSets(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** Throws (one line naming the file) on a field not in `allowed`, or a description or source that is not a string. */
export function checkSetFields(o: Record<string, unknown>, file: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new Error(`${file}: unknown field ${JSON.stringify(k)}; valid fields: ${allowed.join(", ")}`);
  for (const k of ["description", "source"]) if (o[k] !== undefined && typeof o[k] !== "string") throw new Error(`${file}: field ${k} must be a string`);
}
