// Shared helpers for the kernels: exact f16 conversions (scalar and 4-lane SIMD) and a vector exp.
// see: src/core/f16.ts (the f16 references), Cephes expf (range reduction + degree-5 polynomial)

// f16 bits -> f32, exact for all 65,536 patterns (subnormals via a float multiply).
@inline export function h2f(h: u32): f32 {
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

// f32 -> f16 bits, round to nearest even (same algorithm as f32ToF16Ref).
@inline export function f2h(v: f32): u32 {
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
  const h = (<u32>e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  // round to nearest even without a data-dependent branch (it would mispredict half the time)
  return sign | (h + (<u32>(rem > 0x1000) | (<u32>(rem == 0x1000) & h & 1)));
}

// 4 f16 patterns (zero-extended in i32 lanes) -> 4 f32, exact for every pattern: (em << 13) is the value scaled by
// 2^-112 (a float subnormal for f16 subnormals), so one multiply by 2^112 gives normals and subnormals exactly;
// exponent 31 (Inf/NaN) is patched to 0x7f8 << 20 | mant << 13 as the reference does.
// The constants are arguments built by the caller before its loop with the h2fK* helpers from an opaque zero z (a
// runtime 0 Binaryen cannot see): V8 rematerializes a v128.const at every use, which costs more than the conversion.
@inline export function h2f4(h: v128, kMant: v128, kMul: v128, kMax: v128, kTop: v128, kSign: v128): v128 {
  const em = v128.and(h, kMant);
  const sh = i32x4.shl(em, 13);
  const f = f32x4.mul(sh, kMul);
  const special = i32x4.gt_s(em, kMax);
  const mag = v128.bitselect(v128.or(sh, kTop), f, special);
  return v128.or(mag, i32x4.shl(v128.and(h, kSign), 16));
}
@inline export function h2fKMant(z: i32): v128 {
  return i32x4.splat(0x7fff | z);
}
@inline export function h2fKMul(z: i32): v128 {
  return i32x4.splat(0x77800000 | z); // 2^112
}
@inline export function h2fKMax(z: i32): v128 {
  return i32x4.splat(0x7bff | z); // largest finite f16 magnitude
}
@inline export function h2fKTop(z: i32): v128 {
  return i32x4.splat(0x70000000 | z);
}
@inline export function h2fKSign(z: i32): v128 {
  return i32x4.splat(0x8000 | z);
}

// e^x for 4 lanes, relative error ~2 ulp on [-87.3, 88.7]; inputs are clamped to that range (so e^-inf ~ 1e-38
// rather than 0, and e^+inf ~ 3e38 rather than Inf). NaN lanes give NaN.
@inline export function exp4(x0: v128): v128 {
  const x = f32x4.pmax(f32x4.pmin(x0, f32x4.splat(88.72283)), f32x4.splat(-87.33654));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.relaxed_nmadd(n, f32x4.splat(0.693359375), x);
  r = f32x4.relaxed_nmadd(n, f32x4.splat(-2.12194440e-4), r);
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.relaxed_madd(p, r, f32x4.splat(1.3981999507e-3));
  p = f32x4.relaxed_madd(p, r, f32x4.splat(8.3334519073e-3));
  p = f32x4.relaxed_madd(p, r, f32x4.splat(4.1665795894e-2));
  p = f32x4.relaxed_madd(p, r, f32x4.splat(1.6666665459e-1));
  p = f32x4.relaxed_madd(p, r, f32x4.splat(5.0000001201e-1));
  p = f32x4.relaxed_madd(p, f32x4.mul(r, r), f32x4.add(r, f32x4.splat(1.0)));
  // 2^n built in two halves so n = -126..128 never overflows the exponent field
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const s1 = i32x4.shl(i32x4.add(n1, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(n2, i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

// Scalar e^x with the same polynomial (tails of vector loops).
@inline export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}
