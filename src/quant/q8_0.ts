/**
 * Q8_0 block format and its reference (de)quantizers, byte-identical to llama.cpp `quantize_row_q8_0_ref`.
 * Block of QK8_0 = 32 values, BLOCK_Q8_0_BYTES = 34 bytes:
 *   1. bytes 0..1: `d`, the scale, IEEE fp16 little-endian;
 *   2. bytes 2..33: `qs[32]`, int8 (two's complement), element j in qs[j].
 * Value of element j: qs[j] * d.
 * see: ggml/src/ggml-quants.c `quantize_row_q8_0_ref`, `dequantize_row_q8_0`
 */
import { QK8_0 } from "../core/dtypes.ts";
import { f16ToF32Ref, f32ToF16Ref } from "../core/f16.ts";
import { checkQuantShape, truncInt8 } from "./q4_0.ts";

/** Values per Q8_0 block (32; the one definition lives in core/dtypes.ts). */
export { QK8_0 };
/** Bytes per Q8_0 block: fp16 scale + 32 int8. */
export const BLOCK_Q8_0_BYTES = 34;

const fround = Math.fround;

/** C `roundf`: round half away from zero (JS Math.round rounds half toward +Infinity). */
export function roundHalfAway(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

/**
 * Quantizes `x` (length a multiple of 32) into Q8_0 blocks in `out` (x.length / 32 * 34 bytes).
 * In f32 as llama.cpp: d = amax / 127, id = 1/d (0 for an all-zero block), q = roundf(x * id) in -127..127.
 */
export function quantizeRowQ8_0Ref(x: Float32Array, out: Uint8Array): void {
  const nb = checkQuantShape("quantize Q8_0 row", x.length, QK8_0, out.length, BLOCK_Q8_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const base = i * QK8_0;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(x[base + j]);
      amax = amax > a ? amax : a; // C's MAX(): a NaN replaces amax and the next element replaces the NaN
    }
    const d = fround(amax / 127);
    const id = d ? fround(1 / d) : 0;
    const h = f32ToF16Ref(d);
    const o = i * BLOCK_Q8_0_BYTES;
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK8_0; j++) out[o + 2 + j] = truncInt8(roundHalfAway(fround(x[base + j] * id))) & 0xff;
  }
}

/** Dequantizes Q8_0 `blocks` into `out` (32 values per 34-byte block): y = q * d in f32. */
export function dequantizeRowQ8_0Ref(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q8_0 row", out.length, QK8_0, blocks.length, BLOCK_Q8_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q8_0_BYTES;
    const d = f16ToF32Ref(blocks[o] | (blocks[o + 1] << 8));
    for (let j = 0; j < QK8_0; j++) out[i * QK8_0 + j] = fround(((blocks[o + 2 + j] << 24) >> 24) * d);
  }
}
