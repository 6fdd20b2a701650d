/**
 * `--data SPEC`: one spec string chooses a source everywhere.
 *
 *   fashion-mnist[:DIR]      the four IDX files (default DIR /usr/share/datasets/fashion-mnist)
 *   imagefolder:DIR          torchvision's ImageFolder layout (classnames.txt overrides names)
 *   csv:FILE                 open_clip's CSV/TSV pairs (tab-separated unless FILE ends in .csv)
 *   wds:PATTERN              WebDataset tar shards, with brace expansion ({0000..0099})
 *   parquet:FILE|DIR         Hugging Face datasets' Parquet files
 *   arrow:FILE               an Arrow IPC file of the same layout
 *
 * A bare path is not guessed at: the kind is always named, so a typo is an error, not a surprise.
 */
import type { Dataset } from "./dataset";
import { openFashionMnist } from "./sources/fashion_mnist";
import { openImageFolder } from "./sources/image_folder";
import { openCsv } from "./sources/csv";
import { openWebDataset } from "./sources/webdataset";
import { openArrow, openParquet } from "./sources/parquet";

export interface DatasetOptions {
  /** Fashion-MNIST only: which split (default "test"; training commands ask for "train"). */
  split?: "train" | "test";
  /** Column (CSV, Parquet, Arrow) or WebDataset extension holding the image. */
  imageKey?: string;
  /** Column or extension holding the caption(s). */
  captionKey?: string;
  /** Column or field holding the class (an index, or a name). */
  labelKey?: string;
  /** Columns or `json` fields holding group attributes. */
  groupKeys?: string[];
  /** CSV field separator (default tab, comma for `.csv` files). */
  separator?: string;
  /** A classnames.txt (one name per line, in label order) that overrides the source's names. */
  classnamesFile?: string;
}

export type SourceOpener = (target: string, opts: DatasetOptions, spec: string) => Promise<Dataset>;

/** The source kinds, in the order help texts list them; each module registers its opener. */
export const SOURCE_KINDS = ["fashion-mnist", "imagefolder", "csv", "wds", "parquet", "arrow"] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/**
 * The opener of every kind. Imported statically: tslab's require hook only compiles modules a
 * cell's import graph reaches, so a lazy require of a source module fails in notebooks.
 */
const OPENERS: Record<SourceKind, SourceOpener> = {
  "fashion-mnist": openFashionMnist,
  imagefolder: openImageFolder,
  csv: openCsv,
  wds: openWebDataset,
  parquet: openParquet,
  arrow: openArrow,
};

/** Splits `kind:target`; the kind must be one of SOURCE_KINDS. */
export function parseDataSpec(spec: string): { kind: SourceKind; target: string } {
  if (typeof spec !== "string" || spec.trim() === "") throw new RangeError(`--data must be KIND:PATH with KIND one of ${SOURCE_KINDS.join(", ")}, got ${JSON.stringify(spec)}`);
  const colon = spec.indexOf(":");
  const kind = (colon < 0 ? spec : spec.slice(0, colon)) as SourceKind;
  const target = colon < 0 ? "" : spec.slice(colon + 1);
  if (!SOURCE_KINDS.includes(kind)) {
    throw new RangeError(`--data ${JSON.stringify(spec)}: unknown source kind ${JSON.stringify(kind)}; valid kinds: ${SOURCE_KINDS.join(", ")} (e.g. imagefolder:photos)`);
  }
  if (target === "" && kind !== "fashion-mnist") throw new RangeError(`--data ${JSON.stringify(spec)}: ${kind} needs a path (${kind}:PATH)`);
  return { kind, target };
}

/** Opens the dataset a spec names. Errors are one line naming the spec, file or row. */
export async function openDataset(spec: string, opts: DatasetOptions = {}): Promise<Dataset> {
  const { kind, target } = parseDataSpec(spec);
  return OPENERS[kind](target, opts, spec);
}
