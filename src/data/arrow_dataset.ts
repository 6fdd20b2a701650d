/**
 * Datasets and embeddings as Arrow IPC files (readable by pyarrow, polars, DuckDB):
 *
 * - a split: `pixels` (fixed-size list of H*W uint8 grey levels, or float32 grey / 255),
 *   `label` (int32), `caption` (utf8); the schema metadata holds `height`, `width`,
 *   `class_names` (JSON array), `pixel_format` ("uint8" | "float32") and, if given, `split`;
 * - embeddings: `id` (int32), `label` (int32), `kind` (utf8, e.g. "image" / "text"),
 *   `embedding` (fixed-size list of float32).
 *
 * Import gives back exactly what was exported; a file that does not match is a one-line error
 * naming the file and the column or metadata key.
 */
import { Schema, Table } from "apache-arrow";
import { makeTable, readArrowFile, readUint8VectorColumn, readVectorColumn, vectorColumn, writeArrowFile, type ColumnValues } from "../io/arrow";
import { checkLabelledImages, type LabelledImages } from "./fashion_mnist";

export type PixelFormat = "uint8" | "float32";

export interface ExportSplitOptions {
  /** One caption per image; default each image's class name. */
  captions?: string[];
  /** How to store pixels: "uint8" (default, compact) or "float32" (grey / 255, in [0, 1]). */
  pixelFormat?: PixelFormat;
  /** Recorded in the metadata, e.g. "train". */
  split?: string;
}

/** An imported split: the images plus their captions (and the split name if recorded). */
export interface ArrowSplit extends LabelledImages {
  captions: string[];
  split?: string;
}

/** Writes a split as an Arrow file, atomically. */
export function exportSplitArrow(file: string, data: LabelledImages, opts: ExportSplitOptions = {}): void {
  checkLabelledImages(data, "exportSplitArrow: data");
  const format = opts.pixelFormat ?? "uint8";
  if (format !== "uint8" && format !== "float32") throw new RangeError(`exportSplitArrow: pixelFormat must be "uint8" or "float32", got ${JSON.stringify(format)}`);
  const captions = opts.captions ?? Array.from(data.labels, (l) => data.classNames[l]);
  if (!Array.isArray(captions) || captions.length !== data.count || captions.some((c) => typeof c !== "string")) {
    throw new RangeError(`exportSplitArrow: captions must be ${data.count} strings (one per image), got ${Array.isArray(captions) ? captions.length : typeof captions}`);
  }
  const dim = data.height * data.width;
  let pixels: ColumnValues;
  if (format === "uint8") pixels = vectorColumn(data.images, dim);
  else {
    const f = new Float32Array(data.images.length);
    for (let i = 0; i < f.length; i++) f[i] = data.images[i] / 255;
    pixels = vectorColumn(f, dim);
  }
  const table = makeTable({ pixels, label: Int32Array.from(data.labels), caption: captions });
  const meta = new Map<string, string>([
    ["height", String(data.height)],
    ["width", String(data.width)],
    ["class_names", JSON.stringify(data.classNames)],
    ["pixel_format", format],
  ]);
  if (opts.split !== undefined) meta.set("split", opts.split);
  writeArrowFile(file, withMetadata(table, meta));
}

