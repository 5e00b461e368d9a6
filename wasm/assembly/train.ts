// Training matrix products: C (M, N) (+)= A (M, K) · B (K, N) with f32 accumulation, where B is a weight (f32,
// or a frozen F16 / Q8_0 / Q4_0 base dequantized on the fly) read either as stored or transposed, and A is read
// with arbitrary element strides (so dW = dYᵀ X needs no transpose). GotoBLAS-style: B is packed (dequantized) in
// KC × NC chunks into `scratch`, then a 4×8 register tile (8 f32x4 accumulators) streams K.
// Every output lane accumulates its K terms in index order, like the references (src/kernels/train_kernels.ts).
// see: wasm/README.md ("Training products"), Goto & van de Geijn, "Anatomy of high-performance matrix multiplication"
import { exp1, h2f } from "./common";

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

// ---------------------------------------------------------------------------------------------------------------
// Causal products for attention: the driver above restricted to the causal triangle, so attention runs on the same
// register tiles as the weight products and does half the work of full T×T products. Modes (row = output row):
//   CAUSAL_N: only columns n ≤ row are needed (S = Q Kᵀ, dP = dO Vᵀ); a tile computes up to its last row's column,
//             so entries just past the diagonal get values too (the softmax pass overwrites them).
//   CAUSAL_K_LOWER: only k ≤ row contribute (O = E V, dQ = dS K); a tile reads A(row, k) up to its last row, so A
//             must be 0 for the (up to 5) columns past the diagonal.
//   CAUSAL_K_UPPER: only k ≥ row contribute (dV = Eᵀ dO, dK = dSᵀ Q, where A(row, k) = E[k, row]); a tile reads
//             from its first row, so E must be 0 for the (up to 5) columns past its diagonal. Always accumulates.
const CAUSAL_N: i32 = 1;
const CAUSAL_K_LOWER: i32 = 2;
const CAUSAL_K_UPPER: i32 = 3;

// C rows [0, M) of A · B (B from w, f32, transposed or not; C (M, N) row stride N) under a causal mode.
function gemmCausal(
  a: usize, sm: i32, sk: i32, w: usize, transposed: bool, c: usize, N: i32, K: i32, M: i32, accumulate: bool,
  scratch: usize, mode: i32,
): void {
  const tile = scratch + TILE_OFFSET;
  const smB = <usize>sm << 2, skB = <usize>sk << 2, ldc = <usize>N << 2;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = K - k0 < KC ? K - k0 : KC;
    const add = accumulate || k0 > 0;
    for (let n0 = 0; n0 < N; n0 += NC) {
      if (mode == CAUSAL_N && n0 >= M) break;
      const nValid = N - n0 < NC ? N - n0 : NC;
      if (transposed) packTransposed(w, T_F32, K, k0, kc, n0, nValid, scratch);
      else packDirect(w, T_F32, N, k0, kc, n0, nValid, scratch);
      let n6 = M / 6, rem = M - 6 * n6;
      if (rem == 2 && n6 > 0) {
        n6--;
        rem = 8;
      }
      let m = 0;
      for (let i = 0; i < n6; i++, m += 6) causalTile(6, a, smB, skB, k0, kc, scratch, nValid, c, ldc, n0, m, add, tile, mode);
      for (; rem >= 4; rem -= 4, m += 4) causalTile(4, a, smB, skB, k0, kc, scratch, nValid, c, ldc, n0, m, add, tile, mode);
      for (; m < M; m++) causalTile(1, a, smB, skB, k0, kc, scratch, nValid, c, ldc, n0, m, add, tile, mode);
    }
  }
}

