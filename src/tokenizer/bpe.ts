/**
 * Model stage, BPE: SentencePiece's BPE segmentation. Start from characters (user-defined symbols kept whole and
 * frozen), repeatedly merge the adjacent pair whose concatenation is a piece with the highest score, ties to the
 * leftmost pair; UNUSED pieces are split back into the pair that formed them.
 * see: google/sentencepiece src/bpe_model.cc Model::SampleEncode (alpha = 0)
 *
 * Cost: a binary heap of candidate pairs over a doubly linked list of symbols, so O(n log n) in the number of
 * characters even for a 1 MB string with no spaces (stale heap entries are skipped when popped).
 */
import type { Vocab } from "./vocab.ts";

/** The merge cache holds at most 2^(bits-1) pairs (2^20 ≈ 1M, 12 MiB). */
const MAX_PAIR_CACHE_BITS = 21;

/**
 * Open-addressing hash (typed arrays, linear probing) from a pair of symbol keys to the merged piece id or -1.
 * Only a cache of `normalIds.get(left + right)`: cleared when half full at its maximum size.
 */
class PairCache {
  #bits = 12;
  #l = new Int32Array(1 << 12).fill(-1);
  #r = new Int32Array(1 << 12);
  #v = new Int32Array(1 << 12);
  #size = 0;

