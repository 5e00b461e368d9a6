/**
 * std-style assertions on node:assert/strict (JSR is unreachable here), plus assertAllClose for floats.
 */
import assert from "node:assert/strict";

export function assert_(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg);
}
export { assert_ as assert };

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}

export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

export function assertStrictEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.strictEqual(actual, expected, msg);
}

export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  assert.match(actual, re, msg);
}

export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  if (!actual.includes(expected)) {
    throw new assert.AssertionError({
      message: msg ?? `Expected ${JSON.stringify(actual.slice(0, 2000))} to include ${JSON.stringify(expected)}`,
      actual,
      expected,
    });
  }
}

type ErrorClass = new (...args: never[]) => Error;

/** Asserts `fn` throws an instance of `cls` (whose message includes `includes`, if given); returns the error. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: ErrorClass,
  includes?: string,
): E {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) throw new assert.AssertionError({ message: "Expected function to throw" });
  checkError(caught, cls, includes);
  return caught as E;
}

/** Async variant of assertThrows. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: ErrorClass,
  includes?: string,
): Promise<E> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) throw new assert.AssertionError({ message: "Expected promise to reject" });
  checkError(caught, cls, includes);
  return caught as E;
}

function checkError(e: unknown, cls?: ErrorClass, includes?: string): void {
  if (cls && !(e instanceof cls)) {
    throw new assert.AssertionError({
      message: `Expected error to be ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`,
    });
  }
  if (includes !== undefined && !String((e as Error)?.message).includes(includes)) {
    throw new assert.AssertionError({
      message: `Expected error message to include ${JSON.stringify(includes)}, got ${
        JSON.stringify((e as Error)?.message)
      }`,
    });
  }
}

/**
 * Asserts |actual[i] - expected[i]| <= atol + rtol * |expected[i]| for all i (NaN equals NaN).
 * On failure prints the first mismatches and the max error.
 */
export function assertAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 0, rtol = 0, msg = "" }: { atol?: number; rtol?: number; msg?: string } = {},
): void {
  if (actual.length !== expected.length) {
    throw new assert.AssertionError({
      message: `${msg}${msg ? ": " : ""}length ${actual.length} != expected ${expected.length}`,
    });
  }
  let maxErr = 0;
  let maxAt = -1;
  const bad: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    if (a === e) continue;
    const err = Math.abs(a - e);
    const tol = atol + rtol * Math.abs(e);
    if (!(err <= tol)) {
      if (bad.length < 8) bad.push(`[${i}] ${a} vs ${e} (err ${err.toExponential(3)}, tol ${tol.toExponential(3)})`);
    }
    if (!(err <= maxErr)) {
      maxErr = err;
      maxAt = i;
    }
  }
  if (bad.length) {
    throw new assert.AssertionError({
      message: `${msg}${
        msg ? ": " : ""
      }arrays not close (atol ${atol}, rtol ${rtol}); max error ${maxErr} at [${maxAt}]\n  ${bad.join("\n  ")}`,
    });
  }
}

/** Asserts two byte arrays are identical; reports the first differing offset. */
export function assertBytesEqual(actual: Uint8Array, expected: Uint8Array, msg = ""): void {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] !== expected[i]) {
      throw new assert.AssertionError({
        message: `${msg}${msg ? ": " : ""}bytes differ at offset ${i}: ${actual[i]} vs ${expected[i]}`,
      });
    }
  }
  if (actual.length !== expected.length) {
    throw new assert.AssertionError({
      message: `${msg}${msg ? ": " : ""}length ${actual.length} != expected ${expected.length}`,
    });
  }
}