// mr rows of C from row m against the packed chunk (k0 .. k0+kc, n0 .. n0+nValid), limited by the causal mode.
@inline function causalTile(
  mr: i32, a: usize, smB: usize, skB: usize, k0: i32, kc: i32, bp: usize, nValid: i32, c: usize, ldc: usize, n0: i32,
  m: i32, add: bool, tile: usize, mode: i32,
): void {
  let kOff = 0, kLen = kc, nLim = nValid;
  const last = m + mr - 1;
  if (mode == CAUSAL_N) {
    nLim = last + 1 - n0;
    if (nLim > nValid) nLim = nValid;
  } else if (mode == CAUSAL_K_LOWER) {
    kLen = last + 1 - k0;
    if (kLen > kc) kLen = kc;
    if (kLen <= 0) return; // only in later chunks (add is set), so nothing to add
  } else {
    kOff = m - k0;
    if (kOff < 0) kOff = 0;
    if (kOff >= kc) return; // accumulating: nothing to add
    kLen = kc - kOff;
  }
  const am = a + <usize>m * smB + <usize>(k0 + kOff) * skB;
  const cm = c + <usize>m * ldc + (<usize>n0 << 2);
  const pBytes = <usize>kc << 5;
  const bk = bp + (<usize>kOff << 5);
  const panels = (nLim + 7) >> 3;
  let p = 0;
  if (mr == 1) {
    for (; p + 4 <= (nLim >> 3); p += 4) tile1x32(am, skB, bk + <usize>p * pBytes, pBytes, kLen, cm + (<usize>p << 5), add);
  }
  for (; p < panels; p++) {
    const nv = nLim - (p << 3);
    const bpp = bk + <usize>p * pBytes, cp = cm + (<usize>p << 5);
    if (nv < 8) partialTile(mr, am, smB, skB, bpp, kLen, cp, ldc, add, nv, tile);
    else if (mr == 6) tile6x8(am, smB, skB, bpp, kLen, cp, ldc, add);
    else if (mr == 4) tile4x8(am, smB, skB, bpp, kLen, cp, ldc, add);
    else tile1x8(am, skB, bpp, kLen, cp, add);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// e^x for hot loops: common.ts's exp4 (the same operations, so the same bits) with its constants passed in. V8
// rematerializes a v128.const at every use (several instructions each; exp4 has 14), so a caller builds the
// constants once before its loop with expK(i, z) from an opaque zero z (Binaryen cannot fold them back into
// constants) and they stay in registers or stack slots.
@inline function expK(i: i32, z: v128): v128 {
  let c = f32x4.splat(0);
  if (i == 0) c = f32x4.splat(88.72283);
  else if (i == 1) c = f32x4.splat(-87.33654);
  else if (i == 2) c = f32x4.splat(1.44269504088896341);
  else if (i == 3) c = f32x4.splat(0.693359375);
  else if (i == 4) c = f32x4.splat(-2.12194440e-4);
  else if (i == 5) c = f32x4.splat(1.9875691500e-4);
  else if (i == 6) c = f32x4.splat(1.3981999507e-3);
  else if (i == 7) c = f32x4.splat(8.3334519073e-3);
  else if (i == 8) c = f32x4.splat(4.1665795894e-2);
  else if (i == 9) c = f32x4.splat(1.6666665459e-1);
  else if (i == 10) c = f32x4.splat(5.0000001201e-1);
  else if (i == 11) c = f32x4.splat(1.0);
  else c = i32x4.splat(127);
  return v128.or(c, z);
}

@inline function expC(
  x0: v128, hi: v128, lo: v128, log2e: v128, ln2hi: v128, ln2lo: v128, p0: v128, p1: v128, p2: v128, p3: v128,
  p4: v128, p5: v128, one: v128, bias: v128,
): v128 {
  const x = f32x4.pmax(f32x4.pmin(x0, hi), lo);
  const n = f32x4.nearest(f32x4.mul(x, log2e));
  let r = f32x4.relaxed_nmadd(n, ln2hi, x);
  r = f32x4.relaxed_nmadd(n, ln2lo, r);
  let p = f32x4.relaxed_madd(p0, r, p1);
  p = f32x4.relaxed_madd(p, r, p2);
  p = f32x4.relaxed_madd(p, r, p3);
  p = f32x4.relaxed_madd(p, r, p4);
  p = f32x4.relaxed_madd(p, r, p5);
  p = f32x4.relaxed_madd(p, f32x4.mul(r, r), f32x4.add(r, one));
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const s1 = i32x4.shl(i32x4.add(n1, bias), 23);
  const s2 = i32x4.shl(i32x4.add(n2, bias), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

// ===============================================================================================================
// The other ops of a training step (the references: src/kernels/train_kernels.ts …Ref): causal GQA attention
// forward/backward, cross-entropy, RMSNorm, SwiGLU. f32 with 4-lane vector sums, so sums differ from the references'
// index-order sums by rounding only; e^x is common.ts's exp4 (~2 ulp; as expC). Ranges let two threads split the work (every
// output is computed the same way whatever the split).

// Attention scratch per thread for sequences of T rows and head size hs: the products' scratch, then Kc, Vc, Qc,
// dOc, Oc, dKc, dVc (T, hs) contiguous heads, then D (T, T) (dP, then dS).
export function trainAttentionScratchBytes(T: i32, hs: i32): i32 {
  return trainScratchBytes() + 4 * (7 * T * hs + T * T);
}

// Copies a head (columns col .. col+hs of rows row0 .. row0+T of src, row stride `stride` floats) into dst (T, hs).
function copyHead(src: usize, row0: i32, T: i32, stride: i32, col: i32, hs: i32, dst: usize): void {
  for (let t = 0; t < T; t++) {
    memory.copy(dst + (<usize>(t * hs) << 2), src + ((<usize>(row0 + t) * <usize>stride + <usize>col) << 2), <usize>hs << 2);
  }
}

// Zeroes row t of a (T, T) matrix from column t+1 through t+16 (within the row): the causal products' tiles read up
// to 5 columns past the diagonal.
@inline function zeroPastDiagonal(row: usize, t: i32, T: i32): void {
  const end = t + 17 < T ? t + 17 : T;
  if (end > t + 1) memory.fill(row + (<usize>(t + 1) << 2), 0, <usize>(end - t - 1) << 2);
}

// Causal GQA attention forward of the (sequence b, kv head kh) units [uStart, uEnd) (unit = b·nKvHeads + kh): for
// each query head h of the unit's group, S = Q Kᵀ (causal product into p's (T, T) block), then per row t
// E_j = exp((S_j − max)/√hs) for j ≤ t (and 0 for the 16 columns past t; the rest is left as the product wrote it),
// pInv = 1/Σ E, and ao's head columns = pInv · E V. q, ao (B·T, nHeads·hs); k, v (B·T, nKvHeads·hs);
// p (B, nHeads, T, T); pInv (B, nHeads, T).
export function trainAttentionForward(
  q: usize, k: usize, v: usize, ao: usize, p: usize, pInv: usize, T: i32, nHeads: i32, nKvHeads: i32, hs: i32,
  uStart: i32, uEnd: i32, scratch: usize,
): void {
  const head = <usize>(T * hs) << 2;
  const kc = scratch + <usize>trainScratchBytes(), vc = kc + head, oc = vc + 4 * head;
  const dim = nHeads * hs, kvDim = nKvHeads * hs, group = nHeads / nKvHeads;
  const scale = <f32>(1.0 / Math.sqrt(<f64>hs));
  const vscale = f32x4.splat(scale);
  const zk = i32x4.splat(<i32>(<u32>T >>> 31)); // 0, opaque to Binaryen
  const e0k = expK(0, zk), e1k = expK(1, zk), e2k = expK(2, zk), e3k = expK(3, zk), e4k = expK(4, zk);
  const e5k = expK(5, zk), e6k = expK(6, zk), e7k = expK(7, zk), e8k = expK(8, zk), e9k = expK(9, zk);
  const e10k = expK(10, zk), e11k = expK(11, zk), e12k = expK(12, zk);
  for (let u = uStart; u < uEnd; u++) {
    const b = u / nKvHeads, kh = u - b * nKvHeads;
    copyHead(k, b * T, T, kvDim, kh * hs, hs, kc);
    copyHead(v, b * T, T, kvDim, kh * hs, hs, vc);
    for (let hg = 0; hg < group; hg++) {
      const h = kh * group + hg, bh = b * nHeads + h;
      const pb = p + (<usize>bh * <usize>T * <usize>T << 2);
      const qa = q + ((<usize>(b * T) * <usize>dim + <usize>(h * hs)) << 2);
      gemmCausal(qa, dim, 1, kc, true, pb, T, hs, T, false, scratch, CAUSAL_N); // S (T, T) = Q Kᵀ
      for (let t = 0; t < T; t++) {
        const row = pb + (<usize>(t * T) << 2);
        const n = t + 1, n4 = n & ~3;
        // hot loop: max, then one exp per causal score (max-subtraction: exp never overflows)
        let vm = f32x4.splat(-Infinity);
        for (let j = 0; j < n4; j += 4) vm = f32x4.pmax(vm, v128.load(row + (<usize>j << 2)));
        let mx = max(max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)), max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3)));
        for (let j = n4; j < n; j++) mx = max(mx, load<f32>(row + (<usize>j << 2)));
        const vmx = f32x4.splat(mx);
        let vs = f32x4.splat(0);
        for (let j = 0; j < n4; j += 4) {
          const o = row + (<usize>j << 2);
          const e = expC(f32x4.mul(f32x4.sub(v128.load(o), vmx), vscale), e0k, e1k, e2k, e3k, e4k, e5k, e6k, e7k, e8k, e9k, e10k, e11k, e12k);
          v128.store(o, e);
          vs = f32x4.add(vs, e);
        }
        let sum = hsum(vs);
        for (let j = n4; j < n; j++) {
          const o = row + (<usize>j << 2);
          const e = exp1((load<f32>(o) - mx) * scale);
          store<f32>(o, e);
          sum += e;
        }
        zeroPastDiagonal(row, t, T);
        store<f32>(pInv + (<usize>(bh * T + t) << 2), <f32>1.0 / sum);
      }
      gemmCausal(pb, T, 1, vc, false, oc, hs, T, T, false, scratch, CAUSAL_K_LOWER); // O·Σ (T, hs) = E V
      for (let t = 0; t < T; t++) {
        const inv = load<f32>(pInv + (<usize>(bh * T + t) << 2));
        const dst = ao + ((<usize>(b * T + t) * <usize>dim + <usize>(h * hs)) << 2), src = oc + (<usize>(t * hs) << 2);
        for (let d = 0; d < hs; d++) store<f32>(dst + (<usize>d << 2), load<f32>(src + (<usize>d << 2)) * inv);
      }
    }
  }
}

