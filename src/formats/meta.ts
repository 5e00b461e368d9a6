/**
 * Meta's original LLaMA layout: `params.json` plus model-parallel shards `consolidated.0N.pth` (7B = 1 shard,
 * 13B = 2, 33B = 4, 65B = 8). Each shard holds a slice of every weight matrix along the axis its layer is split
 * on in Meta's model-parallel code; norms and `rope.freqs` are replicated in every shard.
 * see: facebookresearch/llama model.py (ColumnParallelLinear → dim 0, RowParallelLinear and
 * ParallelEmbedding → dim 1), llama.cpp convert.py (same axes), the seed's merge_llama_with_chinese_lora.py
 * `save_shards` (output.weight's uneven remainder goes to the last shard)
 *
 * Split axes (shape row-major, [out, in] for linear weights):
 * 1. dim 0: attention.wq/wk/wv, feed_forward.w1/w3, output — output features are split.
 * 2. dim 1: attention.wo, feed_forward.w2, tok_embeddings — input features (embedding columns) are split.
 * 3. replicated: attention_norm, ffn_norm, norm, rope.freqs (and any other 1-D tensor).
 */
import { type DType, typeSizeOf } from "../core/dtypes.ts";
import { FormatError, UnsupportedError } from "../core/errors.ts";

/** `params.json` in llama2.c's words, plus Meta's FFN sizing fields and the derived `hiddenDim`. */
export interface MetaParams {
  dim: number;
  nLayers: number;
  nHeads: number;
  /** n_kv_heads, or nHeads when absent (LLaMA-1). */
  nKvHeads: number;
  multipleOf: number;
  ffnDimMultiplier?: number;
  normEps: number;
  /** -1 in Meta's files: the vocabulary size comes from the tokenizer / the embedding shape. */
  vocabSize: number;
  ropeTheta: number;
  /** max_seq_len when present. */
  maxSeqLen?: number;
  /** Meta's FFN width: multiple_of · ceil(int(ffn_dim_multiplier · int(2·4·dim/3)) / multiple_of). */
  hiddenDim: number;
}

/**
 * Meta's FFN width (model.py FeedForward): hidden = int(2·4·dim/3), then int(ffn_dim_multiplier · hidden) when
 * given, rounded up to a multiple of `multipleOf`. 7B: 11008; 13B: 13824; Llama-2-70B (1.3, 4096): 28672.
 */
export function metaHiddenDim(dim: number, multipleOf: number, ffnDimMultiplier?: number): number {
  let hidden = Math.floor((2 * 4 * dim) / 3);
  if (ffnDimMultiplier !== undefined) hidden = Math.floor(ffnDimMultiplier * hidden);
  return multipleOf * Math.ceil(hidden / multipleOf);
}

/**
 * Parses `params.json` (text, bytes or an already-parsed object). Throws FormatError for invalid JSON, missing
 * or non-numeric fields, and values out of range.
 *
 * @example
 * ```ts
 * import { parseMetaParams } from "./meta.ts";
 * const p = parseMetaParams('{"dim": 4096, "multiple_of": 256, "n_heads": 32, "n_layers": 32, "norm_eps": 1e-06, "vocab_size": -1}');
 * p.hiddenDim; // 11008
 * ```
 */
