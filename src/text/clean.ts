// Text cleaning for the CLIP tokenizer: `basic_clean` and `whitespace_clean` from OpenAI's
// https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py, minus `ftfy.fix_text`
// (the "no_ftfy" pipeline of test/fixtures/tokenizer.json). Python semantics are reproduced
// where they differ from JS: `html.unescape`, `str.strip()` and the `regex` module's `\s`.

// Names HTML5 also accepts without the trailing ";" (Python's html5 table holds them both ways).
// These are the Latin-1 block U+00A0..U+00FF, in code point order, plus the ones below.
const LATIN1_NAMES =
  "nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr " +
  "deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest " +
  "Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml " +
  "ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig " +
  "agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml " +
  "eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml";
const LEGACY_EXTRA = "amp=26 lt=3C gt=3E quot=22 AMP=26 LT=3C GT=3E QUOT=22 COPY=A9 REG=AE";

// A small subset of the 2,231 HTML5 names, all requiring ";": common typography, Greek, HTML4
// math, and every HTML5 name that begins with a legacy name (`&notin;` must not become "¬in;").
const SEMICOLON_ONLY =
  "apos=27 OElig=152 oelig=153 Scaron=160 scaron=161 Yuml=178 fnof=192 circ=2C6 tilde=2DC " +
  "ensp=2002 emsp=2003 thinsp=2009 zwnj=200C zwj=200D lrm=200E rlm=200F ndash=2013 mdash=2014 " +
  "lsquo=2018 rsquo=2019 sbquo=201A ldquo=201C rdquo=201D bdquo=201E dagger=2020 Dagger=2021 " +
  "bull=2022 hellip=2026 permil=2030 prime=2032 Prime=2033 lsaquo=2039 rsaquo=203A oline=203E " +
  "frasl=2044 euro=20AC trade=2122 larr=2190 uarr=2191 rarr=2192 darr=2193 harr=2194 " +
  "forall=2200 part=2202 exist=2203 empty=2205 nabla=2207 isin=2208 ni=220B prod=220F sum=2211 " +
  "minus=2212 lowast=2217 radic=221A prop=221D infin=221E ang=2220 and=2227 or=2228 cap=2229 " +
  "cup=222A int=222B there4=2234 sim=223C cong=2245 asymp=2248 ne=2260 equiv=2261 le=2264 " +
  "ge=2265 sub=2282 sup=2283 nsub=2284 sube=2286 supe=2287 oplus=2295 otimes=2297 perp=22A5 " +
  "sdot=22C5 lceil=2308 rceil=2309 lfloor=230A rfloor=230B loz=25CA spades=2660 clubs=2663 " +
  "hearts=2665 diams=2666 thetasym=3D1 upsih=3D2 piv=3D6 " +
  "centerdot=B7 copysr=2117 divideontimes=22C7 gtcc=2AA7 gtcir=2A7A gtdot=22D7 gtlPar=2995 " +
  "gtquest=2A7C gtrapprox=2A86 gtrarr=2978 gtrdot=22D7 gtreqless=22DB gtreqqless=2A8C " +
  "gtrless=2277 gtrsim=2273 ltcc=2AA6 ltcir=2A79 ltdot=22D6 lthree=22CB ltimes=22C9 " +
  "ltlarr=2976 ltquest=2A7B ltri=25C3 ltrie=22B4 ltrif=25C2 ltrPar=2996 notin=2209 " +
  "notindot=22F5+338 notinE=22F9+338 notinva=2209 notinvb=22F7 notinvc=22F6 notni=220C " +
  "notniva=220C notnivb=22FE notnivc=22FD parallel=2225 timesb=22A0 timesbar=2A31 timesd=2A30";
// Greek letters by code point; the capital block has a hole at U+03A2 (no capital final sigma).
const GREEK_UPPER = "Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho - Sigma Tau Upsilon Phi Chi Psi Omega";
const GREEK_LOWER = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigmaf sigma tau upsilon phi chi psi omega";

interface EntityTables {
  withSemicolon: Map<string, string>;
  legacy: Map<string, string>;
}
let entities: EntityTables | undefined;

