/**
 * The tokenizer pieces the model commands need: the size of a tokenizer.model and its GGUF vocabulary KVs.
 * Counting pieces needs only the ModelProto's repeated field 1, read with the protobuf reader.
 */
import { type GgufKv, ggufKv } from "../formats/gguf_writer.ts";
import { readLlama2cTokenizer } from "../formats/llama2c.ts";
import { fieldFloat32, fieldInt32, fieldString, readProtoFields } from "../formats/protobuf.ts";

/** Number of pieces of a SentencePiece tokenizer.model (ModelProto field 1 is `repeated SentencePiece pieces`). */
export function sentencePieceCount(bytes: Uint8Array, path?: string): number {
  return readProtoFields(bytes, { format: "sentencepiece", path }).filter((f) => f.field === 1 && f.wire === 2).length;
}

/**
 * tokenizer.ggml.* KVs for a tokenizer.model, as llama.cpp's converter writes them for SentencePiece (model
 * "llama", tokens, scores, token types, bos/eos/unk ids from the trainer spec defaults 1/2/0).
 */
export async function ggufVocabFromModel(bytes: Uint8Array, path: string): Promise<GgufKv[]> {
  const ctx = { format: "sentencepiece", path };
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  for (const f of readProtoFields(bytes, ctx)) {
    if (f.field !== 1 || f.wire !== 2) continue;
    let piece = "", score = 0, type = 1;
    for (const g of readProtoFields(f.bytes!, ctx)) {
      if (g.field === 1) piece = fieldString(g, ctx, "piece");
      else if (g.field === 2) score = fieldFloat32(g);
      else if (g.field === 3) type = fieldInt32(g);
    }
    tokens.push(piece);
    scores.push(score);
    types.push(type);
  }
  await Promise.resolve();
  return [
    ggufKv.string("tokenizer.ggml.model", "llama"),
    ggufKv.arrayString("tokenizer.ggml.tokens", tokens),
    ggufKv.arrayF32("tokenizer.ggml.scores", scores),
    ggufKv.arrayI32("tokenizer.ggml.token_type", types),
    ggufKv.u32("tokenizer.ggml.bos_token_id", 1),
    ggufKv.u32("tokenizer.ggml.eos_token_id", 2),
    ggufKv.u32("tokenizer.ggml.unknown_token_id", 0),
  ];
}

/**
 * tokenizer.ggml.* KVs for a llama2.c tokenizer.bin (as llama.cpp's convert-llama2c-to-ggml builds them): spaces
 * back to `▁`, id 0 UNKNOWN, ids 1–2 CONTROL, `<0xHH>` BYTE, the rest NORMAL.
 */
export function ggufVocabFromLlama2c(bytes: Uint8Array, vocabSize: number): GgufKv[] {
  const tok = readLlama2cTokenizer(bytes, vocabSize);
  const tokens = tok.pieces.map((p) => p.replaceAll(" ", "\u2581"));
  const types = tokens.map((p, i) => (i === 0 ? 2 : i <= 2 ? 3 : /^<0x[0-9A-F]{2}>$/.test(p) ? 6 : 1));
  return [
    ggufKv.string("tokenizer.ggml.model", "llama"),
    ggufKv.arrayString("tokenizer.ggml.tokens", tokens),
    ggufKv.arrayF32("tokenizer.ggml.scores", tok.scores),
    ggufKv.arrayI32("tokenizer.ggml.token_type", types),
    ggufKv.u32("tokenizer.ggml.bos_token_id", 1),
    ggufKv.u32("tokenizer.ggml.eos_token_id", 2),
    ggufKv.u32("tokenizer.ggml.unknown_token_id", 0),
  ];
}
