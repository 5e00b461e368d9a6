/**
 * UNIGRAM trainer with SentencePiece's algorithm: seed pieces = every character plus the frequent repeated
 * substrings (right-branching, as the suffix-tree internal nodes SentencePiece enumerates), scored by
 * occurrences × length; then rounds of EM (forward–backward expected counts, the Bayesian M-step
 * digamma(count) − digamma(total), pieces with expected count < 0.5 dropped) and pruning (drop the pieces whose
 * removal costs the least likelihood, keeping max(1.1 × vocab, shrinking_factor × size)); finally the required
 * characters and the best-scored pieces up to the vocabulary size.
 * SentencePiece's own arithmetic and quirks are reproduced where they decide which pieces survive: float32 lattice
 * (LogSumExp with its 50-nat cut-off), M-step and pruning loss; unknown nodes counted for piece 0 (TRAINER_UNK_ID);
 * the pruning's logsum_alt using the number of pieces; equal seed scores in suffix-tree order. On our test corpora
 * the vocabulary equals spm_train's (single-threaded build) piece for piece; scores can differ in the last float
 * digit (SentencePiece sums per thread). Substrings are counted over whitespace-split units (a piece never spans ▁;
 * what follows a unit in its sentences is kept to tell right-branching substrings).
 * see: google/sentencepiece src/unigram_model_trainer.cc (v0.1.97), src/unigram_model.cc (Lattice)
 */
import { compareCodePoints, UNK_CHAR, WS_CHAR } from "./corpus.ts";
import type { ScoredPiece } from "./bpe_trainer.ts";
import type { TrainerConfig } from "./trainer_spec.ts";
import type { TrainProgress } from "./trainer.ts";
import { type ExtendState, pieceExtender } from "./piece_validator.ts";

export interface UnigramTrainInput {
  texts: string[];
  freqs: number[];
  /** Corpus.followers: what follows each unit in the sentences (bit 0 ▁, bit 1 the end). */
  followers: Uint8Array;
  requiredChars: Map<number, number>;
  /** Pieces wanted besides the meta pieces. */
  vocabSize: number;
  cfg: TrainerConfig;
  isValid: (cps: ArrayLike<number>) => boolean;
  onProgress?: TrainProgress;
}

const UNK_PENALTY = 10;
const f32 = Math.fround;
/**
 * The id SentencePiece's TrainerModel gives unknown nodes: its unk_id_ is never set and defaults to 0, so their
 * expected counts and Viterbi counts go to whatever piece is first. Reproduced, as it shapes which pieces survive.
 */
const TRAINER_UNK_ID = 0;
const EXPECTED_FREQUENCY_THRESHOLD = 0.5;
const MIN_SCORE_PENALTY_DELTA = 0.0001;

function digamma(x: number): number {
  let result = 0;
  for (; x < 7; ++x) result -= 1 / x;
  x -= 0.5;
  const xx = 1 / x, xx2 = xx * xx, xx4 = xx2 * xx2;
  return result + Math.log(x) + xx2 / 24 - (7 / 960) * xx4 + (31 / 8064) * xx4 * xx2 - (127 / 30720) * xx4 * xx4;
}

/** Code points of each unit. */
function toCodePoints(texts: string[]): Int32Array[] {
  return texts.map((t) => {
    const out = new Int32Array(t.length);
    let n = 0;
    for (let i = 0; i < t.length; i++) {
      const c = t.codePointAt(i)!;
      out[n++] = c;
      if (c > 0xffff) i++;
    }
    return out.subarray(0, n);
  });
}

/**
 * A code point trie over the current pieces: transitions (node, code point) → child in an open-addressing table of
 * Int32Arrays (a Map keyed by node·0x110000 + c hashes heap numbers and dominated the E-step); node value = piece
 * index or -1.
 */
class PieceTrie {
  readonly #node: Int32Array;
  readonly #cp: Int32Array;
  readonly #child: Int32Array;
  readonly #mask: number;
  readonly value: number[] = [-1];

