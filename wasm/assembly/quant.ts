// Q4_0 / Q8_0 quantizers, dequantizers, the Q8 activation layout ("Q8A") and the Q4_0 repack ("Q4_0R").
// Byte-identical to src/quant/q4_0.ts and q8_0.ts (llama.cpp quantize_row_q4_0_ref / q8_0_ref) for every input;
// the SIMD path runs for ordinary blocks and a scalar path copies the reference for the odd ones.
// see: wasm/README.md (layouts), ggml-quants.c
import { f2h, h2f } from "./common";

// C's (int8_t)v as compiled on x86 (cvttss2si): NaN, Inf and out-of-int32 values give 0.
@inline function truncInt8(v: f32): i32 {
  if (!(Mathf.abs(v) < <f32>2147483648.0)) return 0;
  return (<i32>v << 24) >> 24;
}

// roundf: half away from zero.
@inline function roundHalfAway(v: f32): f32 {
  const t = Mathf.trunc(v);
  return Mathf.abs(v - t) >= 0.5 ? t + (v < 0 ? <f32>-1.0 : <f32>1.0) : t;
}

// One Q4_0 block exactly as the reference (scalar).
function quantizeBlockQ4_0Scalar(x: usize, out: usize): void {
  let amax: f32 = 0;
  let max: f32 = 0;
  for (let j = 0; j < 32; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (amax < Mathf.abs(v)) {
      amax = Mathf.abs(v);
      max = v;
    }
  }
  const d: f32 = max / <f32>-8.0;
  const id: f32 = d != 0 ? <f32>1.0 / d : 0;
  store<u16>(out, <u16>f2h(d));
  for (let j = 0; j < 16; j++) {
    const x0 = load<f32>(x + (<usize>j << 2)) * id;
    const x1 = load<f32>(x + (<usize>(j + 16) << 2)) * id;
    const xi0 = min(15, truncInt8(x0 + <f32>8.5)) & 0xff;
    const xi1 = min(15, truncInt8(x1 + <f32>8.5)) & 0xff;
    store<u8>(out + 2 + j, <u8>(xi0 | (xi1 << 4)));
  }
}

// Horizontal max of 4 f32 lanes.
@inline function hmax4(v: v128): f32 {
  const a = f32x4.max(v, v128.shuffle<u32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.max(a, v128.shuffle<u32>(a, a, 1, 0, 3, 2)), 0);
}

// Quantizes n floats at x (4-byte aligned) to n/32 standard Q4_0 blocks at out (18 bytes each, any alignment).
// n must be a multiple of 32. x and out must not overlap.
export function quantizeRowQ4_0(x: usize, out: usize, n: i32): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const xp = x + (<usize>b << 7);
    const op = out + <usize>b * 18;
    const v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
    const v4 = v128.load(xp, 64), v5 = v128.load(xp, 80), v6 = v128.load(xp, 96), v7 = v128.load(xp, 112);
    const a01 = f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), a23 = f32x4.max(f32x4.abs(v2), f32x4.abs(v3));
    const a45 = f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), a67 = f32x4.max(f32x4.abs(v6), f32x4.abs(v7));
    const amax = hmax4(f32x4.max(f32x4.max(a01, a23), f32x4.max(a45, a67)));
    // NaN anywhere, or a scale so small that 1/d overflows: take the reference's scalar path
    if (!(amax < <f32>3.4e38) || (amax != 0 && amax < <f32>2.4e-37)) {
      quantizeBlockQ4_0Scalar(xp, op);
      continue;
    }
    let max: f32 = 0;
    if (amax != 0) {
      // first element whose magnitude equals amax (the reference keeps the first strictly larger one)
      const s = f32x4.splat(amax);
      const m = i32x4.bitmask(f32x4.eq(f32x4.abs(v0), s)) | (i32x4.bitmask(f32x4.eq(f32x4.abs(v1), s)) << 4) |
        (i32x4.bitmask(f32x4.eq(f32x4.abs(v2), s)) << 8) | (i32x4.bitmask(f32x4.eq(f32x4.abs(v3), s)) << 12) |
        (i32x4.bitmask(f32x4.eq(f32x4.abs(v4), s)) << 16) | (i32x4.bitmask(f32x4.eq(f32x4.abs(v5), s)) << 20) |
        (i32x4.bitmask(f32x4.eq(f32x4.abs(v6), s)) << 24) | (i32x4.bitmask(f32x4.eq(f32x4.abs(v7), s)) << 28);
      max = load<f32>(xp + (<usize>ctz(m) << 2));
    }
    const d: f32 = max / <f32>-8.0;
    const id: f32 = d != 0 ? <f32>1.0 / d : 0;
    store<u16>(op, <u16>f2h(d));
    const vid = f32x4.splat(id);
    const h = f32x4.splat(8.5);
    const c15 = i32x4.splat(15);
    // q = min(15, trunc(x*id + 8.5)); the operands are in [0, 16.5] here so trunc_sat is exact truncation
    const q0 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v0, vid), h)), c15);
    const q1 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v1, vid), h)), c15);
    const q2 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v2, vid), h)), c15);
    const q3 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v3, vid), h)), c15);
    const q4 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v4, vid), h)), c15);
    const q5 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v5, vid), h)), c15);
    const q6 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v6, vid), h)), c15);
    const q7 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v7, vid), h)), c15);
    const lo = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3));
    const hi = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(q4, q5), i16x8.narrow_i32x4_s(q6, q7));
    v128.store(op + 2, v128.or(lo, i16x8.shl(hi, 4)));
  }
}

