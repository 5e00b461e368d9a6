/**
 * WASM training kernels (src/kernels/train_wasm.ts) vs the definitions, scalarTrainKernels
 * (src/kernels/train_kernels.ts), on awkward shapes. Oracle: the scalar loops; the error bound is relative to the
 * f64 sum of |terms| of the same inputs, so it holds whatever the summation order of either side.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { randomNormal } from "../_rand.ts";
import { f32ArrayToF16Ref } from "../../src/core/f16.ts";
import { type FrozenType, type FrozenWeight, scalarTrainKernels } from "../../src/kernels/train_kernels.ts";
import { createWasmTrainKernels, TRAIN_TYPE_CODES } from "../../src/kernels/train_wasm.ts";
import { dequantizeRef } from "../../src/quant/dequantize.ts";
import { assertWithinBound, q4, q8 } from "./_util.ts";

/**
 * Worst-case bound for a K-term f32 dot accumulated sequentially with FMA or with multiply-then-add (either side),
 * relative to S = Σ|a||b| (+|c| when accumulating): γ_(K+1) ≈ (K+1)·2^-24 for each side, so 2(K+2)·2^-24 between
 * them. Indexing bugs produce errors of order S, far above it.
 */
const sequentialTol = (K: number) => 2 * (K + 2) * 2 ** -24;

const k = await createWasmTrainKernels();
const s = scalarTrainKernels;

/** S[r*N+n] = Σ_k |A(r,k)| |B(k,n)| (+|c0|), A(r,k) = a[r*ar + k*ak], B(k,n) = b[k*bk + n*bn] (f64). */
function absSums(
  a: Float32Array,
  ar: number,
  ak: number,
  b: Float32Array,
  bk: number,
  bn: number,
  M: number,
  N: number,
  K: number,
  c0?: Float32Array,
): Float64Array {
  const out = new Float64Array(M * N);
  for (let r = 0; r < M; r++) {
    for (let n = 0; n < N; n++) {
      let t = c0 ? Math.abs(c0[r * N + n]) : 0;
      for (let i = 0; i < K; i++) t += Math.abs(a[r * ar + i * ak]) * Math.abs(b[i * bk + n * bn]);
      out[r * N + n] = t;
    }
  }
  return out;
}

const ROWS = [1, 3, 31, 33, 257];
const N_IN = [1, 3, 31, 32, 33, 4099];
const N_OUT = [1, 5, 33, 260];
/** Keeps the scalar side (and the f64 bound) to a few seconds: every awkward size still meets the others. */
const MAX_MACS = 1.2e7;

function* shapes(): Generator<[number, number, number]> {
  for (const rows of ROWS) {
    for (const nIn of N_IN) {
      for (const nOut of N_OUT) if (rows * nIn * nOut <= MAX_MACS) yield [rows, nIn, nOut];
    }
  }
}

Deno.test("matmulF32() (WASM) matches the scalar definition at awkward shapes", () => {
  for (const [rows, nIn, nOut] of shapes()) {
    const x = randomNormal(rows * nIn, rows + 7 * nIn), w = randomNormal(nOut * nIn, nOut + 3 * nIn, 0.5);
    const want = new Float32Array(rows * nOut), y = new Float32Array(rows * nOut).fill(NaN);
    s.matmulF32(want, x, w, rows, nIn, nOut);
    k.matmulF32(y, x, w, rows, nIn, nOut);
    const S = absSums(x, nIn, 1, w, 1, nIn, rows, nOut, nIn);
    assertWithinBound(y, want, S, sequentialTol(nIn), 0, `Y ${rows}x${nIn}->${nOut}`);
  }
});

Deno.test("matmulF32BackwardInput() (WASM) accumulates dY W into dX like the scalar definition", () => {
  for (const [rows, nIn, nOut] of shapes()) {
    const dy = randomNormal(rows * nOut, rows + 5 * nOut), w = randomNormal(nOut * nIn, nOut + nIn, 0.5);
    const dx0 = randomNormal(rows * nIn, 99 + rows, 0.1);
    const want = dx0.slice(), dx = dx0.slice();
    s.matmulF32BackwardInput(want, dy, w, rows, nIn, nOut);
    k.matmulF32BackwardInput(dx, dy, w, rows, nIn, nOut);
    const S = absSums(dy, nOut, 1, w, nIn, 1, rows, nIn, nOut, dx0);
    assertWithinBound(dx, want, S, sequentialTol(nOut), 0, `dX ${rows}x${nIn}<-${nOut}`);
  }
});