  constructor(pieces: Int32Array[]) {
    let total = 1;
    for (const p of pieces) total += p.length;
    let cap = 16;
    while (cap < total * 2) cap *= 2;
    this.#node = new Int32Array(cap).fill(-1);
    this.#cp = new Int32Array(cap);
    this.#child = new Int32Array(cap);
    this.#mask = cap - 1;
    pieces.forEach((cps, id) => {
      let node = 0;
      for (const c of cps) {
        let next = this.child(node, c);
        if (next < 0) {
          next = this.value.length;
          this.value.push(-1);
          let h = this.#slot(node, c);
          while (this.#node[h] !== -1) h = (h + 1) & this.#mask;
          this.#node[h] = node, this.#cp[h] = c, this.#child[h] = next;
        }
        node = next;
      }
      this.value[node] = id;
    });
  }

  #slot(node: number, c: number): number {
    return ((Math.imul(node, 0x9e3779b1) ^ Math.imul(c + 1, 0x85ebca77)) >>> 0) & this.#mask;
  }

  child(node: number, c: number): number {
    for (let h = this.#slot(node, c);; h = (h + 1) & this.#mask) {
      const k = this.#node[h];
      if (k === -1) return -1;
      if (k === node && this.#cp[h] === c) return this.#child[h];
    }
  }
}

/** The model during training: pieces, scores, a trie, and lattice routines over one unit. */
class Model {
  readonly pieces: string[];
  readonly scores: Float64Array;
  readonly cps: Int32Array[];
  readonly trie: PieceTrie;
  readonly minScore: number;
  readonly maxLen: number;
  // scratch (per unit): the lattice's nodes as parallel arrays, nNodes used, grouped by start position
  nNodes = 0;
  nodeStart = new Int32Array(1024);
  nodeEnd = new Int32Array(1024);
  nodeId = new Int32Array(1024);
  nodeScore = new Float64Array(1024);
  #best = new Float32Array(256);
  #back = new Int32Array(256);

  #push(b: number, e: number, id: number, score: number): void {
    const k = this.nNodes++;
    if (k >= this.nodeStart.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T): T => {
        const next = new (a.constructor as { new (n: number): T })(a.length * 2);
        next.set(a);
        return next;
      };
      this.nodeStart = grow(this.nodeStart);
      this.nodeEnd = grow(this.nodeEnd);
      this.nodeId = grow(this.nodeId);
      this.nodeScore = grow(this.nodeScore);
    }
    this.nodeStart[k] = b;
    this.nodeEnd[k] = e;
    this.nodeId[k] = id;
    this.nodeScore[k] = score;
  }

  constructor(pieces: [string, number][]) {
    this.pieces = pieces.map((p) => p[0]);
    this.scores = Float64Array.from(pieces, (p) => p[1]);
    this.cps = toCodePoints(this.pieces);
    this.trie = new PieceTrie(this.cps);
    let min = Infinity, maxLen = 1;
    for (let i = 0; i < pieces.length; i++) {
      min = Math.min(min, Math.fround(pieces[i][1]));
      maxLen = Math.max(maxLen, this.cps[i].length);
    }
    this.minScore = min;
    this.maxLen = maxLen;
  }

  /** Fills the node arrays for `s` (an unk node where no one-character piece matches); `skip` is excluded. */
  populate(s: Int32Array, skip = -1): void {
    this.nNodes = 0;
    const unk = f32(this.minScore - UNK_PENALTY);
    for (let b = 0; b < s.length; b++) {
      let node = 0;
      let single = false;
      for (let e = b; e < s.length; e++) {
        node = this.trie.child(node, s[e]);
        if (node < 0) break;
        const id = this.trie.value[node];
        if (id < 0 || id === skip) continue;
        this.#push(b, e + 1, id, this.scores[id]);
        if (e === b) single = true;
      }
      if (!single) {
        this.#push(b, b + 1, TRAINER_UNK_ID, unk);
      }
    }
  }

  /** Viterbi over the populated nodes of a unit of length n: the node indices of the best path. */
  viterbi(n: number): number[] {
    if (this.#best.length < n + 1) {
      this.#best = new Float32Array(2 * (n + 1));
      this.#back = new Int32Array(2 * (n + 1));
    }
    const best = this.#best, back = this.#back;
    best.fill(-Infinity, 0, n + 1);
    back.fill(-1, 0, n + 1);
    best[0] = 0;
    // nodes are grouped by start in increasing order, so a forward sweep sees best[start] final
    for (let k = 0; k < this.nNodes; k++) {
      const b = this.nodeStart[k], e = this.nodeEnd[k];
      const sc = f32(best[b] + this.nodeScore[k]);
      if (sc > best[e]) {
        best[e] = sc;
        back[e] = k;
      }
    }
    const path: number[] = [];
    for (let e = n; e > 0;) {
      const k = back[e];
      if (k < 0) return [];
      path.push(k);
      e = this.nodeStart[k];
    }
    return path.reverse();
  }
}

