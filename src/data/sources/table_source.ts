/**
 * A dataset over a table of rows (Parquet files, an Arrow file) in the Hugging Face datasets
 * layout (https://huggingface.co/docs/datasets/image_load): an image column that is a struct
 * `{bytes, path}` (bytes null with a path relative to the file), plain binary, or a string path;
 * a text column (a string, or a list of strings); an optional label column (integers, a
 * ClassLabel whose names the `huggingface` schema metadata carries, or strings); group columns.
 *
 * Default columns: image `image`, else the one column the metadata calls an Image; caption
 * `text`, else `caption`; label `label` when present, else the one ClassLabel column. Captions
 * are required unless there is a label column.
 *
 * Rows are read a row group (or record batch) at a time, the last two cached, so sequential
 * reading decodes each group once and random access (`get`) stays cheap.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { templateCaptioner } from "../captioner";
import { DataError, readIndexed, type Captioner, type DataItem, type Dataset, type ReadOptions } from "../dataset";
import type { DatasetOptions } from "../open";
import { readClassnames } from "./classnames";
import { readImageBytes } from "./image_folder";

/** One file of the table. */
export interface TablePart {
  file: string;
  /** Top-level column names. */
  columns: string[];
  /** Rows per row group (or record batch), in order. */
  groupRows: number[];
}

/** What a storage format provides: its parts, metadata, and row groups as rows of values. */
export interface TableBackend {
  parts: TablePart[];
  /** Key-value metadata of the first part (Parquet's key_value_metadata, Arrow's schema metadata). */
  metadata: ReadonlyMap<string, string>;
  /**
   * The rows of one row group, restricted to `columns`: values as JavaScript values (strings,
   * numbers or bigints, Uint8Array, `{bytes, path}` objects, arrays for lists, null).
   */
  readGroup(part: number, group: number, columns: string[]): Promise<Record<string, unknown>[]>;
}

interface Columns {
  image: string;
  caption?: string;
  label?: string;
  groups: string[];
}

/** Hugging Face's `features` from the `huggingface` metadata entry, when present and valid. */
export function hfFeatures(metadata: ReadonlyMap<string, string>): Record<string, { _type?: string; names?: unknown }> | undefined {
  const raw = metadata.get("huggingface");
  if (raw === undefined) return undefined;
  try {
    const features = JSON.parse(raw)?.info?.features;
    return features && typeof features === "object" ? features : undefined;
  } catch {
    return undefined;
  }
}

function chooseColumns(part: TablePart, opts: DatasetOptions, features: ReturnType<typeof hfFeatures>): Columns {
  const has = new Set(part.columns);
  const found = `columns found: ${part.columns.map((c) => JSON.stringify(c)).join(", ")}`;
  const missing = (name: string, what: string) => new DataError(part.file, `has no column ${JSON.stringify(name)} (${what}); ${found}`);
  const byType = (type: string) => Object.keys(features ?? {}).filter((c) => features![c]?._type === type && has.has(c));

  let image = opts.imageKey;
  if (image === undefined) {
    const images = byType("Image");
    image = has.has("image") ? "image" : images.length === 1 ? images[0] : undefined;
    if (image === undefined) throw missing("image", "the images, --image-key");
  } else if (!has.has(image)) throw missing(image, "the images, --image-key");

  let label = opts.labelKey;
  if (label === undefined) {
    const labels = byType("ClassLabel");
    label = has.has("label") ? "label" : labels.length === 1 ? labels[0] : undefined;
  } else if (!has.has(label)) throw missing(label, "the labels, --label-key");

  let caption = opts.captionKey;
  if (caption === undefined) {
    caption = has.has("text") ? "text" : has.has("caption") ? "caption" : undefined;
    if (caption === undefined && label === undefined) {
      throw new DataError(part.file, `has no caption column ("text" or "caption", --caption-key) and no label column ("label", --label-key); ${found}`);
    }
  } else if (!has.has(caption)) throw missing(caption, "the captions, --caption-key");

  const groups = opts.groupKeys ?? [];
  for (const g of groups) if (!has.has(g)) throw missing(g, "a group column, --group-keys");
  return { image, caption, label, groups };
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "number" && Number.isInteger(v)) return v;
  return undefined;
}

