/**
 * Mt19937: the 32-bit Mersenne Twister, the engine llama.cpp seeds with `--seed` (`std::mt19937`), so a seed
 * means the same thing here as in C++'s standard library (the raw 32-bit stream is identical). One home for the
 * sampler (llama.cpp's sampling), the tokenizer trainer (SentencePiece's seeded sampling, via uniformBelow) and the
 * training data order.
 * see: Matsumoto & Nishimura 1998; C++ [rand.eng.mers] (10000th output of the default seed 5489 is 4123659995);
 * libstdc++ bits/uniform_int_dist.h (_S_nd); arXiv:1805.10941
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/** A seeded 32-bit Mersenne Twister (MT19937). */
export class Mt19937 {
  #mt = new Uint32Array(N);
  #i = N;

  /** Seeds like `std::mt19937(seed)`; the seed is taken modulo 2^32. */
  constructor(seed = 5489) {
    const mt = this.#mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * prev + i, modulo 2^32 (Math.imul keeps the low 32 bits exact)
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** The next 32-bit output as an unsigned integer. */
  nextU32(): number {
    const mt = this.#mt;
    if (this.#i >= N) {
      for (let k = 0; k < N; k++) {
        const y = (mt[k] & UPPER_MASK) | (mt[(k + 1) % N] & LOWER_MASK);
        mt[k] = mt[(k + M) % N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
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

  /** A float uniform in [0, 1) with 53 random bits (two outputs, as `std::generate_canonical<double, 53>`). */
  nextFloat(): number {
    const lo = this.nextU32();
    const hi = this.nextU32();
    return (lo + hi * 4294967296) / 18446744073709551616;
  }

  /** uniform_int_distribution<uint64_t>(0, range - 1)(*this) for 1 ≤ range ≤ 2^32 - 1. */
  uniformBelow(range: number): number {
    if (!(range >= 1 && range <= 0xffffffff)) throw new RangeError(`Cannot draw below ${range}: out of range`);
    let [hi, lo] = mul32(this.nextU32(), range);
    if (lo < range) {
      const threshold = (0x100000000 - range) % range;
      while (lo < threshold) [hi, lo] = mul32(this.nextU32(), range);
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
