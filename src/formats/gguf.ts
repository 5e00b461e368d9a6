/**
 * GGUF v2/v3 reader. Byte layout (all little-endian):
 *   1. magic `GGUF` (u32 0x46554747), version u32 (2 or 3), tensor_count u64, kv_count u64;
 *   2. kv_count × { key: gguf_string, value_type u32, value } — gguf_string = u64 length + UTF-8 bytes (no NUL);
 *      ARRAY values are { item_type u32, count u64, count × item } and may nest;
 *   3. tensor_count × { name: gguf_string, n_dims u32 (≤ 4), ne: n_dims × u64 (innermost first), type u32,
 *      offset u64 (relative to the data section, a multiple of the alignment) };
 *   4. zero padding to `general.alignment` (u32, default 32, a power of two), then the data section.
 * Vocab-only files (0 tensors) may end right after the KVs, without the padding: tolerated.
 * see: ggml/docs/gguf.md, ggml/src/gguf.cpp (gguf_init_from_file_impl)
 */
import type { ByteSource } from "../core/byte_source.ts";
import { blockSizeOf, checkedProduct, type DType, dtypeFromGgmlId, nBytesOf } from "../core/dtypes.ts";
import { FormatError, UnsupportedError } from "../core/errors.ts";
import type { TensorInfo } from "../core/tensor.ts";
import { ByteReader } from "./byte_reader.ts";
import {
  GGML_MAX_DIMS,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_TYPE,
  KEY_GENERAL_ALIGNMENT,
} from "./gguf_constants.ts";

export {
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_TYPE,
  GGUF_VERSION,
} from "./gguf_constants.ts";

/** A GGUF metadata value type id (a value of GGUF_TYPE). */
export type GgufValueType = typeof GGUF_TYPE[keyof typeof GGUF_TYPE];

const TYPE_NAMES = new Map<number, string>(Object.entries(GGUF_TYPE).map(([k, v]) => [v, k]));

/** The spec name of a value type ("UINT32", …), for messages and `inspect`. */
export function ggufTypeName(t: number): string {
  return TYPE_NAMES.get(t) ?? `unknown(${t})`;
}

/**
 * A metadata value as plain JS. Integers of every width are `number`, except UINT64/INT64 values outside
 * ±(2^53 − 1), which stay `bigint` (so nothing is rounded). Arrays are plain arrays: `tokenizer.ggml.tokens` is a
 * `string[]`, `tokenizer.ggml.scores` and `token_type` are `number[]`. The exact stored type of every key is in
 * `GgufFile.metadataTypes`, so a file can be rewritten with the same types (see `ggufKvsOf` in gguf_writer.ts).
 * String values are decoded as UTF-8 with invalid sequences replaced by U+FFFD (llama.cpp does not validate them);
 * keys and tensor names must be valid UTF-8. A byte-order mark is kept as U+FEFF (LLaMA's vocab has one).
 */
export type GgufValue = string | number | bigint | boolean | GgufValue[];

/** The stored type of a metadata value; `itemType` for arrays. Nested arrays record only the outer item type. */
export interface GgufTypeInfo {
  type: GgufValueType;
  itemType?: GgufValueType;
}

/** A tensor in a GGUF file: `shape` is row-major (outermost first), `ne` is GGUF's order (innermost first). */
export interface GgufTensorInfo extends TensorInfo {
  ne: number[];
  /** Offset relative to the data section, as stored. */
  relativeOffset: number;
}

/** A parsed GGUF header. Tensor data is not read: use `readTensorBytes`. */
export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  metadataTypes: Map<string, GgufTypeInfo>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section (may equal or exceed the file size for vocab-only files). */
  dataOffset: number;
}

/** Limits on header fields (hostile-file guards); every count is also checked against the bytes left. */
export interface GgufReadOptions {
  /** Longest key or tensor name in bytes (default 65,535). */
  maxNameBytes?: number;
  /** Deepest array nesting (default 4). */
  maxArrayDepth?: number;
}

