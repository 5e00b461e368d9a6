/**
 * Streaming GGUF v3 writer. The header — all KVs and every tensor info with its cumulative padded offset — is
 * computed from the declared dtypes and shapes and written first; then each tensor's bytes are produced one at a time
 * (a callback may compute or read them), written, and zero-padded to the alignment, as llama.cpp's gguf writer does
 * (so the file size is a multiple of the alignment and llama.cpp's offset check `offset == expected` holds).
 * Layout: see gguf.ts. see: ggml/src/gguf.cpp (gguf_write_to_buf), gguf-py/gguf/gguf_writer.py
 */
import type { ByteSink } from "../core/byte_source.ts";
import { blockSizeOf, checkedProduct, type DType, ggmlIdOf, nBytesOf } from "../core/dtypes.ts";
import { UnsupportedError } from "../core/errors.ts";
import { ByteWriter } from "./byte_writer.ts";
import { type GgufFile, ggufTypeName, type GgufValue, type GgufValueType } from "./gguf.ts";
import {
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_TYPE,
  GGUF_VERSION,
  KEY_GENERAL_ALIGNMENT,
} from "./gguf_constants.ts";

/** One metadata key/value with its stored type (itemType for arrays). */
export interface GgufKv {
  key: string;
  type: GgufValueType;
  itemType?: GgufValueType;
  value: GgufValue;
}

/** Tensor bytes, or a function producing them when the writer reaches this tensor. */
export type TensorData = Uint8Array | (() => Uint8Array | Promise<Uint8Array>);

/**
 * The bytes of tensor `t` when a writer reaches it (computed now if `t.data` is a function), checked against the
 * `nBytes` its header already promised. Shared by the GGUF and safetensors writers.
 */
export async function tensorDataOf(
  format: string,
  t: { name: string; dtype: DType; shape: readonly number[]; data: TensorData },
  nBytes: number,
): Promise<Uint8Array> {
  const data = typeof t.data === "function" ? await t.data() : t.data;
  if (!(data instanceof Uint8Array) || data.length !== nBytes) {
    throw new RangeError(
      `Cannot write ${format} tensor "${t.name}": expected ${nBytes} bytes of ${t.dtype} [${t.shape}], got ${
        data instanceof Uint8Array ? data.length : typeof data
      }`,
    );
  }
  return data;
}

/** A tensor to write: `shape` row-major (outermost first); ne is its reverse. */
export interface GgufWriterTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  data: TensorData;
}

/** What writeGguf writes. */
export interface GgufWriteSpec {
  metadata: GgufKv[];
  tensors: GgufWriterTensor[];
  /** Data alignment (power of two); default: `general.alignment` from metadata, else 32. */
  alignment?: number;
}

const T = GGUF_TYPE;

/**
 * Typed KV constructors.
 *
 * @example
 * ```ts
 * import { ggufKv } from "./gguf_writer.ts";
 * const kvs = [ggufKv.string("general.architecture", "llama"), ggufKv.u32("llama.block_count", 32)];
 * ```
 */
export const ggufKv = {
  u8: (key: string, value: number): GgufKv => ({ key, type: T.UINT8, value }),
  i8: (key: string, value: number): GgufKv => ({ key, type: T.INT8, value }),
  u16: (key: string, value: number): GgufKv => ({ key, type: T.UINT16, value }),
  i16: (key: string, value: number): GgufKv => ({ key, type: T.INT16, value }),
  u32: (key: string, value: number): GgufKv => ({ key, type: T.UINT32, value }),
  i32: (key: string, value: number): GgufKv => ({ key, type: T.INT32, value }),
  u64: (key: string, value: number | bigint): GgufKv => ({ key, type: T.UINT64, value }),
  i64: (key: string, value: number | bigint): GgufKv => ({ key, type: T.INT64, value }),
  f32: (key: string, value: number): GgufKv => ({ key, type: T.FLOAT32, value }),
  f64: (key: string, value: number): GgufKv => ({ key, type: T.FLOAT64, value }),
  bool: (key: string, value: boolean): GgufKv => ({ key, type: T.BOOL, value }),
  string: (key: string, value: string): GgufKv => ({ key, type: T.STRING, value }),
  array: (key: string, itemType: GgufValueType, value: GgufValue[]): GgufKv => ({
    key,
    type: T.ARRAY,
    itemType,
    value,
  }),
  arrayString: (key: string, value: readonly string[]): GgufKv => ggufKv.array(key, T.STRING, [...value]),
  arrayF32: (key: string, value: ArrayLike<number>): GgufKv => ggufKv.array(key, T.FLOAT32, Array.from(value)),
  arrayI32: (key: string, value: ArrayLike<number>): GgufKv => ggufKv.array(key, T.INT32, Array.from(value)),
  arrayU32: (key: string, value: ArrayLike<number>): GgufKv => ggufKv.array(key, T.UINT32, Array.from(value)),
  /**
   * Infers the type from a JS value like gguf-py does: string → STRING, boolean → BOOL, integer → INT32 (or INT64 /
   * UINT64 beyond int32), other number → FLOAT32, bigint → INT64/UINT64, array → ARRAY of the first item's type.
   */
  infer: (key: string, value: GgufValue): GgufKv => {
    if (Array.isArray(value)) {
      if (value.some(Array.isArray)) throw new UnsupportedError(`Cannot infer a GGUF type for nested array "${key}"`);
      const itemType = value.length === 0 ? T.INT32 : inferScalarType(key, value);
      return { key, type: T.ARRAY, itemType, value };
    }
    return { key, type: inferScalarType(key, [value]), value };
  },
};

