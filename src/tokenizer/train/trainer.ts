/**
 * The SentencePiece trainer's driver: options → meta pieces (unk/bos/eos/pad, control, user-defined, byte pieces) →
 * corpus → BPE / UNIGRAM / CHAR / WORD pieces → ModelProto bytes and the `.vocab` text, as spm_train writes them.
 * see: google/sentencepiece src/trainer_interface.cc (InitMetaPieces, Serialize, SaveVocab),
 *      src/char_model_trainer.cc, src/word_model_trainer.cc (v0.1.97)
 */
import {
  PIECE_BYTE,
  PIECE_CONTROL,
  PIECE_UNKNOWN,
  PIECE_USER_DEFINED,
  readSentencePieceModel,
  type SentencePiece,
  type SentencePieceModel,
  writeSentencePieceModel,
} from "../../formats/sentencepiece_model.ts";
import { ProtoWriter } from "../../formats/protobuf.ts";
import { Normalizer } from "../normalizer.ts";
import { PrecompiledCharsmap } from "../precompiled_charsmap.ts";
import { byteToPiece } from "../vocab.ts";
import { compareCodePoints, type Corpus, prepareCorpus, type SentenceSelector } from "./corpus.ts";
import { type ScoredPiece, trainBpe } from "./bpe_trainer.ts";
import { trainUnigram } from "./unigram_trainer.ts";
import { nmtNfkcCharsmap } from "./nmt_nfkc_charsmap.ts";
import { pieceValidator } from "./piece_validator.ts";
import {
  normalizerSpecBytes,
  type TrainerConfig,
  trainerConfig,
  type TrainerOptions,
  trainerSpecBytes,
} from "./trainer_spec.ts";

/** Progress events: a stage name and (done, total) within it. */
export type TrainProgress = (stage: string, done: number, total: number, detail?: string) => void;

/** What training produced. */
export interface TrainResult {
  /** PREFIX.model bytes. */
  modelBytes: Uint8Array<ArrayBuffer>;
  /** The same, parsed (on first access). */
  readonly model: SentencePieceModel;
  /** Number of pieces in the model. */
  nPieces: number;
  /** PREFIX.vocab text. */
  vocabText: string;
  corpus: Pick<Corpus, "nSentences" | "allChars" | "coveredChars"> & { nUnits: number; alphabet: number };
}

/** Meta pieces by id, as SentencePiece's InitMetaPieces. Throws RangeError on clashes. */
export function metaPieces(cfg: TrainerConfig): Map<number, [string, number]> {
  const meta = new Map<number, [string, number]>();
  let hasUnk = false;
  const insertId = (id: number, w: string, flag: string) => {
    if (id < 0) return;
    if (id >= cfg.vocabSize || meta.has(id) || (hasUnk && w === cfg.unkPiece)) {
      throw new RangeError(`Cannot train: --${flag}=${id} is out of range or already used`);
    }
    if (w === cfg.unkPiece) hasUnk = true;
    meta.set(id, [w, w === cfg.unkPiece ? PIECE_UNKNOWN : PIECE_CONTROL]);
  };
  insertId(cfg.unkId, cfg.unkPiece, "unk_id");
  insertId(cfg.bosId, cfg.bosPiece, "bos_id");
  insertId(cfg.eosId, cfg.eosPiece, "eos_id");
  insertId(cfg.padId, cfg.padPiece, "pad_id");
  if (!hasUnk) throw new RangeError(`Cannot train: ${cfg.unkPiece} must be defined (--unk_id ≥ 0)`);
  const seen = new Set<string>();
  let id = 0;
  const insertSymbol = (w: string, type: number) => {
    if (seen.has(w)) throw new RangeError(`Cannot train: "${w}" is already defined`);
    seen.add(w);
    if (w === cfg.unkPiece) {
      throw new RangeError(`Cannot train: ${w} must not be in --control_symbols or --user_defined_symbols`);
    }
    if (w === cfg.bosPiece && cfg.bosId >= 0) meta.get(cfg.bosId)![1] = type;
    else if (w === cfg.eosPiece && cfg.eosId >= 0) meta.get(cfg.eosId)![1] = type;
    else if (w === cfg.padPiece && cfg.padId >= 0) meta.get(cfg.padId)![1] = type;
    else {
      while (meta.has(id)) id++;
      meta.set(id, [w, type]);
    }
  };
  for (const w of cfg.controlSymbols) insertSymbol(w, PIECE_CONTROL);
  for (const w of cfg.userDefinedSymbols) insertSymbol(w, PIECE_USER_DEFINED);
  if (cfg.byteFallback) { for (let b = 0; b < 256; b++) insertSymbol(byteToPiece(b), PIECE_BYTE); }
  return meta;
}

