/**
 * Prompt template sets as data files (`src/text/templates/*.json`), and the checks every
 * zero-shot prompt goes through: one "{}" per template, a non-empty class list, and prompts that
 * fit the text encoder's context (CLIP's §3.1.4 prompt engineering,
 * Radford et al. 2021, https://arxiv.org/abs/2103.00020).
 *
 * A template file is either a JSON array of strings or an object
 * `{ "description": string, "source"?: string, "templates": string[] }`.
 * Shipped sets: "plain" (1), "imagenet80" (the CLIP paper's 80 ImageNet templates),
 * "imagenet7" (its 7-template forward-selected subset), "fashion" (written for Fashion-MNIST).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultBpe } from "./tokenize";
import { PLACEHOLDER, fillPrompt } from "./fill";
import { checkSetFields, listJsonSets } from "../util/data_sets";

/** Folder of the shipped template sets. */
export const TEMPLATE_DIR = path.join(__dirname, "templates");

export interface TemplateSet {
  /** The set's name ("imagenet80") or, for a file given by path, the file's base name. */
  name: string;
  description: string;
  source?: string;
  templates: string[];
  /** The file it was read from. */
  file: string;
}

/** Names of the shipped template sets, sorted. */
export function listTemplateSets(): string[] {
  return listJsonSets(TEMPLATE_DIR);
}

/**
 * Throws (one line naming `where` and the template) unless `templates` is a non-empty array of
 * strings, each with exactly one "{}", and (unless `allowDuplicates`: an ensemble may weight a
 * template by repeating it) distinct. Template files are checked without duplicates.
 */
export function checkTemplates(templates: unknown, where: string, { allowDuplicates = false } = {}): string[] {
  if (!Array.isArray(templates) || templates.length === 0) {
    throw new Error(`${where}: templates must be a non-empty array of strings with one "{}" each`);
  }
  const seen = new Set<string>();
  templates.forEach((t, i) => {
    if (typeof t !== "string") throw new TypeError(`${where}: template ${i} is not a string (${JSON.stringify(t)})`);
    const n = t.split(PLACEHOLDER).length - 1;
    if (n !== 1) {
      // JSON.stringify keeps a template with a newline on one line.
      throw new Error(`${where}: template ${i} ${JSON.stringify(t)} must contain exactly one "{}" (where the class name goes), found ${n}`);
    }
    if (!allowDuplicates && seen.has(t)) throw new Error(`${where}: template ${i} ${JSON.stringify(t)} appears twice`);
    seen.add(t);
  });
  return templates.slice() as string[];
}

/** Validates a parsed template file (see the module comment for the two formats). */
export function parseTemplateSet(raw: unknown, file: string, name = path.basename(file, ".json")): TemplateSet {
  if (Array.isArray(raw)) return { name, description: "", templates: checkTemplates(raw, file), file };
  if (raw === null || typeof raw !== "object") throw new Error(`${file}: expected an array of templates or an object {description, templates}, got ${typeof raw}`);
  const o = raw as Record<string, unknown>;
  checkSetFields(o, file, ["description", "source", "templates"]);
  return {
    name,
    description: (o.description as string | undefined) ?? "",
    ...(o.source !== undefined ? { source: o.source as string } : {}),
    templates: checkTemplates(o.templates, file),
    file,
  };
}

/**
 * A template set by name (one of `listTemplateSets()`) or by path to a JSON file. Errors are one
 * line: an unknown name lists the valid ones; a bad file names the file and the template.
 */
export function loadTemplateSet(nameOrFile: string): TemplateSet {
  if (typeof nameOrFile !== "string" || nameOrFile === "") {
    throw new TypeError(`loadTemplateSet: expected a set name (${listTemplateSets().join(", ")}) or a JSON file path`);
  }
  const looksLikePath = nameOrFile.includes("/") || nameOrFile.includes(path.sep) || nameOrFile.endsWith(".json");
  let file: string;
  let name: string;
  if (looksLikePath) {
    file = nameOrFile;
    name = path.basename(nameOrFile, ".json");
    if (!fs.existsSync(file)) throw new Error(`loadTemplateSet: ${file}: file not found`);
  } else {
    const names = listTemplateSets();
    if (!names.includes(nameOrFile)) {
      throw new Error(`loadTemplateSet: unknown template set ${JSON.stringify(nameOrFile)}; valid sets: ${names.join(", ")} (or a path to a .json file)`);
    }
    file = path.join(TEMPLATE_DIR, `${nameOrFile}.json`);
    name = nameOrFile;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message.split("\n")[0]}`);
  }
  return parseTemplateSet(raw, file, name);
}

/** The templates of a set name, a file path, or a list given directly (validated in every case). */
export function resolveTemplates(templates: string | readonly string[], where = "templates"): string[] {
  return typeof templates === "string" ? loadTemplateSet(templates).templates : checkTemplates(templates, where);
}

/** Throws unless classNames is a non-empty array of distinct non-empty strings. */
export function checkClassNames(classNames: unknown, fn: string): string[] {
  if (!Array.isArray(classNames) || classNames.length === 0) {
    throw new Error(`${fn}: classNames must be a non-empty array of strings (one name per class, in label order)`);
  }
  const seen = new Set<string>();
  classNames.forEach((c, i) => {
    if (typeof c !== "string" || c.trim() === "") throw new TypeError(`${fn}: class name ${i} must be a non-empty string, got ${JSON.stringify(c)}`);
    if (seen.has(c)) throw new Error(`${fn}: class name ${i} ${JSON.stringify(c)} appears twice`);
    seen.add(c);
  });
  return classNames.slice() as string[];
}


export { fillPrompt };

/** BPE tokens of `text` with SOT and EOT (what `tokenize` would need without truncation). */
export function promptTokenCount(text: string): number {
  return defaultBpe().encode(text).length + 2;
}

/**
 * Throws (one line, naming the class and the template) if any prompt needs more BPE tokens than
 * the model's context length, where `tokenize` would silently cut the class name off.
 */
export function checkPromptsFit(classNames: readonly string[], templates: readonly string[], contextLength: number, fn: string): void {
  for (const name of classNames) {
    for (const t of templates) {
      const n = promptTokenCount(fillPrompt(t, name));
      if (n > contextLength) {
        throw new Error(
          `${fn}: class name ${JSON.stringify(name)} in template ${JSON.stringify(t)} tokenizes to ${n} tokens (with SOT/EOT), more than the model's context length ${contextLength}; shorten the class name or the template`,
        );
      }
    }
  }
}
