/**
 * The two pieces of libstdc++ (GCC 12, as in Debian's SentencePiece 0.1.97) whose behaviour decides which pairs
 * SentencePiece's BPE trainer considers when frequencies tie: the iteration order of
 * std::unordered_map<uint64_t, …> (std::hash is the identity; singly linked node list, prime bucket counts, nodes
 * inserted at the front of their bucket or of the list) and the set of elements std::partial_sort puts first
 * (heap select). Also the trainer's 64-bit FingerprintCat (Bob Jenkins' mix).
 * see: libstdc++ bits/hashtable.h (_M_insert_bucket_begin, _M_rehash_aux, _M_erase), bits/hashtable_policy.h and
 *      src/c++11/hashtable_c++0x.cc (_Prime_rehash_policy), bits/stl_heap.h, bits/stl_algo.h (__heap_select);
 *      google/sentencepiece src/util.h (mix, FingerprintCat)
 */

/** libstdc++'s __prime_list (64-bit), the entries below 2^31. */
const PRIMES = [
  2,
  3,
  5,
  7,
  11,
  13,
  17,
  19,
  23,
  29,
  31,
  37,
  41,
  43,
  47,
  53,
  59,
  61,
  67,
  71,
  73,
  79,
  83,
  89,
  97,
  103,
  109,
  113,
  127,
  137,
  139,
  149,
  157,
  167,
  179,
  193,
  199,
  211,
  227,
  241,
  257,
  277,
  293,
  313,
  337,
  359,
  383,
  409,
  439,
  467,
  503,
  541,
  577,
  619,
  661,
  709,
  761,
  823,
  887,
  953,
  1031,
  1109,
  1193,
  1289,
  1381,
  1493,
  1613,
  1741,
  1879,
  2029,
  2179,
  2357,
  2549,
  2753,
  2971,
  3209,
  3469,
  3739,
  4027,
  4349,
  4703,
  5087,
  5503,
  5953,
  6427,
  6949,
  7517,
  8123,
  8783,
  9497,
  10273,
  11113,
  12011,
  12983,
  14033,
  15173,
  16411,
  17749,
  19183,
  20753,
  22447,
  24281,
  26267,
  28411,
  30727,
  33223,
  35933,
  38873,
  42043,
  45481,
  49201,
  53201,
  57557,
  62233,
  67307,
  72817,
  78779,
  85229,
  92203,
  99733,
  107897,
  116731,
  126271,
  136607,
  147793,
  159871,
  172933,
  187091,
  202409,
  218971,
  236897,
  256279,
  277261,
  299951,
  324503,
  351061,
  379787,
  410857,
  444487,
  480881,
  520241,
  562841,
  608903,
  658753,
  712697,
  771049,
  834181,
  902483,
  976369,
  1056323,
  1142821,
  1236397,
  1337629,
  1447153,
  1565659,
  1693859,
  1832561,
  1982627,
  2144977,
  2320627,
  2510653,
  2716249,
  2938679,
  3179303,
  3439651,
  3721303,
  4026031,
  4355707,
  4712381,
  5098259,
  5515729,
  5967347,
  6456007,
  6984629,
  7556579,
  8175383,
  8844859,
  9569143,
  10352717,
  11200489,
  12117689,
  13109983,
  14183539,
  15345007,
  16601593,
  17961079,
  19431899,
  21023161,
  22744717,
  24607243,
  26622317,
  28802401,
  31160981,
  33712729,
  36473443,
  39460231,
  42691603,
  46187573,
  49969847,
  54061849,
  58488943,
  63278561,
  68460391,
  74066549,
  80131819,
  86693767,
  93793069,
  101473717,
  109783337,
  118773397,
  128499677,
  139022417,
  150406843,
  162723577,
  176048909,
  190465427,
  206062531,
  222936881,
  241193053,
  260944219,
  282312799,
  305431229,
  330442829,
  357502601,
  386778277,
  418451333,
  452718089,
  489790921,
  529899637,
  573292817,
  620239453,
  671030513,
  725980837,
  785430967,
  849749479,
  919334987,
  994618837,
  1076067617,
  1164186217,
  1259520799,
  1362662261,
  1474249943,
  1594975441,
  1725587117,
  1866894511,
  2019773507,
];
const FAST_BKT = [2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13];

