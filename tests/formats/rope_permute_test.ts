/**
 * Tests of the Meta ↔ HF q/k row permutation.
 * Oracle: ../shared/data/seed/tests/merge_vectors.json part "unpermute" (numpy re-statement of the seed's
 * `unpermute`), plus the round-trip property permute ∘ unpermute = id.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { permuteMetaToHf, permuteRows, ropeRowMap, unpermuteHfToMeta } from "../../src/formats/rope_permute.ts";
import { randomUniform } from "../_rand.ts";

const VECTORS = "seed/tests/merge_vectors.json";

Deno.test("unpermuteHfToMeta() matches the seed's unpermute golden (8x8, 2 heads)", needsTestData(VECTORS), () => {
  const v = JSON.parse(Deno.readTextFileSync(`${testDataRoot()}/${VECTORS}`)).unpermute;
  const hf = Float32Array.from((v.hf_weight_rows as number[][]).flat());
  const meta = unpermuteHfToMeta(hf, v.n_heads, v.dim);
  assertEquals(Array.from(meta), (v.pth_weight_rows as number[][]).flat());
  assertEquals(Array.from(ropeRowMap(v.n_heads, v.dim / v.n_heads, "hf", "meta")), v.row_map_pth_from_hf);
  assertEquals(Array.from(permuteMetaToHf(meta, v.n_heads, v.dim)), Array.from(hf));
});

Deno.test("permuteMetaToHf() inverts unpermuteHfToMeta() for GQA-sized k (4 heads of 16 rows)", () => {
  const w = randomUniform(64 * 24, 7);
  assertEquals(Array.from(unpermuteHfToMeta(permuteMetaToHf(w, 4, 24), 4, 24)), Array.from(w));
  assertEquals(Array.from(ropeRowMap(3, 8, "meta", "meta")), Array.from({ length: 24 }, (_, i) => i));
});

Deno.test("ropeRowMap() rejects odd head sizes and permuteRows() rejects aliasing", () => {
  assertThrows(() => ropeRowMap(2, 3, "hf", "meta"), RangeError, "odd");
  const w = new Float32Array(16);
  assertThrows(() => permuteRows(w, 4, ropeRowMap(1, 4, "hf", "meta"), w), RangeError, "in place");
});
