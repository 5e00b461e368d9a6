/**
 * transformers' schedules on hand-computed values (get_linear/cosine_schedule_with_warmup lambdas and
 * TrainingArguments.get_warmup_steps); the torch-run comparison over 10 steps is in optimizer_test.ts.
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";

const assertAlmostEquals = (a: number, b: number, tol: number) => assert(Math.abs(a - b) <= tol, `${a} vs ${b}`);
import { lrLambda, warmupSteps } from "../../src/train/mod.ts";

Deno.test("warmupSteps() rounds warmup_ratio up as transformers, and warmup_steps > 0 wins", () => {
  assertEquals(warmupSteps(10, 0.15), 2);
  assertEquals(warmupSteps(6000, 0.03), 180);
  assertEquals(warmupSteps(7, 0.05), 1);
  assertEquals(warmupSteps(100, 0), 0);
  assertEquals(warmupSteps(100, 0.5, 3), 3);
  assertThrows(() => warmupSteps(10, 1.5), RangeError);
});

Deno.test("lrLambda() matches the warmup, cosine and linear formulas", () => {
  assertEquals(lrLambda("cosine", 0, 4, 20), 0);
  assertEquals(lrLambda("cosine", 2, 4, 20), 0.5);
  assertEquals(lrLambda("cosine", 4, 4, 20), 1);
  assertAlmostEquals(lrLambda("cosine", 12, 4, 20), 0.5, 1e-15); // halfway through the decay
  assertAlmostEquals(lrLambda("cosine", 20, 4, 20), 0, 1e-15);
  assertEquals(lrLambda("linear", 12, 4, 20), 0.5);
  assertEquals(lrLambda("linear", 25, 4, 20), 0); // clamped past the end
  assertEquals(lrLambda("constant", 0, 4, 20), 1);
  assertEquals(lrLambda("constant_with_warmup", 1, 4, 20), 0.25);
  assertEquals(lrLambda("linear", 0, 0, 10), 1); // no warmup: full rate at step 0
});
