/**
 * The trainer's input side, as SentencePiece's TrainerInterface: select sentences (all, the first N, or a seeded
 * reservoir sample of N), normalize them, replace meta pieces by a boundary, count characters, pick the required
 * characters by --character_coverage, replace the others by ▅ (U+2585), and split into words at ▁.
 * Identical units are merged with summed frequency (the trainers only ever weight a unit by its frequency).
 * see: google/sentencepiece src/trainer_interface.cc (LoadSentences, SentenceSelector, SplitSentencesByWhitespace),
 *      src/model_interface.cc (SplitIntoWords), src/util.h (ReservoirSampler, Sorted) — v0.1.97
 */
import type { Normalizer } from "../normalizer.ts";
import type { TrainerConfig } from "./trainer_spec.ts";
import { Mt19937 } from "../../core/mt19937.ts";
import { decodeUtf8Char, utf8Length } from "../utf8.ts";

/** U+2581, the escaped whitespace. */
export const WS_CHAR = 0x2581;
/** U+2585, the placeholder for characters outside the alphabet (and lines containing it are skipped). */
export const UNK_CHAR = 0x2585;
export const UNK_STR = "\u2585";
/** TAB: where a meta piece (user-defined, control, byte …) was found in a normalized sentence. */
export const BOUNDARY_CHAR = 0x09;

/** Stands for one invalid input byte in a decoded line (a lone surrogate: valid UTF-8 never decodes to it). */
export const INVALID_BYTE = "\udfff";
/** A noncharacter with no normalization rule: carries INVALID_BYTE through the charsmap (see prepareCorpus). */
const INVALID_BYTE_CARRIER = "\ufdd0";
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes one input line as SentencePiece reads it: valid UTF-8 as is, each byte of an invalid sequence as
 * INVALID_BYTE (SentencePiece's normalizer turns each into U+FFFD without applying its rules to it).
 */
export function decodeLine(bytes: Uint8Array): string {
  try {
    return fatalUtf8.decode(bytes);
  } catch {
    let out = "";
    for (let pos = 0; pos < bytes.length;) {
      const cp = decodeUtf8Char(bytes, pos, bytes.length);
      if (cp < 0) {
        out += INVALID_BYTE;
        pos++;
      } else {
        out += String.fromCodePoint(cp);
        pos += utf8Length(cp);
      }
    }
    return out;
  }
}

/**
 * decodeLine for every line of `bytes` (split at \n only, as std::getline; `bytes` ends with \n), with their byte
 * lengths: one decode of the whole chunk when it is valid UTF-8 (a \n byte never sits inside a character, so its lines
 * are exactly the per-line decodes), else line by line.
 */
export function decodeLines(bytes: Uint8Array): [string[], number[]] {
  const nBytes: number[] = [];
  let start = 0;
  for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, start)) {
    nBytes.push(i - start);
    start = i + 1;
  }
  let text: string | undefined;
  try {
    text = fatalUtf8.decode(bytes);
  } catch {
    // invalid bytes somewhere: decode line by line
  }
  if (text !== undefined) {
    const lines = text.split("\n");
    lines.pop(); // after the final \n
    return [lines, nBytes];
  }
  const lines: string[] = [];
  start = 0;
  for (const n of nBytes) {
    lines.push(decodeLine(bytes.subarray(start, start + n)));
    start += n + 1;
  }
  return [lines, nBytes];
}

/** SentencePiece's reservoir sampler seed for --shuffle_input_sentence. */
const SAMPLER_SEED = 12345678;

/** Counts of what the selector saw. */
export interface SelectorStats {
  /** Lines accepted by the filters (the population sampled from). */
  total: number;
  tooLong: number;
  withUnkChar: number;
}

/**
 * A copy of `s` with storage of its own. V8 keeps a substring (split, slice) as a view of its parent, so a sampled
 * line kept as it came from the reader would hold on to its whole input chunk (train-tokenizer decodes 64 KiB at a
 * time): with --input_sentence_size and --shuffle_input_sentence the sample would then keep nearly every chunk of the
 * input alive, i.e. memory growing with the input. JSON's round trip always builds a new string.
 */