export function parseMetaParams(input: string | Uint8Array | Record<string, unknown>, path?: string): MetaParams {
  const err = (msg: string, cause?: unknown) => new FormatError(msg, { format: "params.json", path, cause });
  let json: unknown = input;
  if (typeof input === "string" || input instanceof Uint8Array) {
    const text = typeof input === "string" ? input : new TextDecoder().decode(input);
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw err(`Cannot parse params.json: ${(e as Error).message}`, e);
    }
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw err("Cannot parse params.json: not a JSON object");
  }
  const o = json as Record<string, unknown>;
  const num = (k: string, fallback?: number): number => {
    const v = o[k];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw err(`Cannot parse params.json: "${k}" is missing`);
    }
    if (typeof v !== "number" || !Number.isFinite(v)) throw err(`Cannot parse params.json: "${k}" is not a number`);
    return v;
  };
  const int = (k: string, fallback?: number, min = 1): number => {
    const v = num(k, fallback);
    if (!Number.isSafeInteger(v) || v < min || v > 1 << 24) {
      throw err(`Cannot parse params.json: "${k}" is ${v}, expected an integer in [${min}, 2^24]`);
    }
    return v;
  };
  const dim = int("dim");
  const nHeads = int("n_heads");
  const nKvHeads = int("n_kv_heads", nHeads);
  const multipleOf = int("multiple_of", 256);
  const mult = o["ffn_dim_multiplier"] === null ? undefined : o["ffn_dim_multiplier"];
  if (mult !== undefined && (typeof mult !== "number" || !(mult > 0 && mult < 64))) {
    throw err(
      `Cannot parse params.json: "ffn_dim_multiplier" is ${JSON.stringify(mult)}, expected a number in (0, 64)`,
    );
  }
  const normEps = num("norm_eps", 1e-5);
  if (!(normEps > 0 && normEps < 1)) throw err(`Cannot parse params.json: "norm_eps" ${normEps} is out of (0, 1)`);
  const vocabSize = num("vocab_size", -1);
  if (vocabSize !== -1 && !(Number.isSafeInteger(vocabSize) && vocabSize > 0 && vocabSize <= 1 << 24)) {
    throw err(`Cannot parse params.json: "vocab_size" is ${vocabSize}, expected -1 or a positive integer`);
  }
  const ropeTheta = num("rope_theta", 10000);
  if (!(ropeTheta > 0)) throw err(`Cannot parse params.json: "rope_theta" ${ropeTheta} is not positive`);
  if (dim % nHeads !== 0) throw err(`Cannot parse params.json: dim ${dim} is not divisible by n_heads ${nHeads}`);
  if (nHeads % nKvHeads !== 0) {
    throw err(`Cannot parse params.json: n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  }
  const hiddenDim = metaHiddenDim(dim, multipleOf, mult as number | undefined);
  return {
    dim,
    nLayers: int("n_layers"),
    nHeads,
    nKvHeads,
    multipleOf,
    ffnDimMultiplier: mult as number | undefined,
    normEps,
    vocabSize,
    ropeTheta,
    maxSeqLen: o["max_seq_len"] === undefined ? undefined : int("max_seq_len"),
    hiddenDim,
  };
}

/** How a tensor is spread over model-parallel shards: concatenated along axis 0 or 1, or replicated. */
export type MetaShardAxis = 0 | 1 | "replicated";

const DIM0 = /^(layers\.\d+\.attention\.w[qkv]|layers\.\d+\.feed_forward\.w[13]|output)\.weight$/;
const DIM1 = /^(layers\.\d+\.attention\.wo|layers\.\d+\.feed_forward\.w2|tok_embeddings)\.weight$/;

/**
 * The shard axis of a Meta tensor name. 1-D tensors (norms, rope.freqs) are replicated; an unknown 2-D name is an
 * UnsupportedError (guessing an axis would silently scramble the weights).
 */
export function metaShardAxis(name: string, nDims: number): MetaShardAxis {
  if (nDims <= 1) return "replicated";
  if (DIM0.test(name)) return 0;
  if (DIM1.test(name)) return 1;
  throw new UnsupportedError(`Cannot merge Meta shards: no known split axis for ${nDims}-D tensor "${name}"`);
}

/** A tensor as a shard's table describes it (TensorInfo, PytorchTensorInfo, … all fit). */
export interface ShardTensorInfo {
  name: string;
  dtype: DType;
  shape: readonly number[];
  nBytes: number;
}

/** One shard: its tensor table and how to read a tensor's row-major bytes. */
export interface MetaShard<T extends ShardTensorInfo = ShardTensorInfo> {
  tensors: readonly T[];
  read(info: T): Uint8Array;
}

/** A tensor of the merged (single-shard) model, read by concatenating its parts. */
export interface MergedMetaTensor<T extends ShardTensorInfo = ShardTensorInfo> {
  name: string;
  dtype: DType;
  shape: number[];
  nBytes: number;
  axis: MetaShardAxis;
  /** The part in each shard, shard order. */
  parts: T[];
  /** Assembles the full tensor: one read per shard (replicated tensors: shard 0, checked against the others). */
  read(): Uint8Array;
}

/**
 * Describes the merged model of model-parallel shards. Every shard must have the same tensor names, dtypes,
 * and shapes except along the split axis; replicated tensors must match in shape. Throws FormatError otherwise.
 * With `checkReplicas` (default true) reading a replicated tensor compares its bytes across shards.
 *
 * @example
 * ```ts ignore
 * const shards = paths.map((p) => { const src = openFileSource(p); const c = readPytorchCheckpoint(src);
 *   return { tensors: c.tensors, read: (t) => readPytorchTensor(src, t) }; });
 * for (const t of mergeMetaShards(shards)) console.log(t.name, t.shape);
 * ```
 */
export function mergeMetaShards<T extends ShardTensorInfo>(
  shards: readonly MetaShard<T>[],
  { checkReplicas = true } = {},
): MergedMetaTensor<T>[] {
  const err = (msg: string) => new FormatError(msg, { format: "meta" });
  if (shards.length === 0) throw new RangeError("Cannot merge Meta shards: no shards given");
  const tables = shards.map((s, i) => {
    const m = new Map<string, T>();
    for (const t of s.tensors) {
      if (m.has(t.name)) throw err(`Cannot merge Meta shards: shard ${i} has tensor "${t.name}" twice`);
      m.set(t.name, t);
    }
    return m;
  });
  for (let i = 1; i < tables.length; i++) {
    if (tables[i].size !== tables[0].size) {
      throw err(`Cannot merge Meta shards: shard ${i} has ${tables[i].size} tensors, shard 0 has ${tables[0].size}`);
    }
  }
  const out: MergedMetaTensor<T>[] = [];
  for (const [name, t0] of tables[0]) {
    const parts = tables.map((tb, i) => {
      const t = tb.get(name);
      if (!t) throw err(`Cannot merge Meta shards: tensor "${name}" is missing from shard ${i}`);
      if (t.dtype !== t0.dtype) {
        throw err(`Cannot merge Meta shards: "${name}" is ${t.dtype} in shard ${i}, ${t0.dtype} in 0`);
      }
      if (t.shape.length !== t0.shape.length) {
        throw err(`Cannot merge Meta shards: "${name}" rank differs in shard ${i}`);
      }
      return t;
    });
    const axis = shards.length === 1 ? "replicated" : metaShardAxis(name, t0.shape.length);
    const shape = [...t0.shape];
    if (axis !== "replicated" && shape.length !== 2) {
      throw err(`Cannot merge Meta shards: "${name}" is ${shape.length}-D, expected 2-D`);
    }
    for (let i = 1; i < parts.length; i++) {
      const s = parts[i].shape;
      for (let d = 0; d < shape.length; d++) {
        if (d === axis) continue;
        if (s[d] !== t0.shape[d]) {
          throw err(`Cannot merge Meta shards: "${name}" has shape [${s}] in shard ${i} but [${t0.shape}] in shard 0`);
        }
      }
      if (axis !== "replicated") shape[axis] += s[axis];
    }
    const es = typeSizeOf(t0.dtype);
    const nBytes = shape.reduce((a, b) => a * b, 1) * es;
    if (!Number.isSafeInteger(nBytes)) throw err(`Cannot merge Meta shards: "${name}" size overflows`);
    const read = (): Uint8Array => {
      if (axis === "replicated") {
        const first = shards[0].read(parts[0]);
        if (checkReplicas) {
          for (let i = 1; i < shards.length; i++) {
            const b = shards[i].read(parts[i]);
            if (!bytesEqual(first, b)) {
              throw err(`Cannot merge Meta shards: replicated "${name}" differs in shard ${i}`);
            }
          }
        }
        return first;
      }
      const full = new Uint8Array(nBytes);
      if (axis === 0) {
        // [rows_0; rows_1; …]: the parts' bytes one after another.
        let o = 0;
        for (let i = 0; i < shards.length; i++) {
          const b = checkPart(shards[i].read(parts[i]), parts[i], es);
          full.set(b, o);
          o += b.length;
        }
      } else {
        // [cols_0 | cols_1 | …]: each row of the result interleaves one row from every part.
        const rows = shape[0], rowBytes = shape[1] * es;
        let col = 0;
        for (let i = 0; i < shards.length; i++) {
          const b = checkPart(shards[i].read(parts[i]), parts[i], es);
          const w = parts[i].shape[1] * es;
          for (let r = 0; r < rows; r++) full.set(b.subarray(r * w, (r + 1) * w), r * rowBytes + col);
          col += w;
        }
      }
      return full;
    };
    out.push({ name, dtype: t0.dtype, shape, nBytes, axis, parts, read });
  }
  return out;
}

function checkPart(b: Uint8Array, t: ShardTensorInfo, es: number): Uint8Array {
  const want = t.shape.reduce((a, c) => a * c, 1) * es;
  if (b.length !== want) {
    throw new FormatError(`Cannot merge Meta shards: read ${b.length} bytes for "${t.name}", expected ${want}`, {
      format: "meta",
    });
  }
  return b;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * How the seed's merge script splits a full tensor into `nShards` (for writing 13B/33B `pth` output): the axis
 * and the size of each shard's slice along it. Every split is even except `output.weight`, whose remainder rows
 * go to the last shard (49,953 rows over 2 shards → [24976, 24977]). Replicated tensors get `sizes: []` (each
 * shard holds the whole tensor). Throws RangeError when an even split is impossible.
 */
export function metaShardSizes(
  name: string,
  shape: readonly number[],
  nShards: number,
): { axis: MetaShardAxis; sizes: number[] } {
  if (!Number.isSafeInteger(nShards) || nShards < 1) throw new RangeError(`Cannot split: bad shard count ${nShards}`);
  const axis = nShards === 1 ? "replicated" : metaShardAxis(name, shape.length);
  if (axis === "replicated") return { axis, sizes: [] }; // every shard gets the whole tensor
  const n = shape[axis];
  const each = Math.floor(n / nShards);
  if (n % nShards !== 0 && name !== "output.weight") {
    throw new RangeError(`Cannot split "${name}" (${n} along dim ${axis}) evenly into ${nShards} shards`);
  }
  const sizes = new Array(nShards).fill(each);
  sizes[nShards - 1] += n % nShards;
  return { axis, sizes };
}

/**
 * Rows [start, start+count) (axis 0) or columns (axis 1) of a row-major 2-D tensor's bytes, as a new array.
 */
export function sliceMetaShard(
  bytes: Uint8Array,
  shape: readonly number[],
  dtype: DType,
  axis: 0 | 1,
  start: number,
  count: number,
): Uint8Array {
  if (shape.length !== 2) throw new RangeError(`Cannot slice: shape [${shape}] is not 2-D`);
  const es = typeSizeOf(dtype);
  const [rows, cols] = shape;
  if (bytes.length !== rows * cols * es) {
    throw new RangeError(`Cannot slice: ${bytes.length} bytes for shape [${shape}]`);
  }
  const n = axis === 0 ? rows : cols;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > n) {
    throw new RangeError(`Cannot slice [${start}, ${start + count}) of ${n} along dim ${axis}`);
  }
  if (axis === 0) return bytes.slice(start * cols * es, (start + count) * cols * es);
  const out = new Uint8Array(rows * count * es);
  for (let r = 0; r < rows; r++) {
    out.set(bytes.subarray((r * cols + start) * es, (r * cols + start + count) * es), r * count * es);
  }
  return out;
}

/** Where shard `shard` of `nShards` takes its part of a full tensor, following metaShardSizes. */
export interface MetaShardPart {
  axis: MetaShardAxis;
  /** First row (axis 0) or column (axis 1) of the part; 0 for replicated tensors. */
  start: number;
  /** The part's shape. */
  shape: number[];
  /** The part's bytes, cut from the full tensor's row-major bytes (the bytes themselves when replicated). */
  slice(full: Uint8Array): Uint8Array;
}

/**
 * The part of a full tensor that shard `shard` holds when writing `nShards` Meta shards (as the seed's merge
 * script splits them).
 *
 * @example
 * ```ts
 * import { metaShardPart } from "./meta.ts";
 * metaShardPart("output.weight", [49953, 5120], "F16", 2, 1).shape; // [24977, 5120]
 * ```
 */
export function metaShardPart(
  name: string,
  shape: readonly number[],
  dtype: DType,
  nShards: number,
  shard: number,
): MetaShardPart {
  if (!Number.isSafeInteger(shard) || shard < 0 || shard >= nShards) {
    throw new RangeError(`Cannot split: shard ${shard} is outside [0, ${nShards})`);
  }
  const { axis, sizes } = metaShardSizes(name, shape, nShards);
  if (axis === "replicated") return { axis, start: 0, shape: [...shape], slice: (full) => full };
  const start = sizes.slice(0, shard).reduce((a, b) => a + b, 0);
  const partShape = [...shape];
  partShape[axis] = sizes[shard];
  return {
    axis,
    start,
    shape: partShape,
    slice: (full) => sliceMetaShard(full, shape, dtype, axis, start, sizes[shard]),
  };
}
