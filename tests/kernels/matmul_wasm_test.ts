/**
 * WASM matrix products vs the scalar references (src/kernels/scalar.ts), which are checked independently in
 * scalar_test.ts. Quantized products share the exact integer block sums with the reference; they differ only in f32
 * rounding of the scale products and the f32 (vs f64) accumulation over blocks.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { randomNormal, randomUniform } from "../_rand.ts";
import { f16ArrayToF32Ref, f32ArrayToF16Ref } from "../../src/core/f16.ts";
import { scalarKernels } from "./_typed_kernels.ts";
import {
  DOT_PROBE_BYTES,
  pickDotForm,
  q4_0RScratchBytes,
  q8_0RScratchBytes,
  q8ABytes,
  q8AStride,
} from "../../src/kernels/wasm.ts";
import { repackedQ4_0Bytes, repackedQ8_0Bytes } from "../../src/kernels/scalar.ts";
import { absDotSums, assertWithinBound, dq4, dq8, q4, q8, wasm } from "./_util.ts";

/**
 * Error bound relative to S = Σ|w||x| (dequantized w, original x). Quantized: x is quantized to Q8_0 in both, so the
 * only differences are f32 roundings: ~3 ulp per block term plus an f32 sum of nb terms (bounded by nb ulp of S);
 * S over-estimates the scale of the terms since x is used unquantized (|q8(x) - x| <= d/2), hence the 1.5 factor.
 */
const quantTol = (nCols: number) => 1.5 * (nCols / 32 + 4) * 2 ** -24;
/** Float: f32 FMA sums over nCols/8 terms per lane plus the lane reduction (the reference sums in f64). */
const floatTol = (nCols: number) => (nCols / 8 + 8) * 2 ** -24;

const k = await wasm();

const QUANT_SHAPES: [number, number][] = [[1, 32], [3, 32], [31, 64], [33, 96], [8, 4096], [17, 4096], [9, 11008], [
  49953,
  32,
]];
const FLOAT_SHAPES: [number, number][] = [[1, 1], [3, 3], [31, 31], [32, 32], [33, 33], [5, 4096], [3, 4099], [
  2,
  11008,
], [49953, 3]];

for (const fmt of ["Q4_0", "Q8_0"] as const) {
  const quant = fmt === "Q4_0" ? q4 : q8;
  const deq = fmt === "Q4_0" ? dq4 : dq8;
  const ref = fmt === "Q4_0" ? scalarKernels.matmulQ4_0 : scalarKernels.matmulQ8_0;
  const got = fmt === "Q4_0" ? k.matmulQ4_0.bind(k) : k.matmulQ8_0.bind(k);

  Deno.test(`matvec${fmt}/matmul${fmt} (WASM) match the reference at awkward shapes and batches`, () => {
    for (const [nRows, nCols] of QUANT_SHAPES) {
      for (const batch of nRows > 1000 ? [1] : [1, 3]) {
        const wq = quant(randomNormal(nRows * nCols, nRows + nCols, 0.5));
        const x = randomNormal(batch * nCols, nCols + batch, 2);
        const want = new Float32Array(batch * nRows), y = new Float32Array(batch * nRows);
        ref(wq, x, want, nRows, nCols, batch);
        got(wq, x, y, nRows, nCols, batch);
        const s = absDotSums(deq(wq), x, nRows, nCols, batch);
        assertWithinBound(y, want, s, quantTol(nCols), 0, `${fmt} ${nRows}x${nCols} batch ${batch}`);
      }
    }
  });

  Deno.test(`matvec${fmt} (WASM) computes only the requested row range`, () => {
    const [nRows, nCols] = [29, 64];
    const wq = quant(randomNormal(nRows * nCols, 5));
    const x = randomNormal(nCols, 6);
    const want = new Float32Array(nRows);
    ref(wq, x, want, nRows, nCols, 1);
    for (const [r0, r1] of [[0, 8], [8, 16], [16, 29], [3, 11], [28, 29], [5, 5], [8, 29], [0, 29]]) {
      const y = new Float32Array(nRows).fill(-7);
      (fmt === "Q4_0" ? k.matvecQ4_0 : k.matvecQ8_0).call(k, wq, x, y, nRows, nCols, { rowStart: r0, rowEnd: r1 });
      for (let r = 0; r < nRows; r++) {
        if (r < r0 || r >= r1) assertEquals(y[r], -7, `row ${r} outside [${r0}, ${r1}) untouched`);
        else assertWithinBound([y[r]], [want[r]], absDotSums(deq(wq).subarray(r * nCols), x, 1, nCols, 1), 1e-6);
      }
    }
  });

  Deno.test(`matvec${fmt} (WASM) handles zero weights, zero x, all-equal and ±max blocks`, () => {
    const nCols = 128, nRows = 6;
    const w = new Float32Array(nRows * nCols);
    w.subarray(nCols, 2 * nCols).fill(0.25); // all-equal row
    for (let j = 0; j < nCols; j++) w[2 * nCols + j] = j % 2 ? 65504 : -65504; // ±fp16 max scales
    w.set(randomUniform(nCols, 1, -1e-5, 1e-5), 3 * nCols); // fp16-denormal scales
    w.set(randomNormal(2 * nCols, 2), 4 * nCols);
    const wq = quant(w);
    for (const x of [new Float32Array(nCols), new Float32Array(nCols).fill(-3), randomNormal(nCols, 4, 1e4)]) {
      const want = new Float32Array(nRows), y = new Float32Array(nRows);
      ref(wq, x, want, nRows, nCols, 1);
      got(wq, x, y, nRows, nCols, 1);
      assertWithinBound(y, want, absDotSums(deq(wq), x, nRows, nCols, 1), quantTol(nCols), 0, fmt);
      if (x[0] === 0) assertEquals(Array.from(y), new Array(nRows).fill(0));
    }
  });
}

