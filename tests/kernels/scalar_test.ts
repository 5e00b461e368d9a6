/**
 * The scalar references themselves. Oracles: values derived by hand from the definitions (llama.cpp's
 * ggml_vec_dot_q4_0_q8_0 formula, llama2.c's rmsnorm/softmax/RoPE/attention), dequantize-then-dot in f64, and
 * properties (softmax sums to 1, RoPE at pos 0 is the identity and preserves pair norms, one-position attention
 * returns V).
 */
import { assert, assertAllClose, assertEquals, assertThrows } from "../_assert.ts";
import { randomNormal } from "../_rand.ts";
import { f16ToF32Ref, f32ToF16Ref } from "../../src/core/f16.ts";
import {
  attentionRef,
  matvecF16Ref,
  matvecF32Ref,
  matvecQ4_0Ref,
  matvecQ8_0Ref,
  repackedQ4_0Bytes,
  repackQ4_0Ref,
  rmsNormRef,
  ropeRef,
  siluGateRef,
  softmaxRef,
} from "../../src/kernels/scalar.ts";
import { dq4, dq8, q4, q8 } from "./_util.ts";

Deno.test("matvecQ4_0Ref() equals the f64 dot of dequantized Q4_0 weights and dequantized Q8_0 activations", {
  permissions: "none",
}, () => {
  const [nRows, nCols] = [5, 128];
  const wq = q4(randomNormal(nRows * nCols, 1));
  const x = randomNormal(nCols, 2);
  const w = dq4(wq), xd = dq8(q8(x));
  const y = new Float32Array(nRows);
  matvecQ4_0Ref(wq, x, y, nRows, nCols);
  for (let r = 0; r < nRows; r++) {
    let s = 0;
    for (let j = 0; j < nCols; j++) s += w[r * nCols + j] * xd[j];
    assertAllClose([y[r]], [s], { rtol: 1e-6, atol: 1e-6 });
  }
});

Deno.test("matvecQ4_0Ref() on one hand-built block: d_w * d_x * Σ (q4 - 8) * q8", { permissions: "none" }, () => {
  // weights: d = 0.5, all nibbles 9 (value +0.5); x = 127 everywhere -> Q8_0 d = 1, q = 127
  const w = new Uint8Array(18);
  const h = f32ToF16Ref(0.5);
  w[0] = h & 0xff;
  w[1] = h >> 8;
  w.fill(0x99, 2);
  const y = new Float32Array(1);
  matvecQ4_0Ref(w, new Float32Array(32).fill(127), y, 1, 32);
  assertEquals(y[0], 0.5 * 1 * 32 * 1 * 127);
});

Deno.test("matvecQ8_0Ref(), matvecF16Ref(), matvecF32Ref() equal f64 dots of their dequantized weights", {
  permissions: "none",
}, () => {
  const [nRows, nCols] = [3, 64];
  const wf = randomNormal(nRows * nCols, 3);
  const x = randomNormal(nCols, 4);
  const w8 = q8(wf), wd8 = dq8(w8), xd = dq8(q8(x));
  const wh = new Uint16Array(wf.length).map((_, i) => f32ToF16Ref(wf[i]));
  const y8 = new Float32Array(nRows), yh = new Float32Array(nRows), yf = new Float32Array(nRows);
  matvecQ8_0Ref(w8, x, y8, nRows, nCols);
  matvecF16Ref(wh, x, yh, nRows, nCols);
  matvecF32Ref(wf, x, yf, nRows, nCols);
  for (let r = 0; r < nRows; r++) {
    let s8 = 0, sh = 0, sf = 0;
    for (let j = 0; j < nCols; j++) {
      s8 += wd8[r * nCols + j] * xd[j];
      sh += f16ToF32Ref(wh[r * nCols + j]) * x[j];
      sf += wf[r * nCols + j] * x[j];
    }
    assertAllClose([y8[r], yh[r], yf[r]], [s8, sh, sf], { rtol: 1e-6, atol: 1e-6 });
  }
});

Deno.test("rmsNormRef() scales [3, 4] by 1/sqrt(12.5 + eps) and the weight", { permissions: "none" }, () => {
  const out = new Float32Array(2);
  rmsNormRef(new Float32Array([3, 4]), new Float32Array([1, 2]), out, 0);
  assertAllClose(out, [3 / Math.sqrt(12.5), 8 / Math.sqrt(12.5)], { rtol: 1e-7 });
});

Deno.test("softmaxRef() sums to 1, is shift-invariant and survives huge inputs", { permissions: "none" }, () => {
  const x = new Float32Array([1, 2, 3]);
  softmaxRef(x);
  const e = [Math.exp(-2), Math.exp(-1), 1];
  const z = e[0] + e[1] + e[2];
  assertAllClose(x, e.map((v) => v / z), { rtol: 1e-7 });
  const big = new Float32Array([1e30, 1e30 + 0, -1e30]);
  softmaxRef(big);
  assertAllClose(big, [0.5, 0.5, 0], { atol: 1e-7 });
});

