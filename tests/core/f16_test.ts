/**
 * f16/bf16 references. Oracle: IEEE-754 itself — every f16 pattern must survive f16→f32→f16 exactly, and
 * f32→f16 must round to nearest even (checked against exact halfway values).
 */
import { assertEquals } from "../_assert.ts";
import { bf16ToF32Ref, f16ToF32Ref, f32ToBf16Ref, f32ToF16Ref } from "../../src/core/f16.ts";

Deno.test("f16ToF32Ref() and f32ToF16Ref() round-trip all 65,536 f16 patterns", () => {
  for (let h = 0; h < 65536; h++) {
    const v = f16ToF32Ref(h);
    const back = f32ToF16Ref(v);
    if (Number.isNaN(v)) {
      assertEquals((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0, true, `NaN ${h.toString(16)}`);
    } else {
      assertEquals(back, h, `pattern 0x${h.toString(16)} -> ${v} -> 0x${back.toString(16)}`);
    }
  }
});

Deno.test("f16ToF32Ref() decodes known values", () => {
  assertEquals(f16ToF32Ref(0x3c00), 1);
  assertEquals(f16ToF32Ref(0xc000), -2);
  assertEquals(f16ToF32Ref(0x7bff), 65504);
  assertEquals(f16ToF32Ref(0x0001), 2 ** -24);
  assertEquals(f16ToF32Ref(0x7c00), Infinity);
  assertEquals(Object.is(f16ToF32Ref(0x8000), -0), true);
});

Deno.test("f32ToF16Ref() rounds to nearest even and saturates to infinity", () => {
  assertEquals(f32ToF16Ref(1 + 2 ** -11), 0x3c00); // halfway, even stays
  assertEquals(f32ToF16Ref(1 + 3 * 2 ** -11), 0x3c02); // halfway, odd rounds up
  assertEquals(f32ToF16Ref(65520), 0x7c00); // rounds past max -> inf
  assertEquals(f32ToF16Ref(65519), 0x7bff);
  assertEquals(f32ToF16Ref(2 ** -25), 0); // exactly half the smallest subnormal -> even (0)
  assertEquals(f32ToF16Ref(3 * 2 ** -26), 0x0001);
  assertEquals(f32ToF16Ref(1e-10), 0);
  assertEquals(f32ToF16Ref(-1e10), 0xfc00);
});

Deno.test("bf16ToF32Ref() and f32ToBf16Ref() agree on round numbers and round to nearest even", () => {
  assertEquals(bf16ToF32Ref(0x3f80), 1);
  assertEquals(f32ToBf16Ref(1), 0x3f80);
  assertEquals(f32ToBf16Ref(1 + 2 ** -8), 0x3f80); // halfway -> even
  assertEquals(f32ToBf16Ref(1 + 3 * 2 ** -8), 0x3f82);
  for (let h = 0; h < 65536; h += 7) {
    const v = bf16ToF32Ref(h);
    if (!Number.isNaN(v)) assertEquals(f32ToBf16Ref(v), h);
  }
});
