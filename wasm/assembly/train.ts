// Training matrix products: C (M, N) (+)= A (M, K) · B (K, N) with f32 accumulation, where B is a weight (f32,
// or a frozen F16 / Q8_0 / Q4_0 base dequantized on the fly) read either as stored or transposed, and A is read
// with arbitrary element strides (so dW = dYᵀ X needs no transpose). GotoBLAS-style: B is packed (dequantized) in
// KC × NC chunks into `scratch`, then a 4×8 register tile (8 f32x4 accumulators) streams K.
// Every output lane accumulates its K terms in index order, like the references (src/kernels/train_kernels.ts).
// see: wasm/README.md ("Training products"), Goto & van de Geijn, "Anatomy of high-performance matrix multiplication"
import { h2f } from "./common";

// K chunk (a multiple of 32, so quantized blocks never straddle chunks) and N chunk (a multiple of 32 and of 8):
// the packed chunk is KC*NC*4 = 256 KiB, sized for L2; one 8-column panel (KC*32 B = 8 KiB) stays in L1.
const KC: i32 = 256;
const NC: i32 = 256;
// scratch: the packed chunk, then one 6x8 f32 tile for partial panels
const TILE_OFFSET: usize = <usize>KC * <usize>NC * 4;

// B source types (the FrozenType order of src/kernels/train_kernels.ts)
const T_F32: i32 = 0;
const T_F16: i32 = 1;
const T_Q8_0: i32 = 2;
const T_Q4_0: i32 = 3;

// Bytes of scratch every training product needs (16-aligned).
export function trainScratchBytes(): i32 {
  return <i32>TILE_OFFSET + 6 * 32;
}

// ---------------------------------------------------------------------------------------------------------------
// Packing. The packed chunk is panel-major: panel p (columns n0+8p .. n0+8p+7) holds, for each k of the chunk,
// the 8 values B[k0+k, n0+8p+j] at bp + (p*kc + k)*32 + 4j. Columns past N are zero (their outputs are dropped).

// B[k, n] = W[n, k]: W (N rows, K columns) in file type `type`; rows n0 .. n0+nValid, columns k0 .. k0+kc.
function packTransposed(w: usize, type: i32, K: i32, k0: i32, kc: i32, n0: i32, nValid: i32, bp: usize): void {
  const pBytes = <usize>kc << 5;
  for (let n = 0; n < nValid; n++) {
    const dst = bp + <usize>(n >> 3) * pBytes + (<usize>(n & 7) << 2);
    const row = <usize>(n0 + n);
    if (type == T_F32) {
      const src = w + ((row * <usize>K + <usize>k0) << 2);
      for (let k = 0; k < kc; k++) store<f32>(dst + (<usize>k << 5), load<f32>(src + (<usize>k << 2)));
    } else if (type == T_F16) {
      const src = w + ((row * <usize>K + <usize>k0) << 1);
      for (let k = 0; k < kc; k++) store<f32>(dst + (<usize>k << 5), h2f(<u32>load<u16>(src + (<usize>k << 1))));
    } else if (type == T_Q8_0) {
      // 34-byte blocks: f16 d, 32 int8 q; value q*d (exact in f32: 8 x 11 significant bits)
      let src = w + (row * <usize>(K >> 5) + <usize>(k0 >> 5)) * 34;
      for (let k = 0; k < kc; k += 32) {
        const d = h2f(<u32>load<u16>(src));
        const o = dst + (<usize>k << 5);
        for (let j = 0; j < 32; j++) store<f32>(o + (<usize>j << 5), <f32>load<i8>(src + 2 + <usize>j) * d);
        src += 34;
      }
    } else {
      // 18-byte blocks: f16 d, 16 bytes; element j in the low nibble of byte j, j+16 in the high; value (q-8)*d
      let src = w + (row * <usize>(K >> 5) + <usize>(k0 >> 5)) * 18;
      for (let k = 0; k < kc; k += 32) {
        const d = h2f(<u32>load<u16>(src));
        const o = dst + (<usize>k << 5);
        for (let j = 0; j < 16; j++) {
          const b = <i32>load<u8>(src + 2 + <usize>j);
          store<f32>(o + (<usize>j << 5), <f32>((b & 15) - 8) * d);
          store<f32>(o + (<usize>(j + 16) << 5), <f32>((b >> 4) - 8) * d);
        }
        src += 18;
      }
    }
  }
  zeroPad(bp, kc, nValid);
}

