/**
 * The vocabulary shared by every stage: pieces, scores, types, and SentencePiece's two lookup tables
 * (NORMAL/USER_DEFINED/UNUSED pieces take part in segmentation; UNKNOWN/CONTROL/BYTE are "reserved").
 * see: google/sentencepiece src/model_interface.cc InitializePieces, PieceToId
 */
import { FormatError } from "../core/errors.ts";
import {
  PIECE_BYTE,
  PIECE_CONTROL,
  PIECE_NORMAL,
  PIECE_UNKNOWN,
  PIECE_UNUSED,
  PIECE_USER_DEFINED,
} from "../formats/sentencepiece_model.ts";

/** `<0xXX>`: the piece for byte `b` (uppercase hex, as SentencePiece writes it). */
export function byteToPiece(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/** The byte of a `<0xXX>` piece, or -1. */
export function pieceToByte(piece: string): number {
  if (piece.length !== 6 || !piece.startsWith("<0x") || piece[5] !== ">") return -1;
  const hex = piece.slice(3, 5);
  if (!/^[0-9A-F]{2}$/.test(hex)) return -1;
  return parseInt(hex, 16);
}

/** Validated vocabulary with SentencePiece's lookups. */
export class Vocab {
  readonly pieces: string[];
  /** float32 scores (kept as float32 so sums and ties match SentencePiece). */
  readonly scores: Float32Array;
  /** Piece types (1 NORMAL … 6 BYTE; 0 from GGUF is read as NORMAL). */
  readonly types: Uint8Array;
  /** NORMAL, USER_DEFINED and UNUSED pieces: the ones segmentation can produce. */
  readonly normalIds: Map<string, number> = new Map();
  /** UNKNOWN, CONTROL and BYTE pieces. */
  readonly reservedIds: Map<string, number> = new Map();
  readonly unkId: number;
  readonly userDefined: string[] = [];
  readonly hasUnused: boolean;
  /** id of `<0xXX>` for each byte (PieceToId semantics: unk when missing). */
  readonly byteIds: Int32Array = new Int32Array(256);

  /**
   * @param byteFallback whether BYTE pieces are allowed and all 256 required (SentencePiece's rule)
   * @param format name for error messages ("sentencepiece" or "gguf")
   */
  constructor(pieces: string[], scores: Float32Array, types: Uint8Array, byteFallback: boolean, format: string) {
    const fail = (msg: string): never => {
      throw new FormatError(`Cannot build vocabulary: ${msg}`, { format });
    };
    if (pieces.length === 0) fail("no pieces");
    if (scores.length !== pieces.length || types.length !== pieces.length) {
      fail(`${pieces.length} pieces but ${scores.length} scores and ${types.length} types`);
    }
    this.pieces = pieces;
    this.scores = scores;
    this.types = types;
    let unk = -1;
    let unused = false;
    const bytesFound = new Uint8Array(256);
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      let t = types[i];
      if (t === 0) t = types[i] = PIECE_NORMAL;
      if (t < PIECE_NORMAL || t > PIECE_BYTE) fail(`piece ${i} "${p}" has unknown type ${t}`);
      if (p.length === 0) fail(`piece ${i} is empty`);
      const normal = t === PIECE_NORMAL || t === PIECE_USER_DEFINED || t === PIECE_UNUSED;
      const map = normal ? this.normalIds : this.reservedIds;
      if (map.has(p)) fail(`piece ${i} "${p}" is already defined as id ${map.get(p)}`);
      map.set(p, i);
      if (t === PIECE_USER_DEFINED) this.userDefined.push(p);
      if (t === PIECE_UNUSED) unused = true;
      if (t === PIECE_UNKNOWN) {
        if (unk >= 0) fail(`a second unknown piece at id ${i} (first at ${unk})`);
        unk = i;
      }
      if (t === PIECE_BYTE) {
        if (!byteFallback) fail(`byte piece ${i} "${p}" found although byte_fallback is false`);
        const b = pieceToByte(p);
        if (b < 0) fail(`byte piece ${i} "${p}" is not of the form <0xXX>`);
        bytesFound[b] = 1;
      }
    }
    if (unk < 0) fail("no unknown piece (type UNKNOWN)");
    if (byteFallback && bytesFound.includes(0)) fail("byte_fallback is true but not all 256 byte pieces exist");
    this.unkId = unk;
    this.hasUnused = unused;
    for (let b = 0; b < 256; b++) this.byteIds[b] = this.pieceToId(byteToPiece(b));
  }

  get size(): number {
    return this.pieces.length;
  }

  /** SentencePiece's PieceToId: reserved pieces first, then normal ones, else the unknown id. */
  pieceToId(piece: string): number {
    return this.reservedIds.get(piece) ?? this.normalIds.get(piece) ?? this.unkId;
  }

  /** The id of `piece`, or undefined when it is not in the vocabulary. */
  idOf(piece: string): number | undefined {
    return this.reservedIds.get(piece) ?? this.normalIds.get(piece);
  }

  isControl(id: number): boolean {
    return this.types[id] === PIECE_CONTROL;
  }
  isUnknown(id: number): boolean {
    return this.types[id] === PIECE_UNKNOWN;
  }
  isByte(id: number): boolean {
    return this.types[id] === PIECE_BYTE;
  }
  isUnused(id: number): boolean {
    return this.types[id] === PIECE_UNUSED;
  }
  isUserDefined(id: number): boolean {
    return this.types[id] === PIECE_USER_DEFINED;
  }
}
