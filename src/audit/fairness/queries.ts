/**
 * Neutral text queries for the ranking probe (./ranking_bias.ts, Berg et al. 2022,
 * https://arxiv.org/abs/2203.11933) as data files, like the prompt template sets: shipped sets in
 * src/audit/fairness/queries/*.json ("neutral": 40 person-agnostic queries for a generic image
 * set, with its provenance), or the user's own file:
 *   - JSON: an array of strings, or `{ "description"?: string, "source"?: string, "queries": string[] }`;
 *   - text (any other extension): one query per line; blank lines and lines starting with # are skipped.
 * Every query must be a non-empty string without a "{}" placeholder (a query is a whole
 * sentence, not a template), distinct, and short enough for the text encoder's context.
 * Errors are one line naming the file, the entry and what was expected.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultBpe } from "../../text/tokenize";
import { checkSetFields, listJsonSets } from "../../util/data_sets";

/** Folder of the shipped query sets. */
export const QUERY_DIR = path.join(__dirname, "queries");

/** The shipped default. */
export const DEFAULT_QUERY_SET = "neutral";

export interface QuerySet {
  /** The set's name ("neutral") or, for a file, its base name. */
  name: string;
  description: string;
  source?: string;
  queries: string[];
  /** The file it was read from. */
  file: string;
}

/** Names of the shipped query sets, sorted. */
export function listQuerySets(): string[] {
  return listJsonSets(QUERY_DIR);
}

/** Throws (one line naming `where` and the entry) unless `queries` is a non-empty list of distinct, non-empty sentences. */
export function checkQueries(queries: unknown, where: string): string[] {
  if (!Array.isArray(queries) || queries.length === 0) throw new Error(`${where}: queries must be a non-empty array of strings (one neutral query each)`);
  const seen = new Set<string>();
  queries.forEach((q, i) => {
    if (typeof q !== "string") throw new TypeError(`${where}: query ${i} is not a string (${JSON.stringify(q)})`);
    if (q.trim() === "") throw new Error(`${where}: query ${i} is empty`);
    if (q.includes("{}")) throw new Error(`${where}: query ${i} ${JSON.stringify(q)} holds a "{}" placeholder; a query is a whole sentence (templates go in --templates)`);
    if (seen.has(q)) throw new Error(`${where}: query ${i} ${JSON.stringify(q)} appears twice`);
    seen.add(q);
  });
  return queries.slice() as string[];
}

/** Throws (one line) if a query needs more BPE tokens than the context, where tokenize would cut it. */
export function checkQueriesFit(queries: readonly string[], contextLength: number, where: string): void {
  const bpe = defaultBpe();
  queries.forEach((q, i) => {
    const n = bpe.encode(q).length + 2;
    if (n > contextLength) throw new Error(`${where}: query ${i} ${JSON.stringify(q)} tokenizes to ${n} tokens (with SOT/EOT), more than the model's context length ${contextLength}; shorten it`);
  });
}

/** Validates a parsed JSON query file (an array, or an object with `queries`). */
export function parseQuerySet(raw: unknown, file: string, name = path.basename(file, path.extname(file))): QuerySet {
  if (Array.isArray(raw)) return { name, description: "", queries: checkQueries(raw, file), file };
  if (raw === null || typeof raw !== "object") throw new Error(`${file}: expected an array of queries or an object {description, source, queries}, got ${raw === null ? "null" : typeof raw}`);
  const o = raw as Record<string, unknown>;
  checkSetFields(o, file, ["description", "source", "queries"]);
  if (o.queries === undefined) throw new Error(`${file}: missing field "queries" (an array of strings)`);
  return {
    name,
    description: (o.description as string | undefined) ?? "",
    ...(o.source !== undefined ? { source: o.source as string } : {}),
    queries: checkQueries(o.queries, file),
    file,
  };
}

/**
 * A query set by name (one of `listQuerySets()`) or by path (a .json file, or a text file with
 * one query per line).
 */
export function loadQuerySet(nameOrFile: string): QuerySet {
  if (typeof nameOrFile !== "string" || nameOrFile === "") throw new TypeError(`loadQuerySet: expected a set name (${listQuerySets().join(", ")}) or a file path`);
  const looksLikePath = nameOrFile.includes("/") || nameOrFile.includes(path.sep) || /\.(json|txt)$/i.test(nameOrFile);
  if (!looksLikePath) {
    const names = listQuerySets();
    if (!names.includes(nameOrFile)) throw new Error(`loadQuerySet: unknown query set ${JSON.stringify(nameOrFile)}; valid sets: ${names.join(", ")} (or a path to a .json or .txt file)`);
    return readQueryFile(path.join(QUERY_DIR, `${nameOrFile}.json`), nameOrFile);
  }
  if (!fs.existsSync(nameOrFile)) throw new Error(`${nameOrFile}: query file not found`);
  if (!fs.statSync(nameOrFile).isFile()) throw new Error(`${nameOrFile}: is not a file (expected a .json list of queries or a text file with one per line)`);
  return readQueryFile(nameOrFile);
}

function readQueryFile(file: string, name?: string): QuerySet {
  const text = fs.readFileSync(file, "utf8");
  if (file.toLowerCase().endsWith(".json")) {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file}: invalid JSON: ${(err as Error).message.split("\n")[0]}`);
    }
    return parseQuerySet(raw, file, name);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  if (lines.length === 0) throw new Error(`${file}: holds no query (one per line; # starts a comment)`);
  return { name: name ?? path.basename(file, path.extname(file)), description: "", queries: checkQueries(lines, file), file };
}
