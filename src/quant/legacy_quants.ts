/**
 * Dequantize references for llama.cpp's other 32-weight block formats (element i of a block is y[i]):
 *   1. Q4_1 (20 bytes): f16 d, f16 m, qs[16]; element j in the low nibble of qs[j], j+16 in the high nibble;
 *      y = q·d + m, q in 0..15.
 *   2. Q5_0 (22 bytes): f16 d, qh[4] (u32 LE: bit j is the 5th bit of element j), qs[16] as Q4_1;
 *      y = (q − 16)·d, q in 0..31.
 *   3. Q5_1 (24 bytes): f16 d, f16 m, qh[4], qs[16]; y = q·d + m.
 * Arithmetic in f32 as ggml's scalar code: each product rounded to f32, then the add (no FMA).
 * see: ggml/src/ggml-common.h (block_q4_1, block_q5_0, block_q5_1), ggml-quants.c dequantize_row_q4_1/q5_0/q5_1
 */
import { f16ToF32Ref } from "../core/f16.ts";
import { checkQuantShape } from "./q4_0.ts";

export const QK4_1 = 32;
export const QK5_0 = 32;
export const QK5_1 = 32;
export const BLOCK_Q4_1_BYTES = 20;
export const BLOCK_Q5_0_BYTES = 22;
export const BLOCK_Q5_1_BYTES = 24;

const fround = Math.fround;

function f16At(b: Uint8Array, o: number): number {
  return f16ToF32Ref(b[o] | (b[o + 1] << 8));
}

function u32At(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** Dequantizes Q4_1 `blocks` into `out` (32 values per 20-byte block): y = q·d + m. */
export function dequantizeRowQ4_1Ref(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q4_1 row", out.length, QK4_1, blocks.length, BLOCK_Q4_1_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q4_1_BYTES;
    const d = f16At(blocks, o), m = f16At(blocks, o + 2);
    const y = i * QK4_1;
    for (let j = 0; j < 16; j++) {
      const q = blocks[o + 4 + j];
      out[y + j] = fround(fround((q & 0x0f) * d) + m);
      out[y + j + 16] = fround(fround((q >> 4) * d) + m);
    }
  }
}

/** Dequantizes Q5_0 `blocks` into `out` (32 values per 22-byte block): y = (q − 16)·d. */
export function dequantizeRowQ5_0Ref(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q5_0 row", out.length, QK5_0, blocks.length, BLOCK_Q5_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q5_0_BYTES;
    const d = f16At(blocks, o);
    const qh = u32At(blocks, o + 2);
    const y = i * QK5_0;
    for (let j = 0; j < 16; j++) {
      const q = blocks[o + 6 + j];
      const x0 = ((q & 0x0f) | (((qh >>> j) & 1) << 4)) - 16;
      const x1 = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16;
      out[y + j] = fround(x0 * d);
      out[y + j + 16] = fround(x1 * d);
    }
  }
}

/** Dequantizes Q5_1 `blocks` into `out` (32 values per 24-byte block): y = q·d + m. */
export function dequantizeRowQ5_1Ref(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q5_1 row", out.length, QK5_1, blocks.length, BLOCK_Q5_1_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q5_1_BYTES;
    const d = f16At(blocks, o), m = f16At(blocks, o + 2);
    const qh = u32At(blocks, o + 4);
    const y = i * QK5_1;
    for (let j = 0; j < 16; j++) {
      const q = blocks[o + 8 + j];
      const x0 = (q & 0x0f) | (((qh >>> j) & 1) << 4);
      const x1 = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      out[y + j] = fround(fround(x0 * d) + m);
      out[y + j + 16] = fround(fround(x1 * d) + m);
    }
  }
}
