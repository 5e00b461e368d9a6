/**
 * The UNIGRAM trainer's lattices, in SentencePiece's float32 arithmetic: a shard of units (the units one of
 * spm_train's threads sums over) with every unit's lattice kept as flat node arrays, built once from the seed pieces
 * and compacted as pieces are dropped (the piece set only shrinks during training, so no lattice is ever
 * re-populated); forward–backward expected counts (E-step) and Viterbi counts (pruning) over it; and the lattice of
 * one piece's own characters for the pruning's alternatives. Runs in the caller's thread or in unigram_worker.ts.
 * Node order per start position is SentencePiece's insertion order (shorter first, the unknown node last), so every
 * float sum adds the same numbers in the same order as SentencePiece's Lattice.
 * see: google/sentencepiece src/unigram_model.cc (Lattice::PopulateMarginal, Viterbi, PopulateNodes),
 *      src/unigram_model_trainer.cc (EStep, PruneSentencePieces) — v0.1.97
 */

const f32 = Math.fround;

/**
 * A code point trie over pieces given as flat code points (piece i = text[off[i] .. off[i+1])): the root's BMP
 * children in a direct table, other transitions (node, code point) → child in an open-addressing table of
 * Int32Arrays; `value[node]` = piece index or -1.
 */
export class PieceTrie {
  readonly #node: Int32Array;
  readonly #cp: Int32Array;
  readonly #child: Int32Array;
  readonly #mask: number;
  /** The root's children by BMP code point (every lattice position starts there). */
  readonly #root = new Int32Array(0x10000).fill(-1);
  readonly value: Int32Array;

  constructor(text: Int32Array, off: Int32Array) {
    const nPieces = off.length - 1;
    const total = off[nPieces] - off[0] + 1;
    let cap = 16;
    while (cap < total * 2) cap *= 2;
    this.#node = new Int32Array(cap).fill(-1);
    this.#cp = new Int32Array(cap);
    this.#child = new Int32Array(cap);
    this.#mask = cap - 1;
    const value = new Int32Array(total).fill(-1);
    let nNodes = 1;
    for (let id = 0; id < nPieces; id++) {
      let node = 0;
      for (let k = off[id]; k < off[id + 1]; k++) {
        const c = text[k];
        let next = this.child(node, c);
        if (next < 0) {
          next = nNodes++;
          if (node === 0 && c < 0x10000) this.#root[c] = next;
          else {
            let h = this.#slot(node, c);
            while (this.#node[h] !== -1) h = (h + 1) & this.#mask;
            this.#node[h] = node, this.#cp[h] = c, this.#child[h] = next;
          }
        }
        node = next;
      }
      value[node] = id;
    }
    this.value = value;
  }

  #slot(node: number, c: number): number {
    return ((Math.imul(node, 0x9e3779b1) ^ Math.imul(c + 1, 0x85ebca77)) >>> 0) & this.#mask;
  }