for (const fmt of ["F16", "F32"] as const) {
  Deno.test(`matvec${fmt}/matmul${fmt} (WASM) match the reference at awkward shapes and batches`, () => {
    for (const [nRows, nCols] of FLOAT_SHAPES) {
      for (const batch of nRows > 1000 ? [1] : [1, 2]) {
        const wf = randomNormal(nRows * nCols, nRows * 3 + nCols);
        const x = randomNormal(batch * nCols, nCols + 17);
        const want = new Float32Array(batch * nRows), y = new Float32Array(batch * nRows);
        let wEff: Float32Array;
        if (fmt === "F16") {
          const wh = f32ArrayToF16Ref(wf);
          wEff = f16ArrayToF32Ref(wh);
          scalarKernels.matmulF16(wh, x, want, nRows, nCols, batch);
          k.matmulF16(wh, x, y, nRows, nCols, batch);
        } else {
          wEff = wf;
          scalarKernels.matmulF32(wf, x, want, nRows, nCols, batch);
          k.matmulF32(wf, x, y, nRows, nCols, batch);
        }
        const s = absDotSums(wEff, x, nRows, nCols, batch);
        assertWithinBound(y, want, s, floatTol(nCols), 0, `${fmt} ${nRows}x${nCols} batch ${batch}`);
      }
    }
  });
}

Deno.test("matvecF16 (WASM) converts fp16-denormal, ±max, Inf weights exactly", { permissions: "none" }, () => {
  const w = new Uint16Array([0x0001, 0x83ff, 0x7bff, 0xfbff, 0x3c00, 0x7c00, 0x0000, 0x8000, 0x03ff]);
  const nCols = w.length;
  for (let j = 0; j < nCols; j++) {
    const x = new Float32Array(nCols);
    x[j] = 1;
    const y = new Float32Array(1), want = new Float32Array(1);
    k.matvecF16(w, x, y, 1, nCols);
    scalarKernels.matvecF16(w, x, want, 1, nCols);
    assertEquals(y[0], want[0], `pattern 0x${w[j].toString(16)}`);
  }
});

