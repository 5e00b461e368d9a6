/**
 * Q8_0 reference (de)quantizer tests.
 * Oracle: hand-derived blocks from llama.cpp's `quantize_row_q8_0_ref` formulas (d = amax/127, roundf half away from
 * zero), an exact integer re-derivation on random data, and dequantize∘quantize error bounds (|err| <= d/2).
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { randomNormal } from "../_rand.ts";
import { f16ToF32Ref, f32ToF16Ref } from "../../src/core/f16.ts";
import { BLOCK_Q8_0_BYTES, dequantizeRowQ8_0Ref, QK8_0, quantizeRowQ8_0Ref } from "../../src/quant/q8_0.ts";

function quantize(x: Float32Array): Uint8Array {
  const q = new Uint8Array((x.length / QK8_0) * BLOCK_Q8_0_BYTES);
  quantizeRowQ8_0Ref(x, q);
  return q;
}

Deno.test("quantizeRowQ8_0Ref() writes d = 0 and q = 0 for an all-zero block", { permissions: "none" }, () => {
  const q = quantize(new Float32Array(32));
  assertEquals(Array.from(q), new Array(34).fill(0));
});

Deno.test("quantizeRowQ8_0Ref() maps ±amax to ±127 and rounds halves away from zero", { permissions: "none" }, () => {
  const x = new Float32Array(32);
  x[0] = 127;
  x[1] = -127;
  x[2] = 2.5;
  x[3] = -2.5;
  x[4] = 0.5;
  x[5] = -0.5;
  x[6] = 0.49;
  const q = quantize(x);
  assertEquals(f16ToF32Ref(q[0] | (q[1] << 8)), 1);
  const qs = Array.from(new Int8Array(q.buffer, 2, 7));
  assertEquals(qs, [127, -127, 3, -3, 1, -1, 0]);
});

Deno.test("quantizeRowQ8_0Ref() maps an all-equal negative block to -127", { permissions: "none" }, () => {
  const q = quantize(new Float32Array(32).fill(-0.3));
  for (let j = 2; j < 34; j++) assertEquals(q[j], 0x81);
  assertEquals(q[0] | (q[1] << 8), f32ToF16Ref(Math.fround(Math.fround(0.3) / 127)));
});

Deno.test("quantizeRowQ8_0Ref() stores an fp16-denormal scale for tiny values", { permissions: "none" }, () => {
  const x = new Float32Array(32).map((_, i) => Math.fround((i - 16) * 1e-6));
  const q = quantize(x);
  const h = q[0] | (q[1] << 8);
  assertEquals(h >> 10, 0);
  assertEquals(h, f32ToF16Ref(Math.fround(Math.fround(16e-6) / 127)));
});

Deno.test(
  "quantizeRowQ8_0Ref() agrees with an exact re-derivation and round-trips within d/2",
  { permissions: "none" },
  () => {
    const x = randomNormal(32 * 40, 7, 3);
    const q = quantize(x);
    const y = new Float32Array(x.length);
    dequantizeRowQ8_0Ref(q, y);
    for (let b = 0; b < 40; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
      const d = Math.fround(amax / 127);
      const id = Math.fround(1 / d);
      const dh = f16ToF32Ref(q[b * 34] | (q[b * 34 + 1] << 8));
      for (let j = 0; j < 32; j++) {
        const v = Math.fround(x[b * 32 + j] * id);
        const expect = (Math.sign(v) * Math.floor(Math.abs(v) + 0.5)) || 0;
        assertEquals((q[b * 34 + 2 + j] << 24) >> 24, expect);
        assert(Math.abs(y[b * 32 + j] - x[b * 32 + j]) <= dh / 2 + Math.abs(d - dh) * 127 + 1e-6);
      }
    }
  },
);

Deno.test("quantizeRowQ8_0Ref() rejects a length that is not a multiple of 32 or a wrong output size", {
  permissions: "none",
}, () => {
  assertThrows(() => quantizeRowQ8_0Ref(new Float32Array(31), new Uint8Array(34)), RangeError, "multiple of 32");
  assertThrows(() => quantizeRowQ8_0Ref(new Float32Array(64), new Uint8Array(34)), RangeError, "expected 68 bytes");
  assertThrows(() => dequantizeRowQ8_0Ref(new Uint8Array(34), new Float32Array(64)), RangeError, "expected 68 bytes");
});
