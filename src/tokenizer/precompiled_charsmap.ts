/**
 * SentencePiece's precompiled character map (the `nmt_nfkc` etc. normalizers): a darts-clone double-array trie over
 * UTF-8 bytes whose values point into a blob of NUL-terminated replacement strings. Normalization takes the longest
 * rule that matches at the current position.
 * see: google/sentencepiece src/normalizer.cc (DecodePrecompiledCharsMap, NormalizePrefix),
 *      third_party/darts_clone/darts.h (DoubleArrayUnit, commonPrefixSearch)
 *
 * Blob layout:
 * 1. u32 little-endian `trieBytes`: size of the trie in bytes (a multiple of 4, less than the blob size).
 * 2. `trieBytes / 4` double-array units, u32 little-endian each:
 *    bit 8 has_leaf; label = unit & 0x800000FF; offset = (unit >>> 10) << ((unit & 0x200) >>> 6);
 *    a leaf unit's value = unit & 0x7FFFFFFF (here: a byte offset into the strings blob).
 * 3. The replacement strings, each terminated by a NUL byte.
 */
import { FormatError } from "../core/errors.ts";
import { utf8Length } from "./utf8.ts";

/** Whether this host stores a Uint32Array little-endian (the blob's order: then the units are one copy). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** At most this many trie matches are considered per position, as in SentencePiece (kMaxTrieResultsSize). */
const MAX_TRIE_RESULTS = 32;

/** A parsed precompiled charsmap. */
export class PrecompiledCharsmap {
  readonly #units: Uint32Array;
  readonly #strings: Uint8Array;
  /** Decoded replacement bytes by value (string offset), filled lazily. */
  readonly #cache = new Map<number, Uint8Array>();
  /** The same as strings (undefined: not valid UTF-8), filled lazily. */
  readonly #stringCache = new Map<number, string | undefined>();
  /** Per BMP code point: PASS, NEXT or MATCH (see passThroughRun), 0 = not looked up yet. */
  readonly #bmpClass = new Uint8Array(0x10000);
  /** Per BMP code point of class NEXT: the trie state after its bytes. */
  readonly #afterState = new Int32Array(0x10000);

  /** Parses the blob; FormatError when sizes are inconsistent. */
  constructor(blob: Uint8Array) {
    const fail = (msg: string, offset: number): never => {
      throw new FormatError(`Cannot parse precompiled_charsmap: ${msg}`, { format: "sentencepiece", offset });
    };
    if (blob.length <= 4) fail(`blob has ${blob.length} bytes, expected more than 4`, 0);
    const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieBytes = dv.getUint32(0, true);
    if (trieBytes > blob.length - 4) {
      fail(`trie size ${trieBytes} exceeds the ${blob.length - 4} bytes that follow`, 0);
    }
    if (trieBytes % 4 !== 0) fail(`trie size ${trieBytes} is not a multiple of 4`, 0);
    if (trieBytes === 0) fail("trie is empty", 0);
    let units: Uint32Array;
    if (LITTLE_ENDIAN) {
      units = new Uint32Array(blob.buffer.slice(blob.byteOffset + 4, blob.byteOffset + 4 + trieBytes));
    } else {
      units = new Uint32Array(trieBytes / 4);
      for (let i = 0; i < units.length; i++) units[i] = dv.getUint32(4 + 4 * i, true);
    }
    this.#units = units;
    this.#strings = blob.slice(4 + trieBytes);
  }

  /**
   * Longest rule matching `bytes` at `pos` (up to `end`): returns the number of input bytes consumed (0 when no
   * rule matches) and stores the replacement in `out.replacement`.
   */
  match(bytes: Uint8Array, pos: number, end: number, out: { replacement: Uint8Array }): number {
    const units = this.#units;
    const n = units.length;
    let id = 0;
    let unit = units[0];
    id ^= offsetOf(unit);
    let longest = 0;
    let longestValue = -1;
    let found = 0;
    for (let i = pos; i < end; i++) {
      const label = bytes[i];
      id ^= label;
      if (id >= n) break; // hostile trie: out of range means no transition
      unit = units[id];
      if ((unit & 0x800000ff) >>> 0 !== label) break;
      id ^= offsetOf(unit);
      if ((unit >>> 8) & 1) {
        if (id >= n) break;
        if (found < MAX_TRIE_RESULTS) {
          // Results come in increasing length, so the last one kept is the longest.
          longest = i + 1 - pos;
          longestValue = units[id] & 0x7fffffff;
        }
        found++;
      }
    }
    if (longest === 0) return 0;
    out.replacement = this.#replacement(longestValue);
    return longest;
  }