Deno.test(
  "matvecF16/matmulF16 (WASM) 4-row path: an Inf/NaN weight in any of the four rows gives the reference's Inf/NaN",
  { permissions: "none" },
  () => {
    // 9 rows (two 4-row passes + one single row) x 17 columns (two 8-wide steps + a scalar tail); every row holds
    // the special and edge patterns at different columns; one-hot x makes every product exact.
    const pats = [0x0001, 0x83ff, 0x7bff, 0xfbff, 0x3c00, 0x7c00, 0x0000, 0x8000, 0x03ff, 0xfc00, 0x7e00, 0x7c01];
    const [nRows, nCols] = [9, 17];
    const w = new Uint16Array(nRows * nCols);
    for (let r = 0; r < nRows; r++) {
      for (let c = 0; c < nCols; c++) w[r * nCols + c] = r === 3 ? 0x3c00 : pats[(r * 5 + c) % pats.length];
    }
    const same = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));
    for (let j = 0; j < nCols; j++) {
      const x = new Float32Array(2 * nCols);
      x[j] = 1;
      x[nCols + j] = -2;
      const y = new Float32Array(2 * nRows), want = new Float32Array(2 * nRows);
      k.matmulF16(w, x, y, nRows, nCols, 2);
      scalarKernels.matmulF16(w, x, want, nRows, nCols, 2);
      for (let i = 0; i < 2 * nRows; i++) {
        assertEquals(same(y[i], want[i]), true, `col ${j} out ${i}: ${y[i]} vs ${want[i]}`);
      }
      const y1 = new Float32Array(nRows);
      k.matvecF16(w, x.subarray(0, nCols), y1, nRows, nCols);
      for (let i = 0; i < nRows; i++) assertEquals(same(y1[i], want[i]), true, `matvec col ${j} row ${i}`);
    }
  },
);

// Batches around the 16-row activation tile of the register-tiled kernel (1, a partial tile, tile + 1, 2 tiles + 1).
const MM_BATCHES = [1, 3, 5, 17, 33];

Deno.test(
  "matmulQ4_0R (WASM) equals matvecQ4_0R bit for bit for every row of the batch",
  { permissions: "none" },
  () => {
    // 19 rows: two full 8-row groups and a partial one
    const [nRows, nCols] = [19, 4096];
    const maxBatch = Math.max(...MM_BATCHES);
    const wq = q4(randomNormal(nRows * nCols, 77));
    const x = randomNormal(maxBatch * nCols, 78);
    const a = k.arena, m = a.mark();
    const src = a.put(wq, 1), wr = a.alloc(repackedQ4_0Bytes(nRows, nCols));
    k.ptr.repackQ4_0(src, wr, nRows, nCols);
    const xp = a.put(x), stride = q8AStride(nCols), acts = a.alloc(stride * maxBatch);
    for (let t = 0; t < maxBatch; t++) k.ptr.quantizeQ8A(xp + 4 * t * nCols, acts + t * stride, nCols);
    const ym = a.alloc(4 * maxBatch * nRows), yv = a.alloc(4 * nRows);
    const scratch = a.alloc(q4_0RScratchBytes(maxBatch));
    const want = new Float32Array(maxBatch * nRows);
    scalarKernels.matmulQ4_0(wq, x, want, nRows, nCols, maxBatch);
    for (const batch of MM_BATCHES) {
      // the raw export at batch 1 too (the checked API sends batch 1 to matvecQ4_0R)
      if (batch === 1) k.raw.matmulQ4_0R(wr, acts, stride, ym, nCols, nRows, 1, 0, nRows, scratch);
      else k.ptr.matmulQ4_0R(wr, acts, stride, ym, nRows, nCols, batch, 0, nRows, scratch);
      for (let t = 0; t < batch; t++) {
        k.ptr.matvecQ4_0R(wr, acts + t * stride, yv, nRows, nCols, 0, nRows, scratch);
        // same integer block sums, same f32 operations in the same order
        assertEquals([...a.f32(ym + 4 * t * nRows, nRows)], [...a.f32(yv, nRows)], `batch ${batch} row ${t}`);
        const s = absDotSums(dq4(wq), x.subarray(t * nCols, (t + 1) * nCols), nRows, nCols, 1);
        const wantT = want.subarray(t * nRows, (t + 1) * nRows);
        assertWithinBound(
          a.f32(ym + 4 * t * nRows, nRows),
          wantT,
          s,
          quantTol(nCols),
          0,
          `ref, batch ${batch} row ${t}`,
        );
      }
    }
    a.reset(m);
  },
);

