/**
 * safetensors reader and streaming writer, plus sharded folders (`model.safetensors.index.json`). Byte layout:
 *   1. header size N: u64 little-endian;
 *   2. N bytes of UTF-8 JSON: `{"__metadata__": {string: string}?, "<name>": {"dtype": "F16", "shape": [..],
 *      "data_offsets": [begin, end]}, …}`, offsets relative to the data section; HF pads the JSON with spaces so
 *      that 8 + N is a multiple of 8;
 *   3. the data section: tensors' bytes, row-major, little-endian, no gaps in files HF writes.
 * Validation: N ≤ 100 MB and ≤ the file, JSON an object, known dtypes, end − begin = shape × dtype size, ranges inside
 * the data section and not overlapping, names unique (JSON.parse keeps the last duplicate, so duplicates are found
 * by a scan of the raw JSON keys).
 * see: huggingface/safetensors README "Format", safetensors/src/tensor.rs (validate), transformers sharding index
 */
import type { ByteSink, ByteSource } from "../core/byte_source.ts";
import { checkedProduct, type DType, nBytesOf } from "../core/dtypes.ts";
import { FormatError, UnsupportedError } from "../core/errors.ts";
import type { TensorInfo } from "../core/tensor.ts";
import { ByteReader } from "./byte_reader.ts";
import { checkNoOverlap } from "./gguf.ts";
import { type TensorData, tensorDataOf } from "./gguf_writer.ts";

/** Largest header we accept (the safetensors crate's limit). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

const DTYPES: Record<string, DType> = {
  F64: "F64",
  F32: "F32",
  F16: "F16",
  BF16: "BF16",
  I64: "I64",
  I32: "I32",
  I16: "I16",
  I8: "I8",
  U8: "U8",
  BOOL: "BOOL",
};

/** A parsed safetensors file: `tensors` have absolute byte offsets, in file order. */
export interface SafetensorsFile {
  /** The `__metadata__` map (string → string), empty when absent. */
  metadata: Record<string, string>;
  tensors: TensorInfo[];
  /** Absolute offset of the data section (8 + N). */
  dataOffset: number;
}

/**
 * Parses a safetensors header and validates every tensor range. Throws FormatError for malformed files and
 * UnsupportedError for dtypes yangtuo does not read (F8_*, U16, …).
 *
 * @example
 * ```ts ignore
 * import { readSafetensors } from "./safetensors.ts";
 * const { metadata, tensors } = readSafetensors(source);
 * ```
 */
export function readSafetensors(source: ByteSource): SafetensorsFile {
  const r = new ByteReader(source, { format: "safetensors" });
  const n = r.u64("header size");
  if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw r.error(
      `Cannot parse safetensors header: size ${n} exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`,
      0,
    );
  }
  if (n > BigInt(r.remaining)) {
    throw r.error(`Cannot parse safetensors header: size ${n} exceeds the ${r.remaining} bytes after it`, 0);
  }
  const headerBytes = Number(n);
  const text = r.string(headerBytes, "header JSON", { maxBytes: SAFETENSORS_MAX_HEADER_BYTES });
  const dataOffset = 8 + headerBytes;
  const dataSize = source.size - dataOffset;
  if (!text.startsWith("{")) throw r.error(`Cannot parse safetensors header: JSON does not start with "{"`, 8);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw r.error(`Cannot parse safetensors header: ${(e as Error).message}`, 8, e);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw r.error("Cannot parse safetensors header: JSON is not an object", 8);
  }
  const dup = firstDuplicateKey(text);
  if (dup !== undefined) throw r.error(`Cannot parse safetensors header: duplicate tensor name "${dup}"`, 8);

  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
        throw r.error("Cannot parse safetensors header: __metadata__ is not an object", 8);
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") throw r.error(`Cannot parse safetensors __metadata__: "${k}" is not a string`, 8);
        metadata[k] = v;
      }
      continue;
    }
    const fail = (msg: string) => r.error(`Cannot parse safetensors tensor "${name}": ${msg}`, 8);
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) throw fail("entry is not an object");
    const { dtype: dt, shape, data_offsets: offs } = entry as Record<string, unknown>;
    if (typeof dt !== "string") throw fail("dtype is not a string");
    const dtype = DTYPES[dt];
    if (dtype === undefined) {
      throw new UnsupportedError(`Cannot read safetensors tensor "${name}": dtype "${dt}" is not supported`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offs[0] > offs[1]
    ) {
      throw fail(`data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 ≤ begin ≤ end`);
    }
    const nElements = checkedProduct(shape);
    if (nElements === undefined) throw fail(`element count of shape [${shape}] overflows`);
    let nBytes: number;
    try {
      nBytes = nBytesOf(dtype, nElements);
    } catch (e) {
      throw fail((e as Error).message);
    }
    if (offs[1] - offs[0] !== nBytes) {
      throw fail(`data_offsets span ${offs[1] - offs[0]} bytes but ${dtype} [${shape}] needs ${nBytes}`);
    }
    if (offs[1] > dataSize) {
      throw r.error(
        `Cannot parse safetensors tensor "${name}": data ends at ${offs[1]}, past the ${dataSize}-byte data section`,
        dataOffset + offs[0],
      );
    }
    tensors.push({ name, dtype, shape: shape as number[], byteOffset: dataOffset + offs[0], nBytes });
  }
  checkNoOverlap(tensors, (msg, off) => r.error(msg, off));
  return { metadata, tensors, dataOffset };
}

/**
 * Finds a repeated key among the top-level object's keys by scanning the raw JSON (JSON.parse silently keeps the
 * last one). Only depth-1 keys matter: tensor names and `__metadata__`.
 */
function firstDuplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === "}" || c === "]") depth--;
    else if (c === "," && depth === 1) expectKey = true;
  }
  return undefined;
}

// ---- sharded folders ---------------------------------------------------------------------------------------------

/** A tensor of a sharded model: which shard file holds it. */
export interface ShardedTensorInfo extends TensorInfo {
  file: string;
}

/** A sharded safetensors model read through its index. */
export interface SafetensorsShards {
  /** The index's `metadata` (e.g. total_size). */
  indexMetadata: Record<string, unknown>;
  /** `__metadata__` of the first shard. */
  metadata: Record<string, string>;
  /** Tensors in weight_map order, each with its shard file and absolute offset within it. */
  tensors: ShardedTensorInfo[];
  /** Each shard's ByteSource, by file name. */
  sources: Map<string, ByteSource>;
}

/**
 * Reads a sharded model from the text of `model.safetensors.index.json` and `openShard(file)`, which returns a
 * ByteSource for a shard (file opening stays in src/io). Shard names must be plain file names (no `/`, no `..`).
 * Every tensor in `weight_map` must exist in its shard; a tensor in two shards is a FormatError.
 */
export function readSafetensorsIndex(
  indexJson: string,
  openShard: (file: string) => ByteSource,
): SafetensorsShards {
  const fail = (msg: string) =>
    new FormatError(`Cannot parse safetensors index: ${msg}`, { format: "safetensors-index" });
  let index: unknown;
  try {
    index = JSON.parse(indexJson);
  } catch (e) {
    throw new FormatError(`Cannot parse safetensors index: ${(e as Error).message}`, {
      format: "safetensors-index",
      cause: e,
    });
  }
  if (index === null || typeof index !== "object") throw fail("not a JSON object");
  const { weight_map: wm, metadata } = index as Record<string, unknown>;
  if (wm === null || typeof wm !== "object" || Array.isArray(wm)) throw fail("weight_map is not an object");
  const files: string[] = [];
  for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof file !== "string" || !/^[^/\\]+$/.test(file) || file === "." || file === "..") {
      throw fail(`tensor "${name}" maps to ${JSON.stringify(file)}, not a plain file name`);
    }
    if (!files.includes(file)) files.push(file);
  }
  const sources = new Map<string, ByteSource>();
  const byFile = new Map<string, Map<string, TensorInfo>>();
  let firstMeta: Record<string, string> = {};
  for (const file of files) {
    const src = openShard(file);
    sources.set(file, src);
    const st = readSafetensors(src);
    if (byFile.size === 0) firstMeta = st.metadata;
    byFile.set(file, new Map(st.tensors.map((t) => [t.name, t])));
  }
  const tensors: ShardedTensorInfo[] = [];
  for (const [name, file] of Object.entries(wm as Record<string, string>)) {
    const t = byFile.get(file)!.get(name);
    if (!t) throw fail(`tensor "${name}" is not in its shard "${file}"`);
    tensors.push({ ...t, file });
  }
  return {
    indexMetadata: metadata && typeof metadata === "object" ? metadata as Record<string, unknown> : {},
    metadata: firstMeta,
    tensors,
    sources,
  };
}

// ---- writer --------------------------------------------------------------------------------------------------

/** A tensor to write: row-major `shape`, bytes or a callback producing them. */
export interface SafetensorsWriterTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  data: TensorData;
}

const WRITABLE = new Set<DType>(["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"]);

/** The header bytes (size prefix + space-padded JSON) and each tensor's size, validating the spec. */
export function encodeSafetensorsHeader(
  tensors: readonly SafetensorsWriterTensor[],
  metadata?: Record<string, string>,
): { header: Uint8Array; nBytes: number[] } {
  const obj: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new TypeError(`Cannot write safetensors __metadata__ "${k}": not a string`);
    }
    obj.__metadata__ = metadata;
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    if (t.name === "__metadata__" || Object.hasOwn(obj, t.name)) {
      throw new RangeError(`Cannot write safetensors: duplicate or reserved tensor name "${t.name}"`);
    }
    if (!WRITABLE.has(t.dtype)) {
      throw new UnsupportedError(
        `Cannot write safetensors tensor "${t.name}": dtype ${t.dtype} has no safetensors name`,
      );
    }
    const n = checkedProduct(t.shape);
    if (n === undefined) throw new RangeError(`Cannot write safetensors tensor "${t.name}": bad shape [${t.shape}]`);
    const nBytes = nBytesOf(t.dtype, n);
    sizes.push(nBytes);
    obj[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + nBytes] };
    offset += nBytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, nBytes: sizes };
}

/**
 * Writes a safetensors file, streaming: header first (padded with spaces to 8 bytes, as HF does), then each
 * tensor's bytes in order, with no gaps. Callbacks are called one at a time.
 *
 * @example
 * ```ts
 * import { BytesSink } from "../core/byte_source.ts";
 * import { writeSafetensors } from "./safetensors.ts";
 * const sink = new BytesSink();
 * await writeSafetensors(sink, [{ name: "w", dtype: "F32", shape: [2], data: new Uint8Array(8) }], { format: "pt" });
 * ```
 */
export async function writeSafetensors(
  sink: ByteSink,
  tensors: readonly SafetensorsWriterTensor[],
  metadata?: Record<string, string>,
): Promise<void> {
  const { header, nBytes } = encodeSafetensorsHeader(tensors, metadata);
  sink.write(header);
  for (let i = 0; i < tensors.length; i++) {
    sink.write(await tensorDataOf("safetensors", tensors[i], nBytes[i]));
  }
}
