/**
 * Test doubles for the chat room: a byte-level tokenizer (every UTF-8 byte is a token, so Chinese always arrives
 * split) with a streaming decoder, and a scripted engine that keeps a KV cache by position and refuses holes or
 * overflows, so a test sees exactly which tokens the session evaluated where.
 */
import type { ChatEngine, ChatTokenizer, TokenTextDecoder } from "../../src/chat/session.ts";

export const UNK = 0;
export const BOS = 1;
export const EOS = 2;
/** Byte b is token BYTE0 + b, as SentencePiece byte fallback <0xXX> pieces sit at 3 … 258 in LLaMA's vocab. */
export const BYTE0 = 3;
export const FAKE_VOCAB = 259;

const enc = new TextEncoder();

/** A byte-level tokenizer; `encode` prepends " " unless addDummyPrefix is false (SentencePiece's dummy prefix). */
export class ByteTokenizer implements ChatTokenizer {
  readonly bosId = BOS;
  readonly eosId = EOS;
  encode(text: string, options: { bos?: boolean; eos?: boolean; addDummyPrefix?: boolean } = {}): number[] {
    const t = options.addDummyPrefix === false || text === "" ? text : ` ${text}`;
    const ids = [...enc.encode(t)].map((b) => BYTE0 + b);
    if (options.bos) ids.unshift(BOS);
    if (options.eos) ids.push(EOS);
    return ids;
  }
  decode(ids: number[]): string {
    const bytes = ids.filter((i) => i >= BYTE0 && i < FAKE_VOCAB).map((i) => i - BYTE0);
    return new TextDecoder().decode(new Uint8Array(bytes));
  }
}

/** Streams whole characters out of byte tokens. */
export class ByteStreamingDecoder implements TokenTextDecoder {
  #dec = new TextDecoder("utf-8");
  push(id: number): string {
    if (id < BYTE0 || id >= FAKE_VOCAB) return "";
    return this.#dec.decode(new Uint8Array([id - BYTE0]), { stream: true });
  }
  flush(): string {
    return this.#dec.decode();
  }
}

/** Decides the next token from the whole context (positions 0 … n-1 of the cache). */
export type FakeModel = (context: readonly number[]) => number;

/** One call of eval(). */
export interface EvalCall {
  startPos: number;
  tokens: number[];
}

/** A scripted engine: logits are one-hot (10 on the model's choice, 0 elsewhere). */
export class FakeEngine implements ChatEngine {
  readonly cache: number[] = [];
  readonly calls: EvalCall[] = [];
  delayMs = 0;
  constructor(
    readonly contextSize: number,
    readonly model: FakeModel,
    readonly tokenizer: ChatTokenizer = new ByteTokenizer(),
    readonly vocabSize = FAKE_VOCAB,
  ) {}

  async eval(tokens: number[], startPos: number): Promise<Float32Array> {
    if (tokens.length === 0) throw new RangeError("eval() of zero tokens");
    if (startPos > this.cache.length) {
      throw new RangeError(`eval() at ${startPos} leaves a hole: only ${this.cache.length} positions are filled`);
    }
    if (startPos + tokens.length > this.contextSize) {
      throw new RangeError(`eval() of ${tokens.length} at ${startPos} overflows the context ${this.contextSize}`);
    }
    this.calls.push({ startPos, tokens: [...tokens] });
    this.cache.length = startPos;
    this.cache.push(...tokens);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const logits = new Float32Array(this.vocabSize);
    logits[this.model(this.cache)] = 10;
    return logits;
  }
}

/** Bytes of `s` as fake tokens (no dummy prefix). */
export function bytesOf(s: string): number[] {
  return [...enc.encode(s)].map((b) => BYTE0 + b);
}

/**
 * A model that answers every "### Response:\n\n" with `answer(instruction)` then EOS, where the instruction is
 * the text between the last "### Instruction:\n\n" and that suffix; it needs both still in the context.
 */
export function alpacaScript(answer: (instruction: string) => string): FakeModel {
  const dec = new ByteTokenizer();
  return (context) => {
    const text = dec.decode([...context]);
    const r = text.lastIndexOf("\n\n### Response:\n\n");
    if (r < 0) return EOS;
    const i = text.lastIndexOf("\n\n### Instruction:\n\n", r);
    if (i < 0) return EOS;
    const instruction = text.slice(i + "\n\n### Instruction:\n\n".length, r);
    const want = enc.encode(answer(instruction));
    // bytes generated since the suffix (EOS and BOS are not bytes)
    const tail = context.slice(context.length - byteDistanceFromSuffix(context));
    const done = tail.length;
    return done < want.length ? BYTE0 + want[done] : EOS;
  };
}

/** Number of tokens after the last occurrence of the suffix's bytes at the end of `context`. */
function byteDistanceFromSuffix(context: readonly number[]): number {
  const suffix = bytesOf("\n\n### Response:\n\n");
  outer: for (let end = context.length; end >= suffix.length; end--) {
    for (let k = 0; k < suffix.length; k++) if (context[end - suffix.length + k] !== suffix[k]) continue outer;
    return context.length - end;
  }
  return 0;
}