// Backward of trainAttentionForward for units [uStart, uEnd): from dao (B·T, nHeads·hs) and the kept p, pInv to dq
// (B·T, nHeads·hs) and dk, dv (B·T, nKvHeads·hs), head columns overwritten. With P = pInv·E and dO' = pInv·dO:
// dV += Eᵀ dO', dP' = dO' Vᵀ, dS_j = E_j (dP'_j − pInv Σ_k E_k dP'_k), dK += dSᵀ Q /√hs, dQ = dS K /√hs.
export function trainAttentionBackward(
  q: usize, k: usize, v: usize, p: usize, pInv: usize, dao: usize, dq: usize, dk: usize, dv: usize, T: i32,
  nHeads: i32, nKvHeads: i32, hs: i32, uStart: i32, uEnd: i32, scratch: usize,
): void {
  const head = <usize>(T * hs) << 2;
  const kc = scratch + <usize>trainScratchBytes(), vc = kc + head, qc = vc + head, doc = qc + head, oc = doc + head;
  const dkc = oc + head, dvc = dkc + head, dmat = dvc + head;
  const dim = nHeads * hs, kvDim = nKvHeads * hs, group = nHeads / nKvHeads;
  const scale = <f32>(1.0 / Math.sqrt(<f64>hs));
  for (let u = uStart; u < uEnd; u++) {
    const b = u / nKvHeads, kh = u - b * nKvHeads;
    copyHead(k, b * T, T, kvDim, kh * hs, hs, kc);
    copyHead(v, b * T, T, kvDim, kh * hs, hs, vc);
    memory.fill(dkc, 0, 2 * head); // dKc and dVc
    for (let hg = 0; hg < group; hg++) {
      const h = kh * group + hg, bh = b * nHeads + h;
      const pb = p + (<usize>bh * <usize>T * <usize>T << 2), ib = pInv + (<usize>(bh * T) << 2);
      copyHead(q, b * T, T, dim, h * hs, hs, qc);
      for (let t = 0; t < T; t++) { // dO' = pInv · dO
        const inv = load<f32>(ib + (<usize>t << 2));
        const src = dao + ((<usize>(b * T + t) * <usize>dim + <usize>(h * hs)) << 2), dst = doc + (<usize>(t * hs) << 2);
        for (let d = 0; d < hs; d++) store<f32>(dst + (<usize>d << 2), load<f32>(src + (<usize>d << 2)) * inv);
      }
      gemmCausal(pb, 1, T, doc, false, dvc, hs, T, T, true, scratch, CAUSAL_K_UPPER); // dV += Eᵀ dO'
      gemmCausal(doc, hs, 1, vc, true, dmat, T, hs, T, false, scratch, CAUSAL_N); // dP' (T, T) = dO' Vᵀ
      for (let t = 0; t < T; t++) {
        const er = pb + (<usize>(t * T) << 2), dr = dmat + (<usize>(t * T) << 2);
        const n = t + 1, n4 = n & ~3;
        let vd = f32x4.splat(0);
        for (let j = 0; j < n4; j += 4) {
          vd = f32x4.relaxed_madd(v128.load(er + (<usize>j << 2)), v128.load(dr + (<usize>j << 2)), vd);
        }
        let dot = hsum(vd);
        for (let j = n4; j < n; j++) dot += load<f32>(er + (<usize>j << 2)) * load<f32>(dr + (<usize>j << 2));
        dot *= load<f32>(ib + (<usize>t << 2));
        const vdot = f32x4.splat(dot);
        for (let j = 0; j < n4; j += 4) {
          const o = dr + (<usize>j << 2);
          v128.store(o, f32x4.mul(v128.load(er + (<usize>j << 2)), f32x4.sub(v128.load(o), vdot))); // dS
        }
        for (let j = n4; j < n; j++) {
          const o = dr + (<usize>j << 2);
          store<f32>(o, load<f32>(er + (<usize>j << 2)) * (load<f32>(o) - dot));
        }
        zeroPastDiagonal(dr, t, T);
      }
      gemmCausal(dmat, 1, T, qc, false, dkc, hs, T, T, true, scratch, CAUSAL_K_UPPER); // dK·√hs += dSᵀ Q
      gemmCausal(dmat, T, 1, kc, false, oc, hs, T, T, false, scratch, CAUSAL_K_LOWER); // dQ·√hs = dS K
      for (let t = 0; t < T; t++) {
        const dst = dq + ((<usize>(b * T + t) * <usize>dim + <usize>(h * hs)) << 2), src = oc + (<usize>(t * hs) << 2);
        for (let d = 0; d < hs; d++) store<f32>(dst + (<usize>d << 2), load<f32>(src + (<usize>d << 2)) * scale);
      }
    }
    for (let t = 0; t < T; t++) {
      const o = (<usize>(b * T + t) * <usize>kvDim + <usize>(kh * hs)) << 2, src = <usize>(t * hs) << 2;
      for (let d = 0; d < hs; d++) {
        store<f32>(dk + o + (<usize>d << 2), load<f32>(dkc + src + (<usize>d << 2)) * scale);
        store<f32>(dv + o + (<usize>d << 2), load<f32>(dvc + src + (<usize>d << 2)));
      }
    }
  }
}