const NO_FOLLOWER = -3;

/**
 * The order esaxx emits suffix-tree internal nodes in (SentencePiece breaks equal seed scores by it): increasing
 * right end of the suffix-array interval, so code point order, except that a string comes after its extensions.
 */
function suffixTreeOrder(a: string, b: string): number {
  if (a.startsWith(b)) return a.length === b.length ? 0 : -1;
  if (b.startsWith(a)) return 1;
  return compareCodePoints(a, b);
}

/** A trie that grows as substrings are seen: node = substring; per-node counters for the seed statistics. */
class GrowingTrie {
  #key = new Int32Array(1 << 16).fill(-1); // parent node, -1 = empty slot
  #cp = new Int32Array(1 << 16);
  #child = new Int32Array(1 << 16);
  parent = new Int32Array(1 << 16);
  cp = new Int32Array(1 << 16);
  depth = new Int32Array(1 << 16);
  count = new Float64Array(1 << 16);
  follow = new Int32Array(1 << 16).fill(NO_FOLLOWER);
  branching = new Uint8Array(1 << 16);
  size = 1; // node 0 is the root (the empty string)

  #growNodes(): void {
    const n = this.parent.length * 2;
    const g = <T extends Int32Array | Float64Array | Uint8Array>(a: T, fill = 0): T => {
      const next = new (a.constructor as { new (n: number): T })(n);
      if (fill) next.fill(fill);
      next.set(a);
      return next;
    };
    this.parent = g(this.parent);
    this.cp = g(this.cp);
    this.depth = g(this.depth);
    this.count = g(this.count);
    this.follow = g(this.follow, NO_FOLLOWER);
    this.branching = g(this.branching);
  }

  #slot(node: number, c: number, mask: number): number {
    return ((Math.imul(node, 0x9e3779b1) ^ Math.imul(c + 1, 0x85ebca77)) >>> 0) & mask;
  }

  /** The child of `node` along `c`, created when missing. */
  step(node: number, c: number): number {
    let mask = this.#key.length - 1;
    for (let h = this.#slot(node, c, mask);; h = (h + 1) & mask) {
      const k = this.#key[h];
      if (k === node && this.#cp[h] === c) return this.#child[h];
      if (k !== -1) continue;
      const id = this.size++;
      if (id >= this.parent.length) this.#growNodes();
      this.parent[id] = node, this.cp[id] = c, this.depth[id] = this.depth[node] + 1;
      if (id * 2 > this.#key.length) {
        this.#grow();
        mask = this.#key.length - 1;
        h = this.#slot(node, c, mask);
        while (this.#key[h] !== -1) h = (h + 1) & mask;
      }
      this.#key[h] = node, this.#cp[h] = c, this.#child[h] = id;
      return id;
    }
  }

  #grow(): void {
    const ok = this.#key, oc = this.#cp, och = this.#child;
    const cap = ok.length * 2, mask = cap - 1;
    this.#key = new Int32Array(cap).fill(-1);
    this.#cp = new Int32Array(cap);
    this.#child = new Int32Array(cap);
    for (let i = 0; i < ok.length; i++) {
      if (ok[i] === -1) continue;
      let h = this.#slot(ok[i], oc[i], mask);
      while (this.#key[h] !== -1) h = (h + 1) & mask;
      this.#key[h] = ok[i], this.#cp[h] = oc[i], this.#child[h] = och[i];
    }
  }

  /** The substring a node stands for. */
  text(node: number): string {
    const out: number[] = [];
    for (let n = node; n > 0; n = this.parent[n]) out.push(this.cp[n]);
    return String.fromCodePoint(...out.reverse());
  }
}

/** Seed pieces: characters (by count) then repeated right-branching substrings by occurrences × length. */
function seedPieces(units: Int32Array[], freqs: number[], input: UnigramTrainInput): [string, number][] {
  const maxLen = input.cfg.maxSentencepieceLength;
  const chars = new Map<number, number>();
  // Every valid substring of ≥ 2 characters as a node of a growing trie: occurrences, the first following character
  // (or -2 = end) and whether a different one was seen (right-branching).
  const trie = new GrowingTrie();
  const buf: number[] = [];
  const extend = pieceExtender(input.cfg);
  const st: ExtendState = { length: 0, prevScript: -1, hasDigit: false, hasWs: false };
  for (let u = 0; u < units.length; u++) {
    const s = units[u], f = freqs[u];
    const fo = input.followers[u];
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (c !== UNK_CHAR && c !== 0) chars.set(c, (chars.get(c) ?? 0) + f);
    }
    for (let i = 0; i < s.length; i++) {
      buf.length = 0;
      buf.push(s[i]);
      st.length = 0, st.prevScript = -1, st.hasDigit = false, st.hasWs = false;
      const firstOk = extend ? extend(st, s[i]) : true;
      let node = trie.step(0, s[i]);
      for (let j = i + 1; j < s.length && j - i < maxLen; j++) {
        buf.push(s[j]);
        // from two characters on the piece must be valid (the rules are prefix-closed)
        if (extend ? !firstOk || !extend(st, s[j]) : !input.isValid(buf)) break;
        node = trie.step(node, s[j]);
        // At the unit's end the sentence continues with ▁ (another word) or ends: both seen = branching.
        const atEnd = j + 1 >= s.length;
        const nextC = !atEnd ? s[j + 1] : fo === 1 ? WS_CHAR : -2;
        trie.count[node] += f;
        if (trie.follow[node] === NO_FOLLOWER) trie.follow[node] = nextC;
        else if (trie.follow[node] !== nextC) trie.branching[node] = 1;
        if (atEnd && fo === 3) trie.branching[node] = 1;
      }
    }
  }
  const seeds: [string, number][] = [...chars.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .map(([c, n]) => [String.fromCodePoint(c), n]);
  const cands: [string, number][] = [];
  for (let node = 1; node < trie.size; node++) {
    // A suffix-tree internal node: seen at least twice and followed by two different characters (or ends).
    if (trie.count[node] >= 2 && trie.branching[node]) {
      cands.push([trie.text(node), trie.count[node] * trie.depth[node]]);
    }
  }
  // Equal scores keep SentencePiece's suffix-tree node order: by string, a longer string before its prefix.
  cands.sort((a, b) => b[1] - a[1] || suffixTreeOrder(a[0], b[0]));
  for (const c of cands) {
    if (seeds.length >= input.cfg.seedSentencepieceSize) break;
    seeds.push(c);
  }
  // ToLogProb in float, as SentencePiece (its pieces hold float scores)
  let sum = 0;
  for (const s of seeds) sum = f32(sum + f32(s[1]));
  const logsum = f32(Math.log(sum));
  for (const s of seeds) s[1] = f32(Math.log(f32(s[1])) - logsum);
  return seeds;
}

/** SentencePiece's float LogSumExp(x, y, init_mode) with its 50-nat cut-off. */
function logSumExp(x: number, y: number, init: boolean): number {
  if (init) return y;
  const vmin = Math.min(x, y), vmax = Math.max(x, y);
  if (vmax > f32(vmin + 50)) return vmax;
  return f32(vmax + Math.log(Math.exp(f32(vmin - vmax)) + 1.0));
}

/**
 * E-step: expected counts of each piece (forward–backward over each unit's lattice), in float32 as SentencePiece's
 * Lattice::PopulateMarginal, so that the pieces falling under the 0.5 threshold are the same.
 */
function eStep(model: Model, units: Int32Array[], freqs: number[], nThreads: number): Float64Array {
  // SentencePiece's threads: unit u goes to thread u mod n, each sums into its own float vector, then the vectors
  // are added into the first in thread order. Reproduced so the float sums (and what falls under 0.5) match.
  const perThread = Array.from({ length: nThreads }, () => new Float64Array(model.pieces.length));
  // scratch, grown as needed: nodes ending at each position as linked lists (head/tail/next, insertion order)
  let endHead = new Int32Array(256), endTail = new Int32Array(256), beginFirst = new Int32Array(256);
  let beginLast = new Int32Array(256);
  let endNext = new Int32Array(1024), alphaPos = new Float32Array(256), betaPos = new Float32Array(256);
  for (let u = 0; u < units.length; u++) {
    const expected = perThread[u % nThreads];
    const s = units[u], n = s.length, f = f32(freqs[u]);
    model.populate(s);
    const m = model.nNodes;
    const st = model.nodeStart, en = model.nodeEnd, sc = model.nodeScore;
    if (endHead.length < n + 1) {
      endHead = new Int32Array(2 * (n + 1)), endTail = new Int32Array(2 * (n + 1));
      beginFirst = new Int32Array(2 * (n + 1)), beginLast = new Int32Array(2 * (n + 1));
    }
    if (endNext.length < m) endNext = new Int32Array(2 * m);
    endHead.fill(-1, 0, n + 1);
    endTail.fill(-1, 0, n + 1);
    for (let k = 0; k < m; k++) {
      endNext[k] = -1;
      const e = en[k];
      if (endTail[e] < 0) endHead[e] = k;
      else endNext[endTail[e]] = k;
      endTail[e] = k;
    }
    // alpha of a node = the forward sum at its start position: computed once per position (the same float
    // operations in the same order as SentencePiece's per-node loop, so the same values)
    if (alphaPos.length < n + 1) alphaPos = new Float32Array(2 * (n + 1)), betaPos = new Float32Array(2 * (n + 1));
    alphaPos[0] = 0; // only BOS (score 0, alpha 0) ends at 0
    for (let b = 1; b <= n; b++) {
      let a = 0, first = true;
      for (let l = endHead[b]; l >= 0; l = endNext[l]) {
        a = logSumExp(a, f32(sc[l] + alphaPos[st[l]]), first);
        first = false;
      }
      alphaPos[b] = a;
    }
    const z = alphaPos[n];
    // nodes starting at each position are contiguous and in insertion order
    beginFirst.fill(-1, 0, n + 1);
    beginLast.fill(-2, 0, n + 1);
    for (let k = 0; k < m; k++) {
      if (beginFirst[st[k]] < 0) beginFirst[st[k]] = k;
      beginLast[st[k]] = k;
    }
    betaPos[n] = 0; // only EOS starts at n
    for (let e = n - 1; e >= 0; e--) {
      let bsum = 0, firstR = true;
      for (let r = beginFirst[e]; r <= beginLast[e]; r++) {
        bsum = logSumExp(bsum, f32(sc[r] + betaPos[en[r]]), firstR);
        firstR = false;
      }
      betaPos[e] = bsum;
    }
    for (let k = 0; k < m; k++) {
      const id = model.nodeId[k];
      if (id < 0) continue;
      const x = f32(f32(f32(alphaPos[st[k]] + sc[k]) + betaPos[en[k]]) - z);
      expected[id] = f32(expected[id] + f * Math.exp(x));
    }
  }
  const expected = perThread[0];
  for (let t = 1; t < nThreads; t++) {
    const e = perThread[t];
    for (let k = 0; k < expected.length; k++) expected[k] = f32(expected[k] + e[k]);
  }
  return expected;
}

/** M-step: drop rare pieces, Bayesian re-estimation of the scores (float32 as SentencePiece). */
function mStep(model: Model, expected: Float64Array): [string, number][] {
  const out: [string, number][] = [];
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const freq = f32(expected[i]);
    if (freq < EXPECTED_FREQUENCY_THRESHOLD) continue;
    out.push([model.pieces[i], freq]);
    sum = f32(sum + freq);
  }
  const logsum = f32(digamma(sum));
  for (const p of out) p[1] = f32(digamma(p[1]) - logsum);
  return out;
}

