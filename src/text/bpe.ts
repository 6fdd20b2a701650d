// CLIP's byte-level BPE: a port of `SimpleTokenizer` from OpenAI's
// https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py (without ftfy).
// Vocab: assets/bpe_simple_vocab_16e6.txt.gz, read lazily on first use.

import * as fs from "node:fs";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { basicClean, whitespaceClean } from "./clean";

export const DEFAULT_VOCAB_PATH = path.join(__dirname, "../../assets/bpe_simple_vocab_16e6.txt.gz");

// Upstream keeps this many merges so that 256 bytes ×2 (with and without "</w>"), the merges
// and the two special tokens come to 49408 ids.
const N_MERGES = 49152 - 256 - 2;
const SPECIALS = ["<|startoftext|>", "<|endoftext|>"];

// Upstream `pat`, with `\s` spelled as the White_Space property to match the `regex` module.
// Under IGNORECASE `regex` matches U+0345 (combining ypogegrammeni, which case-folds to "ι")
// with neither `\p{L}` nor its complement, so it is skipped like a space; JS `iu` counts it
// as a letter, so it is blanked first. No other code point differs (checked against `regex`).
const PIECE =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\p{White_Space}\p{L}\p{N}]+/giu;
const UNMATCHED = /\u0345/g;

// Past this many distinct words the cache is dropped: long data runs would otherwise grow it
// without bound, and re-merging a word is cheap.
const CACHE_LIMIT = 200_000;

/**
 * GPT-2/CLIP `bytes_to_unicode`: byte → a printable character standing for it. Printable
 * Latin-1 bytes map to themselves; the rest go to U+0100 and up, in byte order.
 */
export function bytesToUnicode(): string[] {
  const out = new Array<string>(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return out;
}

interface VocabTables {
  encoder: Map<string, number>;
  decoder: string[];
  merges: [string, string][];
  ranks: Map<string, number>; // "first second" → merge rank
}

const loaded = new Map<string, VocabTables>();

function loadVocab(file: string): VocabTables {
  const hit = loaded.get(file);
  if (hit) return hit;
  // The copy sidesteps a Buffer/Uint8Array typing clash between @types/node 20 and TS 5.9.
  const lines = gunzipSync(new Uint8Array(fs.readFileSync(file))).toString("utf8").split("\n");
  // Line 0 is a version header.
  const merges = lines.slice(1, N_MERGES + 1).map((line) => {
    const [a, b] = line.split(" ");
    return [a, b] as [string, string];
  });
  if (merges.length !== N_MERGES || merges.some(([a, b]) => !a || !b)) {
    throw new Error(`BPE vocab ${file} does not have ${N_MERGES} well-formed merge lines`);
  }
  // Id order is upstream's: byte characters in bytes_to_unicode dict order (printable bytes
  // first, then the remapped ones, i.e. by code point), the same with "</w>", merges, specials.
  const ordered = bytesToUnicode().sort((x, y) => x.charCodeAt(0) - y.charCodeAt(0));
  const decoder = [...ordered, ...ordered.map((c) => c + "</w>"), ...merges.map(([a, b]) => a + b), ...SPECIALS];
  const encoder = new Map(decoder.map((tok, i) => [tok, i] as [string, number]));
  const ranks = new Map(merges.map(([a, b], i) => [a + " " + b, i] as [string, number]));
  const tables = { encoder, decoder, merges, ranks };
  loaded.set(file, tables);
  return tables;
}

const BYTE_ENCODER = bytesToUnicode();
const BYTE_DECODER = new Map(BYTE_ENCODER.map((c, b) => [c, b] as [string, number]));

/** Byte-level BPE tokenizer with CLIP's vocabulary; `encode` includes the cleaning steps. */
export class ClipBpe {
  private tables: VocabTables | undefined;
  private cache = new Map<string, number[]>();
  // Python's utf-8 codec keeps a leading BOM; TextDecoder would drop it by default.
  private readonly utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(private readonly vocabPath: string = DEFAULT_VOCAB_PATH) {}

  private get vocab(): VocabTables {
    if (!this.tables) this.tables = loadVocab(this.vocabPath);
    return this.tables;
  }

  get vocabSize(): number {
    return this.vocab.decoder.length;
  }

  /** Text → BPE ids without SOT/EOT, like `SimpleTokenizer.encode` (lone surrogates become U+FFFD). */
  encode(text: string): number[] {
    const cleaned = whitespaceClean(basicClean(text)).toLowerCase().replace(UNMATCHED, " ");
    const ids: number[] = [];
    for (const piece of cleaned.match(PIECE) ?? []) {
      let token = "";
      for (const b of Buffer.from(piece, "utf8")) token += BYTE_ENCODER[b];
      for (const id of this.bpeIds(token)) ids.push(id);
    }
    return ids;
  }

  /** Ids → text, like `SimpleTokenizer.decode`: invalid UTF-8 becomes U+FFFD, "</w>" a space. */
  decode(ids: ArrayLike<number>): string {
    const { decoder } = this.vocab;
    let chars = "";
    for (let i = 0; i < ids.length; i++) {
      const tok = decoder[ids[i]];
      if (tok === undefined) throw new RangeError(`decode: token id ${ids[i]} at position ${i} is not in the vocab`);
      chars += tok;
    }
    const bytes = new Uint8Array(chars.length);
    for (let i = 0; i < chars.length; i++) bytes[i] = BYTE_DECODER.get(chars[i])!;
    return this.utf8.decode(bytes).replaceAll("</w>", " ");
  }

  /** Merge one byte-encoded word; special tokens written in the text map to their own ids. */
  private bpeIds(token: string): number[] {
    const cached = this.cache.get(token);
    if (cached) return cached;
    const { encoder, ranks, merges } = this.vocab;
    const special = SPECIALS.indexOf(token);
    if (special >= 0) return [encoder.get(SPECIALS[special])!];

    let word = Array.from(token);
    word[word.length - 1] += "</w>";
    while (word.length > 1) {
      let best = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = ranks.get(word[i] + " " + word[i + 1]);
        if (r !== undefined && r < best) best = r;
      }
      if (best === Infinity) break;
      // Upstream merges every non-overlapping occurrence of the best pair, left to right.
      const [first, second] = merges[best];
      const next: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(word[i++]);
        }
      }
      word = next;
    }
    const ids = word.map((w) => encoder.get(w)!);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(token, ids);
    return ids;
  }
}