@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// Cross-entropy forward of rows [r0, r1) of logits (M, V), in place: logits -> e^(logit − rowMax), invSum[i] =
// 1/Σe (f32), loss[i] = log Σe + rowMax − logit[target[i]] (f64). targets (M,) i32 in [0, V).
export function trainCrossEntropyForward(logits: usize, targets: usize, invSum: usize, loss: usize, V: i32, r0: i32, r1: i32): void {
  const V4 = V & ~3;
  const zk = i32x4.splat(<i32>(<u32>V >>> 31)); // 0, opaque to Binaryen
  const e0k = expK(0, zk), e1k = expK(1, zk), e2k = expK(2, zk), e3k = expK(3, zk), e4k = expK(4, zk);
  const e5k = expK(5, zk), e6k = expK(6, zk), e7k = expK(7, zk), e8k = expK(8, zk), e9k = expK(9, zk);
  const e10k = expK(10, zk), e11k = expK(11, zk), e12k = expK(12, zk);
  for (let i = r0; i < r1; i++) {
    const o = logits + ((<usize>i * <usize>V) << 2);
    let vm = f32x4.splat(-Infinity);
    for (let j = 0; j < V4; j += 4) vm = f32x4.pmax(vm, v128.load(o + (<usize>j << 2)));
    let mx = max(max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)), max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3)));
    for (let j = V4; j < V; j++) mx = max(mx, load<f32>(o + (<usize>j << 2)));
    const target = load<f32>(o + (<usize>load<i32>(targets + (<usize>i << 2)) << 2));
    const vmx = f32x4.splat(mx);
    let vs0 = f32x4.splat(0), vs1 = f32x4.splat(0);
    let j = 0;
    for (; j + 8 <= V4; j += 8) {
      const p = o + (<usize>j << 2);
      const e0 = expC(f32x4.sub(v128.load(p), vmx), e0k, e1k, e2k, e3k, e4k, e5k, e6k, e7k, e8k, e9k, e10k, e11k, e12k);
      const e1 = expC(f32x4.sub(v128.load(p, 16), vmx), e0k, e1k, e2k, e3k, e4k, e5k, e6k, e7k, e8k, e9k, e10k, e11k, e12k);
      v128.store(p, e0); v128.store(p, e1, 16);
      vs0 = f32x4.add(vs0, e0); vs1 = f32x4.add(vs1, e1);
    }
    for (; j < V4; j += 4) {
      const p = o + (<usize>j << 2);
      const e = expC(f32x4.sub(v128.load(p), vmx), e0k, e1k, e2k, e3k, e4k, e5k, e6k, e7k, e8k, e9k, e10k, e11k, e12k);
      v128.store(p, e);
      vs0 = f32x4.add(vs0, e);
    }
    let sum = hsum(f32x4.add(vs0, vs1));
    for (; j < V; j++) {
      const p = o + (<usize>j << 2);
      const e = exp1(load<f32>(p) - mx);
      store<f32>(p, e);
      sum += e;
    }
    store<f32>(invSum + (<usize>i << 2), <f32>1.0 / sum);
    store<f64>(loss + (<usize>i << 3), Math.log(<f64>sum) + <f64>mx - <f64>target);
  }
}