function inferScalarType(key: string, values: readonly GgufValue[]): GgufValueType {
  const kinds = new Set(values.map((v) => typeof v));
  if (kinds.size !== 1) throw new TypeError(`Cannot infer a GGUF type for "${key}": mixed ${[...kinds].join(", ")}`);
  const kind = [...kinds][0];
  if (kind === "string") return T.STRING;
  if (kind === "boolean") return T.BOOL;
  if (kind === "bigint") return (values as bigint[]).some((v) => v < 0n) ? T.INT64 : T.UINT64;
  if (kind !== "number") throw new TypeError(`Cannot infer a GGUF type for "${key}": ${kind}`);
  const nums = values as number[];
  if (!nums.every(Number.isInteger)) return T.FLOAT32;
  if (nums.every((v) => v >= -0x80000000 && v <= 0x7fffffff)) return T.INT32;
  return nums.some((v) => v < 0) ? T.INT64 : T.UINT64;
}

/** The KVs of a parsed file with their stored types, in file order (for rewriting a file, e.g. when quantizing). */
export function ggufKvsOf(file: Pick<GgufFile, "metadata" | "metadataTypes">): GgufKv[] {
  return [...file.metadata].map(([key, value]) => {
    const t = file.metadataTypes.get(key);
    if (!t) throw new TypeError(`Cannot copy GGUF key "${key}": its type is unknown`);
    return { key, type: t.type, itemType: t.itemType, value };
  });
}

function encodeValue(w: ByteWriter, type: number, value: GgufValue, key: string): void {
  const bad = () => new TypeError(`Cannot write GGUF key "${key}": ${typeof value} is not a ${ggufTypeName(type)}`);
  const num = (): number => {
    if (typeof value !== "number") throw bad();
    return value;
  };
  try {
    switch (type) {
      case T.UINT8:
        return w.u8(num());
      case T.INT8:
        return w.i8(num());
      case T.UINT16:
        return w.u16(num());
      case T.INT16:
        return w.i16(num());
      case T.UINT32:
        return w.u32(num());
      case T.INT32:
        return w.i32(num());
      case T.FLOAT32:
        return w.f32(num());
      case T.FLOAT64:
        return w.f64(num());
      case T.UINT64:
      case T.INT64:
        if (typeof value !== "number" && typeof value !== "bigint") throw bad();
        return type === T.UINT64 ? w.u64(value) : w.i64(value);
      case T.BOOL:
        if (typeof value !== "boolean") throw bad();
        return w.u8(value ? 1 : 0);
      case T.STRING:
        if (typeof value !== "string") throw bad();
        return encodeString(w, value);
      default:
        throw new TypeError(`Cannot write GGUF key "${key}": unknown value type ${type}`);
    }
  } catch (e) {
    if (e instanceof RangeError) throw new RangeError(`Cannot write GGUF key "${key}": ${e.message}`);
    throw e;
  }
}

const UTF8 = new TextEncoder();

function encodeString(w: ByteWriter, s: string): void {
  const b = UTF8.encode(s);
  w.u64(b.length);
  w.bytes(b);
}

function encodeKv(w: ByteWriter, kv: GgufKv): void {
  encodeString(w, kv.key);
  w.u32(kv.type);
  if (kv.type !== T.ARRAY) {
    encodeValue(w, kv.type, kv.value, kv.key);
    return;
  }
  if (!Array.isArray(kv.value)) throw new TypeError(`Cannot write GGUF key "${kv.key}": ARRAY value is not an array`);
  const itemType = kv.itemType;
  if (itemType === undefined) throw new TypeError(`Cannot write GGUF key "${kv.key}": ARRAY needs an itemType`);
  if (itemType === T.ARRAY) {
    throw new UnsupportedError(
      `Cannot write GGUF key "${kv.key}": nested arrays are not written (llama.cpp rejects them)`,
    );
  }
  w.u32(itemType);
  w.u64(kv.value.length);
  for (const v of kv.value) {
    encodeValue(w, itemType, v, kv.key);
  }
}

