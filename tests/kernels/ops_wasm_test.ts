/**
 * WASM per-token kernels and f16 conversions vs the scalar references (src/kernels/scalar.ts, src/core/f16.ts).
 * f16/bf16 conversions are exact over all 65,536 patterns; float kernels within the tolerances below.
 */
import { assert, assertAllClose, assertEquals, assertThrows } from "../_assert.ts";
import { randomNormal, randomUniform } from "../_rand.ts";
import { bf16ToF32Ref, f16ToF32Ref, f32ToF16Ref } from "../../src/core/f16.ts";
import { instantiateTypedWasmKernels, scalarKernels } from "./_typed_kernels.ts";
import { compileKernelsModule } from "../../src/kernels/wasm.ts";
import { wasm } from "./_util.ts";

/** RMSNorm: f64 sum of squares in both; two f32 multiplies vs one f64 rounding -> a few ulp. */
const RMS_RTOL = 4e-7;
/** softmax: polynomial exp (~2 ulp), an f64 sum, then an f32 reciprocal and multiply -> ~1e-6 relative. */
const SOFTMAX = { rtol: 2e-6, atol: 1e-12 };
/** RoPE: f64 angles and rotation in both; only cos/sin implementations differ (< 1 ulp of f64), then one f32 rounding. */
const ROPE_RTOL = 1e-6;
/** SiLU gate: polynomial exp + an f32 divide and multiply -> a few ulp. */
const SILU = { rtol: 2e-6, atol: 1e-30 };
/** Attention: f32 dot products over headSize, softmax as above, f32 weighted sum over nPos. */
const ATT = { rtol: 2e-5, atol: 2e-6 };

const k = await wasm();
const SIZES = [1, 3, 31, 32, 33, 4096, 4099, 11008, 49953];

Deno.test("f16ToF32 (WASM) is exact for all 65,536 f16 patterns", { permissions: "none" }, () => {
  const src = new Uint16Array(65536).map((_, i) => i);
  const got = new Float32Array(65536);
  k.f16ToF32(src, got);
  const gotBits = new Uint32Array(got.buffer);
  const want = new Float32Array(65536).map((_, i) => f16ToF32Ref(i));
  const wantBits = new Uint32Array(want.buffer);
  for (let i = 0; i < 65536; i++) {
    // a JS number cannot carry a signalling NaN (the reference's f32 read quiets it), so NaNs compare with the
    // quiet bit forced; sign and payload must still match
    const isNaN = Number.isNaN(want[i]);
    const g = isNaN ? (gotBits[i] | 0x400000) >>> 0 : gotBits[i];
    if (g !== wantBits[i]) throw new Error(`pattern 0x${i.toString(16)}: ${gotBits[i]} vs ${wantBits[i]}`);
  }
});

Deno.test("the SIMD f16 decode used by matvecF16 and f16 attention is exact for all 65,536 patterns", {
  permissions: "none",
}, () => {
  // matvecF16 with x = 1 and nCols = 1 returns the decoded weight itself (the scalar tail), nCols = 8 the SIMD path
  const w = new Uint16Array(65536).map((_, i) => i);
  const x = new Float32Array(8);
  x[3] = 1;
  const y = new Float32Array(8192);
  k.matvecF16(w, x, y, 8192, 8);
  for (let r = 0; r < 8192; r++) {
    const want = f16ToF32Ref(r * 8 + 3) * 1 + 0; // + 0 maps -0 to 0 as the sum 0 + (-0) does
    if (!(Object.is(y[r], want) || (Number.isNaN(y[r]) && Number.isNaN(want)) || (y[r] === 0 && want === 0))) {
      throw new Error(`pattern 0x${(r * 8 + 3).toString(16)}: ${y[r]} vs ${want}`);
    }
  }
});

Deno.test("f32ToF16 and bf16ToF32 (WASM) are exact against the references", { permissions: "none" }, () => {
  const bits = new Uint32Array(70000);
  for (let i = 0; i < 65536; i++) bits[i] = (f16ToF32BitsOf(i) + (i % 7) - 3) >>> 0; // near every f16 value
  const r = randomUniform(70000 - 65536, 5, 0, 4294967295);
  for (let i = 65536; i < 70000; i++) bits[i] = r[i - 65536] >>> 0;
  const src = new Float32Array(bits.buffer);
  const got = new Uint16Array(src.length);
  k.f32ToF16(src, got);
  for (let i = 0; i < src.length; i++) {
    if (got[i] !== f32ToF16Ref(src[i])) {
      throw new Error(`0x${bits[i].toString(16)}: ${got[i]} vs ${f32ToF16Ref(src[i])}`);
    }
  }
  const h = new Uint16Array(65536).map((_, i) => i);
  const b = new Float32Array(65536);
  k.bf16ToF32(h, b);
  for (let i = 0; i < 65536; i++) {
    if (!Object.is(b[i], bf16ToF32Ref(i)) && !(Number.isNaN(b[i]) && Number.isNaN(bf16ToF32Ref(i)))) {
      throw new Error(`bf16 0x${i.toString(16)}`);
    }
  }
});