// After trainCrossEntropyForward, rows [r0, r1) in place: e -> scale·(e·invSum − onehot(target)).
export function trainCrossEntropyBackward(logits: usize, targets: usize, invSum: usize, V: i32, scale: f32, r0: i32, r1: i32): void {
  const V4 = V & ~3;
  for (let i = r0; i < r1; i++) {
    const o = logits + ((<usize>i * <usize>V) << 2);
    const f = scale * load<f32>(invSum + (<usize>i << 2));
    const vf = f32x4.splat(f);
    let j = 0;
    for (; j < V4; j += 4) {
      const p = o + (<usize>j << 2);
      v128.store(p, f32x4.mul(v128.load(p), vf));
    }
    for (; j < V; j++) store<f32>(o + (<usize>j << 2), load<f32>(o + (<usize>j << 2)) * f);
    const pt = o + (<usize>load<i32>(targets + (<usize>i << 2)) << 2);
    store<f32>(pt, load<f32>(pt) - scale);
  }
}

// RMSNorm forward of rows [r0, r1): y = w ⊙ x · r, r[row] = 1/√(mean(x²) + eps). x, y (rows, dim); w (dim,).
export function trainRmsNormForward(x: usize, w: usize, y: usize, r: usize, dim: i32, eps: f32, r0: i32, r1: i32): void {
  const d4 = dim & ~3;
  for (let row = r0; row < r1; row++) {
    const xo = x + ((<usize>row * <usize>dim) << 2), yo = y + ((<usize>row * <usize>dim) << 2);
    let vs = f32x4.splat(0);
    for (let i = 0; i < d4; i += 4) {
      const v = v128.load(xo + (<usize>i << 2));
      vs = f32x4.relaxed_madd(v, v, vs);
    }
    let ss = hsum(vs);
    for (let i = d4; i < dim; i++) {
      const v = load<f32>(xo + (<usize>i << 2));
      ss += v * v;
    }
    const inv = <f32>(1.0 / Math.sqrt(<f64>ss / <f64>dim + <f64>eps));
    store<f32>(r + (<usize>row << 2), inv);
    const vi = f32x4.splat(inv);
    for (let i = 0; i < d4; i += 4) {
      const b = <usize>i << 2;
      v128.store(yo + b, f32x4.mul(v128.load(w + b), f32x4.mul(v128.load(xo + b), vi)));
    }
    for (let i = d4; i < dim; i++) {
      const b = <usize>i << 2;
      store<f32>(yo + b, load<f32>(w + b) * (load<f32>(xo + b) * inv));
    }
  }
}

