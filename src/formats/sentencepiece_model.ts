/**
 * SentencePiece `tokenizer.model` (protobuf `sentencepiece.ModelProto`, proto2): read and write, keeping every field
 * we do not model as raw bytes so that read → write is the identity on files written by protobuf.
 * see: google/sentencepiece src/sentencepiece_model.proto
 *
 * Layout (field numbers):
 * 1. ModelProto: 1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec, 4 self_test_data,
 *    5 denormalizer_spec.
 * 2. SentencePiece: 1 piece (string, non-empty), 2 score (float), 3 type (enum; NORMAL when absent).
 * 3. TrainerSpec: 3 model_type (UNIGRAM when absent), 4 vocab_size, 24 treat_whitespace_as_suffix, 25 split_digits,
 *    35 byte_fallback, 40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id, 44 unk_surface, 45–48 unk/bos/eos/pad piece.
 * 4. NormalizerSpec: 1 name, 2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
 *    5 escape_whitespaces, 6 normalization_rule_tsv.
 * Writing emits fields in field-number order (what protobuf's serializer does), unknown fields merged in by number.
 */
import { FormatError } from "../core/errors.ts";
import {
  fieldBool,
  fieldFloat32,
  fieldInt32,
  fieldString,
  type ProtoContext,
  type ProtoField,
  ProtoWriter,
  readProtoFields,
  WIRE_I32,
  WIRE_LEN,
  WIRE_VARINT,
} from "./protobuf.ts";

/** `ModelProto.SentencePiece.Type` numbers (llama.cpp's token types use the same numbers). */
export const PIECE_NORMAL = 1;
export const PIECE_UNKNOWN = 2;
export const PIECE_CONTROL = 3;
export const PIECE_USER_DEFINED = 4;
export const PIECE_UNUSED = 5;
export const PIECE_BYTE = 6;

/** `TrainerSpec.ModelType` numbers. */
export const MODEL_UNIGRAM = 1;
export const MODEL_BPE = 2;
export const MODEL_WORD = 3;
export const MODEL_CHAR = 4;

/** One vocabulary entry; its id is its index in `SentencePieceModel.pieces`. */
export interface SentencePiece {
  piece: string;
  /** Absent (undefined) means the field was not written (score 0). */
  score?: number;
  /** Absent means NORMAL (and the field is not written). */
  type?: number;
  unknownFields?: ProtoField[];
}

/** The TrainerSpec fields the tokenizer needs; absent fields take proto defaults (see the getters in tokenizer). */
export interface TrainerSpec {
  modelType?: number;
  vocabSize?: number;
  treatWhitespaceAsSuffix?: boolean;
  splitDigits?: boolean;
  byteFallback?: boolean;
  unkId?: number;
  bosId?: number;
  eosId?: number;
  padId?: number;
  unkSurface?: string;
  unkPiece?: string;
  bosPiece?: string;
  eosPiece?: string;
  padPiece?: string;
  unknownFields?: ProtoField[];
}

/** NormalizerSpec (also used for denormalizer_spec). */
export interface NormalizerSpec {
  name?: string;
  precompiledCharsmap?: Uint8Array;
  addDummyPrefix?: boolean;
  removeExtraWhitespaces?: boolean;
  escapeWhitespaces?: boolean;
  normalizationRuleTsv?: string;
  unknownFields?: ProtoField[];
}

/** A parsed `tokenizer.model`. */
export interface SentencePieceModel {
  pieces: SentencePiece[];
  trainerSpec?: TrainerSpec;
  normalizerSpec?: NormalizerSpec;
  /** self_test_data, kept as raw message bytes. */
  selfTestData?: Uint8Array;
  denormalizerSpec?: NormalizerSpec;
  unknownFields?: ProtoField[];
}

const FORMAT = "sentencepiece";

/** At most this many pieces (the real files have ≤ 256k; guards absurd inputs). */
export const MAX_PIECES = 1 << 22;

/**
 * Parses a SentencePiece `.model` file. Throws FormatError for malformed protobuf, wrong wire types on known fields,
 * empty pieces, or invalid UTF-8.
 *
 * @example
 * ```ts ignore
 * const model = readSentencePieceModel(Deno.readFileSync("tokenizer.model"));
 * model.pieces.length; // 32000
 * ```
 */
