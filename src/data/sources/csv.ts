/**
 * `csv:FILE`: open_clip's CSV/TSV image-text pairs (`--csv-img-key filepath`, `--csv-caption-key
 * title`, `--csv-separator`, tab by default; https://github.com/mlfoundations/open_clip,
 * `open_clip_train/data.py`), with a comma for files ending in `.csv` unless a separator is given.
 * Beyond open_clip: a label column (class indices, or class names) and group columns.
 *
 *   - Image paths are relative to the CSV file's folder; absolute paths are kept.
 *   - Labels: when every value is a non-negative integer they are class indices (names from the
 *     classnames file, else "0".."max"); otherwise they are class names, the classes being the
 *     sorted unique names unless a classnames file lists them (in label order).
 *   - The caption column is required unless a label column is given.
 *   - An item's key is `FILE:LINE`, the physical line its row starts on.
 *
 * The file is parsed once at open (streamed; only the needed columns are kept); images are read
 * on demand, so random access (`get`) is cheap.
 */
import * as path from "node:path";
import * as fs from "node:fs";
import { templateCaptioner } from "../captioner";
import { readCsvRecords } from "../csv_parse";
import { DataError, readIndexed, type Captioner, type DataItem, type Dataset, type ReadOptions } from "../dataset";
import type { DatasetOptions } from "../open";
import { readClassnames } from "./classnames";
import { readImageBytes } from "./image_folder";

export const CSV_DEFAULT_IMAGE_KEY = "filepath";
export const CSV_DEFAULT_CAPTION_KEY = "title";

/** The default separator for `file`: a comma for `.csv`, else a tab (open_clip's default). */
export function defaultSeparator(file: string): string {
  return file.toLowerCase().endsWith(".csv") ? "," : "\t";
}

function separatorName(sep: string): string {
  return sep === "\t" ? "tab" : sep === "," ? "comma" : JSON.stringify(sep);
}

interface Rows {
  lines: number[];
  paths: string[];
  captions: string[] | null;
  labels: Int32Array | null;
  groups: string[][];
}

export class CsvDataset implements Dataset {
  readonly hasCaptions: boolean;
  readonly hasLabels: boolean;
  readonly size: number;
  readonly captioner?: Captioner;
  private readonly dir: string;

  constructor(
    readonly spec: string,
    readonly file: string,
    private readonly rows: Rows,
    readonly classNames: readonly string[] | undefined,
    readonly groupKeys: readonly string[],
  ) {
    this.dir = path.dirname(file);
    this.hasCaptions = rows.captions !== null;
    this.hasLabels = rows.labels !== null;
    this.size = rows.lines.length;
    if (classNames) this.captioner = templateCaptioner(classNames);
  }

  get name(): string {
    return path.basename(this.file).replace(/\.[^.]*$/, "");
  }

  /** The key of row `index`: `FILE:LINE`. */
  keyOf(index: number): string {
    return `${this.file}:${this.rows.lines[index]}`;
  }

  /** Where row `index`'s image is: relative paths resolved against the CSV's folder. */
  imagePath(index: number): string {
    const p = this.rows.paths[index];
    return path.isAbsolute(p) ? p : path.join(this.dir, p);
  }

  async get(index: number): Promise<DataItem> {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`${this.spec}: index ${index} outside [0, ${this.size})`);
    const key = this.keyOf(index);
    if (this.rows.paths[index].trim() === "") throw new DataError(key, "empty image path");
    let bytes: Uint8Array;
    try {
      bytes = readImageBytes(this.imagePath(index));
    } catch (err) {
      if (err instanceof DataError) throw new DataError(key, `${err.message.slice(err.where.length + 2)}: ${err.where}`);
      throw err;
    }
    const caption = this.rows.captions?.[index];
    const item: DataItem = { key, index, image: { kind: "encoded", bytes }, captions: caption === undefined || caption.trim() === "" ? [] : [caption] };
    if (this.rows.labels) item.label = this.rows.labels[index];
    if (this.groupKeys.length > 0) {
      const groups: Record<string, string> = {};
      this.groupKeys.forEach((g, k) => (groups[g] = this.rows.groups[k][index]));
      item.groups = groups;
    }
    return item;
  }

  items(opts: ReadOptions = {}): AsyncIterable<DataItem> {
    return readIndexed(this.size, (i) => this.get(i), opts);
  }
}

