/**
 * Q4_0 block format and its reference (de)quantizers, byte-identical to llama.cpp `quantize_row_q4_0_ref`.
 * Block of QK4_0 = 32 weights, BLOCK_Q4_0_BYTES = 18 bytes:
 *   1. bytes 0..1: `d`, the scale, IEEE fp16 little-endian;
 *   2. bytes 2..17: `qs[16]`, element j (0..15) in the low nibble of qs[j], element j+16 in its high nibble.
 * Value of element i: (q_i - 8) * d, q_i in 0..15.
 * see: ggml/src/ggml-quants.c `quantize_row_q4_0_ref`, `dequantize_row_q4_0` (same layout in ggjt v3 and GGUF)
 */
import { QK4_0 } from "../core/dtypes.ts";
import { f16ToF32Ref, f32ToF16Ref } from "../core/f16.ts";

/** Weights per Q4_0 block (32; the one definition lives in core/dtypes.ts). */
export { QK4_0 };
/** Bytes per Q4_0 block: fp16 scale + 16 nibble bytes. */
export const BLOCK_Q4_0_BYTES = 18;

const fround = Math.fround;

/**
 * C's `(int8_t)v` for a float as compiled on x86 (cvttss2si): truncate toward zero, keep the low byte; NaN, ±Inf and
 * out-of-int32 values give 0. Only reachable for hostile inputs (a block whose largest magnitude is below ~2.4e-38
 * makes 1/d overflow to Inf); llama.cpp's golden vectors were produced on x86.
 */
export function truncInt8(v: number): number {
  if (!(Math.abs(v) < 2147483648)) return 0;
  return (Math.trunc(v) << 24) >> 24;
}

/** Throws RangeError unless `n` is a multiple of `qk` and `nBytes` holds exactly its blocks. */
export function checkQuantShape(what: string, n: number, qk: number, nBytes: number, blockBytes: number): number {
  if (n % qk !== 0) throw new RangeError(`Cannot ${what}: length ${n} is not a multiple of ${qk}`);
  const nb = n / qk;
  if (nBytes !== nb * blockBytes) {
    throw new RangeError(`Cannot ${what}: expected ${nb * blockBytes} bytes for ${n} values, got ${nBytes}`);
  }
  return nb;
}

/**
 * Quantizes `x` (length a multiple of 32) into Q4_0 blocks in `out` (x.length / 32 * 18 bytes).
 * Numerics follow llama.cpp exactly, in f32: the signed value of largest magnitude `max` gives d = max / -8 (so
 * that value maps to q = 0 exactly), id = 1/d, q = min(15, trunc(x*id + 8.5)); +8.5 is "+8 offset, +0.5 round" and
 * truncation of a non-negative value is floor; the clamp catches x*id + 8.5 = 16.5 at the opposite extreme.
 */
export function quantizeRowQ4_0Ref(x: Float32Array, out: Uint8Array): void {
  const nb = checkQuantShape("quantize Q4_0 row", x.length, QK4_0, out.length, BLOCK_Q4_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const base = i * QK4_0;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = x[base + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fround(max / -8);
    const id = d ? fround(1 / d) : 0;
    const h = f32ToF16Ref(d);
    const o = i * BLOCK_Q4_0_BYTES;
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK4_0 / 2; j++) {
      const x0 = fround(x[base + j] * id);
      const x1 = fround(x[base + QK4_0 / 2 + j] * id);
      const xi0 = Math.min(15, truncInt8(fround(x0 + 8.5))) & 0xff;
      const xi1 = Math.min(15, truncInt8(fround(x1 + 8.5))) & 0xff;
      out[o + 2 + j] = (xi0 | (xi1 << 4)) & 0xff;
    }
  }
}

/** Dequantizes Q4_0 `blocks` into `out` (32 values per 18-byte block): y = (q - 8) * d in f32. */
export function dequantizeRowQ4_0Ref(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q4_0 row", out.length, QK4_0, blocks.length, BLOCK_Q4_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q4_0_BYTES;
    const d = f16ToF32Ref(blocks[o] | (blocks[o + 1] << 8));
    for (let j = 0; j < QK4_0 / 2; j++) {
      const b = blocks[o + 2 + j];
      out[i * QK4_0 + j] = fround(((b & 0x0f) - 8) * d);
      out[i * QK4_0 + QK4_0 / 2 + j] = fround(((b >>> 4) - 8) * d);
    }
  }
}