function parsePairs(spec: string, into: Map<string, string>): void {
  for (const item of spec.split(" ")) {
    const [name, hex] = item.split("=");
    into.set(name, String.fromCodePoint(...hex.split("+").map((h) => parseInt(h, 16))));
  }
}

function entityTables(): EntityTables {
  if (entities) return entities;
  const legacy = new Map<string, string>();
  LATIN1_NAMES.split(" ").forEach((name, i) => legacy.set(name, String.fromCodePoint(0xa0 + i)));
  parsePairs(LEGACY_EXTRA, legacy);
  const withSemicolon = new Map(legacy);
  parsePairs(SEMICOLON_ONLY, withSemicolon);
  const greek = (names: string, base: number) =>
    names.split(" ").forEach((name, i) => name !== "-" && withSemicolon.set(name, String.fromCodePoint(base + i)));
  greek(GREEK_UPPER, 0x391);
  greek(GREEK_LOWER, 0x3b1);
  entities = { withSemicolon, legacy };
  return entities;
}

// Python maps these numeric references like the HTML5 spec: C1 controls as Windows-1252.
const CP1252_80_9F =
  "\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f" +
  "\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178";

function numericRef(num: number): string {
  if (num === 0) return "\ufffd";
  if (num === 0x0d) return "\r";
  if (num >= 0x80 && num <= 0x9f) return CP1252_80_9F[num - 0x80];
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return "\ufffd";
  // Python drops the code points the HTML5 spec calls parse errors.
  if (
    (num >= 0x01 && num <= 0x08) ||
    num === 0x0b ||
    (num >= 0x0e && num <= 0x1f) ||
    num === 0x7f ||
    (num >= 0xfdd0 && num <= 0xfdef) ||
    (num & 0xfffe) === 0xfffe
  ) {
    return "";
  }
  return String.fromCodePoint(num);
}

// Same shape as Python's html._charref: names are 1..32 code points, ";" optional.
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function replaceRef(match: string, s: string): string {
  if (s[0] === "#") {
    const hex = s[1] === "x" || s[1] === "X";
    const digits = s.slice(hex ? 2 : 1).replace(/;$/, "");
    // parseInt loses precision on huge inputs, but anything that large is > 0x10FFFF either way.
    return numericRef(parseInt(digits, hex ? 16 : 10));
  }
  const { withSemicolon, legacy } = entityTables();
  if (s.endsWith(";")) {
    const hit = withSemicolon.get(s.slice(0, -1));
    if (hit !== undefined) return hit;
  } else {
    const hit = legacy.get(s);
    if (hit !== undefined) return hit;
  }
  // Like Python, fall back to the longest legacy name that prefixes the text ("&ampx" → "&x").
  for (let x = s.length - 1; x >= 2; x--) {
    const hit = legacy.get(s.slice(0, x));
    if (hit !== undefined) return hit + s.slice(x);
  }
  return match;
}

/** Python's `html.unescape`, with a subset of the named entities (unknown names stay as is). */
export function htmlUnescape(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(CHARREF, replaceRef);
}

// Python's str.isspace(): Unicode White_Space plus U+001C..U+001F (bidi class B/S).
function isPyStripSpace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) ||
    (c >= 0x1c && c <= 0x20) ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** Python's `str.strip()` with no argument; unlike `String.prototype.trim` it keeps U+FEFF. */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  // Every character isspace() accepts is in the BMP, so UTF-16 units are safe to test here.
  while (start < end && isPyStripSpace(s.charCodeAt(start))) start++;
  while (end > start && isPyStripSpace(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** `basic_clean` without ftfy: unescape twice (captions are often double-escaped), then strip. */
export function basicClean(text: string): string {
  return pyStrip(htmlUnescape(htmlUnescape(text)));
}

// The `regex` module's `\s` is the White_Space property: it includes U+0085 and excludes
// U+FEFF and U+001C..U+001F, where JS `\s` does the opposite.
const WHITESPACE_RUN = /\p{White_Space}+/gu;

/** `whitespace_clean`: collapse whitespace runs to one space, then strip. */
export function whitespaceClean(text: string): string {
  return pyStrip(text.replace(WHITESPACE_RUN, " "));
}
