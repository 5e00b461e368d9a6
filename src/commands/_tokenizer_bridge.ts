/**
 * Tokenizers for the model commands: the size of a tokenizer.model, and the tokenizer.ggml.* KVs to embed in a
 * GGUF (from the tokenizer room for SentencePiece models; from a llama2.c tokenizer.bin as llama.cpp's
 * convert-llama2c-to-ggml does).
 */
import { type GgufKv, ggufKv } from "../formats/gguf_writer.ts";
import { readLlama2cTokenizer } from "../formats/llama2c.ts";
import { readSentencePieceModel } from "../formats/sentencepiece_model.ts";
import type { VocabReader } from "../merge/pipeline.ts";
import { GGUF_VOCAB_VALUE_TYPES, ggufVocabMetadata } from "../tokenizer/mod.ts";
import {
  KEY_TOKENIZER_BOS_ID,
  KEY_TOKENIZER_EOS_ID,
  KEY_TOKENIZER_LIST,
  KEY_TOKENIZER_MODEL,
  KEY_TOKENIZER_SCORES,
  KEY_TOKENIZER_TOKEN_TYPE,
  KEY_TOKENIZER_UNK_ID,
} from "../formats/gguf_constants.ts";

/** Number of pieces of a SentencePiece tokenizer.model. */
export function sentencePieceCount(bytes: Uint8Array, path?: string): number {
  return readSentencePieceModel(bytes, path).pieces.length;
}

/** Typed GGUF KVs from the tokenizer room's (key → value) map, with the types it declares. */
export function typedVocabKvs(meta: Map<string, unknown>): GgufKv[] {
  return [...meta].map(([key, value]) => {
    const t = GGUF_VOCAB_VALUE_TYPES[key];
    switch (t) {
      case "STRING":
        return ggufKv.string(key, value as string);
      case "ARRAY<STRING>":
        return ggufKv.arrayString(key, value as string[]);
      case "ARRAY<FLOAT32>":
        return ggufKv.arrayF32(key, value as ArrayLike<number>);
      case "ARRAY<INT32>":
        return ggufKv.arrayI32(key, value as ArrayLike<number>);
      case "UINT32":
        return ggufKv.u32(key, value as number);
      case "BOOL":
        return ggufKv.bool(key, value as boolean);
      default:
        throw new TypeError(`Cannot write tokenizer key "${key}": unknown GGUF type ${t}`);
    }
  });
}

/** tokenizer.ggml.* KVs for a tokenizer.model, as llama.cpp's converter writes them. */
export function ggufVocabFromModel(bytes: Uint8Array, path: string): GgufKv[] {
  return typedVocabKvs(ggufVocabMetadata(readSentencePieceModel(bytes, path)));
}

/**
 * tokenizer.ggml.* KVs for a llama2.c tokenizer.bin (as llama.cpp's convert-llama2c-to-ggml builds them): spaces
 * back to `▁`, id 0 UNKNOWN, ids 1–2 CONTROL, `<0xHH>` BYTE, the rest NORMAL. Without `vocabSize` (the file does
 * not store it) every record up to the end of the file is read.
 */
export function ggufVocabFromLlama2c(bytes: Uint8Array, vocabSize?: number): GgufKv[] {
  const tok = readLlama2cTokenizer(bytes, vocabSize);
  const tokens = tok.pieces.map((p) => p.replaceAll(" ", "\u2581"));
  const types = tokens.map((p, i) => (i === 0 ? 2 : i <= 2 ? 3 : /^<0x[0-9A-F]{2}>$/.test(p) ? 6 : 1));
  return [
    ggufKv.string(KEY_TOKENIZER_MODEL, "llama"),
    ggufKv.arrayString(KEY_TOKENIZER_LIST, tokens),
    ggufKv.arrayF32(KEY_TOKENIZER_SCORES, tok.scores),
    ggufKv.arrayI32(KEY_TOKENIZER_TOKEN_TYPE, types),
    ggufKv.u32(KEY_TOKENIZER_BOS_ID, 1),
    ggufKv.u32(KEY_TOKENIZER_EOS_ID, 2),
    ggufKv.u32(KEY_TOKENIZER_UNK_ID, 0),
  ];
}

/** The tokenizer readers the merge pipelines take (src/merge/pipeline.ts VocabReader). */
export const vocabReader: VocabReader = {
  pieceCount: sentencePieceCount,
  ggufKvs: ggufVocabFromModel,
  ggufKvsFromLlama2c: ggufVocabFromLlama2c,
};
