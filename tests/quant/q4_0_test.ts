/**
 * Q4_0 reference (de)quantizer tests.
 * Oracle: llama.cpp's own `ggml_quantize_q4_0` / dequantize output (../shared/data/seed/tests/q4_0_vectors.jsonl,
 * bytes compared exactly), plus hand-derived blocks for zeros, all-equal, ±max and fp16-denormal scales.
 */
import { assertBytesEqual, assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataPath } from "../_fixtures.ts";
import { f16ToF32Ref, f32ToF16Ref } from "../../src/core/f16.ts";
import { BLOCK_Q4_0_BYTES, dequantizeRowQ4_0Ref, QK4_0, quantizeRowQ4_0Ref } from "../../src/quant/q4_0.ts";

const VECTORS = "seed/tests/q4_0_vectors.jsonl";

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function quantize(x: Float32Array): Uint8Array {
  const q = new Uint8Array((x.length / QK4_0) * BLOCK_Q4_0_BYTES);
  quantizeRowQ4_0Ref(x, q);
  return q;
}

Deno.test("quantizeRowQ4_0Ref() matches llama.cpp's bytes on the golden vectors", needsTestData(VECTORS), () => {
  const lines = Deno.readTextFileSync(testDataPath(VECTORS)!).split("\n").filter((l) => l.trim());
  assertEquals(lines.length, 3);
  for (const line of lines) {
    const v = JSON.parse(line);
    const bits = new Uint32Array(v.input_f32_hex.map((h: string) => parseInt(h, 16)));
    const x = new Float32Array(bits.buffer);
    assertBytesEqual(quantize(x), hexBytes(v.q4_0_bytes_hex), v.name);
    const y = new Float32Array(x.length);
    dequantizeRowQ4_0Ref(hexBytes(v.q4_0_bytes_hex), y);
    assertEquals(Array.from(y), v.dequant_f32.map((f: number) => Math.fround(f)), v.name);
  }
});

Deno.test("quantizeRowQ4_0Ref() writes d = -0 and q = 8 for an all-zero block", { permissions: "none" }, () => {
  const q = quantize(new Float32Array(32));
  assertEquals(q[0] | (q[1] << 8), 0x8000, "0.0f / -8 is -0.0f in C (llama.cpp's edge_blocks vector stores 00 80)");
  for (let j = 2; j < 18; j++) assertEquals(q[j], 0x88);
});

Deno.test("quantizeRowQ4_0Ref() maps an all-equal block to q = 0 with d = -v/8", { permissions: "none" }, () => {
  const q = quantize(new Float32Array(32).fill(3));
  assertEquals(f16ToF32Ref(q[0] | (q[1] << 8)), -0.375);
  for (let j = 2; j < 18; j++) assertEquals(q[j], 0x00);
  const y = new Float32Array(32);
  dequantizeRowQ4_0Ref(q, y);
  assertEquals(Array.from(y), new Array(32).fill(3));
});

Deno.test("quantizeRowQ4_0Ref() keeps the signed extreme exact and clamps the opposite one to 15", {
  permissions: "none",
}, () => {
  const x = new Float32Array(32);
  x[0] = -65504 * 8; // d = 65504, the largest finite fp16
  x[1] = 65504 * 8; // x*id + 8.5 = 16.5 -> clamped to 15
  x[17] = 65504 * 4;
  const q = quantize(x);
  assertEquals(q[0] | (q[1] << 8), f32ToF16Ref(65504));
  assertEquals(q[2] & 0xf, 0);
  assertEquals(q[3] & 0xf, 15);
  assertEquals(q[3] >> 4, 4 + 8, "x/d = 4 -> q = 12");
  const y = new Float32Array(32);
  dequantizeRowQ4_0Ref(q, y);
  assertEquals(y[0], -65504 * 8);
  assertEquals(y[1], 65504 * 7);
});

Deno.test("quantizeRowQ4_0Ref() stores an fp16-denormal scale and dequantizes with it", { permissions: "none" }, () => {
  const x = new Float32Array(32);
  for (let i = 0; i < 32; i++) x[i] = Math.fround((i - 16) * 1e-6); // max = -16e-6, d = 2e-6 (fp16 subnormal)
  const q = quantize(x);
  const h = q[0] | (q[1] << 8);
  assertEquals(h >> 10, 0, "exponent field is zero (subnormal)");
  assertEquals(h, f32ToF16Ref(Math.fround(Math.fround(-16e-6) / -8)));
  const y = new Float32Array(32);
  dequantizeRowQ4_0Ref(q, y);
  const d = f16ToF32Ref(h);
  for (let i = 0; i < 32; i++) {
    const qi = i < 16 ? q[2 + i] & 0xf : q[2 + i - 16] >> 4;
    assertEquals(y[i], Math.fround((qi - 8) * d));
  }
});

Deno.test("quantizeRowQ4_0Ref() rejects a length that is not a multiple of 32 or a wrong output size", {
  permissions: "none",
}, () => {
  assertThrows(() => quantizeRowQ4_0Ref(new Float32Array(33), new Uint8Array(18)), RangeError, "multiple of 32");
  assertThrows(() => quantizeRowQ4_0Ref(new Float32Array(32), new Uint8Array(17)), RangeError, "expected 18 bytes");
  assertThrows(() => dequantizeRowQ4_0Ref(new Uint8Array(36), new Float32Array(32)), RangeError, "expected 18 bytes");
});
