/**
 * The demo's tokenizer, made in code the way Chinese-LLaMA's was made: a small LLaMA-style SentencePiece BPE model
 * (<unk> <s> </s>, 256 byte-fallback pieces, ASCII pieces) extended with a generated Chinese SentencePiece model by
 * extendVocabulary (merge_tokenizers.py's rule: append the pieces the base lacks, score 0).
 * see: src/tokenizer/vocab_extension.ts, ymcui/Chinese-LLaMA-Alpaca scripts/merge_tokenizer/merge_tokenizers.py
 */
import {
  MODEL_BPE,
  MODEL_UNIGRAM,
  PIECE_BYTE,
  PIECE_CONTROL,
  PIECE_UNKNOWN,
  type SentencePiece,
  type SentencePieceModel,
  writeSentencePieceModel,
} from "../formats/sentencepiece_model.ts";
import { extendVocabulary } from "../tokenizer/mod.ts";

const ENGLISH =
  "the of and to in is was for that on with as by at from this be are an or it which have not has his he one all " +
  "you they we can her more will there their about would what when up out so if into time only new also other " +
  "instruction response task write request describes below appropriately completes hello world alpaca llama";

/** Common Chinese characters and a few words (the demo question's among them). */
const CHINESE_CHARS =
  "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天" +
  "而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些" +
  "与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门" +
  "相次东海口使教西再平真听世气信北少关并内加化由京首都历史介绍句羊驼请，。！？：";
const CHINESE_WORDS = [
  "北京",
  "中国",
  "你好",
  "首都",
  "历史",
  "介绍",
  "一句",
  "一句话",
  "羊驼",
  "我们",
  "时候",
  "问题",
];

/** The demo's tokenizer files. */
export interface DemoTokenizer {
  /** The extended tokenizer.model bytes (what a Chinese LoRA ships). */
  model: Uint8Array;
  /** Pieces of the LLaMA-style base. */
  basePieces: number;
  /** Chinese pieces appended by extendVocabulary. */
  addedPieces: number;
  /** basePieces + addedPieces. */
  pieces: number;
}

function bytePieces(): SentencePiece[] {
  const out: SentencePiece[] = [];
  for (let b = 0; b < 256; b++) {
    out.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, score: 0, type: PIECE_BYTE });
  }
  return out;
}

/** A LLaMA-style BPE base: specials, bytes, then ASCII characters and word prefixes in merge order. */
export function demoBaseModel(): SentencePieceModel {
  const pieces: SentencePiece[] = [
    { piece: "<unk>", score: 0, type: PIECE_UNKNOWN },
    { piece: "<s>", score: 0, type: PIECE_CONTROL },
    { piece: "</s>", score: 0, type: PIECE_CONTROL },
    ...bytePieces(),
  ];
  const seen = new Set(pieces.map((p) => p.piece));
  const add = (p: string) => {
    if (seen.has(p)) return;
    seen.add(p);
    // BPE merge priority: earlier pieces merge first (LLaMA's scores are 0, -1, -2, …)
    pieces.push({ piece: p, score: -(pieces.length - 259) });
  };
  add("▁");
  for (let c = 0x21; c < 0x7f; c++) add(String.fromCharCode(c));
  for (const w of ENGLISH.split(" ")) {
    // every prefix of "▁word", so BPE can reach the whole word one merge at a time
    const s = `▁${w}`;
    for (let i = 2; i <= s.length; i++) add(s.slice(0, i));
  }
  return {
    pieces,
    trainerSpec: { modelType: MODEL_BPE, vocabSize: pieces.length, byteFallback: true, unkId: 0, bosId: 1, eosId: 2 },
    normalizerSpec: { name: "identity", addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true },
  };
}

/** A generated "chinese_sp": specials (skipped by the extension, the base has them), characters, then words. */
export function demoChineseModel(): SentencePieceModel {
  const pieces: SentencePiece[] = [
    { piece: "<unk>", score: 0, type: PIECE_UNKNOWN },
    { piece: "<s>", score: 0, type: PIECE_CONTROL },
    { piece: "</s>", score: 0, type: PIECE_CONTROL },
  ];
  // a SentencePiece model never repeats a piece
  for (const p of new Set([...CHINESE_WORDS, ...CHINESE_CHARS])) pieces.push({ piece: p, score: -pieces.length });
  pieces.push({ piece: "▁", score: -pieces.length }); // already in the base: not appended twice
  return {
    pieces,
    trainerSpec: { modelType: MODEL_UNIGRAM, vocabSize: pieces.length },
    normalizerSpec: { name: "identity", addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true },
  };
}

/** Base + Chinese, extended as the seed did; returns the tokenizer.model bytes and the counts. */
export function buildDemoTokenizer(): DemoTokenizer {
  const base = demoBaseModel();
  const merged = extendVocabulary(base, demoChineseModel());
  return {
    model: writeSentencePieceModel(merged),
    basePieces: base.pieces.length,
    addedPieces: merged.pieces.length - base.pieces.length,
    pieces: merged.pieces.length,
  };
}
