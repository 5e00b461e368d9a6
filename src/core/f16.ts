/**
 * IEEE-754 half (f16) and bfloat16 conversions: the scalar references that define the WASM kernels.
 * see: ggml `ggml_compute_fp32_to_fp16` (round to nearest even), IEEE 754-2008 binary16
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f16 bits → f32 value, exact for every one of the 65,536 patterns (NaN payload kept in the top bits). */
export function f16ToF32Ref(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0) {
    if (mant === 0) {
      u32[0] = sign;
      return f32[0];
    }
    // subnormal: value = mant * 2^-24
    const v = mant * 5.9604644775390625e-8;
    return sign ? -v : v;
  }
  if (exp === 0x1f) {
    u32[0] = sign | 0x7f800000 | (mant << 13);
    return f32[0];
  }
  mant <<= 13;
  u32[0] = sign | ((exp + 112) << 23) | mant;
  return f32[0];
}

/** f32 value → f16 bits, round to nearest even; overflow → ±Inf; NaN stays NaN (quiet). */
export function f32ToF16Ref(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    // Inf or NaN: keep NaN quiet and non-zero
    return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  }
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // subnormal half (or zero): shift the full 24-bit significand
    if (e < -10) return sign; // too small: rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half++;
    return sign | half;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry into the exponent: still correct
  return sign | h;
}

/** bf16 bits → f32 value (bf16 is the top half of an f32). */
export function bf16ToF32Ref(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** f32 value → bf16 bits, round to nearest even (NaN stays quiet NaN), as PyTorch does. */
export function f32ToBf16Ref(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Converts a whole f16 array to f32. */
export function f16ArrayToF32Ref(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) dst[i] = f16ToF32Ref(src[i]);
  return dst;
}

/** Converts a whole f32 array to f16 bits. */
export function f32ArrayToF16Ref(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) dst[i] = f32ToF16Ref(src[i]);
  return dst;
}

/** Converts a whole bf16 array to f32. */
export function bf16ArrayToF32Ref(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) dst[i] = bf16ToF32Ref(src[i]);
  return dst;
}
