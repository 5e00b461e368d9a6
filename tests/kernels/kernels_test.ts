/**
 * The one test matrix of the `Kernels` interface: every operation of both implementations (ScalarKernels,
 * SimdKernels) against the typed `…Ref` definitions of src/kernels/scalar.ts, on awkward sizes, through kernel
 * memory and pointers as the engine calls them. Oracle: the references (ScalarKernels must equal them exactly; the
 * WASM ones within float tolerances). Also SimdKernels' load path for repacked weights: a chunk larger than the
 * 16 MiB staging area (a K-quant chunk requantized to Q8_0) is repacked in runs, at a chunk offset.
 */
import { assertAllClose, assertEquals } from "../_assert.ts";
import { randomNormal } from "../_rand.ts";
import type { CacheShape, KernelChoice, Kernels, MatrixSlice } from "../../src/kernels/kernels.ts";
import { createKernels } from "../../src/kernels/simd_kernels.ts";
import {
  attentionRef,
  matmulF16Ref,
  matmulF32Ref,
  matmulQ4_0Ref,
  matmulQ8_0Ref,
  rmsNormRef,
  ropeRef,
  siluGateRef,
} from "../../src/kernels/scalar.ts";
import { quantizeRowQ4_0Ref } from "../../src/quant/q4_0.ts";
import { quantizeRowQ8_0Ref } from "../../src/quant/q8_0.ts";

const CHOICES: KernelChoice[] = ["scalar", "wasm"];

/** Tolerance of an implementation: exact for the references themselves, float rounding for WASM. */
function tol(choice: KernelChoice, scale = 1) {
  return choice === "scalar" ? { atol: 0, rtol: 0 } : { atol: 2e-6 * scale, rtol: 2e-5 };
}

function put(k: Kernels, x: Float32Array): number {
  const p = k.alloc(4 * x.length);
  k.copyIn(x, 0, p, x.length);
  return p;
}

function get(k: Kernels, p: number, n: number): Float32Array {
  return new Float32Array(k.memory.buffer, p, n).slice();
}

function maxAbs(x: Float32Array): number {
  let m = 0;
  for (const v of x) m = Math.max(m, Math.abs(v));
  return m;
}

