/**
 * Decode stage, streaming: turns ids into text as they arrive. Bytes from byte-fallback pieces are held back while
 * they may still complete a UTF-8 character (a Chinese character split over three `<0xXX>` tokens comes out whole,
 * never as U+FFFD), and the dummy-prefix space of the first piece is dropped where SentencePiece drops it. The
 * concatenation of everything returned equals `tokenizer.decode(ids)`.
 * see: google/sentencepiece src/sentencepiece_processor.cc Decode (v0.1.97)
 */
import type { Tokenizer } from "./tokenizer.ts";
import { decodeUtf8Run, expectedUtf8Length } from "./utf8.ts";
import { pieceToByte } from "./vocab.ts";

export interface StreamingDecoderOptions {
  /**
   * True when text was already shown before the first id (e.g. decoding a reply after its prompt): then the first
   * piece keeps its leading space. Default false (decode from the start, like `decode`).
   */
  continuation?: boolean;
}

/**
 * @example
 * ```ts ignore
 * const dec = new StreamingDecoder(tokenizer);
 * for (const id of ids) out.write(dec.push(id));
 * out.write(dec.flush());
 * ```
 */
export class StreamingDecoder {
  readonly tokenizer: Tokenizer;
  #isBosWs: boolean;
  #bosWsSeen = false;
  #textEmpty: boolean;
  #pending: number[] = [];

  constructor(tokenizer: Tokenizer, options: StreamingDecoderOptions = {}) {
    this.tokenizer = tokenizer;
    this.#isBosWs = !options.continuation;
    this.#textEmpty = !options.continuation;
  }

  /** Adds one id; returns the text that is final now (possibly ""). */
  push(id: number): string {
    const tok = this.tokenizer;
    const piece = tok.pieceOf(id);
    const rid = tok.vocab.pieceToId(piece);
    if (tok.vocab.isByte(rid)) {
      this.#pending.push(pieceToByte(piece));
      return this.#note(this.#drain(false));
    }
    let out = this.#note(this.#drain(true));
    if (this.#bosWsSeen || !this.#textEmpty) this.#isBosWs = false;
    const [surface, seen] = tok.decodePiece(piece, rid, this.#isBosWs);
    this.#bosWsSeen = seen;
    out += this.#note(surface);
    return out;
  }

  /** Ends the stream: returns held-back bytes decoded (each byte of an incomplete character → U+FFFD). */
  flush(): string {
    return this.#note(this.#drain(true));
  }

  /** Resets to the start state. */
  reset(options: StreamingDecoderOptions = {}): void {
    this.#isBosWs = !options.continuation;
    this.#textEmpty = !options.continuation;
    this.#bosWsSeen = false;
    this.#pending = [];
  }

  #note(s: string): string {
    if (s !== "") this.#textEmpty = false;
    return s;
  }

  /**
   * Decodes pending bytes from the front. Unless `final`, stops at a lead byte whose character is not complete
   * yet but could still be valid; the result for each position only depends on the bytes of its own character,
   * so waiting gives the same text as decoding the whole run at once.
   */
  #drain(final: boolean): string {
    const p = this.#pending;
    if (p.length === 0) return "";
    const bytes = Uint8Array.from(p);
    const end = bytes.length;
    const waitAt = (pos: number) => end - pos < expectedUtf8Length(bytes[pos]) && couldComplete(bytes, pos, end);
    const { text, pos } = decodeUtf8Run(bytes, 0, end, final ? undefined : waitAt);
    this.#pending = p.slice(pos);
    return text;
  }
}

/** Whether bytes[pos..end) (shorter than the character needs) can still become a valid character. */
function couldComplete(bytes: Uint8Array, pos: number, end: number): boolean {
  for (let i = pos + 1; i < end; i++) if ((bytes[i] & 0xc0) !== 0x80) return false;
  return true;
}
