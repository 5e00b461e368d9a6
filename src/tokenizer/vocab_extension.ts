/**
 * Vocabulary extension, as Chinese-LLaMA-Alpaca's merge_tokenizers.py: append the pieces of a second SentencePiece
 * model that the base lacks, in that model's order, each as `{piece, score: 0}` with no type field (NORMAL); keep
 * the base's trainer and normalizer specs. `pad` appends `[PAD]` too (Chinese-Alpaca's 49,954th piece).
 * LLaMA (32,000) + chinese_sp (20,000) gives 49,953 pieces, byte-identical to the official Chinese-LLaMA
 * tokenizer.model (sha256 e2676d4c…); with `pad`, 49,954 (Chinese-Alpaca, 2d967e85…).
 * see: ymcui/Chinese-LLaMA-Alpaca scripts/merge_tokenizer/merge_tokenizers.py; ../shared/data/seed/PROVENANCE.md
 */
import { PIECE_BYTE, type SentencePiece, type SentencePieceModel } from "../formats/sentencepiece_model.ts";

export interface ExtendVocabularyOptions {
  /** Append `[PAD]` (score 0, NORMAL) after the added pieces, unless already present. */
  pad?: boolean;
  /**
   * Give the result LLaMA's byte fallback: the 256 `<0x00>`…`<0xFF>` BYTE pieces the base lacks are appended after
   * the added pieces (score 0; `add`'s own byte pieces are not appended as NORMAL ones) and trainer_spec.byte_fallback
   * is set, so a character outside the vocabulary becomes its UTF-8 bytes instead of `<unk>`. llama.cpp's SPM
   * tokenizer needs this: it encodes such characters as byte tokens, and aborts when the vocabulary has none (e.g.
   * babyllama's tok105). Not part of the seed's script (LLaMA's vocabulary already has the bytes).
   */
  byteFallback?: boolean;
}

/** The piece SentencePiece's byte fallback uses for byte `b` (`<0x0A>`). */
export function bytePiece(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/** The padding piece Chinese-Alpaca appends. */
export const ALPACA_PAD_PIECE = "[PAD]";

/** Returns a new model: `base` with the pieces of `add` it lacks appended. Neither input is modified. */
export function extendVocabulary(
  base: SentencePieceModel,
  add: SentencePieceModel,
  options: ExtendVocabularyOptions = {},
): SentencePieceModel {
  // As the seed script: the membership set is the base's pieces only.
  const have = new Set(base.pieces.map((p) => p.piece));
  const pieces: SentencePiece[] = [...base.pieces];
  for (const p of add.pieces) {
    if (options.byteFallback && p.type === PIECE_BYTE) continue;
    if (!have.has(p.piece)) pieces.push({ piece: p.piece, score: 0 });
  }
  let trainerSpec = base.trainerSpec;
  if (options.byteFallback) {
    const byType = new Map(pieces.map((p) => [p.piece, p.type]));
    for (let b = 0; b < 256; b++) {
      const piece = bytePiece(b);
      if (!byType.has(piece)) pieces.push({ piece, score: 0, type: PIECE_BYTE });
      else if (byType.get(piece) !== PIECE_BYTE) {
        throw new RangeError(`Cannot add byte fallback: "${piece}" is already a piece that is not of type BYTE`);
      }
    }
    trainerSpec = { ...base.trainerSpec, byteFallback: true };
  }
  if (options.pad && !pieces.some((p) => p.piece === ALPACA_PAD_PIECE)) {
    pieces.push({ piece: ALPACA_PAD_PIECE, score: 0 });
  }
  return { ...base, ...(trainerSpec ? { trainerSpec } : {}), pieces };
}

function addedToken(content: string, withType: boolean): Record<string, unknown> {
  return {
    ...(withType ? { __type: "AddedToken" } : {}),
    content,
    lstrip: false,
    normalized: true,
    rstrip: false,
    single_word: false,
  };
}

/** transformers' model_max_length for "no limit" (int(1e30)), which JSON.stringify cannot print as an integer. */
const VERY_LARGE_INTEGER = "1000000000000000019884624838656";

/**
 * The Hugging Face files `LlamaTokenizer.save_pretrained` writes beside tokenizer.model (transformers ≥ 4.28
 * layout: sorted keys, 2-space indent): `tokenizer_config.json` and `special_tokens_map.json`. With `pad`, the pad
 * token is `[PAD]` (Chinese-Alpaca); otherwise there is none (Chinese-LLaMA).
 */
export function huggingFaceTokenizerFiles(options: ExtendVocabularyOptions = {}): Record<string, string> {
  const config: Record<string, unknown> = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: addedToken("<s>", true),
    clean_up_tokenization_spaces: false,
    eos_token: addedToken("</s>", true),
    model_max_length: "@@MAX@@",
    pad_token: options.pad ? ALPACA_PAD_PIECE : null,
    sp_model_kwargs: {},
    tokenizer_class: "LlamaTokenizer",
    unk_token: addedToken("<unk>", true),
  };
  const special: Record<string, unknown> = {
    bos_token: addedToken("<s>", false),
    eos_token: addedToken("</s>", false),
    ...(options.pad ? { pad_token: ALPACA_PAD_PIECE } : {}),
    unk_token: addedToken("<unk>", false),
  };
  return {
    "tokenizer_config.json": JSON.stringify(config, null, 2).replace(`"@@MAX@@"`, VERY_LARGE_INTEGER) + "\n",
    "special_tokens_map.json": JSON.stringify(special, null, 2) + "\n",
  };
}