for (const choice of CHOICES) {
  Deno.test(`${choice} Kernels: rmsNorm() of each batch row equals rmsNormRef(), in place too`, async () => {
    const k = await createKernels(choice);
    for (const [n, B] of [[1, 1], [33, 3], [4099, 2]]) {
      const x = randomNormal(B * n, n), w = randomNormal(n, n + 1);
      const want = new Float32Array(B * n);
      for (let b = 0; b < B; b++) {
        rmsNormRef(x.subarray(b * n, (b + 1) * n), w, want.subarray(b * n, (b + 1) * n), 1e-5);
      }
      const xp = put(k, x), wp = put(k, w), op = k.alloc(4 * B * n);
      k.rmsNorm(xp, wp, op, n, 1e-5, B);
      assertAllClose(get(k, op, B * n), want, tol(choice, maxAbs(want)));
      k.rmsNorm(xp, wp, xp, n, 1e-5, B);
      assertAllClose(get(k, xp, B * n), want, tol(choice, maxAbs(want)));
    }
  });

  for (const dtype of ["F32", "F16", "Q4_0", "Q8_0"] as const) {
    Deno.test(`${choice} Kernels: matmul() of ${dtype} weights equals matmul${dtype}Ref()`, async () => {
      const k = await createKernels(choice);
      for (const [rows, cols, B] of [[1, 32, 1], [3, 64, 2], [33, 96, 5], [49, 4096, 1]]) {
        const wf = randomNormal(rows * cols, rows + cols, 0.1), x = randomNormal(B * cols, B + cols);
        const want = new Float32Array(B * rows);
        let bytes: Uint8Array;
        if (dtype === "F32") {
          bytes = new Uint8Array(wf.buffer);
          matmulF32Ref(wf, x, want, rows, cols, B);
        } else if (dtype === "F16") {
          const h = new Float16Array(wf);
          bytes = new Uint8Array(h.buffer);
          matmulF16Ref(new Uint16Array(h.buffer), x, want, rows, cols, B);
        } else {
          bytes = new Uint8Array((rows * cols / 32) * (dtype === "Q4_0" ? 18 : 34));
          (dtype === "Q4_0" ? quantizeRowQ4_0Ref : quantizeRowQ8_0Ref)(wf, bytes);
          (dtype === "Q4_0" ? matmulQ4_0Ref : matmulQ8_0Ref)(bytes, x, want, rows, cols, B);
        }
        k.scratch(B, cols);
        const slice: MatrixSlice = { dtype, rows, cols, ptr: k.allocMatrix(dtype, rows, cols) };
        k.loadMatrixRows(slice, dtype, bytes, 0, rows);
        const xp = put(k, x), yp = k.alloc(4 * B * rows);
        k.matmul(slice, xp, yp, B);
        assertAllClose(get(k, yp, B * rows), want, tol(choice, maxAbs(want)));
      }
    });
  }

  Deno.test(`${choice} Kernels: rope() rotates row b at position pos + b as ropeRef()`, async () => {
    const k = await createKernels(choice);
    const nHeads = 3, headSize = 8, B = 3, pos = 5, width = nHeads * headSize;
    const x = randomNormal(B * width, 9), want = x.slice();
    for (let b = 0; b < B; b++) ropeRef(want.subarray(b * width, (b + 1) * width), nHeads, headSize, pos + b, 1e4);
    const xp = put(k, x);
    k.rope(xp, nHeads, headSize, pos, 1e4, B);
    assertAllClose(get(k, xp, B * width), want, tol(choice, 4));
  });

  for (const kvType of ["f32", "f16"] as const) {
    const name = `${choice} Kernels: storeKv() then attention() over a ${kvType} cache equals attentionRef()`;
    Deno.test(name, async () => {
      const k = await createKernels(choice);
      const shape: CacheShape = { nHeads: 4, nKvHeads: 2, headSize: 8, contextSize: 16, kvType };
      const width = shape.nHeads * shape.headSize, kvWidth = shape.nKvHeads * shape.headSize;
      const pos = 3, B = 4; // rows at positions 3..6 attend over 4..7 cached positions
      const keys = randomNormal((pos + B) * kvWidth, 1), values = randomNormal((pos + B) * kvWidth, 2);
      const q = randomNormal(B * width, 3);
      const el = kvType === "f16" ? 2 : 4;
      const kc = k.alloc(el * shape.contextSize * kvWidth), vc = k.alloc(el * shape.contextSize * kvWidth);
      k.storeKv(put(k, keys.subarray(0, pos * kvWidth)), kc, pos, kvWidth, 0, kvType);
      k.storeKv(put(k, values.subarray(0, pos * kvWidth)), vc, pos, kvWidth, 0, kvType);
      k.storeKv(put(k, keys.subarray(pos * kvWidth)), kc, B, kvWidth, pos, kvType);
      k.storeKv(put(k, values.subarray(pos * kvWidth)), vc, B, kvWidth, pos, kvType);
      const out = k.alloc(4 * B * width);
      k.attention(put(k, q), kc, vc, out, shape, B, pos);
      const cacheK = kvType === "f16" ? new Uint16Array(new Float16Array(keys).buffer) : keys;
      const cacheV = kvType === "f16" ? new Uint16Array(new Float16Array(values).buffer) : values;
      const want = new Float32Array(B * width);
      for (let b = 0; b < B; b++) {
        const nPos = pos + b + 1, s = { ...shape, nPos };
        const o = want.subarray(b * width, (b + 1) * width);
        attentionRef(q.subarray(b * width, (b + 1) * width), cacheK, cacheV, o, s);
      }
      assertAllClose(get(k, out, B * width), want, tol(choice, 4));
    });
  }

  Deno.test(`${choice} Kernels: siluGate() equals siluGateRef(), out aliasing gate`, async () => {
    const k = await createKernels(choice);
    const n = 4099, gate = randomNormal(n, 1, 3), up = randomNormal(n, 2);
    const want = new Float32Array(n);
    siluGateRef(gate, up, want);
    const gp = put(k, gate);
    k.siluGate(gp, put(k, up), gp, n);
    assertAllClose(get(k, gp, n), want, tol(choice, maxAbs(want)));
  });

  Deno.test(`${choice} Kernels: add(), addFrom(), fill() and copyOut() move f32 values exactly`, async () => {
    const k = await createKernels(choice);
    const a = randomNormal(6, 1), b = randomNormal(6, 2);
    const ap = put(k, a), bp = put(k, b);
    k.add(ap, bp, 6);
    k.addFrom(ap, b, 0, 6);
    assertEquals(Array.from(get(k, ap, 6)), Array.from(a, (v, i) => Math.fround(Math.fround(v + b[i]) + b[i])));
    const dst = new Float32Array(2 * 5);
    k.copyOut(bp, 2, 3, dst, 1, 5); // (2, 3) into columns 1..3 of (2, 5)
    assertEquals(Array.from(dst), [0, b[0], b[1], b[2], 0, 0, b[3], b[4], b[5], 0]);
    k.fill(bp, 6, 0.5);
    assertEquals(Array.from(get(k, bp, 6)), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  });
}

for (const dtype of ["Q8_0", "Q4_0"] as const) {
  Deno.test(`SimdKernels load ${dtype} chunks larger than the staging area, at a chunk offset`, async () => {
    // 4104 rows × 4096 cols: 17.9 MB of Q8_0 in one chunk (> 16 MiB), loaded as rows [0, 8) then [8, 4104)
    const rows = 4104, cols = 4096, B = 2;
    const wf = randomNormal(rows * cols, 5, 0.05);
    const blockBytes = dtype === "Q8_0" ? 34 : 18;
    const std = new Uint8Array(rows * (cols / 32) * blockBytes);
    (dtype === "Q8_0" ? quantizeRowQ8_0Ref : quantizeRowQ4_0Ref)(wf, std);
    const k = await createKernels("wasm");
    k.scratch(B, cols);
    const slice: MatrixSlice = { dtype, rows, cols, ptr: k.allocMatrix(dtype, rows, cols) };
    const rowBytes = std.length / rows;
    k.loadMatrixRows(slice, dtype, std.subarray(0, 8 * rowBytes), 0, 8);
    k.loadMatrixRows(slice, dtype, std.subarray(8 * rowBytes), 8, rows - 8);
    const x = randomNormal(B * cols, 6);
    const xp = put(k, x), yp = k.alloc(4 * B * rows);
    k.matmul(slice, xp, yp, B);
    const want = new Float32Array(B * rows);
    (dtype === "Q8_0" ? matmulQ8_0Ref : matmulQ4_0Ref)(std, x, want, rows, cols, B);
    assertAllClose(get(k, yp, B * rows), want, { atol: 1e-5 * maxAbs(want), rtol: 1e-5 });
  });
}
