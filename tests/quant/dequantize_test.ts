/**
 * Tests for dequantizeRef and the Q4_1/Q5_x/K-quant references. Oracles: blocks packed in this file straight from
 * the layout descriptions (ggml-common.h block structs, as summarized in legacy_quants.ts / k_quants.ts headers),
 * with power-of-two scales so every expected value d·sc·q − dmin·m is exact in f32 and is computed here in f64;
 * a few elements worked out by hand; Q4_0/Q8_0 through the kernels' references; and golden vectors from llama.cpp's
 * gguf-py (`gguf.quants.dequantize`, numpy) in testdata/dequant_golden.json (generator beside it).
 */
import { f32ToBf16Ref, f32ToF16Ref } from "../../src/core/f16.ts";
import { UnsupportedError } from "../../src/core/errors.ts";
import { dequantizeRef } from "../../src/quant/dequantize.ts";
import { dequantizeRowQ4_0Ref, quantizeRowQ4_0Ref } from "../../src/quant/q4_0.ts";
import { dequantizeRowQ8_0Ref, quantizeRowQ8_0Ref } from "../../src/quant/q8_0.ts";
import { assertEquals, assertThrows } from "../_assert.ts";
import { mulberry32, randomNormal } from "../_rand.ts";

const none = { permissions: "none" } as const;

/** Loaded at module load (tests run without permissions): gguf-py's outputs as f32 bit patterns. */
const GOLDEN = JSON.parse(
  Deno.readTextFileSync(new URL("./testdata/dequant_golden.json", import.meta.url)),
) as { generator: string; cases: Record<string, { bytes: string; n: number; f32_bits: number[] }> };

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
}

function setF16(b: Uint8Array, o: number, v: number): void {
  const h = f32ToF16Ref(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
}

function randInts(r: () => number, n: number, lo: number, hi: number): number[] {
  return Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));
}

/** Builds `nb` blocks with `pack(block, blockIndex) → expected values` and checks dequantizeRef exactly. */
function checkPacked(
  dtype: Parameters<typeof dequantizeRef>[0],
  blockBytes: number,
  qk: number,
  nb: number,
  pack: (b: Uint8Array, r: () => number) => number[],
): void {
  const r = mulberry32(7);
  const bytes = new Uint8Array(nb * blockBytes);
  const expected: number[] = [];
  for (let i = 0; i < nb; i++) expected.push(...pack(bytes.subarray(i * blockBytes, (i + 1) * blockBytes), r));
  assertEquals(expected.length, nb * qk);
  assertEquals(Array.from(dequantizeRef(dtype, bytes, nb * qk)), expected, dtype);
}

const pow2 = (r: () => number) => 2 ** -(1 + Math.floor(r() * 6)) * (r() < 0.5 ? -1 : 1);

Deno.test("dequantizeRef() decodes Q4_1 blocks packed from the layout", none, () => {
  checkPacked("Q4_1", 20, 32, 3, (b, r) => {
    const d = pow2(r), m = pow2(r) * 3;
    setF16(b, 0, d);
    setF16(b, 2, m);
    const q = randInts(r, 32, 0, 15);
    for (let j = 0; j < 16; j++) b[4 + j] = q[j] | (q[j + 16] << 4);
    return q.map((x) => x * d + m);
  });
});

Deno.test("dequantizeRef() decodes Q5_0 blocks packed from the layout", none, () => {
  checkPacked("Q5_0", 22, 32, 3, (b, r) => {
    const d = pow2(r);
    setF16(b, 0, d);
    const q = randInts(r, 32, 0, 31);
    let qh = 0;
    q.forEach((x, j) => qh += (x >> 4) * 2 ** j);
    new DataView(b.buffer, b.byteOffset).setUint32(2, qh, true);
    for (let j = 0; j < 16; j++) b[6 + j] = (q[j] & 15) | ((q[j + 16] & 15) << 4);
    return q.map((x) => (x - 16) * d);
  });
});

Deno.test("dequantizeRef() decodes Q5_1 blocks packed from the layout", none, () => {
  checkPacked("Q5_1", 24, 32, 3, (b, r) => {
    const d = pow2(r), m = pow2(r);
    setF16(b, 0, d);
    setF16(b, 2, m);
    const q = randInts(r, 32, 0, 31);
    let qh = 0;
    q.forEach((x, j) => qh += (x >> 4) * 2 ** j);
    new DataView(b.buffer, b.byteOffset).setUint32(4, qh, true);
    for (let j = 0; j < 16; j++) b[8 + j] = (q[j] & 15) | ((q[j + 16] & 15) << 4);
    return q.map((x) => x * d + m);
  });
});

