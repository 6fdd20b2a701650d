/**
 * Which sections a pipeline report holds (`cliplab report --sections ...`): by default every
 * section the data supports; a requested section the data cannot support is a one-line error
 * saying what it needs.
 *   training    the training curves (or the records next to a checkpoint)
 *   embedding   the UMAP of images, captions and class embeddings, and the modality gap
 *   zeroshot    zero-shot classification (needs labels)
 *   retrieval   image-text retrieval on own or generated captions
 *   prompts     the prompt study (needs labels)
 *   robustness  corruptions and attacks (needs labels)
 *   fairness    the fairness audit (needs labels, and a group column or given groups)
 */
import type { Dataset } from "../../data/dataset";

export const REPORT_SECTIONS = ["training", "embedding", "zeroshot", "retrieval", "prompts", "robustness", "fairness"] as const;
export type ReportSectionName = (typeof REPORT_SECTIONS)[number];

/** Why the data cannot support a section (undefined when it can). */
export function unsupportedReason(name: ReportSectionName, ds: Dataset, hasGroups: boolean): string | undefined {
  const labelled = ds.hasLabels && (ds.classNames?.length ?? 0) >= 2;
  switch (name) {
    case "zeroshot":
    case "prompts":
    case "robustness":
      return labelled ? undefined : `${ds.spec} has no labels with class names (${name} classifies zero-shot)`;
    case "fairness":
      if (!labelled) return `${ds.spec} has no labels with class names (the fairness audit compares zero-shot predictions with true classes)`;
      return hasGroups ? undefined : `${ds.spec} has no group column (give --groups column:NAME, planted:border or file:PATH)`;
    default:
      return undefined;
  }
}

/** Parses "a,b,c" (or a list), checks every name, and returns them in report order. */
export function parseSections(value: string | readonly string[], where = "--sections"): ReportSectionName[] {
  const names = (typeof value === "string" ? value.split(",") : [...value]).map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) throw new RangeError(`${where} must name at least one of ${REPORT_SECTIONS.join(", ")}`);
  for (const n of names) {
    if (!(REPORT_SECTIONS as readonly string[]).includes(n)) throw new RangeError(`${where}: unknown section ${JSON.stringify(n)}; valid sections: ${REPORT_SECTIONS.join(", ")}`);
  }
  return REPORT_SECTIONS.filter((s) => names.includes(s));
}

/**
 * The sections of the report: the requested ones (each must be supported, else a one-line
 * error), or every supported one.
 */
export function resolveSections(ds: Dataset, requested: readonly ReportSectionName[] | undefined, hasGroups: boolean): ReportSectionName[] {
  if (requested) {
    for (const s of requested) {
      const why = unsupportedReason(s, ds, hasGroups);
      if (why) throw new RangeError(`section ${s}: ${why}`);
    }
    return REPORT_SECTIONS.filter((s) => requested.includes(s));
  }
  return REPORT_SECTIONS.filter((s) => unsupportedReason(s, ds, hasGroups) === undefined);
}
