/**
 * The `tokenizer.ggml.*` GGUF metadata of a SentencePiece model, as llama.cpp's converter writes it for LLaMA:
 * model "llama", tokens, float32 scores, int32 token types (llama.cpp numbers them like SentencePiece:
 * 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE), special ids, add_bos/add_eos.
 * see: llama.cpp gguf-py/gguf/constants.py (Keys.Tokenizer), convert_hf_to_gguf.py _create_vocab_sentencepiece
 */
import type { SentencePieceModel } from "../formats/sentencepiece_model.ts";
import { ALPACA_PAD_PIECE } from "./vocab_extension.ts";
import { tokenizerFromSentencePiece } from "./tokenizer.ts";
import {
  KEY_TOKENIZER_ADD_BOS,
  KEY_TOKENIZER_ADD_EOS,
  KEY_TOKENIZER_BOS_ID,
  KEY_TOKENIZER_CHAT_TEMPLATE,
  KEY_TOKENIZER_EOS_ID,
  KEY_TOKENIZER_LIST,
  KEY_TOKENIZER_MODEL,
  KEY_TOKENIZER_PAD_ID,
  KEY_TOKENIZER_SCORES,
  KEY_TOKENIZER_TOKEN_TYPE,
  KEY_TOKENIZER_UNK_ID,
  MAX_CHAT_TEMPLATE_CHARS,
} from "../formats/gguf_constants.ts";

/** GGUF value type of each key ggufVocabMetadata may return (ids are uint32 in llama.cpp's files). */
export const GGUF_VOCAB_VALUE_TYPES: Record<string, string> = {
  [KEY_TOKENIZER_MODEL]: "STRING",
  [KEY_TOKENIZER_LIST]: "ARRAY<STRING>",
  [KEY_TOKENIZER_SCORES]: "ARRAY<FLOAT32>",
  [KEY_TOKENIZER_TOKEN_TYPE]: "ARRAY<INT32>",
  [KEY_TOKENIZER_BOS_ID]: "UINT32",
  [KEY_TOKENIZER_EOS_ID]: "UINT32",
  [KEY_TOKENIZER_UNK_ID]: "UINT32",
  [KEY_TOKENIZER_PAD_ID]: "UINT32",
  [KEY_TOKENIZER_ADD_BOS]: "BOOL",
  [KEY_TOKENIZER_ADD_EOS]: "BOOL",
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
  meta.set(KEY_TOKENIZER_MODEL, "llama");
  meta.set(KEY_TOKENIZER_LIST, [...v.pieces]);
  meta.set(KEY_TOKENIZER_SCORES, Float32Array.from(v.scores));
  meta.set(KEY_TOKENIZER_TOKEN_TYPE, Int32Array.from(v.types));
  if (tok.bosId >= 0) meta.set(KEY_TOKENIZER_BOS_ID, tok.bosId);
  if (tok.eosId >= 0) meta.set(KEY_TOKENIZER_EOS_ID, tok.eosId);
  meta.set(KEY_TOKENIZER_UNK_ID, tok.unkId);
  const pad = tok.padId >= 0 ? tok.padId : v.idOf(ALPACA_PAD_PIECE);
  if (pad !== undefined) meta.set(KEY_TOKENIZER_PAD_ID, pad);
  meta.set(KEY_TOKENIZER_ADD_BOS, true);
  meta.set(KEY_TOKENIZER_ADD_EOS, false);
  return meta;
}

/** A model's Jinja chat template (`tokenizer.chat_template`), when it has one of a sane size. */
export function ggufChatTemplate(meta: ReadonlyMap<string, unknown>): string | undefined {
  const t = meta.get(KEY_TOKENIZER_CHAT_TEMPLATE);
  return typeof t === "string" && t.length <= MAX_CHAT_TEMPLATE_CHARS ? t : undefined;
}
