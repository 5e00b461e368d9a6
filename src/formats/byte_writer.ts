/**
 * ByteWriter: a growable little-endian buffer for building headers (GGUF, safetensors, pickle) before they are
 * written to a ByteSink. Values are range-checked: writing 2^32 as a u32 is a RangeError, not silent wrap-around.
 */

const UTF8 = new TextEncoder();

/**
 * @example
 * ```ts
 * import { ByteWriter } from "./byte_writer.ts";
 * const w = new ByteWriter();
 * w.u32(1);
 * w.u64(2n);
 * w.finish().length; // 12
 * ```
 */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  /** Bytes written so far. */
  length = 0;

  /** A writer with `initialBytes` of capacity (it grows as needed). */
  constructor(initialBytes = 256) {
    this.#buf = new Uint8Array(initialBytes);
    this.#view = new DataView(this.#buf.buffer);
  }

  #grow(n: number): number {
    const need = this.length + n;
    if (need > this.#buf.length) {
      const next = new Uint8Array(Math.max(need, this.#buf.length * 2));
      next.set(this.#buf.subarray(0, this.length));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length = need;
    return at;
  }

  /** Appends `v` as a little-endian u8 (RangeError when out of range). */
  u8(v: number): void {
    intCheck(v, 0, 0xff, "u8");
    const at = this.#grow(1);
    this.#buf[at] = v;
  }
  /** Appends `v` as a little-endian i8 (RangeError when out of range). */
  i8(v: number): void {
    intCheck(v, -0x80, 0x7f, "i8");
    const at = this.#grow(1);
    this.#view.setInt8(at, v);
  }
  /** Appends `v` as a little-endian u16 (RangeError when out of range). */
  u16(v: number): void {
    intCheck(v, 0, 0xffff, "u16");
    const at = this.#grow(2);
    this.#view.setUint16(at, v, true);
  }
  /** Appends `v` as a little-endian i16 (RangeError when out of range). */
  i16(v: number): void {
    intCheck(v, -0x8000, 0x7fff, "i16");
    const at = this.#grow(2);
    this.#view.setInt16(at, v, true);
  }
  /** Appends `v` as a little-endian u32 (RangeError when out of range). */
  u32(v: number): void {
    intCheck(v, 0, 0xffffffff, "u32");
    const at = this.#grow(4);
    this.#view.setUint32(at, v, true);
  }
  /** Appends `v` as a little-endian i32 (RangeError when out of range). */
  i32(v: number): void {
    intCheck(v, -0x80000000, 0x7fffffff, "i32");
    const at = this.#grow(4);
    this.#view.setInt32(at, v, true);
  }
  /** Appends `v` as a little-endian u64 (RangeError when out of range). */
  u64(v: number | bigint): void {
    const b = toBig(v, "u64");
    if (b < 0n || b > 0xffffffffffffffffn) throw new RangeError(`Cannot write u64: ${v} is out of range`);
    const at = this.#grow(8);
    this.#view.setBigUint64(at, b, true);
  }
  /** Appends `v` as a little-endian i64 (RangeError when out of range). */
  i64(v: number | bigint): void {
    const b = toBig(v, "i64");
    if (b < -(1n << 63n) || b >= 1n << 63n) throw new RangeError(`Cannot write i64: ${v} is out of range`);
    const at = this.#grow(8);
    this.#view.setBigInt64(at, b, true);
  }
  /** Appends `v` as a little-endian IEEE f32. */
  f32(v: number): void {
    const at = this.#grow(4);
    this.#view.setFloat32(at, v, true);
  }
  /** Appends `v` as a little-endian IEEE f64. */
  f64(v: number): void {
    const at = this.#grow(8);
    this.#view.setFloat64(at, v, true);
  }
  /** Appends raw bytes. */
  bytes(b: Uint8Array): void {
    const at = this.#grow(b.length);
    this.#buf.set(b, at);
  }
  /** Zero bytes up to the next multiple of `alignment` (relative to `base`, the writer's offset in its file). */
  padTo(alignment: number, base = 0): void {
    const pad = (alignment - ((base + this.length) % alignment)) % alignment;
    this.#grow(pad);
    this.#buf.fill(0, this.length - pad, this.length);
  }
  /** UTF-8 bytes of `s`, without a length prefix. */
  utf8(s: string): Uint8Array {
    const b = UTF8.encode(s);
    this.bytes(b);
    return b;
  }
  /** The bytes written (a copy). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

function intCheck(v: number, lo: number, hi: number, what: string): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`Cannot write ${what}: ${v} is out of range`);
}

function toBig(v: number | bigint, what: string): bigint {
  if (typeof v === "bigint") return v;
  if (!Number.isSafeInteger(v)) throw new RangeError(`Cannot write ${what}: ${v} is not a safe integer`);
  return BigInt(v);
}