function f16ToF32BitsOf(h: number): number {
  return new Uint32Array(new Float32Array([f16ToF32Ref(h)]).buffer)[0];
}

Deno.test("rmsNorm (WASM) matches rmsNormRef at awkward sizes, zeros and large values", { permissions: "none" }, () => {
  for (const n of SIZES) {
    for (
      const [name, x] of [["normal", randomNormal(n, n)], ["zeros", new Float32Array(n)], [
        "large",
        randomNormal(n, n + 1, 1e18),
      ], ["all equal", new Float32Array(n).fill(-2.5)]] as [string, Float32Array][]
    ) {
      const w = randomNormal(n, 2 * n);
      const want = new Float32Array(n), got = new Float32Array(n);
      scalarKernels.rmsNorm(x, w, want, 1e-6);
      k.rmsNorm(x, w, got, 1e-6);
      assertAllClose(got, want, { rtol: RMS_RTOL, msg: `${name} n=${n}` });
    }
  }
});

Deno.test(
  "softmax (WASM) matches softmaxRef at awkward sizes, all-equal and extreme inputs",
  { permissions: "none" },
  () => {
    for (const n of SIZES) {
      for (
        const [name, x] of [["normal", randomNormal(n, n, 3)], ["all equal", new Float32Array(n).fill(7)], [
          "wide",
          randomUniform(n, n + 2, -200, 50),
        ], ["huge", randomUniform(n, n + 3, -3e38, 3e38)]] as [string, Float32Array][]
      ) {
        const want = x.slice(), got = x.slice();
        scalarKernels.softmax(want);
        k.softmax(got);
        assertAllClose(got, want, { ...SOFTMAX, msg: `${name} n=${n}` });
      }
    }
  },
);

Deno.test("rope (WASM) matches ropeRef for several head sizes, positions and thetas", { permissions: "none" }, () => {
  for (const [nHeads, headSize] of [[1, 2], [3, 8], [32, 128], [2, 6]]) {
    for (const pos of [0, 1, 17, 4095]) {
      for (const theta of [10000, 1e6]) {
        const x = randomNormal(nHeads * headSize, pos + headSize);
        const want = x.slice(), got = x.slice();
        scalarKernels.rope(want, nHeads, headSize, pos, theta);
        k.rope(got, nHeads, headSize, pos, theta);
        assertAllClose(got, want, { rtol: ROPE_RTOL, atol: 1e-6, msg: `${nHeads}x${headSize} pos ${pos}` });
      }
    }
  }
});

Deno.test("siluGate (WASM) matches siluGateRef at awkward sizes and saturating inputs", { permissions: "none" }, () => {
  for (const n of SIZES) {
    for (const gate of [randomNormal(n, n, 4), randomUniform(n, n + 9, -120, 120), new Float32Array(n)]) {
      const up = randomNormal(n, n + 5);
      const want = new Float32Array(n), got = new Float32Array(n);
      scalarKernels.siluGate(gate, up, want);
      k.siluGate(gate, up, got);
      assertAllClose(got, want, { ...SILU, msg: `n=${n}` });
    }
  }
});

