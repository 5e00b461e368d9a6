/**
 * WASM quantizers vs the references. Oracles: src/quant/q4_0.ts and q8_0.ts (themselves checked against llama.cpp's
 * golden bytes in tests/quant), and llama.cpp's golden vectors directly. Quantized bytes must be identical.
 */
import { assertBytesEqual, assertEquals, assertThrows } from "../_assert.ts";
import { randomNormal, randomUniform } from "../_rand.ts";
import { needsTestData, testDataPath } from "../_fixtures.ts";
import { f16ToF32Ref } from "../../src/core/f16.ts";
import { q8ABytes } from "../../src/kernels/wasm.ts";
import { repackedQ4_0Bytes, repackQ4_0Ref } from "../../src/kernels/scalar.ts";
import { dq4, dq8, q4, q8, wasm } from "./_util.ts";

const k = await wasm();

/** Rows of awkward content: each a multiple of 32 values. */
function specialRows(): [string, Float32Array][] {
  const rows: [string, Float32Array][] = [];
  rows.push(["zeros", new Float32Array(64)]);
  rows.push(["negative zeros", new Float32Array(64).fill(-0)]);
  rows.push(["all equal", new Float32Array(64).fill(0.7)]);
  rows.push(["all equal negative", new Float32Array(64).fill(-1234.5)]);
  const pm = new Float32Array(64);
  pm[0] = 3.4e38;
  pm[1] = -3.4e38;
  pm[40] = -3.4e38;
  pm[41] = 3.4e38;
  rows.push(["±max f32", pm]);
  const tie = new Float32Array(64).map((_, i) => (i % 2 ? 3 : -3));
  rows.push(["magnitude ties", tie]);
  rows.push(["fp16-denormal scales", randomUniform(64, 3, -1e-5, 1e-5)]);
  rows.push(["fp16 overflow scales", randomUniform(64, 4, -1e6, 1e6)]);
  rows.push(["f32-subnormal inputs", randomUniform(64, 5, -1e-39, 1e-39)]);
  rows.push(["tiny normals (1/d overflows)", randomUniform(64, 6, -2e-38, 2e-38)]);
  const nan = randomNormal(64, 7);
  nan[3] = NaN;
  nan[40] = Infinity;
  nan[50] = -Infinity;
  rows.push(["NaN and Inf", nan]);
  const halves = new Float32Array(64).map((_, i) => (i - 32) / 2);
  rows.push(["exact halves", halves]);
  const tie2 = new Float32Array(64);
  tie2[5] = 2;
  tie2[9] = -2;
  tie2[32 + 7] = -2;
  tie2[32 + 30] = 2;
  rows.push(["±tie inside blocks", tie2]);
  const f16edge = new Float32Array(64);
  f16edge[0] = -65520 * 8; // d = 65520: rounds to fp16 Inf
  f16edge[32] = -65519 * 8; // rounds to 65504
  rows.push(["fp16 rounding edges of d", f16edge]);
  const sub = new Float32Array(64);
  sub[0] = -8 * 2 ** -24 * 1.5; // d = 1.5 * 2^-24: a halfway fp16 subnormal (ties to even)
  sub[32] = -8 * 2 ** -24 * 2.5;
  rows.push(["fp16 subnormal halfway scales", sub]);
  return rows;
}

const SIZES = [32, 64, 96, 4096, 11008, 49952];

Deno.test("WasmKernels.quantizeRowQ4_0() is byte-identical to quantizeRowQ4_0Ref() at awkward sizes", {
  permissions: "none",
}, () => {
  for (const n of SIZES) {
    const x = randomNormal(n, n, 2);
    const out = new Uint8Array((n / 32) * 18);
    k.quantizeRowQ4_0(x, out);
    assertBytesEqual(out, q4(x), `n=${n}`);
  }
});

Deno.test("WasmKernels.quantizeRowQ4_0() is byte-identical on zeros, ties, ±max, denormal scales, NaN/Inf", {
  permissions: "none",
}, () => {
  for (const [name, x] of specialRows()) {
    const out = new Uint8Array((x.length / 32) * 18);
    k.quantizeRowQ4_0(x, out);
    assertBytesEqual(out, q4(x), name);
  }
});

