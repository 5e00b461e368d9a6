/**
 * Which strings may become pieces, as SentencePiece's TrainerInterface::IsValidSentencePiece: at most
 * --max_sentencepiece_length characters; no ▅, NUL, TAB or space; ▁ only as a prefix (or suffix with
 * --treat_whitespace_as_suffix); one Unicode script per piece (Hiragana/Katakana/ー count as Han, Inherited takes the
 * previous script, digits are script-less unless --split_by_number); a digit alone with --split_digits.
 * see: google/sentencepiece src/trainer_interface.cc IsValidSentencePiece (v0.1.97)
 */
import type { TrainerConfig } from "./trainer_spec.ts";
import { SCRIPT_NAMES, scriptOf } from "./unicode_script.ts";
import { BOUNDARY_CHAR, UNK_CHAR, WS_CHAR } from "./corpus.ts";

const HAN = SCRIPT_NAMES.indexOf("Han");
const HIRAGANA = SCRIPT_NAMES.indexOf("Hiragana");
const KATAKANA = SCRIPT_NAMES.indexOf("Katakana");
const INHERITED = SCRIPT_NAMES.indexOf("Inherited");
const ANY = -1;

function isDecimal(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0xff10 && c <= 0xff19);
}

/** Returns the validity test for code point sequences under `cfg`. */
export function pieceValidator(
  cfg: Pick<
    TrainerConfig,
    | "maxSentencepieceLength"
    | "splitByUnicodeScript"
    | "splitByWhitespace"
    | "splitByNumber"
    | "splitDigits"
    | "treatWhitespaceAsSuffix"
    | "allowWhitespaceOnlyPieces"
  >,
): (cps: ArrayLike<number>) => boolean {
  const scriptCache = new Map<number, number>();
  const script = (c: number): number => {
    let s = scriptCache.get(c);
    if (s === undefined) {
      s = scriptOf(c);
      scriptCache.set(c, s);
    }
    return s;
  };
  return (cps) => {
    const n = cps.length;
    if (n === 0 || n > cfg.maxSentencepieceLength) return false;
    let prev = ANY;
    let allWs = true;
    for (let i = 0; i < n; i++) if (cps[i] !== WS_CHAR) allWs = false;
    for (let pos = 0; pos < n; pos++) {
      const c = cps[pos];
      if (c === UNK_CHAR || c === 0 || c === BOUNDARY_CHAR || c === 0x20) return false;
      if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
      if (c === WS_CHAR) {
        if (!cfg.allowWhitespaceOnlyPieces || !allWs) {
          if (cfg.treatWhitespaceAsSuffix) {
            if ((cfg.splitByWhitespace && pos < n - 1) || (!cfg.splitByWhitespace && pos < n - 1 && pos === 0)) {
              return false;
            }
          } else if ((cfg.splitByWhitespace && pos > 0) || (!cfg.splitByWhitespace && pos > 0 && pos === n - 1)) {
            return false;
          }
        }
        continue;
      }
      let s = script(c);
      if (s === HIRAGANA || s === KATAKANA || c === 0x30fc) s = HAN;
      else if (s === INHERITED) s = prev;
      if (!cfg.splitByNumber && isDecimal(c)) s = ANY;
      if (cfg.splitDigits && isDecimal(c) && n > 1) return false;
      if (cfg.splitByUnicodeScript && s !== ANY && prev !== ANY && prev !== s) return false;
      prev = s;
    }
    return true;
  };
}

/** State of a piece being extended one character at a time (see pieceExtender). */
export interface ExtendState {
  length: number;
  prevScript: number;
  hasDigit: boolean;
  hasWs: boolean;
}

/**
 * The same rules as pieceValidator, incrementally: `extend(state, c)` says whether the valid piece described by
 * `state` stays valid with `c` appended (and updates `state`). Only for --split_by_whitespace without
 * --allow_whitespace_only_pieces (the rules are then local); undefined otherwise.
 */