/** Pruning: keep the pieces whose removal would cost the most likelihood. */
function prune(
  model: Model,
  units: Int32Array[],
  freqs: number[],
  desired: number,
  shrink: number,
  nThreads: number,
): [string, number][] {
  const size = model.pieces.length;
  const alwaysKeep = new Uint8Array(size).fill(1);
  const alternatives: number[][] = Array.from({ length: size }, () => []);
  for (let i = 0; i < size; i++) {
    const s = model.cps[i];
    model.populate(s);
    const best = model.viterbi(s.length);
    if (best.length >= 2) {
      alwaysKeep[i] = 0; // its Viterbi path already splits it
      continue;
    }
    if (s.length === 1) continue; // no second segmentation
    model.populate(s, i);
    const alt = model.viterbi(s.length);
    if (alt.length === 0) continue;
    for (const k of alt) alternatives[i].push(model.nodeId[k]);
  }
  // Viterbi counts per SentencePiece thread (unit u → thread u mod n), merged in thread order, in float32.
  const freqT = Array.from({ length: nThreads }, () => new Float64Array(size));
  const invT: number[][][] = Array.from({ length: nThreads }, () => Array.from({ length: size }, () => []));
  const vsumT = new Float64Array(nThreads);
  for (let u = 0; u < units.length; u++) {
    const t = u % nThreads;
    const s = units[u];
    model.populate(s);
    vsumT[t] = f32(vsumT[t] + freqs[u]);
    for (const k of model.viterbi(s.length)) {
      const id = model.nodeId[k];
      if (id < 0) continue;
      freqT[t][id] = f32(freqT[t][id] + freqs[u]);
      invT[t][id].push(u);
    }
  }
  let vsum = 0;
  const freq = new Float64Array(size);
  const inverted: number[][] = Array.from({ length: size }, () => []);
  for (let t = 0; t < nThreads; t++) {
    vsum = f32(vsum + vsumT[t]);
    for (let i = 0; i < size; i++) {
      freq[i] = f32(freq[i] + freqT[t][i]);
      for (const u of invT[t][i]) inverted[i].push(u);
    }
  }
  // float32 arithmetic as SentencePiece (its losses tie in float, and ties go to the lower index)
  let sumD = 0;
  for (let i = 0; i < size; i++) sumD += freq[i];
  const sum = f32(sumD);
  const logsum = f32(Math.log(sum));
  const kept: [string, number][] = [];
  const candidates: [number, number][] = [];
  for (let i = 0; i < size; i++) {
    if (freq[i] === 0 || !alwaysKeep[i]) continue;
    if (alternatives[i].length === 0) {
      kept.push([model.pieces[i], model.scores[i]]);
      continue;
    }
    let F = 0;
    for (const u of inverted[i]) F = f32(F + freqs[u]);
    F = f32(F / f32(vsum));
    const logprobSp = f32(Math.log(freq[i]) - logsum);
    // SentencePiece writes alternatives.size() here, the number of pieces, not alternatives[i].size(): reproduced,
    // since it decides which pieces survive.
    const logsumAlt = f32(Math.log(f32(sum + f32(freq[i] * f32(size - 1)))));
    let logprobAlt = 0;
    for (const n of alternatives[i]) logprobAlt = f32(logprobAlt + (Math.log(f32(freq[n] + freq[i])) - logsumAlt));
    candidates.push([i, f32(F * f32(logprobSp - logprobAlt))]);
  }
  const prunedSize = Math.max(desired, Math.trunc(shrink * size));
  candidates.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  for (const [i] of candidates) {
    if (kept.length >= prunedSize) break;
    kept.push([model.pieces[i], model.scores[i]]);
  }
  return kept;
}