// B[k, n] = W[k, n]: W (K rows, N columns) in file type `type`; rows k0 .. k0+kc, columns n0 .. n0+nValid (for
// Q8_0/Q4_0, N and n0 are multiples of 32, so whole blocks).
function packDirect(w: usize, type: i32, N: i32, k0: i32, kc: i32, n0: i32, nValid: i32, bp: usize): void {
  const pBytes = <usize>kc << 5;
  const full = nValid >> 3;
  for (let k = 0; k < kc; k++) {
    const row = <usize>(k0 + k);
    const dst = bp + (<usize>k << 5);
    if (type == T_F32) {
      const src = w + ((row * <usize>N + <usize>n0) << 2);
      for (let p = 0; p < full; p++) {
        const s = src + (<usize>p << 5), d = dst + <usize>p * pBytes;
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
      }
      for (let n = full << 3; n < nValid; n++) {
        store<f32>(dst + <usize>(n >> 3) * pBytes + (<usize>(n & 7) << 2), load<f32>(src + (<usize>n << 2)));
      }
    } else if (type == T_F16) {
      const src = w + ((row * <usize>N + <usize>n0) << 1);
      for (let n = 0; n < nValid; n++) {
        store<f32>(dst + <usize>(n >> 3) * pBytes + (<usize>(n & 7) << 2), h2f(<u32>load<u16>(src + (<usize>n << 1))));
      }
    } else if (type == T_Q8_0) {
      let src = w + (row * <usize>(N >> 5) + <usize>(n0 >> 5)) * 34;
      for (let n = 0; n < nValid; n += 32) {
        const d = h2f(<u32>load<u16>(src));
        for (let j = 0; j < 32; j++) {
          const c = n + j;
          store<f32>(dst + <usize>(c >> 3) * pBytes + (<usize>(c & 7) << 2), <f32>load<i8>(src + 2 + <usize>j) * d);
        }
        src += 34;
      }
    } else {
      let src = w + (row * <usize>(N >> 5) + <usize>(n0 >> 5)) * 18;
      for (let n = 0; n < nValid; n += 32) {
        const d = h2f(<u32>load<u16>(src));
        for (let j = 0; j < 16; j++) {
          const b = <i32>load<u8>(src + 2 + <usize>j);
          const c0 = n + j, c1 = n + j + 16;
          store<f32>(dst + <usize>(c0 >> 3) * pBytes + (<usize>(c0 & 7) << 2), <f32>((b & 15) - 8) * d);
          store<f32>(dst + <usize>(c1 >> 3) * pBytes + (<usize>(c1 & 7) << 2), <f32>((b >> 4) - 8) * d);
        }
        src += 18;
      }
    }
  }
  zeroPad(bp, kc, nValid);
}