Deno.test("ropeRef() is the identity at pos 0, rotates pair 0 by pos radians and keeps pair norms", {
  permissions: "none",
}, () => {
  const x = randomNormal(2 * 8, 5);
  const y = x.slice();
  ropeRef(y, 2, 8, 0, 10000);
  assertEquals(Array.from(y), Array.from(x));
  const v = new Float32Array([1, 0, 1, 0]);
  ropeRef(v, 1, 4, 1, 10000); // pair 0: angle 1; pair 1: angle 10000^(-1/2) = 0.01
  assertAllClose(v, [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)], { atol: 1e-7 });
  const z = x.slice();
  ropeRef(z, 2, 8, 123, 1e6);
  for (let i = 0; i < 16; i += 2) {
    assertAllClose([Math.hypot(z[i], z[i + 1])], [Math.hypot(x[i], x[i + 1])], { rtol: 1e-6 });
  }
});

Deno.test("siluGateRef() is g * sigmoid(g) * up", { permissions: "none" }, () => {
  const out = new Float32Array(3);
  siluGateRef(new Float32Array([0, 1, -2]), new Float32Array([5, 2, 3]), out);
  assertAllClose(out, [0, 2 / (1 + Math.exp(-1)), (-2 / (1 + Math.exp(2))) * 3], { rtol: 1e-7 });
});

Deno.test(
  "attentionRef() returns V for one position and maps heads to KV groups (GQA)",
  { permissions: "none" },
  () => {
    const [nHeads, nKvHeads, headSize] = [4, 2, 3];
    const q = randomNormal(nHeads * headSize, 6);
    const k = randomNormal(nKvHeads * headSize, 7);
    const v = new Float32Array([1, 2, 3, 10, 20, 30]);
    const out = new Float32Array(q.length);
    attentionRef(q, k, v, out, { nHeads, nKvHeads, headSize, nPos: 1 });
    assertEquals(Array.from(out), [1, 2, 3, 1, 2, 3, 10, 20, 30, 10, 20, 30]);
    // two positions, equal keys -> the mean of the values
    const k2 = new Float32Array(2 * 2 * 3).fill(0.5);
    const v2 = new Float32Array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    attentionRef(q, k2, v2, out, { nHeads, nKvHeads, headSize, nPos: 2 });
    assertAllClose(out, [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2], { rtol: 1e-7 });
  },
);

Deno.test(
  "repackQ4_0Ref() places row 8g+i's scale at lane i and its nibble bytes 4k.. at lane i&3 of vector (k, i>>2)",
  {
    permissions: "none",
  },
  () => {
    const nRows = 9, nCols = 32;
    const w = q4(randomNormal(nRows * nCols, 8));
    const out = new Uint8Array(repackedQ4_0Bytes(nRows, nCols));
    repackQ4_0Ref(w, out, nRows, nCols);
    assertEquals(out.length, 2 * 160);
    const dv = new DataView(out.buffer);
    for (let r = 0; r < nRows; r++) {
      const g = r >> 3, i = r & 7;
      assertEquals(dv.getFloat32(g * 160 + 4 * i, true), f16ToF32Ref(w[r * 18] | (w[r * 18 + 1] << 8)));
      for (let byte = 0; byte < 16; byte++) {
        const kk = byte >> 2, t = byte & 3;
        // the two halves' vectors for the same k are adjacent: (k, h) at 32 + 32k + 16h
        assertEquals(out[g * 160 + 32 + kk * 32 + (i >> 2) * 16 + (i & 3) * 4 + t], w[r * 18 + 2 + byte]);
      }
    }
    assert(out.subarray(160 + 4, 160 + 32).every((b) => b === 0), "padding scales are zero");
  },
);

Deno.test("references reject contract violations with RangeError", { permissions: "none" }, () => {
  const y = new Float32Array(1);
  assertThrows(() => matvecQ4_0Ref(new Uint8Array(18), new Float32Array(33), y, 1, 33), RangeError, "multiple of 32");
  assertThrows(() => matvecQ4_0Ref(new Uint8Array(17), new Float32Array(32), y, 1, 32), RangeError, "weight bytes");
  assertThrows(
    () => matvecF32Ref(new Float32Array(4), new Float32Array(4), y, 1, 4, { rowStart: 0, rowEnd: 2 }),
    RangeError,
  );
  assertThrows(() => ropeRef(new Float32Array(4), 1, 4, 0, 0), RangeError, "theta");
  assertThrows(() => softmaxRef(new Float32Array(0)), RangeError);
});
