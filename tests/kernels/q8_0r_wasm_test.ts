/**
 * Repacked Q8_0 (Q8_0R) against independent computations: the TS repack reference byte for byte, and the f64 dot of
 * the dequantized weights (dequantizeRowQ8_0Ref) with the dequantized Q8_0 activations (quantizeRowQ8_0Ref), which
 * the kernel must reproduce up to its single f32 rounding (its block terms are exact in f64; see wasm/README.md).
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { randomNormal } from "../_rand.ts";
import { f16ToF32Ref } from "../../src/core/f16.ts";
import { Q8_0R_GROUP_BLOCK_BYTES, repackedQ8_0Bytes, repackQ8_0Ref } from "../../src/kernels/scalar.ts";
import { q8_0RScratchBytes, q8ABytes, q8AStride } from "../../src/kernels/wasm.ts";
import { assertBytesEqual } from "../_assert.ts";
import { dq8, q8, wasm } from "./_util.ts";

const k = await wasm();

/** Q8_0 rows of random weights; `extremes` sets some quants to ±127 and −128 (llama.cpp never writes −128; a file may). */
function q8Rows(nRows: number, nCols: number, seed: number, extremes = false): Uint8Array {
  const w = q8(randomNormal(nRows * nCols, seed, 0.5));
  if (extremes) {
    for (let i = 0; i < w.length; i += 34) {
      for (let j = 0; j < 32; j += 5) w[i + 2 + j] = [0x80, 0x7f, 0x81][(i / 34 + j) % 3];
    }
  }
  return w;
}

/** The f64 dot of dequantized rows with dequantized Q8_0 activations. */
function exactDots(w: Uint8Array, x: Float32Array, nRows: number, nCols: number): Float64Array {
  const wd = dq8(w), xd = dq8(q8(x));
  const out = new Float64Array(nRows);
  for (let r = 0; r < nRows; r++) {
    let s = 0;
    for (let j = 0; j < nCols; j++) s += wd[r * nCols + j] * xd[j];
    out[r] = s;
  }
  return out;
}

/** Σ|w||x| per row (the f64 sums' rounding scale). */
function absSums(w: Uint8Array, x: Float32Array, nRows: number, nCols: number): Float64Array {
  const wd = dq8(w), xd = dq8(q8(x));
  const out = new Float64Array(nRows);
  for (let r = 0; r < nRows; r++) {
    let s = 0;
    for (let j = 0; j < nCols; j++) s += Math.abs(wd[r * nCols + j] * xd[j]);
    out[r] = s;
  }
  return out;
}

/** Asserts got[r] is fround(exact[r]) up to one f32 ulp (plus f64 noise of the two summation orders). */
function assertRoundedOnce(got: ArrayLike<number>, exact: Float64Array, abs: Float64Array, what: string): void {
  let equal = 0;
  for (let r = 0; r < exact.length; r++) {
    const want = Math.fround(exact[r]);
    const ulp = Math.max(Math.abs(want) * 2 ** -23, 2 ** -149);
    const err = Math.abs(got[r] - want);
    assert(err <= ulp + 1e-13 * abs[r], `${what} row ${r}: ${got[r]} vs ${want} (exact ${exact[r]})`);
    if (got[r] === want) equal++;
  }
  assert(equal >= 0.9 * exact.length, `${what}: only ${equal}/${exact.length} rows equal fround(exact)`);
}

Deno.test("repackQ8_0 (WASM) is byte-identical to repackQ8_0Ref() including the zero padding rows", {
  permissions: "none",
}, () => {
  for (const [nRows, nCols] of [[1, 32], [3, 64], [4, 32], [13, 96], [33, 4096]]) {
    const w = q8Rows(nRows, nCols, nRows * 7 + nCols, true);
    const want = new Uint8Array(repackedQ8_0Bytes(nRows, nCols));
    repackQ8_0Ref(w, want, nRows, nCols);
    const a = k.arena, m = a.mark();
    const src = a.put(w, 1), dst = a.alloc(want.length);
    a.u8(dst, want.length).fill(0xee);
    k.ptr.repackQ8_0(src, dst, nRows, nCols);
    assertBytesEqual(a.u8(dst, want.length), want, `${nRows}x${nCols}`);
    a.reset(m);
  }
});

