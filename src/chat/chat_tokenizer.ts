/**
 * The project's Tokenizer as the chat templates use it: `encode(text, { addDummyPrefix: false })` tokenizes with
 * the same vocabulary and normalizer minus the dummy-prefix space. The March-2023 llama.cpp that the seed used
 * tokenized its instruct prefix/suffix and every input line that way (its main.cpp put the space before the prompt
 * by hand); Alpaca's training prompts, tokenized as one string, also had no "▁" after "\n\n".
 * see: llama.cpp llama.cpp @ 3525899 llama_tokenizer::tokenize (no dummy prefix), templates.ts
 */
import { Normalizer, StreamingDecoder, Tokenizer } from "../tokenizer/mod.ts";
import type { ChatTokenizer, TokenTextDecoder } from "./session.ts";

/** Encoding options of the chat templates. */
export interface ChatEncodeOptions {
  bos?: boolean;
  eos?: boolean;
  /** Default true (SentencePiece's own behaviour). */
  addDummyPrefix?: boolean;
}

/**
 * Wraps `tokenizer` for ChatSession.
 *
 * @example
 * ```ts ignore
 * const tok = chatTokenizer(engine.tokenizer);
 * tok.encode("\n\n### Response:\n\n", { bos: false, addDummyPrefix: false });
 * ```
 */
export function chatTokenizer(tokenizer: Tokenizer): ChatTokenizer & { readonly tokenizer: Tokenizer } {
  const o = tokenizer.normalizer.options;
  const raw = o.addDummyPrefix
    ? new Tokenizer({
      vocab: tokenizer.vocab,
      model: tokenizer.model,
      normalizer: new Normalizer({ ...o, addDummyPrefix: false }),
      byteFallback: tokenizer.byteFallback,
      bosId: tokenizer.bosId,
      eosId: tokenizer.eosId,
      padId: tokenizer.padId,
      addBos: tokenizer.addBos,
      addEos: tokenizer.addEos,
      unkSurface: tokenizer.unkSurface,
    })
    : tokenizer;
  return {
    tokenizer,
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    encode(text: string, options: ChatEncodeOptions = {}): number[] {
      const t = options.addDummyPrefix === false ? raw : tokenizer;
      return t.encode(text, { bos: options.bos ?? false, eos: options.eos ?? false });
    },
    decode: (ids: number[]) => tokenizer.decode(ids),
  };
}

/** A streaming decoder for one reply: whole characters only, and equal to decode(ids) when concatenated. */
export function replyDecoder(tokenizer: Tokenizer): TokenTextDecoder {
  return new StreamingDecoder(tokenizer);
}
