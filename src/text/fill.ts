/**
 * Prompt templates: "a photo of a {}." with one `{}` where the class name goes (the CLIP paper's
 * convention, https://arxiv.org/abs/2103.00020 §3.1.4). One filler for every caller, so a class
 * name holding `$&` or `{}` is inserted literally.
 */
export const PLACEHOLDER = "{}";

/** `template` with its one `{}` replaced by `className`, literally. */
export function fillPrompt(template: string, className: string): string {
  const parts = template.split(PLACEHOLDER);
  if (parts.length !== 2) throw new Error(`fillPrompt: template ${JSON.stringify(template)} must contain exactly one "{}"`);
  return parts[0] + className + parts[1];
}
