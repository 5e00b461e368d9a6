/**
 * ByteReader: a bounds-checked little-endian cursor over a ByteSource or Uint8Array. Every overrun, every length
 * past the end and every 64-bit value that does not fit where it must becomes a FormatError naming the format, the
 * field and the byte offset — so format parsers never see a RangeError from a typed array or allocate from an
 * unchecked length.
 * see: ../shared/STYLE.md "Errors and bad input"
 */
import { type ByteSource, BytesSource } from "../core/byte_source.ts";
import { FormatError } from "../core/errors.ts";

/** Options for a ByteReader. */
export interface ByteReaderOptions {
  /** Format name for FormatError, e.g. "gguf". */
  format: string;
  /** Starting offset (default 0). */
  offset?: number;
  /** Exclusive end of the readable range (default: the source size). */
  end?: number;
  /** Path for error messages (default: the source's name). */
  path?: string;
  /** Bytes fetched from the source per window (default 64 KiB); sources over memory are not copied. */
  windowBytes?: number;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const UTF8_LOSSY = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A little-endian cursor. Reads from a ByteSource go through a small window, so parsing a header field by field
 * costs one source read per window, not one per field.
 *
 * @example
 * ```ts
 * import { ByteReader } from "./byte_reader.ts";
 * const r = new ByteReader(new Uint8Array([1, 0, 0, 0, 2, 0]), { format: "demo" });
 * r.u32(); // 1
 * r.u16(); // 2
 * ```
 */
export class ByteReader {
  readonly source: ByteSource;
  readonly format: string;
  readonly path?: string;
  /** Exclusive end of the readable range. */
  readonly end: number;
  /** Current absolute offset. */
  offset: number;
  #win: Uint8Array = new Uint8Array(0);
  #winStart = 0;
  #view: DataView = new DataView(new ArrayBuffer(0));
  readonly #windowBytes: number;
  readonly #inMemory: boolean;

  constructor(source: ByteSource | Uint8Array, options: ByteReaderOptions) {
    this.source = source instanceof Uint8Array ? new BytesSource(source) : source;
    this.format = options.format;
    this.path = options.path ?? this.source.name;
    this.offset = options.offset ?? 0;
    this.end = options.end ?? this.source.size;
    this.#windowBytes = options.windowBytes ?? 1 << 16;
    if (!Number.isSafeInteger(this.end) || this.end < 0 || this.end > this.source.size) {
      throw new RangeError(`Cannot create reader: end ${this.end} is outside the source (${this.source.size} bytes)`);
    }
    if (!Number.isSafeInteger(this.offset) || this.offset < 0 || this.offset > this.end) {
      throw new RangeError(`Cannot create reader: offset ${this.offset} is outside [0, ${this.end}]`);
    }
    this.#inMemory = this.source instanceof BytesSource;
    if (this.#inMemory) {
      this.#win = (this.source as BytesSource).bytes.subarray(0, this.end);
      this.#view = new DataView(this.#win.buffer, this.#win.byteOffset, this.#win.byteLength);
    }
  }

  /** Bytes left before `end`. */
  get remaining(): number {
    return this.end - this.offset;
  }

  /** A FormatError for this reader's format and path, at `offset` (default: the cursor). */
  error(message: string, offset: number = this.offset, cause?: unknown): FormatError {
    return new FormatError(message, { format: this.format, offset, path: this.path, cause });
  }