/** `v` as a sortable key of code points (Python's `sorted`). */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class TableDataset implements Dataset {
  readonly hasCaptions: boolean;
  readonly hasLabels: boolean;
  readonly size: number;
  readonly captioner?: Captioner;
  readonly groupKeys: readonly string[];
  /** Cumulative row offsets: part p, group g starts at `starts[p][g]` (global row). */
  private readonly starts: number[][];
  private readonly labelIndex?: Map<string, number>;
  private cache: { key: string; rows: Promise<Record<string, unknown>[]> }[] = [];

  constructor(
    readonly spec: string,
    readonly name: string,
    private readonly backend: TableBackend,
    private readonly cols: Columns,
    readonly classNames: readonly string[] | undefined,
  ) {
    this.hasCaptions = cols.caption !== undefined;
    this.hasLabels = cols.label !== undefined;
    this.groupKeys = cols.groups;
    let at = 0;
    this.starts = backend.parts.map((p) =>
      p.groupRows.map((n) => {
        const s = at;
        at += n;
        return s;
      }),
    );
    this.size = at;
    if (classNames) {
      this.captioner = templateCaptioner(classNames);
      this.labelIndex = new Map(classNames.map((n, i) => [n, i]));
    }
  }

  private get readColumns(): string[] {
    const c = this.cols;
    return [c.image, ...(c.caption ? [c.caption] : []), ...(c.label ? [c.label] : []), ...c.groups].filter((x, i, a) => a.indexOf(x) === i);
  }

  /** Part, group and row-in-group of global row `index`. */
  private locate(index: number): { part: number; group: number; row: number; rowInFile: number } {
    let p = this.starts.length - 1;
    while (p > 0 && (this.starts[p].length === 0 || this.starts[p][0] > index)) p--;
    const groups = this.starts[p];
    let lo = 0;
    let hi = groups.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (groups[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return { part: p, group: lo, row: index - groups[lo], rowInFile: index - (groups[0] ?? 0) };
  }

  private group(part: number, group: number): Promise<Record<string, unknown>[]> {
    const key = `${part}/${group}`;
    const hit = this.cache.find((c) => c.key === key);
    if (hit) return hit.rows;
    const rows = this.backend.readGroup(part, group, this.readColumns);
    this.cache = [{ key, rows }, ...this.cache].slice(0, 2);
    rows.catch(() => (this.cache = this.cache.filter((c) => c.key !== key)));
    return rows;
  }

  async get(index: number): Promise<DataItem> {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`${this.spec}: index ${index} outside [0, ${this.size})`);
    const at = this.locate(index);
    const file = this.backend.parts[at.part].file;
    const row = (await this.group(at.part, at.group))[at.row];
    const key = `${file}#${at.rowInFile}`;
    const item: DataItem = { key, index, image: { kind: "encoded", bytes: this.image(row[this.cols.image], file, key) }, captions: this.captions(row, key) };
    if (this.cols.label !== undefined) item.label = this.label(row[this.cols.label], key);
    if (this.cols.groups.length > 0) {
      const groups: Record<string, string> = {};
      for (const g of this.cols.groups) {
        const v = row[g];
        groups[g] = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
      }
      item.groups = groups;
    }
    return item;
  }

  items(opts: ReadOptions = {}): AsyncIterable<DataItem> {
    return readIndexed(this.size, (i) => this.get(i), opts);
  }

  private image(v: unknown, file: string, key: string): Uint8Array {
    const col = JSON.stringify(this.cols.image);
    let bytes: unknown = v;
    let rel: unknown = null;
    if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) {
      bytes = (v as { bytes?: unknown }).bytes ?? null;
      rel = (v as { path?: unknown }).path ?? null;
    } else if (typeof v === "string") {
      bytes = null;
      rel = v;
    }
    if (bytes instanceof Uint8Array && bytes.length > 0) return bytes.slice();
    if (typeof rel === "string" && rel !== "") {
      const p = path.isAbsolute(rel) ? rel : path.join(path.dirname(file), rel);
      try {
        return readImageBytes(p);
      } catch (err) {
        if (err instanceof DataError) throw new DataError(key, `${err.message.slice(err.where.length + 2)}: ${err.where} (column ${col} has no bytes, only this path)`);
        throw err;
      }
    }
    if (bytes instanceof Uint8Array) throw new DataError(key, `image column ${col} holds empty bytes`);
    throw new DataError(key, `image column ${col} has no bytes and no path`);
  }

  private captions(row: Record<string, unknown>, key: string): string[] {
    if (this.cols.caption === undefined) return [];
    const v = row[this.cols.caption];
    if (v === null || v === undefined) return [];
    if (typeof v === "string") return v.trim() === "" ? [] : [v];
    if (Array.isArray(v) && v.every((c) => typeof c === "string")) return v.filter((c) => c.trim() !== "");
    throw new DataError(key, `caption column ${JSON.stringify(this.cols.caption)} holds ${typeof v === "object" ? "an object" : typeof v}, expected a string or a list of strings`);
  }

  private label(v: unknown, key: string): number {
    const col = JSON.stringify(this.cols.label);
    if (v === null || v === undefined) throw new DataError(key, `has no label (null in column ${col})`);
    const n = toNumber(v);
    const names = this.classNames;
    if (n !== undefined) {
      if (n < 0 || (names && n >= names.length)) throw new DataError(key, `label ${n} in column ${col} is not a class index${names ? ` in [0, ${names.length})` : ""}`);
      return n;
    }
    if (typeof v === "string" && this.labelIndex?.has(v)) return this.labelIndex.get(v)!;
    throw new DataError(key, `label ${JSON.stringify(v)} in column ${col} is not ${typeof v === "string" ? `among the ${names?.length ?? 0} class names` : "a class index or name"}`);
  }
}