const M64 = (1n << 64n) - 1n;

/** SentencePiece's port::FingerprintCat(x, y) on 64-bit values (BigInt reference of fingerprintCat32). */
export function fingerprintCat(x: bigint, y: bigint): bigint {
  const out = new Uint32Array(2);
  fingerprintCat32(Number(x >> 32n), Number(x & 0xffffffffn), Number(y >> 32n), Number(y & 0xffffffffn), out);
  return (BigInt(out[0]) << 32n) | BigInt(out[1]);
}

// 64-bit words as (hi, lo) u32 pairs in a scratch array: a = [0, 1], b = [2, 3], c = [4, 5]
const W = new Uint32Array(6);

/** w[d] -= w[s] (64-bit, wrapping). */
function sub(d: number, s: number): void {
  const lo = W[d + 1] - W[s + 1];
  W[d] = W[d] - W[s] - (lo < 0 ? 1 : 0);
  W[d + 1] = lo;
}

/** w[d] ^= w[s] >> n (logical). */
function xorShr(d: number, s: number, n: number): void {
  const hi = W[s], lo = W[s + 1];
  if (n >= 32) {
    W[d + 1] ^= hi >>> (n - 32);
  } else {
    W[d + 1] ^= (lo >>> n) | (hi << (32 - n));
    W[d] ^= hi >>> n;
  }
}

/** w[d] ^= w[s] << n. */
function xorShl(d: number, s: number, n: number): void {
  const hi = W[s], lo = W[s + 1];
  if (n >= 32) {
    W[d] ^= lo << (n - 32);
  } else {
    W[d] ^= (hi << n) | (lo >>> (32 - n));
    W[d + 1] ^= lo << n;
  }
}

/**
 * FingerprintCat on (hi, lo) halves, writing [hi, lo] of the result to `out`: Bob Jenkins' 64-bit mix(x, golden, y),
 * returning c. Hot (one call per new pair), so no BigInt.
 */
export function fingerprintCat32(xHi: number, xLo: number, yHi: number, yLo: number, out: Uint32Array): void {
  const a = 0, b = 2, c = 4;
  W[0] = xHi, W[1] = xLo, W[2] = 0xe08c1d66, W[3] = 0x8b756f82, W[4] = yHi, W[5] = yLo;
  sub(a, b), sub(a, c), xorShr(a, c, 43);
  sub(b, c), sub(b, a), xorShl(b, a, 9);
  sub(c, a), sub(c, b), xorShr(c, b, 8);
  sub(a, b), sub(a, c), xorShr(a, c, 38);
  sub(b, c), sub(b, a), xorShl(b, a, 23);
  sub(c, a), sub(c, b), xorShr(c, b, 5);
  sub(a, b), sub(a, c), xorShr(a, c, 35);
  sub(b, c), sub(b, a), xorShl(b, a, 49);
  sub(c, a), sub(c, b), xorShr(c, b, 11);
  sub(a, b), sub(a, c), xorShr(a, c, 12);
  sub(b, c), sub(b, a), xorShl(b, a, 18);
  sub(c, a), sub(c, b), xorShr(c, b, 22);
  out[0] = W[4];
  out[1] = W[5];
}

