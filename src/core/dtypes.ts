/**
 * Tensor element types: ggml's type ids and block layouts, plus the names safetensors/PyTorch use.
 * see: ggml/include/ggml.h `enum ggml_type`, gguf spec "GGML types"
 */
import { rangeCheck } from "./_check.ts";

/** ggml type ids as stored in GGUF tensor infos. */
export const GGML_TYPE = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  BF16: 30,
} as const;

/** A dtype name: ggml names for GGUF types; plus the plain integer/float names safetensors and PyTorch use. */
export type DType = keyof typeof GGML_TYPE | "U8" | "BOOL";

/** Elements per block (1 for plain types). */
export const QK4_0 = 32;
export const QK8_0 = 32;
export const QK_K = 256;

interface TypeTraits {
  blockSize: number; // elements per block
  typeSize: number; // bytes per block
}

const TRAITS: Record<DType, TypeTraits> = {
  F32: { blockSize: 1, typeSize: 4 },
  F16: { blockSize: 1, typeSize: 2 },
  BF16: { blockSize: 1, typeSize: 2 },
  F64: { blockSize: 1, typeSize: 8 },
  I8: { blockSize: 1, typeSize: 1 },
  U8: { blockSize: 1, typeSize: 1 },
  BOOL: { blockSize: 1, typeSize: 1 },
  I16: { blockSize: 1, typeSize: 2 },
  I32: { blockSize: 1, typeSize: 4 },
  I64: { blockSize: 1, typeSize: 8 },
  Q4_0: { blockSize: 32, typeSize: 2 + 16 },
  Q4_1: { blockSize: 32, typeSize: 2 + 2 + 16 },
  Q5_0: { blockSize: 32, typeSize: 2 + 4 + 16 },
  Q5_1: { blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  Q8_0: { blockSize: 32, typeSize: 2 + 32 },
  Q8_1: { blockSize: 32, typeSize: 4 + 4 + 32 },
  Q2_K: { blockSize: 256, typeSize: 256 / 16 + 256 / 4 + 2 + 2 },
  Q3_K: { blockSize: 256, typeSize: 256 / 8 + 256 / 4 + 12 + 2 },
  Q4_K: { blockSize: 256, typeSize: 2 + 2 + 12 + 256 / 2 },
  Q5_K: { blockSize: 256, typeSize: 2 + 2 + 12 + 256 / 8 + 256 / 2 },
  Q6_K: { blockSize: 256, typeSize: 256 / 2 + 256 / 4 + 256 / 16 + 2 },
  Q8_K: { blockSize: 256, typeSize: 4 + 256 + 2 * 256 / 16 },
};

const BY_ID = new Map<number, DType>(
  Object.entries(GGML_TYPE).map(([k, v]) => [v, k as DType]),
);

/** The dtype for a ggml type id, or undefined when the id is unknown. */
export function dtypeFromGgmlId(id: number): DType | undefined {
  return BY_ID.get(id);
}

/** The ggml type id of a dtype. Throws RangeError for dtypes GGUF cannot store (U8, BOOL). */
export function ggmlIdOf(dtype: DType): number {
  if (dtype === "U8" || dtype === "BOOL") {
    throw new RangeError(`Cannot store dtype "${dtype}" in GGUF`);
  }
  return GGML_TYPE[dtype];
}

/** Elements per block of `dtype` (1 for plain types). */
export function blockSizeOf(dtype: DType): number {
  return TRAITS[dtype].blockSize;
}

/** Bytes per block of `dtype` (the element size for plain types). */
export function typeSizeOf(dtype: DType): number {
  return TRAITS[dtype].typeSize;
}

/** True for dtypes stored in blocks (quantized). */
export function isQuantized(dtype: DType): boolean {
  return TRAITS[dtype].blockSize > 1;
}

/**
 * Bytes needed for `nElements` of `dtype`. Throws RangeError when `nElements` is not a whole number of blocks
 * or the size is not a safe integer.
 */
export function nBytesOf(dtype: DType, nElements: number): number {
  const { blockSize, typeSize } = TRAITS[dtype];
  rangeCheck(
    !Number.isSafeInteger(nElements) || nElements < 0,
    `Cannot size tensor: element count ${nElements} is not a non-negative safe integer`,
  );
  rangeCheck(
    nElements % blockSize !== 0,
    `Cannot size ${dtype} tensor: ${nElements} elements is not a multiple of the block size ${blockSize}`,
  );
  const n = (nElements / blockSize) * typeSize;
  rangeCheck(!Number.isSafeInteger(n), `Cannot size tensor: ${n} bytes overflows`);
  return n;
}

/**
 * Product of a shape's dimensions, checked: every dim a non-negative safe integer and no overflow past 2^53.
 * Returns undefined when the product overflows or a dim is invalid (callers raise their own FormatError).
 */
export function checkedProduct(shape: readonly (number | bigint)[]): number | undefined {
  let n = 1;
  for (const d0 of shape) {
    const d = typeof d0 === "bigint" ? Number(d0) : d0;
    if (!Number.isSafeInteger(d) || d < 0) return undefined;
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}