// Zeroes columns nValid .. (last panel's end) of the packed chunk.
@inline function zeroPad(bp: usize, kc: i32, nValid: i32): void {
  if ((nValid & 7) == 0) return;
  const pan = bp + <usize>(nValid >> 3) * (<usize>kc << 5);
  for (let k = 0; k < kc; k++) {
    for (let j = nValid & 7; j < 8; j++) store<f32>(pan + (<usize>k << 5) + (<usize>j << 2), 0);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Register tiles. A(m, k) is the f32 at a + m*sm + k*sk (byte strides); the packed panel supplies 8 columns per k.
// Each accumulator lane is one output, summed over k in order with f32x4.relaxed_madd (one FMA where the CPU has
// it, else multiply then add; both within the tests' bounds). `acc` starts from C instead of zero.

// C rows m..m+5, columns 0..7 at c: 12 accumulators, 2 panel loads and 6 splats per k (one pointer into A, the
// row offsets in registers). Hot loop.
function tile6x8(a: usize, sm: usize, sk: usize, bp: usize, kc: i32, c: usize, ldc: usize, acc: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0), c41 = f32x4.splat(0), c50 = f32x4.splat(0), c51 = f32x4.splat(0);
  if (acc) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    c10 = v128.load(c + ldc); c11 = v128.load(c + ldc, 16);
    c20 = v128.load(c + 2 * ldc); c21 = v128.load(c + 2 * ldc, 16);
    c30 = v128.load(c + 3 * ldc); c31 = v128.load(c + 3 * ldc, 16);
    c40 = v128.load(c + 4 * ldc); c41 = v128.load(c + 4 * ldc, 16);
    c50 = v128.load(c + 5 * ldc); c51 = v128.load(c + 5 * ldc, 16);
  }
  const s2 = 2 * sm, s3 = 3 * sm, s4 = 4 * sm, s5 = 5 * sm;
  let p = a;
  const end = bp + (<usize>kc << 5);
  for (let q = bp; q < end; q += 32) {
    const b0 = v128.load(q), b1 = v128.load(q, 16);
    let x = v128.load32_splat(p);
    c00 = f32x4.relaxed_madd(x, b0, c00); c01 = f32x4.relaxed_madd(x, b1, c01);
    x = v128.load32_splat(p + sm);
    c10 = f32x4.relaxed_madd(x, b0, c10); c11 = f32x4.relaxed_madd(x, b1, c11);
    x = v128.load32_splat(p + s2);
    c20 = f32x4.relaxed_madd(x, b0, c20); c21 = f32x4.relaxed_madd(x, b1, c21);
    x = v128.load32_splat(p + s3);
    c30 = f32x4.relaxed_madd(x, b0, c30); c31 = f32x4.relaxed_madd(x, b1, c31);
    x = v128.load32_splat(p + s4);
    c40 = f32x4.relaxed_madd(x, b0, c40); c41 = f32x4.relaxed_madd(x, b1, c41);
    x = v128.load32_splat(p + s5);
    c50 = f32x4.relaxed_madd(x, b0, c50); c51 = f32x4.relaxed_madd(x, b1, c51);
    p += sk;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16);
  v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16);
  v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16);
  v128.store(c + 4 * ldc, c40); v128.store(c + 4 * ldc, c41, 16);
  v128.store(c + 5 * ldc, c50); v128.store(c + 5 * ldc, c51, 16);
}

// C rows m..m+3, columns 0..7 at c (row stride ldc bytes). Hot loop: 2 panel loads, 4 splats, 8 FMAs per k.
function tile4x8(a: usize, sm: usize, sk: usize, bp: usize, kc: i32, c: usize, ldc: usize, acc: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const r1 = c + ldc, r2 = c + 2 * ldc, r3 = c + 3 * ldc;
  if (acc) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    c10 = v128.load(r1); c11 = v128.load(r1, 16);
    c20 = v128.load(r2); c21 = v128.load(r2, 16);
    c30 = v128.load(r3); c31 = v128.load(r3, 16);
  }
  let p0 = a, p1 = a + sm, p2 = a + 2 * sm, p3 = a + 3 * sm;
  const end = bp + (<usize>kc << 5);
  for (let q = bp; q < end; q += 32) {
    const b0 = v128.load(q), b1 = v128.load(q, 16);
    let x = v128.load32_splat(p0);
    c00 = f32x4.relaxed_madd(x, b0, c00); c01 = f32x4.relaxed_madd(x, b1, c01);
    x = v128.load32_splat(p1);
    c10 = f32x4.relaxed_madd(x, b0, c10); c11 = f32x4.relaxed_madd(x, b1, c11);
    x = v128.load32_splat(p2);
    c20 = f32x4.relaxed_madd(x, b0, c20); c21 = f32x4.relaxed_madd(x, b1, c21);
    x = v128.load32_splat(p3);
    c30 = f32x4.relaxed_madd(x, b0, c30); c31 = f32x4.relaxed_madd(x, b1, c31);
    p0 += sk; p1 += sk; p2 += sk; p3 += sk;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(r1, c10); v128.store(r1, c11, 16);
  v128.store(r2, c20); v128.store(r2, c21, 16);
  v128.store(r3, c30); v128.store(r3, c31, 16);
}