/** The BigInt definition of FingerprintCat, kept as the reference the fast version is tested against. */
export function fingerprintCatRef(x: bigint, y: bigint): bigint {
  let a = x, b = 0xe08c1d668b756f82n, c = y;
  a = (a - b) & M64;
  a = (a - c) & M64;
  a ^= c >> 43n;
  b = (b - c) & M64;
  b = (b - a) & M64;
  b ^= (a << 9n) & M64;
  c = (c - a) & M64;
  c = (c - b) & M64;
  c ^= b >> 8n;
  a = (a - b) & M64;
  a = (a - c) & M64;
  a ^= c >> 38n;
  b = (b - c) & M64;
  b = (b - a) & M64;
  b ^= (a << 23n) & M64;
  c = (c - a) & M64;
  c = (c - b) & M64;
  c ^= b >> 5n;
  a = (a - b) & M64;
  a = (a - c) & M64;
  a ^= c >> 35n;
  b = (b - c) & M64;
  b = (b - a) & M64;
  b ^= (a << 49n) & M64;
  c = (c - a) & M64;
  c = (c - b) & M64;
  c ^= b >> 11n;
  a = (a - b) & M64;
  a = (a - c) & M64;
  a ^= c >> 12n;
  b = (b - c) & M64;
  b = (b - a) & M64;
  b ^= (a << 18n) & M64;
  c = (c - a) & M64;
  c = (c - b) & M64;
  c ^= b >> 22n;
  return c;
}

const NONE = -2;
const BEFORE_BEGIN = -1;

/**
 * The node order of a libstdc++ std::unordered_map with 64-bit keys under insert and erase (max_load_factor 1).
 * Nodes are small integers chosen by the caller; keys are given as (hi, lo) 32-bit halves.
 */
export class UnorderedMapOrder {
  #next = new Int32Array(1024).fill(NONE);
  #hi = new Uint32Array(1024);
  #lo = new Uint32Array(1024);
  #head = NONE;
  #buckets = new Int32Array([NONE]);
  #nextResize = 0;
  size = 0;

  #bucketOf(node: number, n: number): number {
    // (hi * 2^32 + lo) mod n without leaving exact float range (n < 2^31)
    const hi = this.#hi[node] % n;
    return (mulMod(hi, 0x100000000 % n, n) + (this.#lo[node] % n)) % n;
  }

  #nextOf(node: number): number {
    return node === BEFORE_BEGIN ? this.#head : this.#next[node];
  }

