// Matrix-vector and matrix-matrix products: Q4_0 and Q8_0 weights (repacked at load, "Q4_0R"/"Q8_0R") against Q8A
// activations, F16 and F32 weights against f32 activations; and the streaming-read baseline.
// W (nRows, nCols) @ x (nCols,) -> y (nRows,); rows [rowStart, rowEnd) only, y points at row 0.
// see: wasm/README.md (layouts, alignment), src/kernels/scalar.ts (references)
import { h2f, h2f4, h2fKMant, h2fKMax, h2fKMul, h2fKSign, h2fKTop } from "./common";

// ---------------------------------------------------------------------------------------------------------------
// Q4_0R × Q8A. One group = 8 rows; per block a 160-byte record: f32 d[8], then for half h (rows 4h..4h+3) and
// k = 0..3 a 16-byte vector whose 4-byte lane i holds bytes 4k..4k+3 of row 4h+i. Low nibbles are elements
// 4k..4k+3 and high nibbles elements 16+4k..16+4k+3, so a 4-byte splat of the activation quants and a relaxed dot
// leave one row's partial sum in each i32 lane: no horizontal reductions. Nibbles stay unsigned (0..15, the i7
// operand); the -8 zero point enters through corr = -8 * sum(x quants).
// Two forms of every quantized kernel here (`vnni`, a constant at each call that folds away after inlining): the i16
// form sums relaxed i16 dots in i16 (8 dots of pairs: at most 8 · 2 · 127 · 15 = 30480) and widens once per block;
// the VNNI form ("...Vnni" exports) accumulates with i32x4.relaxed_dot_i8x16_i7x16_add_s, one vpdpbusd where V8 sees
// AVX-VNNI (three instructions elsewhere, where the i16 form is faster), straight into i32 lanes. Both compute the same
// integer block sums and everything after them is shared, so the two forms are equal bit for bit; src/kernels/wasm.ts
// (pickDotForm) measures which is faster on the host.

// The first dot of a sum: the i16 dot (i16 form), or the dot added to init in i32 (VNNI form).
@inline function dotFirst(x: v128, n: v128, init: v128, vnni: bool): v128 {
  return vnni ? i32x4.relaxed_dot_i8x16_i7x16_add_s(x, n, init) : i16x8.relaxed_dot_i8x16_i7x16_s(x, n);
}

// sum + the dot of x and the nibbles n, in the form's lanes.
@inline function dotStep(x: v128, n: v128, sum: v128, vnni: bool): v128 {
  return vnni ? i32x4.relaxed_dot_i8x16_i7x16_add_s(x, n, sum) : i16x8.add(sum, i16x8.relaxed_dot_i8x16_i7x16_s(x, n));
}

// A Q4_0R block's exact i32 sums, one row per lane, from the form's sums: i16 form widen + c; the VNNI form's sums
// already hold c.
@inline function q4BlockSum(sum: v128, c: v128, vnni: bool): v128 {
  return vnni ? sum : i32x4.add(i32x4.extadd_pairwise_i16x8_s(sum), c);
}

// The dot of one 8-row group over all nb blocks, stored as two f32x4 at accp (rows 0-3 and 4-7).
@inline function groupDot(wg: usize, act: usize, xd: usize, xc: usize, nb: i32, accp: usize, vnni: bool): void {
  // (nb >>> 31) is 0 for every valid call; it keeps Binaryen from folding the mask into a v128.const at each of its
  // 16 uses, which V8 would rematerialize inside the hot loop (likewise the zero)
  const mask = i8x16.splat(<i8>(0x0f | (nb >>> 31)));
  const zero = i32x4.splat(nb >>> 31);
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let wp = wg;
  // hot loop: 8 weight vectors (128 nibble bytes) and 8 activation splats per block, 16 relaxed dots in four chains
  // (t: rows 0-3, u: rows 4-7; 0: low nibbles, 1: high); the two halves are identical trees over adjacent vectors
  // (revectorizer pairs)
  for (let b = 0; b < nb; b++) {
    const xp = act + (<usize>b << 5);
    const c = v128.load32_splat(xc + (<usize>b << 2));
    const x0 = v128.load32_splat(xp), x1 = v128.load32_splat(xp, 4);
    const x2 = v128.load32_splat(xp, 8), x3 = v128.load32_splat(xp, 12);
    const x4 = v128.load32_splat(xp, 16), x5 = v128.load32_splat(xp, 20);
    const x6 = v128.load32_splat(xp, 24), x7 = v128.load32_splat(xp, 28);
    let w = v128.load(wp, 32), v = v128.load(wp, 48);
    let t0 = dotFirst(x0, v128.and(w, mask), c, vnni);
    let u0 = dotFirst(x0, v128.and(v, mask), c, vnni);
    let t1 = dotFirst(x4, v128.and(i16x8.shr_u(w, 4), mask), zero, vnni);
    let u1 = dotFirst(x4, v128.and(i16x8.shr_u(v, 4), mask), zero, vnni);
    w = v128.load(wp, 64);
    v = v128.load(wp, 80);
    t0 = dotStep(x1, v128.and(w, mask), t0, vnni);
    u0 = dotStep(x1, v128.and(v, mask), u0, vnni);
    t1 = dotStep(x5, v128.and(i16x8.shr_u(w, 4), mask), t1, vnni);
    u1 = dotStep(x5, v128.and(i16x8.shr_u(v, 4), mask), u1, vnni);
    w = v128.load(wp, 96);
    v = v128.load(wp, 112);
    t0 = dotStep(x2, v128.and(w, mask), t0, vnni);
    u0 = dotStep(x2, v128.and(v, mask), u0, vnni);
    t1 = dotStep(x6, v128.and(i16x8.shr_u(w, 4), mask), t1, vnni);
    u1 = dotStep(x6, v128.and(i16x8.shr_u(v, 4), mask), u1, vnni);
    w = v128.load(wp, 128);
    v = v128.load(wp, 144);
    t0 = dotStep(x3, v128.and(w, mask), t0, vnni);
    u0 = dotStep(x3, v128.and(v, mask), u0, vnni);
    t1 = dotStep(x7, v128.and(i16x8.shr_u(w, 4), mask), t1, vnni);
    u1 = dotStep(x7, v128.and(i16x8.shr_u(v, 4), mask), u1, vnni);
    const s0 = q4BlockSum(vnni ? i32x4.add(t0, t1) : i16x8.add(t0, t1), c, vnni);
    const s1 = q4BlockSum(vnni ? i32x4.add(u0, u1) : i16x8.add(u0, u1), c, vnni);
    // exact integer block sums -> f32, times d_w (4 rows) * d_x
    const dx = v128.load32_splat(xd + (<usize>b << 2));
    acc0 = f32x4.relaxed_madd(f32x4.convert_i32x4_s(s0), f32x4.mul(v128.load(wp), dx), acc0);
    acc1 = f32x4.relaxed_madd(f32x4.convert_i32x4_s(s1), f32x4.mul(v128.load(wp, 16), dx), acc1);
    wp += 160;
  }
  v128.store(accp, acc0);
  v128.store(accp, acc1, 16);
}