/**
 * Opens a table dataset: checks every part has the columns, finds the class names (classnames
 * file > ClassLabel names > the label values: "0".."max" for integers, the sorted unique names
 * for strings; the last two need one pass over the label column).
 */
export async function openTable(spec: string, name: string, backend: TableBackend, opts: DatasetOptions): Promise<TableDataset> {
  const features = hfFeatures(backend.metadata);
  const cols = chooseColumns(backend.parts[0], opts, features);
  for (const part of backend.parts.slice(1)) chooseColumns(part, { ...opts, imageKey: cols.image, captionKey: cols.caption, labelKey: cols.label }, features);
  let classNames: string[] | undefined;
  if (cols.label !== undefined) {
    const feature = features?.[cols.label];
    const declared = feature?._type === "ClassLabel" && Array.isArray(feature.names) ? feature.names.map(String) : undefined;
    if (opts.classnamesFile) {
      classNames = readClassnames(opts.classnamesFile, declared?.length, `classes in the ClassLabel of column ${JSON.stringify(cols.label)}`);
    } else if (declared) {
      classNames = declared;
    }
    if (!declared) classNames = await scanLabels(backend, cols.label, classNames, opts.classnamesFile);
  } else if (opts.classnamesFile) {
    throw new DataError(opts.classnamesFile, "a classnames file needs a label column (--label-key)");
  }
  return new TableDataset(spec, name, backend, cols, classNames);
}

/** Class names from one pass over the label column (checked against `given` names). */
async function scanLabels(backend: TableBackend, column: string, given: string[] | undefined, givenFile: string | undefined): Promise<string[]> {
  let max = -1;
  const strings = new Set<string>();
  for (let p = 0; p < backend.parts.length; p++) {
    for (let g = 0; g < backend.parts[p].groupRows.length; g++) {
      for (const row of await backend.readGroup(p, g, [column])) {
        const v = row[column];
        const n = toNumber(v);
        if (n !== undefined) max = Math.max(max, n);
        else if (typeof v === "string") strings.add(v);
      }
    }
  }
  if (strings.size > 0) {
    if (!given) return [...strings].sort(byCodePoint);
    return given;
  }
  if (given) {
    if (given.length <= max) throw new DataError(givenFile!, `has ${given.length} class names but column ${JSON.stringify(column)} holds label ${max}; expected at least ${max + 1} names, in label order`);
    return given;
  }
  return Array.from({ length: max + 1 }, (_, i) => String(i));
}

/** `*.parquet` files of a folder, or those matching a `*`/`?` pattern in the last path component. */
export function listTableFiles(target: string, ext: string): string[] {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(target);
  } catch {
    stat = undefined;
  }
  if (stat?.isFile()) return [target];
  const [dir, pattern] = stat?.isDirectory() ? [target, `*${ext}`] : [path.dirname(target), path.basename(target)];
  if (!stat && !/[*?]/.test(pattern)) throw new DataError(target, "file not found");
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    throw new DataError(target, "file not found");
  }
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  const files = names
    .filter((n) => re.test(n))
    .sort(byCodePoint)
    .map((n) => path.join(dir, n))
    .filter((f) => fs.statSync(f).isFile());
  if (files.length === 0) throw new DataError(target, stat ? `folder holds no ${ext} files` : `no file matches this pattern`);
  return files;
}
