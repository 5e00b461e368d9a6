/**
 * Seeded randomness for tests and generators (mulberry32 + Box–Muller): same seed, same data, every run.
 */

import { mulberry32 } from "../src/core/mulberry32.ts";

export { mulberry32 };

/** `n` floats uniform in [lo, hi). */
export function randomUniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** `n` floats ~ N(0, std²). */
export function randomNormal(n: number, seed: number, std = 1): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12), v = r();
    const m = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}