/** Reads a split written by `exportSplitArrow` (or any file with the same columns and metadata). */
export function importSplitArrow(file: string): ArrowSplit {
  const table = readArrowFile(file);
  const meta = table.schema.metadata;
  const bad = (what: string, expected: string, got: unknown): never => {
    throw new Error(`${file}: ${what}: expected ${expected}, got ${typeof got === "string" ? JSON.stringify(got) : String(got)}`);
  };
  const intMeta = (key: string): number => {
    const v = meta.get(key);
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n <= 0) bad(`metadata ${key}`, "a positive integer", v);
    return n;
  };
  const height = intMeta("height");
  const width = intMeta("width");
  let classNames: unknown;
  try {
    classNames = JSON.parse(meta.get("class_names") ?? "null");
  } catch {
    classNames = undefined;
  }
  if (!Array.isArray(classNames) || classNames.length === 0 || classNames.some((c) => typeof c !== "string")) {
    bad("metadata class_names", "a JSON array of class names", meta.get("class_names"));
  }
  const format = meta.get("pixel_format");
  if (format !== "uint8" && format !== "float32") bad("metadata pixel_format", '"uint8" or "float32"', format);
  for (const name of ["pixels", "label", "caption"]) {
    if (!table.getChild(name)) bad(`column ${name}`, "present", `columns ${table.schema.fields.map((f) => f.name).join(", ")}`);
  }
  const count = table.numRows;
  let images: Uint8Array;
  let dim: number;
  try {
    if (format === "uint8") ({ dim, values: images } = readUint8VectorColumn(table, "pixels"));
    else {
      const v = readVectorColumn(table, "pixels");
      dim = v.dim;
      images = new Uint8Array(v.values.length);
      for (let i = 0; i < v.values.length; i++) {
        const g = v.values[i] * 255;
        const r = Math.round(g);
        if (!(r >= 0 && r <= 255 && Math.abs(g - r) < 1e-3)) {
          bad("column pixels", "grey levels / 255 in [0, 1]", `${v.values[i]} at row ${Math.floor(i / v.dim)}`);
        }
        images[i] = r;
      }
    }
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(msg.startsWith(file) ? msg : `${file}: ${msg}`);
  }
  if (dim! !== height * width) bad("column pixels", `vectors of height*width = ${height * width}`, `vectors of ${dim!}`);
  const labelCol = table.getChild("label")!;
  if (String(labelCol.type) !== "Int32") bad("column label", "int32", String(labelCol.type));
  const labels32 = Int32Array.from(labelCol.toArray() as Int32Array);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    if (labels32[i] < 0 || labels32[i] >= (classNames as string[]).length) {
      bad("column label", `a class index in [0, ${(classNames as string[]).length - 1}]`, `${labels32[i]} at row ${i}`);
    }
    labels[i] = labels32[i];
  }
  const captionCol = table.getChild("caption")!;
  if (String(captionCol.type) !== "Utf8") bad("column caption", "utf8", String(captionCol.type));
  const captions = (captionCol.toArray() as unknown[]).map((c, i) => (typeof c === "string" ? c : bad("column caption", "a string", `${String(c)} at row ${i}`)));
  const out: ArrowSplit = { images: images!, labels, count, height, width, classNames: classNames as string[], captions };
  const split = meta.get("split");
  if (split !== undefined) out.split = split;
  return out;
}

/** Rows of embeddings: `embeddings` holds rows * dim float32 values, row-major. */
export interface EmbeddingRows {
  ids: Int32Array;
  labels: Int32Array;
  kinds: string[];
  embeddings: Float32Array;
  dim: number;
}

/** Writes embeddings as an Arrow file (columns id, label, kind, embedding), atomically. */
export function exportEmbeddingsArrow(file: string, rows: EmbeddingRows): void {
  const { ids, labels, kinds, embeddings, dim } = rows;
  if (!Number.isInteger(dim) || dim < 1 || !(embeddings instanceof Float32Array) || embeddings.length % dim !== 0) {
    throw new RangeError(`exportEmbeddingsArrow: embeddings must be a Float32Array of rows*dim values with dim >= 1, got ${embeddings?.length} values, dim ${dim}`);
  }
  const n = embeddings.length / dim;
  for (const [name, col] of [["ids", ids], ["labels", labels], ["kinds", kinds]] as const) {
    if (!col || col.length !== n) throw new RangeError(`exportEmbeddingsArrow: ${name} has ${col?.length} entries, the embeddings ${n} rows`);
  }
  if (!(ids instanceof Int32Array) || !(labels instanceof Int32Array)) throw new TypeError("exportEmbeddingsArrow: ids and labels must be Int32Arrays");
  if (kinds.some((k) => typeof k !== "string")) throw new TypeError("exportEmbeddingsArrow: kinds must be strings");
  writeArrowFile(file, makeTable({ id: ids, label: labels, kind: kinds, embedding: vectorColumn(embeddings, dim) }));
}

/** Reads embeddings written by `exportEmbeddingsArrow`. */
export function importEmbeddingsArrow(file: string): EmbeddingRows {
  const table = readArrowFile(file);
  const col = (name: string, type: string) => {
    const c = table.getChild(name);
    if (!c) throw new Error(`${file}: column ${name}: missing (columns: ${table.schema.fields.map((f) => f.name).join(", ")})`);
    if (type && String(c.type) !== type) throw new Error(`${file}: column ${name}: expected ${type}, got ${String(c.type)}`);
    return c;
  };
  const ids = Int32Array.from(col("id", "Int32").toArray() as Int32Array);
  const labels = Int32Array.from(col("label", "Int32").toArray() as Int32Array);
  const kinds = (col("kind", "Utf8").toArray() as unknown[]).map((k) => String(k));
  col("embedding", "");
  let v: { dim: number; values: Float32Array };
  try {
    v = readVectorColumn(table, "embedding");
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return { ids, labels, kinds, embeddings: v.values, dim: v.dim };
}

/** The same table with schema metadata (what the IPC writer stores). */
function withMetadata(table: Table, meta: Map<string, string>): Table {
  const schema = new Schema(table.schema.fields, meta);
  return new Table(schema, table.batches.map((b) => b));
}