  /**
   * The end of the run of characters from `s[i]` (a well-formed string) that no rule matches at and that are not a
   * space or part of a surrogate pair: the trie walk stops inside a character's UTF-8 bytes without passing a rule's
   * end (PASS), or passes all of them without one and cannot continue with the next character's first byte (NEXT:
   * e.g. "e", which only starts "e" + combining marks). `i` itself when s[i] is not such a character.
   */
  passThroughRun(s: string, i: number): number {
    const cls = this.#bmpClass, units = this.#units;
    let j = i;
    // hot loop: one table lookup per character (NEXT: one trie step more)
    for (; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c === 0x20 || (c & 0xf800) === 0xd800) break;
      let k = cls[c];
      if (k === 0) k = this.#classify(c);
      if (k === PASS) continue;
      if (k === MATCH) break;
      if (j + 1 >= s.length) continue; // NEXT at the end: a rule would need more bytes
      const d = s.codePointAt(j + 1)!;
      const label = utf8Byte(d, utf8Length(d), 0);
      const id = this.#afterState[c] ^ label;
      if (id < units.length && (units[id] & 0x800000ff) >>> 0 === label) break;
    }
    return j;
  }

  #classify(c: number): number {
    const units = this.#units;
    const n = units.length;
    let id = offsetOf(units[0]);
    const nb = utf8Length(c);
    let k = NEXT;
    for (let b = 0; b < nb; b++) {
      const label = utf8Byte(c, nb, b);
      id ^= label;
      if (id >= n) {
        k = PASS;
        break;
      }
      const unit = units[id];
      if ((unit & 0x800000ff) >>> 0 !== label) {
        k = PASS;
        break;
      }
      id ^= offsetOf(unit);
      if ((unit >>> 8) & 1) {
        k = MATCH;
        break;
      }
    }
    this.#bmpClass[c] = k;
    this.#afterState[c] = id;
    return k;
  }

  /**
   * `match` on the UTF-8 bytes of the well-formed string `s` from index `i`, without encoding it: returns the number
   * of UTF-16 code units consumed (0 when no rule matches) and stores the replacement in `out.text`; -1 when the
   * result cannot be expressed on the string (the longest rule ends inside a character, or its replacement is not
   * valid UTF-8): then the caller normalizes bytes.
   */
  matchString(s: string, i: number, out: { text: string }): number {
    const units = this.#units;
    const n = units.length;
    let id = offsetOf(units[0]);
    let longest = 0, longestValue = -1, found = 0, insideChar = false;
    // hot loop: one character per iteration, its UTF-8 bytes fed to the trie
    outer: for (let j = i; j < s.length;) {
      const c = s.codePointAt(j)!;
      const w = c > 0xffff ? 2 : 1;
      const nb = utf8Length(c);
      for (let b = 0; b < nb; b++) {
        const label = utf8Byte(c, nb, b);
        id ^= label;
        if (id >= n) break outer; // hostile trie: out of range means no transition
        const unit = units[id];
        if ((unit & 0x800000ff) >>> 0 !== label) break outer;
        id ^= offsetOf(unit);
        if ((unit >>> 8) & 1) {
          if (id >= n) break outer;
          if (found < MAX_TRIE_RESULTS) {
            // results come in increasing length, so the last one kept is the longest
            longest = j + w - i;
            longestValue = units[id] & 0x7fffffff;
            insideChar = b < nb - 1;
          }
          found++;
        }
      }
      j += w;
    }
    if (longest === 0) return 0;
    if (insideChar) return -1;
    const text = this.#replacementString(longestValue);
    if (text === undefined) return -1;
    out.text = text;
    return longest;
  }

  #replacementString(value: number): string | undefined {
    if (this.#stringCache.has(value)) return this.#stringCache.get(value);
    let text: string | undefined;
    try {
      text = fatalUtf8.decode(this.#replacement(value));
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
    }
    this.#stringCache.set(value, text);
    return text;
  }

  #replacement(value: number): Uint8Array {
    let r = this.#cache.get(value);
    if (r) return r;
    const s = this.#strings;
    if (value >= s.length) {
      throw new FormatError(`Cannot parse precompiled_charsmap: string offset ${value} is past the end (${s.length})`, {
        format: "sentencepiece",
      });
    }
    let e = value;
    while (e < s.length && s[e] !== 0) e++;
    r = s.subarray(value, e);
    this.#cache.set(value, r);
    return r;
  }
}

/** Classes of passThroughRun. */
const PASS = 1, NEXT = 2, MATCH = 3;

/** Byte `b` of the `nb`-byte UTF-8 encoding of code point `c`. */
function utf8Byte(c: number, nb: number, b: number): number {
  if (nb === 1) return c;
  const shift = 6 * (nb - 1 - b);
  if (b === 0) return ((0xf00 >> nb) & 0xff) | (c >> shift);
  return 0x80 | ((c >> shift) & 0x3f);
}

function offsetOf(unit: number): number {
  return ((unit >>> 10) << ((unit & 0x200) >>> 6)) >>> 0;
}
