/**
 * Tokenizer: the SentencePiece pipeline (normalize → BPE or UNIGRAM → byte fallback / unknown merging → ids) built
 * from a `tokenizer.model` or from GGUF `tokenizer.ggml.*` metadata, plus SentencePiece-exact decoding.
 * see: google/sentencepiece src/sentencepiece_processor.cc (Encode, PopulateSentencePieceText, Decode) v0.1.97;
 *      llama.cpp llama-vocab.cpp (the "llama" SPM vocab keys)
 */
import { FormatError, UnsupportedError } from "../core/errors.ts";
import {
  MODEL_BPE,
  MODEL_UNIGRAM,
  PIECE_BYTE,
  PIECE_CONTROL,
  PIECE_NORMAL,
  PIECE_UNKNOWN,
  type SentencePieceModel,
} from "../formats/sentencepiece_model.ts";
import { BpeModel } from "./bpe.ts";
import { Normalizer, SPACE_SYMBOL } from "./normalizer.ts";
import { PrecompiledCharsmap } from "./precompiled_charsmap.ts";
import { UnigramModel } from "./unigram.ts";
import { decodeBytesLikeSentencePiece, utf8Encode } from "./utf8.ts";
import { pieceToByte, Vocab } from "./vocab.ts";

/** SentencePiece's default surface for `<unk>` when decoding: " ⁇ ". */
export const DEFAULT_UNK_SURFACE = " \u2047 ";

export interface EncodeOptions {
  /** Prepend BOS (default: the tokenizer's `addBos`, true for LLaMA-family models as in llama.cpp and HF). */
  bos?: boolean;
  /** Append EOS (default: `addEos`, false for LLaMA). */
  eos?: boolean;
}

/** Everything a Tokenizer needs; built by tokenizerFromSentencePiece / tokenizerFromGgufMetadata. */
export interface TokenizerParts {
  vocab: Vocab;
  model: "bpe" | "unigram";
  normalizer: Normalizer;
  byteFallback: boolean;
  bosId: number;
  eosId: number;
  padId: number;
  addBos: boolean;
  addEos: boolean;
  unkSurface: string;
}

/** Cache entries are segments no longer than this (UTF-16 units); the cache is cleared past MAX_CACHE entries. */
const MAX_CACHED_SEGMENT = 64;
const MAX_CACHE = 1 << 16;

/** A SentencePiece tokenizer (BPE or UNIGRAM) that reproduces SentencePiece's ids exactly. */
export class Tokenizer {
  readonly vocab: Vocab;
  readonly model: "bpe" | "unigram";
  readonly normalizer: Normalizer;
  readonly byteFallback: boolean;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  /** -1 when the model has no padding piece. */
  readonly padId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly unkSurface: string;
  /** Decoding drops the leading '▁' of the first piece (add_dummy_prefix or remove_extra_whitespaces). */
  readonly stripsLeadingSpace: boolean;
  readonly #bpe?: BpeModel;
  readonly #unigram?: UnigramModel;
  /** Set when segments split at "x▁" boundaries can be encoded independently (see #canSplit). */
  readonly #cache?: Map<string, number[]>;

  constructor(parts: TokenizerParts) {
    this.vocab = parts.vocab;
    this.model = parts.model;
    this.normalizer = parts.normalizer;
    this.byteFallback = parts.byteFallback;
    this.bosId = parts.bosId;
    this.eosId = parts.eosId;
    this.unkId = parts.vocab.unkId;
    this.padId = parts.padId;
    this.addBos = parts.addBos;
    this.addEos = parts.addEos;
    this.unkSurface = parts.unkSurface;
    const o = parts.normalizer.options;
    this.stripsLeadingSpace = o.addDummyPrefix || o.removeExtraWhitespaces;
    if (parts.model === "bpe") this.#bpe = new BpeModel(parts.vocab);
    else this.#unigram = new UnigramModel(parts.vocab);
    if (this.#canSplit()) this.#cache = new Map();
  }

  /**
   * BPE segments of the normalized text separated before each '▁' that follows another character are
   * independent — merges never cross them — when no segmentable piece contains "x▁" (x ≠ '▁'), byte fallback is
   * on (so unknown pieces are not merged across segments) and no piece is UNUSED (whose resegmentation table is
   * per call). Then each segment can be encoded alone and cached; the result is identical.
   */
  #canSplit(): boolean {
    if (this.model !== "bpe" || !this.byteFallback || this.vocab.hasUnused) return false;
    const inner = new RegExp(`[^${SPACE_SYMBOL}]${SPACE_SYMBOL}`);
    for (const p of this.vocab.normalIds.keys()) if (inner.test(p)) return false;
    return true;
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  /** The piece text of `id` (RangeError when out of range). */
  pieceOf(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.size) {
      throw new RangeError(`Cannot look up token id ${id}: vocabulary has ${this.vocab.size} pieces`);
    }
    return this.vocab.pieces[id];
  }