function ownCopy(s: string): string {
  return JSON.parse(JSON.stringify(s));
}

/**
 * Keeps the sentences the trainer loads, with a bounded memory when --input_sentence_size > 0: the first N, or
 * (with --shuffle_input_sentence) a reservoir sample of N drawn with SentencePiece's generator and seed.
 */
export class SentenceSelector {
  readonly sentences: string[] = [];
  readonly freqs: number[] = [];
  readonly stats: SelectorStats = { total: 0, tooLong: 0, withUnkChar: 0 };
  readonly #size: number;
  readonly #shuffle: boolean;
  readonly #maxBytes: number;
  readonly #rng?: Mt19937;

  constructor(cfg: Pick<TrainerConfig, "inputSentenceSize" | "shuffleInputSentence" | "maxSentenceLength">) {
    this.#size = cfg.inputSentenceSize;
    this.#shuffle = cfg.shuffleInputSentence && cfg.inputSentenceSize > 0;
    this.#maxBytes = cfg.maxSentenceLength;
    if (this.#shuffle) this.#rng = new Mt19937(SAMPLER_SEED);
  }

  /** Offers one line (`nBytes` = its UTF-8 length); returns false when no more lines are wanted. */
  add(line: string, nBytes: number, freq = 1): boolean {
    if (line.length === 0) return true;
    if (nBytes > this.#maxBytes) {
      this.stats.tooLong++;
      return true;
    }
    if (line.includes(UNK_STR)) {
      this.stats.withUnkChar++;
      return true;
    }
    this.stats.total++;
    if (this.#size === 0) {
      this.sentences.push(line);
      this.freqs.push(freq);
      return true;
    }
    if (!this.#shuffle) {
      this.sentences.push(line);
      this.freqs.push(freq);
      return this.sentences.length < this.#size;
    }
    if (this.sentences.length < this.#size) {
      this.sentences.push(ownCopy(line));
      this.freqs.push(freq);
    } else {
      const n = this.#rng!.uniformBelow(this.stats.total);
      if (n < this.sentences.length) {
        this.sentences[n] = ownCopy(line);
        this.freqs[n] = freq;
      }
    }
    return true;
  }
}

/** Replaces every meta piece (longest match at each character) by one TAB, as PrefixMatcher::GlobalReplace. */
export class MetaPieceReplacer {
  readonly #byFirst = new Map<number, string[]>();
  /** Matches any character a meta piece starts with (a line without one is returned as is). */
  #firstChars?: RegExp;

