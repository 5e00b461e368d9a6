/**
 * Which GGUF tensors get which type when a model is written at a target type, as llama.cpp's
 * `llama_model_quantize` with `--pure` decides: weights with two or more dimensions take the target type
 * (token_embd and output.weight included — plain llama.cpp would give output.weight Q6_K, which yangtuo does
 * not write); 1-D tensors (the RMSNorm weights) stay F32; a weight whose rows are not a whole number of blocks
 * falls back to F16, as llama.cpp's "incompatible tensor" fallback does.
 * see: llama.cpp src/llama-quant.cpp (`llama_tensor_get_type`, `--pure`), convert_hf_to_gguf.py (1-D tensors F32)
 */
import { blockSizeOf, type DType } from "../core/dtypes.ts";

/** The types a whole model can be written at. */
export type QuantTarget = "F32" | "F16" | "Q8_0" | "Q4_0";

/** Parses a CLI type name (f32, f16, q8_0, q4_0; any case); undefined when unknown. */
export function parseQuantTarget(s: string): QuantTarget | undefined {
  const t = s.toUpperCase();
  return t === "F32" || t === "F16" || t === "Q8_0" || t === "Q4_0" ? t : undefined;
}

/** The type a tensor of `shape` (row-major; shape.at(-1) is ggml's ne[0]) is stored at for `target`. */
export function quantTypeFor(shape: readonly number[], target: QuantTarget): DType {
  if (shape.length < 2) return "F32";
  const rowLen = shape[shape.length - 1];
  if (rowLen % blockSizeOf(target) !== 0) return "F16";
  return target;
}

/** llama.cpp `enum llama_ftype` values for general.file_type. */
export const LLAMA_FTYPE: Record<QuantTarget, number> = {
  F32: 0, // LLAMA_FTYPE_ALL_F32
  F16: 1, // LLAMA_FTYPE_MOSTLY_F16
  Q4_0: 2, // LLAMA_FTYPE_MOSTLY_Q4_0
  Q8_0: 7, // LLAMA_FTYPE_MOSTLY_Q8_0
};