/** The charsmap blob of a rule name ("" bytes for identity). */
export function charsmapFor(rule: string): Uint8Array {
  return rule === "nmt_nfkc" ? nmtNfkcCharsmap() : new Uint8Array(0);
}

/** The normalizer the trainer applies (no user-defined matcher, as SentencePiece's trainer). */
export function trainingNormalizer(cfg: TrainerConfig, charsmap: Uint8Array): Normalizer {
  return new Normalizer({
    addDummyPrefix: cfg.addDummyPrefix,
    removeExtraWhitespaces: cfg.removeExtraWhitespaces,
    escapeWhitespaces: true,
    treatWhitespaceAsSuffix: cfg.treatWhitespaceAsSuffix,
    charsmap: charsmap.length ? new PrecompiledCharsmap(charsmap) : undefined,
  });
}

/**
 * Trains a model from the sentences a SentenceSelector kept. Throws RangeError for bad options or a corpus too
 * small for the requested vocabulary (with SentencePiece's wording).
 */
export async function trainSentencePiece(
  selected: Pick<SentenceSelector, "sentences" | "freqs">,
  options: TrainerOptions,
  onProgress?: TrainProgress,
): Promise<TrainResult> {
  const cfg = trainerConfig(options);
  const meta = metaPieces(cfg);
  const charsmap = charsmapFor(cfg.normalizationRuleName);
  const normalizer = trainingNormalizer(cfg, charsmap);
  if (selected.sentences.length === 0) throw new RangeError("Cannot train: the input has no usable sentence");
  const metaList = [...meta.values()].map((m) => m[0]);
  const corpus = prepareCorpus(selected.sentences, selected.freqs, cfg, {
    normalizer,
    asciiNormalizer: charsmap.length ? trainingNormalizer(cfg, new Uint8Array(0)) : undefined,
    metaPieces: metaList,
    splitWords: cfg.splitByWhitespace && cfg.modelType !== "char",
    onProgress: onProgress && ((d, t) => onProgress("normalize", d, t)),
  });
  const nRequired = corpus.requiredChars.size;
  if ((cfg.modelType === "bpe" || cfg.modelType === "unigram") && nRequired + meta.size > cfg.vocabSize) {
    throw new RangeError(
      `Cannot train: vocabulary size is smaller than required_chars. ${cfg.vocabSize} vs ${nRequired + meta.size}. ` +
        "Increase vocab_size or decrease character_coverage with --character_coverage option",
    );
  }
  const isValid = pieceValidator(cfg);
  let pieces: ScoredPiece[];
  if (cfg.modelType === "bpe") {
    pieces = trainBpe({
      texts: corpus.texts,
      freqs: corpus.freqs,
      requiredChars: corpus.requiredChars,
      nMerges: cfg.vocabSize - meta.size - nRequired,
      isValid,
      onProgress: onProgress && ((d, t) => onProgress("bpe merges", d, t)),
    });
  } else if (cfg.modelType === "unigram") {
    pieces = await trainUnigram({
      texts: corpus.texts,
      freqs: corpus.freqs,
      followers: corpus.followers,
      requiredChars: corpus.requiredChars,
      vocabSize: cfg.vocabSize - meta.size,
      cfg,
      isValid,
      onProgress,
    });
  } else if (cfg.modelType === "char") {
    pieces = charPieces(corpus, cfg.vocabSize - meta.size, cfg.useAllVocab);
  } else {
    pieces = wordPieces(corpus, cfg.vocabSize - meta.size, cfg.useAllVocab);
  }
  return serialize(pieces, meta, cfg, options, charsmap, corpus);
}

/** CHAR model: characters by count, score logf(count) − logf(total) in float32 (SentencePiece's char trainer). */
function charPieces(corpus: Corpus, n: number, useAll: boolean): ScoredPiece[] {
  let sum = 0;
  for (const f of corpus.requiredChars.values()) sum += f;
  const logsum = Math.fround(Math.log(Math.fround(sum)));
  const out: ScoredPiece[] = [];
  for (const [c, f] of corpus.requiredChars) {
    if (!useAll && out.length >= n) break;
    out.push([String.fromCodePoint(c), Math.fround(Math.fround(Math.log(Math.fround(f))) - logsum)]);
  }
  return out;
}