/** Validates a spec and returns the header bytes plus each tensor's padded size. */
export function encodeGgufHeader(spec: GgufWriteSpec): { header: Uint8Array; alignment: number; nBytes: number[] } {
  const keys = new Set<string>();
  for (const kv of spec.metadata) {
    if (keys.has(kv.key)) throw new RangeError(`Cannot write GGUF: duplicate key "${kv.key}"`);
    keys.add(kv.key);
  }
  const alKv = spec.metadata.find((kv) => kv.key === KEY_GENERAL_ALIGNMENT);
  let alignment = spec.alignment ?? (typeof alKv?.value === "number" ? alKv.value : GGUF_DEFAULT_ALIGNMENT);
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment > 1 << 30 || (alignment & (alignment - 1)) !== 0) {
    throw new RangeError(`Cannot write GGUF: alignment ${alignment} is not a power of two`);
  }
  const metadata = [...spec.metadata];
  if (alKv) {
    if (alKv.type !== T.UINT32 || alKv.value !== alignment) {
      throw new RangeError(
        `Cannot write GGUF: general.alignment (${
          ggufTypeName(alKv.type)
        } ${alKv.value}) disagrees with alignment ${alignment}`,
      );
    }
  } else if (alignment !== GGUF_DEFAULT_ALIGNMENT) {
    metadata.push(ggufKv.u32(KEY_GENERAL_ALIGNMENT, alignment));
  }
  alignment = alignment | 0;

  const names = new Set<string>();
  const sizes: number[] = [];
  const w = new ByteWriter(1 << 16);
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(spec.tensors.length);
  w.u64(metadata.length);
  for (const kv of metadata) encodeKv(w, kv);
  let offset = 0;
  for (const t of spec.tensors) {
    if (names.has(t.name)) throw new RangeError(`Cannot write GGUF: duplicate tensor name "${t.name}"`);
    names.add(t.name);
    if (UTF8.encode(t.name).length >= GGML_MAX_NAME) {
      throw new RangeError(`Cannot write GGUF tensor "${t.name}": name is ${GGML_MAX_NAME} bytes or longer`);
    }
    if (t.shape.length > GGML_MAX_DIMS) {
      throw new RangeError(`Cannot write GGUF tensor "${t.name}": ${t.shape.length} dims exceeds ${GGML_MAX_DIMS}`);
    }
    const n = checkedProduct(t.shape);
    if (n === undefined) throw new RangeError(`Cannot write GGUF tensor "${t.name}": bad shape [${t.shape}]`);
    const ne = [...t.shape].reverse();
    const block = blockSizeOf(t.dtype);
    if (ne.length > 0 && ne[0] % block !== 0) {
      throw new RangeError(
        `Cannot write GGUF tensor "${t.name}": row length ${
          ne[0]
        } is not a multiple of the ${t.dtype} block size ${block}`,
      );
    }
    const nBytes = nBytesOf(t.dtype, n);
    sizes.push(nBytes);
    encodeString(w, t.name);
    w.u32(ne.length);
    for (const d of ne) w.u64(d);
    w.u32(ggmlIdOf(t.dtype));
    w.u64(offset);
    offset += Math.ceil(nBytes / alignment) * alignment;
  }
  w.padTo(alignment);
  return { header: w.finish(), alignment, nBytes: sizes };
}

/**
 * Writes a GGUF v3 file to `sink`, streaming: header first, then each tensor's bytes (callbacks are called in order,
 * one at a time), each padded with zeros to the alignment. Throws RangeError/TypeError on an invalid spec before
 * writing anything, and RangeError when a tensor's data has the wrong length.
 *
 * @example
 * ```ts
 * import { BytesSink } from "../core/byte_source.ts";
 * import { ggufKv, writeGguf } from "./gguf_writer.ts";
 * const sink = new BytesSink();
 * await writeGguf(sink, {
 *   metadata: [ggufKv.string("general.architecture", "llama")],
 *   tensors: [{ name: "x", dtype: "F32", shape: [2], data: new Uint8Array(8) }],
 * });
 * ```
 */
export async function writeGguf(sink: ByteSink, spec: GgufWriteSpec): Promise<void> {
  const { header, alignment, nBytes } = encodeGgufHeader(spec);
  const start = sink.position;
  sink.write(header);
  const zeros = new Uint8Array(alignment);
  for (let i = 0; i < spec.tensors.length; i++) {
    sink.write(await tensorDataOf("GGUF", spec.tensors[i], nBytes[i]));
    const pad = (alignment - ((sink.position - start) % alignment)) % alignment;
    if (pad) sink.write(zeros.subarray(0, pad));
  }
}