Deno.test("repackQ8_0Ref() puts row 4g+i's scale at lane i and its quants + 128 at lane i of vector j/4", {
  permissions: "none",
}, () => {
  const nRows = 5, nCols = 64, nb = 2;
  const w = q8Rows(nRows, nCols, 3, true);
  const out = new Uint8Array(repackedQ8_0Bytes(nRows, nCols));
  repackQ8_0Ref(w, out, nRows, nCols);
  assertEquals(out.length, 2 * nb * Q8_0R_GROUP_BLOCK_BYTES);
  const dv = new DataView(out.buffer);
  for (let r = 0; r < nRows; r++) {
    const g = r >> 2, i = r & 3;
    for (let b = 0; b < nb; b++) {
      const so = (r * nb + b) * 34, go = (g * nb + b) * 144;
      assertEquals(dv.getFloat32(go + 4 * i, true), f16ToF32Ref(w[so] | (w[so + 1] << 8)));
      for (let j = 0; j < 32; j++) {
        const q = (w[so + 2 + j] << 24) >> 24;
        assertEquals(out[go + 16 + (j >> 2) * 16 + i * 4 + (j & 3)], q + 128, `row ${r} block ${b} quant ${j}`);
      }
    }
  }
  // rows 5..7 of the second group: zero scales and bytes
  for (let b = 0; b < nb; b++) {
    const go = (nb + b) * 144;
    for (let i = 1; i < 4; i++) {
      assertEquals(dv.getFloat32(go + 4 * i, true), 0);
      for (let kk = 0; kk < 8; kk++) assertEquals(dv.getUint32(go + 16 + kk * 16 + 4 * i, true), 0);
    }
  }
});

Deno.test("matvecQ8_0R (WASM) is the f64 dot of dequantized weights and Q8_0 activations, rounded once to f32", {
  permissions: "none",
}, () => {
  const shapes = [[1, 32], [3, 32], [4, 64], [5, 64], [31, 96], [33, 4096], [9, 11008], [6, 32768]];
  for (const [nRows, nCols] of shapes) {
    for (const extremes of [false, true]) {
      const w = q8Rows(nRows, nCols, nRows + nCols, extremes);
      const x = randomNormal(nCols, nCols + 1, extremes ? 30 : 2);
      const a = k.arena, m = a.mark();
      const src = a.put(w, 1), wr = a.alloc(repackedQ8_0Bytes(nRows, nCols));
      k.ptr.repackQ8_0(src, wr, nRows, nCols);
      const xp = a.put(x), act = a.alloc(q8ABytes(nCols)), y = a.alloc(4 * nRows);
      k.ptr.quantizeQ8A(xp, act, nCols);
      k.ptr.matvecQ8_0R(wr, act, y, nRows, nCols, 0, nRows);
      const what = `${nRows}x${nCols}${extremes ? " with ±127/−128 quants" : ""}`;
      assertRoundedOnce(a.f32(y, nRows), exactDots(w, x, nRows, nCols), absSums(w, x, nRows, nCols), what);
      a.reset(m);
    }
  }
});

