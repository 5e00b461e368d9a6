/**
 * Dequantize references for llama.cpp's K-quants: super-blocks of QK_K = 256 weights split into sub-blocks, each
 * with a small quantized scale (and min), times an f16 super-block scale. Element order within a super-block is
 * the order below; "q[l] >> s & m" means bits s.. of byte l.
 *   1. Q2_K (84 B): scales[16] (low nibble scale, high nibble min), qs[64] (2-bit), f16 d, f16 dmin.
 *      For half h (128 elements, qs bytes 32h..32h+31) and shift pair j = 0..3: elements use bits 2j of
 *      qs[32h + l] (l = 0..15, sub-block 8h+2j) then qs[32h + 16 + l] (sub-block 8h+2j+1).
 *      y = d·(sc & 15)·q − dmin·(sc >> 4).
 *   2. Q3_K (110 B): hmask[32], qs[64], scales[12] (16 6-bit scales, packed), f16 d. Same walk as Q2_K; the 3rd bit
 *      of element l of pass (h, j) is bit 4h+j of hmask[l] (l = 0..31); q3 = q2 − (bit ? 0 : 4) in −4..3;
 *      y = d·(s − 32)·q3. Scale s of sub-block k: low 4 bits from scales[k % 8] (low nibble for k < 8, high
 *      nibble for k ≥ 8), high 2 bits from scales[8 + k % 4] at bit 2·⌊k / 4⌋.
 *   3. Q4_K (144 B): f16 d, f16 dmin, scales[12] (8 6-bit scales + 8 6-bit mins), qs[128]. Four 64-element chunks
 *      c: low nibbles of qs[32c + l] with sub-block 2c, then high nibbles with sub-block 2c+1; y = d·sc·q − dmin·m.
 *      Sub-block k < 4: sc = scales[k] & 63, m = scales[k+4] & 63; k ≥ 4: sc = (scales[k+4] & 15) |
 *      (scales[k−4] >> 6) << 4, m = (scales[k+4] >> 4) | (scales[k] >> 6) << 4.
 *   4. Q5_K (176 B): f16 d, f16 dmin, scales[12] as Q4_K, qh[32], qs[128]; as Q4_K with a 5th bit: bit 2c of qh[l]
 *      for the low-nibble half of chunk c, bit 2c+1 for the high half (adds 16).
 *   5. Q6_K (210 B): ql[128], qh[64], scales[16] (int8), f16 d. For half h (ql 64h.., qh 32h.., scales 8h..) and
 *      l = 0..31: four elements l, l+32, l+64, l+96 from (ql[l] low, qh[l] bits 0-1), (ql[l+32] low, bits 2-3),
 *      (ql[l] high, bits 4-5), (ql[l+32] high, bits 6-7); q in −32..31; scale index l/16 + 0, 2, 4, 6;
 *      y = d·sc·q.
 * Arithmetic in f32, products rounded then subtracted (ggml's scalar code; no FMA).
 * see: ggml/src/ggml-common.h (block_q2_K … block_q6_K), ggml-quants.c dequantize_row_q2_K … q6_K
 */
import { QK_K } from "../core/dtypes.ts";
import { f16ToF32Ref } from "../core/f16.ts";
import { checkQuantShape } from "./q4_0.ts";

export const BLOCK_Q2_K_BYTES = 84;
export const BLOCK_Q3_K_BYTES = 110;
export const BLOCK_Q4_K_BYTES = 144;
export const BLOCK_Q5_K_BYTES = 176;
export const BLOCK_Q6_K_BYTES = 210;

const fround = Math.fround;

function f16At(b: Uint8Array, o: number): number {
  return f16ToF32Ref(b[o] | (b[o + 1] << 8));
}

/** Dequantizes Q2_K super-blocks (84 bytes → 256 values). */
export function dequantizeRowQ2_KRef(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q2_K row", out.length, QK_K, blocks.length, BLOCK_Q2_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q2_K_BYTES; // scales at o, qs at o+16, d at o+80, dmin at o+82
    const d = f16At(blocks, o + 80), dmin = f16At(blocks, o + 82);
    let y = i * QK_K;
    let is = 0;
    for (let h = 0; h < 2; h++) {
      const q = o + 16 + 32 * h;
      for (let j = 0; j < 4; j++) {
        const shift = 2 * j;
        for (let half = 0; half < 2; half++) {
          const sc = blocks[o + is++];
          const dl = fround(d * (sc & 0x0f)), ml = fround(dmin * (sc >> 4));
          for (let l = 0; l < 16; l++) {
            out[y++] = fround(fround(dl * ((blocks[q + 16 * half + l] >> shift) & 3)) - ml);
          }
        }
      }
    }
  }
}

/** The 6-bit scale k (0..15) of a Q3_K block whose 12 scale bytes start at `s`. */
function q3kScale(b: Uint8Array, s: number, k: number): number {
  const low = k < 8 ? b[s + k] & 0x0f : b[s + k - 8] >> 4;
  const high = (b[s + 8 + (k % 4)] >> (2 * Math.floor(k / 4))) & 3;
  return low | (high << 4);
}