  /** The id of a piece, or undefined when the vocabulary lacks it. */
  idOf(piece: string): number | undefined {
    return this.vocab.idOf(piece);
  }

  /** Text → normalized text (with '▁'), as SentencePiece's normalizer. */
  normalize(text: string): string {
    return this.normalizer.normalize(text);
  }

  /**
   * Text → ids. Without BOS/EOS this equals SentencePiece's `encode(text)`; with BOS (the default for LLaMA) it
   * equals llama.cpp's and Hugging Face LlamaTokenizer's output.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if ((options.bos ?? this.addBos) && this.bosId >= 0) ids.push(this.bosId);
    const s = this.normalizer.normalize(text);
    if (this.#cache) this.#encodeSegments(s, ids);
    else {
      const triples: number[] = [];
      this.#segment(s, 0, s.length, triples);
      this.#emit(s, triples, ids);
    }
    if ((options.eos ?? this.addEos) && this.eosId >= 0) ids.push(this.eosId);
    return ids;
  }

  /** Ids → their pieces (for display). */
  encodeAsPieces(text: string, options: EncodeOptions = {}): string[] {
    return this.encode(text, options).map((id) => this.vocab.pieces[id]);
  }

  #segment(s: string, from: number, to: number, triples: number[]): void {
    if (this.#bpe) this.#bpe.encode(s, from, to, triples);
    else this.#unigram!.encode(s, from, to, triples);
  }

  #encodeSegments(s: string, ids: number[]): void {
    const cache = this.#cache!;
    const triples: number[] = [];
    let start = 0;
    while (start < s.length) {
      // next boundary: a '▁' preceded by a non-'▁' character
      let end = start;
      for (;;) {
        end = s.indexOf(SPACE_SYMBOL, end + 1);
        if (end < 0) {
          end = s.length;
          break;
        }
        if (s.charCodeAt(end - 1) !== 0x2581) break;
      }
      if (end - start <= MAX_CACHED_SEGMENT) {
        const seg = s.slice(start, end);
        let hit = cache.get(seg);
        if (!hit) {
          hit = [];
          triples.length = 0;
          this.#segment(s, start, end, triples);
          this.#emit(s, triples, hit);
          if (cache.size >= MAX_CACHE) cache.clear();
          cache.set(seg, hit);
        }
        for (let i = 0; i < hit.length; i++) ids.push(hit[i]);
      } else {
        triples.length = 0;
        this.#segment(s, start, end, triples);
        this.#emit(s, triples, ids);
      }
      start = end;
    }
  }

  /** Model output → ids: byte fallback for unknown pieces, or one unknown id per run of unknown pieces. */
  #emit(s: string, triples: number[], ids: number[]): void {
    const vocab = this.vocab;
    let prevUnk = false;
    for (let i = 0; i < triples.length; i += 3) {
      const id = triples[i];
      const unk = vocab.isUnknown(id);
      if (unk && this.byteFallback) {
        for (const b of utf8Encode(s.slice(triples[i + 1], triples[i + 2]))) ids.push(vocab.byteIds[b]);
      } else if (!(unk && prevUnk)) {
        ids.push(id);
      }
      prevUnk = unk;
    }
  }

  /**
   * Ids → text exactly as SentencePiece's DecodeIds: control pieces vanish, `<unk>` becomes the unknown surface,
   * runs of byte pieces are decoded as UTF-8 (each invalid byte → U+FFFD), '▁' → ' ', and the first piece's
   * leading '▁' (the dummy prefix) is dropped.
   */
  decode(ids: ArrayLike<number>): string {
    let text = "";
    let isBosWs = true;
    let bosWsSeen = false;
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id0 = ids[i];
      const piece = this.pieceOf(id0);
      const id = this.vocab.pieceToId(piece);
      if (this.vocab.isByte(id)) {
        bytes.push(pieceToByte(piece));
        continue;
      }
      if (bytes.length) {
        text += decodeBytesLikeSentencePiece(Uint8Array.from(bytes));
        bytes.length = 0;
      }
      if (bosWsSeen || text !== "") isBosWs = false;
      const [surface, seen] = this.decodePiece(piece, id, isBosWs);
      bosWsSeen = seen;
      text += surface;
    }
    if (bytes.length) text += decodeBytesLikeSentencePiece(Uint8Array.from(bytes));
    return text;
  }

  /**
   * The surface of one non-byte piece, and whether it consumed the dummy-prefix space. Shared by decode and
   * StreamingDecoder.
   */
  decodePiece(piece: string, id: number, isBosWs: boolean): [string, boolean] {
    const vocab = this.vocab;
    if (vocab.isControl(id)) return ["", false];
    if (vocab.isUnknown(id)) return [piece === vocab.pieces[id] ? this.unkSurface : piece, false];
    let seen = false;
    if (isBosWs && this.stripsLeadingSpace && piece.startsWith(SPACE_SYMBOL)) {
      piece = piece.slice(1);
      seen = !this.normalizer.options.removeExtraWhitespaces;
    }
    return [piece.replaceAll(SPACE_SYMBOL, " "), seen];
  }
}

