/**
 * The classes and prompts the robustness audit and TeCoA classify with, from the caller, else
 * the dataset, else CLIP's plain prompt (Radford et al. 2021, https://arxiv.org/abs/2103.00020,
 * §3.1.4):
 *
 *   class names       options.classNames > Fashion-MNIST's caption set (unless --classnames
 *                     overrides it) > dataset.classNames
 *   templates         options.templates > Fashion-MNIST's evaluation templates >
 *                     dataset.templates > "plain" ("a photo of a {}.")
 *   train templates   (TeCoA's frozen classifier) options.templates > Fashion-MNIST's training
 *                     templates > the templates captions are generated from for labelled sources
 *
 * Fashion-MNIST keeps the names and templates the audit always used, so its numbers do not move.
 * A dataset without labels is a one-line error: the audit needs classes.
 */
import { DEFAULT_CAPTION_TEMPLATES } from "../../data/captioner";
import type { Dataset } from "../../data/dataset";
import { isFashionMnist } from "../../data/sources/fashion_mnist";
import { checkClassNames, checkTemplates, loadTemplateSet } from "../../text/templates";

export interface ClassPrompts {
  classNames: string[];
  /** Evaluation templates (ensembled by the audit's classifier). */
  templates: string[];
  /** Training templates (TeCoA's frozen classifier; the evaluation ones stay unseen). */
  trainTemplates: string[];
}

/** Fashion-MNIST's caption-set names and templates, unless --classnames replaced its names. */
function fashionMnistPrompts(ds: Dataset): ClassPrompts | undefined {
  if (!isFashionMnist(ds) || ds.classNames !== ds.labelled.classNames) return undefined;
  const spec = ds.captionSet.spec;
  return { classNames: spec.classes.map((c) => c.canonical), templates: [...spec.evalTemplates], trainTemplates: [...spec.trainTemplates] };
}

/** Throws a one-line error unless `data` is a `Dataset` with labels. */
export function checkLabelledDataset(fn: string, data: unknown): Dataset {
  const ds = data as Dataset;
  if (data === null || typeof data !== "object" || typeof ds.items !== "function" || typeof ds.spec !== "string") {
    throw new TypeError(`${fn}: data must be a Dataset (openDataset("fashion-mnist" | "imagefolder:DIR" | "csv:FILE" | ...)), got ${data === null ? "null" : typeof data}`);
  }
  if (!ds.hasLabels) {
    throw new RangeError(
      `${fn}: ${ds.spec} has no labels, but the robustness audit needs classes; use a labelled source (an image folder with one subfolder per class, a label column via --csv-label-key/--label-key, fashion-mnist)`,
    );
  }
  return ds;
}

/** Class names and templates for a labelled dataset (see the module comment for the order). */
export function resolveClassPrompts(ds: Dataset, opts: { classNames?: readonly string[]; templates?: readonly string[] }, fn: string): ClassPrompts {
  const fm = fashionMnistPrompts(ds);
  const names = opts.classNames ?? fm?.classNames ?? ds.classNames;
  if (!names || names.length === 0) throw new RangeError(`${fn}: ${ds.spec} has labels but no class names; pass classNames (--classnames FILE, one name per line in label order)`);
  const classNames = checkClassNames([...names], fn);
  const given = opts.templates !== undefined ? checkTemplates([...opts.templates], `${fn}: templates`) : undefined;
  const templates = given ?? fm?.templates ?? (ds.templates?.length ? checkTemplates([...ds.templates], `${ds.spec}: templates`) : loadTemplateSet("plain").templates);
  const trainTemplates = given ?? fm?.trainTemplates ?? [...DEFAULT_CAPTION_TEMPLATES];
  return { classNames, templates, trainTemplates };
}