Deno.test("dequantizeRef() decodes Q2_K super-blocks packed from the layout", none, () => {
  checkPacked("Q2_K", 84, 256, 2, (b, r) => {
    const d = pow2(r), dmin = Math.abs(pow2(r));
    setF16(b, 80, d);
    setF16(b, 82, dmin);
    const sc = randInts(r, 16, 0, 15), mn = randInts(r, 16, 0, 15);
    for (let k = 0; k < 16; k++) b[k] = sc[k] | (mn[k] << 4);
    const q = randInts(r, 256, 0, 3);
    const out: number[] = [];
    for (let e = 0; e < 256; e++) {
      const h = e >> 7, j = (e & 127) >> 5, half = (e & 31) >> 4, l = e & 15;
      b[16 + 32 * h + 16 * half + l] |= q[e] << (2 * j);
      const k = 8 * h + 2 * j + half;
      out.push(d * sc[k] * q[e] - dmin * mn[k]);
    }
    return out;
  });
});

Deno.test("dequantizeRef() decodes Q3_K super-blocks packed from the layout", none, () => {
  checkPacked("Q3_K", 110, 256, 2, (b, r) => {
    const d = pow2(r);
    setF16(b, 108, d);
    const s = randInts(r, 16, 0, 63); // stored 6-bit scales; effective scale s − 32
    for (let k = 0; k < 16; k++) {
      b[96 + (k % 8)] |= (s[k] & 15) << (k < 8 ? 0 : 4);
      b[96 + 8 + (k % 4)] |= (s[k] >> 4) << (2 * Math.floor(k / 4));
    }
    const q = randInts(r, 256, -4, 3);
    const out: number[] = [];
    for (let e = 0; e < 256; e++) {
      const h = e >> 7, j = (e & 127) >> 5, l = e & 31;
      b[32 + 32 * h + l] |= (q[e] & 3) << (2 * j);
      if (q[e] >= 0) b[l] |= 1 << (4 * h + j);
      out.push(d * (s[8 * h + 2 * j + (l >> 4)] - 32) * q[e]);
    }
    return out;
  });
});

function packScaleMinK4(b: Uint8Array, at: number, sc: number[], mn: number[]): void {
  for (let k = 0; k < 8; k++) {
    if (k < 4) {
      b[at + k] |= sc[k];
      b[at + k + 4] |= mn[k];
    } else {
      b[at + k + 4] |= (sc[k] & 15) | ((mn[k] & 15) << 4);
      b[at + k - 4] |= (sc[k] >> 4) << 6;
      b[at + k] |= (mn[k] >> 4) << 6;
    }
  }
}

Deno.test("dequantizeRef() decodes Q4_K super-blocks packed from the layout", none, () => {
  checkPacked("Q4_K", 144, 256, 2, (b, r) => {
    const d = pow2(r), dmin = pow2(r);
    setF16(b, 0, d);
    setF16(b, 2, dmin);
    const sc = randInts(r, 8, 0, 63), mn = randInts(r, 8, 0, 63);
    packScaleMinK4(b, 4, sc, mn);
    const q = randInts(r, 256, 0, 15);
    const out: number[] = [];
    for (let e = 0; e < 256; e++) {
      const c = e >> 6, hi = (e & 63) >> 5, l = e & 31;
      b[16 + 32 * c + l] |= q[e] << (4 * hi);
      out.push(d * sc[2 * c + hi] * q[e] - dmin * mn[2 * c + hi]);
    }
    return out;
  });
});

Deno.test("dequantizeRef() decodes Q5_K super-blocks packed from the layout", none, () => {
  checkPacked("Q5_K", 176, 256, 2, (b, r) => {
    const d = pow2(r), dmin = pow2(r);
    setF16(b, 0, d);
    setF16(b, 2, dmin);
    const sc = randInts(r, 8, 0, 63), mn = randInts(r, 8, 0, 63);
    packScaleMinK4(b, 4, sc, mn);
    const q = randInts(r, 256, 0, 31);
    const out: number[] = [];
    for (let e = 0; e < 256; e++) {
      const c = e >> 6, hi = (e & 63) >> 5, l = e & 31;
      b[48 + 32 * c + l] |= (q[e] & 15) << (4 * hi);
      b[16 + l] |= (q[e] >> 4) << (2 * c + hi);
      out.push(d * sc[2 * c + hi] * q[e] - dmin * mn[2 * c + hi]);
    }
    return out;
  });
});

Deno.test("dequantizeRef() decodes Q6_K super-blocks packed from the layout", none, () => {
  checkPacked("Q6_K", 210, 256, 2, (b, r) => {
    const d = pow2(r);
    setF16(b, 208, d);
    const sc = randInts(r, 16, -128, 127);
    sc.forEach((s, k) => b[192 + k] = s & 0xff);
    const q = randInts(r, 256, -32, 31);
    const out: number[] = [];
    for (let e = 0; e < 256; e++) {
      const h = e >> 7, g = (e & 127) >> 5, l = e & 31;
      const u = q[e] + 32;
      b[64 * h + l + (g & 1 ? 32 : 0)] |= (u & 15) << (4 * (g >> 1));
      b[128 + 32 * h + l] |= (u >> 4) << (2 * g);
      out.push(d * sc[8 * h + (l >> 4) + 2 * g] * q[e]);
    }
    return out;
  });
});

