/**
 * Protocol Buffers wire format: a bounds-checked field reader that keeps each field's raw bytes (so unknown fields
 * can be written back byte for byte) and a small writer.
 * see: https://protobuf.dev/programming-guides/encoding/
 *
 * Wire layout, as read here:
 * 1. A message is a sequence of fields; each starts with a varint tag = (fieldNumber << 3) | wireType.
 * 2. wireType 0 VARINT: a base-128 varint of at most 10 bytes (negative int32 take all 10).
 * 3. wireType 1 I64: 8 bytes little-endian.  wireType 5 I32: 4 bytes little-endian (float, fixed32).
 * 4. wireType 2 LEN: a varint byte length, then that many bytes (string, bytes, embedded message, packed).
 * 5. wireTypes 3/4 (groups) are deprecated and rejected; 6 and 7 do not exist.
 */
import { FormatError } from "../core/errors.ts";

/** Protobuf wire types. */
export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** One field as found on the wire. */
export interface ProtoField {
  /** Field number (1 … 2^29-1). */
  field: number;
  /** Wire type: 0, 1, 2 or 5. */
  wire: number;
  /** Byte offset of the tag within the outermost buffer (for error messages). */
  offset: number;
  /** VARINT value (wire 0): a number when below 2^49, else an unsigned 64-bit bigint. */
  varint?: number | bigint;
  /** Payload bytes: the LEN payload (wire 2) or the 4/8 fixed bytes (wire 5/1). A view, not a copy. */
  bytes?: Uint8Array;
  /** The whole field (tag + payload) exactly as it appeared. A view, not a copy. */
  raw: Uint8Array;
}

/** Context for error messages: which format and where the message starts in the file. */
export interface ProtoContext {
  format: string;
  /** Byte offset of `bytes[0]` in the file. */
  baseOffset?: number;
  path?: string;
}

const MAX_FIELD = (1 << 29) - 1;

/**
 * Splits a message into its fields, in wire order. Throws FormatError on a truncated varint, a length past the end,
 * a bad wire type or field number 0.
 */
