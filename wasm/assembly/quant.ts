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

// Max / min of 4 f32 lanes (no NaN) in every lane.
@inline function hmax4v(v: v128): v128 {
  const a = f32x4.pmax(v, v128.shuffle<u32>(v, v, 2, 3, 0, 1));
  return f32x4.pmax(a, v128.shuffle<u32>(a, a, 1, 0, 3, 2));
}
@inline function hmin4v(v: v128): v128 {
  const a = f32x4.pmin(v, v128.shuffle<u32>(v, v, 2, 3, 0, 1));
  return f32x4.pmin(a, v128.shuffle<u32>(a, a, 1, 0, 3, 2));
}

// Horizontal max of 4 f32 lanes without NaN (pmax is a single maxps on x86; f32x4.max needs NaN/-0 fixups).
@inline function hmax4(v: v128): f32 {
  const a = f32x4.pmax(v, v128.shuffle<u32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.pmax(a, v128.shuffle<u32>(a, a, 1, 0, 3, 2)), 0);
}

// The reference's `max` of one Q4_0 block (the first element of largest magnitude), or NaN when the block must take
// the scalar path (an Inf, or amax < 2.4e-37 so that 1/d could overflow). NaN inputs are ignored, as the
// reference's `amax < fabsf(v)` ignores them. `zero` is an opaque 0 vector.
@inline function blockMaxQ4_0(xp: usize, zero: v128): f32 {
  const v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
  const v4 = v128.load(xp, 64), v5 = v128.load(xp, 80), v6 = v128.load(xp, 96), v7 = v128.load(xp, 112);
  // NaN-ignoring max/min (pmax/pmin are one maxps/minps each; f32x4.max needs NaN and -0 fixups): the chains
  // start from 0 and keep their accumulator when the other operand is NaN
  const hiA = f32x4.pmax(f32x4.pmax(f32x4.pmax(f32x4.pmax(zero, v0), v1), v2), v3);
  const hiB = f32x4.pmax(f32x4.pmax(f32x4.pmax(f32x4.pmax(zero, v4), v5), v6), v7);
  const loA = f32x4.pmin(f32x4.pmin(f32x4.pmin(f32x4.pmin(zero, v0), v1), v2), v3);
  const loB = f32x4.pmin(f32x4.pmin(f32x4.pmin(f32x4.pmin(zero, v4), v5), v6), v7);
  const mxv = hmax4v(f32x4.pmax(hiA, hiB)); // max in every lane
  const negmn = f32x4.sub(zero, hmin4v(f32x4.pmin(loA, loB))); // -min in every lane
  const mx = f32x4.extract_lane(mxv, 0), nmn = f32x4.extract_lane(negmn, 0);
  const amax = max(mx, nmn);
  if (!(amax < <f32>3.4e38) || (amax != 0 && amax < <f32>2.4e-37)) return NaN;
  if (mx == nmn) return amax == 0 ? 0 : firstOfMagnitude(xp, amax); // a ±tie (or all zeros): the first wins
  // otherwise the larger magnitude is unique up to equal copies; select without a (half-mispredicted) branch
  return f32x4.extract_lane(v128.bitselect(mxv, f32x4.sub(zero, negmn), f32x4.gt(mxv, negmn)), 0);
}

// Writes the 16 nibble bytes of one block: q = min(15, trunc(x*id + 8.5)), mul and add rounded separately as in the
// reference; the operands are in [0, 16.5] (NaN lanes: x86 truncation gives INT_MIN, packs to 0, as llama.cpp's
// (int8_t)NaN on x86), so the relaxed truncation is exact.
@inline function storeNibblesQ4_0(xp: usize, qp: usize, vid: v128, h: v128, c15: v128): void {
  const q0 = i32x4.relaxed_trunc_f32x4_s(f32x4.add(f32x4.mul(v128.load(xp), vid), h));
  const q1 = i32x4.relaxed_trunc_f32x4_s(f32x4.add(f32x4.mul(v128.load(xp, 16), vid), h));
  const q2 = i32x4.relaxed_trunc_f32x4_s(f32x4.add(f32x4.mul(v128.load(xp, 32), vid), h));
  const q3 = i32x4.relaxed_trunc_f32x4_s(f32x4.add(f32x4.mul(v128.load(xp, 48), vid), h));
  const q4 = i32x4.relaxed_trunc_f32x4_s(f32x4.add(f32x4.mul(v128.load(xp, 64), vid), h));
  const q5 = i32x4.relaxed_trunc_f32x4_s(f32x4.add(f32x4.mul(v128.load(xp, 80), vid), h));
  const q6 = i32x4.relaxed_trunc_f32x4_s(f32x4.add(f32x4.mul(v128.load(xp, 96), vid), h));
  const q7 = i32x4.relaxed_trunc_f32x4_s(f32x4.add(f32x4.mul(v128.load(xp, 112), vid), h));
  const lo = i8x16.min_u(i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)), c15);
  const hi = i8x16.min_u(i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(q4, q5), i16x8.narrow_i32x4_s(q6, q7)), c15);
  v128.store(qp, v128.or(lo, i16x8.shl(hi, 4)));
}