// Quantizes n floats at x to n/32 standard Q8_0 blocks at out (34 bytes each). n a multiple of 32.
export function quantizeRowQ8_0(x: usize, out: usize, n: i32): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const op = out + <usize>b * 34;
    const d = quantizeBlockQ8(x + (<usize>b << 7), op + 2);
    store<u16>(op, <u16>f2h(d));
  }
}

// Quantizes one block of 32 floats at x to 32 int8 at q (reference numerics); returns d (f32, before fp16 rounding).
@inline function quantizeBlockQ8(xp: usize, q: usize): f32 {
  const v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
  const v4 = v128.load(xp, 64), v5 = v128.load(xp, 80), v6 = v128.load(xp, 96), v7 = v128.load(xp, 112);
  const a01 = f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), a23 = f32x4.max(f32x4.abs(v2), f32x4.abs(v3));
  const a45 = f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), a67 = f32x4.max(f32x4.abs(v6), f32x4.abs(v7));
  const amax = hmax4(f32x4.max(f32x4.max(a01, a23), f32x4.max(a45, a67)));
  let d: f32 = amax / <f32>127.0;
  let id: f32 = d != 0 ? <f32>1.0 / d : 0;
  if (!(Mathf.abs(id) < <f32>3.4e38) || !(amax < <f32>3.4e38)) {
    // NaN/Inf inputs or an overflowing 1/d: the reference's scalar path, with C's MAX() (a NaN is replaced by the
    // next element) rather than the NaN-propagating f32x4.max
    let am: f32 = 0;
    for (let j = 0; j < 32; j++) {
      const a = Mathf.abs(load<f32>(xp + (<usize>j << 2)));
      am = am > a ? am : a;
    }
    d = am / <f32>127.0;
    id = d != 0 ? <f32>1.0 / d : 0;
    for (let j = 0; j < 32; j++) {
      store<i8>(q + j, <i8>truncInt8(roundHalfAway(load<f32>(xp + (<usize>j << 2)) * id)));
    }
    return d;
  }
  const vid = f32x4.splat(id);
  const r0 = roundAway4(f32x4.mul(v0, vid)), r1 = roundAway4(f32x4.mul(v1, vid));
  const r2 = roundAway4(f32x4.mul(v2, vid)), r3 = roundAway4(f32x4.mul(v3, vid));
  const r4 = roundAway4(f32x4.mul(v4, vid)), r5 = roundAway4(f32x4.mul(v5, vid));
  const r6 = roundAway4(f32x4.mul(v6, vid)), r7 = roundAway4(f32x4.mul(v7, vid));
  v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(r0, r1), i16x8.narrow_i32x4_s(r2, r3)));
  v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(r4, r5), i16x8.narrow_i32x4_s(r6, r7)), 16);
  return d;
}

// roundf on 4 lanes -> i32: t = trunc(v); t += sign(v) where |v - t| >= 0.5 (v - t is exact).
@inline function roundAway4(v: v128): v128 {
  const t = f32x4.trunc(v);
  const m = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), f32x4.splat(0.5));
  const one = v128.or(v128.and(v, i32x4.splat(0x80000000)), f32x4.splat(1.0));
  return i32x4.trunc_sat_f32x4_s(f32x4.add(t, v128.and(m, one)));
}