// Copies rows [r, min(r+8, rowEnd)) of a group result at src (8 f32) to dst (f32 row r).
@inline function storeRows(src: usize, dst: usize, r: i32, rowEnd: i32): void {
  const n = min(8, rowEnd - r);
  if (n == 8) {
    v128.store(dst, v128.load(src));
    v128.store(dst, v128.load(src, 16), 16);
  } else {
    for (let i = 0; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
  }
}

// y[r] = W[r,:] · x for r in [rowStart, rowEnd); w is Q4_0R (16-aligned), act is Q8A of x (16-aligned),
// y f32 (4-aligned), scratch 32 bytes (16-aligned, not overlapping y). rowStart must be a multiple of 8.
// Full groups straight into y; a last partial group via scratch.
export function matvecQ4_0R(w: usize, act: usize, y: usize, nCols: i32, rowStart: i32, rowEnd: i32, scratch: usize): void {
  q4RMatvec(w, act, y, nCols, rowStart, rowEnd, scratch, false);
}

// matvecQ4_0R in the VNNI form (same arguments, same results bit for bit).
export function matvecQ4_0RVnni(
  w: usize, act: usize, y: usize, nCols: i32, rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  q4RMatvec(w, act, y, nCols, rowStart, rowEnd, scratch, true);
}

@inline function q4RMatvec(
  w: usize, act: usize, y: usize, nCols: i32, rowStart: i32, rowEnd: i32, scratch: usize, vnni: bool,
): void {
  const nb = nCols >> 5;
  const xd = act + <usize>nCols;
  const xc = xd + (<usize>nb << 2);
  const gBytes = <usize>nb * 160;
  let r = rowStart;
  for (; r + 8 <= rowEnd; r += 8) groupDot(w + <usize>(r >> 3) * gBytes, act, xd, xc, nb, y + (<usize>r << 2), vnni);
  for (; r < rowEnd; r += 8) {
    groupDot(w + <usize>(r >> 3) * gBytes, act, xd, xc, nb, scratch, vnni);
    storeRows(scratch, y + (<usize>r << 2), r, rowEnd);
  }
}

// One half (4 rows) of one block of a group against activation rows [a0, aEnd) (stride apart): the half's four nibble
// vectors are unpacked once into eight i8x16 (0..15) kept in registers while each activation row's quants are
// splatted 4 bytes at a time and dotted with them. acc: one f32x4 accumulator per activation row, 32 bytes apart;
// dp: the half's 4 row scales (f32); vp: its first nibble vector (the next three follow 32 bytes apart: the other
// half's vectors are interleaved). Per (row, block) the integer block sums are groupDot's and the float steps follow in
// the same order, so the results equal matvecQ4_0R's bit for bit.
@inline function halfBlockBatch(
  dp: usize, vp: usize, a0: usize, aEnd: usize, stride: usize, dOff: usize, cOff: usize, acc: usize, mask: v128,
): void {
  let v = v128.load(vp);
  const l0 = v128.and(v, mask), h0 = v128.and(i16x8.shr_u(v, 4), mask);
  v = v128.load(vp, 32);
  const l1 = v128.and(v, mask), h1 = v128.and(i16x8.shr_u(v, 4), mask);
  v = v128.load(vp, 64);
  const l2 = v128.and(v, mask), h2 = v128.and(i16x8.shr_u(v, 4), mask);
  v = v128.load(vp, 96);
  const l3 = v128.and(v, mask), h3 = v128.and(i16x8.shr_u(v, 4), mask);
  const dw = v128.load(dp);
  let q = acc;
  // hot loop of the batched product: per activation row 8 splat loads, 8 relaxed dots (128 MACs), 7 i16 adds, one
  // widening pairwise add, the zero-point correction, convert, scale, accumulate; no weight work
  for (let xp = a0; xp < aEnd; xp += stride) {
    let s0 = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp), l0);
    let s1 = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 16), h0);
    s0 = i16x8.add(s0, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 4), l1));
    s1 = i16x8.add(s1, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 20), h1));
    s0 = i16x8.add(s0, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 8), l2));
    s1 = i16x8.add(s1, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 24), h2));
    s0 = i16x8.add(s0, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 12), l3));
    s1 = i16x8.add(s1, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xp, 28), h3));
    const s = i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.add(s0, s1)), v128.load32_splat(xp + cOff));
    const dx = v128.load32_splat(xp + dOff);
    v128.store(q, f32x4.relaxed_madd(f32x4.convert_i32x4_s(s), f32x4.mul(dw, dx), v128.load(q)));
    q += 32;
  }
}

// The activation quants 4i..4i+3 of a 16-byte vector a, splat to all four lanes (one pshufd). The batched passes load
// 16 quants at once and splat from the register: every WASM memory access carries a software bounds check in Deno
// (V8's trap handler is not enabled there), so one load plus four shuffles is fewer instructions than four splat loads.
@inline function lane4(a: v128, i: i32): v128 {
  if (i == 0) return v128.shuffle<u32>(a, a, 0, 0, 0, 0);
  if (i == 1) return v128.shuffle<u32>(a, a, 1, 1, 1, 1);
  if (i == 2) return v128.shuffle<u32>(a, a, 2, 2, 2, 2);
  return v128.shuffle<u32>(a, a, 3, 3, 3, 3);
}