// [max(a), max(b), max(c), max(d)] of four 4-lane vectors without NaN (a 4x4 transpose folded into the reduction).
@inline function pmax4x4(a: v128, b: v128, c: v128, d: v128): v128 {
  const u = f32x4.pmax(v128.shuffle<u32>(a, b, 0, 4, 1, 5), v128.shuffle<u32>(a, b, 2, 6, 3, 7));
  const v = f32x4.pmax(v128.shuffle<u32>(c, d, 0, 4, 1, 5), v128.shuffle<u32>(c, d, 2, 6, 3, 7));
  return f32x4.pmax(v128.shuffle<u32>(u, v, 0, 1, 4, 5), v128.shuffle<u32>(u, v, 2, 3, 6, 7));
}
@inline function pmin4x4(a: v128, b: v128, c: v128, d: v128): v128 {
  const u = f32x4.pmin(v128.shuffle<u32>(a, b, 0, 4, 1, 5), v128.shuffle<u32>(a, b, 2, 6, 3, 7));
  const v = f32x4.pmin(v128.shuffle<u32>(c, d, 0, 4, 1, 5), v128.shuffle<u32>(c, d, 2, 6, 3, 7));
  return f32x4.pmin(v128.shuffle<u32>(u, v, 0, 1, 4, 5), v128.shuffle<u32>(u, v, 2, 3, 6, 7));
}

// Lane-wise max (pmax chain from 0, NaN ignored) and min of one block's 32 floats, still 4 lanes wide.
@inline function blockHi(xp: usize, zero: v128): v128 {
  const a = f32x4.pmax(f32x4.pmax(f32x4.pmax(f32x4.pmax(zero, v128.load(xp)), v128.load(xp, 16)), v128.load(xp, 32)), v128.load(xp, 48));
  const b = f32x4.pmax(f32x4.pmax(f32x4.pmax(f32x4.pmax(zero, v128.load(xp, 64)), v128.load(xp, 80)), v128.load(xp, 96)), v128.load(xp, 112));
  return f32x4.pmax(a, b);
}
@inline function blockLo(xp: usize, zero: v128): v128 {
  const a = f32x4.pmin(f32x4.pmin(f32x4.pmin(f32x4.pmin(zero, v128.load(xp)), v128.load(xp, 16)), v128.load(xp, 32)), v128.load(xp, 48));
  const b = f32x4.pmin(f32x4.pmin(f32x4.pmin(f32x4.pmin(zero, v128.load(xp, 64)), v128.load(xp, 80)), v128.load(xp, 96)), v128.load(xp, 112));
  return f32x4.pmin(a, b);
}

// The first element of largest magnitude amax of a block (a ±tie: both +amax and -amax occur; amax > 0).
@inline function firstOfMagnitude(xp: usize, amax: f32): f32 {
  const s = f32x4.splat(amax);
  const m = i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xp)), s)) |
    (i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xp, 16)), s)) << 4) |
    (i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xp, 32)), s)) << 8) |
    (i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xp, 48)), s)) << 12) |
    (i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xp, 64)), s)) << 16) |
    (i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xp, 80)), s)) << 20) |
    (i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xp, 96)), s)) << 24) |
    (i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(xp, 112)), s)) << 28);
  return load<f32>(xp + (<usize>ctz(m) << 2));
}