// RMSNorm backward of rows [r0, r1), accumulating: dx += r·(w⊙dy) − x·r³/dim·Σ(w⊙dy⊙x); when dw != 0,
// dw += Σ_rows dy⊙x·r (then rows must not be split between threads).
export function trainRmsNormBackward(dy: usize, x: usize, r: usize, w: usize, dx: usize, dw: usize, dim: i32, r0: i32, r1: i32): void {
  const d4 = dim & ~3;
  for (let row = r0; row < r1; row++) {
    const ro = (<usize>row * <usize>dim) << 2;
    const xo = x + ro, go = dy + ro, dxo = dx + ro;
    const inv = load<f32>(r + (<usize>row << 2));
    let vd = f32x4.splat(0);
    for (let i = 0; i < d4; i += 4) {
      const b = <usize>i << 2;
      vd = f32x4.relaxed_madd(f32x4.mul(v128.load(w + b), v128.load(go + b)), v128.load(xo + b), vd);
    }
    let dot = hsum(vd);
    for (let i = d4; i < dim; i++) {
      const b = <usize>i << 2;
      dot += load<f32>(w + b) * load<f32>(go + b) * load<f32>(xo + b);
    }
    const c = dot * inv * inv * inv / <f32>dim;
    const vi = f32x4.splat(inv), vc = f32x4.splat(c);
    for (let i = 0; i < d4; i += 4) {
      const b = <usize>i << 2;
      const g = v128.load(go + b), xv = v128.load(xo + b);
      const t = f32x4.sub(f32x4.mul(vi, f32x4.mul(v128.load(w + b), g)), f32x4.mul(xv, vc));
      v128.store(dxo + b, f32x4.add(v128.load(dxo + b), t));
      if (dw) v128.store(dw + b, f32x4.add(v128.load(dw + b), f32x4.mul(f32x4.mul(g, xv), vi)));
    }
    for (let i = d4; i < dim; i++) {
      const b = <usize>i << 2;
      const g = load<f32>(go + b), xv = load<f32>(xo + b);
      store<f32>(dxo + b, load<f32>(dxo + b) + (inv * (load<f32>(w + b) * g) - xv * c));
      if (dw) store<f32>(dw + b, load<f32>(dw + b) + g * xv * inv);
    }
  }
}