Deno.test("attention (WASM) matches attentionRef over f32 and f16 caches with GQA", { permissions: "none" }, () => {
  const shapes = [
    { nHeads: 1, nKvHeads: 1, headSize: 4, nPos: 1 },
    { nHeads: 4, nKvHeads: 2, headSize: 6, nPos: 3 },
    { nHeads: 8, nKvHeads: 2, headSize: 33, nPos: 31 },
    { nHeads: 32, nKvHeads: 32, headSize: 128, nPos: 33 },
    { nHeads: 4, nKvHeads: 1, headSize: 128, nPos: 513, scale: 0.05 },
  ];
  for (const s of shapes) {
    const kvn = s.nPos * s.nKvHeads * s.headSize;
    const q = randomNormal(s.nHeads * s.headSize, s.nPos);
    const kf = randomNormal(kvn, s.nPos + 1), vf = randomNormal(kvn, s.nPos + 2);
    const kh = new Uint16Array(kvn).map((_, i) => f32ToF16Ref(kf[i]));
    const vh = new Uint16Array(kvn).map((_, i) => f32ToF16Ref(vf[i]));
    for (const [name, kc, vc] of [["f32", kf, vf], ["f16", kh, vh]] as const) {
      const want = new Float32Array(q.length), got = new Float32Array(q.length);
      scalarKernels.attention(q, kc, vc, want, s);
      k.attention(q, kc, vc, got, s);
      assertAllClose(got, want, { ...ATT, msg: `${name} ${JSON.stringify(s)}` });
    }
  }
});

Deno.test("per-token kernels reject bad shapes and pointers with RangeError", { permissions: "none" }, () => {
  assertThrows(() => k.rmsNorm(new Float32Array(4), new Float32Array(3), new Float32Array(4), 1e-5), RangeError);
  assertThrows(() => k.rope(new Float32Array(6), 1, 6, -1, 10000), RangeError, "pos");
  assertThrows(() => k.rope(new Float32Array(5), 1, 5, 0, 10000), RangeError, "odd");
  assertThrows(() => k.softmax(new Float32Array(0)), RangeError);
  const q = new Float32Array(8);
  assertThrows(
    () =>
      k.attention(q, new Float32Array(8), new Float32Array(8), q.slice(), {
        nHeads: 2,
        nKvHeads: 3,
        headSize: 4,
        nPos: 1,
      }),
    RangeError,
    "multiple of nKvHeads",
  );
  assertThrows(
    () =>
      k.attention(q, new Float32Array(4), new Float32Array(8), q.slice(), {
        nHeads: 2,
        nKvHeads: 1,
        headSize: 4,
        nPos: 2,
      }),
    RangeError,
    "K cache",
  );
  const a = k.arena, m = a.mark();
  const x = a.alloc(64);
  assertThrows(() => k.ptr.softmax(x + 2, 4), RangeError, "aligned");
  assertThrows(() => k.ptr.siluGate(x, x + 16, x + 8, 4), RangeError, "overlaps");
  assertThrows(() => k.ptr.rmsNorm(x, x, x + 4, 4, 1e-5), RangeError, "overlaps");
  assertThrows(() => k.ptr.rmsNorm(x, x + 16, x, 4, -1), RangeError, "eps");
  a.reset(m);
});

Deno.test("Arena.alloc() aligns, grows the memory and keeps views valid after growth", { permissions: "none" }, () => {
  const a = k.arena, m = a.mark();
  const p1 = a.alloc(3, 1);
  const p2 = a.alloc(16, 64);
  assertEquals(p2 % 64, 0);
  assertEquals(p2 >= p1 + 3, true);
  const before = k.memory.buffer.byteLength;
  const big = a.alloc(before + 1);
  assertEquals(k.memory.buffer.byteLength > before, true);
  a.f32(big, 4).set([1, 2, 3, 4]);
  assertEquals(Array.from(a.f32(big, 4)), [1, 2, 3, 4]);
  assertThrows(() => a.alloc(16, 3), RangeError, "power of two");
  assertThrows(() => a.reset(a.top + 16), RangeError, "not live");
  a.reset(m);
  assertEquals(a.top, m);
});

Deno.test("loadWasmKernels() runs on a caller's shared memory and separate instances agree", async () => {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 65536, shared: true });
  const module = await compileKernelsModule();
  const k2 = instantiateTypedWasmKernels(module, { memory, arenaStart: 100_000 });
  assert(k2.memory === memory);
  assert(memory.buffer instanceof SharedArrayBuffer);
  assert(k2.arena.base >= 100_000, "arenaStart keeps a region for the caller");
  const x = randomNormal(4096, 3);
  const a = new Float32Array(x), b = new Float32Array(x);
  k.softmax(a);
  k2.softmax(b);
  assertEquals(Array.from(a), Array.from(b));
  // the caller's view of the shared buffer sees the kernel's writes
  const p = k2.arena.alloc(16);
  k2.ptr.f16ToF32(k2.arena.put(new Uint16Array([0x3c00, 0xc000])), p, 2);
  assertEquals(Array.from(new Float32Array(memory.buffer, p, 2)), [1, -2]);
});