export function readProtoFields(bytes: Uint8Array, ctx: ProtoContext): ProtoField[] {
  const base = ctx.baseOffset ?? 0;
  const out: ProtoField[] = [];
  let pos = 0;
  const n = bytes.length;
  const fail = (msg: string, at: number): never => {
    throw new FormatError(`Cannot parse ${ctx.format}: ${msg}`, {
      format: ctx.format,
      offset: base + at,
      path: ctx.path,
    });
  };
  const readVarint = (): bigint | number => {
    // Up to 7 bytes (49 bits) stay a plain number; longer varints (negative int32s) become a bigint.
    let result = 0;
    let mul = 1;
    const start = pos;
    for (let i = 0; i < 7; i++) {
      if (pos >= n) fail("truncated varint", start);
      const b = bytes[pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    let big = BigInt(result);
    let shift = 49n;
    for (let i = 7; i < 10; i++) {
      if (pos >= n) fail("truncated varint", start);
      const b = bytes[pos++];
      big |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        if (i === 9 && b > 1) fail("varint overflows 64 bits", start);
        return big;
      }
      shift += 7n;
    }
    return fail("varint longer than 10 bytes", start);
  };
  const readSmallVarint = (): number => {
    // Tags and lengths: decode as a number when it fits, else treat as absurd.
    let result = 0;
    let mul = 1;
    const start = pos;
    for (let i = 0; i < 10; i++) {
      if (pos >= n) fail("truncated varint", start);
      const b = bytes[pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    return fail("varint longer than 10 bytes", start);
  };
  while (pos < n) {
    const start = pos;
    const tag = readSmallVarint();
    const wire = tag % 8;
    const field = Math.floor(tag / 8);
    if (field === 0 || field > MAX_FIELD) fail(`invalid field number ${field}`, start);
    let varint: bigint | number | undefined;
    let payload: Uint8Array | undefined;
    switch (wire) {
      case WIRE_VARINT:
        varint = readVarint();
        break;
      case WIRE_I64:
        if (pos + 8 > n) fail(`field ${field} needs 8 bytes, ${n - pos} remain`, start);
        payload = bytes.subarray(pos, pos + 8);
        pos += 8;
        break;
      case WIRE_I32:
        if (pos + 4 > n) fail(`field ${field} needs 4 bytes, ${n - pos} remain`, start);
        payload = bytes.subarray(pos, pos + 4);
        pos += 4;
        break;
      case WIRE_LEN: {
        const lenAt = pos;
        const len = readSmallVarint();
        if (len > n - pos) fail(`field ${field} length ${len} exceeds the ${n - pos} bytes that remain`, lenAt);
        payload = bytes.subarray(pos, pos + len);
        pos += len;
        break;
      }
      case 3:
      case 4:
        fail(`field ${field} uses deprecated group wire type ${wire}`, start);
        break;
      default:
        fail(`field ${field} has invalid wire type ${wire}`, start);
    }
    out.push({ field, wire, offset: base + start, varint, bytes: payload, raw: bytes.subarray(start, pos) });
  }
  return out;
}

/** Reads a little-endian float32 from a wire-5 payload. */
export function fieldFloat32(f: ProtoField): number {
  const b = f.bytes!;
  return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
}

/** A varint as a signed int32 (protobuf `int32`: the low 32 bits, two's complement). */
export function fieldInt32(f: ProtoField): number {
  const v = f.varint!;
  return typeof v === "number" ? v | 0 : Number(BigInt.asIntN(32, v));
}

/** A varint as a `uint64` number (exact below 2^53). */
export function fieldUint64(f: ProtoField): number {
  return Number(f.varint!);
}

/** A varint as a bool (any non-zero value is true). */
export function fieldBool(f: ProtoField): boolean {
  return f.varint !== 0 && f.varint !== 0n;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A LEN payload as UTF-8 text; FormatError when it is not valid UTF-8. */
export function fieldString(f: ProtoField, ctx: ProtoContext, what: string): string {
  try {
    return utf8.decode(f.bytes!);
  } catch {
    throw new FormatError(`Cannot parse ${ctx.format}: ${what} is not valid UTF-8`, {
      format: ctx.format,
      offset: f.offset,
      path: ctx.path,
    });
  }
}

/** Appends protobuf fields to a growing buffer. */
export class ProtoWriter {
  #buf = new Uint8Array(64);
  #view = new DataView(this.#buf.buffer);
  #len = 0;

  #ensure(extra: number): void {
    if (this.#len + extra <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Appends raw bytes (e.g. a preserved unknown field). */
  raw(bytes: Uint8Array): this {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    return this;
  }

  /** Appends an unsigned varint (number ≤ 2^53 or bigint < 2^64). */
  varint(v: number | bigint): this {
    this.#ensure(10);
    if (typeof v === "number" && v >= 0 && v < 2 ** 31) {
      while (v >= 0x80) {
        this.#buf[this.#len++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.#buf[this.#len++] = v;
      return this;
    }
    let b = BigInt.asUintN(64, BigInt(v));
    while (b >= 0x80n) {
      this.#buf[this.#len++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.#buf[this.#len++] = Number(b);
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** int32 field: negative values are sign-extended to 64 bits (10 bytes), as protobuf does. */
  int32(field: number, v: number): this {
    return this.tag(field, WIRE_VARINT).varint(v < 0 ? BigInt.asUintN(64, BigInt(v)) : v);
  }

  uint64(field: number, v: number | bigint): this {
    return this.tag(field, WIRE_VARINT).varint(v);
  }

  bool(field: number, v: boolean): this {
    return this.tag(field, WIRE_VARINT).varint(v ? 1 : 0);
  }

  float32(field: number, v: number): this {
    this.tag(field, WIRE_I32);
    this.#ensure(4);
    this.#view.setFloat32(this.#len, v, true);
    this.#len += 4;
    return this;
  }

  bytes(field: number, v: Uint8Array): this {
    return this.tag(field, WIRE_LEN).varint(v.length).raw(v);
  }

  string(field: number, v: string): this {
    return this.bytes(field, new TextEncoder().encode(v));
  }

  get length(): number {
    return this.#len;
  }

  /** The bytes written so far (a copy). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}