// The register-tiled batched kernels (16-row activation tiles, 8-row Q4_0R / 4-row Q8_0R groups, two nibble passes)
// on awkward sizes: partial weight groups, every batch 1..17 (partial tiles, one tile + 1), and widths from one
// block to 4096 + 32.
const TILE_ROWS = [1, 3, 5, 31, 33];
const TILE_COLS = [32, 96, 4096 + 32];

for (const fmt of ["Q4_0", "Q8_0"] as const) {
  Deno.test(
    `matmul${fmt}R (WASM) equals matvec${fmt}R bit for bit at rows 1/3/5/31/33, batches 1..17, widths 32..4128`,
    { permissions: "none" },
    () => {
      const maxBatch = 17;
      for (const nCols of TILE_COLS) {
        for (const nRows of TILE_ROWS) {
          const seed = nRows * 7 + nCols;
          const wq = (fmt === "Q4_0" ? q4 : q8)(randomNormal(nRows * nCols, seed));
          const x = randomNormal(maxBatch * nCols, seed + 1);
          const a = k.arena, m = a.mark();
          const src = a.put(wq, 1);
          const wr = a.alloc(fmt === "Q4_0" ? repackedQ4_0Bytes(nRows, nCols) : repackedQ8_0Bytes(nRows, nCols));
          if (fmt === "Q4_0") k.ptr.repackQ4_0(src, wr, nRows, nCols);
          else k.ptr.repackQ8_0(src, wr, nRows, nCols);
          const xp = a.put(x), stride = q8AStride(nCols), acts = a.alloc(stride * maxBatch);
          for (let t = 0; t < maxBatch; t++) k.ptr.quantizeQ8A(xp + 4 * t * nCols, acts + t * stride, nCols);
          const ym = a.alloc(4 * maxBatch * nRows), yv = a.alloc(4 * nRows);
          const scratch = a.alloc(Math.max(q4_0RScratchBytes(maxBatch), q8_0RScratchBytes(maxBatch)));
          const single: number[][] = [];
          for (let t = 0; t < maxBatch; t++) {
            if (fmt === "Q4_0") k.ptr.matvecQ4_0R(wr, acts + t * stride, yv, nRows, nCols, 0, nRows, scratch);
            else k.ptr.matvecQ8_0R(wr, acts + t * stride, yv, nRows, nCols, 0, nRows);
            single.push([...a.f32(yv, nRows)]);
          }
          for (let batch = 1; batch <= maxBatch; batch++) {
            // the raw tiled kernel, batch 1 included (the checked API sends batch 1 to the matvec)
            if (fmt === "Q4_0") k.raw.matmulQ4_0R(wr, acts, stride, ym, nCols, nRows, batch, 0, nRows, scratch);
            else k.raw.matmulQ8_0R(wr, acts, stride, ym, nCols, nRows, batch, 0, nRows, scratch);
            for (let t = 0; t < batch; t++) {
              assertEquals(
                [...a.f32(ym + 4 * t * nRows, nRows)],
                single[t],
                `${nRows}x${nCols} batch ${batch} row ${t}`,
              );
            }
            // the relaxed i32 dot-add ("VNNI") forms compute the same integer block sums: equal bit for bit too
            a.f32(ym, maxBatch * nRows).fill(NaN);
            if (fmt === "Q4_0") k.raw.matmulQ4_0RVnni(wr, acts, stride, ym, nCols, nRows, batch, 0, nRows, scratch);
            else k.raw.matmulQ8_0RVnni(wr, acts, stride, ym, nCols, nRows, batch, 0, nRows, scratch);
            for (let t = 0; t < batch; t++) {
              assertEquals([...a.f32(ym + 4 * t * nRows, nRows)], single[t], `VNNI form batch ${batch} row ${t}`);
            }
            a.f32(yv, nRows).fill(NaN);
            const last = acts + (batch - 1) * stride;
            if (fmt === "Q4_0") k.raw.matvecQ4_0RVnni(wr, last, yv, nCols, 0, nRows, scratch);
            else k.raw.matvecQ8_0RVnni(wr, last, yv, nCols, 0, nRows);
            assertEquals([...a.f32(yv, nRows)], single[batch - 1], `VNNI form matvec row ${batch - 1}`);
          }
          // and the last batch against the reference (f64 sums of the same integer block sums)
          const want = new Float32Array(maxBatch * nRows);
          (fmt === "Q4_0" ? scalarKernels.matmulQ4_0 : scalarKernels.matmulQ8_0)(wq, x, want, nRows, nCols, maxBatch);
          const s = absDotSums((fmt === "Q4_0" ? dq4 : dq8)(wq), x, nRows, nCols, maxBatch);
          assertWithinBound(
            a.f32(ym, maxBatch * nRows),
            want,
            s,
            quantTol(nCols),
            0,
            `${fmt} ${nRows}x${nCols} vs ref`,
          );
          a.reset(m);
        }
      }
    },
  );
}

