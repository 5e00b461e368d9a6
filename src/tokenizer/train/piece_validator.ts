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
  if (!cfg.splitByWhitespace || cfg.allowWhitespaceOnlyPieces) return undefined;
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

/**
 * pieceExtender's answer for every start position at once: `out[p]` = how many characters from p the extender
 * accepts before its first refusal (stopping at `unitEnd[p]`), or 1 when it refuses the first character (the
 * seeding only asks about pieces of two or more). The rules are evaluated on per-character classes computed once,
 * instead of one call per character per start position. Only where pieceExtender applies (undefined otherwise).
 */
export function validPrefixLengths(
  cfg: Parameters<typeof pieceValidator>[0],
  text: Int32Array,
  unitEnd: Int32Array,
): Uint16Array | undefined {
  const extend = pieceExtender(cfg);
  if (!extend) return undefined;
  const N = text.length;
  // per character: BAD (never in a piece), WS, or its script as the extender maps it (INHERITED kept as a marker)
  const BAD = -10, WS = -11, INHERIT = -12;
  const cls = new Int16Array(N);
  const digit = new Uint8Array(N);
  const scriptCache = new Int16Array(0x110000).fill(-100);
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
    let s = scriptCache[c];
    if (s === -100) {
      s = scriptOf(c);
      if (s === HIRAGANA || s === KATAKANA || c === 0x30fc) s = HAN;
      else if (s === INHERITED) s = INHERIT;
      scriptCache[c] = s;
    }
    if (isDecimal(c)) {
      digit[i] = 1;
      if (!cfg.splitByNumber) s = ANY;
    }
    cls[i] = s;
  }
  const maxLen = cfg.maxSentencepieceLength, suffix = cfg.treatWhitespaceAsSuffix;
  const splitDigits = cfg.splitDigits, splitScript = cfg.splitByUnicodeScript;
  const out = new Uint16Array(N);
  for (let p = 0; p < N; p++) {
    const end = Math.min(unitEnd[p], p + maxLen);
    let prev = ANY, hasWs = false, hasDigit = false;
    let j = p;
    // hot loop: the extender's checks, in its order
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