export function pieceExtender(
  cfg: Parameters<typeof pieceValidator>[0],
): ((state: ExtendState, c: number) => boolean) | undefined {
  if (!extenderApplies(cfg)) return undefined;
  // script per code point, + 1 (0 = not looked up yet): called for every character of every candidate piece
  const scriptCache = new Uint8Array(0x110000);
  return (st, c) => {
    const pos = st.length;
    if (pos + 1 > cfg.maxSentencepieceLength) return false;
    if (c === UNK_CHAR || c === 0 || c === BOUNDARY_CHAR || c === 0x20) return false;
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    if (cfg.splitDigits && pos >= 1 && (st.hasDigit || isDecimal(c))) return false;
    if (c === WS_CHAR) {
      // prefix mode: only first; suffix mode: only last (nothing may follow it)
      if (cfg.treatWhitespaceAsSuffix ? st.hasWs : pos > 0) return false;
      st.hasWs = true;
      st.length++;
      return true;
    }
    if (cfg.treatWhitespaceAsSuffix && st.hasWs) return false;
    let s = scriptCache[c] - 1;
    if (s < 0) {
      s = scriptOf(c);
      scriptCache[c] = s + 1;
    }
    if (s === HIRAGANA || s === KATAKANA || c === 0x30fc) s = HAN;
    else if (s === INHERITED) s = st.prevScript;
    if (!cfg.splitByNumber && isDecimal(c)) s = ANY;
    if (cfg.splitByUnicodeScript && s !== ANY && st.prevScript !== ANY && st.prevScript !== s) return false;
    st.prevScript = s;
    if (isDecimal(c)) st.hasDigit = true;
    st.length++;
    return true;
  };
}

/** Whether the piece rules are local (pieceExtender and validPrefixLengths apply): --split_by_whitespace without
 * --allow_whitespace_only_pieces. */
export function extenderApplies(cfg: Parameters<typeof pieceValidator>[0]): boolean {
  return cfg.splitByWhitespace && !cfg.allowWhitespaceOnlyPieces;
}

/** Per-character classes of validPrefixLengths (scripts are ≥ 0, ANY = -1). */
const BAD = -10, WS = -11, INHERIT = -12;

/**
 * The class of every character of `text` as pieceExtender sees it: BAD (never in a piece), WS, INHERIT, or its script
 * as the extender maps it (ANY for a digit without --split_by_number); `digit` marks the decimal digits.
 */
function charClasses(
  cfg: Parameters<typeof pieceValidator>[0],
  text: Int32Array,
): { cls: Int16Array; digit: Uint8Array } {
  const N = text.length;
  const cls = new Int16Array(N);
  const digit = new Uint8Array(N);
  // script per BMP code point as the extender maps it; -100 = not looked up yet (astral ones: looked up each time)
  const bmpScript = new Int16Array(0x10000).fill(-100);
  for (let i = 0; i < N; i++) {
    const c = text[i];
    if (
      c === UNK_CHAR || c === 0 || c === BOUNDARY_CHAR || c === 0x20 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)
    ) {
      cls[i] = BAD;
      continue;
    }
    if (c === WS_CHAR) {
      cls[i] = WS;
      continue;
    }
    let s = c < 0x10000 ? bmpScript[c] : -100;
    if (s === -100) {
      s = extenderScript(c);
      if (c < 0x10000) bmpScript[c] = s;
    }
    if (isDecimal(c)) {
      digit[i] = 1;
      if (!cfg.splitByNumber) s = ANY;
    }
    cls[i] = s;
  }
  return { cls, digit };
}

/**
 * pieceExtender's answer for every start position at once: `out[p]` = how many characters from p the extender
 * accepts before its first refusal (stopping at `unitEnd[p]`), or 1 when it refuses the first character (the
 * seeding only asks about pieces of two or more). Only where pieceExtender applies (undefined otherwise).
 *
 * Linear time: the extender refuses character j of a piece started at p < j for reasons of two kinds. Hard ones do
 * not depend on p: j is BAD, ▁ (prefix mode), follows ▁ (suffix mode), or is or follows a digit (--split_digits).
 * Script changes depend on p only through the Inherited characters at the piece's start: with g[j] = j's script, an
 * Inherited character taking g[j-1] (carried along the text), the extender refuses j when g[j-1] and g[j] are two
 * different scripts, unless p..j-1 are all Inherited (then its previous script is still "none"). One pass from the
 * right keeps the next hard break and, per start, the next script break after its first non-Inherited character.
 */
export function validPrefixLengths(
  cfg: Parameters<typeof pieceValidator>[0],
  text: Int32Array,
  unitEnd: Int32Array,
): Uint16Array | undefined {
  if (!extenderApplies(cfg)) return undefined;
  const brk = breakFlags(cfg, text);
  const N = text.length;
  const maxLen = cfg.maxSentencepieceLength;
  const out = new Uint16Array(N);
  let nextHard = N; // the first hard break > p
  let nextScript = N; // the first script break > p
  let scriptAfterLead = N; // the first script break after p's first non-Inherited character
  for (let p = N - 1; p >= 0; p--) {
    const b = brk[p];
    if (!(b & INHERITED_CHAR)) scriptAfterLead = nextScript;
    const end = Math.min(unitEnd[p], p + maxLen, nextHard, scriptAfterLead);
    out[p] = b & BAD_CHAR ? 1 : Math.max(1, end - p);
    if (b & HARD) nextHard = p;
    if (b & SCRIPT) nextScript = p;
  }
  return out;
}