Deno.test("Q8_0R kernels stay exact at the fp16 scale extremes (d_w * d_x is formed in f32: it must be exact there)", {
  permissions: "none",
}, () => {
  // weight scales: subnormal 2^-24 and 2^-14 - 2^-24, smallest normal, 65504, 1, -2^-24, and an ordinary one;
  // activation blocks scaled so that their fp16 scale d_x is subnormal (~1e-8), tiny, ordinary, or huge (~4e4)
  const [nRows, nCols, batch] = [9, 32 * 14, 5];
  const dws = [0x0001, 0x03ff, 0x0400, 0x7bff, 0x3c00, 0x8001, 0x2e66];
  const xScales = [1e-6, 3e-4, 1, 7e5, 0.02, 1.2e6, 1e-5];
  const w = q8Rows(nRows, nCols, 123, true);
  for (let b = 0; b < w.length / 34; b++) {
    const h = dws[(b * 3 + Math.floor(b / 14)) % dws.length];
    w[34 * b] = h & 0xff;
    w[34 * b + 1] = h >> 8;
  }
  const x = randomNormal(batch * nCols, 124);
  for (let j = 0; j < x.length; j++) x[j] *= xScales[(Math.floor(j / 32) + Math.floor(j / nCols)) % xScales.length];
  const a = k.arena, m = a.mark();
  const src = a.put(w, 1), wr = a.alloc(repackedQ8_0Bytes(nRows, nCols));
  k.ptr.repackQ8_0(src, wr, nRows, nCols);
  const xp = a.put(x), stride = q8AStride(nCols), acts = a.alloc(stride * batch);
  for (let t = 0; t < batch; t++) k.ptr.quantizeQ8A(xp + 4 * t * nCols, acts + t * stride, nCols);
  const ym = a.alloc(4 * batch * nRows), yv = a.alloc(4 * nRows);
  k.ptr.matmulQ8_0R(wr, acts, stride, ym, nRows, nCols, batch, 0, nRows, a.alloc(q8_0RScratchBytes(batch)));
  for (let t = 0; t < batch; t++) {
    const xt = x.subarray(t * nCols, (t + 1) * nCols);
    k.ptr.matvecQ8_0R(wr, acts + t * stride, yv, nRows, nCols, 0, nRows);
    const got = a.f32(yv, nRows);
    assertRoundedOnce(got, exactDots(w, xt, nRows, nCols), absSums(w, xt, nRows, nCols), `extreme scales row ${t}`);
    assertEquals([...a.f32(ym + 4 * t * nRows, nRows)], [...got], `extreme scales: matmul row ${t} = matvec`);
  }
  // the relaxed i32 dot-add ("VNNI") forms: the same integer block sums, so the same bits, extremes included
  const yq = a.alloc(4 * batch * nRows);
  k.raw.matmulQ8_0RVnni(wr, acts, stride, yq, nCols, nRows, batch, 0, nRows, a.alloc(q8_0RScratchBytes(batch)));
  assertEquals([...a.f32(yq, batch * nRows)], [...a.f32(ym, batch * nRows)], "extreme scales: VNNI-form matmul");
  for (let t = 0; t < batch; t++) {
    k.raw.matvecQ8_0RVnni(wr, acts + t * stride, yv, nCols, 0, nRows);
    assertEquals([...a.f32(yv, nRows)], [...a.f32(ym + 4 * t * nRows, nRows)], `extreme scales: VNNI-form row ${t}`);
  }
  a.reset(m);
});

const MM_BATCHES = [1, 2, 3, 5, 17, 33];

Deno.test("matmulQ8_0R (WASM) equals matvecQ8_0R bit for bit for every row of the batch", {
  permissions: "none",
}, () => {
  const [nRows, nCols] = [19, 4096]; // four full 4-row groups and a partial one
  const maxBatch = Math.max(...MM_BATCHES);
  const w = q8Rows(nRows, nCols, 77);
  const x = randomNormal(maxBatch * nCols, 78);
  const a = k.arena, m = a.mark();
  const src = a.put(w, 1), wr = a.alloc(repackedQ8_0Bytes(nRows, nCols));
  k.ptr.repackQ8_0(src, wr, nRows, nCols);
  const xp = a.put(x), stride = q8AStride(nCols), acts = a.alloc(stride * maxBatch);
  for (let t = 0; t < maxBatch; t++) k.ptr.quantizeQ8A(xp + 4 * t * nCols, acts + t * stride, nCols);
  const ym = a.alloc(4 * maxBatch * nRows), yv = a.alloc(4 * nRows);
  const scratch = a.alloc(q8_0RScratchBytes(maxBatch));
  for (const batch of MM_BATCHES) {
    if (batch === 1) k.raw.matmulQ8_0R(wr, acts, stride, ym, nCols, nRows, 1, 0, nRows, scratch);
    else k.ptr.matmulQ8_0R(wr, acts, stride, ym, nRows, nCols, batch, 0, nRows, scratch);
    for (let t = 0; t < batch; t++) {
      k.ptr.matvecQ8_0R(wr, acts + t * stride, yv, nRows, nCols, 0, nRows);
      assertEquals([...a.f32(ym + 4 * t * nRows, nRows)], [...a.f32(yv, nRows)], `batch ${batch} row ${t}`);
    }
  }
  a.reset(m);
});

