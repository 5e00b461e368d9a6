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

/** Growable parallel arrays for symbols and heap entries, reused across calls. */
class Scratch {
  symStart = new Int32Array(256);
  symEnd = new Int32Array(256);
  prev = new Int32Array(256);
  next = new Int32Array(256);
  freeze = new Uint8Array(256);
  // heap entries
  hScore = new Float64Array(256);
  hLeft = new Int32Array(256);
  hRight = new Int32Array(256);
  hLen = new Int32Array(256);
  heap = new Int32Array(256);

  ensureSymbols(n: number): void {
    if (n <= this.symStart.length) return;
    const cap = Math.max(n, this.symStart.length * 2);
    this.symStart = new Int32Array(cap);
    this.symEnd = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.freeze = new Uint8Array(cap);
  }

  growEntries(): void {
    const cap = this.hScore.length * 2;
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.hScore = grow(this.hScore, (n) => new Float64Array(n));
    this.hLeft = grow(this.hLeft, (n) => new Int32Array(n));
    this.hRight = grow(this.hRight, (n) => new Int32Array(n));
    this.hLen = grow(this.hLen, (n) => new Int32Array(n));
    this.heap = grow(this.heap, (n) => new Int32Array(n));
  }
}

/** SentencePiece BPE over a Vocab. */
export class BpeModel {
  readonly vocab: Vocab;
  readonly #userByFirst = new Map<number, string[]>();
  readonly #scratch = new Scratch();

  constructor(vocab: Vocab) {
    this.vocab = vocab;
    for (const u of vocab.userDefined) {
      const c = u.codePointAt(0)!;
      const list = this.#userByFirst.get(c) ?? [];
      list.push(u);
      list.sort((a, b) => b.length - a.length);
      this.#userByFirst.set(c, list);
    }
  }

  /**
   * Segments normalized text `s[from, to)` and appends (id, start, end) triples to `out` (offsets into `s`).
   * Ids follow SentencePiece's PieceToId, so a character that is no piece comes out as the unknown id.
   */
  encode(s: string, from: number, to: number, out: number[]): void {
    if (to <= from) return;
    const sc = this.#scratch;
    const vocab = this.vocab;
    const pieces = vocab.normalIds;
    const scores = vocab.scores;
    const hasUser = this.#userByFirst.size > 0;

    // Split into characters (UTF-16 surrogate pairs stay together), user-defined symbols whole and frozen.
    sc.ensureSymbols(to - from);
    let n = 0;
    for (let i = from; i < to;) {
      let len = 1;
      let frozen = 0;
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
              break;
            }
          }
        }
      }
      sc.symStart[n] = i;
      sc.symEnd[n] = i + len;
      sc.prev[n] = n - 1;
      sc.next[n] = i + len < to ? n + 1 : -1;
      sc.freeze[n] = frozen;
      n++;
      i += len;
    }

    const symStart = sc.symStart, symEnd = sc.symEnd, prev = sc.prev, next = sc.next, freeze = sc.freeze;
    let heapSize = 0;
    let nEntries = 0;
    const revMerge = vocab.hasUnused ? new Map<string, [string, string]>() : undefined;

    // Heap order: higher score first; equal scores → smaller left index first.
    const before = (a: number, b: number): boolean => {
      const sa = sc.hScore[a], sb = sc.hScore[b];
      return sa > sb || (sa === sb && sc.hLeft[a] < sc.hLeft[b]);
    };
    const push = (left: number, right: number): void => {
      if (left < 0 || right < 0 || freeze[left] || freeze[right]) return;
      const a = symStart[left], b = symEnd[right];
      const piece = s.slice(a, b);
      const id = pieces.get(piece);
      if (id === undefined) return;
      if (nEntries >= sc.hScore.length) sc.growEntries();
      const e = nEntries++;
      sc.hScore[e] = scores[id];
      sc.hLeft[e] = left;
      sc.hRight[e] = right;
      sc.hLen[e] = b - a;
      if (revMerge && vocab.isUnused(id)) {
        revMerge.set(piece, [s.slice(a, symEnd[left]), s.slice(symStart[right], b)]);
      }
      // sift up
      const heap = sc.heap;
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
      const heap = sc.heap;
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

    // Main loop (hot): pop the best pair, skip it if either side changed since it was pushed, else merge.
    while (heapSize > 0) {
      const e = pop();
      const l = sc.hLeft[e], r = sc.hRight[e];
      const ll = symEnd[l] - symStart[l], rl = symEnd[r] - symStart[r];
      if (ll === 0 || rl === 0 || ll + rl !== sc.hLen[e]) continue;
      symEnd[l] = symEnd[r];
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      symEnd[r] = symStart[r]; // empty: merged away
      push(prev[l], l);
      push(l, next[l]);
    }

    for (let i = 0; i !== -1; i = next[i]) {
      const a = symStart[i], b = symEnd[i];
      if (revMerge) this.#resegment(s.slice(a, b), a, revMerge, out);
      else {
        const piece = s.slice(a, b);
        out.push(vocab.pieceToId(piece), a, b);
      }
    }
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