Deno.test("WasmKernels.quantizeRowQ4_0() rounds the fp16 scale to nearest even at every halfway case", {
  permissions: "none",
}, () => {
  // d = max / -8 with chosen bits: f16-normal and f16-subnormal exponents, odd/even kept mantissa, and the 13 dropped
  // bits just below, at and above halfway
  const ds: number[] = [];
  const bits = new Uint32Array(1), f = new Float32Array(bits.buffer);
  for (const e of [127 - 20, 127 - 14, 127 - 1, 127 + 3, 127 + 15]) {
    for (const m of [0x100, 0x101, 0x3ff]) {
      for (const rem of [0x0fff, 0x1000, 0x1001]) {
        bits[0] = (e << 23) | (m << 13) | rem;
        ds.push(f[0]);
      }
    }
  }
  const x = new Float32Array(32 * ds.length);
  ds.forEach((d, i) => {
    x[32 * i] = -8 * d;
    x[32 * i + 1] = d;
  });
  const out = new Uint8Array(18 * ds.length);
  k.quantizeRowQ4_0(x, out);
  assertBytesEqual(out, q4(x));
});

Deno.test("WASM quantizers stay byte-identical with special blocks at every position of a 4-block group", {
  permissions: "none",
}, () => {
  const specials = specialRows().map(([, x]) => x);
  for (let shift = 0; shift < 4; shift++) {
    // `shift` random blocks first, so each special block lands in every lane of the 4-block vector path
    const parts = [randomNormal(32 * shift, 40 + shift), ...specials, randomNormal(32 * 3, 50)];
    const n = parts.reduce((a, p) => a + p.length, 0);
    const x = new Float32Array(n);
    let o = 0;
    for (const p of parts) {
      x.set(p, o);
      o += p.length;
    }
    const o4 = new Uint8Array((n / 32) * 18), o8 = new Uint8Array((n / 32) * 34);
    k.quantizeRowQ4_0(x, o4);
    k.quantizeRowQ8_0(x, o8);
    assertBytesEqual(o4, q4(x), `Q4_0 shift ${shift}`);
    assertBytesEqual(o8, q8(x), `Q8_0 shift ${shift}`);
  }
});

Deno.test(
  "WasmKernels.quantizeRowQ4_0() reproduces llama.cpp's golden Q4_0 bytes",
  needsTestData("seed/tests/q4_0_vectors.jsonl"),
  () => {
    const lines = Deno.readTextFileSync(testDataPath("seed/tests/q4_0_vectors.jsonl")!).split("\n").filter((l) => l);
    for (const line of lines) {
      const v = JSON.parse(line);
      const x = new Float32Array(new Uint32Array(v.input_f32_hex.map((h: string) => parseInt(h, 16))).buffer);
      const out = new Uint8Array((x.length / 32) * 18);
      k.quantizeRowQ4_0(x, out);
      const want = new Uint8Array(v.q4_0_bytes_hex.match(/../g).map((h: string) => parseInt(h, 16)));
      assertBytesEqual(out, want, v.name);
    }
  },
);

Deno.test("WasmKernels.quantizeRowQ8_0() is byte-identical to quantizeRowQ8_0Ref() on sizes and special rows", {
  permissions: "none",
}, () => {
  const cases: [string, Float32Array][] = SIZES.map((n) => [`n=${n}`, randomNormal(n, n + 1, 5)]);
  for (const [name, x] of [...cases, ...specialRows()]) {
    const out = new Uint8Array((x.length / 32) * 34);
    k.quantizeRowQ8_0(x, out);
    assertBytesEqual(out, q8(x), name);
  }
});