// One row (the M tail): C row m, columns 0..7.
function tile1x8(a: usize, sk: usize, bp: usize, kc: i32, c: usize, acc: bool): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
  if (acc) {
    c0 = v128.load(c); c1 = v128.load(c, 16);
  }
  let p = a;
  const end = bp + (<usize>kc << 5);
  for (let q = bp; q < end; q += 32) {
    const x = v128.load32_splat(p);
    c0 = f32x4.relaxed_madd(x, v128.load(q), c0);
    c1 = f32x4.relaxed_madd(x, v128.load(q, 16), c1);
    p += sk;
  }
  v128.store(c, c0); v128.store(c, c1, 16);
}

// One row against 4 panels at once (C columns 0..31): 8 accumulators, so the row tail is not bound by FMA latency
// (a 1x8 tile keeps only 2 FMA chains in flight, a quarter of the FMA rate).
function tile1x32(a: usize, sk: usize, bp: usize, pBytes: usize, kc: i32, c: usize, acc: bool): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
  if (acc) {
    c0 = v128.load(c); c1 = v128.load(c, 16); c2 = v128.load(c, 32); c3 = v128.load(c, 48);
    c4 = v128.load(c, 64); c5 = v128.load(c, 80); c6 = v128.load(c, 96); c7 = v128.load(c, 112);
  }
  let p = a;
  const q1 = bp + pBytes, q2 = bp + 2 * pBytes, q3 = bp + 3 * pBytes;
  const end = <usize>kc << 5;
  for (let o: usize = 0; o < end; o += 32) {
    const x = v128.load32_splat(p);
    c0 = f32x4.relaxed_madd(x, v128.load(bp + o), c0);
    c1 = f32x4.relaxed_madd(x, v128.load(bp + o, 16), c1);
    c2 = f32x4.relaxed_madd(x, v128.load(q1 + o), c2);
    c3 = f32x4.relaxed_madd(x, v128.load(q1 + o, 16), c3);
    c4 = f32x4.relaxed_madd(x, v128.load(q2 + o), c4);
    c5 = f32x4.relaxed_madd(x, v128.load(q2 + o, 16), c5);
    c6 = f32x4.relaxed_madd(x, v128.load(q3 + o), c6);
    c7 = f32x4.relaxed_madd(x, v128.load(q3 + o, 16), c7);
    p += sk;
  }
  v128.store(c, c0); v128.store(c, c1, 16); v128.store(c, c2, 32); v128.store(c, c3, 48);
  v128.store(c, c4, 64); v128.store(c, c5, 80); v128.store(c, c6, 96); v128.store(c, c7, 112);
}

