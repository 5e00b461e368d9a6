/**
 * loadQuantizers(): the WASM row quantizers the merge and quantize pipelines use. Oracle: quantizeRowQ4_0Ref /
 * quantizeRowQ8_0Ref (byte-identical by the kernels' contract).
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { randomNormal } from "../_rand.ts";
import { loadQuantizers, REF_QUANTIZERS } from "../../src/merge/encode.ts";

Deno.test("loadQuantizers() writes the reference's bytes for Q4_0 and Q8_0 rows, and rejects a ragged row", async () => {
  const q = await loadQuantizers();
  for (const dtype of ["Q4_0", "Q8_0"] as const) {
    const blockBytes = dtype === "Q4_0" ? 18 : 34;
    for (const n of [32, 4096, 11008]) {
      const x = randomNormal(n, n, 3);
      const got = new Uint8Array((n / 32) * blockBytes), want = new Uint8Array(got.length);
      q[dtype](x, got);
      REF_QUANTIZERS[dtype](x, want);
      assertEquals(got, want, `${dtype} n=${n}`);
    }
    assertThrows(() => q[dtype](new Float32Array(33), new Uint8Array(blockBytes)), RangeError);
  }
});