// SwiGLU forward of elements [i0, i1): sg = σ(g), g -> silu(g) = g·σ(g) (in place), act = silu(g)·u.
export function trainSwigluForward(g: usize, u: usize, sg: usize, act: usize, i0: i32, i1: i32): void {
  const zk = i32x4.splat(<i32>(<u32>i0 >>> 31)); // 0, opaque to Binaryen
  const e0k = expK(0, zk), e1k = expK(1, zk), e2k = expK(2, zk), e3k = expK(3, zk), e4k = expK(4, zk);
  const e5k = expK(5, zk), e6k = expK(6, zk), e7k = expK(7, zk), e8k = expK(8, zk), e9k = expK(9, zk);
  const e10k = expK(10, zk), e11k = expK(11, zk), e12k = expK(12, zk);
  const one = e11k;
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const b = <usize>i << 2;
    const gv = v128.load(g + b);
    const s = f32x4.div(one, f32x4.add(one, expC(f32x4.neg(gv), e0k, e1k, e2k, e3k, e4k, e5k, e6k, e7k, e8k, e9k, e10k, e11k, e12k)));
    const silu = f32x4.mul(gv, s);
    v128.store(sg + b, s);
    v128.store(g + b, silu);
    v128.store(act + b, f32x4.mul(silu, v128.load(u + b)));
  }
  for (; i < i1; i++) {
    const b = <usize>i << 2;
    const gv = load<f32>(g + b);
    const s = <f32>1.0 / (<f32>1.0 + exp1(-gv));
    const silu = gv * s;
    store<f32>(sg + b, s);
    store<f32>(g + b, silu);
    store<f32>(act + b, silu * load<f32>(u + b));
  }
}

// SwiGLU backward of elements [i0, i1): du = dact·silu, dg = dact·u·(σ + silu·(1 − σ)) (overwrite).
export function trainSwigluBackward(dact: usize, silu: usize, sg: usize, u: usize, dg: usize, du: usize, i0: i32, i1: i32): void {
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const b = <usize>i << 2;
    const d = v128.load(dact + b), s = v128.load(silu + b), si = v128.load(sg + b);
    v128.store(du + b, f32x4.mul(d, s));
    const dsilu = f32x4.add(si, f32x4.mul(s, f32x4.sub(one, si)));
    v128.store(dg + b, f32x4.mul(f32x4.mul(d, v128.load(u + b)), dsilu));
  }
  for (; i < i1; i++) {
    const b = <usize>i << 2;
    const d = load<f32>(dact + b), s = load<f32>(silu + b), si = load<f32>(sg + b);
    store<f32>(du + b, d * s);
    store<f32>(dg + b, d * load<f32>(u + b) * (si + s * (<f32>1.0 - si)));
  }
}

