/**
 * UTF-8 the way SentencePiece reads it: one character at a time, an invalid byte counts as one character and
 * decodes to U+FFFD (so a truncated 3-byte sequence becomes two U+FFFD, not one as in the WHATWG decoder).
 * see: google/sentencepiece src/util.cc DecodeUTF8, util.h IsValidDecodeUTF8
 */

/** U+FFFD, what SentencePiece substitutes for each invalid byte. */
export const REPLACEMENT_CHARACTER = "\uFFFD";

const encoder = new TextEncoder();

/** UTF-8 bytes of `s` (lone surrogates become U+FFFD, as TextEncoder does). */
export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

function isTrail(b: number): boolean {
  return (b & 0xc0) === 0x80;
}

function validCodepoint(c: number): boolean {
  return c < 0xd800 || (c >= 0xe000 && c <= 0x10ffff);
}

/**
 * Decodes one character of `bytes[pos..end)`. Returns the code point, or -1 when the byte at `pos` does not start a
 * valid, complete, shortest-form sequence (then exactly one byte is consumed). Valid sequences are 1–4 bytes long,
 * so the length of a valid result is `utf8Length(cp)`.
 */
export function decodeUtf8Char(bytes: Uint8Array, pos: number, end: number): number {
  const b0 = bytes[pos];
  const len = end - pos;
  if (b0 < 0x80) return b0;
  if (len >= 2 && (b0 & 0xe0) === 0xc0) {
    const b1 = bytes[pos + 1];
    const cp = ((b0 & 0x1f) << 6) | (b1 & 0x3f);
    if (isTrail(b1) && cp >= 0x80 && validCodepoint(cp)) return cp;
  } else if (len >= 3 && (b0 & 0xf0) === 0xe0) {
    const b1 = bytes[pos + 1], b2 = bytes[pos + 2];
    const cp = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
    if (isTrail(b1) && isTrail(b2) && cp >= 0x800 && validCodepoint(cp)) return cp;
  } else if (len >= 4 && (b0 & 0xf8) === 0xf0) {
    const b1 = bytes[pos + 1], b2 = bytes[pos + 2], b3 = bytes[pos + 3];
    const cp = ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
    if (isTrail(b1) && isTrail(b2) && isTrail(b3) && cp >= 0x10000 && validCodepoint(cp)) return cp;
  }
  return -1;
}

/** Number of UTF-8 bytes of code point `cp`. */
export function utf8Length(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/**
 * How many bytes a sequence starting with lead byte `b` would need if it were valid (1 for ASCII and for bytes
 * that cannot start a sequence). Used by the streaming decoder to know whether to wait for more bytes.
 */
export function expectedUtf8Length(b: number): number {
  if (b < 0xc0) return 1;
  if (b < 0xe0) return 2;
  if (b < 0xf0) return 3;
  if (b < 0xf8) return 4;
  return 1;
}

/** Decodes a byte run the SentencePiece way: valid characters as-is, each invalid byte as U+FFFD. */
export function decodeBytesLikeSentencePiece(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return decodeUtf8Run(bytes, start, end).text;
}

/**
 * The one decoding loop behind decodeBytesLikeSentencePiece and the streaming decoder: decodes bytes[start..end)
 * until `stopAt(pos)` says to wait at a character; returns the text and the position it stopped at.
 */
export function decodeUtf8Run(
  bytes: Uint8Array,
  start: number,
  end: number,
  stopAt?: (pos: number) => boolean,
): { text: string; pos: number } {
  let out = "";
  let pos = start;
  while (pos < end) {
    if (stopAt?.(pos)) break;
    const cp = decodeUtf8Char(bytes, pos, end);
    if (cp < 0) {
      out += REPLACEMENT_CHARACTER;
      pos += 1;
    } else {
      out += String.fromCodePoint(cp);
      pos += utf8Length(cp);
    }
  }
  return { text: out, pos };
}