Deno.test(
  "pickDotForm() measures the two Q4_0R and the two Q8_0R forms and names one each",
  { permissions: "none" },
  () => {
    const a = k.arena, m = a.mark();
    const mem = a.alloc(DOT_PROBE_BYTES, 64);
    a.u8(mem, DOT_PROBE_BYTES).fill(0);
    for (const fmt of ["Q4_0", "Q8_0"] as const) {
      const form = pickDotForm(k.raw, mem, fmt);
      assertEquals(form === "i16" || form === "vnni", true, `${fmt}: ${form}`);
    }
    a.reset(m);
  },
);

Deno.test("matmulQ4_0R and matmulQ8_0R (WASM) write only rows [rowStart, rowEnd) of every batch row", () => {
  for (const batch of MM_BATCHES) checkRowRanges(batch); // batch 1 takes the matvec kernels
});

function checkRowRanges(batch: number): void {
  const [nRows, nCols] = [29, 64];
  const wf = randomNormal(nRows * nCols, 91);
  const x = randomNormal(batch * nCols, 92);
  const a = k.arena, m = a.mark();
  const xp = a.put(x), stride = q8AStride(nCols), acts = a.alloc(stride * batch);
  for (let t = 0; t < batch; t++) k.ptr.quantizeQ8A(xp + 4 * t * nCols, acts + t * stride, nCols);
  const w4 = q4(wf), w8 = q8(wf);
  const src = a.put(w4, 1), wr = a.alloc(repackedQ4_0Bytes(nRows, nCols));
  k.ptr.repackQ4_0(src, wr, nRows, nCols);
  const src8 = a.put(w8, 1), wr8 = a.alloc(repackedQ8_0Bytes(nRows, nCols));
  k.ptr.repackQ8_0(src8, wr8, nRows, nCols);
  const y = a.alloc(4 * batch * nRows + 64), scratch = a.alloc(q4_0RScratchBytes(batch));
  for (const [fmt, wq] of [["Q4_0", w4], ["Q8_0", w8]] as const) {
    const want = new Float32Array(batch * nRows);
    (fmt === "Q4_0" ? scalarKernels.matmulQ4_0 : scalarKernels.matmulQ8_0)(wq, x, want, nRows, nCols, batch);
    for (const [r0, r1] of [[8, 21], [16, 29], [0, 3], [24, 24], [8, 29], [0, 29], [0, 8], [16, 24], [8, 9]]) {
      const yv = a.f32(y, batch * nRows + 16);
      yv.fill(-7);
      if (fmt === "Q4_0") k.ptr.matmulQ4_0R(wr, acts, stride, y, nRows, nCols, batch, r0, r1, scratch);
      else k.ptr.matmulQ8_0R(wr8, acts, stride, y, nRows, nCols, batch, r0, r1, scratch);
      if (fmt === "Q4_0") {
        // every written row equals the matvec's over the same range, bit for bit
        const yv1 = a.alloc(4 * nRows);
        for (let t = 0; t < batch; t++) {
          k.ptr.matvecQ4_0R(wr, acts + t * stride, yv1, nRows, nCols, r0, r1, scratch);
          const one = a.f32(yv1, nRows), all = a.f32(y, batch * nRows);
          for (let r = r0; r < r1; r++) {
            assertEquals(all[t * nRows + r], one[r], `Q4_0 [${r0}, ${r1}) row ${r} batch ${t}`);
          }
        }
      }
      for (let i = 0; i < batch * nRows + 16; i++) {
        const r = i % nRows;
        if (i >= batch * nRows || r < r0 || r >= r1) assertEquals(yv[i], -7, `${fmt} [${r0}, ${r1}) element ${i}`);
        else {
          const t = Math.floor(i / nRows);
          const s = absDotSums(deq(fmt, wq).subarray(r * nCols), x.subarray(t * nCols), 1, nCols, 1);
          assertWithinBound([yv[i]], [want[i]], s, quantTol(nCols), 0, `${fmt} row ${r} batch ${t}`);
        }
      }
    }
  }
  a.reset(m);
}

