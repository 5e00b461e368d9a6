/**
 * std::mt19937 (32-bit Mersenne Twister) and libstdc++'s std::uniform_int_distribution<uint64_t> over it (Lemire's
 * nearly-divisionless downscaling, GCC ≥ 11), so a seeded sample equals SentencePiece's ReservoirSampler.
 * see: ISO C++ [rand.eng.mers]; libstdc++ bits/uniform_int_dist.h (_S_nd); arXiv:1805.10941
 */

const N = 624;
const M = 397;

/** The 32-bit Mersenne Twister with C++'s seeding. */
export class Mt19937 {
  readonly #mt = new Uint32Array(N);
  #i = N;

  constructor(seed: number) {
    const mt = this.#mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * prev + i (mod 2^32), without losing bits to float rounding
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** Next 32-bit output. */
  next(): number {
    const mt = this.#mt;
    if (this.#i >= N) {
      for (let k = 0; k < N; k++) {
        const y = (mt[k] & 0x80000000) | (mt[(k + 1) % N] & 0x7fffffff);
        mt[k] = mt[(k + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.#i = 0;
    }
    let y = mt[this.#i++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** uniform_int_distribution<uint64_t>(0, range - 1)(*this) for 1 ≤ range ≤ 2^32 - 1. */
  uniformBelow(range: number): number {
    if (!(range >= 1 && range <= 0xffffffff)) throw new RangeError(`Cannot draw below ${range}: out of range`);
    let [hi, lo] = mul32(this.next(), range);
    if (lo < range) {
      const threshold = (0x100000000 - range) % range;
      while (lo < threshold) [hi, lo] = mul32(this.next(), range);
    }
    return hi;
  }
}

/** The exact 64-bit product of two u32 as [high u32, low u32]. */
function mul32(a: number, b: number): [number, number] {
  const aHi = a >>> 16, aLo = a & 0xffff;
  const p1 = aHi * b; // < 2^48, exact
  const p0 = aLo * b; // < 2^48, exact
  const low = (p1 % 0x10000) * 0x10000 + p0; // < 2^49, exact
  const hi = Math.floor(p1 / 0x10000) + Math.floor(low / 0x100000000);
  return [hi >>> 0, low % 0x100000000];
}