// Low pass over one block of a full 8-row group: the low nibbles of both halves (elements 0..15 of 8 rows, eight
// i8x16) are unpacked once and kept in registers; each activation row's quants 0..15 are loaded as one vector and
// splat 4 bytes at a time (each splat serves both halves); the two halves' partial sums (the VNNI form's starting
// from the correction) go to part (32 bytes per activation row).
@inline function lowPass8(
  wp: usize, a0: usize, aEnd: usize, stride: usize, part: usize, cOff: usize, mask: v128, vnni: bool,
): void {
  const p0 = v128.and(v128.load(wp, 32), mask), q0 = v128.and(v128.load(wp, 48), mask);
  const p1 = v128.and(v128.load(wp, 64), mask), q1 = v128.and(v128.load(wp, 80), mask);
  const p2 = v128.and(v128.load(wp, 96), mask), q2 = v128.and(v128.load(wp, 112), mask);
  const p3 = v128.and(v128.load(wp, 128), mask), q3 = v128.and(v128.load(wp, 144), mask);
  const zero = v128.xor(mask, mask);
  let o = part;
  // hot loop (1 of 2): 1 load, 4 shuffles, 8 relaxed dots (128 MACs), 6 i16 adds, 2 stores per activation row
  for (let xp = a0; xp < aEnd; xp += stride) {
    const a = v128.load(xp);
    const c = vnni ? v128.load32_splat(xp + cOff) : zero;
    let x = lane4(a, 0);
    let s = dotFirst(x, p0, c, vnni), u = dotFirst(x, q0, c, vnni);
    x = lane4(a, 1);
    s = dotStep(x, p1, s, vnni);
    u = dotStep(x, q1, u, vnni);
    x = lane4(a, 2);
    s = dotStep(x, p2, s, vnni);
    u = dotStep(x, q2, u, vnni);
    x = lane4(a, 3);
    s = dotStep(x, p3, s, vnni);
    u = dotStep(x, q3, u, vnni);
    v128.store(o, s);
    v128.store(o, u, 16);
    o += 32;
  }
}

// High pass: elements 16..31 of the same 8 rows, added to the low pass's partial sums; then per half the exact i32
// block sums -> f32, times d_w * d_x, accumulated into the 8 f32 of activation row t at acc + 32t (a compact
// accumulator in scratch: y rows are nRows*4 bytes apart, which for 4096 rows puts every activation row's outputs in
// the same L1 set).
@inline function highPass8(
  wp: usize, a0: usize, aEnd: usize, stride: usize, part: usize, dOff: usize, cOff: usize, acc: usize, mask: v128,
  vnni: bool,
): void {
  const p0 = v128.and(i16x8.shr_u(v128.load(wp, 32), 4), mask), q0 = v128.and(i16x8.shr_u(v128.load(wp, 48), 4), mask);
  const p1 = v128.and(i16x8.shr_u(v128.load(wp, 64), 4), mask), q1 = v128.and(i16x8.shr_u(v128.load(wp, 80), 4), mask);
  const p2 = v128.and(i16x8.shr_u(v128.load(wp, 96), 4), mask), q2 = v128.and(i16x8.shr_u(v128.load(wp, 112), 4), mask);
  const p3 = v128.and(i16x8.shr_u(v128.load(wp, 128), 4), mask), q3 = v128.and(i16x8.shr_u(v128.load(wp, 144), 4), mask);
  const dw0 = v128.load(wp), dw1 = v128.load(wp, 16);
  const zero = v128.xor(mask, mask);
  let o = part, yq = acc;
  // hot loop (2 of 2): 1 load, 4 shuffles, 8 relaxed dots, 8 i16 adds, then per half: widening pairwise add,
  // correction, convert, scale, fma into the accumulator
  for (let xp = a0; xp < aEnd; xp += stride) {
    const a = v128.load(xp, 16);
    let x = lane4(a, 0);
    let s = dotStep(x, p0, v128.load(o), vnni), u = dotStep(x, q0, v128.load(o, 16), vnni);
    x = lane4(a, 1);
    s = dotStep(x, p1, s, vnni);
    u = dotStep(x, q1, u, vnni);
    x = lane4(a, 2);
    s = dotStep(x, p2, s, vnni);
    u = dotStep(x, q2, u, vnni);
    x = lane4(a, 3);
    s = dotStep(x, p3, s, vnni);
    u = dotStep(x, q3, u, vnni);
    const c = vnni ? zero : v128.load32_splat(xp + cOff), dx = v128.load32_splat(xp + dOff);
    const si = q4BlockSum(s, c, vnni), ui = q4BlockSum(u, c, vnni);
    v128.store(yq, f32x4.relaxed_madd(f32x4.convert_i32x4_s(si), f32x4.mul(dw0, dx), v128.load(yq)));
    v128.store(yq, f32x4.relaxed_madd(f32x4.convert_i32x4_s(ui), f32x4.mul(dw1, dx), v128.load(yq, 16)), 16);
    o += 32;
    yq += 32;
  }
}

// Activation rows per tile of the batched product.
const ACT_TILE: i32 = 16;

// Y (batch, nRows) = X (batch, nCols) @ W^T for rows [rowStart, rowEnd). acts: batch Q8A rows, actStride bytes apart
// (16-aligned, >= nCols*5/4); y row t at y + 4*t*nRows; scratch: 64*min(batch, 16) bytes (16-aligned).
// Register tiling: per full 8-row group, tile of ACT_TILE activation rows and block, the low and then the high
// nibbles of the group (8 vectors each) are unpacked once and dotted with every activation row of the tile
// (lowPass8/highPass8: each splat of activation quants serves 8 rows); scratch holds the partial sums of the low
// pass (32 bytes per activation row) and then the tile's f32 accumulators (32 bytes per activation row), copied to y
// after the last block. A last group with fewer than 8 rows in range uses halfBlockBatch (i16 form, both forms: the
// same integer sums) with its accumulators in scratch. Per (row, block) the integer block sums are groupDot's and the
// float steps follow in the same order: every output equals matvecQ4_0R's bit for bit.
export function matmulQ4_0R(
  w: usize, acts: usize, actStride: i32, y: usize, nCols: i32, nRows: i32, batch: i32,
  rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  q4RMatmul(w, acts, actStride, y, nCols, nRows, batch, rowStart, rowEnd, scratch, false);
}