  constructor(pieces: Iterable<string>) {
    for (const p of pieces) {
      if (p.length === 0) continue;
      const c = p.codePointAt(0)!;
      const list = this.#byFirst.get(c) ?? [];
      list.push(p);
      this.#byFirst.set(c, list);
    }
    for (const list of this.#byFirst.values()) list.sort((a, b) => b.length - a.length);
    if (this.#byFirst.size) {
      const cls = [...this.#byFirst.keys()].map((c) => `\\u{${c.toString(16)}}`).join("");
      this.#firstChars = new RegExp(`[${cls}]`, "u");
    }
  }

  replace(s: string): string {
    if (!this.#firstChars || !this.#firstChars.test(s)) return s;
    let out = "";
    let last = 0;
    for (let i = 0; i < s.length;) {
      const c = s.codePointAt(i)!;
      const list = this.#byFirst.get(c);
      let m = 0;
      if (list) {
        for (const p of list) {
          if (s.startsWith(p, i)) {
            m = p.length;
            break;
          }
        }
      }
      if (m > 0) {
        out += s.slice(last, i) + "\t";
        i += m;
        last = i;
      } else {
        i += c > 0xffff ? 2 : 1;
      }
    }
    return last === 0 ? s : out + s.slice(last);
  }
}

/** Splits a normalized sentence into words at ▁, as SentencePiece's SplitIntoWords. */
export function splitIntoWords(text: string, treatWsAsSuffix: boolean, allowWsOnlyPieces: boolean): string[] {
  const out: string[] = [];
  if (text.length === 0) return out;
  if (treatWsAsSuffix) {
    let start = 0;
    let inWs = false;
    for (let i = 0; i < text.length;) {
      const len = charLength(text, i);
      const isWs = text.charCodeAt(i) === WS_CHAR;
      if (isWs) inWs = true;
      else if (inWs) {
        if (allowWsOnlyPieces) {
          out.push(text.slice(start, i));
          start = i;
        }
        inWs = false;
      }
      i += len;
      if (i < text.length && isWs && !allowWsOnlyPieces) {
        out.push(text.slice(start, i));
        start = i;
      }
    }
    out.push(text.slice(start));
    return out;
  }
  if (!allowWsOnlyPieces) {
    // a word starts at every ▁ (and at 0): only ▁ matters, surrogate pairs never contain it
    let start = 0;
    for (let i = text.indexOf("\u2581", 1); i > 0; i = text.indexOf("\u2581", i + 1)) {
      out.push(text.slice(start, i));
      start = i;
    }
    out.push(text.slice(start));
    return out;
  }
  let start = 0;
  let inWs = false;
  for (let i = 0; i < text.length;) {
    const len = charLength(text, i);
    const isWs = text.charCodeAt(i) === WS_CHAR;
    if (i === 0 || (isWs && (!inWs || !allowWsOnlyPieces))) {
      if (i > 0) out.push(text.slice(start, i));
      start = i;
      inWs = true;
    }
    if (inWs && !isWs) inWs = false;
    i += len;
  }
  out.push(text.slice(start));
  return out;
}

/** UTF-16 length of the code point at `i` (2 for a surrogate pair). */
function charLength(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d < 0xe000) return 2;
  }
  return 1;
}

/** The corpus as the trainers see it. */
export interface Corpus {
  /** Units (words with --split_by_whitespace, else sentences) after normalization and ▅ replacement. */
  texts: string[];
  /** Frequency of each unit. */
  freqs: number[];
  /** What follows each unit in its sentences: bit 0 another word (▁…), bit 1 the sentence end. */
  followers: Uint8Array;
  /** Required characters → count, in SentencePiece's Sorted order (count desc, code point asc). */
  requiredChars: Map<number, number>;
  /** Number of sentences after normalization (empty ones dropped). */
  nSentences: number;
  /** Sum of character counts and the covered part, for the report. */
  allChars: number;
  coveredChars: number;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const SURROGATE = /[\ud800-\udfff]/;

/** Options for prepareCorpus. */
export interface PrepareOptions {
  normalizer: Normalizer;
  /** The same normalizer without its charsmap, used for printable-ASCII lines (see prepareCorpus). */
  asciiNormalizer?: Normalizer;
  /** Every meta piece (unk, bos, eos, pad when enabled, control, user-defined, byte pieces). */
  metaPieces: string[];
  splitWords: boolean;
  /** Called every few thousand sentences with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Normalizes the selected sentences and builds the units, required characters and ▅ replacement.
 * Throws RangeError when nothing is left to train on.
 */
export function prepareCorpus(
  sentences: string[],
  freqs: number[],
  cfg: TrainerConfig,
  opts: PrepareOptions,
): Corpus {
  // Each stage is its own function: V8 optimizes small functions better than one long function run once.
  const { units, nSentences } = collectUnits(sentences, freqs, cfg, opts);
  const { requiredChars, all, acc } = selectAlphabet(units, cfg);
  const { texts, outFreqs, followers } = replaceRareChars(units, requiredChars);
  if (opts.splitWords) sortUnits(texts, outFreqs, followers);
  return {
    texts,
    freqs: outFreqs,
    followers: Uint8Array.from(followers),
    requiredChars,
    nSentences,
    allChars: all,
    coveredChars: acc,
  };
}

/** Distinct units in order of first appearance, with summed frequencies and follower bits (see Corpus). */
class UnitCounter {
  readonly texts: string[] = [];
  readonly freqs: number[] = [];
  readonly follow: number[] = [];
  readonly #index = new Map<string, number>();

