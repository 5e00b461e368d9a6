/**
 * BPE trainer with SentencePiece's rules: start from characters; repeatedly take the adjacent pair with the highest
 * frequency (ties: fewer characters, then the smaller string by UTF-8 bytes), merge it everywhere left to right
 * ("AAA" counts and merges one "AA"), give it score −(number of pieces so far); a pair whose string was already
 * taken through another split is dropped without merging; pairs that would be invalid pieces never compete. The
 * required characters follow, by count. Like SentencePiece, the best pair is searched only in an "active" set rebuilt
 * every 100 pieces from the top max(1000, 5%) pairs; which equal-frequency pairs make that cut depends on the
 * iteration order of SentencePiece's std::unordered_map and on std::partial_sort, both reproduced (libstdcxx.ts), so
 * the result is identical even when frequencies tie or run out.
 * see: google/sentencepiece src/bpe_model_trainer.cc Trainer::Train, ComputeFreq (v0.1.97)
 *
 * Data layout (one slot per character of every unit, units back to back):
 * 1. sym[i]: the symbol at slot i, or -1 once merged into its left neighbour; next[i] / prev[i]: the neighbouring
 *    live slot in the same unit, or -1.
 * 2. Symbols: characters first, then pairs; a pair has left/right symbols, its string, length in characters,
 *    frequency (sum of unit frequencies over its counted occurrences) and the slots where it was seen (may be stale).
 */
import { compareCodePoints, UNK_CHAR } from "./corpus.ts";
import { fingerprintCat32, partialSortSelect, UnorderedMapOrder } from "./libstdcxx.ts";

/** One trained piece with its score. */
export type ScoredPiece = [piece: string, score: number];

/** What the BPE trainer needs. */
export interface BpeTrainInput {
  /** Units (words or sentences) after normalization; characters outside the alphabet are ▅. */
  texts: string[];
  freqs: number[];
  /** Required characters → count, in final order (count desc, code point asc). */
  requiredChars: Map<number, number>;
  /** Pieces to learn besides meta pieces and required characters. */
  nMerges: number;
  isValid: (cps: ArrayLike<number>) => boolean;
  onProgress?: (done: number, total: number) => void;
}

/** Absent key in PairMap. */
const MISSING = -3;

/**
 * (left, right) symbol pair → value, open addressing over Int32Arrays (a Map keyed by left·2^26 + right hashes heap
 * numbers and was the trainer's hottest spot). Deleted slots become tombstones.
 */
class PairMap {
  #a = new Int32Array(1 << 16).fill(-1);
  #b = new Int32Array(1 << 16);
  #v = new Int32Array(1 << 16);
  #used = 0;