Deno.test("dequantizeRef() matches hand-worked K-quant elements", none, () => {
  // Q6_K: element 200 = half 1, group 2 (ql high nibble of byte 64+8, qh bits 4-5 of byte 128+32+8), scale 8+0+4
  const q6 = new Uint8Array(210);
  setF16(q6, 208, 0.5);
  q6[64 + 8] = 0x70; // high nibble 7
  q6[128 + 32 + 8] = 0b10 << 4; // upper bits 2 → q = 7 + 32 − 32 = 7
  q6[192 + 12] = 0xfd; // scale −3
  assertEquals(dequantizeRef("Q6_K", q6, 256)[200], 0.5 * -3 * 7);
  // Q4_K: element 70 = chunk 1 low nibble l 6, sub-block 2: sc = scales[2] & 63, m = scales[6] & 63
  const q4 = new Uint8Array(144);
  setF16(q4, 0, 0.25);
  setF16(q4, 2, 1);
  q4[4 + 2] = 5;
  q4[4 + 6] = 3;
  q4[16 + 32 + 6] = 0x09;
  assertEquals(dequantizeRef("Q4_K", q4, 256)[70], 0.25 * 5 * 9 - 3);
  // Q3_K: element 0 with hmask bit clear and low bits 1 → q = 1 − 4 = −3; scale 0 = 40 − 32 = 8
  const q3 = new Uint8Array(110);
  setF16(q3, 108, 0.125);
  q3[32] = 1;
  q3[96] = 40 & 15;
  q3[104] = 40 >> 4;
  assertEquals(dequantizeRef("Q3_K", q3, 256)[0], 0.125 * 8 * -3);
});

Deno.test("dequantizeRef() dispatches Q4_0 and Q8_0 to the kernels' references", none, () => {
  const x = randomNormal(96, 3);
  const q4 = new Uint8Array(3 * 18);
  quantizeRowQ4_0Ref(x, q4);
  const e4 = new Float32Array(96);
  dequantizeRowQ4_0Ref(q4, e4);
  assertEquals(dequantizeRef("Q4_0", q4, 96), e4);
  const q8 = new Uint8Array(3 * 34);
  quantizeRowQ8_0Ref(x, q8);
  const e8 = new Float32Array(96);
  dequantizeRowQ8_0Ref(q8, e8);
  assertEquals(dequantizeRef("Q8_0", q8, 96), e8);
});

Deno.test("dequantizeRef() converts plain dtypes exactly", none, () => {
  const v = [1.5, -2, 65504, 1e-7];
  const f32 = new Float32Array(v);
  assertEquals(dequantizeRef("F32", new Uint8Array(f32.buffer), 4), f32);
  const f16 = new Uint16Array(v.map(f32ToF16Ref));
  assertEquals(Array.from(dequantizeRef("F16", new Uint8Array(f16.buffer), 4)).slice(0, 3), [1.5, -2, 65504]);
  const bf = new Uint16Array([1.5, -2].map(f32ToBf16Ref));
  assertEquals(Array.from(dequantizeRef("BF16", new Uint8Array(bf.buffer), 2)), [1.5, -2]);
  assertEquals(Array.from(dequantizeRef("I8", new Uint8Array([0xff, 1]), 2)), [-1, 1]);
  assertEquals(Array.from(dequantizeRef("I32", new Uint8Array(new Int32Array([-7, 9]).buffer), 2)), [-7, 9]);
});

Deno.test("dequantizeRef() rejects wrong sizes and dtypes without a reference", none, () => {
  assertThrows(() => dequantizeRef("Q4_K", new Uint8Array(143), 256), RangeError, "expected 144 bytes");
  assertThrows(() => dequantizeRef("Q6_K", new Uint8Array(210), 255), RangeError);
  assertThrows(() => dequantizeRef("Q8_K", new Uint8Array(292), 256), UnsupportedError, "Q8_K");
  assertThrows(() => dequantizeRef("I64", new Uint8Array(8), 1), UnsupportedError);
});

for (const [dtype, c] of Object.entries(GOLDEN.cases)) {
  Deno.test(`dequantizeRef() matches gguf-py's ${dtype} golden vector bit for bit`, none, () => {
    const got = dequantizeRef(dtype as Parameters<typeof dequantizeRef>[0], hexBytes(c.bytes), c.n);
    const bits = new Uint32Array(got.buffer);
    const bad: string[] = [];
    for (let i = 0; i < c.n; i++) {
      if (bits[i] !== c.f32_bits[i]) {
        bad.push(`[${i}] ${got[i]} vs ${new Float32Array(new Uint32Array([c.f32_bits[i]]).buffer)[0]}`);
      }
    }
    assertEquals(bad.slice(0, 8), [], `${bad.length} of ${c.n} differ from ${GOLDEN.generator}`);
  });
}
