/**
 * dequantizeRef: one entry point from any readable tensor dtype's bytes to f32 — the oracle model loading and the
 * kernels are checked against. Plain types are converted (F16/BF16 exactly, integers by value); block types use
 * their row references.
 * see: q4_0.ts, q8_0.ts, legacy_quants.ts, k_quants.ts; ggml-quants.c (type traits `to_float`)
 */
import { blockSizeOf, type DType, nBytesOf } from "../core/dtypes.ts";
import { UnsupportedError } from "../core/errors.ts";
import { bf16ToF32Ref, f16ToF32Ref } from "../core/f16.ts";
import {
  dequantizeRowQ2_KRef,
  dequantizeRowQ3_KRef,
  dequantizeRowQ4_KRef,
  dequantizeRowQ5_KRef,
  dequantizeRowQ6_KRef,
} from "./k_quants.ts";
import { dequantizeRowQ4_1Ref, dequantizeRowQ5_0Ref, dequantizeRowQ5_1Ref } from "./legacy_quants.ts";
import { dequantizeRowQ4_0Ref } from "./q4_0.ts";
import { dequantizeRowQ8_0Ref } from "./q8_0.ts";

const BLOCK_REFS: Partial<Record<DType, (blocks: Uint8Array, out: Float32Array) => void>> = {
  Q4_0: dequantizeRowQ4_0Ref,
  Q4_1: dequantizeRowQ4_1Ref,
  Q5_0: dequantizeRowQ5_0Ref,
  Q5_1: dequantizeRowQ5_1Ref,
  Q8_0: dequantizeRowQ8_0Ref,
  Q2_K: dequantizeRowQ2_KRef,
  Q3_K: dequantizeRowQ3_KRef,
  Q4_K: dequantizeRowQ4_KRef,
  Q5_K: dequantizeRowQ5_KRef,
  Q6_K: dequantizeRowQ6_KRef,
};

/** Dtypes dequantizeRef accepts. */
export const DEQUANTIZABLE_DTYPES: readonly DType[] = [
  "F32",
  "F16",
  "BF16",
  "F64",
  "I8",
  "U8",
  "I16",
  "I32",
  ...Object.keys(BLOCK_REFS) as DType[],
];

/**
 * `nElements` values of `dtype` stored little-endian in `bytes` (exactly nBytesOf(dtype, nElements) long) as f32.
 * Throws RangeError on a size mismatch and UnsupportedError for dtypes without a reference (Q8_1, Q8_K, I64, BOOL).
 *
 * @example
 * ```ts
 * import { dequantizeRef } from "./dequantize.ts";
 * dequantizeRef("F16", new Uint8Array([0x00, 0x3c]), 1); // Float32Array [1]
 * ```
 */
export function dequantizeRef(dtype: DType, bytes: Uint8Array, nElements: number): Float32Array {
  const need = nBytesOf(dtype, nElements);
  if (bytes.length !== need) {
    throw new RangeError(`Cannot dequantize ${nElements} ${dtype} values: expected ${need} bytes, got ${bytes.length}`);
  }
  const out = new Float32Array(nElements);
  const block = BLOCK_REFS[dtype];
  if (block) {
    block(bytes, out);
    return out;
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F32":
      for (let i = 0; i < nElements; i++) out[i] = v.getFloat32(4 * i, true);
      return out;
    case "F16":
      for (let i = 0; i < nElements; i++) out[i] = f16ToF32Ref(v.getUint16(2 * i, true));
      return out;
    case "BF16":
      for (let i = 0; i < nElements; i++) out[i] = bf16ToF32Ref(v.getUint16(2 * i, true));
      return out;
    case "F64":
      for (let i = 0; i < nElements; i++) out[i] = v.getFloat64(8 * i, true);
      return out;
    case "I8":
      for (let i = 0; i < nElements; i++) out[i] = v.getInt8(i);
      return out;
    case "U8":
      for (let i = 0; i < nElements; i++) out[i] = v.getUint8(i);
      return out;
    case "I16":
      for (let i = 0; i < nElements; i++) out[i] = v.getInt16(2 * i, true);
      return out;
    case "I32":
      for (let i = 0; i < nElements; i++) out[i] = v.getInt32(4 * i, true);
      return out;
  }
  throw new UnsupportedError(`Cannot dequantize ${dtype}: no reference dequantizer (block size ${blockSizeOf(dtype)})`);
}