// Quantizes n floats at x (4-byte aligned) to n/32 standard Q4_0 blocks at out (18 bytes each, any alignment).
// n must be a multiple of 32. x and out must not overlap. Byte-identical to quantizeRowQ4_0Ref for every input.
// Four blocks at a time: their maxima, scales (one divps), and fp16 scales (a vector f32->f16) are computed
// together; then each block's nibbles. Blocks the vector path cannot match exactly (an Inf, or amax < 2.4e-37 so
// that 1/d could overflow) are redone by the reference's scalar algorithm.
export function quantizeRowQ4_0(x: usize, out: usize, n: i32): void {
  const nb = n >> 5;
  // z = 0 for every valid n; deriving the constants from it keeps Binaryen from turning them into v128.const
  // operands that V8 rematerializes at each use inside the loop
  const z = n >>> 31;
  const zf = <f32>z;
  const h = f32x4.splat(<f32>8.5 + zf);
  const c15 = i8x16.splat(<i8>(15 | z));
  const m0125 = f32x4.splat(<f32>-0.125 + zf);
  const m8 = f32x4.splat(<f32>-8.0 + zf);
  const zero = f32x4.splat(zf);
  const big = f32x4.splat(<f32>3.4e38 + zf);
  const tiny = f32x4.splat(<f32>2.4e-37 + zf);
  // vector f32 -> f16 (round to nearest even) constants, after F. Giesen's float_to_half_fast3_rtne
  const absMask = i32x4.splat(0x7fffffff | z);
  const f16Inf = i32x4.splat(0x7c00 | z);
  const overflowAt = i32x4.splat(0x477fefff | z); // |d| > this rounds to Inf (65520)
  const subnormalBelow = i32x4.splat(0x38800000 | z); // |d| < 2^-14: f16 subnormal or zero
  const denormMagic = i32x4.splat(0x3f000000 | z); // 0.5: adding it rounds at the f16 subnormal step
  const rebias = i32x4.splat(<i32>0xc8000fff | z); // ((15 - 127) << 23) + 0xfff
  const one = i32x4.splat(1 | z);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const xp = x + (<usize>b << 7);
    const op = out + <usize>b * 18;
    const hi = pmax4x4(blockHi(xp, zero), blockHi(xp + 128, zero), blockHi(xp + 256, zero), blockHi(xp + 384, zero));
    const lo = pmin4x4(blockLo(xp, zero), blockLo(xp + 128, zero), blockLo(xp + 256, zero), blockLo(xp + 384, zero));
    const nlo = f32x4.sub(zero, lo);
    const amax = f32x4.pmax(hi, nlo);
    // the reference keeps the first element of largest magnitude: unless +amax and -amax both occur (a tie, or
    // an all-zero block) that value is unique up to equal copies
    let maxv = v128.bitselect(hi, lo, f32x4.gt(hi, nlo));
    const special = v128.or(f32x4.ge(amax, big), v128.and(f32x4.lt(amax, tiny), f32x4.ne(amax, zero)));
    const flags = i32x4.bitmask(v128.or(f32x4.eq(hi, nlo), special));
    if (flags != 0) {
      // rare: ties resolved by position (all-zero blocks get +0); special lanes are redone below
      if (flags & 1) maxv = f32x4.replace_lane(maxv, 0, tieMax(xp, f32x4.extract_lane(amax, 0)));
      if (flags & 2) maxv = f32x4.replace_lane(maxv, 1, tieMax(xp + 128, f32x4.extract_lane(amax, 1)));
      if (flags & 4) maxv = f32x4.replace_lane(maxv, 2, tieMax(xp + 256, f32x4.extract_lane(amax, 2)));
      if (flags & 8) maxv = f32x4.replace_lane(maxv, 3, tieMax(xp + 384, f32x4.extract_lane(amax, 3)));
    }
    // d = max / -8 and 1/d = -8 / max exactly: scaling by a power of two is exact because d is never subnormal
    // on this path, so both are the correctly rounded values of the reference; max = 0 gives d = -0 and id = 0
    const dv = f32x4.mul(maxv, m0125);
    const idv = v128.and(f32x4.div(m8, maxv), f32x4.ne(maxv, zero));
    // fp16 of d, 4 lanes
    const f = v128.and(dv, absMask);
    const sub = i32x4.sub(f32x4.add(f, denormMagic), denormMagic);
    const nrm = i32x4.shr_u(i32x4.add(i32x4.add(f, rebias), v128.and(i32x4.shr_u(f, 13), one)), 13);
    let hv = v128.bitselect(sub, nrm, i32x4.lt_s(f, subnormalBelow));
    hv = v128.bitselect(f16Inf, hv, i32x4.gt_s(f, overflowAt));
    hv = v128.or(hv, i32x4.shr_u(v128.andnot(dv, absMask), 16));
    v128.store16_lane(op, hv, 0);
    v128.store16_lane(op, hv, 2, 18);
    v128.store16_lane(op, hv, 4, 36);
    v128.store16_lane(op, hv, 6, 54);
    storeNibblesQ4_0(xp, op + 2, i32x4.shuffle(idv, idv, 0, 0, 0, 0), h, c15);
    storeNibblesQ4_0(xp + 128, op + 20, i32x4.shuffle(idv, idv, 1, 1, 1, 1), h, c15);
    storeNibblesQ4_0(xp + 256, op + 38, i32x4.shuffle(idv, idv, 2, 2, 2, 2), h, c15);
    storeNibblesQ4_0(xp + 384, op + 56, i32x4.shuffle(idv, idv, 3, 3, 3, 3), h, c15);
    if (flags != 0) {
      const sp = i32x4.bitmask(special);
      if (sp & 1) quantizeBlockQ4_0Scalar(xp, op);
      if (sp & 2) quantizeBlockQ4_0Scalar(xp + 128, op + 18);
      if (sp & 4) quantizeBlockQ4_0Scalar(xp + 256, op + 36);
      if (sp & 8) quantizeBlockQ4_0Scalar(xp + 384, op + 54);
    }
  }
  // tail: the last 1..3 blocks one at a time
  for (; b < nb; b++) {
    const xp = x + (<usize>b << 7);
    const op = out + <usize>b * 18;
    const max = blockMaxQ4_0(xp, zero);
    if (isNaN(max)) {
      quantizeBlockQ4_0Scalar(xp, op);
      continue;
    }
    const d: f32 = max * <f32>-0.125;
    store<u16>(op, <u16>f2h(d));
    storeNibblesQ4_0(xp, op + 2, f32x4.splat(max != 0 ? <f32>-8.0 / max : 0), h, c15);
  }
}