// Quantizes n floats at x (4-aligned) to the Q8A activation layout at act (16-aligned), nb = n/32:
//   act + 0:        int8 qs[n]      (block b at act + 32b; same quants as quantize_row_q8_0_ref)
//   act + n:        f32  d[nb]      (the fp16-rounded scale, as a Q8_0 block would store it)
//   act + n + 4nb:  i32  corr[nb]   (-8 * sum of the block's 32 quants: the Q4_0 zero-point correction)
export function quantizeQ8A(x: usize, act: usize, n: i32): void {
  const nb = n >> 5;
  const dp = act + <usize>n;
  const cp = dp + (<usize>nb << 2);
  for (let b = 0; b < nb; b++) {
    const q = act + (<usize>b << 5);
    const d = quantizeBlockQ8(x + (<usize>b << 7), q);
    store<f32>(dp + (<usize>b << 2), h2f(f2h(d)));
    // sum of 32 int8: pairwise widen twice, then a horizontal add
    const s = i32x4.add(
      i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(q))),
      i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(q, 16))),
    );
    const s2 = i32x4.add(s, v128.shuffle<u32>(s, s, 2, 3, 0, 1));
    const sum = i32x4.extract_lane(s2, 0) + i32x4.extract_lane(s2, 1);
    store<i32>(cp + (<usize>b << 2), -8 * sum);
  }
}

// Dequantizes n/32 standard Q4_0 blocks at src to n floats at dst (4-aligned): y = (q - 8) * d, exact as the ref.
export function dequantizeRowQ4_0(src: usize, dst: usize, n: i32): void {
  const nb = n >> 5;
  const mask = i8x16.splat(0x0f);
  const eight = i8x16.splat(8);
  for (let b = 0; b < nb; b++) {
    const sp = src + <usize>b * 18;
    const op = dst + (<usize>b << 7);
    const d = f32x4.splat(h2f(<u32>load<u16>(sp)));
    const w = v128.load(sp, 2);
    const lo = i8x16.sub(v128.and(w, mask), eight);
    const hi = i8x16.sub(v128.and(i16x8.shr_u(w, 4), mask), eight);
    storeI8AsF32(lo, d, op);
    storeI8AsF32(hi, d, op + 64);
  }
}

// Stores 16 int8 lanes times d as 16 floats at p.
@inline function storeI8AsF32(q: v128, d: v128, p: usize): void {
  const l = i16x8.extend_low_i8x16_s(q), h = i16x8.extend_high_i8x16_s(q);
  v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(l)), d));
  v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(l)), d), 16);
  v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h)), d), 32);
  v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h)), d), 48);
}

// Dequantizes n/32 standard Q8_0 blocks at src to n floats at dst (4-aligned): y = q * d.
export function dequantizeRowQ8_0(src: usize, dst: usize, n: i32): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const sp = src + <usize>b * 34;
    const op = dst + (<usize>b << 7);
    const d = f32x4.splat(h2f(<u32>load<u16>(sp)));
    storeI8AsF32(v128.load(sp, 2), d, op);
    storeI8AsF32(v128.load(sp, 18), d, op + 64);
  }
}

// Repacks nRows standard Q4_0 rows of nCols at src into the Q4_0R layout at dst (16-aligned,
// ceil(nRows/8) * nCols/32 * 160 bytes); see wasm/README.md. Padding rows get d = 0 and nibbles 0.
export function repackQ4_0(src: usize, dst: usize, nRows: i32, nCols: i32): void {
  const nb = nCols >> 5;
  const nGroups = (nRows + 7) >> 3;
  for (let g = 0; g < nGroups; g++) {
    for (let b = 0; b < nb; b++) {
      const go = dst + (<usize>g * <usize>nb + <usize>b) * 160;
      for (let i = 0; i < 8; i++) {
        const r = (g << 3) + i;
        const qo = go + 32 + ((<usize>i >> 2) << 6) + ((<usize>i & 3) << 2);
        if (r < nRows) {
          const so = src + (<usize>r * <usize>nb + <usize>b) * 18;
          store<f32>(go + (<usize>i << 2), h2f(<u32>load<u16>(so)));
          for (let k = 0; k < 4; k++) store<u32>(qo + (<usize>k << 4), load<u32>(so + 2 + (<usize>k << 2)));
        } else {
          store<f32>(go + (<usize>i << 2), 0);
          for (let k = 0; k < 4; k++) store<u32>(qo + (<usize>k << 4), 0);
        }
      }
    }
  }
}