// A panel narrower than 8 columns (the N tail): run the tile on `tile` (mr rows x 32 B) and copy nv columns.
function partialTile(
  mr: i32, a: usize, sm: usize, sk: usize, bp: usize, kc: i32, c: usize, ldc: usize, acc: bool, nv: i32, tile: usize,
): void {
  if (acc) {
    for (let i = 0; i < mr; i++) {
      for (let j = 0; j < nv; j++) store<f32>(tile + (<usize>i << 5) + (<usize>j << 2), load<f32>(c + <usize>i * ldc + (<usize>j << 2)));
    }
  }
  if (mr == 6) tile6x8(a, sm, sk, bp, kc, tile, 32, acc);
  else if (mr == 4) tile4x8(a, sm, sk, bp, kc, tile, 32, acc);
  else tile1x8(a, sk, bp, kc, tile, acc);
  for (let i = 0; i < mr; i++) {
    for (let j = 0; j < nv; j++) store<f32>(c + <usize>i * ldc + (<usize>j << 2), load<f32>(tile + (<usize>i << 5) + (<usize>j << 2)));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The driver: C rows [mStart, mEnd) (C is (M, N), row stride N) of A · B, B from w (type, transposed or not).
// sm, sk: A's element strides. accumulate: C += A·B, else C = A·B.
function gemm(
  a: usize, sm: i32, sk: i32, w: usize, type: i32, transposed: bool, c: usize, N: i32, K: i32,
  mStart: i32, mEnd: i32, accumulate: bool, scratch: usize,
): void {
  const tile = scratch + TILE_OFFSET;
  const smB = <usize>sm << 2, skB = <usize>sk << 2, ldc = <usize>N << 2;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = K - k0 < KC ? K - k0 : KC;
    const add = accumulate || k0 > 0; // later K chunks continue the sums already in C
    for (let n0 = 0; n0 < N; n0 += NC) {
      const nValid = N - n0 < NC ? N - n0 : NC;
      if (transposed) packTransposed(w, type, K, k0, kc, n0, nValid, scratch);
      else packDirect(w, type, N, k0, kc, n0, nValid, scratch);
      const panels = (nValid + 7) >> 3;
      // rows in tiles of 6, then 4, then single rows; a remainder of 2 becomes 4 + 4 (one 6-row tile fewer), since
      // single rows run at about half speed even with tile1x32. Every tile sums each output over k in order, so the
      // decomposition (and so a thread's row range) never changes the bits.
      const total = mEnd - mStart;
      let n6 = total / 6, rem = total - 6 * n6;
      if (rem == 2 && n6 > 0) {
        n6--;
        rem = 8;
      }
      let m = mStart;
      for (let i = 0; i < n6; i++, m += 6) rowTile(6, a, smB, skB, k0, kc, scratch, panels, nValid, c, ldc, n0, m, add, tile);
      for (; rem >= 4; rem -= 4, m += 4) rowTile(4, a, smB, skB, k0, kc, scratch, panels, nValid, c, ldc, n0, m, add, tile);
      for (; m < mEnd; m++) rowTile(1, a, smB, skB, k0, kc, scratch, panels, nValid, c, ldc, n0, m, add, tile);
    }
  }
}

// mr rows of C from row m (6, 4 or 1) against every panel of the packed chunk: the mr rows of A (mr*kc floats)
// stay in L1 while the panels stream from L2.
@inline function rowTile(
  mr: i32, a: usize, smB: usize, skB: usize, k0: i32, kc: i32, bp: usize, panels: i32, nValid: i32, c: usize,
  ldc: usize, n0: i32, m: i32, add: bool, tile: usize,
): void {
  const am = a + <usize>m * smB + <usize>k0 * skB;
  const cm = c + <usize>m * ldc + (<usize>n0 << 2);
  const pBytes = <usize>kc << 5;
  let p = 0;
  if (mr == 1) {
    // 4 full panels at a time
    for (; p + 4 <= (nValid >> 3); p += 4) tile1x32(am, skB, bp + <usize>p * pBytes, pBytes, kc, cm + (<usize>p << 5), add);
  }
  for (; p < panels; p++) {
    const nv = nValid - (p << 3);
    const bpp = bp + <usize>p * pBytes, cp = cm + (<usize>p << 5);
    if (nv < 8) partialTile(mr, am, smB, skB, bpp, kc, cp, ldc, add, nv, tile);
    else if (mr == 6) tile6x8(am, smB, skB, bpp, kc, cp, ldc, add);
    else if (mr == 4) tile4x8(am, smB, skB, bpp, kc, cp, ldc, add);
    else tile1x8(am, skB, bpp, kc, cp, add);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Exports. x (rows, nIn), y / dy (rows, nOut), w (nOut, nIn) of `type` (0 F32, 1 F16, 2 Q8_0, 3 Q4_0; Q8_0/Q4_0
// need nIn % 32 == 0), dw (nOut, nIn) f32. Row ranges select output rows so threads can split the work.

// y rows [rowStart, rowEnd) = x · wᵀ (overwrites).
export function trainMatmul(
  x: usize, w: usize, type: i32, y: usize, nIn: i32, nOut: i32, rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  gemm(x, nIn, 1, w, type, true, y, nOut, nIn, rowStart, rowEnd, false, scratch);
}

// dx rows [rowStart, rowEnd) += dy · w.
export function trainMatmulBackwardInput(
  dy: usize, w: usize, type: i32, dx: usize, nIn: i32, nOut: i32, rowStart: i32, rowEnd: i32, scratch: usize,
): void {
  gemm(dy, nOut, 1, w, type, false, dx, nIn, nOut, rowStart, rowEnd, true, scratch);
}

// dw rows [outStart, outEnd) += dyᵀ · x over `rows` rows (A(o, r) = dy[r, o]: element strides 1 and nOut).
export function trainMatmulBackwardWeight(
  dy: usize, x: usize, dw: usize, rows: i32, nIn: i32, nOut: i32, outStart: i32, outEnd: i32, scratch: usize,
): void {
  gemm(dy, 1, nOut, x, T_F32, false, dw, nIn, rows, outStart, outEnd, true, scratch);
}