/** Builds a Tokenizer from a parsed `tokenizer.model`. UnsupportedError for WORD/CHAR models or a denormalizer. */
export function tokenizerFromSentencePiece(model: SentencePieceModel): Tokenizer {
  const ts = model.trainerSpec ?? {};
  const ns = model.normalizerSpec ?? {};
  const modelType = ts.modelType ?? MODEL_UNIGRAM;
  if (modelType !== MODEL_BPE && modelType !== MODEL_UNIGRAM) {
    throw new UnsupportedError(
      `Cannot build a tokenizer for SentencePiece model_type ${modelType}: only UNIGRAM (1) and BPE (2) are supported`,
    );
  }
  if (model.denormalizerSpec?.precompiledCharsmap?.length) {
    throw new UnsupportedError("Cannot build a tokenizer: models with a denormalizer charsmap are not supported");
  }
  const byteFallback = ts.byteFallback ?? false;
  const n = model.pieces.length;
  const scores = new Float32Array(n);
  const types = new Uint8Array(n);
  const pieces = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const p = model.pieces[i];
    pieces[i] = p.piece;
    scores[i] = p.score ?? 0;
    const t = p.type ?? PIECE_NORMAL;
    if (t < 1 || t > 6) {
      throw new FormatError(`Cannot build vocabulary: piece ${i} "${p.piece}" has unknown type ${t}`, {
        format: "sentencepiece",
      });
    }
    types[i] = t;
  }
  const vocab = new Vocab(pieces, scores, types, byteFallback, "sentencepiece");
  const charsmap = ns.precompiledCharsmap?.length ? new PrecompiledCharsmap(ns.precompiledCharsmap) : undefined;
  const normalizer = new Normalizer({
    addDummyPrefix: ns.addDummyPrefix ?? true,
    removeExtraWhitespaces: ns.removeExtraWhitespaces ?? true,
    escapeWhitespaces: ns.escapeWhitespaces ?? true,
    treatWhitespaceAsSuffix: ts.treatWhitespaceAsSuffix ?? false,
    charsmap,
    userDefined: vocab.userDefined,
  });
  const special = (name: string | undefined, fallback: string, want: (id: number) => boolean): number => {
    const id = vocab.pieceToId(name || fallback);
    return want(id) ? id : -1;
  };
  const control = (id: number) => vocab.isControl(id);
  const bosId = special(ts.bosPiece, "<s>", control);
  return new Tokenizer({
    vocab,
    model: modelType === MODEL_BPE ? "bpe" : "unigram",
    normalizer,
    byteFallback,
    bosId,
    eosId: special(ts.eosPiece, "</s>", control),
    padId: special(ts.padPiece, "<pad>", control),
    addBos: bosId >= 0,
    addEos: false,
    unkSurface: ts.unkSurface ?? DEFAULT_UNK_SURFACE,
  });
}

