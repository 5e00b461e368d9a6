/**
 * llama2.c legacy ("version 0") checkpoints and tokenizer.bin, read as llama.cpp's convert-llama2c-to-ggml does.
 * Checkpoint layout (little-endian):
 *   1. header: 7 × i32 `dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len`; vocab_size < 0 means
 *      the classifier is stored (untied), > 0 means it is the embedding;
 *   2. f32 arrays, no padding, matrices row-major [out][in]: token_embedding [vocab][dim], rms_att [L][dim],
 *      wq [L][dim][dim], wk [L][kv_dim][dim], wv [L][kv_dim][dim], wo [L][dim][dim], rms_ffn [L][dim],
 *      w1 [L][hidden][dim], w2 [L][dim][hidden], w3 [L][hidden][dim], rms_final [dim],
 *      freq_cis_real and freq_cis_imag [seq_len][head_size/2] (legacy, skipped), wcls [vocab][dim] if untied.
 * tokenizer.bin: i32 max_token_length, then per token { f32 score; i32 len; len bytes of UTF-8 }.
 * see: karpathy/llama2.c run.c (read_checkpoint, build_tokenizer), ../shared/data/models/PROVENANCE.md "Format notes"
 */
import type { ByteSource } from "../core/byte_source.ts";
import { UnsupportedError } from "../core/errors.ts";
import type { TensorInfo } from "../core/tensor.ts";
import { ByteReader } from "./byte_reader.ts";

/** The model shape from a llama2.c header (vocabSize is always positive here). */
export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** True when the header's vocab_size was positive: the output classifier is the token embedding. */
  sharedClassifier: boolean;
  headSize: number;
}

/** run.c's TransformerWeights fields, in file order (wcls only when the classifier is untied). */
export type Llama2cField =
  | "token_embedding_table"
  | "rms_att_weight"
  | "wq"
  | "wk"
  | "wv"
  | "wo"
  | "rms_ffn_weight"
  | "w1"
  | "w2"
  | "w3"
  | "rms_final_weight"
  | "wcls";

/** One tensor of a llama2.c checkpoint: its run.c field (and layer), F32, absolute offset. */
export interface Llama2cTensor extends Omit<TensorInfo, "name"> {
  field: Llama2cField;
  layer?: number;
}

/**
 * A parsed llama2.c checkpoint layout. The format has no tensor names: model/tensor_names.ts names the fields
 * (model/llama2c_gguf.ts readLlama2c gives them their GGUF names).
 */
export interface Llama2cLayout {
  config: Llama2cConfig;
  /** token_embedding_table, per layer rms_att_weight … w3, rms_final_weight, and wcls (only when untied). */
  tensors: Llama2cTensor[];
}

/** "ak42": the magic of llama2.c's newer export formats (version 1 and 2), which we do not read. */
const LLAMA2C_MAGIC_V1 = 0x616b3432;
/** Guard against absurd headers before any arithmetic: no real model has a dimension near this. */
const MAX_DIM = 1 << 24;

/**
 * Parses a llama2.c legacy checkpoint header and lays out its tensors; the file size must match the header exactly.
 *
 * @example
 * ```ts ignore
 * import { readLlama2cLayout } from "./llama2c.ts";
 * const { config, tensors } = readLlama2cLayout(source); // config.dim, tensors[0].field === "token_embedding_table"
 * ```
 */
