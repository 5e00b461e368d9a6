// f16 / bf16 conversion kernels. see: src/core/f16.ts (the references)

// f16 bits -> f32, exact for all 65,536 patterns (subnormals via a float multiply).
@inline function h2f(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp == 0) {
    const v = <f32>mant * <f32>5.9604644775390625e-8;
    return sign ? -v : v;
  }
  if (exp == 0x1f) return reinterpret<f32>(sign | 0x7f800000 | (mant << 13));
  return reinterpret<f32>(sign | ((exp + 112) << 23) | (mant << 13));
}

// Converts n f16 values at src (2-byte aligned) to f32 at dst (4-byte aligned). src and dst must not overlap.
export function f16ToF32Array(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    store<f32>(dst + (<usize>i << 2), h2f(<u32>load<u16>(src + (<usize>i << 1))));
  }
}

// f32 -> f16 bits, round to nearest even.
@inline function f2h(v: f32): u32 {
  const x = reinterpret<u32>(v);
  const sign = (x >> 16) & 0x8000;
  const exp = (x >> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >> 13) : 0);
  const e = <i32>exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = <u32>(14 - e);
    let half = m >> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = <u32>1 << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1) != 0)) half++;
    return sign | half;
  }
  let h = (<u32>e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1) != 0)) h++;
  return sign | h;
}

// Converts n f32 values at src to f16 bits at dst. src and dst must not overlap.
export function f32ToF16Array(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    store<u16>(dst + (<usize>i << 1), <u16>f2h(load<f32>(src + (<usize>i << 2))));
  }
}

// Converts n bf16 values at src to f32 at dst.
export function bf16ToF32Array(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
  }
}