/**
 * Builds a Tokenizer from GGUF metadata as a GGUF reader returns it (plain values). Only `tokenizer.ggml.model` =
 * "llama" (SentencePiece BPE with byte fallback) is supported. Its segmentation follows SentencePiece (only
 * NORMAL/USER_DEFINED/UNUSED pieces are merge results), which is what llama.cpp's test vectors expect.
 */
export function tokenizerFromGgufMetadata(meta: Map<string, unknown>): Tokenizer {
  const get = (k: string) => meta.get(`tokenizer.ggml.${k}`);
  const fail = (msg: string): never => {
    throw new FormatError(`Cannot build a tokenizer from GGUF metadata: ${msg}`, { format: "gguf" });
  };
  const kind = get("model");
  if (kind === undefined) fail(`"tokenizer.ggml.model" is missing`);
  if (kind !== "llama") {
    throw new UnsupportedError(
      `Cannot build a tokenizer for tokenizer.ggml.model "${String(kind)}": only "llama" (SentencePiece) is supported`,
    );
  }
  const tokens = get("tokens");
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== "string")) {
    fail(`"tokenizer.ggml.tokens" must be an array of strings`);
  }
  const pieces = tokens as string[];
  const n = pieces.length;
  const numbers = (k: string, fallback: number): ArrayLike<number> => {
    const v = get(k);
    if (v === undefined) return new Array<number>(n).fill(fallback);
    if (!(Array.isArray(v) || ArrayBuffer.isView(v)) || (v as ArrayLike<number>).length !== n) {
      fail(`"tokenizer.ggml.${k}" must be an array of ${n} numbers`);
    }
    return v as ArrayLike<number>;
  };
  const scores = Float32Array.from(numbers("scores", 0));
  const rawTypes = numbers("token_type", PIECE_NORMAL);
  const types = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const t = Number(rawTypes[i]);
    if (!Number.isInteger(t) || t < 0 || t > 6) fail(`token ${i} has unknown token_type ${rawTypes[i]}`);
    types[i] = t;
  }
  const id = (k: string): number | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isInteger(x)) fail(`"tokenizer.ggml.${k}" is not an integer`);
    return x >= 0 && x < n ? x : -1;
  };
  // llama.cpp takes the unknown id from the key, not from the types (Phi-3's GGUF types <unk> CONTROL and its 53
  // padding pieces UNKNOWN): the designated piece becomes the one UNKNOWN piece, other UNKNOWN-typed ones CONTROL.
  // Without the key and without an UNKNOWN-typed piece, llama.cpp's SPM default unknown id 0 applies.
  const unk = id("unknown_token_id") ?? (types.includes(PIECE_UNKNOWN) ? undefined : 0);
  if (unk !== undefined && unk >= 0) {
    for (let i = 0; i < n; i++) if (types[i] === PIECE_UNKNOWN) types[i] = PIECE_CONTROL;
    types[unk] = PIECE_UNKNOWN;
  }
  const byteFallback = types.includes(PIECE_BYTE);
  const vocab = new Vocab(pieces, scores, types, byteFallback, "gguf");
  const bool = (k: string, fallback: boolean): boolean => {
    const v = get(k);
    return v === undefined ? fallback : Boolean(v);
  };
  const normalizer = new Normalizer({
    addDummyPrefix: bool("add_space_prefix", true),
    removeExtraWhitespaces: bool("remove_extra_whitespaces", false),
    escapeWhitespaces: true,
    treatWhitespaceAsSuffix: false,
    userDefined: vocab.userDefined,
  });
  const bosId = id("bos_token_id") ?? vocab.idOf("<s>") ?? -1;
  return new Tokenizer({
    vocab,
    model: "bpe",
    normalizer,
    byteFallback,
    bosId,
    eosId: id("eos_token_id") ?? vocab.idOf("</s>") ?? -1,
    padId: id("padding_token_id") ?? -1,
    addBos: bool("add_bos_token", true) && bosId >= 0,
    addEos: bool("add_eos_token", false),
    unkSurface: DEFAULT_UNK_SURFACE,
  });
}