const MIN_KV_BYTES = 8 + 4 + 1; // empty key, type, smallest value
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8; // empty name, n_dims 0, type, offset
const MIN_ITEM_BYTES: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  8: 8,
  9: 12,
  10: 8,
  11: 8,
  12: 8,
};

/**
 * Parses a GGUF header and tensor table from `source`, validating every count, length, offset and size.
 * Throws FormatError for malformed files and UnsupportedError for valid files we cannot read (GGUF v1, big-endian,
 * tensor types yangtuo does not know).
 *
 * @example
 * ```ts ignore
 * import { readGguf, readTensorBytes } from "./gguf.ts";
 * const f = readGguf(source);
 * f.metadata.get("general.architecture"); // "llama"
 * readTensorBytes(source, f.tensors[0]);
 * ```
 */
export function readGguf(source: ByteSource, options: GgufReadOptions = {}): GgufFile {
  const maxNameBytes = options.maxNameBytes ?? 65535;
  const maxDepth = options.maxArrayDepth ?? 4;
  const r = new ByteReader(source, { format: "gguf" });
  const magic = r.u32("magic");
  if (magic !== GGUF_MAGIC) {
    throw r.error(`Cannot parse GGUF header: bad magic 0x${magic.toString(16).padStart(8, "0")}, expected "GGUF"`, 0);
  }
  const version = r.u32("version");
  if (version === 1) {
    throw new UnsupportedError("Cannot read GGUF v1 (pre-2023-08 files): re-convert the model with a newer llama.cpp");
  }
  if (version !== 2 && version !== 3) {
    if ((version & 0xffff) === 0 && version !== 0) {
      throw new UnsupportedError(`Cannot read big-endian GGUF (version field 0x${version.toString(16)})`);
    }
    throw r.error(`Cannot parse GGUF header: unknown version ${version}, expected 2 or 3`, 4);
  }
  const tensorCount = r.checkCount(
    r.u64("tensor count"),
    Math.floor(r.remaining / MIN_TENSOR_INFO_BYTES),
    "tensor count",
    8,
  );
  const kvCount = r.checkCount(r.u64("kv count"), Math.floor(r.remaining / MIN_KV_BYTES), "kv count", 16);

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufTypeInfo>();
  for (let i = 0; i < kvCount; i++) {
    const at = r.offset;
    const key = readString(r, `key of kv ${i}`, maxNameBytes, false);
    if (metadata.has(key)) throw r.error(`Cannot parse GGUF metadata: duplicate key "${key}"`, at);
    const typeAt = r.offset;
    const type = r.u32(`type of "${key}"`);
    if (!(type in MIN_ITEM_BYTES)) {
      throw r.error(`Cannot parse GGUF metadata: "${key}" has unknown type ${type}`, typeAt);
    }
    if (type === GGUF_TYPE.ARRAY) {
      const itemAt = r.offset;
      const itemType = r.u32(`item type of "${key}"`);
      if (!(itemType in MIN_ITEM_BYTES)) {
        throw r.error(`Cannot parse GGUF metadata: array "${key}" has unknown item type ${itemType}`, itemAt);
      }
      metadata.set(key, readArrayBody(r, itemType, key, 1, maxDepth));
      metadataTypes.set(key, { type, itemType: itemType as GgufValueType });
    } else {
      metadata.set(key, readValue(r, type, key, 0, maxDepth));
      metadataTypes.set(key, { type: type as GgufValueType });
    }
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get(KEY_GENERAL_ALIGNMENT);
  if (al !== undefined) {
    const t = metadataTypes.get(KEY_GENERAL_ALIGNMENT)!.type;
    if (typeof al !== "number" || !Number.isInteger(al) || t === GGUF_TYPE.BOOL) {
      throw r.error(`Cannot parse GGUF header: general.alignment has type ${ggufTypeName(t)}, expected UINT32`);
    }
    if (al <= 0 || al > 1 << 30 || (al & (al - 1)) !== 0) {
      throw r.error(`Cannot parse GGUF header: general.alignment ${al} is not a power of two`);
    }
    alignment = al;
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const at = r.offset;
    const name = readString(r, `name of tensor ${i}`, maxNameBytes, false);
    if (names.has(name)) throw r.error(`Cannot parse GGUF tensor infos: duplicate tensor name "${name}"`, at);
    names.add(name);
    const nDims = r.u32(`n_dims of "${name}"`);
    if (nDims > GGML_MAX_DIMS) {
      throw r.error(`Cannot parse GGUF tensor "${name}": n_dims ${nDims} exceeds ${GGML_MAX_DIMS}`, r.offset - 4);
    }
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const neAt = r.offset;
      const v = r.i64(`ne[${d}] of "${name}"`);
      if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw r.error(`Cannot parse GGUF tensor "${name}": ne[${d}] = ${v} is out of range`, neAt);
      }
      ne.push(Number(v));
    }
    const typeAt = r.offset;
    const typeId = r.u32(`type of "${name}"`);
    const dtype = dtypeFromGgmlId(typeId);
    if (dtype === undefined) {
      throw new UnsupportedError(
        `Cannot read GGUF tensor "${name}": ggml type ${typeId} is not supported (byte ${typeAt})`,
      );
    }
    const relativeOffset = r.u64Number(`offset of "${name}"`);
    const nElements = checkedProduct(ne);
    if (nElements === undefined) {
      throw r.error(`Cannot parse GGUF tensor "${name}": element count of ne [${ne}] overflows`, at);
    }
    const nBytes = tensorBytes(r, dtype, ne, nElements, name, at);
    if (relativeOffset % alignment !== 0) {
      throw r.error(
        `Cannot parse GGUF tensor "${name}": data offset ${relativeOffset} is not a multiple of the alignment ${alignment}`,
        r.offset - 8,
      );
    }
    tensors.push({
      name,
      dtype,
      shape: ne.slice().reverse(),
      ne,
      relativeOffset,
      byteOffset: relativeOffset, // made absolute below
      nBytes,
    });
  }

  const headerEnd = r.offset;
  const dataOffset = Math.ceil(headerEnd / alignment) * alignment;
  const size = source.size;
  for (const t of tensors) {
    t.byteOffset = dataOffset + t.relativeOffset;
    if (t.byteOffset + t.nBytes > size) {
      throw r.error(
        `Cannot parse GGUF tensor "${t.name}": data [${t.byteOffset}, ${
          t.byteOffset + t.nBytes
        }) extends past the file end ${size}`,
        t.byteOffset,
      );
    }
  }
  checkNoOverlap(tensors, (msg, off) => r.error(msg, off));
  return { version, metadata, metadataTypes, tensors, alignment, dataOffset };
}