/** Dequantizes Q3_K super-blocks (110 bytes → 256 values). */
export function dequantizeRowQ3_KRef(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q3_K row", out.length, QK_K, blocks.length, BLOCK_Q3_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q3_K_BYTES; // hmask at o, qs at o+32, scales at o+96, d at o+108
    const d = f16At(blocks, o + 108);
    let y = i * QK_K;
    let is = 0;
    for (let h = 0; h < 2; h++) {
      const q = o + 32 + 32 * h;
      for (let j = 0; j < 4; j++) {
        const shift = 2 * j;
        const m = 1 << (4 * h + j);
        for (let half = 0; half < 2; half++) {
          const dl = fround(d * (q3kScale(blocks, o + 96, is++) - 32));
          for (let l = 0; l < 16; l++) {
            const idx = 16 * half + l;
            const q3 = ((blocks[q + idx] >> shift) & 3) - ((blocks[o + idx] & m) ? 0 : 4);
            out[y++] = fround(dl * q3);
          }
        }
      }
    }
  }
}

/** The 6-bit (scale, min) of sub-block k (0..7) of a Q4_K/Q5_K block whose 12 scale bytes start at `s`. */
function scaleMinK4(b: Uint8Array, s: number, k: number): [number, number] {
  if (k < 4) return [b[s + k] & 63, b[s + k + 4] & 63];
  return [(b[s + k + 4] & 0x0f) | ((b[s + k - 4] >> 6) << 4), (b[s + k + 4] >> 4) | ((b[s + k] >> 6) << 4)];
}

/** Dequantizes Q4_K super-blocks (144 bytes → 256 values). */
export function dequantizeRowQ4_KRef(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q4_K row", out.length, QK_K, blocks.length, BLOCK_Q4_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q4_K_BYTES; // d at o, dmin at o+2, scales at o+4, qs at o+16
    const d = f16At(blocks, o), dmin = f16At(blocks, o + 2);
    let y = i * QK_K;
    for (let c = 0; c < 4; c++) {
      const q = o + 16 + 32 * c;
      const [sc1, m1] = scaleMinK4(blocks, o + 4, 2 * c);
      const [sc2, m2] = scaleMinK4(blocks, o + 4, 2 * c + 1);
      const d1 = fround(d * sc1), mm1 = fround(dmin * m1), d2 = fround(d * sc2), mm2 = fround(dmin * m2);
      for (let l = 0; l < 32; l++) out[y++] = fround(fround(d1 * (blocks[q + l] & 0x0f)) - mm1);
      for (let l = 0; l < 32; l++) out[y++] = fround(fround(d2 * (blocks[q + l] >> 4)) - mm2);
    }
  }
}

/** Dequantizes Q5_K super-blocks (176 bytes → 256 values). */
export function dequantizeRowQ5_KRef(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q5_K row", out.length, QK_K, blocks.length, BLOCK_Q5_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q5_K_BYTES; // d at o, dmin at o+2, scales at o+4, qh at o+16, qs at o+48
    const d = f16At(blocks, o), dmin = f16At(blocks, o + 2);
    let y = i * QK_K;
    for (let c = 0; c < 4; c++) {
      const q = o + 48 + 32 * c;
      const u1 = 1 << (2 * c), u2 = 2 << (2 * c);
      const [sc1, m1] = scaleMinK4(blocks, o + 4, 2 * c);
      const [sc2, m2] = scaleMinK4(blocks, o + 4, 2 * c + 1);
      const d1 = fround(d * sc1), mm1 = fround(dmin * m1), d2 = fround(d * sc2), mm2 = fround(dmin * m2);
      for (let l = 0; l < 32; l++) {
        const v = (blocks[q + l] & 0x0f) + ((blocks[o + 16 + l] & u1) ? 16 : 0);
        out[y++] = fround(fround(d1 * v) - mm1);
      }
      for (let l = 0; l < 32; l++) {
        const v = (blocks[q + l] >> 4) + ((blocks[o + 16 + l] & u2) ? 16 : 0);
        out[y++] = fround(fround(d2 * v) - mm2);
      }
    }
  }
}

/** Dequantizes Q6_K super-blocks (210 bytes → 256 values). */
export function dequantizeRowQ6_KRef(blocks: Uint8Array, out: Float32Array): void {
  const nb = checkQuantShape("dequantize Q6_K row", out.length, QK_K, blocks.length, BLOCK_Q6_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q6_K_BYTES; // ql at o, qh at o+128, scales at o+192, d at o+208
    const d = f16At(blocks, o + 208);
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h, qh = o + 128 + 32 * h, sc = o + 192 + 8 * h;
      const y = i * QK_K + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const hb = blocks[qh + l];
        const q1 = ((blocks[ql + l] & 0x0f) | ((hb & 3) << 4)) - 32;
        const q2 = ((blocks[ql + l + 32] & 0x0f) | (((hb >> 2) & 3) << 4)) - 32;
        const q3 = ((blocks[ql + l] >> 4) | (((hb >> 4) & 3) << 4)) - 32;
        const q4 = ((blocks[ql + l + 32] >> 4) | (((hb >> 6) & 3) << 4)) - 32;
        const s = (k: number) => (blocks[sc + is + k] << 24) >> 24;
        out[y + l] = fround(fround(d * s(0)) * q1);
        out[y + l + 32] = fround(fround(d * s(2)) * q2);
        out[y + l + 64] = fround(fround(d * s(4)) * q3);
        out[y + l + 96] = fround(fround(d * s(6)) * q4);
      }
    }
  }
}