export function readSentencePieceModel(bytes: Uint8Array, path?: string): SentencePieceModel {
  const ctx: ProtoContext = { format: FORMAT, path };
  const model: SentencePieceModel = { pieces: [] };
  const unknown: ProtoField[] = [];
  for (const f of readProtoFields(bytes, ctx)) {
    switch (f.field) {
      case 1:
        expectWire(f, WIRE_LEN, "ModelProto.pieces", ctx);
        if (model.pieces.length >= MAX_PIECES) fail(`more than ${MAX_PIECES} pieces`, f, ctx);
        model.pieces.push(readPiece(f, model.pieces.length, ctx));
        break;
      case 2:
        expectWire(f, WIRE_LEN, "ModelProto.trainer_spec", ctx);
        if (model.trainerSpec) fail("trainer_spec appears twice", f, ctx);
        model.trainerSpec = readTrainerSpec(f, ctx);
        break;
      case 3:
        expectWire(f, WIRE_LEN, "ModelProto.normalizer_spec", ctx);
        if (model.normalizerSpec) fail("normalizer_spec appears twice", f, ctx);
        model.normalizerSpec = readNormalizerSpec(f, ctx, "normalizer_spec");
        break;
      case 4:
        expectWire(f, WIRE_LEN, "ModelProto.self_test_data", ctx);
        if (model.selfTestData) fail("self_test_data appears twice", f, ctx);
        readProtoFields(f.bytes!, sub(ctx, f)); // validate only
        model.selfTestData = f.bytes!.slice();
        break;
      case 5:
        expectWire(f, WIRE_LEN, "ModelProto.denormalizer_spec", ctx);
        if (model.denormalizerSpec) fail("denormalizer_spec appears twice", f, ctx);
        model.denormalizerSpec = readNormalizerSpec(f, ctx, "denormalizer_spec");
        break;
      default:
        unknown.push(copyField(f));
    }
  }
  if (unknown.length) model.unknownFields = unknown;
  return model;
}

/** Serializes a model; the inverse of readSentencePieceModel (byte-identical on protobuf-written files). */
export function writeSentencePieceModel(model: SentencePieceModel): Uint8Array<ArrayBuffer> {
  const parts: [number, Uint8Array][] = [];
  parts.push([1, writePieces(model.pieces)]);
  if (model.trainerSpec) parts.push([2, lenField(2, writeTrainerSpec(model.trainerSpec))]);
  if (model.normalizerSpec) parts.push([3, lenField(3, writeNormalizerSpec(model.normalizerSpec))]);
  if (model.selfTestData) parts.push([4, lenField(4, model.selfTestData)]);
  if (model.denormalizerSpec) parts.push([5, lenField(5, writeNormalizerSpec(model.denormalizerSpec))]);
  return joinSorted(parts, model.unknownFields);
}

function fail(msg: string, f: ProtoField, ctx: ProtoContext): never {
  throw new FormatError(`Cannot parse ${ctx.format}: ${msg}`, { format: ctx.format, offset: f.offset, path: ctx.path });
}

function expectWire(f: ProtoField, wire: number, name: string, ctx: ProtoContext): void {
  if (f.wire !== wire) fail(`${name} (field ${f.field}) has wire type ${f.wire}, expected ${wire}`, f, ctx);
}

function sub(ctx: ProtoContext, f: ProtoField): ProtoContext {
  // Payload starts after the tag and length varints.
  return { ...ctx, baseOffset: f.offset + (f.raw.length - f.bytes!.length) };
}

function copyField(f: ProtoField): ProtoField {
  return { ...f, raw: f.raw.slice(), bytes: undefined };
}

/** All pieces as consecutive field-1 entries (the hot part of writing a 50k-piece model). */
function writePieces(pieces: SentencePiece[]): Uint8Array {
  const w = new ProtoWriter();
  const texts = encodeAll(pieces.map((p) => p.piece));
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i];
    if (p.unknownFields?.length) {
      w.bytes(1, writePiece(p));
      continue;
    }
    const text = texts[i];
    const typeLen = p.type === undefined ? 0 : 1 + (p.type < 0 ? 10 : varintLength(p.type));
    const len = 1 + varintLength(text.length) + text.length + (p.score === undefined ? 0 : 5) + typeLen;
    w.tag(1, WIRE_LEN).varint(len).tag(1, WIRE_LEN).varint(text.length).raw(text);
    if (p.score !== undefined) w.float32(2, p.score);
    if (p.type !== undefined) w.int32(3, p.type);
  }
  return w.finish();
}