export function readLlama2cLayout(source: ByteSource): Llama2cLayout {
  const r = new ByteReader(source, { format: "llama2c" });
  const first = r.u32("magic");
  if (first === LLAMA2C_MAGIC_V1) {
    throw new UnsupportedError(
      'Cannot read llama2.c export version 1/2 (magic "ak42"): export with legacy_export (version 0)',
    );
  }
  r.seek(0);
  const names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"] as const;
  const h = names.map((n) => r.i32(n));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = h;
  for (let i = 0; i < 7; i++) {
    const v = i === 5 ? Math.abs(h[i]) : h[i];
    if (!(v > 0 && v <= MAX_DIM)) {
      throw r.error(`Cannot parse llama2.c header: ${names[i]} = ${h[i]} is out of range`, i * 4);
    }
  }
  if (dim % nHeads !== 0) {
    throw r.error(`Cannot parse llama2.c header: dim ${dim} is not divisible by n_heads ${nHeads}`, 0);
  }
  if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) {
    throw r.error(`Cannot parse llama2.c header: n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`, 16);
  }
  const headSize = dim / nHeads;
  if (headSize % 2 !== 0) throw r.error(`Cannot parse llama2.c header: head size ${headSize} is odd`, 12);
  const vocabSize = Math.abs(vocabRaw);
  const sharedClassifier = vocabRaw > 0;
  const kvDim = nKvHeads * headSize;
  const L = nLayers;

  // every product below is < 2^24 · 2^24 · 2^24 · 4 < 2^75: compute the total in float, then check it is exact
  const floats = vocabSize * dim + L * dim + L * dim * dim + 2 * L * kvDim * dim + L * dim * dim + L * dim +
    3 * L * hiddenDim * dim + dim + seqLen * headSize + (sharedClassifier ? 0 : vocabSize * dim);
  const expected = 28 + 4 * floats;
  if (!Number.isSafeInteger(expected) || expected !== source.size) {
    throw r.error(
      `Cannot parse llama2.c checkpoint: header (dim ${dim}, hidden ${hiddenDim}, layers ${L}, heads ${nHeads}/${nKvHeads}, vocab ${vocabRaw}, seq ${seqLen}) implies ${expected} bytes, file has ${source.size}`,
      0,
    );
  }

  const tensors: Llama2cTensor[] = [];
  let off = 28;
  const region = (rows: number, cols: number) => {
    const at = off;
    off += L * rows * cols * 4;
    return (layer: number) => at + layer * rows * cols * 4;
  };
  const add = (field: Llama2cField, layer: number | undefined, shape: number[], byteOffset: number) =>
    tensors.push({ field, layer, dtype: "F32", shape, byteOffset, nBytes: shape.reduce((a, b) => a * b, 4) });

  add("token_embedding_table", undefined, [vocabSize, dim], off);
  off += vocabSize * dim * 4;
  const attnNorm = region(1, dim);
  const wq = region(dim, dim);
  const wk = region(kvDim, dim);
  const wv = region(kvDim, dim);
  const wo = region(dim, dim);
  const ffnNorm = region(1, dim);
  const w1 = region(hiddenDim, dim);
  const w2 = region(dim, hiddenDim);
  const w3 = region(hiddenDim, dim);
  for (let l = 0; l < L; l++) {
    add("rms_att_weight", l, [dim], attnNorm(l));
    add("wq", l, [dim, dim], wq(l));
    add("wk", l, [kvDim, dim], wk(l));
    add("wv", l, [kvDim, dim], wv(l));
    add("wo", l, [dim, dim], wo(l));
    add("rms_ffn_weight", l, [dim], ffnNorm(l));
    add("w1", l, [hiddenDim, dim], w1(l));
    add("w2", l, [dim, hiddenDim], w2(l));
    add("w3", l, [hiddenDim, dim], w3(l));
  }
  add("rms_final_weight", undefined, [dim], off);
  off += dim * 4;
  off += seqLen * headSize * 4; // freq_cis_real + freq_cis_imag, each [seq_len][head_size/2]
  if (!sharedClassifier) add("wcls", undefined, [vocabSize, dim], off);
  return {
    config: { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, sharedClassifier, headSize },
    tensors,
  };
}

/** A llama2.c tokenizer.bin vocabulary. */
export interface Llama2cTokenizer {
  maxTokenLength: number;
  /** Pieces decoded as UTF-8 (invalid sequences become U+FFFD; see pieceBytes). `▁` is stored as a space. */
  pieces: string[];
  /** The raw bytes of each piece. */
  pieceBytes: Uint8Array[];
  scores: Float32Array;
}

/**
 * Parses tokenizer.bin. The file does not store its vocabulary size: pass the model's `vocabSize`, or undefined to
 * read records until the end of the file.
 */
export function readLlama2cTokenizer(bytes: Uint8Array | ByteSource, vocabSize?: number): Llama2cTokenizer {
  const r = new ByteReader(bytes, { format: "llama2c-tokenizer" });
  const maxTokenLength = r.i32("max_token_length");
  if (maxTokenLength < 0) {
    throw r.error(`Cannot parse tokenizer.bin: max_token_length ${maxTokenLength} is negative`, 0);
  }
  if (vocabSize !== undefined) {
    if (!Number.isSafeInteger(vocabSize) || vocabSize < 0) throw new RangeError(`Invalid vocabSize ${vocabSize}`);
    r.checkCount(vocabSize, Math.floor(r.remaining / 8), "tokenizer.bin vocabulary");
  }
  const pieces: string[] = [];
  const pieceBytes: Uint8Array[] = [];
  const scores: number[] = [];
  const dec = new TextDecoder("utf-8", { ignoreBOM: true });
  while (vocabSize === undefined ? r.remaining > 0 : pieces.length < vocabSize) {
    const id = pieces.length;
    scores.push(r.f32(`score of token ${id}`));
    const lenAt = r.offset;
    const len = r.i32(`length of token ${id}`);
    if (len < 0) throw r.error(`Cannot parse tokenizer.bin: token ${id} has length ${len}`, lenAt);
    const b = r.bytes(len, `token ${id}`).slice();
    pieceBytes.push(b);
    pieces.push(dec.decode(b));
  }
  return { maxTokenLength, pieces, pieceBytes, scores: Float32Array.from(scores) };
}