  child(node: number, c: number): number {
    if (node === 0 && c < 0x10000) return c >= 0 ? this.#root[c] : -1;
    for (let h = this.#slot(node, c);; h = (h + 1) & this.#mask) {
      const k = this.#node[h];
      if (k === -1) return -1;
      if (k === node && this.#cp[h] === c) return this.#child[h];
    }
  }
}

/** SentencePiece's float LogSumExp(x, y) (not in init mode) with its 50-nat cut-off: the definition. */
export function logSumExpRef(x: number, y: number): number {
  const vmin = Math.min(x, y), vmax = Math.max(x, y);
  if (vmax > f32(vmin + 50)) return vmax;
  return f32(vmax + Math.log(Math.exp(f32(vmin - vmax)) + 1.0));
}

// g(d) = log(1 + e^d) on [-G_SPAN, 0], tabulated every 1/G_STEPS with its derivative (the logistic function) for
// cubic Hermite interpolation (error ~1e-12, far inside G_ERR; tests/tokenizer/train_unigram_lattice_test.ts
// checks the results against logSumExpRef bit for bit).
const G_STEPS = 128;
const G_SPAN = 52;
const G_VAL = new Float64Array(G_SPAN * G_STEPS + 2);
const G_DER = new Float64Array(G_SPAN * G_STEPS + 2);
for (let i = 0; i < G_VAL.length; i++) {
  const d = i / G_STEPS - G_SPAN;
  G_VAL[i] = Math.log1p(Math.exp(d));
  G_DER[i] = 1 / (1 + Math.exp(-d)) / G_STEPS; // scaled to the unit interval
}
/** Bound on |interpolated g − Math.log(Math.exp(d) + 1)|, with a wide margin over the measured error. */
const G_ERR = 1e-10;

/**
 * logSumExpRef's value without Math.log/Math.exp on almost every call: g is interpolated, and the result is taken
 * only when every value within the interpolation error (plus the double roundings) rounds to the same float, which
 * then is the float logSumExpRef returns; otherwise (about one call in 10^3) logSumExpRef itself.
 */
export function logSumExp(x: number, y: number): number {
  const vmin = Math.min(x, y), vmax = Math.max(x, y);
  if (vmax > f32(vmin + 50)) return vmax;
  const d = f32(vmin - vmax);
  const t = (d + G_SPAN) * G_STEPS;
  if (!(t >= 0)) return logSumExpRef(x, y);
  const i = t | 0, u = t - i;
  // cubic Hermite on [i, i+1]
  const p0 = G_VAL[i], p1 = G_VAL[i + 1], m0 = G_DER[i], m1 = G_DER[i + 1];
  const u2 = u * u, u3 = u2 * u;
  const g = (2 * u3 - 3 * u2 + 1) * p0 + (u3 - 2 * u2 + u) * m0 + (3 * u2 - 2 * u3) * p1 + (u3 - u2) * m1;
  const s = vmax + g;
  const delta = G_ERR + Math.abs(s) * 1e-15;
  const lo = f32(s - delta);
  if (lo === f32(s + delta)) return lo;
  return logSumExpRef(x, y);
}

/** The units one shard holds: code points, offsets, weights and their indices in the whole corpus. */
export interface ShardUnits {
  /** The units' code points, concatenated. */
  text: Int32Array;
  /** (nUnits + 1) offsets into `text`. */
  unitOff: Int32Array;
  /** Weight of each unit. */
  freqs: Float64Array;
  /** Index of each unit in the corpus (what the pruning's inverted index records). */
  unitIds: Int32Array;
}

/** A model state as the lattices need it: scores by current piece index, the unknown node's score. */
export interface ModelScores {
  scores: Float64Array;
  unkScore: number;
}

/** One shard's Viterbi counts (see LatticeShard.viterbi). */
export interface ViterbiCounts {
  /** Float sum of the shard's unit weights. */
  vsum: number;
  /** Per current piece: float sum of the weights of the units whose best path uses it (once per use). */
  freq: Float32Array;
  /** Every piece use, in unit order: the piece and the unit (corpus index). */
  tokPiece: Int32Array;
  tokUnit: Int32Array;
}

/**
 * Grows a typed array to at least `n` elements (doubling), keeping its contents (the unigram trainer's one grower).
 */
export function grow<T extends Int32Array | Uint16Array | Float32Array | Float64Array>(a: T, n: number): T {
  if (a.length >= n) return a;
  const next = new (a.constructor as { new (n: number): T })(Math.max(n, a.length * 2));
  next.set(a);
  return next;
}

/**
 * The lattices of a shard of units. Node k of position p (in [nodeOff[p], nodeOff[p+1])) covers
 * text[p .. p + nodeLen[k]) and stands for current piece nodeId[k], or for the unknown node when -1 (SentencePiece's
 * trainer gives unknown nodes id 0: its unk_id_ is never set).
 */
export class LatticeShard {
  readonly units: ShardUnits;
  nodeOff: Int32Array;
  nodeLen: Uint16Array;
  nodeId: Int32Array;
  // scratch per unit, grown to the longest unit
  #alpha = new Float32Array(0);
  #beta = new Float32Array(0);
  #score = new Float64Array(0);
  #fwd = new Float32Array(0);
  /** The model whose scores #score holds (set by compact() or #nodeScores()). */
  #scoredFor?: ModelScores;
  #back = new Int32Array(0);