Deno.test("matmulF32BackwardWeight() (WASM) accumulates dYᵀ X into dW like the scalar definition", () => {
  for (const [rows, nIn, nOut] of shapes()) {
    const dy = randomNormal(rows * nOut, rows + 11 * nOut), x = randomNormal(rows * nIn, rows + 13 * nIn);
    const dw0 = randomNormal(nOut * nIn, 7 + nOut, 0.1);
    const want = dw0.slice(), dw = dw0.slice();
    s.matmulF32BackwardWeight(want, dy, x, rows, nIn, nOut);
    k.matmulF32BackwardWeight(dw, dy, x, rows, nIn, nOut);
    // dW[o, i] = Σ_r dY[r, o] X[r, i]: A(o, r) = dy[r*nOut + o], B(r, i) = x[r*nIn + i]
    const S = absSums(dy, 1, nOut, x, nIn, 1, nOut, nIn, rows, dw0);
    assertWithinBound(dw, want, S, sequentialTol(rows), 0, `dW ${nOut}x${nIn} over ${rows}`);
  }
});

/** A frozen weight of `type` made from w (nOut, nIn) with the reference encoders, and its exact f32 values. */
function frozen(type: FrozenType, w: Float32Array, nOut: number, nIn: number): [FrozenWeight, Float32Array] {
  let bytes: Uint8Array;
  if (type === "F32") bytes = new Uint8Array(w.slice().buffer);
  else if (type === "F16") bytes = new Uint8Array(f32ArrayToF16Ref(w).buffer);
  else bytes = type === "Q8_0" ? q8(w) : q4(w);
  return [{ type, bytes, nOut, nIn }, dequantizeRef(type, bytes, nOut * nIn)];
}

const FROZEN_SHAPES: [number, number, number][] = [
  [1, 32, 1],
  [3, 64, 5],
  [31, 96, 33],
  [33, 288, 260],
  [5, 4096, 7],
  [257, 32, 3],
];
const FLOAT_ONLY_SHAPES: [number, number, number][] = [[1, 1, 1], [3, 3, 5], [33, 31, 33], [4, 4099, 3]];

for (const type of ["F32", "F16", "Q8_0", "Q4_0"] as const) {
  const cases = type === "F32" || type === "F16" ? [...FROZEN_SHAPES, ...FLOAT_ONLY_SHAPES] : FROZEN_SHAPES;

  Deno.test(`matmulFrozen() (WASM, ${type}) matches the scalar definition`, () => {
    for (const [rows, nIn, nOut] of cases) {
      const [fw, wd] = frozen(type, randomNormal(nOut * nIn, nOut * 17 + nIn, 0.3), nOut, nIn);
      const x = randomNormal(rows * nIn, rows * 3 + nIn);
      const want = new Float32Array(rows * nOut), y = new Float32Array(rows * nOut).fill(NaN);
      s.matmulFrozen(want, x, fw, rows);
      k.matmulFrozen(y, x, fw, rows);
      const S = absSums(x, nIn, 1, wd, 1, nIn, rows, nOut, nIn);
      assertWithinBound(y, want, S, sequentialTol(nIn), 0, `${type} Y ${rows}x${nIn}->${nOut}`);
    }
  });

  Deno.test(`matmulFrozenBackwardInput() (WASM, ${type}) matches the scalar definition`, () => {
    for (const [rows, nIn, nOut] of cases) {
      const [fw, wd] = frozen(type, randomNormal(nOut * nIn, nOut * 19 + nIn, 0.3), nOut, nIn);
      const dy = randomNormal(rows * nOut, rows * 5 + nOut);
      const dx0 = randomNormal(rows * nIn, rows + 1, 0.1);
      const want = dx0.slice(), dx = dx0.slice();
      s.matmulFrozenBackwardInput(want, dy, fw, rows);
      k.matmulFrozenBackwardInput(dx, dy, fw, rows);
      const S = absSums(dy, nOut, 1, wd, nIn, 1, rows, nIn, nOut, dx0);
      assertWithinBound(dx, want, S, sequentialTol(nOut), 0, `${type} dX ${rows}x${nIn}<-${nOut}`);
    }
  });
}