/** Bytes of a tensor's data, checking ne[0] is a whole number of blocks (as ggml requires). */
function tensorBytes(r: ByteReader, dtype: DType, ne: number[], n: number, name: string, at: number): number {
  const block = blockSizeOf(dtype);
  if (ne.length > 0 && ne[0] % block !== 0) {
    throw r.error(
      `Cannot parse GGUF tensor "${name}": ne[0] = ${ne[0]} is not a multiple of the ${dtype} block size ${block}`,
      at,
    );
  }
  try {
    return nBytesOf(dtype, n);
  } catch (e) {
    throw r.error(`Cannot parse GGUF tensor "${name}": ${(e as Error).message}`, at, e);
  }
}

/** Throws (via `fail`) when two tensors' byte ranges intersect. Zero-byte tensors never overlap. */
export function checkNoOverlap(
  tensors: readonly TensorInfo[],
  fail: (message: string, offset: number) => Error,
): void {
  const sorted = tensors.filter((t) => t.nBytes > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1], cur = sorted[i];
    if (cur.byteOffset < prev.byteOffset + prev.nBytes) {
      throw fail(
        `Cannot use tensor "${cur.name}": its data at ${cur.byteOffset} overlaps "${prev.name}" [${prev.byteOffset}, ${
          prev.byteOffset + prev.nBytes
        })`,
        cur.byteOffset,
      );
    }
  }
}