  /** The cached value, or -2 when absent. */
  get(l: number, r: number): number {
    const mask = (1 << this.#bits) - 1;
    let h = (Math.imul(l, 0x9e3779b1) ^ Math.imul(r, 0x85ebca77)) >>> (32 - this.#bits);
    for (;;) {
      const k = this.#l[h];
      if (k === -1) return -2;
      if (k === l && this.#r[h] === r) return this.#v[h];
      h = (h + 1) & mask;
    }
  }

  set(l: number, r: number, v: number): void {
    if (2 * (this.#size + 1) > 1 << this.#bits) {
      if (this.#bits < MAX_PAIR_CACHE_BITS) this.#rehash(this.#bits + 1);
      else this.#clear();
    }
    const mask = (1 << this.#bits) - 1;
    let h = (Math.imul(l, 0x9e3779b1) ^ Math.imul(r, 0x85ebca77)) >>> (32 - this.#bits);
    while (this.#l[h] !== -1) h = (h + 1) & mask;
    this.#l[h] = l;
    this.#r[h] = r;
    this.#v[h] = v;
    this.#size++;
  }

  #clear(): void {
    this.#l.fill(-1);
    this.#size = 0;
  }

  #rehash(bits: number): void {
    const [ol, or, ov] = [this.#l, this.#r, this.#v];
    this.#bits = bits;
    this.#l = new Int32Array(1 << bits).fill(-1);
    this.#r = new Int32Array(1 << bits);
    this.#v = new Int32Array(1 << bits);
    this.#size = 0;
    for (let i = 0; i < ol.length; i++) if (ol[i] !== -1) this.set(ol[i], or[i], ov[i]);
  }
}

/** Growable parallel arrays for symbols and heap entries, reused across calls. */
class Scratch {
  symStart = new Int32Array(256);
  symEnd = new Int32Array(256);
  prev = new Int32Array(256);
  next = new Int32Array(256);
  freeze = new Uint8Array(256);
  /** Symbol key: its vocab id when the text is a segmentable piece, else a synthetic id ≥ vocab size. */
  key = new Int32Array(256);
  // heap entries
  hScore = new Float64Array(256);
  hLeft = new Int32Array(256);
  hRight = new Int32Array(256);
  hMerged = new Int32Array(256);
  heap = new Int32Array(256);

  ensureSymbols(n: number): void {
    if (n <= this.symStart.length) return;
    const cap = Math.max(n, this.symStart.length * 2);
    this.symStart = new Int32Array(cap);
    this.symEnd = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.freeze = new Uint8Array(cap);
    this.key = new Int32Array(cap);
  }

  ensureEntries(n: number): void {
    if (n <= this.hScore.length) return;
    const cap = Math.max(n, this.hScore.length * 2);
    this.hScore = new Float64Array(cap);
    this.hLeft = new Int32Array(cap);
    this.hRight = new Int32Array(cap);
    this.hMerged = new Int32Array(cap);
    this.heap = new Int32Array(cap);
  }
}

/** SentencePiece BPE over a Vocab. */
export class BpeModel {
  readonly vocab: Vocab;
  readonly #userByFirst = new Map<number, string[]>();
  readonly #scratch = new Scratch();
  /** Key of each single character (by code point): its piece id, or a synthetic id for non-pieces. */
  readonly #charKey = new Map<number, number>();
  readonly #keyText: string[] = [];
  /** Merge cache: (leftKey, rightKey) → merged piece id, or -1 when the concatenation is no piece. */
  readonly #pairCache = new PairCache();
  /** Normal pieces whose text is also a reserved piece: PieceToId returns the reserved id for them. */
  readonly #shadowed = new Map<number, number>();

  constructor(vocab: Vocab) {
    this.vocab = vocab;
    for (const [p, id] of vocab.normalIds) {
      const r = vocab.reservedIds.get(p);
      if (r !== undefined) this.#shadowed.set(id, r);
    }
    for (const u of vocab.userDefined) {
      const c = u.codePointAt(0)!;
      const list = this.#userByFirst.get(c) ?? [];
      list.push(u);
      list.sort((a, b) => b.length - a.length);
      this.#userByFirst.set(c, list);
    }
  }

  #keyOfChar(s: string, i: number, len: number): number {
    const cp = len === 2 ? s.codePointAt(i)! : s.charCodeAt(i);
    let k = this.#charKey.get(cp);
    if (k === undefined) {
      const text = s.slice(i, i + len);
      k = this.vocab.normalIds.get(text);
      if (k === undefined) {
        k = this.vocab.size + this.#keyText.length;
        this.#keyText.push(text);
      }
      this.#charKey.set(cp, k);
    }
    return k;
  }

  #keyOfText(text: string): number {
    const id = this.vocab.normalIds.get(text);
    if (id !== undefined) return id;
    const k = this.vocab.size + this.#keyText.length;
    this.#keyText.push(text);
    return k;
  }

  /** Merged piece id of two adjacent symbols (by key and text span), or -1. Cached by key pair. */
  #merge(lk: number, rk: number, s: string, a: number, b: number): number {
    let m = this.#pairCache.get(lk, rk);
    if (m === -2) {
      m = this.vocab.normalIds.get(s.slice(a, b)) ?? -1;
      this.#pairCache.set(lk, rk, m);
    }
    return m;
  }

  /**
   * Segments normalized text `s[from, to)` and appends (id, start, end) triples to `out` (offsets into `s`).
   * Ids follow SentencePiece's PieceToId, so a character that is no piece comes out as the unknown id.
   */
  encode(s: string, from: number, to: number, out: number[]): void {
    if (to <= from) return;
    const sc = this.#scratch;
    const vocab = this.vocab;
    const scores = vocab.scores;
    const hasUser = this.#userByFirst.size > 0;

    // Split into characters (UTF-16 surrogate pairs stay together), user-defined symbols whole and frozen.
    sc.ensureSymbols(to - from);
    let n = 0;
    for (let i = from; i < to;) {
      let len = 1;
      let frozen = 0;
      let key = -1;
      const c = s.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < to) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) len = 2;
      }
      if (hasUser) {
        const list = this.#userByFirst.get(s.codePointAt(i)!);
        if (list) {
          for (const u of list) {
            if (u.length <= to - i && s.startsWith(u, i)) {
              len = u.length;
              frozen = 1;
              key = this.#keyOfText(u);
              break;
            }
          }
        }
      }
      if (key < 0) key = this.#keyOfChar(s, i, len);
      sc.symStart[n] = i;
      sc.symEnd[n] = i + len;
      sc.prev[n] = n - 1;
      sc.next[n] = i + len < to ? n + 1 : -1;
      sc.freeze[n] = frozen;
      sc.key[n] = key;
      n++;
      i += len;
    }

    // At most n-1 initial pairs plus 2 per merge (≤ n-1 merges) are ever pushed.
    sc.ensureEntries(3 * n);
    const symStart = sc.symStart, symEnd = sc.symEnd, prev = sc.prev, next = sc.next, freeze = sc.freeze;
    const keys = sc.key;
    const hScore = sc.hScore, hLeft = sc.hLeft, hRight = sc.hRight, hMerged = sc.hMerged, heap = sc.heap;
    let heapSize = 0;
    let nEntries = 0;
    const revMerge = vocab.hasUnused ? new Map<string, [string, string]>() : undefined;

    // Heap order: higher score first; equal scores → smaller left index first.
    const before = (a: number, b: number): boolean => {
      const sa = hScore[a], sb = hScore[b];
      return sa > sb || (sa === sb && hLeft[a] < hLeft[b]);
    };
    const push = (left: number, right: number): void => {
      if (left < 0 || right < 0 || freeze[left] || freeze[right]) return;
      const a = symStart[left], b = symEnd[right];
      const id = this.#merge(keys[left], keys[right], s, a, b);
      if (id < 0) return;
      const e = nEntries++;
      hScore[e] = scores[id];
      hLeft[e] = left;
      hRight[e] = right;
      hMerged[e] = id;
      if (revMerge && vocab.isUnused(id)) {
        revMerge.set(vocab.pieces[id], [s.slice(a, symEnd[left]), s.slice(symStart[right], b)]);
      }
      // sift up
      let i = heapSize++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!before(e, heap[p])) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = e;
    };
    const pop = (): number => {
      const top = heap[0];
      const last = heap[--heapSize];
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= heapSize) break;
        const r = l + 1;
        const c = r < heapSize && before(heap[r], heap[l]) ? r : l;
        if (!before(heap[c], last)) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = last;
      return top;
    };

