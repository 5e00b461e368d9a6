/**
 * mulberry32: a small, fast seeded generator of floats in [0, 1). The same seed gives the same sequence on every run;
 * `make-model` picks its SFT record templates with it, and the test/bench generators their data.
 * see: Tommy Ettinger's mulberry32 (public domain)
 */

/** A generator of floats in [0, 1) seeded by `seed` (a uint32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
