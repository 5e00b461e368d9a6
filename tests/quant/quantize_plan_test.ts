/**
 * Tests of the quantization type plan. Oracle: llama.cpp's rules as documented in llama-quant.cpp (--pure: every
 * 2-D weight at the target; 1-D F32; rows not a whole number of blocks fall back) and enum llama_ftype values.
 */
import { assertEquals } from "../_assert.ts";
import { LLAMA_FTYPE, parseQuantTarget, quantTypeFor } from "../../src/quant/quantize_plan.ts";

Deno.test("quantTypeFor() quantizes 2-D weights and keeps 1-D tensors F32", () => {
  assertEquals(quantTypeFor([4096], "Q4_0"), "F32");
  assertEquals(quantTypeFor([49954, 4096], "Q4_0"), "Q4_0");
  assertEquals(quantTypeFor([4096, 11008], "Q8_0"), "Q8_0");
  assertEquals(quantTypeFor([4096, 4096], "F16"), "F16");
  assertEquals(quantTypeFor([4096], "F16"), "F32");
  assertEquals(quantTypeFor([105, 100], "Q4_0"), "F16"); // 100 is not a multiple of 32
});

Deno.test("parseQuantTarget() and LLAMA_FTYPE follow llama.cpp's names and numbers", () => {
  assertEquals(parseQuantTarget("q4_0"), "Q4_0");
  assertEquals(parseQuantTarget("F16"), "F16");
  assertEquals(parseQuantTarget("q4_1"), undefined);
  assertEquals(LLAMA_FTYPE, { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7 });
});
