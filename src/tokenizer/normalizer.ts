/**
 * Normalize stage: SentencePiece's Normalizer. Optional precompiled charsmap (e.g. nmt_nfkc), user-defined symbols
 * passed through untouched, removal of leading/trailing/repeated spaces, the dummy-prefix space, and escaping of
 * ' ' to '▁' (U+2581).
 * see: google/sentencepiece src/normalizer.cc Normalizer::Normalize, NormalizePrefix
 */
import type { PrecompiledCharsmap } from "./precompiled_charsmap.ts";
import { decodeUtf8Char, utf8Encode, utf8Length } from "./utf8.ts";

/** U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space. */
export const SPACE_SYMBOL = "\u2581";

export interface NormalizerOptions {
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  treatWhitespaceAsSuffix: boolean;
  charsmap?: PrecompiledCharsmap;
  /** USER_DEFINED pieces: matched first (longest) and never normalized. */
  userDefined?: string[];
}

const SPACE_BYTES = utf8Encode(SPACE_SYMBOL);
const REPLACEMENT_BYTES = utf8Encode("\uFFFD");
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Text → normalized text, exactly as SentencePiece's Normalizer. */
export class Normalizer {
  readonly options: NormalizerOptions;
  readonly #userDefined: Uint8Array[];

  constructor(options: NormalizerOptions) {
    this.options = options;
    this.#userDefined = (options.userDefined ?? []).map(utf8Encode).sort((a, b) => b.length - a.length);
  }

  /** Normalizes `text` (empty in, empty out). */
  normalize(text: string): string {
    if (text.length === 0) return "";
    const cm = this.options.charsmap;
    if (this.#userDefined.length === 0) {
      if (!cm) return this.#normalizeIdentity(text);
      if (text.isWellFormed()) {
        const s = this.#normalizeString(text, cm);
        if (s !== undefined) return s;
      }
    }
    return this.#normalizeBytes(utf8Encode(text));
  }

  /**
   * The reference: SentencePiece's algorithm on UTF-8 bytes, step for step (normalize() takes a path on the string
   * itself when it can, with the same result).
   */
  normalizeRef(text: string): string {
    if (text.length === 0) return "";
    if (!this.options.charsmap && this.#userDefined.length === 0) return this.#normalizeIdentity(text);
    return this.#normalizeBytes(utf8Encode(text));
  }

  /**
   * #normalizeBytes on a well-formed string without user-defined symbols, with no UTF-8 round trip: characters no
   * rule can match at are copied in runs, the others go through the charsmap's string match. Undefined when a rule
   * cannot be applied on the string (see PrecompiledCharsmap.matchString).
   */
  #normalizeString(text: string, cm: PrecompiledCharsmap): string | undefined {
    const o = this.options;
    const end = text.length;
    const box = { text: "" };
    let pos = 0;
    if (o.removeExtraWhitespaces) {
      while (pos < end) {
        const n = stringStep(text, pos, cm, box);
        if (n < 0) return undefined;
        if (box.text !== " ") break;
        pos += n;
      }
    }
    if (pos >= end) return "";
    const sp = o.escapeWhitespaces ? SPACE_SYMBOL : " ";
    // parts joined at the end: a flat string (a chain of += is a rope, slower for every later reader)
    const parts: string[] = !o.treatWhitespaceAsSuffix && o.addDummyPrefix ? [sp] : [];
    let isPrevSpace = o.removeExtraWhitespaces;
    let run = pos; // text[run, pos) is copied as is (characters no rule matches at)
    // hot loop: a run of characters no rule matches at, or one rule, per iteration
    while (pos < end) {
      const e = cm.passThroughRun(text, pos);
      if (e > pos) {
        pos = e;
        isPrevSpace = false;
        continue;
      }
      if (run < pos) parts.push(text.slice(run, pos));
      const n = stringStep(text, pos, cm, box);
      if (n < 0) return undefined;
      const r = box.text;
      let k = 0;
      while (isPrevSpace && k < r.length && r.charCodeAt(k) === 0x20) k++;
      if (k < r.length) {
        const piece = k > 0 ? r.slice(k) : r;
        parts.push(o.escapeWhitespaces ? piece.replaceAll(" ", SPACE_SYMBOL) : piece);
        isPrevSpace = r.charCodeAt(r.length - 1) === 0x20;
      }
      pos += n;
      run = pos;
      if (!o.removeExtraWhitespaces) isPrevSpace = false;
    }
    if (run < end) parts.push(run === 0 ? text : text.slice(run, end));
    return this.#finish(parts.join(""), sp);
  }

