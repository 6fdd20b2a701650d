/**
 * Probes for one suspect word ("counterfeit"): the harmful-label distractors "<word> <class>",
 * WEAT prompt sets with and without the word and for the positive class against the others, and
 * the word's direction in text space for projection debiasing (Chuang et al. 2023,
 * https://arxiv.org/abs/2302.00070). The planted-bias study uses them with its own word; the CLI
 * with `--word` on any dataset. The distractors are one category of the audit's extra zero-shot
 * classes (./distractors.ts), beside a harmful-label set such as the CLIP paper's.
 */
import * as tf from "@tensorflow/tfjs";
import type { TextFeatureModel } from "../../eval/encode";
import { fillPrompt } from "../../text/fill";
import type { AttributeSets } from "./audit";
import { spuriousDirectionsFromPrompts } from "./debias";
import type { Distractor } from "./distractors";

export interface WordProbes {
  classNames: readonly string[];
  templates: readonly string[];
  positiveClass: number;
  distractors: string[];
  associations: AttributeSets[];
}

/** Audit options probing `word` against the classes (every prompt filled into every template). */
export function wordProbeOptions(word: string, classNames: readonly string[], templates: readonly string[], positiveClass: number): WordProbes {
  const target = classNames[positiveClass];
  if (target === undefined) throw new RangeError(`wordProbeOptions: positiveClass must be an integer in [0, ${classNames.length - 1}], got ${positiveClass}`);
  const prompts = (list: readonly string[]) => list.flatMap((n) => templates.map((t) => fillPrompt(t, n)));
  return {
    classNames,
    templates,
    positiveClass,
    distractors: classNames.map((n) => `${word} ${n}`),
    associations: [
      { name: `"${word}" vs no word`, a: prompts(classNames.map((n) => `${word} ${n}`)), b: prompts(classNames) },
      { name: `${target} vs other classes`, a: prompts([target]), b: prompts(classNames.filter((n) => n !== target)) },
    ],
  };
}

/** The word's distractors as one category, `"<word>" + class`, to combine with a harmful-label set. */
export function wordDistractors(word: string, classNames: readonly string[]): Distractor[] {
  return classNames.map((n) => ({ label: `${word} ${n}`, category: `"${word}" + class` }));
}

/** Prompt pairs that differ only in `word`, for `spuriousDirectionsFromPrompts`. */
export function wordSpuriousPairs(word: string, classNames: readonly string[], templates: readonly string[]): [string, string][] {
  return classNames.flatMap((n) => templates.map((t) => [fillPrompt(t, `${word} ${n}`), fillPrompt(t, n)] as [string, string]));
}

/** One spurious direction [1, D]: the mean of the pair differences (a single direction keeps the rest of the space). */
export function wordSpuriousDirection(
  model: TextFeatureModel,
  word: string,
  classNames: readonly string[],
  templates: readonly string[],
  tokenizer?: (texts: string[]) => tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() => tf.mean(spuriousDirectionsFromPrompts(model, wordSpuriousPairs(word, classNames, templates), tokenizer), 0, true) as tf.Tensor2D); // [1, D]
}