  /** Builds every unit's lattice over the pieces of `trie` (values = current piece indices). */
  constructor(units: ShardUnits, trie: PieceTrie) {
    this.units = units;
    const { text } = units;
    const N = text.length;
    this.nodeOff = new Int32Array(N + 1);
    let len = new Uint16Array(N * 4 + 16);
    let id = new Int32Array(N * 4 + 16);
    let n = 0;
    let maxUnit = 0;
    for (let u = 0; u + 1 < units.unitOff.length; u++) {
      const end = units.unitOff[u + 1];
      maxUnit = Math.max(maxUnit, end - units.unitOff[u]);
      for (let p = units.unitOff[u]; p < end; p++) {
        this.nodeOff[p] = n;
        let node = 0, single = false;
        for (let e = p; e < end; e++) {
          node = trie.child(node, text[e]);
          if (node < 0) break;
          const v = trie.value[node];
          if (v < 0) continue;
          if (n + 1 >= len.length) len = grow(len, n + 2), id = grow(id, n + 2);
          len[n] = e - p + 1, id[n] = v, n++;
          if (e === p) single = true;
        }
        if (!single) {
          if (n + 1 >= len.length) len = grow(len, n + 2), id = grow(id, n + 2);
          len[n] = 1, id[n] = -1, n++;
        }
      }
    }
    this.nodeOff[N] = n;
    this.nodeLen = len.slice(0, n);
    this.nodeId = id.slice(0, n);
    this.#alpha = new Float32Array(maxUnit + 1);
    this.#beta = new Float32Array(maxUnit + 1);
    this.#back = new Int32Array(maxUnit + 1);
  }

  /** Number of nodes held. */
  get nNodes(): number {
    return this.nodeOff[this.nodeOff.length - 1];
  }