// matmulQ4_0R in the VNNI form (same arguments and scratch, same results bit for bit).
export function matmulQ4_0RVnni(
  w: usize, acts: usize, actStride: i32, y: usize, nCols: i32, nRows: i32, batch: i32,
  rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  q4RMatmul(w, acts, actStride, y, nCols, nRows, batch, rowStart, rowEnd, scratch, true);
}

@inline function q4RMatmul(
  w: usize, acts: usize, actStride: i32, y: usize, nCols: i32, nRows: i32, batch: i32,
  rowStart: i32, rowEnd: i32, scratch: usize, vnni: bool,
): void {
  // two rows: the weight unpacking the tiles share is not worth their partial-sum traffic (measured ~6% slower than
  // two matvecs on the AMD EPYC; faster from three rows on)
  if (batch <= 2) {
    for (let t = 0; t < batch; t++) {
      const at = acts + <usize>t * <usize>actStride, yt = y + ((<usize>t * <usize>nRows) << 2);
      if (vnni) matvecQ4_0RVnni(w, at, yt, nCols, rowStart, rowEnd, scratch);
      else matvecQ4_0R(w, at, yt, nCols, rowStart, rowEnd, scratch);
    }
    return;
  }
  const nb = nCols >> 5;
  const gBytes = <usize>nb * 160;
  const stride = <usize>actStride;
  const yStride = <usize>nRows << 2;
  // (nCols >>> 31) is 0: an opaque mask so it is not rematerialized from a v128.const at each use
  const mask = i8x16.splat(<i8>(0x0f | (nCols >>> 31)));
  const zero = f32x4.splat(<f32>(nCols >>> 31));
  const accp = scratch + (<usize>min(batch, ACT_TILE) << 5);
  let r = rowStart;
  for (; r + 8 <= rowEnd; r += 8) {
    const wg = w + <usize>(r >> 3) * gBytes;
    for (let t0 = 0; t0 < batch; t0 += ACT_TILE) {
      const t1 = min(batch, t0 + ACT_TILE);
      const a0 = acts + <usize>t0 * stride, aEnd = acts + <usize>t1 * stride;
      const accEnd = accp + (<usize>(t1 - t0) << 5);
      for (let q = accp; q < accEnd; q += 16) v128.store(q, zero);
      let wp = wg;
      for (let b = 0; b < nb; b++) {
        const xo = <usize>b << 5;
        const dOff = <usize>nCols + (<usize>b << 2) - xo;
        const cOff = dOff + (<usize>nb << 2);
        lowPass8(wp, a0 + xo, aEnd + xo, stride, scratch, cOff, mask, vnni);
        highPass8(wp, a0 + xo, aEnd + xo, stride, scratch, dOff, cOff, accp, mask, vnni);
        wp += 160;
      }
      let yp = y + ((<usize>t0 * <usize>nRows + <usize>r) << 2);
      for (let q = accp; q < accEnd; q += 32) {
        v128.store(yp, v128.load(q));
        v128.store(yp, v128.load(q, 16), 16);
        yp += yStride;
      }
    }
  }
  if (r < rowEnd) {
    const wg = w + <usize>(r >> 3) * gBytes;
    for (let t0 = 0; t0 < batch; t0 += ACT_TILE) {
      const t1 = min(batch, t0 + ACT_TILE);
      const a0 = acts + <usize>t0 * stride, aEnd = acts + <usize>t1 * stride;
      const accEnd = scratch + (<usize>(t1 - t0) << 5);
      for (let q = scratch; q < accEnd; q += 16) v128.store(q, zero);
      let wp = wg;
      for (let b = 0; b < nb; b++) {
        const xo = <usize>b << 5;
        const dOff = <usize>nCols + (<usize>b << 2) - xo;
        const cOff = dOff + (<usize>nb << 2);
        halfBlockBatch(wp, wp + 32, a0 + xo, aEnd + xo, stride, dOff, cOff, scratch, mask);
        halfBlockBatch(wp + 16, wp + 48, a0 + xo, aEnd + xo, stride, dOff, cOff, scratch + 16, mask);
        wp += 160;
      }
      for (let t = t0; t < t1; t++) {
        storeRows(scratch + (<usize>(t - t0) << 5), y + ((<usize>t * <usize>nRows + <usize>r) << 2), r, rowEnd);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Q8_0R × Q8A. One group = 4 rows; per block a 144-byte record: f32 d[4], then 8 vectors, vector k's 4-byte lane i
// holding elements 4k..4k+3 of row i as u = w + 128 = 16·hi + lo (two unsigned nibbles). With the activation quants
// x (|x| <= 127) splat 4 bytes at a time, the unsigned-nibble relaxed dot (as for Q4_0R) gives per lane, exactly,
//   Σ x·w = 16·(Σ x·hi − 8·Σx) + Σ x·lo,   and −8·Σx is the Q8A corr term.
// Each block's term sumi · d_w · d_x is exact in f64 (19 + 11 + 11 significant bits) and the terms are summed in f64,
// so a row's result is the exact dot of the dequantized weights and activations up to f64 rounding, then rounded to
// f32 once: what the f64 reference (dequantize, multiply, sum) gives, not merely close to it.
// Two forms of every kernel (`vnni`, a constant at each call, folds away after inlining): the i16 form sums the
// relaxed i16 dots in i16 (8 dots of pairs: |sum| <= 8 · 2 · 127 · 15 = 30480) and widens once per block; the VNNI form
// ("...Vnni" exports) accumulates with i32x4.relaxed_dot_i8x16_i7x16_add_s (one vpdpbusd where V8 sees AVX-VNNI, three
// instructions elsewhere) straight into i32 lanes, the hi sums starting from corr. Both give the same integer block
// sums and the same f64 terms after them, so the forms are equal bit for bit; src/kernels/wasm.ts (pickDotForm)
// measures which is faster on the host.

// The exact i32 block sums 16·(hi + c) + lo, one row per lane (the VNNI form's hi already holds c).
@inline function q8BlockSum(lo: v128, hi: v128, c: v128, vnni: bool): v128 {
  if (vnni) return i32x4.add(i32x4.shl(hi, 4), lo);
  return i32x4.add(i32x4.shl(i32x4.add(i32x4.extadd_pairwise_i16x8_s(hi), c), 4), i32x4.extadd_pairwise_i16x8_s(lo));
}

// acc + s · p in f64 for rows 0-1 (upper false) or 2-3 (upper true) of the group. p = d_w · d_x (the 4 rows' f32
// scales times the activation's) is exact in f32: two 11-bit significands; and s · p is exact in f64 (19 + 22 bits),
// so the multiply-add rounds once, at the add, fused or not.
@inline function q8Term(s: v128, p: v128, acc: v128, upper: bool): v128 {
  const si = upper ? v128.shuffle<u32>(s, s, 2, 3, 2, 3) : s, pi = upper ? v128.shuffle<u32>(p, p, 2, 3, 2, 3) : p;
  return f64x2.relaxed_madd(f64x2.convert_low_i32x4_s(si), f64x2.promote_low_f32x4(pi), acc);
}

// The dot of one 4-row group (at wp) with one Q8A row: one row per lane of the returned f32x4.
@inline function q8RGroupDot(wp: usize, act: usize, xd: usize, xc: usize, nb: i32, vnni: bool): v128 {
  const mask = i8x16.splat(<i8>(0x0f | (nb >>> 31))); // see groupDot: keeps the mask out of the loop's constants
  const zero = i32x4.splat(nb >>> 31); // an opaque zero, likewise
  let acc01 = f64x2.splat(0), acc23 = f64x2.splat(0);
  // hot loop: 8 weight vectors (lo and hi nibbles) and 8 activation splats per block, 16 relaxed dots
  for (let b = 0; b < nb; b++) {
    const xp = act + (<usize>b << 5);
    const c = v128.load32_splat(xc + (<usize>b << 2));
    let x = v128.load32_splat(xp), w = v128.load(wp, 16);
    let lo = dotFirst(x, v128.and(w, mask), zero, vnni), hi = dotFirst(x, v128.and(i16x8.shr_u(w, 4), mask), c, vnni);
    x = v128.load32_splat(xp, 4);
    w = v128.load(wp, 32);
    lo = dotStep(x, v128.and(w, mask), lo, vnni);
    hi = dotStep(x, v128.and(i16x8.shr_u(w, 4), mask), hi, vnni);
    x = v128.load32_splat(xp, 8);
    w = v128.load(wp, 48);
    lo = dotStep(x, v128.and(w, mask), lo, vnni);
    hi = dotStep(x, v128.and(i16x8.shr_u(w, 4), mask), hi, vnni);
    x = v128.load32_splat(xp, 12);
    w = v128.load(wp, 64);
    lo = dotStep(x, v128.and(w, mask), lo, vnni);
    hi = dotStep(x, v128.and(i16x8.shr_u(w, 4), mask), hi, vnni);
    x = v128.load32_splat(xp, 16);
    w = v128.load(wp, 80);
    lo = dotStep(x, v128.and(w, mask), lo, vnni);
    hi = dotStep(x, v128.and(i16x8.shr_u(w, 4), mask), hi, vnni);
    x = v128.load32_splat(xp, 20);
    w = v128.load(wp, 96);
    lo = dotStep(x, v128.and(w, mask), lo, vnni);
    hi = dotStep(x, v128.and(i16x8.shr_u(w, 4), mask), hi, vnni);
    x = v128.load32_splat(xp, 24);
    w = v128.load(wp, 112);
    lo = dotStep(x, v128.and(w, mask), lo, vnni);
    hi = dotStep(x, v128.and(i16x8.shr_u(w, 4), mask), hi, vnni);
    x = v128.load32_splat(xp, 28);
    w = v128.load(wp, 128);
    lo = dotStep(x, v128.and(w, mask), lo, vnni);
    hi = dotStep(x, v128.and(i16x8.shr_u(w, 4), mask), hi, vnni);
    const s = q8BlockSum(lo, hi, c, vnni);
    const p = f32x4.mul(v128.load(wp), v128.load32_splat(xd + (<usize>b << 2)));
    acc01 = q8Term(s, p, acc01, false);
    acc23 = q8Term(s, p, acc23, true);
    wp += 144;
  }
  const lo = f32x4.demote_f64x2_zero(acc01), hi = f32x4.demote_f64x2_zero(acc23);
  return v128.shuffle<u32>(lo, hi, 0, 1, 4, 5);
}

// Stores the rows [r, min(r + 4, rowEnd)) of a group result v at y (f32 row r).
@inline function storeGroup4(v: v128, y: usize, r: i32, rowEnd: i32): void {
  const n = rowEnd - r;
  if (n >= 4) {
    v128.store(y, v);
  } else {
    store<f32>(y, f32x4.extract_lane(v, 0));
    if (n > 1) store<f32>(y, f32x4.extract_lane(v, 1), 4);
    if (n > 2) store<f32>(y, f32x4.extract_lane(v, 2), 8);
  }
}

// y[r] = W[r,:] · x for r in [rowStart, rowEnd); w is Q8_0R (16-aligned), act the Q8A of x (16-aligned), y f32
// (4-aligned). rowStart must be a multiple of 4.
export function matvecQ8_0R(w: usize, act: usize, y: usize, nCols: i32, rowStart: i32, rowEnd: i32): void {
  q8RMatvec(w, act, y, nCols, rowStart, rowEnd, false);
}

// matvecQ8_0R in the VNNI form (same arguments, same results bit for bit).
export function matvecQ8_0RVnni(w: usize, act: usize, y: usize, nCols: i32, rowStart: i32, rowEnd: i32): void {
  q8RMatvec(w, act, y, nCols, rowStart, rowEnd, true);
}

@inline function q8RMatvec(w: usize, act: usize, y: usize, nCols: i32, rowStart: i32, rowEnd: i32, vnni: bool): void {
  const nb = nCols >> 5;
  const gBytes = <usize>nb * 144;
  const xd = act + <usize>nCols;
  const xc = xd + (<usize>nb << 2);
  for (let r = rowStart; r < rowEnd; r += 4) {
    storeGroup4(q8RGroupDot(w + <usize>(r >> 2) * gBytes, act, xd, xc, nb, vnni), y + (<usize>r << 2), r, rowEnd);
  }
}

// Pass 1 of the batched Q8_0R product over one block of a 4-row group: elements 0..15 (vectors k = 0..3) unpacked once
// into eight unsigned-nibble vectors kept in registers; per activation row one load of its quants 0..15, four splat
// shuffles, 8 relaxed dots; the lo and hi partial sums go to part (32 bytes per activation row).
@inline function q8RPass1(
  wp: usize, a0: usize, aEnd: usize, stride: usize, part: usize, cOff: usize, mask: v128, vnni: bool,
): void {
  let w = v128.load(wp, 16);
  const l0 = v128.and(w, mask), h0 = v128.and(i16x8.shr_u(w, 4), mask);
  w = v128.load(wp, 32);
  const l1 = v128.and(w, mask), h1 = v128.and(i16x8.shr_u(w, 4), mask);
  w = v128.load(wp, 48);
  const l2 = v128.and(w, mask), h2 = v128.and(i16x8.shr_u(w, 4), mask);
  w = v128.load(wp, 64);
  const l3 = v128.and(w, mask), h3 = v128.and(i16x8.shr_u(w, 4), mask);
  const zero = v128.xor(mask, mask);
  let o = part;
  // hot loop (1 of 2): 1 load, 4 shuffles, 8 relaxed dots (64 MACs), 2 stores per activation row
  for (let xp = a0; xp < aEnd; xp += stride) {
    const a = v128.load(xp);
    let x = lane4(a, 0);
    let lo = dotFirst(x, l0, zero, vnni);
    let hi = dotFirst(x, h0, vnni ? v128.load32_splat(xp + cOff) : zero, vnni);
    x = lane4(a, 1);
    lo = dotStep(x, l1, lo, vnni);
    hi = dotStep(x, h1, hi, vnni);
    x = lane4(a, 2);
    lo = dotStep(x, l2, lo, vnni);
    hi = dotStep(x, h2, hi, vnni);
    x = lane4(a, 3);
    lo = dotStep(x, l3, lo, vnni);
    hi = dotStep(x, h3, hi, vnni);
    v128.store(o, lo);
    v128.store(o, hi, 16);
    o += 32;
  }
}

// Pass 2: elements 16..31 (vectors k = 4..7) added to pass 1's partial sums, then q8RGroupDot's block term in f64,
// added to the activation row's two f64x2 accumulators at acc + 32t (rows 0-1, rows 2-3).
@inline function q8RPass2(
  wp: usize, a0: usize, aEnd: usize, stride: usize, part: usize, dOff: usize, cOff: usize, acc: usize, mask: v128,
  vnni: bool,
): void {
  let w = v128.load(wp, 80);
  const l0 = v128.and(w, mask), h0 = v128.and(i16x8.shr_u(w, 4), mask);
  w = v128.load(wp, 96);
  const l1 = v128.and(w, mask), h1 = v128.and(i16x8.shr_u(w, 4), mask);
  w = v128.load(wp, 112);
  const l2 = v128.and(w, mask), h2 = v128.and(i16x8.shr_u(w, 4), mask);
  w = v128.load(wp, 128);
  const l3 = v128.and(w, mask), h3 = v128.and(i16x8.shr_u(w, 4), mask);
  const d = v128.load(wp); // the 4 rows' f32 scales
  const zero = v128.xor(mask, mask);
  let o = part, q = acc;
  // hot loop (2 of 2): as pass 1 from the partial sums, then the exact i32 block sums and their f64 terms
  for (let xp = a0; xp < aEnd; xp += stride) {
    const a = v128.load(xp, 16);
    let x = lane4(a, 0);
    let lo = dotStep(x, l0, v128.load(o), vnni), hi = dotStep(x, h0, v128.load(o, 16), vnni);
    x = lane4(a, 1);
    lo = dotStep(x, l1, lo, vnni);
    hi = dotStep(x, h1, hi, vnni);
    x = lane4(a, 2);
    lo = dotStep(x, l2, lo, vnni);
    hi = dotStep(x, h2, hi, vnni);
    x = lane4(a, 3);
    lo = dotStep(x, l3, lo, vnni);
    hi = dotStep(x, h3, hi, vnni);
    const s = q8BlockSum(lo, hi, vnni ? zero : v128.load32_splat(xp + cOff), vnni);
    const p = f32x4.mul(d, v128.load32_splat(xp + dOff));
    v128.store(q, q8Term(s, p, v128.load(q), false));
    v128.store(q, q8Term(s, p, v128.load(q, 16), true), 16);
    o += 32;
    q += 32;
  }
}

// Batched Q8_0R: Y (batch, nRows) = X (batch, nCols) @ W^T for rows [rowStart, rowEnd); acts: batch Q8A rows,
// actStride bytes apart; scratch: 64*min(batch, 16) bytes (16-aligned). Per 4-row group, tile of ACT_TILE activation
// rows and block: two passes of eight unpacked nibble vectors each (q8RPass1/2), every activation row's quants loaded
// once per pass; scratch holds the partial sums and then the tile's f64 accumulators. Per (row, block) the integer
// block sums are q8RGroupDot's and the f64 terms follow in the same order, so the results equal matvecQ8_0R's bit for
// bit.
export function matmulQ8_0R(
  w: usize, acts: usize, actStride: i32, y: usize, nCols: i32, nRows: i32, batch: i32, rowStart: i32, rowEnd: i32,
  scratch: usize,
): void {
  q8RMatmul(w, acts, actStride, y, nCols, nRows, batch, rowStart, rowEnd, scratch, false);
}

// matmulQ8_0R in the VNNI form (same arguments and scratch, same results bit for bit).
export function matmulQ8_0RVnni(
  w: usize, acts: usize, actStride: i32, y: usize, nCols: i32, nRows: i32, batch: i32, rowStart: i32, rowEnd: i32,
  scratch: usize,
): void {
  q8RMatmul(w, acts, actStride, y, nCols, nRows, batch, rowStart, rowEnd, scratch, true);
}

@inline function q8RMatmul(
  w: usize, acts: usize, actStride: i32, y: usize, nCols: i32, nRows: i32, batch: i32, rowStart: i32, rowEnd: i32,
  scratch: usize, vnni: bool,
): void {
  const nb = nCols >> 5;
  const gBytes = <usize>nb * 144;
  const stride = <usize>actStride;
  const yStride = <usize>nRows << 2;
  const mask = i8x16.splat(<i8>(0x0f | (nCols >>> 31))); // see groupDot: keeps the mask out of the loop's constants
  const zero = f64x2.splat(<f64>(nCols >>> 31));
  const accp = scratch + (<usize>min(batch, ACT_TILE) << 5);
  for (let r = rowStart; r < rowEnd; r += 4) {
    const wg = w + <usize>(r >> 2) * gBytes;
    for (let t0 = 0; t0 < batch; t0 += ACT_TILE) {
      const t1 = min(batch, t0 + ACT_TILE);
      const a0 = acts + <usize>t0 * stride, aEnd = acts + <usize>t1 * stride;
      const accEnd = accp + (<usize>(t1 - t0) << 5);
      for (let q = accp; q < accEnd; q += 16) v128.store(q, zero);
      let wp = wg;
      for (let b = 0; b < nb; b++) {
        const xo = <usize>b << 5;
        const dOff = <usize>nCols + (<usize>b << 2) - xo;
        const cOff = dOff + (<usize>nb << 2);
        q8RPass1(wp, a0 + xo, aEnd + xo, stride, scratch, cOff, mask, vnni);
        q8RPass2(wp, a0 + xo, aEnd + xo, stride, scratch, dOff, cOff, accp, mask, vnni);
        wp += 144;
      }
      let yp = y + ((<usize>t0 * <usize>nRows + <usize>r) << 2);
      for (let q = accp; q < accEnd; q += 32) {
        const lo = f32x4.demote_f64x2_zero(v128.load(q)), hi = f32x4.demote_f64x2_zero(v128.load(q, 16));
        storeGroup4(v128.shuffle<u32>(lo, hi, 0, 1, 4, 5), yp, r, rowEnd);
        yp += yStride;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// F16 / F32 weights × f32 x (any nCols; scalar tail).

@inline function hsum4(v: v128): f32 {
  const a = f32x4.add(v, v128.shuffle<u32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1);
}

@inline function dotF16Row(wr: usize, x: usize, n: i32, z: i32): f32 {
  const kMant = h2fKMant(z), kMul = h2fKMul(z), kMax = h2fKMax(z), kTop = h2fKTop(z), kSign = h2fKSign(z);
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const h = v128.load(wr + (<usize>j << 1));
    const xp = x + (<usize>j << 2);
    acc0 = f32x4.relaxed_madd(h2f4(i32x4.extend_low_i16x8_u(h), kMant, kMul, kMax, kTop, kSign), v128.load(xp), acc0);
    acc1 = f32x4.relaxed_madd(h2f4(i32x4.extend_high_i16x8_u(h), kMant, kMul, kMax, kTop, kSign), v128.load(xp, 16), acc1);
  }
  let s = hsum4(f32x4.add(acc0, acc1));
  for (; j < n; j++) s += h2f(<u32>load<u16>(wr + (<usize>j << 1))) * load<f32>(x + (<usize>j << 2));
  return s;
}

@inline function dotF32Row(wr: usize, x: usize, n: i32): f32 {
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const wp = wr + (<usize>j << 2), xp = x + (<usize>j << 2);
    acc0 = f32x4.relaxed_madd(v128.load(wp), v128.load(xp), acc0);
    acc1 = f32x4.relaxed_madd(v128.load(wp, 16), v128.load(xp, 16), acc1);
    acc2 = f32x4.relaxed_madd(v128.load(wp, 32), v128.load(xp, 32), acc2);
    acc3 = f32x4.relaxed_madd(v128.load(wp, 48), v128.load(xp, 48), acc3);
  }
  for (; j + 4 <= n; j += 4) {
    acc0 = f32x4.relaxed_madd(v128.load(wr + (<usize>j << 2)), v128.load(x + (<usize>j << 2)), acc0);
  }
  let s = hsum4(f32x4.add(f32x4.add(acc0, acc1), f32x4.add(acc2, acc3)));
  for (; j < n; j++) s += load<f32>(wr + (<usize>j << 2)) * load<f32>(x + (<usize>j << 2));
  return s;
}

// Four F16 rows at once, sharing the x loads, with a short conversion that is exact for every finite pattern: the
// sign-extended pattern shifted left by 13 has the sign in bit 31 and exponent/mantissa in bits 13..27 (bits 28..30,
// copies of the sign, are masked off), i.e. the magnitude scaled by 2^-112 (a float subnormal for f16 subnormals);
// one multiply by 2^112 gives the value, sign included. Inf/NaN patterns (exponent 31) would come out finite, so the
// loop keeps the unsigned max of (pattern << 1) over all four rows and returns false if any reached 0xf800; the
// caller then recomputes the rows with the exact dotF16Row (a branch per four rows, never taken on real weights).
@inline function dotF16Rows4(wr: usize, rowBytes: usize, x: usize, n: i32, y: usize, z: i32): bool {
  const kMask = i32x4.splat(0x8fffe000 | z), kMul = i32x4.splat(0x77800000 | z); // 2^112
  let e0 = f32x4.splat(0), e1 = f32x4.splat(0), e2 = f32x4.splat(0), e3 = f32x4.splat(0);
  let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
  let m = i32x4.splat(z);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const xp = x + (<usize>j << 2), wp = wr + (<usize>j << 1);
    const x0 = v128.load(xp), x1 = v128.load(xp, 16);
    // even and odd columns: 32-bit lane k of a row's 8 f16 holds columns 2k (low half) and 2k+1 (high half)
    const xe = v128.shuffle<u32>(x0, x1, 0, 2, 4, 6), xo = v128.shuffle<u32>(x0, x1, 1, 3, 5, 7);
    const h0 = v128.load(wp), h1 = v128.load(wp + rowBytes), h2 = v128.load(wp + 2 * rowBytes);
    const h3 = v128.load(wp + 3 * rowBytes);
    m = i16x8.max_u(m, i16x8.max_u(i16x8.max_u(i16x8.shl(h0, 1), i16x8.shl(h1, 1)), i16x8.max_u(i16x8.shl(h2, 1), i16x8.shl(h3, 1))));
    e0 = f32x4.relaxed_madd(f16Even(h0, kMask, kMul), xe, e0);
    o0 = f32x4.relaxed_madd(f16Odd(h0, kMask, kMul), xo, o0);
    e1 = f32x4.relaxed_madd(f16Even(h1, kMask, kMul), xe, e1);
    o1 = f32x4.relaxed_madd(f16Odd(h1, kMask, kMul), xo, o1);
    e2 = f32x4.relaxed_madd(f16Even(h2, kMask, kMul), xe, e2);
    o2 = f32x4.relaxed_madd(f16Odd(h2, kMask, kMul), xo, o2);
    e3 = f32x4.relaxed_madd(f16Even(h3, kMask, kMul), xe, e3);
    o3 = f32x4.relaxed_madd(f16Odd(h3, kMask, kMul), xo, o3);
  }
  // any pattern with exponent 31: (h << 1) >= 0xf800 as u16
  if (v128.any_true(i16x8.gt_u(m, i16x8.splat(<i16>(0xf7ff | z))))) return false;
  let s0 = hsum4(f32x4.add(e0, o0)), s1 = hsum4(f32x4.add(e1, o1));
  let s2 = hsum4(f32x4.add(e2, o2)), s3 = hsum4(f32x4.add(e3, o3));
  for (; j < n; j++) {
    const xj = load<f32>(x + (<usize>j << 2)), wp = wr + (<usize>j << 1);
    s0 += h2f(<u32>load<u16>(wp)) * xj;
    s1 += h2f(<u32>load<u16>(wp + rowBytes)) * xj;
    s2 += h2f(<u32>load<u16>(wp + 2 * rowBytes)) * xj;
    s3 += h2f(<u32>load<u16>(wp + 3 * rowBytes)) * xj;
  }
  store<f32>(y, s0);
  store<f32>(y, s1, 4);
  store<f32>(y, s2, 8);
  store<f32>(y, s3, 12);
  return true;
}

// The f16 in the low (even) / high (odd) half of each 32-bit lane, as f32 (finite patterns; see above): shifted so
// the f16 sign lands in bit 31 and exponent/mantissa in bits 13..27; the mask clears the sign copies in 28..30 and,
// for the odd half, the other f16's bits that the shift moved into bits 0..12.
@inline function f16Even(h: v128, kMask: v128, kMul: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shr_s(i32x4.shl(h, 16), 3), kMask), kMul);
}
@inline function f16Odd(h: v128, kMask: v128, kMul: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shr_s(h, 3), kMask), kMul);
}

// Rows [r, rowEnd) of W (f16, nCols columns) · x into y (y points at row 0; y rows contiguous).
@inline function f16Rows(w: usize, x: usize, y: usize, nCols: i32, rowStart: i32, rowEnd: i32): void {
  const rowBytes = <usize>nCols << 1;
  const z = nCols >>> 31;
  let r = rowStart;
  for (; r + 4 <= rowEnd; r += 4) {
    const wr = w + <usize>r * rowBytes, yr = y + (<usize>r << 2);
    if (!dotF16Rows4(wr, rowBytes, x, nCols, yr, z)) {
      for (let i = 0; i < 4; i++) store<f32>(yr + (<usize>i << 2), dotF16Row(wr + <usize>i * rowBytes, x, nCols, z));
    }
  }
  for (; r < rowEnd; r++) store<f32>(y + (<usize>r << 2), dotF16Row(w + <usize>r * rowBytes, x, nCols, z));
}

// y[r] = W[r,:] · x; w f16 bits (2-aligned), x and y f32 (4-aligned).
export function matvecF16(w: usize, x: usize, y: usize, nCols: i32, rowStart: i32, rowEnd: i32): void {
  f16Rows(w, x, y, nCols, rowStart, rowEnd);
}

// Batched F16: x (batch, nCols), y (batch, nRows). Row blocks of 64 KiB of weights stay in L2 across the batch.
export function matmulF16(w: usize, x: usize, y: usize, nCols: i32, nRows: i32, batch: i32, rowStart: i32, rowEnd: i32): void {
  const rowBytes = <usize>nCols << 1;
  let step = <i32>((<usize>65536) / (rowBytes > 0 ? rowBytes : 1)) & ~3;
  if (step < 4) step = 4;
  for (let r0 = rowStart; r0 < rowEnd; r0 += step) {
    const r1 = r0 + step < rowEnd ? r0 + step : rowEnd;
    for (let t = 0; t < batch; t++) {
      f16Rows(w, x + ((<usize>t * <usize>nCols) << 2), y + ((<usize>t * <usize>nRows) << 2), nCols, r0, r1);
    }
  }
}

// y[r] = W[r,:] · x; all f32 (4-aligned).
export function matvecF32(w: usize, x: usize, y: usize, nCols: i32, rowStart: i32, rowEnd: i32): void {
  for (let r = rowStart; r < rowEnd; r++) {
    store<f32>(y + (<usize>r << 2), dotF32Row(w + ((<usize>r * <usize>nCols) << 2), x, nCols));
  }
}

// Batched F32: x (batch, nCols), y (batch, nRows).
export function matmulF32(w: usize, x: usize, y: usize, nCols: i32, nRows: i32, batch: i32, rowStart: i32, rowEnd: i32): void {
  for (let r = rowStart; r < rowEnd; r++) {
    const wr = w + ((<usize>r * <usize>nCols) << 2);
    for (let t = 0; t < batch; t++) {
      store<f32>(y + ((<usize>t * <usize>nRows + <usize>r) << 2), dotF32Row(wr, x + ((<usize>t * <usize>nCols) << 2), nCols));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Baseline: reads nBytes at p (16-aligned, nBytes a multiple of 64) as fast as SIMD loads go; returns an xor so the
// loads cannot be optimized away. The bandwidth limit a weight-streaming kernel can at best reach.
export function streamRead(p: usize, nBytes: i32): i32 {
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  const end = p + <usize>nBytes;
  for (let q = p; q < end; q += 64) {
    a0 = v128.xor(a0, v128.load(q));
    a1 = v128.xor(a1, v128.load(q, 16));
    a2 = v128.xor(a2, v128.load(q, 32));
    a3 = v128.xor(a3, v128.load(q, 48));
  }
  const a = v128.xor(v128.xor(a0, a1), v128.xor(a2, a3));
  return i32x4.extract_lane(a, 0) ^ i32x4.extract_lane(a, 1) ^ i32x4.extract_lane(a, 2) ^ i32x4.extract_lane(a, 3);
}