Deno.test("matvecQ8_0R/matmulQ8_0R (WASM) write only rows [rowStart, rowEnd) of every batch row", {
  permissions: "none",
}, () => {
  const [nRows, nCols] = [29, 64];
  const w = q8Rows(nRows, nCols, 91);
  for (const batch of [1, 3]) {
    const x = randomNormal(batch * nCols, 92 + batch);
    const a = k.arena, m = a.mark();
    const src = a.put(w, 1), wr = a.alloc(repackedQ8_0Bytes(nRows, nCols));
    k.ptr.repackQ8_0(src, wr, nRows, nCols);
    const xp = a.put(x), stride = q8AStride(nCols), acts = a.alloc(stride * batch);
    for (let t = 0; t < batch; t++) k.ptr.quantizeQ8A(xp + 4 * t * nCols, acts + t * stride, nCols);
    const full = a.alloc(4 * batch * nRows), y = a.alloc(4 * batch * nRows + 64);
    const scratch = a.alloc(q8_0RScratchBytes(batch));
    k.ptr.matmulQ8_0R(wr, acts, stride, full, nRows, nCols, batch, 0, nRows, scratch);
    const all = [...a.f32(full, batch * nRows)];
    for (
      const [r0, r1] of [[4, 21], [16, 29], [0, 3], [24, 24], [8, 29], [0, 29], [0, 8], [16, 24], [8, 9], [28, 29]]
    ) {
      for (const form of ["i16", "vnni"] as const) {
        const yv = a.f32(y, batch * nRows + 16);
        yv.fill(-7);
        if (form === "i16") k.ptr.matmulQ8_0R(wr, acts, stride, y, nRows, nCols, batch, r0, r1, scratch);
        else if (batch === 1) k.raw.matvecQ8_0RVnni(wr, acts, y, nCols, r0, r1);
        else k.raw.matmulQ8_0RVnni(wr, acts, stride, y, nCols, nRows, batch, r0, r1, scratch);
        for (let i = 0; i < batch * nRows + 16; i++) {
          const r = i % nRows;
          const inside = i < batch * nRows && r >= r0 && r < r1;
          assertEquals(yv[i], inside ? all[i] : -7, `${form} batch ${batch} [${r0}, ${r1}) element ${i}`);
        }
      }
    }
    a.reset(m);
  }
});

Deno.test("Q8_0R kernels reject bad shapes, ranges, alignment, bounds and overlap with RangeError", {
  permissions: "none",
}, () => {
  const a = k.arena, m = a.mark();
  const nRows = 16, nCols = 64;
  const src = a.alloc(nRows * 2 * 34), wr = a.alloc(repackedQ8_0Bytes(nRows, nCols)), act = a.alloc(q8ABytes(nCols));
  const y = a.alloc(4 * nRows);
  assertThrows(() => k.ptr.repackQ8_0(src, wr, nRows, 48), RangeError, "multiple of 32");
  assertThrows(() => k.ptr.repackQ8_0(src, wr + 4, nRows, nCols), RangeError, "16-byte aligned");
  assertThrows(() => k.ptr.repackQ8_0(src, src + 16, nRows, nCols), RangeError, "overlaps");
  assertThrows(() => k.ptr.matvecQ8_0R(wr, act, y, nRows, nCols, 2, 16), RangeError, "multiple of 4");
  assertThrows(() => k.ptr.matvecQ8_0R(wr + 8, act, y, nRows, nCols, 0, 16), RangeError, "16-byte aligned");
  assertThrows(() => k.ptr.matvecQ8_0R(wr, act, y + 1, nRows, nCols, 0, 16), RangeError, "4-byte aligned");
  assertThrows(() => k.ptr.matvecQ8_0R(wr, act, y, nRows, 48, 0, 16), RangeError, "multiple of 32");
  assertThrows(() => k.ptr.matvecQ8_0R(wr, act, y, nRows, nCols, 0, 17), RangeError, "row range");
  assertThrows(() => k.ptr.matvecQ8_0R(wr, act, wr, nRows, nCols, 0, 16), RangeError, "overlaps");
  const scratch = a.alloc(q8_0RScratchBytes(2));
  assertThrows(
    () => k.ptr.matmulQ8_0R(wr, act, 8, y, nRows, nCols, 2, 0, 16, scratch),
    RangeError,
    "activation stride",
  );
  assertThrows(
    () => k.ptr.matmulQ8_0R(wr, act, q8AStride(nCols), y, nRows, nCols, 1, 0, 16, scratch + 8),
    RangeError,
    "16-byte aligned",
  );
  const end = Math.floor(k.memory.buffer.byteLength / 16) * 16;
  assertThrows(() => k.ptr.matvecQ8_0R(end - 64, act, y, nRows, nCols, 0, 16), RangeError, "out of bounds");
  a.reset(m);
});