  /** Throws a FormatError unless `n` more bytes (for `what`) are available. */
  need(n: number, what: string): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw this.error(`Cannot read ${what}: invalid length ${n}`);
    }
    if (n > this.end - this.offset) {
      throw this.error(
        `Cannot read ${what}: needs ${n} bytes but only ${this.end - this.offset} remain of ${this.end}`,
      );
    }
  }

  /** Makes [offset, offset+n) addressable in the window; returns the window index of `offset`. */
  #at(n: number, what: string): number {
    this.need(n, what);
    if (this.#inMemory) return this.offset;
    const rel = this.offset - this.#winStart;
    if (rel >= 0 && rel + n <= this.#win.length) return rel;
    const len = Math.min(Math.max(n, this.#windowBytes), this.end - this.offset);
    this.#win = this.#readSource(this.offset, len, what);
    this.#winStart = this.offset;
    this.#view = new DataView(this.#win.buffer, this.#win.byteOffset, this.#win.byteLength);
    return 0;
  }

  #readSource(offset: number, n: number, what: string): Uint8Array {
    try {
      return this.source.read(offset, n);
    } catch (e) {
      if (e instanceof RangeError) throw this.error(`Cannot read ${what}: ${e.message}`, offset, e);
      throw e;
    }
  }

  /** Moves the cursor to absolute `offset` (must be within [0, end]). */
  seek(offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.end) {
      throw this.error(`Cannot seek to ${offset}: outside [0, ${this.end}]`);
    }
    this.offset = offset;
  }

  /** Advances the cursor by `n` bytes. */
  skip(n: number, what = "bytes"): void {
    this.need(n, what);
    this.offset += n;
  }

  /** An unsigned byte. `what` names the field in errors. */
  u8(what = "u8"): number {
    const i = this.#at(1, what);
    this.offset += 1;
    return this.#win[i];
  }
  /** A signed byte. `what` names the field in errors. */
  i8(what = "i8"): number {
    const i = this.#at(1, what);
    this.offset += 1;
    return this.#view.getInt8(i);
  }
  /** A little-endian u16. `what` names the field in errors. */
  u16(what = "u16"): number {
    const i = this.#at(2, what);
    this.offset += 2;
    return this.#view.getUint16(i, true);
  }
  /** A little-endian i16. `what` names the field in errors. */
  i16(what = "i16"): number {
    const i = this.#at(2, what);
    this.offset += 2;
    return this.#view.getInt16(i, true);
  }
  /** A little-endian u32. `what` names the field in errors. */
  u32(what = "u32"): number {
    const i = this.#at(4, what);
    this.offset += 4;
    return this.#view.getUint32(i, true);
  }
  /** A little-endian i32. `what` names the field in errors. */
  i32(what = "i32"): number {
    const i = this.#at(4, what);
    this.offset += 4;
    return this.#view.getInt32(i, true);
  }
  /** A little-endian u64, as bigint. `what` names the field in errors. */
  u64(what = "u64"): bigint {
    const i = this.#at(8, what);
    this.offset += 8;
    return this.#view.getBigUint64(i, true);
  }
  /** A little-endian i64, as bigint. `what` names the field in errors. */
  i64(what = "i64"): bigint {
    const i = this.#at(8, what);
    this.offset += 8;
    return this.#view.getBigInt64(i, true);
  }
  /** A u64 that must be a safe integer (a count, length or offset); FormatError otherwise. */
  u64Number(what = "u64"): number {
    const at = this.offset;
    const v = this.u64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.error(`Cannot read ${what}: ${v} exceeds 2^53 - 1`, at);
    return Number(v);
  }
  /** An i64 that must be a safe integer; FormatError otherwise. */
  i64Number(what = "i64"): number {
    const at = this.offset;
    const v = this.i64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw this.error(`Cannot read ${what}: ${v} is not a safe integer`, at);
    }
    return Number(v);
  }
  /** A little-endian IEEE f32. `what` names the field in errors. */
  f32(what = "f32"): number {
    const i = this.#at(4, what);
    this.offset += 4;
    return this.#view.getFloat32(i, true);
  }
  /** A little-endian IEEE f64. `what` names the field in errors. */
  f64(what = "f64"): number {
    const i = this.#at(8, what);
    this.offset += 8;
    return this.#view.getFloat64(i, true);
  }
  /** A u32/u64 count that must be ≤ `max` (e.g. remaining bytes / minimum item size). */
  checkCount(n: number | bigint, max: number, what: string, at: number = this.offset): number {
    if (typeof n === "bigint" ? n > BigInt(max) : n > max) {
      throw this.error(`Cannot read ${what}: count ${n} exceeds the ${max} that fit in the file`, at);
    }
    return Number(n);
  }

  /**
   * `n` bytes at the cursor. The result may be a view into the source's memory (BytesSource) or the window; copy
   * it if you keep it past the next read.
   */
  bytes(n: number, what = "bytes"): Uint8Array {
    if (this.#inMemory) {
      this.need(n, what);
      const out = this.#win.subarray(this.offset, this.offset + n);
      this.offset += n;
      return out;
    }
    if (n <= this.#windowBytes) {
      const i = this.#at(n, what);
      this.offset += n;
      return this.#win.subarray(i, i + n);
    }
    this.need(n, what);
    const out = this.#readSource(this.offset, n, what);
    this.offset += n;
    return out;
  }

  /**
   * A UTF-8 string of `nBytes` bytes (at most `maxBytes`). With `lossy`, invalid UTF-8 becomes U+FFFD; otherwise
   * it is a FormatError.
   */
  string(nBytes: number, what = "string", { maxBytes = 1 << 24, lossy = false } = {}): string {
    const at = this.offset;
    if (nBytes > maxBytes) throw this.error(`Cannot read ${what}: length ${nBytes} exceeds the limit ${maxBytes}`);
    const b = this.bytes(nBytes, what);
    if (lossy) return UTF8_LOSSY.decode(b);
    try {
      return UTF8.decode(b);
    } catch (e) {
      throw this.error(`Cannot read ${what}: invalid UTF-8`, at, e);
    }
  }
}
