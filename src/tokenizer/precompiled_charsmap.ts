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

/** At most this many trie matches are considered per position, as in SentencePiece (kMaxTrieResultsSize). */
const MAX_TRIE_RESULTS = 32;

/** A parsed precompiled charsmap. */
export class PrecompiledCharsmap {
  readonly #units: Uint32Array;
  readonly #strings: Uint8Array;
  /** Decoded replacement bytes by value (string offset), filled lazily. */
  readonly #cache = new Map<number, Uint8Array>();

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
    const units = new Uint32Array(trieBytes / 4);
    for (let i = 0; i < units.length; i++) units[i] = dv.getUint32(4 + 4 * i, true);
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

function offsetOf(unit: number): number {
  return ((unit >>> 10) << ((unit & 0x200) >>> 6)) >>> 0;
}
