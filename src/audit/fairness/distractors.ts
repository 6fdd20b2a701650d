/**
 * Distractor classes: labels added to a dataset's classes as extra zero-shot classes, each in a
 * category, so the audit can measure how often each group's images are assigned to one of them
 * (the harmful-label probe of CLIP's §7.1, Radford et al. 2021, https://arxiv.org/abs/2103.00020,
 * where FairFace images were classified among the dataset's labels plus crime-related and
 * non-human classes). Two sources share this one mechanism:
 *   - a label set as a data file (src/audit/fairness/labels/*.json, "clip-harmful" the CLIP
 *     paper's categories, or the user's file): `{ "description"?, "source"?, "categories": { NAME: [labels] } }`;
 *   - a suspect word's "<word> <class>" labels (./word_probes.ts), one category.
 * Each label is filled into the audit's templates and ensembled like a class.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { checkSetFields, listJsonSets } from "../../util/data_sets";

/** One extra zero-shot class. */
export interface Distractor {
  /** The class name filled into the templates ("thief", "counterfeit shirt"). */
  label: string;
  /** What kind of label it is ("crime-related", "non-human", "counterfeit <class>"). */
  category: string;
}

/** The category of distractors given as bare strings. */
export const DEFAULT_DISTRACTOR_CATEGORY = "distractor";

/** Folder of the shipped label sets. */
export const HARMFUL_LABEL_DIR = path.join(__dirname, "labels");

/** The shipped default: the CLIP paper's crime-related and non-human labels. */
export const DEFAULT_HARMFUL_LABELS = "clip-harmful";

export interface HarmfulLabelSet {
  name: string;
  description: string;
  source?: string;
  labels: Distractor[];
  file: string;
}

/** Bare strings become `{label, category: "distractor"}`; checks every entry (one-line errors) and that labels are distinct. */
export function normalizeDistractors(fn: string, list: readonly (string | Distractor)[] | undefined): Distractor[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new TypeError(`${fn}: distractors must be an array of labels or {label, category}`);
  const seen = new Set<string>();
  return list.map((d, i) => {
    const x = typeof d === "string" ? { label: d, category: DEFAULT_DISTRACTOR_CATEGORY } : d;
    if (!x || typeof x.label !== "string" || x.label.trim() === "" || typeof x.category !== "string" || x.category.trim() === "") {
      throw new TypeError(`${fn}: distractors[${i}] must be a non-empty label or {label, category} with non-empty strings, got ${JSON.stringify(d)}`);
    }
    if (seen.has(x.label)) throw new Error(`${fn}: distractors[${i}] ${JSON.stringify(x.label)} appears twice`);
    seen.add(x.label);
    return { label: x.label, category: x.category };
  });
}

/** The categories of distractors, in first-seen order. */
export function distractorCategories(list: readonly Distractor[]): string[] {
  return [...new Set(list.map((d) => d.category))];
}

/** Names of the shipped label sets, sorted. */
export function listHarmfulLabelSets(): string[] {
  return listJsonSets(HARMFUL_LABEL_DIR);
}

/** Validates a parsed label file. */
export function parseHarmfulLabels(raw: unknown, file: string, name = path.basename(file, ".json")): HarmfulLabelSet {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${file}: expected an object {description, source, categories: {NAME: [labels]}}, got ${Array.isArray(raw) ? "an array" : raw === null ? "null" : typeof raw}`);
  }
  const o = raw as Record<string, unknown>;
  checkSetFields(o, file, ["description", "source", "categories"]);
  const cats = o.categories;
  if (cats === null || typeof cats !== "object" || Array.isArray(cats) || Object.keys(cats).length === 0) {
    throw new Error(`${file}: field "categories" must be an object mapping each category name to a non-empty list of labels`);
  }
  const labels: Distractor[] = [];
  const seen = new Map<string, string>();
  for (const [category, list] of Object.entries(cats as Record<string, unknown>)) {
    if (category.trim() === "") throw new Error(`${file}: a category name is empty`);
    if (!Array.isArray(list) || list.length === 0) throw new Error(`${file}: category ${JSON.stringify(category)} must be a non-empty list of labels`);
    list.forEach((l, i) => {
      if (typeof l !== "string" || l.trim() === "") throw new TypeError(`${file}: category ${JSON.stringify(category)} label ${i} must be a non-empty string, got ${JSON.stringify(l)}`);
      if (l.includes("{}")) throw new Error(`${file}: category ${JSON.stringify(category)} label ${i} ${JSON.stringify(l)} holds "{}"; a label is filled into the templates, it is not one`);
      if (seen.has(l)) throw new Error(`${file}: label ${JSON.stringify(l)} appears in both ${JSON.stringify(seen.get(l))} and ${JSON.stringify(category)}`);
      seen.set(l, category);
      labels.push({ label: l, category });
    });
  }
  return { name, description: (o.description as string | undefined) ?? "", ...(o.source !== undefined ? { source: o.source as string } : {}), labels, file };
}

/** A label set by name (one of `listHarmfulLabelSets()`) or by path to a JSON file. */
export function loadHarmfulLabels(nameOrFile: string): HarmfulLabelSet {
  if (typeof nameOrFile !== "string" || nameOrFile === "") throw new TypeError(`loadHarmfulLabels: expected a set name (${listHarmfulLabelSets().join(", ")}) or a JSON file path`);
  const looksLikePath = nameOrFile.includes("/") || nameOrFile.includes(path.sep) || nameOrFile.endsWith(".json");
  let file = nameOrFile;
  let name = path.basename(nameOrFile, ".json");
  if (!looksLikePath) {
    const names = listHarmfulLabelSets();
    if (!names.includes(nameOrFile)) throw new Error(`loadHarmfulLabels: unknown label set ${JSON.stringify(nameOrFile)}; valid sets: ${names.join(", ")} (or a path to a .json file)`);
    file = path.join(HARMFUL_LABEL_DIR, `${nameOrFile}.json`);
    name = nameOrFile;
  } else if (!fs.existsSync(file)) {
    throw new Error(`${file}: label file not found`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  return parseHarmfulLabels(raw, file, name);
}
