/**
 * Prompt templates: "a photo of a {}." with one `{}` where the class name goes (the CLIP paper's
 * convention, https://arxiv.org/abs/2103.00020 §3.1.4). One filler for every caller, so a class
 * name holding `$&` or `{}` is inserted literally.
 */
export const PLACEHOLDER = "{}";

/**
 * `template` with its one `{}` replaced by `className`, literally; `slots` fills other named slots
 * the same way (e.g. `{ "{attr}": "striped" }`), only outside the class name.
 */
export function fillPrompt(template: string, className: string, slots: Readonly<Record<string, string>> = {}): string {
  const parts = template.split(PLACEHOLDER);
  if (parts.length !== 2) throw new Error(`fillPrompt: template ${JSON.stringify(template)} must contain exactly one "{}"`);
  const fillSlots = (text: string) => Object.entries(slots).reduce((t, [slot, value]) => t.split(slot).join(value), text);
  return fillSlots(parts[0]) + className + fillSlots(parts[1]);
}
