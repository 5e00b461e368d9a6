/**
 * tokenizer: SentencePiece tokenization identical to SentencePiece and llama.cpp (BPE and UNIGRAM, byte
 * fallback, precompiled-charsmap normalization), SentencePiece-exact and streaming decoding, and the
 * Chinese-LLaMA vocabulary extension. Stages: normalizer → bpe / unigram → byte fallback → decode.
 *
 * @example
 * ```ts ignore
 * import { readSentencePieceModel } from "../formats/sentencepiece_model.ts";
 * import { StreamingDecoder, tokenizerFromSentencePiece } from "./mod.ts";
 * const tok = tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync("tokenizer.model")));
 * const ids = tok.encode("白日依山尽"); // [1, 39226, 30325, 33282, 30329, 32555] with Chinese-LLaMA
 * tok.decode(ids); // "白日依山尽"
 * const dec = new StreamingDecoder(tok);
 * const text = ids.map((id) => dec.push(id)).join("") + dec.flush();
 * ```
 */
export * from "./tokenizer.ts";
export * from "./streaming_decoder.ts";
export * from "./vocab.ts";
export * from "./normalizer.ts";
export * from "./precompiled_charsmap.ts";
export * from "./bpe.ts";
export * from "./unigram.ts";
export * from "./utf8.ts";
export * from "./vocab_extension.ts";
export * from "./gguf_vocab.ts";
export {
  readSentencePieceModel,
  type SentencePieceModel,
  writeSentencePieceModel,
} from "../formats/sentencepiece_model.ts";
