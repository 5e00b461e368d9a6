/**
 * Tests for Sampler. Oracle: llama.cpp's sampling semantics worked by hand (penalty sign rule, top-k/top-p cut
 * points, temperature → greedy) and frequency checks against the analytically known distribution.
 */
import { applyRepeatPenalty, argmax, Sampler, topK } from "../../src/sampling/sampler.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";

Deno.test("argmax() returns the first index of the maximum", () => {
  assertEquals(argmax(new Float32Array([1, 3, 3, -1])), 1);
  assertEquals(argmax(new Float32Array([-5])), 0);
});

Deno.test("applyRepeatPenalty() divides positive logits and multiplies negative ones, once per distinct token", () => {
  const l = new Float32Array([2, -2, 4, 1]);
  applyRepeatPenalty(l, [0, 1, 1, 1, 7], 2);
  assertEquals(Array.from(l), [1, -4, 4, 1]);
});

Deno.test("Sampler with temperature 0 is greedy argmax after the repeat penalty", () => {
  const s = new Sampler({ temperature: 0, repeatPenalty: 1 });
  assertEquals(s.sample(new Float32Array([0, 5, 4.9])), 1);
  const p = new Sampler({ temperature: 0, repeatPenalty: 1.5, repeatLastN: 64 });
  p.accept([1]);
  // 5 / 1.5 = 3.33 < 4.9: the penalised favourite loses
  assertEquals(p.sample(new Float32Array([0, 5, 4.9])), 2);
});

Deno.test("Sampler repeat penalty only looks at the last repeatLastN tokens", () => {
  const s = new Sampler({ temperature: 0, repeatPenalty: 100, repeatLastN: 2 });
  s.accept([1, 0, 0]);
  // token 1 fell out of the window: not penalised
  assertEquals(s.pick(new Float32Array([0.5, 5, 4.9])), 1);
  assertEquals(s.recent, [0, 0]);
});

Deno.test("Sampler with topK 1 always returns the argmax", () => {
  const s = new Sampler({ temperature: 1.5, topK: 1, topP: 1, repeatPenalty: 1, seed: 3 });
  for (let i = 0; i < 50; i++) assertEquals(s.pick(new Float32Array([0, 1, 0.99, -1])), 1);
});

Deno.test("Sampler top-p keeps the smallest prefix reaching p", () => {
  // probabilities ∝ e^logit: [0.5, 0.25, 0.125, 0.125] → p = 0.7 keeps tokens 0 and 1 only
  const logits = new Float32Array([Math.log(4), Math.log(2), 0, 0]);
  const s = new Sampler({ temperature: 1, topK: 0, topP: 0.7, repeatPenalty: 1, seed: 7 });
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[s.pick(logits)]++;
  assertEquals(counts[2] + counts[3], 0);
  // renormalised: 2/3 vs 1/3
  assert(Math.abs(counts[0] / 3000 - 2 / 3) < 0.04, `counts ${counts}`);
});

Deno.test("Sampler at temperature 1 draws from softmax(logits)", () => {
  const logits = new Float32Array([0, Math.log(3)]); // p = [0.25, 0.75]
  const s = new Sampler({ temperature: 1, topK: 0, topP: 1, repeatPenalty: 1, seed: 11 });
  let ones = 0;
  for (let i = 0; i < 4000; i++) ones += s.pick(logits);
  assert(Math.abs(ones / 4000 - 0.75) < 0.03, `got ${ones / 4000}`);
});

Deno.test("Sampler temperature sharpens: low temperature picks the favourite almost always", () => {
  const logits = new Float32Array([0, 1]);
  const s = new Sampler({ temperature: 0.05, topK: 0, topP: 1, repeatPenalty: 1, seed: 5 });
  let ones = 0;
  for (let i = 0; i < 500; i++) ones += s.pick(logits);
  assertEquals(ones, 500);
});

Deno.test("Sampler with the same seed repeats the same draws", () => {
  const logits = new Float32Array(Array.from({ length: 50 }, (_, i) => Math.sin(i)));
  const a = new Sampler({ seed: 123 });
  const b = new Sampler({ seed: 123 });
  const ra = Array.from({ length: 20 }, () => a.sample(logits));
  const rb = Array.from({ length: 20 }, () => b.sample(logits));
  assertEquals(ra, rb);
  assert(new Set(ra).size > 1);
});

Deno.test("Sampler rejects a non-positive repeat penalty", () => {
  assertThrows(() => new Sampler({ repeatPenalty: 0 }), RangeError, "repeatPenalty");
});

Deno.test("topK() selects the same candidates as a full sort, ties broken by lower id", () => {
  let seed = 9;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (const [n, k] of [[1, 1], [10, 3], [1000, 40], [5000, 1], [300, 299]]) {
    // few distinct values: many ties
    const l = new Float32Array(n).map(() => Math.round(rand() * 20) / 4);
    l[Math.floor(n / 2)] = -Infinity;
    const want = Array.from(l, (v, id) => ({ id, v })).filter((c) => c.v > -Infinity)
      .sort((a, b) => b.v - a.v || a.id - b.id).slice(0, k).map((c) => c.id);
    assertEquals(topK(l, k).map((c) => c.id), want, `n ${n} k ${k}`);
  }
});