  /**
   * Renumbers the pieces (remap[old] = new index, or -1 = dropped) and drops their nodes; a position whose
   * one-character piece is dropped gets the unknown node, last, as SentencePiece's PopulateNodes inserts it. With
   * `model`, the next pass over that model (the same object) finds the node scores already in place.
   */
  compact(remap: Int32Array, model?: ModelScores): void {
    const { nodeOff, nodeLen, nodeId } = this;
    const N = nodeOff.length - 1;
    // with the next pass's model: each kept node's score, written in the same sweep (see #nodeScores)
    if (model && this.#score.length < this.nNodes) this.#score = new Float64Array(this.nNodes);
    const sc = this.#score, scores = model?.scores, unk = model?.unkScore ?? 0;
    let w = 0;
    for (let p = 0; p < N; p++) {
      const a = nodeOff[p], b = nodeOff[p + 1];
      nodeOff[p] = w;
      let needUnk = false;
      for (let k = a; k < b; k++) {
        const old = nodeId[k];
        const v = old < 0 ? -1 : remap[old];
        if (v < 0) {
          if (nodeLen[k] === 1) needUnk = true;
          continue;
        }
        if (scores) sc[w] = scores[v];
        nodeLen[w] = nodeLen[k], nodeId[w] = v, w++;
      }
      if (needUnk) {
        if (scores) sc[w] = unk;
        nodeLen[w] = 1, nodeId[w] = -1, w++;
      }
    }
    nodeOff[N] = w;
    this.#scoredFor = model;
  }

  /**
   * E-step over the shard: adds each unit's expected piece counts (weight × marginal, forward–backward in float32
   * as Lattice::PopulateMarginal) into `expected` (by current piece index; unknown nodes count for index 0), unit
   * by unit in order, each addition rounded to float as SentencePiece's per-thread float vector. Returns the shard's
   * log-likelihood Σ weight × log Z (in double, for progress only: nothing downstream reads it).
   */
  eStep(model: ModelScores, expected: Float32Array): number {
    const { unitOff, freqs } = this.units;
    const sc = this.#nodeScores(model);
    if (this.#fwd.length < this.nNodes) this.#fwd = new Float32Array(this.nNodes);
    // one call per unit: V8 optimizes a function called thousands of times sooner than a long loop run once
    // (and unoptimized float code allocates a heap number per operation)
    let logLik = 0;
    for (let u = 0; u + 1 < unitOff.length; u++) {
      const f = f32(freqs[u]);
      logLik += f * unitMarginals(this, sc, unitOff[u], unitOff[u + 1] - unitOff[u], f, expected);
    }
    return logLik;
  }

  /** Scratch arrays for unitMarginals (module functions cannot read private fields). */
  get scratch(): { alpha: Float32Array; beta: Float32Array; fwd: Float32Array } {
    return { alpha: this.#alpha, beta: this.#beta, fwd: this.#fwd };
  }

  /** Each node's score (the unknown node's for -1), looked up once per pass. */
  #nodeScores(model: ModelScores): Float64Array {
    if (this.#scoredFor === model) return this.#score;
    this.#scoredFor = model;
    const n = this.nNodes;
    if (this.#score.length < n) this.#score = new Float64Array(n);
    const out = this.#score, id = this.nodeId, { scores, unkScore } = model;
    for (let k = 0; k < n; k++) {
      const v = id[k];
      out[k] = v < 0 ? unkScore : scores[v];
    }
    return out;
  }

  /**
   * Viterbi over the shard (each unit's best path, ties to the earlier node as Lattice::Viterbi): the float sums
   * PruneSentencePieces makes per thread, and the inverted index as a list of uses.
   */
  viterbi(model: ModelScores, nPieces: number): ViterbiCounts {
    const { unitOff, freqs, unitIds } = this.units;
    const { nodeOff, nodeLen, nodeId } = this;
    const sc = this.#nodeScores(model);
    const best = this.#alpha, back = this.#back;
    const freq = new Float32Array(nPieces);
    let tokPiece = new Int32Array(1024), tokUnit = new Int32Array(1024);
    let nTok = 0;
    let vsum = 0;
    const path: number[] = [];
    for (let u = 0; u + 1 < unitOff.length; u++) {
      const p0 = unitOff[u], n = unitOff[u + 1] - p0;
      const f = freqs[u];
      vsum = f32(vsum + f);
      best.fill(-Infinity, 0, n + 1);
      back.fill(-1, 0, n + 1);
      best[0] = 0;
      for (let b = 0; b < n; b++) {
        const bb = best[b];
        for (let k = nodeOff[p0 + b], kEnd = nodeOff[p0 + b + 1]; k < kEnd; k++) {
          const e = b + nodeLen[k];
          const v = f32(bb + sc[k]);
          if (v > best[e]) best[e] = v, back[e] = k;
        }
      }
      path.length = 0;
      let ok = true;
      for (let e = n; e > 0;) {
        const k = back[e];
        if (k < 0) {
          ok = false;
          break;
        }
        path.push(k);
        e -= nodeLen[k];
      }
      if (!ok) continue;
      if (nTok + path.length > tokPiece.length) {
        tokPiece = grow(tokPiece, nTok + path.length);
        tokUnit = grow(tokUnit, nTok + path.length);
      }
      for (let j = path.length - 1; j >= 0; j--) {
        const id = nodeId[path[j]];
        const i = id < 0 ? 0 : id;
        freq[i] = freq[i] + f;
        tokPiece[nTok] = i, tokUnit[nTok] = unitIds[u], nTok++;
      }
    }
    return { vsum, freq, tokPiece: tokPiece.slice(0, nTok), tokUnit: tokUnit.slice(0, nTok) };
  }
}

/**
 * Forward–backward over one unit (text[p0 .. p0 + n)) of `shard`: adds f × marginal of each node into `expected`,
 * in node order, each addition rounded to float (unknown nodes count for index 0); returns log Z.
 */
function unitMarginals(
  shard: LatticeShard,
  sc: Float64Array,
  p0: number,
  n: number,
  f: number,
  expected: Float32Array,
): number {
  const { nodeOff, nodeLen, nodeId } = shard;
  const { alpha, beta, fwd } = shard.scratch;
  // forward: alpha[e] = LogSumExp over the nodes ending at e, in start order (pushed from each start once alpha[start]
  // is final). -Infinity marks "no node yet": LogSumExp(-Infinity, v) is v, as its init mode.
  alpha.fill(-Infinity, 1, n + 1);
  alpha[0] = 0;
  for (let b = 0; b < n; b++) {
    const ab = alpha[b];
    for (let k = nodeOff[p0 + b], kEnd = nodeOff[p0 + b + 1]; k < kEnd; k++) {
      const e = b + nodeLen[k];
      const v = f32(sc[k] + ab);
      fwd[k] = v; // f32(score + alpha at its start), reused by the marginals
      const a = alpha[e];
      alpha[e] = a === -Infinity ? v : logSumExp(a, v);
    }
  }
  // backward: beta[b] = LogSumExp over the nodes starting at b, in insertion order
  beta[n] = 0;
  for (let b = n - 1; b >= 0; b--) {
    const k0 = nodeOff[p0 + b], kEnd = nodeOff[p0 + b + 1];
    let sum = f32(sc[k0] + beta[b + nodeLen[k0]]);
    for (let k = k0 + 1; k < kEnd; k++) sum = logSumExp(sum, f32(sc[k] + beta[b + nodeLen[k]]));
    beta[b] = sum;
  }
  const z = alpha[n];
  // hot loop: one exp per node
  for (let b = 0; b < n; b++) {
    for (let k = nodeOff[p0 + b], kEnd = nodeOff[p0 + b + 1]; k < kEnd; k++) {
      const x = f32(f32(fwd[k] + beta[b + nodeLen[k]]) - z);
      const id = nodeId[k];
      const i = id < 0 ? 0 : id;
      expected[i] = expected[i] + f * Math.exp(x);
    }
  }
  return z;
}

/**
 * The lattice of one string over the current pieces (the pruning asks, for each piece, how its own characters
 * segment with and without it). `alive[seed]` = current index of a trie value, or -1.
 */
export class StringLattice {
  readonly #trie: PieceTrie;
  nNodes = 0;
  start = new Int32Array(64);
  end = new Int32Array(64);
  id = new Int32Array(64);
  #best = new Float32Array(64);
  #back = new Int32Array(64);

  constructor(trie: PieceTrie) {
    this.#trie = trie;
  }

  /** Populates the nodes of `s` (current indices via `current`; `skip` excluded; unknown = id 0). */
  populate(s: Int32Array, current: Int32Array, skip: number): void {
    const trie = this.#trie;
    this.nNodes = 0;
    for (let b = 0; b < s.length; b++) {
      let node = 0, single = false;
      for (let e = b; e < s.length; e++) {
        node = trie.child(node, s[e]);
        if (node < 0) break;
        const v = trie.value[node];
        if (v < 0) continue;
        const id = current[v];
        if (id < 0 || id === skip) continue;
        this.#push(b, e + 1, id);
        if (e === b) single = true;
      }
      if (!single) this.#push(b, b + 1, -1);
    }
  }

  #push(b: number, e: number, id: number): void {
    const k = this.nNodes++;
    if (k >= this.start.length) {
      this.start = grow(this.start, k + 1), this.end = grow(this.end, k + 1), this.id = grow(this.id, k + 1);
    }
    this.start[k] = b, this.end[k] = e, this.id[k] = id;
  }

  /**
   * The best path's piece ids (unknown nodes as 0) into `path` (from its start, in string order); returns their
   * number, 0 when there is no path. Nodes of piece `skip` (≥ 0) are left out, as if populate() had skipped them (a
   * piece never occurs inside itself but as the whole string, so that node is all that changes, and it does not stand
   * for a one-character piece). `path` needs room for `n` ids.
   */
  viterbi(n: number, model: ModelScores, skip: number, path: Int32Array): number {
    if (this.#best.length < n + 1) this.#best = new Float32Array(2 * (n + 1)), this.#back = new Int32Array(2 * (n + 1));
    const best = this.#best, back = this.#back;
    best.fill(-Infinity, 0, n + 1);
    back.fill(-1, 0, n + 1);
    best[0] = 0;
    const { scores, unkScore } = model;
    for (let k = 0; k < this.nNodes; k++) {
      const b = this.start[k], e = this.end[k], id = this.id[k];
      if (id === skip && skip >= 0) continue;
      const sc = f32(best[b] + (id < 0 ? unkScore : scores[id]));
      if (sc > best[e]) best[e] = sc, back[e] = k;
    }
    let len = 0;
    for (let e = n; e > 0; len++) {
      const k = back[e];
      if (k < 0) return 0;
      e = this.start[k];
    }
    for (let e = n, j = len - 1; e > 0; j--) {
      const k = back[e];
      path[j] = this.id[k] < 0 ? 0 : this.id[k];
      e = this.start[k];
    }
    return len;
  }
}