Deno.test(
  "quantizeQ8A() writes the Q8_0 quants, the fp16-rounded scales and -8 × block sums",
  { permissions: "none" },
  () => {
    for (const [name, x] of [["random", randomNormal(4096, 9)], ...specialRows()] as [string, Float32Array][]) {
      const n = x.length, nb = n / 32;
      const ref = q8(x);
      const a = k.arena, m = a.mark();
      const xp = a.put(x), act = a.alloc(q8ABytes(n));
      k.ptr.quantizeQ8A(xp, act, n);
      const qs = a.i8(act, n), d = a.f32(act + n, nb), corr = a.i32(act + n + 4 * nb, nb);
      for (let b = 0; b < nb; b++) {
        let sum = 0;
        for (let j = 0; j < 32; j++) {
          assertEquals(qs[b * 32 + j], (ref[b * 34 + 2 + j] << 24) >> 24, `${name} block ${b} q[${j}]`);
          sum += qs[b * 32 + j];
        }
        assertEquals(d[b], f16ToF32Ref(ref[b * 34] | (ref[b * 34 + 1] << 8)), `${name} block ${b} d`);
        assertEquals(corr[b], -8 * sum || 0, `${name} block ${b} corr`);
      }
      a.reset(m);
    }
  },
);

Deno.test("WasmKernels.dequantizeRowQ4_0/Q8_0() are exact against the references", { permissions: "none" }, () => {
  for (const [name, x] of [["random", randomNormal(4096, 11, 3)], ...specialRows()] as [string, Float32Array][]) {
    const b4 = q4(x), b8 = q8(x);
    const y4 = new Float32Array(x.length), y8 = new Float32Array(x.length);
    k.dequantizeRowQ4_0(b4, y4);
    k.dequantizeRowQ8_0(b8, y8);
    assertEquals(Array.from(y4), Array.from(dq4(b4)), name);
    assertEquals(Array.from(y8), Array.from(dq8(b8)), name);
  }
});

Deno.test("repackQ4_0 (WASM) is byte-identical to repackQ4_0Ref() including the zero padding rows", {
  permissions: "none",
}, () => {
  for (const [nRows, nCols] of [[1, 32], [3, 64], [8, 32], [13, 96], [33, 4096]]) {
    const w = q4(randomNormal(nRows * nCols, nRows * 7 + nCols));
    const want = new Uint8Array(repackedQ4_0Bytes(nRows, nCols));
    repackQ4_0Ref(w, want, nRows, nCols);
    const a = k.arena, m = a.mark();
    const src = a.put(w, 1), dst = a.alloc(want.length);
    a.u8(dst, want.length).fill(0xee);
    k.ptr.repackQ4_0(src, dst, nRows, nCols);
    assertBytesEqual(a.u8(dst, want.length), want, `${nRows}x${nCols}`);
    a.reset(m);
  }
});

Deno.test("WASM quantizers reject lengths that are not a multiple of 32, misalignment and out-of-bounds", {
  permissions: "none",
}, () => {
  assertThrows(() => k.quantizeRowQ4_0(new Float32Array(33), new Uint8Array(18)), RangeError, "multiple of 32");
  assertThrows(() => k.quantizeRowQ8_0(new Float32Array(49953), new Uint8Array(34)), RangeError, "multiple of 32");
  const a = k.arena, m = a.mark();
  const xp = a.alloc(4 * 64), act = a.alloc(q8ABytes(64) + 16);
  assertThrows(() => k.ptr.quantizeQ8A(xp, act + 4, 64), RangeError, "16-byte aligned");
  assertThrows(() => k.ptr.quantizeQ8A(xp + 2, act, 64), RangeError, "4-byte aligned");
  assertThrows(() => k.ptr.quantizeQ8A(xp, act, 48), RangeError, "multiple of 32");
  const end = k.memory.buffer.byteLength;
  assertThrows(() => k.ptr.quantizeRowQ4_0(end - 64, act, 64), RangeError, "out of bounds");
  assertThrows(() => k.ptr.quantizeRowQ4_0(xp, 0, 64), RangeError, "out of bounds");
  assertThrows(() => k.ptr.quantizeRowQ4_0(xp, xp + 16, 64), RangeError, "overlaps");
  a.reset(m);
});
