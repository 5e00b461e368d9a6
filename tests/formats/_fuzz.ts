/**
 * Seeded mutation fuzzing for format readers: every mutated file must parse or fail with a typed error
 * (FormatError / UnsupportedError), quickly, and whatever it yields must stay within a small multiple of the file
 * size. Cases: $YANGTUO_FUZZ_CASES (default given by the caller, ≥ 2,000).
 */
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { mulberry32 } from "../_rand.ts";

/** The number of fuzz cases to run: $YANGTUO_FUZZ_CASES or `fallback`. */
export function fuzzCases(fallback = 2000): number {
  let env: string | undefined;
  try {
    env = Deno.env.get("YANGTUO_FUZZ_CASES");
  } catch { /* no env permission */ }
  const n = env ? Number(env) : fallback;
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** Mutates a copy of `bytes`: bit flips, random bytes, 0xff runs (huge counts), truncation, insertion, deletion. */
export function mutate(bytes: Uint8Array, rand: () => number, focusEnd = bytes.length): Uint8Array {
  let b = bytes.slice();
  const pos = () => Math.floor(rand() * Math.max(1, Math.min(focusEnd, b.length)));
  const nMut = 1 + Math.floor(rand() * 3);
  for (let m = 0; m < nMut; m++) {
    const kind = Math.floor(rand() * 7);
    if (b.length === 0) break;
    const p = pos();
    switch (kind) {
      case 0:
        b[p] ^= 1 << Math.floor(rand() * 8);
        break;
      case 1:
        b[p] = Math.floor(rand() * 256);
        break;
      case 2: // a run of 0xff or 0x7f: huge lengths / counts / offsets
        b.fill(rand() < 0.5 ? 0xff : 0x7f, p, Math.min(b.length, p + 1 + Math.floor(rand() * 8)));
        break;
      case 3:
        b = b.slice(0, p);
        break;
      case 4: {
        const ins = new Uint8Array(1 + Math.floor(rand() * 8)).map(() => Math.floor(rand() * 256));
        const nb = new Uint8Array(b.length + ins.length);
        nb.set(b.subarray(0, p));
        nb.set(ins, p);
        nb.set(b.subarray(p), p + ins.length);
        b = nb;
        break;
      }
      case 5: {
        const n = Math.min(1 + Math.floor(rand() * 8), b.length - p);
        const nb = new Uint8Array(b.length - n);
        nb.set(b.subarray(0, p));
        nb.set(b.subarray(p + n), p);
        b = nb;
        break;
      }
      case 6: // small integer in a little-endian field: plausible but wrong counts
        b[p] = Math.floor(rand() * 4);
        break;
    }
  }
  return b;
}

/**
 * Runs `cases` mutations of `valid` through `parse`. `parse` returns a size estimate of what it materialized (bytes
 * of arrays/strings/tensors it returned); that must be ≤ `maxFactor` × file size. Throws on the first case that
 * throws an untyped error, is slow, or over-allocates; returns counts of outcomes.
 */
export function fuzzParser(
  name: string,
  valid: Uint8Array,
  parse: (bytes: Uint8Array) => number,
  { cases = fuzzCases(), seed = 1234, maxMs = 200, maxFactor = 16, focusEnd = valid.length } = {},
): { ok: number; formatErrors: number; unsupported: number } {
  const rand = mulberry32(seed);
  const out = { ok: 0, formatErrors: 0, unsupported: 0 };
  for (let i = 0; i < cases; i++) {
    const bytes = mutate(valid, rand, focusEnd);
    const t0 = performance.now();
    try {
      const size = parse(bytes);
      if (size > maxFactor * Math.max(bytes.length, 64)) {
        throw new Error(`${name} fuzz case ${i}: materialized ${size} bytes from a ${bytes.length}-byte file`);
      }
      out.ok++;
    } catch (e) {
      if (e instanceof FormatError) out.formatErrors++;
      else if (e instanceof UnsupportedError) out.unsupported++;
      else {
        throw new Error(
          `${name} fuzz case ${i} (seed ${seed}): untyped ${(e as Error)?.name}: ${(e as Error)?.message}`,
          {
            cause: e,
          },
        );
      }
    }
    const ms = performance.now() - t0;
    if (ms > maxMs) throw new Error(`${name} fuzz case ${i}: took ${ms.toFixed(1)} ms`);
  }
  return out;
}

/** Asserts every strict prefix of `valid` makes `parse` throw FormatError, each within `maxMs`. */
export function assertEveryTruncationFails(
  name: string,
  valid: Uint8Array,
  parse: (b: Uint8Array) => unknown,
  maxMs = 100,
): void {
  for (let n = 0; n < valid.length; n++) {
    const t0 = performance.now();
    let err: unknown;
    try {
      parse(valid.subarray(0, n));
    } catch (e) {
      err = e;
    }
    if (!(err instanceof FormatError)) {
      throw new Error(
        `${name} truncated to ${n}/${valid.length} bytes: expected FormatError, got ${
          err ? (err as Error).name + ": " + (err as Error).message : "success"
        }`,
      );
    }
    const ms = performance.now() - t0;
    if (ms > maxMs) throw new Error(`${name} truncated to ${n} bytes: took ${ms.toFixed(1)} ms`);
  }
}
