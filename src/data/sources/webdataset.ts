/**
 * `wds:PATTERN`: WebDataset tar shards (https://github.com/webdataset/webdataset) as open_clip
 * trains on them and CLIP_benchmark exports them.
 *
 * A sample is the run of consecutive members sharing a key: the member path up to the first dot
 * of its base name, directory included (webdataset's `base_plus_ext`); the rest, lower-cased, is
 * the extension. Members without a dot in their base name, `__meta__` members and anything but
 * regular files are ignored. A repeated extension starts a new sample (open_clip's
 * `group_by_keys_nothrow`); samples never span two shards.
 *
 * Fields (option -> default):
 *   imageKey    "jpg;png;jpeg;webp"  the first member present of these extensions
 *   captionKey  "txt"                a member of that extension (`;` lists alternatives), else a
 *                                    field of the sample's `json` of that name (string or list)
 *   labelKey    "cls"                a member holding an integer, else a `json` field
 *   groupKeys   []                   fields of the sample's `json`
 * With CLIP_benchmark's `dataset_type.txt` saying "retrieval", `txt` holds one caption per line.
 * Side files (classnames, templates, nshards, sizes.json): see wds_layout.ts.
 *
 * Shards are read in order and items numbered across all of them, so `--shard I/N` takes every
 * N-th sample; samples outside the shard cost their headers only (their data is neither copied
 * nor, beyond the read-ahead, read). No random access.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { readTar, TarError } from "../../io/tar";
import { templateCaptioner } from "../captioner";
import { DataError, inShard, type Captioner, type DataItem, type Dataset, type ReadOptions } from "../dataset";
import type { DatasetOptions } from "../open";
import { readClassnames } from "./classnames";
import { readDatasetType, readTemplates, resolveShards, sizeFromSizesJson } from "./wds_layout";

export const WDS_DEFAULT_IMAGE_KEY = "jpg;png;jpeg;webp";

/** webdataset's `base_plus_ext`: [key, extension], or null for a name without a dot in its base name. */
export function basePlusExt(name: string): [string, string] | null {
  const m = /^((?:.*\/|)[^.]+)[.]([^/]*)$/s.exec(name);
  return m ? [m[1], m[2]] : null;
}

const META = /^__[^/]*__($|\/)/;

/** The members of one sample that were read (extension -> bytes), and every member's extension. */
interface RawSample {
  shard: string;
  key: string;
  index: number;
  data: Map<string, Uint8Array>;
  exts: string[];
  /** The parsed `json` member, once read. */
  json?: Record<string, unknown> | null;
}

const utf8 = new TextDecoder("utf-8");

/**
 * Walks the shards' samples in order, numbering them from 0 across shards. Only samples for
 * which `wanted(index)` holds are yielded, with the members `read(ext)` asks for; the others are
 * skipped without reading their data. A damaged shard is a DataError naming it.
 */
async function* walkSamples(shards: readonly string[], wanted: (index: number) => boolean, read: (ext: string) => boolean): AsyncGenerator<RawSample> {
  let index = 0;
  for (const shard of shards) {
    let current: RawSample | null = null;
    let keep = false;
    try {
      for await (const entry of readTar(shard)) {
        if (entry.type !== "file" || META.test(entry.name)) continue;
        const split = basePlusExt(entry.name);
        if (!split) continue;
        const [key, rawExt] = split;
        const ext = rawExt.toLowerCase();
        if (current === null || key !== current.key || current.exts.includes(ext)) {
          if (current && keep) yield current;
          current = { shard, key, index: index++, data: new Map(), exts: [] };
          keep = wanted(current.index);
        }
        current.exts.push(ext);
        if (keep && read(ext)) current.data.set(ext, await entry.read());
      }
    } catch (err) {
      if (err instanceof TarError) throw new DataError(err.file, err.detail);
      throw err;
    }
    if (current && keep) yield current;
  }
}

interface Fields {
  imageExts: string[];
  captionKeys: string[];
  labelKey: string;
  groupKeys: string[];
  /** CLIP_benchmark's retrieval layout: one caption per line of `txt`. */
  captionPerLine: boolean;
}

export class WebDataset implements Dataset {
  readonly hasCaptions: boolean;
  readonly hasLabels: boolean;
  readonly captioner?: Captioner;