/**
 * UTF-8 of many short strings with one TextEncoder call (a call per piece costs more than the encoding): the joined
 * text, cut at each string's UTF-8 length. Strings with lone surrogates (which the join could pair up) are encoded
 * one by one.
 */
function encodeAll(strings: string[]): Uint8Array[] {
  const enc = new TextEncoder();
  if (!strings.every((t) => t.isWellFormed())) return strings.map((t) => enc.encode(t));
  const all = enc.encode(strings.join(""));
  const out: Uint8Array[] = new Array(strings.length);
  let at = 0;
  for (let i = 0; i < strings.length; i++) {
    const t = strings[i];
    let n = 0;
    for (let k = 0; k < t.length; k++) {
      const c = t.charCodeAt(k);
      // a surrogate pair is 4 bytes, 2 per unit
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xe000 ? 2 : 3;
    }
    out[i] = all.subarray(at, at + n);
    at += n;
  }
  return out;
}

function varintLength(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

const utf8Fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Fast path for the common piece layout `{1: string, 2: float, 3: varint}` in that order, each at most once:
 * returns undefined for anything else (then the general reader handles it, including its errors).
 */
function readPieceFast(b: Uint8Array): SentencePiece | undefined {
  let pos = 0;
  const n = b.length;
  if (n < 2 || b[0] !== 0x0a) return undefined;
  const len = b[1];
  if (len >= 0x80 || len === 0 || 2 + len > n) return undefined;
  let ascii = true;
  for (let i = 2; i < 2 + len; i++) {
    if (b[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  let piece: string;
  if (ascii) piece = String.fromCharCode.apply(null, b.subarray(2, 2 + len) as unknown as number[]);
  else {
    try {
      piece = utf8Fatal.decode(b.subarray(2, 2 + len));
    } catch {
      return undefined;
    }
  }
  pos = 2 + len;
  const out: SentencePiece = { piece };
  if (pos < n && b[pos] === 0x15) {
    if (pos + 5 > n) return undefined;
    out.score = new DataView(b.buffer, b.byteOffset + pos + 1, 4).getFloat32(0, true);
    pos += 5;
  }
  if (pos < n && b[pos] === 0x18) {
    if (pos + 2 > n || b[pos + 1] >= 0x80) return undefined;
    out.type = b[pos + 1];
    pos += 2;
  }
  return pos === n ? out : undefined;
}

function readPiece(f: ProtoField, index: number, ctx: ProtoContext): SentencePiece {
  const fast = readPieceFast(f.bytes!);
  if (fast) return fast;
  let piece: string | undefined;
  const out: SentencePiece = { piece: "" };
  const unknown: ProtoField[] = [];
  for (const g of readProtoFields(f.bytes!, sub(ctx, f))) {
    if (g.field === 1) {
      expectWire(g, WIRE_LEN, `piece ${index} text`, ctx);
      piece = fieldString(g, ctx, `piece ${index}`);
    } else if (g.field === 2) {
      expectWire(g, WIRE_I32, `piece ${index} score`, ctx);
      out.score = fieldFloat32(g);
    } else if (g.field === 3) {
      expectWire(g, WIRE_VARINT, `piece ${index} type`, ctx);
      out.type = fieldInt32(g);
    } else {
      unknown.push(copyField(g));
    }
  }
  if (piece === undefined || piece === "") fail(`piece ${index} is empty`, f, ctx);
  out.piece = piece;
  if (unknown.length) out.unknownFields = unknown;
  return out;
}

function writePiece(p: SentencePiece): Uint8Array {
  const w = new ProtoWriter();
  w.string(1, p.piece);
  if (p.score !== undefined) w.float32(2, p.score);
  if (p.type !== undefined) w.int32(3, p.type);
  if (!p.unknownFields?.length) return w.finish();
  const parts: [number, Uint8Array][] = [[0, w.finish()]];
  return joinSorted(parts, p.unknownFields);
}

type Kind = "int32" | "bool" | "string";
const TRAINER_FIELDS: [number, keyof TrainerSpec, Kind][] = [
  [3, "modelType", "int32"],
  [4, "vocabSize", "int32"],
  [24, "treatWhitespaceAsSuffix", "bool"],
  [25, "splitDigits", "bool"],
  [35, "byteFallback", "bool"],
  [40, "unkId", "int32"],
  [41, "bosId", "int32"],
  [42, "eosId", "int32"],
  [43, "padId", "int32"],
  [44, "unkSurface", "string"],
  [45, "unkPiece", "string"],
  [46, "bosPiece", "string"],
  [47, "eosPiece", "string"],
  [48, "padPiece", "string"],
];
const NORMALIZER_FIELDS: [number, keyof NormalizerSpec, Kind | "bytes"][] = [
  [1, "name", "string"],
  [2, "precompiledCharsmap", "bytes"],
  [3, "addDummyPrefix", "bool"],
  [4, "removeExtraWhitespaces", "bool"],
  [5, "escapeWhitespaces", "bool"],
  [6, "normalizationRuleTsv", "string"],
];

function readSpec<T extends { unknownFields?: ProtoField[] }>(
  f: ProtoField,
  ctx: ProtoContext,
  name: string,
  table: [number, keyof T, Kind | "bytes"][],
): T {
  const out = {} as Record<string, unknown>;
  const unknown: ProtoField[] = [];
  for (const g of readProtoFields(f.bytes!, sub(ctx, f))) {
    const entry = table.find((e) => e[0] === g.field);
    if (!entry) {
      unknown.push(copyField(g));
      continue;
    }
    const [, key, kind] = entry;
    const wire = kind === "string" || kind === "bytes" ? WIRE_LEN : WIRE_VARINT;
    expectWire(g, wire, `${name}.${String(key)}`, ctx);
    out[key as string] = kind === "int32"
      ? fieldInt32(g)
      : kind === "bool"
      ? fieldBool(g)
      : kind === "string"
      ? fieldString(g, ctx, `${name}.${String(key)}`)
      : g.bytes!.slice();
  }
  if (unknown.length) out.unknownFields = unknown;
  return out as T;
}

function readTrainerSpec(f: ProtoField, ctx: ProtoContext): TrainerSpec {
  return readSpec<TrainerSpec>(f, ctx, "trainer_spec", TRAINER_FIELDS);
}

function readNormalizerSpec(f: ProtoField, ctx: ProtoContext, name: string): NormalizerSpec {
  return readSpec<NormalizerSpec>(f, ctx, name, NORMALIZER_FIELDS);
}

function writeSpec<T extends { unknownFields?: ProtoField[] }>(
  spec: T,
  table: [number, keyof T, Kind | "bytes"][],
): Uint8Array {
  const parts: [number, Uint8Array][] = [];
  for (const [field, key, kind] of table) {
    const v = spec[key];
    if (v === undefined) continue;
    const w = new ProtoWriter();
    if (kind === "int32") w.int32(field, v as number);
    else if (kind === "bool") w.bool(field, v as boolean);
    else if (kind === "string") w.string(field, v as string);
    else w.bytes(field, v as Uint8Array);
    parts.push([field, w.finish()]);
  }
  return joinSorted(parts, spec.unknownFields);
}

function writeTrainerSpec(s: TrainerSpec): Uint8Array {
  return writeSpec(s, TRAINER_FIELDS);
}

function writeNormalizerSpec(s: NormalizerSpec): Uint8Array {
  return writeSpec(s, NORMALIZER_FIELDS);
}

function lenField(field: number, payload: Uint8Array): Uint8Array {
  return new ProtoWriter().bytes(field, payload).finish();
}

/** Concatenates known parts and preserved unknown fields in field-number order (stable for equal numbers). */
function joinSorted(parts: [number, Uint8Array][], unknown?: ProtoField[]): Uint8Array<ArrayBuffer> {
  const all = parts.map((p, i) => ({ field: p[0], bytes: p[1], i }));
  if (unknown?.length) {
    for (const u of unknown) all.push({ field: u.field, bytes: u.raw, i: all.length });
    all.sort((a, b) => a.field - b.field || a.i - b.i);
  }
  let n = 0;
  for (const a of all) n += a.bytes.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const a of all) {
    out.set(a.bytes, o);
    o += a.bytes.length;
  }
  return out;
}