// max for a flagged lane: +0 for an all-zero block, the first element of magnitude amax for a ±tie, anything for a
// special block (it is redone by the scalar path).
@inline function tieMax(xp: usize, amax: f32): f32 {
  if (amax == 0) return 0;
  if (!(amax < <f32>3.4e38) || amax < <f32>2.4e-37) return amax;
  return firstOfMagnitude(xp, amax);
}

// Quantizes n floats at x to n/32 standard Q8_0 blocks at out (34 bytes each). n a multiple of 32.
export function quantizeRowQ8_0(x: usize, out: usize, n: i32): void {
  const nb = n >> 5;
  const zero = f32x4.splat(<f32>(n >>> 31)); // 0, opaque to Binaryen (see quantizeRowQ4_0)
  for (let b = 0; b < nb; b++) {
    const op = out + <usize>b * 34;
    const d = quantizeBlockQ8(x + (<usize>b << 7), op + 2, zero);
    store<u16>(op, <u16>f2h(d));
  }
}

// Quantizes one block of 32 floats at x to 32 int8 at q (reference numerics); returns d (f32, before fp16 rounding).
@inline function quantizeBlockQ8(xp: usize, q: usize, zero: v128): f32 {
  const v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
  const v4 = v128.load(xp, 64), v5 = v128.load(xp, 80), v6 = v128.load(xp, 96), v7 = v128.load(xp, 112);
  const a0 = f32x4.pmax(f32x4.pmax(f32x4.pmax(f32x4.pmax(zero, f32x4.abs(v0)), f32x4.abs(v1)), f32x4.abs(v2)), f32x4.abs(v3));
  const a1 = f32x4.pmax(f32x4.pmax(f32x4.pmax(f32x4.pmax(zero, f32x4.abs(v4)), f32x4.abs(v5)), f32x4.abs(v6)), f32x4.abs(v7));
  // (sum of all lanes) * 0 is NaN iff a lane is NaN or Inf (or the sum overflows): then the scalar path
  const t = f32x4.add(f32x4.add(f32x4.add(v0, v1), f32x4.add(v2, v3)), f32x4.add(f32x4.add(v4, v5), f32x4.add(v6, v7)));
  const t0 = f32x4.mul(t, zero);
  const special = v128.any_true(f32x4.ne(t0, t0));
  const amax = special ? <f32>NaN : hmax4(f32x4.pmax(a0, a1));
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
  const half = f32x4.add(zero, f32x4.splat(0.5));
  const r0 = roundAway4(f32x4.mul(v0, vid), half), r1 = roundAway4(f32x4.mul(v1, vid), half);
  const r2 = roundAway4(f32x4.mul(v2, vid), half), r3 = roundAway4(f32x4.mul(v3, vid), half);
  const r4 = roundAway4(f32x4.mul(v4, vid), half), r5 = roundAway4(f32x4.mul(v5, vid), half);
  const r6 = roundAway4(f32x4.mul(v6, vid), half), r7 = roundAway4(f32x4.mul(v7, vid), half);
  v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(r0, r1), i16x8.narrow_i32x4_s(r2, r3)));
  v128.store(q, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(r4, r5), i16x8.narrow_i32x4_s(r6, r7)), 16);
  return d;
}

