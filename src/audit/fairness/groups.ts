/**
 * Where the fairness audit's group labels come from (`--groups SPEC`):
 * - a list of labels, one per item of the source in source order (`file:PATH`); an audited item
 *   takes the label at its source position, so a limit or skipped images keep the alignment;
 * - `{ column: NAME }` (`column:NAME`): the item's own attribute, `DataItem.groups[NAME]` (a CSV
 *   or Parquet column, a `json` field in WebDataset);
 * - `{ planted: "border" }` (`planted:border`): a frame stamped on a seeded, class-stratified half
 *   of the images (./planted_bias.ts): groups "framed" and "plain".
 */
import type { Dataset } from "../../data/dataset";
import type { PreparedImage } from "../../data/prepared";
import type { PlantedStampOptions } from "./planted_bias";

export interface ColumnGroups {
  /** The group key (`ds.groupKeys`) whose value is each item's group. */
  column: string;
}

export interface PlantedGroups extends PlantedStampOptions {
  planted: "border";
}

export type GroupSource = readonly string[] | ColumnGroups | PlantedGroups;

export function isPlanted(source: GroupSource): source is PlantedGroups {
  return !Array.isArray(source) && (source as PlantedGroups).planted !== undefined;
}

export function isColumn(source: GroupSource): source is ColumnGroups {
  return !Array.isArray(source) && (source as ColumnGroups).column !== undefined;
}

/** Checks a group source against the dataset before anything is read (one-line errors). */
export function checkGroupSource(fn: string, ds: Dataset, source: GroupSource): void {
  if (Array.isArray(source)) {
    source.forEach((g, i) => {
      if (typeof g !== "string" || g === "") throw new TypeError(`${fn}: groups[${i}] must be a non-empty string, got ${JSON.stringify(g)}`);
    });
    return;
  }
  if (source === null || typeof source !== "object") throw new TypeError(`${fn}: groups must be a list of labels, {column: NAME} or {planted: "border"}`);
  if (isColumn(source)) {
    if (!ds.groupKeys.includes(source.column)) {
      const keys = ds.groupKeys.length ? ds.groupKeys.join(", ") : "none";
      throw new RangeError(`${ds.spec}: has no group column ${JSON.stringify(source.column)} (its group keys: ${keys})`);
    }
    return;
  }
  if (isPlanted(source)) {
    if (source.planted !== "border") throw new RangeError(`${fn}: planted groups must be "border", got ${JSON.stringify(source.planted)}`);
    return;
  }
  throw new TypeError(`${fn}: groups must be a list of labels, {column: NAME} or {planted: "border"}, got keys ${Object.keys(source).join(", ") || "none"}`);
}

/** The group of one item from a list or a column (not for planted groups, which are drawn later). */
export function groupOf(fn: string, source: readonly string[] | ColumnGroups, item: Pick<PreparedImage, "key" | "index" | "groups">): string {
  if (Array.isArray(source)) {
    const labels = source as readonly string[];
    if (item.index >= labels.length) {
      throw new RangeError(`${fn}: groups has ${labels.length} labels (one per item in source order), but ${item.key} is item ${item.index}`);
    }
    return labels[item.index];
  }
  const name = (source as ColumnGroups).column;
  const value = item.groups?.[name];
  if (value === undefined || value.trim() === "") throw new RangeError(`${item.key}: empty value for group column ${JSON.stringify(name)}`);
  return value;
}