Deno.test("matmulFrozen() (WASM) keeps a frozen weight resident and copies it once", () => {
  const [fw] = frozen("Q4_0", randomNormal(8 * 64, 3), 8, 64);
  const x = randomNormal(2 * 64, 4);
  const y1 = new Float32Array(16), y2 = new Float32Array(16);
  const before = k.residentBytes;
  k.matmulFrozen(y1, x, fw, 2);
  const after = k.residentBytes;
  assertEquals(after - before, fw.bytes.length);
  k.matmulFrozenBackwardInput(new Float32Array(2 * 64), y1, fw, 2);
  k.matmulFrozen(y2, x, fw, 2);
  assertEquals(k.residentBytes, after);
  assertEquals(y2, y1);
});

Deno.test("frozen weights past maxResidentBytes are copied per call and give the same bits", async () => {
  const small = await createWasmTrainKernels({ maxResidentBytes: 100 });
  const [a, b] = [frozen("Q8_0", randomNormal(2 * 64, 1), 2, 64)[0], frozen("F16", randomNormal(64 * 3, 2), 64, 3)[0]];
  const x = randomNormal(5 * 64, 3), y1 = new Float32Array(10), y2 = new Float32Array(10);
  small.matmulFrozen(y1, x, a, 5); // 136 bytes: over the limit
  k.matmulFrozen(y2, x, a, 5);
  assertEquals(small.residentBytes, 0);
  assertEquals(y1, y2);
  const x3 = randomNormal(4 * 3, 4), z1 = new Float32Array(4 * 64), z2 = new Float32Array(4 * 64);
  small.matmulFrozen(z1, x3, b, 4); // 384 bytes: over too
  k.matmulFrozen(z2, x3, b, 4);
  assertEquals(z1, z2);
  const [c] = frozen("Q4_0", randomNormal(2 * 32, 5), 2, 32); // 36 bytes: kept
  small.matmulFrozen(new Float32Array(2), randomNormal(32, 6), c, 1);
  assertEquals(small.residentBytes, 36);
  await assertRejects(() => createWasmTrainKernels({ maxResidentBytes: -1 }), RangeError, "maxResidentBytes");
});

Deno.test("allocFrozenWeight() gives a weight in WASM memory that the frozen products use in place", () => {
  const [src] = frozen("Q4_0", randomNormal(5 * 64, 8), 5, 64);
  const before = k.residentBytes;
  const fw = k.allocFrozenWeight("Q4_0", 5, 64);
  assertEquals(k.residentBytes - before, src.bytes.length);
  assert(fw.bytes.buffer !== src.bytes.buffer && fw.bytes.length === src.bytes.length);
  fw.bytes.set(src.bytes);
  const x = randomNormal(3 * 64, 9), y1 = new Float32Array(15), y2 = new Float32Array(15);
  k.matmulFrozen(y1, x, fw, 3);
  k.matmulFrozen(y2, x, src, 3);
  assertEquals(y1, y2);
  const dy = randomNormal(15, 10), dx1 = new Float32Array(3 * 64), dx2 = new Float32Array(3 * 64);
  k.matmulFrozenBackwardInput(dx1, dy, fw, 3);
  k.matmulFrozenBackwardInput(dx2, dy, src, 3);
  assertEquals(dx1, dx2);
  assertEquals(k.residentBytes - before, 2 * src.bytes.length); // fw in place, src copied once
  assertThrows(() => k.allocFrozenWeight("Q8_0", 2, 33), RangeError, "multiple of 32");
});

Deno.test("matmulF32() (WASM) overwrites y; the backward products add to what dx and dw hold", () => {
  const [rows, nIn, nOut] = [6, 40, 9];
  const x = randomNormal(rows * nIn, 1), w = randomNormal(nOut * nIn, 2), dy = randomNormal(rows * nOut, 3);
  const y = new Float32Array(rows * nOut).fill(1e30), want = new Float32Array(rows * nOut);
  k.matmulF32(y, x, w, rows, nIn, nOut);
  k.matmulF32(want, x, w, rows, nIn, nOut);
  assertEquals(y, want);
  const once = new Float32Array(rows * nIn), twice = new Float32Array(rows * nIn);
  k.matmulF32BackwardInput(once, dy, w, rows, nIn, nOut);
  k.matmulF32BackwardInput(twice, dy, w, rows, nIn, nOut);
  k.matmulF32BackwardInput(twice, dy, w, rows, nIn, nOut);
  for (let i = 0; i < once.length; i++) assert(Math.abs(twice[i] - 2 * once[i]) <= 1e-5 * Math.abs(once[i]) + 1e-6);
  const dw1 = new Float32Array(nOut * nIn), dw2 = new Float32Array(nOut * nIn).fill(0.5);
  k.matmulF32BackwardWeight(dw1, dy, x, rows, nIn, nOut);
  k.matmulF32BackwardWeight(dw2, dy, x, rows, nIn, nOut);
  for (let i = 0; i < dw1.length; i++) assert(Math.abs(dw2[i] - 0.5 - dw1[i]) <= 1e-5 * Math.abs(dw1[i]) + 1e-6);
});