  constructor(
    readonly spec: string,
    readonly name: string,
    readonly shards: readonly string[],
    private readonly fields: Fields,
    first: RawSample,
    readonly classNames: readonly string[] | undefined,
    readonly templates: readonly string[] | undefined,
    readonly size: number | undefined,
  ) {
    // What the first sample carries decides what the dataset has (a damaged first sample: nothing).
    this.hasCaptions = attempt(() => this.captionsOf(first).length > 0);
    this.hasLabels = attempt(() => this.rawLabel(first) !== undefined);
    if (classNames && this.hasLabels) this.captioner = templateCaptioner(classNames, templates);
  }

  get groupKeys(): readonly string[] {
    return this.fields.groupKeys;
  }

  async *items(opts: ReadOptions = {}): AsyncGenerator<DataItem> {
    const limit = opts.limit ?? Infinity;
    if (limit <= 0) return;
    let yielded = 0;
    for await (const raw of walkSamples(this.shards, (i) => inShard(i, opts.shard), (e) => needs(this.fields, e))) {
      let item: DataItem;
      try {
        item = this.toItem(raw);
      } catch (err) {
        if (opts.skipBadImages && err instanceof DataError) {
          opts.onSkip?.({ key: err.where, reason: err.message.slice(err.where.length + 2) });
          continue;
        }
        throw err;
      }
      yield item;
      if (++yielded >= limit) return;
    }
  }

  private toItem(raw: RawSample): DataItem {
    const key = `${raw.shard}:${raw.key}`;
    const ext = this.fields.imageExts.find((e) => raw.data.has(e));
    if (ext === undefined) {
      throw new DataError(key, `sample has no image (looked for ${this.fields.imageExts.join(", ")}; members: ${raw.exts.map((e) => `${path.posix.basename(raw.key)}.${e}`).join(", ")})`);
    }
    const bytes = raw.data.get(ext)!;
    if (bytes.length === 0) throw new DataError(key, `image member ${path.posix.basename(raw.key)}.${ext} is empty`);
    const item: DataItem = { key, index: raw.index, image: { kind: "encoded", bytes }, captions: this.captionsOf(raw, key) };
    const label = this.label(raw, key);
    if (label !== undefined) item.label = label;
    if (this.fields.groupKeys.length > 0) item.groups = this.groups(raw, key);
    return item;
  }

  private json(raw: RawSample, key: string): Record<string, unknown> | undefined {
    if (raw.json === undefined) raw.json = this.parseJson(raw, key);
    return raw.json ?? undefined;
  }

  private parseJson(raw: RawSample, key: string): Record<string, unknown> | null {
    const bytes = raw.data.get("json");
    if (!bytes) return null;
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(bytes));
    } catch (err) {
      throw new DataError(key, `${path.posix.basename(raw.key)}.json is not valid JSON (${(err as Error).message.split("\n")[0]})`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new DataError(key, `${path.posix.basename(raw.key)}.json is not a JSON object`);
    return value as Record<string, unknown>;
  }

  private captionsOf(raw: RawSample, key = `${raw.shard}:${raw.key}`): string[] {
    for (const k of this.fields.captionKeys) {
      const bytes = raw.data.get(k);
      if (bytes) {
        const text = utf8.decode(bytes).replace(/^\uFEFF/, "");
        if (this.fields.captionPerLine) return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
        const one = text.trim();
        return one === "" ? [] : [one];
      }
    }
    const json = this.json(raw, key);
    for (const k of this.fields.captionKeys) {
      const v = json?.[k];
      if (typeof v === "string") return v.trim() === "" ? [] : [v];
      if (Array.isArray(v) && v.every((c) => typeof c === "string")) return v as string[];
      if (v !== undefined && v !== null) throw new DataError(key, `json field ${JSON.stringify(k)} is not a caption (a string or a list of strings)`);
    }
    return [];
  }

  /** The label as stored (text of the member, or the json value), or undefined. */
  private rawLabel(raw: RawSample, key = `${raw.shard}:${raw.key}`): unknown {
    const bytes = raw.data.get(this.fields.labelKey);
    if (bytes) return utf8.decode(bytes).trim();
    const v = this.json(raw, key)?.[this.fields.labelKey];
    return v === null ? undefined : v;
  }

  private label(raw: RawSample, key: string): number | undefined {
    if (!this.hasLabels) return undefined;
    const v = this.rawLabel(raw, key);
    if (v === undefined) {
      if (this.hasLabels) throw new DataError(key, `sample has no label (no .${this.fields.labelKey} member and no json field ${JSON.stringify(this.fields.labelKey)})`);
      return undefined;
    }
    const names = this.classNames;
    const range = names ? ` in [0, ${names.length})` : "";
    let label: number;
    if (typeof v === "number") label = v;
    else if (typeof v === "string" && /^[+-]?\d+$/.test(v)) label = Number(v);
    else if (typeof v === "string" && names?.includes(v)) label = names.indexOf(v);
    else throw new DataError(key, `${this.fields.labelKey} ${JSON.stringify(v)} is not a class index${range}`);
    if (!Number.isInteger(label) || label < 0 || (names && label >= names.length)) {
      throw new DataError(key, `${this.fields.labelKey} ${JSON.stringify(v)} is not a class index${range}`);
    }
    return label;
  }

  private groups(raw: RawSample, key: string): Record<string, string> {
    const json = this.json(raw, key);
    const base = path.posix.basename(raw.key);
    if (!json) throw new DataError(key, `sample has no ${base}.json for the group fields ${this.fields.groupKeys.join(", ")}`);
    const out: Record<string, string> = {};
    for (const g of this.fields.groupKeys) {
      const v = json[g];
      if (v === undefined || v === null) throw new DataError(key, `${base}.json has no field ${JSON.stringify(g)}; fields found: ${Object.keys(json).join(", ") || "none"}`);
      out[g] = typeof v === "object" ? JSON.stringify(v) : String(v);
    }
    return out;
  }
}