/**
 * WORD model: whitespace-split words by count (words with ▅ skipped but counted in the total), score
 * logf(count) − logf(total) in float32 (SentencePiece's word trainer).
 */
function wordPieces(corpus: Corpus, n: number, useAll: boolean): ScoredPiece[] {
  const order = corpus.texts.map((t, i) => [t, corpus.freqs[i]] as [string, number])
    .sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  let sum = 0;
  for (const [, f] of order) sum += f;
  const logsum = Math.fround(Math.log(Math.fround(sum)));
  const out: ScoredPiece[] = [];
  for (const [t, f] of order) {
    if (t.includes("\u2585")) continue;
    if (!useAll && out.length >= n) break;
    out.push([t, Math.fround(Math.fround(Math.log(Math.fround(f))) - logsum)]);
  }
  return out;
}

function serialize(
  pieces: ScoredPiece[],
  meta: Map<number, [string, number]>,
  cfg: TrainerConfig,
  options: TrainerOptions,
  charsmap: Uint8Array,
  corpus: Corpus,
): TrainResult {
  const out: SentencePiece[] = [];
  const seen = new Set<string>();
  let fid = 0;
  for (let id = 0; id < cfg.vocabSize; id++) {
    const m = meta.get(id);
    let p: SentencePiece;
    if (m) p = { piece: m[0], score: 0, type: m[1] };
    else if (fid < pieces.length) {
      const [piece, score] = pieces[fid++];
      p = { piece, score };
    } else continue;
    if (seen.has(p.piece)) throw new RangeError(`Cannot train: piece "${p.piece}" is already defined`);
    seen.add(p.piece);
    out.push(p);
  }
  if (fid !== pieces.length) {
    throw new RangeError(`Cannot train: ${pieces.length - fid} pieces do not fit in --vocab_size=${cfg.vocabSize}`);
  }
  const hardLimit = cfg.hardVocabLimit && cfg.modelType !== "char";
  if (hardLimit && out.length !== cfg.vocabSize) {
    throw new RangeError(
      `Cannot train: vocabulary size too high (${cfg.vocabSize}). Please set it to a value <= ${out.length}`,
    );
  }
  const pieceBytes = writeSentencePieceModel({ pieces: out });
  const w = new ProtoWriter().raw(pieceBytes);
  w.bytes(2, trainerSpecBytes(options, hardLimit ? undefined : out.length));
  w.bytes(3, normalizerSpecBytes(options, charsmap));
  const modelBytes = w.finish() as Uint8Array<ArrayBuffer>;
  let parsed: SentencePieceModel | undefined;
  const lines = out.map((p) => cfg.vocabularyOutputPieceScore ? `${p.piece}\t${formatFloat(p.score ?? 0)}` : p.piece);
  return {
    modelBytes,
    get model() {
      return parsed ??= readSentencePieceModel(modelBytes);
    },
    nPieces: out.length,
    vocabText: lines.join("\n") + "\n",
    corpus: {
      nSentences: corpus.nSentences,
      allChars: corpus.allChars,
      coveredChars: corpus.coveredChars,
      nUnits: corpus.texts.length,
      alphabet: corpus.requiredChars.size,
    },
  };
}

/** A float as C++ `ostream << float` prints it (%g, 6 significant digits; "-0" for negative zero). */
export function formatFloat(x: number): string {
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  // toPrecision(6) rounds as %.6g; it writes fixed notation for exponents -6..5, %g only from -4
  const p = x.toPrecision(6);
  const a = Math.abs(Number(p));
  if (a >= 1e-4 && !p.includes("e")) return p.includes(".") ? trimZeros(p) : p;
  const [m, e] = x.toExponential(5).split("e");
  const ev = Number(e);
  return `${trimZeros(m)}e${ev < 0 ? "-" : "+"}${String(Math.abs(ev)).padStart(2, "0")}`;
}

/** "1.50000" → "1.5", "2.00000" → "2" (a mantissa with a point). */
function trimZeros(s: string): string {
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48) end--;
  if (s.charCodeAt(end - 1) === 46) end--;
  return s.slice(0, end);
}