Deno.test("the training exports split by output rows give the same bits as one call (how threads divide work)", () => {
  const [rows, nIn, nOut] = [37, 300, 70];
  const a = k.kernels.arena, m = a.mark();
  try {
    const xp = a.put(randomNormal(rows * nIn, 5)), wp = a.put(randomNormal(nOut * nIn, 6));
    const dyp = a.put(randomNormal(rows * nOut, 7));
    const whole = a.alloc(4 * rows * nOut), split = a.alloc(4 * rows * nOut);
    k.raw.trainMatmul(xp, wp, TRAIN_TYPE_CODES.F32, whole, nIn, nOut, 0, rows, k.scratch);
    for (const [r0, r1] of [[0, 13], [13, 14], [14, 37]]) {
      k.raw.trainMatmul(xp, wp, TRAIN_TYPE_CODES.F32, split, nIn, nOut, r0, r1, k.scratch);
    }
    assertEquals(a.f32(split, rows * nOut), a.f32(whole, rows * nOut));
    const dwWhole = a.alloc(4 * nOut * nIn), dwSplit = a.alloc(4 * nOut * nIn);
    a.f32(dwWhole, nOut * nIn).fill(0);
    a.f32(dwSplit, nOut * nIn).fill(0);
    k.raw.trainMatmulBackwardWeight(dyp, xp, dwWhole, rows, nIn, nOut, 0, nOut, k.scratch);
    for (const [o0, o1] of [[0, 5], [5, 70]]) {
      k.raw.trainMatmulBackwardWeight(dyp, xp, dwSplit, rows, nIn, nOut, o0, o1, k.scratch);
    }
    assertEquals(a.f32(dwSplit, nOut * nIn), a.f32(dwWhole, nOut * nIn));
  } finally {
    a.reset(m);
  }
});

Deno.test("the WASM training kernels reject an output that overlaps an input, and allow inputs to alias", () => {
  const buf = new Float32Array(64);
  const x = buf.subarray(0, 16), w = buf.subarray(0, 16);
  assertThrows(() => k.matmulF32(buf.subarray(8, 24), x, w, 4, 4, 4), RangeError, "y overlaps x");
  assertThrows(() => k.matmulF32BackwardInput(buf.subarray(32, 48), buf.subarray(40, 56), w, 4, 4, 4), RangeError);
  assertThrows(() => k.matmulF32BackwardWeight(buf.subarray(0, 16), buf.subarray(32, 48), x, 4, 4, 4), RangeError);
  const [fw] = frozen("F32", randomNormal(16, 1), 4, 4);
  assertThrows(() => k.matmulFrozenBackwardInput(new Float32Array(fw.bytes.buffer), x, fw, 4), RangeError, "dx");
  // the same array as X and W (a Gram matrix) is fine
  const g = randomNormal(20, 9), want = new Float32Array(16), y = new Float32Array(16);
  s.matmulF32(want, g, g, 4, 5, 4);
  k.matmulF32(y, g, g, 4, 5, 4);
  assertWithinBound(y, want, absSums(g, 5, 1, g, 1, 5, 4, 4, 5), sequentialTol(5));
});

