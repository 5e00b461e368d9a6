/**
 * BPE trainer with SentencePiece's rules: start from characters; repeatedly take the adjacent pair with the highest
 * frequency (ties: fewer characters, then the smaller string by UTF-8 bytes), merge it everywhere left to right
 * ("AAA" counts and merges one "AA"), give it score −(number of pieces so far); a pair whose string was already
 * taken through another split is dropped without merging; pairs that would be invalid pieces never compete. The
 * required characters follow, by count. SentencePiece scans only a refreshed "active" top-5% set; taking the global
 * best from a heap is the same choice whenever that set holds the best pair (always, in our tests).
 * see: google/sentencepiece src/bpe_model_trainer.cc Trainer::Train, ComputeFreq (v0.1.97)
 *
 * Data layout (one slot per character of every unit, units back to back):
 * 1. sym[i]: the symbol at slot i, or -1 once merged into its left neighbour; next[i] / prev[i]: the neighbouring
 *    live slot in the same unit, or -1.
 * 2. Symbols: characters first, then pairs; a pair has left/right symbols, its string, length in characters,
 *    frequency (sum of unit frequencies over its counted occurrences) and the slots where it was seen (may be stale).
 */
import { compareCodePoints, UNK_CHAR } from "./corpus.ts";

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

const KEY_SHIFT = 2 ** 26;

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
  const newSymbol = (left: number, right: number, str: string, cps: number[], unk: boolean): number => {
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
  const pairOf = new Map<number, number>();
  /** Keys whose symbol was dropped as a duplicate string: their counts are recomputed, never updated in place. */
  const reborn = new Set<number>();
  const dirty = new Set<number>();
  const changed = new Set<number>();

  const getPair = (a: number, b: number): number => {
    if (symUnk[a] || symUnk[b]) return -1;
    const key = a * KEY_SHIFT + b;
    const p = pairOf.get(key);
    if (p !== undefined) return p;
    const cps = symCps[a].concat(symCps[b]);
    let id = -1;
    if (input.isValid(cps)) {
      id = newSymbol(a, b, symStr[a] + symStr[b], cps, false);
      occ[id] = [];
    }
    pairOf.set(key, id);
    return id;
  };
  // Exact-count mode for pairs whose occurrences may overlap ("AA") or whose key was reborn.
  const recount = (p: number): boolean => p >= 0 && (symLeft[p] === symRight[p] || reborn.has(pairKey(p)));
  const pairKey = (p: number) => symLeft[p] * KEY_SHIFT + symRight[p];

  const addOcc = (left: number, w: number) => {
    const r = next[left];
    const p = getPair(sym[left], sym[r]);
    if (p < 0) return;
    occ[p]!.push(left);
    if (recount(p)) dirty.add(p);
    else {
      freq[p] += w;
      changed.add(p);
    }
  };
  const removeOcc = (left: number, w: number, best: number) => {
    const key = sym[left] * KEY_SHIFT + sym[next[left]];
    const p = pairOf.get(key);
    if (p === undefined || p < 0 || p === best || !alive[p]) return;
    if (recount(p)) dirty.add(p);
    else {
      freq[p] -= w;
      changed.add(p);
    }
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

  // ---- heap of (pair) ordered by freq desc, length asc, string asc; entries carry the freq they were pushed with
  const heapId: number[] = [];
  const heapFreq: number[] = [];
  const better = (i: number, j: number): boolean => {
    const fi = heapFreq[i], fj = heapFreq[j];
    if (fi !== fj) return fi > fj;
    const a = heapId[i], b = heapId[j];
    if (symLen[a] !== symLen[b]) return symLen[a] < symLen[b];
    return compareCodePoints(symStr[a], symStr[b]) < 0;
  };
  const swap = (i: number, j: number) => {
    const t = heapId[i];
    heapId[i] = heapId[j];
    heapId[j] = t;
    const f = heapFreq[i];
    heapFreq[i] = heapFreq[j];
    heapFreq[j] = f;
  };
  const push = (p: number) => {
    heapId.push(p);
    heapFreq.push(freq[p]);
    let i = heapId.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!better(i, parent)) break;
      swap(i, parent);
      i = parent;
    }
  };
  const pop = () => {
    const last = heapId.length - 1;
    swap(0, last);
    heapId.pop();
    heapFreq.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heapId.length && better(l, m)) m = l;
      if (r < heapId.length && better(r, m)) m = r;
      if (m === i) break;
      swap(i, m);
      i = m;
    }
  };
  const flush = () => {
    for (const p of dirty) computeFreq(p);
    for (const p of dirty) changed.add(p);
    dirty.clear();
    for (const p of changed) if (alive[p]) push(p);
    changed.clear();
  };
  flush();

  const pieces: ScoredPiece[] = [];
  const taken = new Set<string>();
  const target = input.nMerges;
  while (pieces.length < target) {
    // The best live pair whose heap entry is current.
    let best = -1;
    while (heapId.length > 0) {
      const p = heapId[0], f = heapFreq[0];
      pop();
      if (alive[p] && f === freq[p]) {
        best = p;
        break;
      }
    }
    if (best < 0) break; // nothing left to merge (SentencePiece: "No valid symbol found")
    alive[best] = false;
    pairOf.delete(pairKey(best));
    const str = symStr[best];
    if (taken.has(str)) {
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
    flush();
  }
  input.onProgress?.(pieces.length, target);

  for (const c of input.requiredChars.keys()) pieces.push([String.fromCodePoint(c), -pieces.length]);
  return pieces;
}