  #slot(a: number, b: number, mask: number): number {
    return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) >>> 0 & mask;
  }

  get(a: number, b: number): number {
    const mask = this.#a.length - 1;
    for (let h = this.#slot(a, b, mask);; h = (h + 1) & mask) {
      const k = this.#a[h];
      if (k === -1) return MISSING;
      if (k === a && this.#b[h] === b) return this.#v[h];
    }
  }

  set(a: number, b: number, v: number): void {
    if ((this.#used + 1) * 2 > this.#a.length) this.#grow();
    const mask = this.#a.length - 1;
    let tomb = -1;
    for (let h = this.#slot(a, b, mask);; h = (h + 1) & mask) {
      const k = this.#a[h];
      if (k === -1) {
        const at = tomb >= 0 ? tomb : h;
        if (tomb < 0) this.#used++;
        this.#a[at] = a, this.#b[at] = b, this.#v[at] = v;
        return;
      }
      if (k === -2 && tomb < 0) tomb = h;
      else if (k === a && this.#b[h] === b) {
        this.#v[h] = v;
        return;
      }
    }
  }

  delete(a: number, b: number): void {
    const mask = this.#a.length - 1;
    for (let h = this.#slot(a, b, mask);; h = (h + 1) & mask) {
      const k = this.#a[h];
      if (k === -1) return;
      if (k === a && this.#b[h] === b) {
        this.#a[h] = -2; // tombstone: probes continue past it
        return;
      }
    }
  }

  #grow(): void {
    const oa = this.#a, ob = this.#b, ov = this.#v;
    this.#a = new Int32Array(oa.length * 2).fill(-1);
    this.#b = new Int32Array(oa.length * 2);
    this.#v = new Int32Array(oa.length * 2);
    this.#used = 0;
    for (let i = 0; i < oa.length; i++) if (oa[i] >= 0) this.set(oa[i], ob[i], ov[i]);
  }
}

/** Trains the merges; returns the pieces in vocabulary order (merges, then required characters). */
export function trainBpe(input: BpeTrainInput): ScoredPiece[] {
  const { texts, freqs } = input;
  // ---- slots
  let nSlots = 0;
  for (const t of texts) nSlots += t.length; // upper bound (UTF-16 units ≥ code points)
  const sym = new Int32Array(nSlots);
  const next = new Int32Array(nSlots);
  const prev = new Int32Array(nSlots);
  const unitOf = new Int32Array(nSlots);

  // ---- symbols
  const symLeft: number[] = [];
  const symRight: number[] = [];
  const symStr: string[] = [];
  const symLen: number[] = [];
  const symCps: number[][] = [];
  const symUnk: boolean[] = [];
  const charSym = new Map<number, number>();
  /** SentencePiece's symbols_cache_: its iteration order decides the active set (see updateActive). */
  const cache = new UnorderedMapOrder();
  const fpHi: number[] = [], fpLo: number[] = [];
  const fpOut = new Uint32Array(2);
  const newSymbol = (left: number, right: number, str: string, cps: number[], unk: boolean): number => {
    if (left < 0) fpOut[0] = 0, fpOut[1] = cps[0];
    else fingerprintCat32(fpHi[left], fpLo[left], fpHi[right], fpLo[right], fpOut);
    fpHi.push(fpOut[0]);
    fpLo.push(fpOut[1]);
    cache.insert(fpHi.length - 1, fpOut[0], fpOut[1]);
    symLeft.push(left);
    symRight.push(right);
    symStr.push(str);
    symLen.push(cps.length);
    symCps.push(cps);
    symUnk.push(unk);
    freq.push(0);
    occ.push(null);
    alive.push(true);
    return symStr.length - 1;
  };
  const freq: number[] = [];
  const occ: (number[] | null)[] = [];
  const alive: boolean[] = [];

  let k = 0;
  for (let u = 0; u < texts.length; u++) {
    const t = texts[u];
    const begin = k;
    for (const ch of t) {
      const c = ch.codePointAt(0)!;
      let s = charSym.get(c);
      if (s === undefined) {
        s = newSymbol(-1, -1, ch, [c], c === UNK_CHAR);
        charSym.set(c, s);
      }
      sym[k] = s;
      unitOf[k] = u;
      prev[k] = k === begin ? -1 : k - 1;
      next[k] = k + 1;
      k++;
    }
    if (k > begin) next[k - 1] = -1;
  }

  // ---- pairs: key (left, right) → pair symbol (or -1: not a valid piece)
  const pairOf = new PairMap();
  /** Keys whose symbol was dropped as a duplicate string: their counts are recomputed, never updated in place. */
  const reborn = new Set<number>();
  const dirty = new Set<number>();
  const active = new Set<number>();

  const getPair = (a: number, b: number): number => {
    if (symUnk[a] || symUnk[b]) return -1;
    const p = pairOf.get(a, b);
    if (p !== MISSING) return p;
    const cps = symCps[a].concat(symCps[b]);
    let id = -1;
    if (input.isValid(cps)) {
      id = newSymbol(a, b, symStr[a] + symStr[b], cps, false);
      occ[id] = [];
    }
    pairOf.set(a, b, id);
    return id;
  };
  // Exact-count mode for pairs whose occurrences may overlap ("AA") or whose key was reborn.
  const recount = (p: number): boolean => p >= 0 && (symLeft[p] === symRight[p] || reborn.has(pairKey(p)));
  const pairKey = (p: number) => symLeft[p] * 2 ** 26 + symRight[p];

  const addOcc = (left: number, w: number) => {
    const r = next[left];
    const p = getPair(sym[left], sym[r]);
    if (p < 0) return;
    active.add(p);
    occ[p]!.push(left);
    if (recount(p)) {
      dirty.add(p);
      freq[p] = 0;
    } else freq[p] += w;
  };
  const removeOcc = (left: number, w: number, best: number) => {
    // SentencePiece's ResetFreq looks the pair up with GetPairSymbol, which re-creates a dropped duplicate's key.
    const p = getPair(sym[left], sym[next[left]]);
    if (p < 0 || p === best || !alive[p]) return;
    if (recount(p)) {
      dirty.add(p);
      freq[p] = 0;
    } else freq[p] -= w;
  };

  /** SentencePiece's ComputeFreq: valid occurrences, left to right, skipping one that overlaps the previous. */
  const computeFreq = (p: number) => {
    const list = occ[p]!;
    list.sort((x, y) => x - y);
    const a = symLeft[p], b = symRight[p];
    let f = 0;
    let prevRight = -1;
    let w = 0;
    for (let i = 0; i < list.length; i++) {
      const l = list[i];
      const r = next[l];
      if (sym[l] !== a || r < 0 || sym[r] !== b || l === prevRight) {
        prevRight = -1;
        continue;
      }
      if (i > 0 && l === list[i - 1]) continue;
      list[w++] = l;
      f += freqs[unitOf[l]];
      prevRight = r;
    }
    list.length = w;
    freq[p] = f;
  };

  for (let i = 0; i < k; i++) {
    if (next[i] >= 0) addOcc(i, freqs[unitOf[i]]);
  }

  // Recounts happen when SentencePiece does them (the overlap rule makes the result depend on when): for the
  // active pairs before each choice, for all pairs when the active set is rebuilt.
  const flush = (onlyActive: boolean) => {
    for (const p of dirty) {
      if (onlyActive && !active.has(p)) continue;
      computeFreq(p);
      dirty.delete(p);
    }
  };

  // ---- SentencePiece's active set: every 100 pieces, the top max(1000, 5% of all symbols) pairs by frequency as
  // std::partial_sort picks them from symbols_cache_ order; new pairs join it as they appear. The best pair is
  // searched only there. Ties at the cut depend on that order, which is why it is reproduced exactly.
  const updateActive = () => {
    flush(false);
    const bigrams: number[] = [];
    cache.forEach((id) => {
      if (symLeft[id] >= 0) bigrams.push(id);
    });
    const cut = Math.trunc(Math.fround(Math.fround(cache.size) * Math.fround(0.05)));
    const size = Math.min(Math.max(1000, cut), bigrams.length);
    partialSortSelect(bigrams, size, (a, b) => freq[a] > freq[b]);
    active.clear();
    for (let i = 0; i < size; i++) active.add(bigrams[i]);
  };
  // freq desc, then fewer characters, then the smaller string; full ties (same string): the older symbol
  const better = (a: number, b: number): boolean => {
    if (freq[a] !== freq[b]) return freq[a] > freq[b];
    if (symLen[a] !== symLen[b]) return symLen[a] < symLen[b];
    const c = compareCodePoints(symStr[a], symStr[b]);
    return c !== 0 ? c < 0 : a < b;
  };

  const pieces: ScoredPiece[] = [];
  const taken = new Set<string>();
  const target = input.nMerges;
  while (pieces.length < target) {
    if (pieces.length % 100 === 0) updateActive();
    flush(true);
    let best = -1;
    for (const p of active) if (best < 0 || better(p, best)) best = p;
    if (best < 0) break; // SentencePiece: "No valid symbol found"
    const str = symStr[best];
    // SentencePiece removes the chosen pair from its cache after merging it (a duplicate string: right away).
    const retire = () => {
      alive[best] = false;
      active.delete(best);
      cache.erase(best);
      pairOf.delete(symLeft[best], symRight[best]);
    };
    if (taken.has(str)) {
      retire();
      reborn.add(pairKey(best));
      continue;
    }
    taken.add(str);
    pieces.push([str, -pieces.length]);
    if (input.onProgress && pieces.length % 100 === 0) input.onProgress(pieces.length, target);

    // Merge every counted occurrence, left to right.
    if (recount(best)) computeFreq(best);
    const list = occ[best]!;
    if (!recount(best)) list.sort((x, y) => x - y);
    const a = symLeft[best], b = symRight[best];
    for (const l of list) {
      if (sym[l] !== a) continue;
      const r = next[l];
      if (r < 0 || sym[r] !== b) continue;
      const w = freqs[unitOf[l]];
      const p = prev[l], n = next[r];
      if (p >= 0) removeOcc(p, w, best);
      if (n >= 0) removeOcc(r, w, best);
      sym[l] = best;
      sym[r] = -1;
      next[l] = n;
      if (n >= 0) prev[n] = l;
      if (p >= 0) addOcc(p, w);
      if (n >= 0) addOcc(l, w);
    }
    occ[best] = null;
    retire();
  }
  input.onProgress?.(pieces.length, target);

  for (const c of input.requiredChars.keys()) pieces.push([String.fromCodePoint(c), -pieces.length]);
  return pieces;
}
