/**
 * Brace expansion of shard patterns, as webdataset and open_clip expand `--train-data`
 * (Python's `braceexpand`): `shards/{0000..0099}.tar` (numeric ranges, zero-padded when an end
 * is written with a leading zero, optional step `{0..10..2}`, descending when start > end),
 * `{a,b,c}` lists, letter ranges `{a..e}`, nesting (`{a,b{1..2}}`), several groups (their
 * product, leftmost varying slowest). `\{`, `\}` and `\,` are literal. A group with neither a
 * comma nor a range (`{x}`) stays literal, as in bash.
 */

/** Every string `pattern` names, in order. Unbalanced braces are an error naming the pattern. */
export function expandBraces(pattern: string): string[] {
  checkBalanced(pattern);
  return expand(pattern).map(unescape);
}

/** open_clip's `::` joins several patterns into one list (`a/{0..9}.tar::b/{0..4}.tar`). */
export function expandShardList(spec: string): string[] {
  return spec.split("::").flatMap((p) => (p === "" ? [] : expandBraces(p)));
}

function checkBalanced(pattern: string): void {
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "\\") i++;
    else if (ch === "{") depth++;
    else if (ch === "}" && --depth < 0) throw new RangeError(`brace pattern ${JSON.stringify(pattern)}: "}" at position ${i} has no matching "{"`);
  }
  if (depth > 0) throw new RangeError(`brace pattern ${JSON.stringify(pattern)}: ${depth} "{" not closed`);
}

/** Expands the first expandable group at or after `from`, recursively; escapes are kept until the end. */
function expand(s: string, from = 0): string[] {
  const open = findUnescaped(s, "{", from);
  if (open < 0) return [s];
  const close = matchingClose(s, open);
  const alternatives = groupAlternatives(s.slice(open + 1, close));
  // A literal group: its "{" stays, groups inside it still expand.
  if (alternatives === null) return expand(s, open + 1);
  const prefix = s.slice(0, open);
  const rest = expand(s.slice(close + 1));
  const out: string[] = [];
  for (const alt of alternatives) for (const tail of rest) out.push(prefix + alt + tail);
  return out;
}

/** The strings a group body stands for, or null when it is literal (no comma, no range). */
function groupAlternatives(body: string): string[] | null {
  const parts = splitTopLevel(body);
  if (parts.length > 1) return parts.flatMap(expand);
  return rangeAlternatives(body);
}

function rangeAlternatives(body: string): string[] | null {
  const num = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/.exec(body);
  if (num) {
    const [a, b] = [Number(num[1]), Number(num[2])];
    const step = Math.abs(num[3] === undefined ? 1 : Number(num[3])) || 1;
    const padded = /^-?0\d/.test(num[1]) || /^-?0\d/.test(num[2]);
    const width = padded ? Math.max(num[1].length, num[2].length) : 0;
    const out: string[] = [];
    for (let v = a; a <= b ? v <= b : v >= b; v += a <= b ? step : -step) {
      const digits = String(Math.abs(v)).padStart(width - (v < 0 ? 1 : 0), "0");
      out.push((v < 0 ? "-" : "") + digits);
    }
    return out;
  }
  const chr = /^([a-zA-Z])\.\.([a-zA-Z])(?:\.\.(-?\d+))?$/.exec(body);
  if (chr) {
    const [a, b] = [chr[1].charCodeAt(0), chr[2].charCodeAt(0)];
    const step = Math.abs(chr[3] === undefined ? 1 : Number(chr[3])) || 1;
    const out: string[] = [];
    for (let c = a; a <= b ? c <= b : c >= b; c += a <= b ? step : -step) out.push(String.fromCharCode(c));
    return out;
  }
  return null;
}

/** Splits a group body at its top-level, unescaped commas. */
function splitTopLevel(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === "\\") i++;
    else if (ch === "{") depth++;
    else if (ch === "}") depth--;
    else if (ch === "," && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts;
}

function findUnescaped(s: string, ch: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === ch) return i;
  }
  return -1;
}

function matchingClose(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === "{") depth++;
    else if (s[i] === "}" && --depth === 0) return i;
  }
  return -1; // unreachable after checkBalanced
}

function unescape(s: string): string {
  return s.replace(/\\([{},\\])/g, "$1");
}