function readString(r: ByteReader, what: string, maxBytes: number, lossy: boolean): string {
  const n = r.u64(`length of ${what}`);
  if (n > BigInt(r.remaining)) {
    throw r.error(`Cannot read ${what}: length ${n} exceeds the ${r.remaining} bytes left`, r.offset - 8);
  }
  return r.string(Number(n), what, { maxBytes, lossy });
}

function readValue(r: ByteReader, type: number, key: string, depth: number, maxDepth: number): GgufValue {
  switch (type) {
    case GGUF_TYPE.UINT8:
      return r.u8(key);
    case GGUF_TYPE.INT8:
      return r.i8(key);
    case GGUF_TYPE.UINT16:
      return r.u16(key);
    case GGUF_TYPE.INT16:
      return r.i16(key);
    case GGUF_TYPE.UINT32:
      return r.u32(key);
    case GGUF_TYPE.INT32:
      return r.i32(key);
    case GGUF_TYPE.FLOAT32:
      return r.f32(key);
    case GGUF_TYPE.FLOAT64:
      return r.f64(key);
    case GGUF_TYPE.BOOL: {
      const at = r.offset;
      const b = r.u8(key);
      if (b > 1) throw r.error(`Cannot parse GGUF metadata: "${key}" has bool value ${b}`, at);
      return b === 1;
    }
    case GGUF_TYPE.STRING:
      return readString(r, `value of "${key}"`, Number.MAX_SAFE_INTEGER, true);
    case GGUF_TYPE.UINT64: {
      const v = r.u64(key);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case GGUF_TYPE.INT64: {
      const v = r.i64(key);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
    }
    case GGUF_TYPE.ARRAY: {
      const at = r.offset;
      const itemType = r.u32(`item type of "${key}"`);
      if (!(itemType in MIN_ITEM_BYTES)) {
        throw r.error(`Cannot parse GGUF metadata: array "${key}" has unknown item type ${itemType}`, at);
      }
      return readArrayBody(r, itemType, key, depth + 1, maxDepth);
    }
    default:
      throw r.error(`Cannot parse GGUF metadata: "${key}" has unknown type ${type}`);
  }
}

function readArrayBody(r: ByteReader, itemType: number, key: string, depth: number, maxDepth: number): GgufValue[] {
  if (depth > maxDepth) throw r.error(`Cannot parse GGUF metadata: "${key}" nests arrays deeper than ${maxDepth}`);
  const at = r.offset;
  const count = r.checkCount(
    r.u64(`count of "${key}"`),
    Math.floor(r.remaining / MIN_ITEM_BYTES[itemType]),
    `array "${key}"`,
    at,
  );
  const out: GgufValue[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = readValue(r, itemType, key, depth, maxDepth);
  return out;
}

/**
 * The bytes of one tensor (exactly `info.nBytes`), read positionally: cost is proportional to the tensor, not the
 * file. Throws FormatError when the range lies outside the source.
 */
export function readTensorBytes(source: ByteSource, info: TensorInfo): Uint8Array {
  if (info.byteOffset < 0 || info.byteOffset + info.nBytes > source.size) {
    throw new FormatError(
      `Cannot read tensor "${info.name}": [${info.byteOffset}, ${
        info.byteOffset + info.nBytes
      }) is outside the file (${source.size} bytes)`,
      { format: "tensor", offset: info.byteOffset, path: source.name },
    );
  }
  return source.read(info.byteOffset, info.nBytes);
}

/** A metadata value by key, checked to be a string (undefined when absent). */
export function ggufString(file: GgufFile, key: string): string | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new TypeError(`GGUF key "${key}" is ${typeof v}, expected a string`);
  return v;
}

/** A metadata value by key, checked to be a safe-integer or float number (undefined when absent). */
export function ggufNumber(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "number") throw new TypeError(`GGUF key "${key}" is ${typeof v}, expected a number`);
  return v;
}