/** breakFlags bits: no piece started before j may contain j; the script changes at j; j is BAD; j is Inherited. */
const HARD = 1, SCRIPT = 2, BAD_CHAR = 4, INHERITED_CHAR = 8;

/** Per position j of `text`, the breakFlags bits (one pass: the characters are classified as charClasses does). */
function breakFlags(cfg: Parameters<typeof pieceValidator>[0], text: Int32Array): Uint8Array {
  const N = text.length;
  const brk = new Uint8Array(N);
  const suffix = cfg.treatWhitespaceAsSuffix, splitDigits = cfg.splitDigits, splitScript = cfg.splitByUnicodeScript;
  const splitByNumber = cfg.splitByNumber;
  // script per BMP code point as the extender maps it; -100 = not looked up yet (astral ones: looked up each time)
  const bmpScript = new Int16Array(0x10000).fill(-100);
  let g = ANY; // the script carried to j from j-1 (BAD and ▁ carry none)
  let prevWs = false, prevDigit = false;
  // hot loop
  for (let j = 0; j < N; j++) {
    const c = text[j];
    const digit = isDecimal(c);
    let hard = (suffix && prevWs) || (splitDigits && (digit || prevDigit));
    let flags = 0, s = ANY, ws = false;
    if (
      c === UNK_CHAR || c === 0 || c === BOUNDARY_CHAR || c === 0x20 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)
    ) {
      hard = true;
      flags = BAD_CHAR;
    } else if (c === WS_CHAR) {
      ws = true;
      if (!suffix) hard = true;
    } else {
      s = c < 0x10000 ? bmpScript[c] : -100;
      if (s === -100) {
        s = extenderScript(c);
        if (c < 0x10000) bmpScript[c] = s;
      }
      if (s === INHERIT) {
        s = g;
        flags = INHERITED_CHAR;
      } else if (digit && !splitByNumber) s = ANY;
    }
    if (splitScript && s !== ANY && g !== ANY && s !== g) flags |= SCRIPT;
    brk[j] = hard ? flags | HARD : flags;
    g = s;
    prevWs = ws;
    prevDigit = digit;
  }
  return brk;
}

/** The script pieceExtender uses for a character (neither BAD nor ▁): Hiragana, Katakana and ー as Han. */
function extenderScript(c: number): number {
  const s = scriptOf(c);
  if (s === HIRAGANA || s === KATAKANA || c === 0x30fc) return HAN;
  return s === INHERITED ? INHERIT : s;
}

/**
 * validPrefixLengths by a scan from every start position (O(N × max_sentencepiece_length)): the reference for the
 * differential test.
 */
export function validPrefixLengthsRef(
  cfg: Parameters<typeof pieceValidator>[0],
  text: Int32Array,
  unitEnd: Int32Array,
): Uint16Array | undefined {
  if (!extenderApplies(cfg)) return undefined;
  const N = text.length;
  const { cls, digit } = charClasses(cfg, text);
  const maxLen = cfg.maxSentencepieceLength, suffix = cfg.treatWhitespaceAsSuffix;
  const splitDigits = cfg.splitDigits, splitScript = cfg.splitByUnicodeScript;
  const out = new Uint16Array(N);
  for (let p = 0; p < N; p++) {
    const end = Math.min(unitEnd[p], p + maxLen);
    let prev = ANY, hasWs = false, hasDigit = false;
    let j = p;
    // the extender's checks, in its order
    for (; j < end; j++) {
      const k = cls[j];
      if (k === BAD) break;
      if (splitDigits && j > p && (hasDigit || digit[j])) break;
      if (k === WS) {
        if (suffix ? hasWs : j > p) break;
        hasWs = true;
        continue;
      }
      if (suffix && hasWs) break;
      const s = k === INHERIT ? prev : k;
      if (splitScript && s !== ANY && prev !== ANY && prev !== s) break;
      prev = s;
      if (digit[j]) hasDigit = true;
    }
    out[p] = Math.max(1, j - p);
  }
  return out;
}