    for (let i = 1; i < n; i++) push(i - 1, i);

    // Main loop (hot): pop the best pair; skip it when either side changed since it was pushed (SentencePiece
    // compares lengths: a symbol only ever grows, so "same length" ⇔ "same text" ⇔ "same key"), else merge.
    while (heapSize > 0) {
      const e = pop();
      const l = hLeft[e], r = hRight[e];
      const ll = symEnd[l] - symStart[l], rl = symEnd[r] - symStart[r];
      const merged = hMerged[e];
      if (ll === 0 || rl === 0 || ll + rl !== vocab.pieces[merged].length) continue;
      symEnd[l] = symEnd[r];
      keys[l] = merged;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      symEnd[r] = symStart[r]; // empty: merged away
      push(prev[l], l);
      push(l, next[l]);
    }

    for (let i = 0; i !== -1; i = next[i]) {
      const a = symStart[i], b = symEnd[i];
      if (revMerge) this.#resegment(s.slice(a, b), a, revMerge, out);
      else out.push(this.#outputId(keys[i]), a, b);
    }
  }

  /** SentencePiece's PieceToId of a symbol's text: reserved pieces win, non-pieces are unknown. */
  #outputId(k: number): number {
    const vocab = this.vocab;
    if (k < vocab.size) return this.#shadowed.get(k) ?? k;
    return vocab.pieceToId(this.#keyText[k - vocab.size]);
  }

  #resegment(w: string, start: number, revMerge: Map<string, [string, string]>, out: number[]): void {
    const id = this.vocab.pieceToId(w);
    const split = this.vocab.isUnused(id) ? revMerge.get(w) : undefined;
    if (!split) {
      out.push(id, start, start + w.length);
      return;
    }
    this.#resegment(split[0], start, revMerge, out);
    this.#resegment(split[1], start + split[0].length, revMerge, out);
  }
}