  /** The identity normalizer on JS strings: only the whitespace rules apply. */
  #normalizeIdentity(text: string): string {
    const o = this.options;
    let s = text.isWellFormed() ? text : text.toWellFormed();
    if (o.removeExtraWhitespaces) {
      let i = 0;
      while (i < s.length && s.charCodeAt(i) === 0x20) i++;
      s = s.slice(i).replace(/ {2,}/g, " ");
      if (s.length === 0) return "";
    }
    if (o.escapeWhitespaces) s = s.replaceAll(" ", SPACE_SYMBOL);
    const sp = o.escapeWhitespaces ? SPACE_SYMBOL : " ";
    if (o.addDummyPrefix && !o.treatWhitespaceAsSuffix) s = sp + s;
    return this.#finish(s, sp);
  }

  /**
   * The end of both string paths: trailing spaces stripped (with removeExtraWhitespaces; '▁' that were in the input
   * too, as SentencePiece does), then the suffix dummy.
   */
  #finish(s: string, sp: string): string {
    const o = this.options;
    if (o.removeExtraWhitespaces) {
      let e = s.length;
      while (e > 0 && s[e - 1] === sp) e--;
      s = s.slice(0, e);
    }
    return o.treatWhitespaceAsSuffix && o.addDummyPrefix ? s + sp : s;
  }

  /** One normalization step at `pos`: returns [replacement bytes, input bytes consumed]. */
  #prefix(bytes: Uint8Array, pos: number, box: { replacement: Uint8Array }): [Uint8Array, number] {
    const end = bytes.length;
    for (const u of this.#userDefined) {
      if (u.length <= end - pos && startsWith(bytes, pos, u)) return [u, u.length];
    }
    const cm = this.options.charsmap;
    if (cm) {
      const n = cm.match(bytes, pos, end, box);
      if (n > 0) return [box.replacement, n];
    }
    const cp = decodeUtf8Char(bytes, pos, end);
    if (cp < 0) return [REPLACEMENT_BYTES, 1];
    const len = utf8Length(cp);
    return [bytes.subarray(pos, pos + len), len];
  }

  #normalizeBytes(bytes: Uint8Array): string {
    const o = this.options;
    const box = { replacement: new Uint8Array(0) };
    let pos = 0;
    if (o.removeExtraWhitespaces) {
      while (pos < bytes.length) {
        const [r, n] = this.#prefix(bytes, pos, box);
        if (!(r.length === 1 && r[0] === 0x20)) break;
        pos += n;
      }
    }
    if (pos >= bytes.length) return "";
    const out = new ByteBuffer(bytes.length * 3 + 8);
    const addWs = () => o.escapeWhitespaces ? out.push(SPACE_BYTES) : out.pushByte(0x20);
    if (!o.treatWhitespaceAsSuffix && o.addDummyPrefix) addWs();
    let isPrevSpace = o.removeExtraWhitespaces;
    const end = bytes.length;
    const cm = this.options.charsmap;
    const hasUser = this.#userDefined.length > 0;
    // Hot loop: one normalization step per iteration; the replacement is bytes[rs, re) of `src`.
    while (pos < end) {
      let src: Uint8Array, rs: number, re: number, n: number;
      let m = 0;
      if (hasUser) {
        for (const u of this.#userDefined) {
          if (u.length <= end - pos && startsWith(bytes, pos, u)) {
            m = u.length;
            break;
          }
        }
      }
      if (m > 0) {
        src = bytes, rs = pos, re = pos + m, n = m;
      } else if (cm && (m = cm.match(bytes, pos, end, box)) > 0) {
        src = box.replacement, rs = 0, re = src.length, n = m;
      } else {
        const cp = decodeUtf8Char(bytes, pos, end);
        if (cp < 0) src = REPLACEMENT_BYTES, rs = 0, re = 3, n = 1;
        else src = bytes, rs = pos, re = pos + utf8Length(cp), n = re - pos;
      }
      let k = rs;
      while (isPrevSpace && k < re && src[k] === 0x20) k++;
      if (k < re) {
        for (let j = k; j < re; j++) {
          if (o.escapeWhitespaces && src[j] === 0x20) out.push(SPACE_BYTES);
          else out.pushByte(src[j]);
        }
        isPrevSpace = src[re - 1] === 0x20;
      }
      pos += n;
      if (!o.removeExtraWhitespaces) isPrevSpace = false;
    }
    if (o.removeExtraWhitespaces) {
      const sp = o.escapeWhitespaces ? SPACE_BYTES : new Uint8Array([0x20]);
      while (out.length >= sp.length && startsWith(out.bytes, out.length - sp.length, sp)) out.length -= sp.length;
    }
    if (o.treatWhitespaceAsSuffix && o.addDummyPrefix) addWs();
    return decoder.decode(out.bytes.subarray(0, out.length));
  }
}

/**
 * One normalization step on a well-formed string at `pos`: the replacement in `out.text` (the character itself when
 * no rule matches); returns the code units consumed, or -1 (see PrecompiledCharsmap.matchString).
 */
function stringStep(text: string, pos: number, cm: PrecompiledCharsmap, out: { text: string }): number {
  const n = cm.matchString(text, pos, out);
  if (n !== 0) return n;
  const w = text.codePointAt(pos)! > 0xffff ? 2 : 1;
  out.text = text.slice(pos, pos + w);
  return w;
}

function startsWith(bytes: Uint8Array, pos: number, prefix: Uint8Array): boolean {
  if (pos < 0 || pos + prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[pos + i] !== prefix[i]) return false;
  return true;
}

class ByteBuffer {
  bytes: Uint8Array;
  length = 0;
  constructor(cap: number) {
    this.bytes = new Uint8Array(cap);
  }
  #grow(extra: number) {
    if (this.length + extra <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }
  pushByte(b: number) {
    this.#grow(1);
    this.bytes[this.length++] = b;
  }
  push(b: Uint8Array) {
    this.#grow(b.length);
    this.bytes.set(b, this.length);
    this.length += b.length;
  }
}
