/**
 * Paraphrase robustness of a zero-shot classifier: how its accuracy moves when the prompts are
 * reworded in ways a user might (CLIP's sensitivity to wording, Radford et al. 2021,
 * https://arxiv.org/abs/2103.00020 §3.1.4). Three seeded perturbations, each applied afresh in
 * every trial, always with the whole template set ensembled:
 *   - "synonym": every class name replaced by one of its other synonyms (e.g. captions.json's),
 *     drawn at random (classes with no other synonym keep their name);
 *   - "word order": in every template, one random pair of adjacent words (the class slot "{}"
 *     counts as a word) swapped: "a photo of a {}." -> "a photo a of {}.";
 *   - "typo": in every class name, one random letter edit (swap with the next letter, deletion,
 *     duplication, or substitution by a random lower-case letter).
 * Perturbed prompts are tokenized with truncation (a typo can add a token), unlike clean ones.
 */
import { Random } from "../util/random";
import { tokenize } from "../text/tokenize";
import type { Tokenizer, ZeroShotModel } from "../eval/zero_shot";
import { top1Accuracy } from "../eval/classifier_metrics";
import { checkPositiveInt } from "../util/checks";
import { encodePromptBank, ensembleScores, templateCosines, type FeatureSet } from "./prompt_bank";
import { checkClassNames, checkTemplates } from "../text/templates";
import { spread, type SpreadSummary } from "./sensitivity";

export type ParaphraseKind = "synonym" | "word order" | "typo";
export const PARAPHRASE_KINDS: readonly ParaphraseKind[] = ["synonym", "word order", "typo"];

/** Each class replaced by a random other synonym (itself when it has none). */
export function swapSynonyms(classNames: readonly string[], synonyms: readonly (readonly string[])[], rng: Random): string[] {
  if (synonyms.length !== classNames.length) {
    throw new Error(`swapSynonyms: ${synonyms.length} synonym lists for ${classNames.length} classes`);
  }
  return classNames.map((name, c) => {
    const others = synonyms[c].filter((s) => s !== name);
    return others.length ? others[rng.int(others.length)] : name;
  });
}

/** One random pair of adjacent space-separated words swapped ("{}" is a word; punctuation stays attached). */
export function swapAdjacentWords(template: string, rng: Random): string {
  // Keep the final punctuation in place: "a photo of a {}." -> words [a, photo, of, a, {}] + ".".
  const m = template.match(/^(.*?)([.!?]*)$/s)!;
  const words = m[1].split(" ");
  if (words.length < 2) return template;
  const i = rng.int(words.length - 1);
  [words[i], words[i + 1]] = [words[i + 1], words[i]];
  return words.join(" ") + m[2];
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";

/** One random edit at a random letter of `word` (see the module comment). Non-letters are never edited. */
export function addTypo(word: string, rng: Random): string {
  const positions: number[] = [];
  for (let i = 0; i < word.length; i++) if (/[a-z]/i.test(word[i])) positions.push(i);
  if (positions.length === 0) return word;
  const i = positions[rng.int(positions.length)];
  const op = rng.int(4);
  if (op === 0 && i + 1 < word.length) return word.slice(0, i) + word[i + 1] + word[i] + word.slice(i + 2);
  if (op === 1 && positions.length > 1) return word.slice(0, i) + word.slice(i + 1);
  if (op === 2) return word.slice(0, i + 1) + word[i] + word.slice(i + 1);
  let r = LETTERS[rng.int(26)];
  if (r === word[i].toLowerCase()) r = LETTERS[(LETTERS.indexOf(r) + 1) % 26];
  return word.slice(0, i) + r + word.slice(i + 1);
}

export interface ParaphraseRow {
  kind: "clean" | ParaphraseKind;
  /** Ensemble top-1 of each trial (one for "clean"). */
  trials: number[];
  top1: SpreadSummary;
  /** Mean top-1 minus the clean top-1 (negative: the perturbation hurts). */
  change: number;
  /** The class names and templates of the first trial, as an example. */
  example: { classNames: string[]; templates: string[] };
}

export interface ParaphraseOptions {
  /** One list per class (e.g. CaptionSet.spec.classes[c].synonyms); without it "synonym" is skipped. */
  synonyms?: readonly (readonly string[])[];
  /** Trials per perturbation; default 5. */
  trials?: number;
  seed?: number;
  kinds?: readonly ParaphraseKind[];
  /** Default: CLIP's BPE at the model's context length, truncating. */
  tokenizer?: Tokenizer;
  batchSize?: number;
}

export function paraphraseRobustness(
  model: ZeroShotModel,
  test: FeatureSet,
  classNames: readonly string[],
  templates: readonly string[],
  opts: ParaphraseOptions = {},
): ParaphraseRow[] {
  const fn = "paraphraseRobustness";
  const names = checkClassNames(classNames, fn);
  const temps = checkTemplates(templates, fn);
  const trials = checkPositiveInt(fn, "trials", opts.trials ?? 5);
  const kinds = opts.kinds ?? PARAPHRASE_KINDS;
  kinds.forEach((k) => {
    if (!PARAPHRASE_KINDS.includes(k)) throw new RangeError(`${fn}: unknown kind ${JSON.stringify(k)}; valid kinds: ${PARAPHRASE_KINDS.join(", ")}`);
  });
  const contextLength = model.config.text_cfg.context_length;
  const tokenizer: Tokenizer = opts.tokenizer ?? ((texts) => tokenize(texts, { contextLength, truncate: true }));
  const accuracy = (cls: string[], tpl: string[]): number => {
    const bank = encodePromptBank(model, cls, tpl, { tokenizer, batchSize: opts.batchSize });
    const scores = ensembleScores(bank, templateCosines(bank, test), new Array<number>(tpl.length).fill(1));
    return top1Accuracy(scores, test.labels, cls.length);
  };
  const clean = accuracy(names, temps);
  const rows: ParaphraseRow[] = [{ kind: "clean", trials: [clean], top1: spread([clean]), change: 0, example: { classNames: names, templates: temps } }];
  kinds.forEach((kind, ki) => {
    if (kind === "synonym" && !opts.synonyms) return;
    const rng = new Random((opts.seed ?? 0) * 7919 + ki + 1);
    const accs: number[] = [];
    let example: ParaphraseRow["example"] | undefined;
    for (let t = 0; t < trials; t++) {
      let cls = names;
      let tpl = temps;
      if (kind === "synonym") cls = swapSynonyms(names, opts.synonyms!, rng);
      else if (kind === "word order") tpl = [...new Set(temps.map((x) => swapAdjacentWords(x, rng)))];
      else cls = names.map((x) => addTypo(x, rng));
      // Two templates may coincide after a swap: the ensemble keeps one of them.
      example ??= { classNames: cls, templates: tpl };
      accs.push(accuracy(cls, tpl));
    }
    const s = spread(accs);
    rows.push({ kind, trials: accs, top1: s, change: s.mean - clean, example: example! });
  });
  return rows;
}
