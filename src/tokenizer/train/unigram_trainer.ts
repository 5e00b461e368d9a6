/**
 * UNIGRAM trainer with SentencePiece's algorithm: seed pieces = every character plus the frequent repeated
 * substrings (right-branching, as the suffix-tree internal nodes SentencePiece enumerates), scored by
 * occurrences × length; then rounds of EM (forward–backward expected counts, the Bayesian M-step
 * digamma(count) − digamma(total), pieces with expected count < 0.5 dropped) and pruning (drop the pieces whose
 * removal costs the least likelihood, keeping max(1.1 × vocab, shrinking_factor × size)); finally the required
 * characters and the best-scored pieces up to the vocabulary size.
 * Unknown nodes count for piece 0, as in SentencePiece (see TRAINER_UNK_ID).
 * Differences, by design: substrings are counted over whitespace-split units (a piece never spans ▁ there anyway;
 * what follows a unit in its sentences is kept to tell right-branching substrings),
 * equal-score seeds are ordered by string (SentencePiece: by suffix-tree node order), sums are float64.
 * see: google/sentencepiece src/unigram_model_trainer.cc (v0.1.97), src/unigram_model.cc (Lattice)
 */
import { compareCodePoints, UNK_CHAR, WS_CHAR } from "./corpus.ts";
import type { ScoredPiece } from "./bpe_trainer.ts";
import type { TrainerConfig } from "./trainer_spec.ts";
import type { TrainProgress } from "./trainer.ts";

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
  // scratch (per unit): nodes as parallel arrays
  nodeStart: number[] = [];
  nodeEnd: number[] = [];
  nodeId: number[] = [];
  nodeScore: number[] = [];

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
    this.nodeStart.length =
      this.nodeEnd.length =
      this.nodeId.length =
      this.nodeScore.length =
        0;
    const unk = this.minScore - UNK_PENALTY;
    for (let b = 0; b < s.length; b++) {
      let node = 0;
      let single = false;
      for (let e = b; e < s.length; e++) {
        node = this.trie.child(node, s[e]);
        if (node < 0) break;
        const id = this.trie.value[node];
        if (id < 0 || id === skip) continue;
        this.nodeStart.push(b);
        this.nodeEnd.push(e + 1);
        this.nodeId.push(id);
        this.nodeScore.push(this.scores[id]);
        if (e === b) single = true;
      }
      if (!single) {
        this.nodeStart.push(b);
        this.nodeEnd.push(b + 1);
        this.nodeId.push(TRAINER_UNK_ID);
        this.nodeScore.push(unk);
      }
    }
  }

  /** Viterbi over the populated nodes of a unit of length n: the node indices of the best path. */
  viterbi(n: number): number[] {
    const best = new Float64Array(n + 1).fill(-Infinity);
    const back = new Int32Array(n + 1).fill(-1);
    best[0] = 0;
    // nodes are grouped by start in increasing order, so a forward sweep sees best[start] final
    for (let k = 0; k < this.nodeStart.length; k++) {
      const b = this.nodeStart[k], e = this.nodeEnd[k];
      const sc = best[b] + this.nodeScore[k];
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

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
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
  parent: number[] = [-1];
  cp: number[] = [0];
  depth: number[] = [0];
  count: number[] = [0];
  follow: number[] = [NO_FOLLOWER];
  branching: number[] = [0];

  get size(): number {
    return this.parent.length;
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
      const id = this.parent.length;
      this.parent.push(node), this.cp.push(c), this.depth.push(this.depth[node] + 1);
      this.count.push(0), this.follow.push(NO_FOLLOWER), this.branching.push(0);
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
      let node = trie.step(0, s[i]);
      for (let j = i + 1; j < s.length && j - i < maxLen; j++) {
        buf.push(s[j]);
        if (!input.isValid(buf)) break;
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
  let sum = 0;
  for (const s of seeds) sum += s[1];
  const logsum = Math.log(sum);
  for (const s of seeds) s[1] = Math.log(s[1]) - logsum;
  return seeds;
}

/** E-step: expected counts of each piece; returns [expected, objective]. */
function eStep(model: Model, units: Int32Array[], freqs: number[]): Float64Array {
  const expected = new Float64Array(model.pieces.length);
  for (let u = 0; u < units.length; u++) {
    const s = units[u], n = s.length, f = freqs[u];
    model.populate(s);
    const alpha = new Float64Array(n + 1).fill(-Infinity);
    const beta = new Float64Array(n + 1).fill(-Infinity);
    alpha[0] = 0;
    const m = model.nodeStart.length;
    for (let k = 0; k < m; k++) {
      const b = model.nodeStart[k], e = model.nodeEnd[k];
      alpha[e] = logAdd(alpha[e], alpha[b] + model.nodeScore[k]);
    }
    beta[n] = 0;
    for (let k = m - 1; k >= 0; k--) {
      const b = model.nodeStart[k], e = model.nodeEnd[k];
      beta[b] = logAdd(beta[b], beta[e] + model.nodeScore[k]);
    }
    const z = alpha[n];
    for (let k = 0; k < m; k++) {
      const id = model.nodeId[k];
      if (id < 0) continue;
      const b = model.nodeStart[k], e = model.nodeEnd[k];
      expected[id] += f * Math.exp(alpha[b] + model.nodeScore[k] + beta[e] - z);
    }
  }
  return expected;
}

/** M-step: drop rare pieces, Bayesian re-estimation of the scores. */
function mStep(model: Model, expected: Float64Array): [string, number][] {
  const out: [string, number][] = [];
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] < EXPECTED_FREQUENCY_THRESHOLD) continue;
    out.push([model.pieces[i], expected[i]]);
    sum += expected[i];
  }
  const logsum = digamma(sum);
  for (const p of out) p[1] = digamma(p[1]) - logsum;
  return out;
}

/** Pruning: keep the pieces whose removal would cost the most likelihood. */
function prune(
  model: Model,
  units: Int32Array[],
  freqs: number[],
  desired: number,
  shrink: number,
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
  const freq = new Float64Array(size);
  const inverted: number[][] = Array.from({ length: size }, () => []);
  let vsum = 0;
  for (let u = 0; u < units.length; u++) {
    const s = units[u];
    model.populate(s);
    vsum += freqs[u];
    for (const k of model.viterbi(s.length)) {
      const id = model.nodeId[k];
      if (id < 0) continue;
      freq[id] = Math.fround(freq[id] + freqs[u]);
      inverted[id].push(u);
    }
  }
  // float32 arithmetic as SentencePiece (its losses tie in float, and ties go to the lower index)
  const f32 = Math.fround;
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
    const logsumAlt = f32(Math.log(f32(sum + f32(freq[i] * (alternatives[i].length - 1)))));
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
      pieces = mStep(model, eStep(model, units, freqs));
      model = new Model(pieces);
      await tick();
    }
    progress("unigram EM + pruning (pieces left)", Math.max(0, desired), model.pieces.length);
    if (model.pieces.length <= desired) break;
    pieces = prune(model, units, freqs, desired, cfg.shrinkingFactor);
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