  #setNext(node: number, v: number): void {
    if (node === BEFORE_BEGIN) this.#head = v;
    else this.#next[node] = v;
  }

  #grow(node: number): void {
    if (node < this.#next.length) return;
    let cap = this.#next.length * 2;
    while (cap <= node) cap *= 2;
    const n = new Int32Array(cap).fill(NONE);
    n.set(this.#next);
    this.#next = n;
    const h = new Uint32Array(cap);
    h.set(this.#hi);
    this.#hi = h;
    const l = new Uint32Array(cap);
    l.set(this.#lo);
    this.#lo = l;
  }

  /** _Prime_rehash_policy::_M_next_bkt */
  #nextBkt(n: number): number {
    if (n < FAST_BKT.length) {
      if (n === 0) return 1;
      this.#nextResize = FAST_BKT[n];
      return FAST_BKT[n];
    }
    let lo = 6, hi = PRIMES.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (PRIMES[mid] < n) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= PRIMES.length) throw new RangeError("Cannot emulate unordered_map: too many buckets");
    this.#nextResize = PRIMES[lo];
    return PRIMES[lo];
  }

  /** Inserts a node whose key is not present. */
  insert(node: number, keyHi: number, keyLo: number): void {
    this.#grow(node);
    this.#hi[node] = keyHi >>> 0;
    this.#lo[node] = keyLo >>> 0;
    const nb = this.#buckets.length;
    // _M_need_rehash(nb, size, 1)
    if (this.size + 1 > this.#nextResize) {
      const minBkts = Math.max(this.size + 1, this.#nextResize ? 0 : 11);
      if (minBkts >= nb) this.#rehash(this.#nextBkt(Math.max(Math.floor(minBkts) + 1, nb * 2)));
      else this.#nextResize = nb;
    }
    const bkt = this.#bucketOf(node, this.#buckets.length);
    const before = this.#buckets[bkt];
    if (before !== NONE) {
      this.#next[node] = this.#nextOf(before);
      this.#setNext(before, node);
    } else {
      this.#next[node] = this.#head;
      this.#head = node;
      if (this.#next[node] !== NONE) this.#buckets[this.#bucketOf(this.#next[node], this.#buckets.length)] = node;
      this.#buckets[bkt] = BEFORE_BEGIN;
    }
    this.size++;
  }

  #rehash(n: number): void {
    const buckets = new Int32Array(n).fill(NONE);
    let p = this.#head;
    this.#head = NONE;
    let bbeginBkt = 0;
    while (p !== NONE) {
      const next = this.#next[p];
      const bkt = this.#bucketOf(p, n);
      if (buckets[bkt] === NONE) {
        this.#next[p] = this.#head;
        this.#head = p;
        buckets[bkt] = BEFORE_BEGIN;
        if (this.#next[p] !== NONE) buckets[bbeginBkt] = p;
        bbeginBkt = bkt;
      } else {
        this.#next[p] = this.#nextOf(buckets[bkt]);
        this.#setNext(buckets[bkt], p);
      }
      p = next;
    }
    this.#buckets = buckets;
  }

  /** Erases a node that is present. */
  erase(node: number): void {
    const nb = this.#buckets.length;
    const bkt = this.#bucketOf(node, nb);
    let prev = this.#buckets[bkt];
    if (prev === NONE) throw new RangeError(`Cannot erase node ${node}: not present`);
    while (this.#nextOf(prev) !== node) {
      prev = this.#nextOf(prev);
      if (prev === NONE) throw new RangeError(`Cannot erase node ${node}: not present`);
    }
    const next = this.#next[node];
    if (prev === this.#buckets[bkt]) {
      const nextBkt = next !== NONE ? this.#bucketOf(next, nb) : 0;
      if (next === NONE || nextBkt !== bkt) {
        if (next !== NONE) this.#buckets[nextBkt] = this.#buckets[bkt];
        if (this.#buckets[bkt] === BEFORE_BEGIN) this.#head = next;
        this.#buckets[bkt] = NONE;
      }
    } else if (next !== NONE) {
      const nextBkt = this.#bucketOf(next, nb);
      if (nextBkt !== bkt) this.#buckets[nextBkt] = prev;
    }
    this.#setNext(prev, next);
    this.#next[node] = NONE;
    this.size--;
  }

  /** Calls `f` for each node in iteration order. */
  forEach(f: (node: number) => void): void {
    for (let p = this.#head; p !== NONE; p = this.#next[p]) f(p);
  }
}

/** a * b mod n for a, b < n < 2^31, exactly. */
function mulMod(a: number, b: number, n: number): number {
  const bHi = Math.floor(b / 0x10000), bLo = b % 0x10000;
  return ((((a * bHi) % n) * 0x10000) % n + a * bLo) % n;
}

/**
 * Which elements std::partial_sort(v.begin(), v.begin() + k, v.end(), comp) leaves in the first k slots (their
 * order there is not reproduced: callers use them as a set). `less(a, b)` is comp. Rearranges `v` in place.
 */
export function partialSortSelect<T>(v: T[], k: number, less: (a: T, b: T) => boolean): void {
  if (k <= 0) return;
  // __make_heap on [0, k)
  if (k >= 2) {
    for (let parent = (k - 2) >> 1;; parent--) {
      adjustHeap(v, parent, k, v[parent], less);
      if (parent === 0) break;
    }
  }
  // __heap_select: an element better than the heap top replaces it
  for (let i = k; i < v.length; i++) {
    if (less(v[i], v[0])) {
      const value = v[i];
      v[i] = v[0];
      adjustHeap(v, 0, k, value, less);
    }
  }
}

function adjustHeap<T>(v: T[], hole: number, len: number, value: T, less: (a: T, b: T) => boolean): void {
  const top = hole;
  let child = hole;
  while (child < (len - 1) >> 1) {
    child = 2 * (child + 1);
    if (less(v[child], v[child - 1])) child--;
    v[hole] = v[child];
    hole = child;
  }
  if ((len & 1) === 0 && child === (len - 2) >> 1) {
    child = 2 * (child + 1);
    v[hole] = v[child - 1];
    hole = child - 1;
  }
  // __push_heap
  let parent = (hole - 1) >> 1;
  while (hole > top && less(v[parent], value)) {
    v[hole] = v[parent];
    hole = parent;
    parent = (hole - 1) >> 1;
  }
  v[hole] = value;
}
