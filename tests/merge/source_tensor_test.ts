/**
 * Tests of the f16/bf16 conversions the merge uses on its hot path.
 * Oracles: src/core/f16.ts references (exhaustive over all 65,536 f16 patterns) and V8's Float16Array/Math.f16round
 * (IEEE round-to-nearest-even) for the in-place rounding.
 */
import { assertEquals } from "../_assert.ts";
import { f16ToF32Ref } from "../../src/core/f16.ts";
import { roundTo } from "../../src/merge/plan.ts";
import { concatSourceTensors, decodeF32, sourceTensorFromF32 } from "../../src/merge/source_tensor.ts";
import { randomUniform } from "../_rand.ts";

Deno.test("decodeF32() F16 matches f16ToF32Ref for all 65,536 patterns", () => {
  const bits = new Uint16Array(65536).map((_, i) => i);
  const out = new Float32Array(65536);
  decodeF32("F16", new Uint8Array(bits.buffer), out);
  for (let i = 0; i < 65536; i++) {
    const want = f16ToF32Ref(i);
    if (!(Number.isNaN(want) && Number.isNaN(out[i]))) assertEquals(out[i], want, `pattern 0x${i.toString(16)}`);
  }
});

Deno.test("roundTo('F16') equals Math.f16round across magnitudes, ties, subnormals and overflow", () => {
  const xs = new Float32Array(200000);
  const u = randomUniform(xs.length, 3, -1, 1);
  for (let i = 0; i < xs.length; i++) xs[i] = u[i] * 2 ** Math.floor((i % 60) - 30);
  const edge = [
    0,
    -0,
    65504,
    65519.99,
    65520,
    1e9,
    -1e9,
    6.1e-5,
    6.09e-5,
    5.96e-8,
    2.98e-8,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
  ];
  xs.set(edge);
  const want = Float32Array.from(xs, (x) => Math.f16round(x));
  roundTo("F16", xs);
  assertEquals(Array.from(xs), Array.from(want));
});

Deno.test("concatSourceTensors() joins Meta shards along rows and columns", () => {
  const a = sourceTensorFromF32("a", [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6]));
  const b = sourceTensorFromF32("b", [2, 1], Float32Array.from([7, 8]));
  const cols = concatSourceTensors("ab", [a, b], 1);
  assertEquals(cols.shape, [2, 4]);
  assertEquals(Array.from(cols.readRows(0, 2)), [1, 2, 3, 7, 4, 5, 6, 8]);
  const c = sourceTensorFromF32("c", [1, 3], Float32Array.from([9, 9, 9]));
  const rows = concatSourceTensors("ac", [a, c], 0);
  assertEquals(Array.from(rows.readRows(1, 2)), [4, 5, 6, 9, 9, 9]);
});