Deno.test("the WASM training kernels throw RangeError/TypeError on bad shapes before touching memory", () => {
  const f = (n: number) => new Float32Array(n);
  assertThrows(() => k.matmulF32(f(0), f(0), f(0), 0, 1, 1), RangeError, "rows");
  assertThrows(() => k.matmulF32(f(2), f(2), f(1), 2, 1.5, 1), RangeError, "nIn");
  assertThrows(() => k.matmulF32(f(5), f(6), f(4), 3, 2, 2), RangeError, "y has 5 elements, expected 6");
  assertThrows(() => k.matmulF32(f(6), f(5), f(4), 3, 2, 2), RangeError, "x has 5 elements");
  assertThrows(() => k.matmulF32BackwardInput(f(6), f(6), f(3), 3, 2, 2), RangeError, "w has 3 elements");
  assertThrows(() => k.matmulF32BackwardWeight(f(3), f(6), f(6), 3, 2, 2), RangeError, "dw has 3 elements");
  assertThrows(() => k.matmulF32(f(1), f(1), f(1), 2 ** 15, 2 ** 15, 1), RangeError, "2^30");
  const q = { type: "Q4_0", bytes: new Uint8Array(18), nOut: 1, nIn: 33 } as const;
  assertThrows(() => k.matmulFrozen(f(1), f(33), q, 1), RangeError, "not a multiple of 32");
  const short = { type: "Q8_0", bytes: new Uint8Array(33), nOut: 1, nIn: 32 } as const;
  assertThrows(() => k.matmulFrozen(f(1), f(32), short, 1), RangeError, "Q8_0 bytes has 33 elements, expected 34");
  const f64 = new Float64Array(6) as unknown as Float32Array;
  assertThrows(() => k.matmulF32(f(6), f64, f(4), 3, 2, 2), TypeError, "x is not a Float32Array");
  assertThrows(() => k.matmulF32BackwardWeight(f(4), f(6), f64, 3, 2, 2), TypeError, "x is not a Float32Array");
  const noBytes = { type: "F32", bytes: [0, 0, 0, 0], nOut: 1, nIn: 1 } as unknown as FrozenWeight;
  assertThrows(() => k.matmulFrozenBackwardInput(f(1), f(1), noBytes, 1), TypeError, "Uint8Array");
  const odd = { type: "BF16", bytes: new Uint8Array(2), nOut: 1, nIn: 1 } as unknown as FrozenWeight;
  assertThrows(() => k.matmulFrozen(f(1), f(1), odd, 1), TypeError, "BF16");
});

Deno.test("createWasmTrainKernels({ threads: 2 }) gives the same bits as one thread, for every product", async () => {
  const k2 = await createWasmTrainKernels({ threads: 2 });
  try {
    assertEquals(k2.threads, 2);
    for (const [rows, nIn, nOut] of [[257, 128, 160], [40, 1024, 130], [13, 4099, 80]] as const) {
      const x = randomNormal(rows * nIn, 1), w = randomNormal(nOut * nIn, 2), dy = randomNormal(rows * nOut, 3);
      const y1 = new Float32Array(rows * nOut), y2 = new Float32Array(rows * nOut);
      k.matmulF32(y1, x, w, rows, nIn, nOut);
      k2.matmulF32(y2, x, w, rows, nIn, nOut);
      assertEquals(y2, y1);
      const dx1 = randomNormal(rows * nIn, 4), dx2 = dx1.slice();
      k.matmulF32BackwardInput(dx1, dy, w, rows, nIn, nOut);
      k2.matmulF32BackwardInput(dx2, dy, w, rows, nIn, nOut);
      assertEquals(dx2, dx1);
      const dw1 = randomNormal(nOut * nIn, 5), dw2 = dw1.slice();
      k.matmulF32BackwardWeight(dw1, dy, x, rows, nIn, nOut);
      k2.matmulF32BackwardWeight(dw2, dy, x, rows, nIn, nOut);
      assertEquals(dw2, dw1);
      if (nIn % 32 === 0) {
        const [fw] = frozen("Q4_0", w, nOut, nIn);
        k.matmulFrozen(y1, x, fw, rows);
        k2.matmulFrozen(y2, x, fw, rows);
        assertEquals(y2, y1);
        k.matmulFrozenBackwardInput(dx1, dy, fw, rows);
        k2.matmulFrozenBackwardInput(dx2, dy, fw, rows);
        assertEquals(dx2, dx1);
      }
    }
    assertEquals(k2.parallelCalls, 5 + 5 + 3, "every product above took the 2-thread path (no Q4_0 at nIn 4099)");
  } finally {
    k2.close();
  }
  assertEquals(k2.threads, 1);
  await assertRejects(() => createWasmTrainKernels({ threads: 3 as 2 }), RangeError, "threads");
});