// Inverted dropout of n elements with xoshiro128** (state: 4 u32 words, advanced n steps and stored back): kept =
// next()/2^32 < keep (in f64); mask[i] = kept; xd[i] = kept ? x[i]·inv (f64, rounded once) : 0. The same stream and
// bits as TrainRng in src/train/lora.ts and dropoutRef.
export function trainDropout(x: usize, xd: usize, mask: usize, n: i32, keep: f64, inv: f64, state: usize): void {
  let s0 = load<u32>(state), s1 = load<u32>(state, 4), s2 = load<u32>(state, 8), s3 = load<u32>(state, 12);
  const limit = keep * 4294967296.0; // r/2^32 < keep ⟺ r < keep·2^32: both sides exact, no division per element
  for (let i = 0; i < n; i++) {
    const r = rotl<u32>(s1 * 5, 7) * 9;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl<u32>(s3, 11);
    const kept = <f64>r < limit;
    store<u8>(mask + <usize>i, kept ? 1 : 0);
    store<f32>(xd + (<usize>i << 2), kept ? <f32>(<f64>load<f32>(x + (<usize>i << 2)) * inv) : 0);
  }
  store<u32>(state, s0);
  store<u32>(state, s1, 4);
  store<u32>(state, s2, 8);
  store<u32>(state, s3, 12);
}

// RoPE of rows [r0, r1) of x (rows, nHeads·hs) in place, row = b·T + t at position t: adjacent pairs rotated by
// sign·t·θ_j. cos, sin (T, hs/2).
export function trainRope(x: usize, cos: usize, sin: usize, T: i32, nHeads: i32, hs: i32, sign: f32, r0: i32, r1: i32): void {
  const half = hs >> 1, stride = nHeads * hs;
  for (let row = r0; row < r1; row++) {
    const t = row % T;
    const o = x + ((<usize>row * <usize>stride) << 2);
    const co = cos + (<usize>(t * half) << 2), so = sin + (<usize>(t * half) << 2);
    for (let h = 0; h < nHeads; h++) {
      const ho = o + (<usize>(h * hs) << 2);
      for (let j = 0; j < half; j++) {
        const c = load<f32>(co + (<usize>j << 2)), s = sign * load<f32>(so + (<usize>j << 2));
        const p = ho + (<usize>j << 3);
        const v0 = load<f32>(p), v1 = load<f32>(p, 4);
        store<f32>(p, v0 * c - v1 * s);
        store<f32>(p, v0 * s + v1 * c, 4);
      }
    }
  }
}

// Backward of trainDropout, accumulating: dx[i] += mask[i] ? dxd[i]·inv : 0 (in f64, rounded once, as the reference).
export function trainDropoutBackward(dx: usize, dxd: usize, mask: usize, n: i32, inv: f64): void {
  for (let i = 0; i < n; i++) {
    if (load<u8>(mask + <usize>i)) {
      const p = dx + (<usize>i << 2);
      store<f32>(p, <f32>(<f64>load<f32>(p) + <f64>load<f32>(dxd + (<usize>i << 2)) * inv));
    }
  }
}

// One AdamW update of n elements in f32 arithmetic (each operation rounded to f32, no fused multiply-add, so the
// bits equal the reference's Math.fround after every operation): p ← p·decay, m ← β1·m + (1−β1)·g,
// v ← β2·v + (1−β2)·g², p ← p + negStep·(m / (√v / bc2Sqrt + eps)).
export function trainAdamw(
  p: usize, g: usize, m: usize, v: usize, n: i32, decay: f32, b1: f32, ob1: f32, b2: f32, ob2: f32, negStep: f32,
  bc2Sqrt: f32, eps: f32,
): void {
  const vdec = f32x4.splat(decay), vb1 = f32x4.splat(b1), vob1 = f32x4.splat(ob1), vb2 = f32x4.splat(b2);
  const vob2 = f32x4.splat(ob2), vss = f32x4.splat(negStep), vbs = f32x4.splat(bc2Sqrt), veps = f32x4.splat(eps);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gi = v128.load(g + o);
    const pi = f32x4.mul(v128.load(p + o), vdec); // ×1 is exact: the reference's skip gives the same bits
    const mi = f32x4.add(f32x4.mul(v128.load(m + o), vb1), f32x4.mul(gi, vob1));
    const vi = f32x4.add(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(f32x4.mul(gi, gi), vob2));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vi), vbs), veps);
    v128.store(p + o, f32x4.add(pi, f32x4.mul(vss, f32x4.div(mi, denom))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const pi = load<f32>(p + o) * decay;
    const mi = load<f32>(m + o) * b1 + gi * ob1;
    const vi = load<f32>(v + o) * b2 + (gi * gi) * ob2;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(p + o, pi + negStep * (mi / (Mathf.sqrt(vi) / bc2Sqrt + eps)));
  }
}