/** Class indices from the label column's values, and the class names. */
function resolveLabels(file: string, labelKey: string, values: string[], lines: number[], classnamesFile: string | undefined): { labels: Int32Array; classNames: string[] } {
  const labels = new Int32Array(values.length);
  const empty = values.findIndex((v) => v.trim() === "");
  if (empty >= 0) throw new DataError(`${file}:${lines[empty]}`, `empty label in column ${JSON.stringify(labelKey)}`);
  const asIndices = values.every((v) => /^\d+$/.test(v.trim()));
  if (asIndices) {
    let max = 0;
    values.forEach((v, i) => {
      labels[i] = Number(v.trim());
      max = Math.max(max, labels[i]);
    });
    if (!classnamesFile) return { labels, classNames: Array.from({ length: max + 1 }, (_, i) => String(i)) };
    const names = readClassnames(classnamesFile);
    if (names.length <= max) {
      const at = values.findIndex((v) => Number(v.trim()) >= names.length);
      throw new DataError(classnamesFile, `has ${names.length} class names but ${file}:${lines[at]} has label ${max} in column ${JSON.stringify(labelKey)}; expected at least ${max + 1} names, in label order`);
    }
    return { labels, classNames: names };
  }
  const trimmed = values.map((v) => v.trim());
  const names = classnamesFile ? readClassnames(classnamesFile) : [...new Set(trimmed)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(names.map((n, i) => [n, i]));
  trimmed.forEach((v, i) => {
    const c = index.get(v);
    if (c === undefined) {
      const some = names.slice(0, 8).map((n) => JSON.stringify(n)).join(", ") + (names.length > 8 ? ", ..." : "");
      throw new DataError(`${file}:${lines[i]}`, `label ${JSON.stringify(v)} in column ${JSON.stringify(labelKey)} is not among the ${names.length} class names of ${classnamesFile} (${some})`);
    }
    labels[i] = c;
  });
  return { labels, classNames: names };
}

export async function openCsv(target: string, opts: DatasetOptions, spec: string): Promise<CsvDataset> {
  const file = target;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new DataError(file, "CSV file not found");
  }
  if (!stat.isFile()) throw new DataError(file, "is not a file; csv:FILE needs a CSV or TSV file");
  const sep = opts.separator ?? defaultSeparator(file);
  const imageKey = opts.imageKey ?? CSV_DEFAULT_IMAGE_KEY;
  const captionKey = opts.captionKey ?? CSV_DEFAULT_CAPTION_KEY;
  const { labelKey } = opts;
  const groupKeys = opts.groupKeys ?? [];

  let header: string[] | null = null;
  let cols: { image: number; caption: number; label: number; groups: number[] } | null = null;
  const rows: Rows = { lines: [], paths: [], captions: null, labels: null, groups: groupKeys.map(() => []) };
  const labelValues: string[] = [];

  for await (const rec of readCsvRecords(file, sep)) {
    if (header === null) {
      header = rec.fields;
      cols = columnsOf(file, header, sep, { imageKey, captionKey, captionGiven: opts.captionKey !== undefined, labelKey, groupKeys });
      if (cols.caption >= 0) rows.captions = [];
      continue;
    }
    if (rec.fields.length !== header.length) {
      throw new DataError(`${file}:${rec.line}`, `has ${rec.fields.length} fields, expected ${header.length} as in the header (separator: ${separatorName(sep)})`);
    }
    const c = cols!;
    rows.lines.push(rec.line);
    rows.paths.push(rec.fields[c.image]);
    if (rows.captions) rows.captions.push(rec.fields[c.caption]);
    if (c.label >= 0) labelValues.push(rec.fields[c.label]);
    c.groups.forEach((g, k) => rows.groups[k].push(rec.fields[g]));
  }
  if (header === null) throw new DataError(file, `is empty; expected a header line naming the columns (${imageKey}, ${labelKey ?? captionKey})`);
  if (rows.lines.length === 0) throw new DataError(file, "has a header but no rows");

  let classNames: string[] | undefined;
  if (labelKey !== undefined) {
    const resolved = resolveLabels(file, labelKey, labelValues, rows.lines, opts.classnamesFile);
    rows.labels = resolved.labels;
    classNames = resolved.classNames;
  } else if (opts.classnamesFile) {
    throw new DataError(opts.classnamesFile, "a classnames file needs a label column (--csv-label-key)");
  }
  return new CsvDataset(spec, file, rows, classNames, groupKeys);
}

function columnsOf(
  file: string,
  header: string[],
  sep: string,
  k: { imageKey: string; captionKey: string; captionGiven: boolean; labelKey?: string; groupKeys: string[] },
): { image: number; caption: number; label: number; groups: number[] } {
  const seen = new Map<string, number>();
  header.forEach((h, i) => {
    if (seen.has(h)) throw new DataError(`${file}:1`, `column ${JSON.stringify(h)} appears twice in the header`);
    seen.set(h, i);
  });
  const found = `columns found (separator: ${separatorName(sep)}): ${header.map((h) => JSON.stringify(h)).join(", ")}`;
  const need = (name: string, what: string) => {
    const i = seen.get(name);
    if (i === undefined) throw new DataError(file, `has no column ${JSON.stringify(name)} (${what}); ${found}`);
    return i;
  };
  const image = need(k.imageKey, "the image paths, --csv-img-key");
  const caption = seen.get(k.captionKey) ?? -1;
  if (caption < 0 && (k.captionGiven || k.labelKey === undefined)) need(k.captionKey, "the captions, --csv-caption-key");
  const label = k.labelKey === undefined ? -1 : need(k.labelKey, "the labels, --csv-label-key");
  const groups = k.groupKeys.map((g) => need(g, "a group column, --csv-group-keys"));
  return { image, caption, label, groups };
}
