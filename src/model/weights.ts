/**
 * Model weights as a file presents them: a tensor table over a ByteSource, looked up by TensorKind (GGUF names via
 * model/tensor_names.ts), checked against the config, and read as f32 through dequantization for the reference.
 * see: llama.cpp llama-model.cpp (tensor shapes per LLM_TENSOR), ggml-quants.c dequantize_row_*
 */
import type { ByteSource } from "../core/byte_source.ts";
import { FormatError, UnsupportedError } from "../core/errors.ts";
import { type DType, nBytesOf } from "../core/dtypes.ts";
import type { TensorInfo } from "../core/tensor.ts";
import { DEQUANTIZABLE_DTYPES, dequantizeRef } from "../quant/dequantize.ts";
import type { LlamaConfig } from "./config.ts";
import { expectedShape, type TensorKind, tensorName } from "./tensor_names.ts";
export { expectedShape };

/** A model file's tensors (GGUF names) over the bytes that hold them. */
export interface ModelFile {
  metadata: Map<string, unknown>;
  tensors: TensorInfo[];
  source: ByteSource;
}

/** Looks tensors up by kind and checks their shapes; `output` falls back to `tok_embd` (tied embeddings). */
export class TensorTable {
  readonly #byName = new Map<string, TensorInfo>();
  constructor(readonly file: ModelFile, readonly config: LlamaConfig) {
    for (const t of file.tensors) this.#byName.set(t.name, t);
  }

  /** True when the model has its own `output.weight` (false: tied to the embedding). */
  get hasOutput(): boolean {
    return this.#byName.has(tensorName("gguf", "output"));
  }

  /** The tensor of `kind` (at `layer`), shape-checked. Throws FormatError when missing or misshapen. */
  info(kind: TensorKind, layer?: number): TensorInfo {
    const name = tensorName("gguf", kind, layer);
    let t = this.#byName.get(name);
    if (!t && kind === "output") t = this.#byName.get(tensorName("gguf", "tok_embd"));
    const path = this.file.source.name;
    if (!t) throw new FormatError(`Cannot load model: tensor "${name}" is missing`, { format: "gguf", path });
    const want = expectedShape(this.config, kind);
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new FormatError(
        `Cannot load model: tensor "${t.name}" has shape [${t.shape}], expected [${want}] from the config`,
        { format: "gguf", path },
      );
    }
    return t;
  }

  /** Reads a whole tensor as f32. */
  f32(kind: TensorKind, layer?: number): Float32Array {
    const t = this.info(kind, layer);
    const n = t.shape.reduce((a, b) => a * b, 1);
    return dequantizeToF32(t.dtype, this.file.source.read(t.byteOffset, t.nBytes), n);
  }

  /** Reads rows [row0, row0+nRows) of a matrix tensor as f32 (rows are whole blocks: every row is). */
  rowsF32(kind: TensorKind, layer: number | undefined, row0: number, nRows: number): Float32Array {
    const t = this.info(kind, layer);
    const cols = t.shape[t.shape.length - 1];
    const rowBytes = nBytesOf(t.dtype, cols);
    const bytes = this.file.source.read(t.byteOffset + row0 * rowBytes, nRows * rowBytes);
    return dequantizeToF32(t.dtype, bytes, nRows * cols);
  }
}

/**
 * Dequantizes `n` elements of `dtype` from `bytes` (little-endian, at least the needed length) to f32, through the
 * one definition, quant/dequantize.ts dequantizeRef.
 */
export function dequantizeToF32(dtype: DType, bytes: Uint8Array, n: number): Float32Array {
  const need = nBytesOf(dtype, n);
  if (bytes.length < need) throw new RangeError(`Cannot dequantize ${n} ${dtype} values: got ${bytes.length} bytes`);
  if (!DEQUANTIZABLE_DTYPES.includes(dtype)) {
    throw new UnsupportedError(`Cannot load tensor type ${dtype}: yangtuo has no dequantizer for it`);
  }
  return dequantizeRef(dtype, bytes.subarray(0, need), n);
}