// roundf on 4 lanes -> i32, |v| <= 127.5: t = trunc(v); t += sign(v) where |v - t| >= 0.5 (v - t is exact);
// the conversion of an integral value in range is exact, so the relaxed truncation is safe.
@inline function roundAway4(v: v128, half: v128): v128 {
  const t = f32x4.trunc(v);
  const m = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), half);
  const one = v128.or(v128.and(v, i32x4.splat(0x80000000)), f32x4.add(half, half));
  return i32x4.relaxed_trunc_f32x4_s(f32x4.add(t, v128.and(m, one)));
}

// Quantizes n floats at x (4-aligned) to the Q8A activation layout at act (16-aligned), nb = n/32:
//   act + 0:        int8 qs[n]      (block b at act + 32b; same quants as quantize_row_q8_0_ref)
//   act + n:        f32  d[nb]      (the fp16-rounded scale, as a Q8_0 block would store it)
//   act + n + 4nb:  i32  corr[nb]   (-8 * sum of the block's 32 quants: the Q4_0 zero-point correction)
export function quantizeQ8A(x: usize, act: usize, n: i32): void {
  const nb = n >> 5;
  const dp = act + <usize>n;
  const cp = dp + (<usize>nb << 2);
  const zero = f32x4.splat(<f32>(n >>> 31));
  for (let b = 0; b < nb; b++) {
    const q = act + (<usize>b << 5);
    const d = quantizeBlockQ8(x + (<usize>b << 7), q, zero);
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
        const qo = go + 32 + ((<usize>i >> 2) << 4) + ((<usize>i & 3) << 2);
        if (r < nRows) {
          const so = src + (<usize>r * <usize>nb + <usize>b) * 18;
          store<f32>(go + (<usize>i << 2), h2f(<u32>load<u16>(so)));
          for (let k = 0; k < 4; k++) store<u32>(qo + (<usize>k << 5), load<u32>(so + 2 + (<usize>k << 2)));
        } else {
          store<f32>(go + (<usize>i << 2), 0);
          for (let k = 0; k < 4; k++) store<u32>(qo + (<usize>k << 5), 0);
        }
      }
    }
  }
}

// Repacks nRows standard Q8_0 rows of nCols at src into the Q8_0R layout at dst (16-aligned,
// ceil(nRows/4) * nCols/32 * 144 bytes); see wasm/README.md. Per 4-row group and block: the 4 rows' scales as f32,
// then 8 vectors whose 4-byte lane i holds elements 4k..4k+3 of row i, each stored as w + 128 (= w ^ 0x80) so that
// its two nibbles are unsigned. Padding rows get d = 0 and zero bytes.
export function repackQ8_0(src: usize, dst: usize, nRows: i32, nCols: i32): void {
  const nb = nCols >> 5;
  const nGroups = (nRows + 3) >> 2;
  for (let g = 0; g < nGroups; g++) {
    for (let b = 0; b < nb; b++) {
      const go = dst + (<usize>g * <usize>nb + <usize>b) * 144;
      for (let i = 0; i < 4; i++) {
        const r = (g << 2) + i;
        const qo = go + 16 + (<usize>i << 2);
        if (r < nRows) {
          const so = src + (<usize>r * <usize>nb + <usize>b) * 34;
          store<f32>(go + (<usize>i << 2), h2f(<u32>load<u16>(so)));
          for (let k = 0; k < 8; k++) store<u32>(qo + (<usize>k << 4), load<u32>(so + 2 + (<usize>k << 2)) ^ 0x80808080);
        } else {
          store<f32>(go + (<usize>i << 2), 0);
          for (let k = 0; k < 8; k++) store<u32>(qo + (<usize>k << 4), 0);
        }
      }
    }
  }
}
