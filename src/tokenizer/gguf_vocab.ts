/**
 * The `tokenizer.ggml.*` GGUF metadata of a SentencePiece model, as llama.cpp's converter writes it for LLaMA:
 * model "llama", tokens, float32 scores, int32 token types (llama.cpp numbers them like SentencePiece:
 * 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE), special ids, add_bos/add_eos.
 * see: llama.cpp gguf-py/gguf/constants.py (Keys.Tokenizer), convert_hf_to_gguf.py _create_vocab_sentencepiece
 */
import type { SentencePieceModel } from "../formats/sentencepiece_model.ts";
import { ALPACA_PAD_PIECE } from "./vocab_extension.ts";
import { tokenizerFromSentencePiece } from "./tokenizer.ts";

/** GGUF value type of each key ggufVocabMetadata may return (ids are uint32 in llama.cpp's files). */
export const GGUF_VOCAB_VALUE_TYPES: Record<string, string> = {
  "tokenizer.ggml.model": "STRING",
  "tokenizer.ggml.tokens": "ARRAY<STRING>",
  "tokenizer.ggml.scores": "ARRAY<FLOAT32>",
  "tokenizer.ggml.token_type": "ARRAY<INT32>",
  "tokenizer.ggml.bos_token_id": "UINT32",
  "tokenizer.ggml.eos_token_id": "UINT32",
  "tokenizer.ggml.unknown_token_id": "UINT32",
  "tokenizer.ggml.padding_token_id": "UINT32",
  "tokenizer.ggml.add_bos_token": "BOOL",
  "tokenizer.ggml.add_eos_token": "BOOL",
};

/**
 * Key/values to embed `model` in a GGUF, in llama.cpp's key order. The pad id is the model's pad piece when it is
 * a control piece, else `[PAD]` when present (Chinese-Alpaca), else the key is left out. Validates the model by
 * building its tokenizer (FormatError / UnsupportedError as tokenizerFromSentencePiece).
 */
export function ggufVocabMetadata(model: SentencePieceModel): Map<string, unknown> {
  const tok = tokenizerFromSentencePiece(model);
  const v = tok.vocab;
  const meta = new Map<string, unknown>();
  meta.set("tokenizer.ggml.model", "llama");
  meta.set("tokenizer.ggml.tokens", [...v.pieces]);
  meta.set("tokenizer.ggml.scores", Float32Array.from(v.scores));
  meta.set("tokenizer.ggml.token_type", Int32Array.from(v.types));
  if (tok.bosId >= 0) meta.set("tokenizer.ggml.bos_token_id", tok.bosId);
  if (tok.eosId >= 0) meta.set("tokenizer.ggml.eos_token_id", tok.eosId);
  meta.set("tokenizer.ggml.unknown_token_id", tok.unkId);
  const pad = tok.padId >= 0 ? tok.padId : v.idOf(ALPACA_PAD_PIECE);
  if (pad !== undefined) meta.set("tokenizer.ggml.padding_token_id", pad);
  meta.set("tokenizer.ggml.add_bos_token", true);
  meta.set("tokenizer.ggml.add_eos_token", false);
  return meta;
}