function deq(fmt: "Q4_0" | "Q8_0", b: Uint8Array): Float32Array {
  return fmt === "Q4_0" ? dq4(b) : dq8(b);
}

Deno.test("matrix kernels reject bad shapes, ranges, alignment, bounds and overlap with RangeError", {
  permissions: "none",
}, () => {
  const w = q4(randomNormal(4 * 64, 1));
  assertThrows(() => k.matvecQ4_0(w, new Float32Array(33), new Float32Array(4), 4, 33), RangeError, "multiple of 32");
  assertThrows(() => k.matvecQ4_0(w, new Float32Array(64), new Float32Array(3), 4, 64), RangeError, "y has 3");
  assertThrows(
    () => k.matvecQ4_0(w, new Float32Array(64), new Float32Array(4), 4, 64, { rowStart: 2, rowEnd: 5 }),
    RangeError,
    "row range",
  );
  assertThrows(() => k.matvecF32(new Float32Array(6), new Float32Array(3), new Float32Array(3), 3, 3), RangeError);
  const a = k.arena, m = a.mark();
  const nRows = 16, nCols = 64;
  const wr = a.alloc(repackedQ4_0Bytes(nRows, nCols)), act = a.alloc(q8ABytes(nCols));
  const y = a.alloc(4 * nRows), scratch = a.alloc(64);
  assertThrows(() => k.ptr.matvecQ4_0R(wr, act, y, nRows, nCols, 4, 16, scratch), RangeError, "multiple of 8");
  assertThrows(() => k.ptr.matvecQ4_0R(wr + 8, act, y, nRows, nCols, 0, 16, scratch), RangeError, "16-byte aligned");
  assertThrows(() => k.ptr.matvecQ4_0R(wr, act, y + 1, nRows, nCols, 0, 16, scratch), RangeError, "4-byte aligned");
  assertThrows(() => k.ptr.matvecQ4_0R(wr, act, y, nRows, 48, 0, 16, scratch), RangeError, "multiple of 32");
  assertThrows(() => k.ptr.matvecQ4_0R(wr, act, y, nRows, nCols, 0, 17, scratch), RangeError, "row range");
  assertThrows(() => k.ptr.matvecQ4_0R(wr, act, wr, nRows, nCols, 0, 16, scratch), RangeError, "overlaps");
  const end = Math.floor(k.memory.buffer.byteLength / 16) * 16;
  assertThrows(() => k.ptr.matvecQ4_0R(end - 64, act, y, nRows, nCols, 0, 16, scratch), RangeError, "out of bounds");
  assertThrows(() => k.ptr.matmulF16(2, y, y + 64, 1, 1, 1, 0, 1), RangeError, "out of bounds");
  assertThrows(() => k.ptr.streamRead(wr, 100), RangeError, "multiple of 64");
  a.reset(m);
});