/** Extensions whose data a sample needs. */
function needs(f: Fields, ext: string): boolean {
  return f.imageExts.includes(ext) || f.captionKeys.includes(ext) || ext === f.labelKey || ext === "json";
}

function attempt(f: () => boolean): boolean {
  try {
    return f();
  } catch (err) {
    if (err instanceof DataError) return false;
    throw err;
  }
}

function splitKeys(keys: string): string[] {
  return keys
    .split(";")
    .map((k) => k.trim().toLowerCase())
    .filter((k) => k !== "");
}

export async function openWebDataset(target: string, opts: DatasetOptions, spec: string): Promise<WebDataset> {
  const layout = resolveShards(target);
  const type = layout.sideFile("dataset_type.txt");
  const fields: Fields = {
    imageExts: splitKeys(opts.imageKey ?? WDS_DEFAULT_IMAGE_KEY),
    captionKeys: splitKeys(opts.captionKey ?? "txt"),
    labelKey: (opts.labelKey ?? "cls").trim(),
    groupKeys: opts.groupKeys ?? [],
    captionPerLine: type !== undefined && readDatasetType(type) === "retrieval",
  };
  if (fields.imageExts.length === 0) throw new DataError(spec, `image key ${JSON.stringify(opts.imageKey)} names no extension; expected e.g. ${WDS_DEFAULT_IMAGE_KEY}`);

  const shipped = layout.sideFile("classnames.txt");
  let classNames = shipped ? readClassnames(shipped) : undefined;
  if (opts.classnamesFile) classNames = readClassnames(opts.classnamesFile, classNames?.length, `classes in ${shipped}`);
  const templatesFile = layout.sideFile("zeroshot_classification_templates.txt");
  const templates = templatesFile ? readTemplates(templatesFile) : undefined;
  const sizes = path.join(layout.dir, "sizes.json");
  const size = fs.existsSync(sizes) ? sizeFromSizesJson(sizes, layout.shards) : undefined;

  let first: RawSample | undefined;
  for await (const s of walkSamples(layout.shards, (i) => i === 0, (e) => needs(fields, e))) {
    first = s;
    break;
  }
  if (!first) throw new DataError(target, `the ${layout.shards.length} shard(s) hold no sample (no member named KEY.EXT)`);

  // CLIP_benchmark keeps side files in the dataset folder above the split's shards: name it after that.
  const root = shipped && path.dirname(shipped) !== layout.dir ? path.dirname(shipped) : layout.dir;
  return new WebDataset(spec, path.basename(path.resolve(root)), layout.shards, fields, first, classNames, templates, size);
}