  add(u: string, f: number, follow: number): void {
    const k = this.#index.get(u);
    if (k === undefined) {
      this.#index.set(u, this.texts.length);
      this.texts.push(u);
      this.freqs.push(f);
      this.follow.push(follow);
    } else {
      this.freqs[k] += f;
      this.follow[k] |= follow;
    }
  }
}

/** Normalizes the sentences and counts the units (words, or sentences without word splitting). */
function collectUnits(
  sentences: string[],
  freqs: number[],
  cfg: TrainerConfig,
  opts: PrepareOptions,
): { units: UnitCounter; nSentences: number } {
  const meta = new MetaPieceReplacer(opts.metaPieces);
  // Printable ASCII has no normalization rule of its own, and no rule key continues with printable ASCII, so such a
  // line needs only the whitespace handling: the identity normalizer does it without the UTF-8 round trip.
  const ascii = opts.asciiNormalizer;
  const units = new UnitCounter();
  let nSentences = 0;
  // Without word splitting the units are the sentences in SentencePiece's order: it drops an empty sentence by
  // swapping the last one into its place (and does not look at the one swapped in).
  const ordered: string[] = [];
  const orderedFreqs: number[] = [];
  for (let i = 0; i < sentences.length; i++) {
    const raw = sentences[i];
    let s: string;
    if (ascii && PRINTABLE_ASCII.test(raw)) s = ascii.normalize(raw);
    else if (raw.isWellFormed()) s = opts.normalizer.normalize(raw);
    else {
      // invalid input bytes: U+FFFD each, untouched by the rules (a literal U+FFFD would map to a space)
      s = opts.normalizer.normalize(raw.replaceAll(INVALID_BYTE, INVALID_BYTE_CARRIER).toWellFormed())
        .replaceAll(INVALID_BYTE_CARRIER, "\ufffd");
    }
    s = meta.replace(s);
    const f = freqs[i];
    if (opts.splitWords) {
      if (s.length === 0) continue;
      nSentences++;
      const words = splitIntoWords(s, cfg.treatWhitespaceAsSuffix, cfg.allowWhitespaceOnlyPieces);
      for (let k = 0; k < words.length; k++) units.add(words[k], f, k + 1 < words.length ? 1 : 2);
    } else {
      ordered.push(s);
      orderedFreqs.push(f);
    }
    if (opts.onProgress && (i & 0x3fff) === 0x3fff) opts.onProgress(i + 1, sentences.length);
  }
  if (!opts.splitWords) {
    let n = ordered.length;
    for (let i = 0; i < n; i++) {
      if (ordered[i].length === 0) {
        ordered[i] = ordered[n - 1];
        orderedFreqs[i] = orderedFreqs[n - 1];
        n--;
      }
    }
    for (let i = 0; i < n; i++) {
      const s = ordered[i];
      if (s.length === 0) continue;
      nSentences++;
      units.add(s, orderedFreqs[i], 2);
    }
  }
  if (nSentences === 0) throw new RangeError("Cannot train: no non-empty sentence after normalization");
  opts.onProgress?.(sentences.length, sentences.length);

  return { units, nSentences };
}

/**
 * Character counts (TAB included: it counts toward coverage but never joins the alphabet) and the alphabet kept by
 * --character_coverage (--required_chars first).
 */
function selectAlphabet(
  units: UnitCounter,
  cfg: TrainerConfig,
): { requiredChars: Map<number, number>; all: number; acc: number } {
  const counts = new Map<number, number>();
  const flagged = new Set<number>();
  for (const ch of cfg.requiredChars) {
    const c = ch.codePointAt(0)!;
    if (c !== 0) flagged.add(c);
  }
  let all = 0;
  // BMP counts in an array (the hot case), the rest in the map
  const bmp = new Float64Array(0x10000);
  for (let k = 0; k < units.texts.length; k++) {
    const u = units.texts[k], f = units.freqs[k];
    for (let i = 0; i < u.length; i++) {
      let c = u.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < u.length) {
        c = u.codePointAt(i)!;
        i++;
      }
      if (c === 0 || c === 0x20) continue;
      if (c < 0x10000) bmp[c] += f;
      else counts.set(c, (counts.get(c) ?? 0) + f);
      all += f;
    }
  }
  for (let c = 1; c < 0x10000; c++) if (bmp[c] > 0) counts.set(c, bmp[c]);
  for (const c of flagged) if (!counts.has(c)) counts.set(c, 0);
  const order = [...counts.entries()].sort((a, b) => {
    const ra = flagged.has(a[0]) ? 1 : 0, rb = flagged.has(b[0]) ? 1 : 0;
    return rb - ra || b[1] - a[1] || a[0] - b[0];
  });
  const coverageLimit = Math.fround(cfg.characterCoverage);
  const required: [number, number][] = [];
  let acc = 0;
  for (const [c, n] of order) {
    // SentencePiece computes the coverage as a float.
    const coverage = Math.fround(acc / all);
    if (!cfg.useAllVocab && coverage >= coverageLimit) break;
    acc += n;
    if (c === BOUNDARY_CHAR) continue;
    required.push([c, n]);
  }
  if (required.some(([c]) => c === UNK_CHAR)) throw new RangeError("Cannot train: U+2585 must not be in the alphabet");
  required.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const requiredChars = new Map(required);

