/**
 * Text that goes into plotly figures. plotly renders labels, hover text and titles as its own
 * "pseudo-HTML" (a few tags like <b> and <br>, and entities), so every caption or class name is
 * escaped here: it then shows literally, whatever characters it has.
 */

/** Escapes `&`, `<` and `>` for plotly's pseudo-HTML (plotly decodes the entities back for display). */
export function plotlyText(text: string): string {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Shortens `text` to at most `max` characters, ending with "…" when cut. */
export function shorten(text: string, max: number): string {
  const s = String(text);
  return s.length <= max ? s : s.slice(0, Math.max(1, max - 1)) + "…";
}

/** Ten distinguishable colours (matplotlib's tab10 / d3's category10), cycled for more classes. */
export const CLASS_COLORS: readonly string[] = Object.freeze([
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]);

export function classColor(c: number): string {
  return CLASS_COLORS[((c % CLASS_COLORS.length) + CLASS_COLORS.length) % CLASS_COLORS.length];
}

/** Throws (one line) unless `names` is a non-empty array of strings. */
export function checkNames(fn: string, arg: string, names: unknown, count?: number): readonly string[] {
  if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) throw new TypeError(`${fn}: ${arg} must be an array of strings`);
  if (count !== undefined && names.length !== count) throw new RangeError(`${fn}: ${arg} has ${names.length} entries, expected ${count}`);
  return names as readonly string[];
}