/** Trains the unigram pieces (in vocabulary order: score desc, then string). */
export async function trainUnigram(input: UnigramTrainInput): Promise<ScoredPiece[]> {
  const { cfg, freqs } = input;
  const units = toCodePoints(input.texts);
  const progress = input.onProgress ?? (() => {});
  let pieces = seedPieces(units, freqs, input);
  progress("unigram seeds", pieces.length, pieces.length);
  const desired = Math.trunc(cfg.vocabSize * 1.1 + 1e-9);
  // Yield between rounds so a caller's progress output and signals get through.
  const tick = () => new Promise<void>((r) => setTimeout(r, 0));
  let model = new Model(pieces);
  for (let round = 1;; round++) {
    for (let iter = 0; iter < cfg.numSubIterations; iter++) {
      pieces = mStep(model, eStep(model, units, freqs, cfg.numThreads));
      model = new Model(pieces);
      await tick();
    }
    progress("unigram EM + pruning (pieces left)", Math.max(0, desired), model.pieces.length);
    if (model.pieces.length <= desired) break;
    pieces = prune(model, units, freqs, desired, cfg.shrinkingFactor, cfg.numThreads);
    model = new Model(pieces);
    if (round > 1000) throw new RangeError("Cannot train: unigram pruning does not converge");
  }
  // Finalize: required characters first (missing ones just below the lowest score), then the best pieces.
  const score = new Map<string, number>();
  for (let i = 0; i < model.pieces.length; i++) score.set(model.pieces[i], Math.fround(model.scores[i]));
  const final = new Map<string, number>();
  let penalty = 0;
  for (const c of input.requiredChars.keys()) {
    const s = String.fromCodePoint(c);
    const have = score.get(s);
    if (have !== undefined) final.set(s, have);
    else {
      final.set(s, Math.fround(model.minScore + penalty));
      penalty = Math.fround(penalty + MIN_SCORE_PENALTY_DELTA);
    }
  }
  const byScore = [...score.entries()].sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  for (const [p, s] of byScore) {
    if (final.has(p)) continue;
    if (final.size >= input.vocabSize) break;
    final.set(p, s);
  }
  return [...final.entries()].sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
}