  return { requiredChars, all, acc };
}

/** ▅ for characters outside the alphabet; units that become equal merge. */
function replaceRareChars(
  units: UnitCounter,
  requiredChars: Map<number, number>,
): { texts: string[]; outFreqs: number[]; followers: number[] } {
  const texts: string[] = [];
  const outFreqs: number[] = [];
  const followers: number[] = [];
  // Units are distinct, so only those holding ▅ after the replacement can become equal: only they are looked up.
  const index = new Map<string, number>();
  const inAlphabet = new Uint8Array(0x10000);
  const astral = new Set<number>();
  for (const c of requiredChars.keys()) {
    if (c < 0x10000) inAlphabet[c] = 1;
    else astral.add(c);
  }
  for (let k = 0; k < units.texts.length; k++) {
    const u = units.texts[k];
    const r = allInAlphabet(u, inAlphabet, astral) ? u : replaceRare(u, requiredChars);
    const hasUnk = r.includes(UNK_STR);
    const j = hasUnk ? index.get(r) : undefined;
    if (j === undefined) {
      if (hasUnk) index.set(r, texts.length);
      texts.push(r);
      outFreqs.push(units.freqs[k]);
      followers.push(units.follow[k]);
    } else {
      outFreqs[j] += units.freqs[k];
      followers[j] |= units.follow[k];
    }
  }
  return { texts, outFreqs, followers };
}

function allInAlphabet(u: string, bmp: Uint8Array, astral: Set<number>): boolean {
  for (let i = 0; i < u.length; i++) {
    const c = u.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < u.length) {
      const d = u.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        if (!astral.has(0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00))) return false;
        i++;
        continue;
      }
    }
    if (!bmp[c]) return false;
  }
  return true;
}

/**
 * SentencePiece's SplitSentencesByWhitespace order: frequency desc, then the word by UTF-8 bytes. The BPE trainer's
 * tie-breaking depends on it (through the order its pairs are created in).
 */
function sortUnits(texts: string[], outFreqs: number[], followers: number[]): void {
  const idx = texts.map((_, i) => i);
  // without surrogates, UTF-16 order is code point order: the engine's own string comparison gives the same order
  const astral = texts.some((t) => SURROGATE.test(t));
  const cmp = astral ? compareCodePoints : (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  idx.sort((a, b) => outFreqs[b] - outFreqs[a] || cmp(texts[a], texts[b]));
  const t2 = idx.map((i) => texts[i]), f2 = idx.map((i) => outFreqs[i]), g2 = idx.map((i) => followers[i]);
  for (let i = 0; i < idx.length; i++) {
    texts[i] = t2[i];
    outFreqs[i] = f2[i];
    followers[i] = g2[i];
  }
}

function replaceRare(u: string, keep: Map<number, number>): string {
  let out = "";
  for (const ch of u) out += keep.has(ch.codePointAt(0)!) ? ch : UNK_STR;
  return out;
}

/** SentencePiece's Sorted() on (key, count) pairs of strings: count desc, then key by UTF-8 bytes. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i), y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order differs from code point (= UTF-8 byte) order only between surrogates and U+E000..U+FFFF.
    if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
    if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    return x - y;
  }
  return a.length - b.length;
}
