/**
 * UNIGRAM trainer with SentencePiece's algorithm: seed pieces (unigram_seeds.ts: every character plus the frequent
 * right-branching substrings, scored by occurrences × length); then rounds of EM (forward–backward expected counts,
 * the Bayesian M-step digamma(count) − digamma(total), pieces with expected count < 0.5 dropped) and pruning (drop the
 * pieces whose removal costs the least likelihood, keeping max(1.1 × vocab, shrinking_factor × size)); finally the
 * required characters and the best-scored pieces up to the vocabulary size.
 * SentencePiece's own arithmetic and quirks are reproduced where they decide which pieces survive: float32 lattice
 * (LogSumExp with its 50-nat cut-off), M-step and pruning loss; unknown nodes counted for piece 0 (its trainer never
 * sets unk_id_); the pruning's logsum_alt using the number of pieces; equal seed scores in suffix-tree order; and its
 * threads: unit u is summed by thread u mod --num_threads into a float vector per thread, the vectors then added in
 * thread order. The lattices live in unigram_lattice.ts, in this thread and, for large corpora (WORKER_MIN_NODES),
 * also in Workers (one per further core), each executor holding whole threads' units, so the float sums are the
 * same whatever the number of workers. Workers get the caller's permissions (they do no I/O; scoping them needs
 * Deno's --unstable-worker-options, without which the `deno.permissions` option ends the process).
 * On the test corpora the .model equals spm_train's byte for byte.
 * see: google/sentencepiece src/unigram_model_trainer.cc (v0.1.97), src/unigram_model.cc (Lattice)
 */
import { compareCodePoints } from "./corpus.ts";
import type { ScoredPiece } from "./bpe_trainer.ts";
import type { TrainerConfig } from "./trainer_spec.ts";
import type { TrainProgress } from "./trainer.ts";
import { validPrefixLengths } from "./piece_validator.ts";
import { flattenUnits, seedPieces, type Seeds, seedString } from "./unigram_seeds.ts";
import {
  grow,
  LatticeShard,
  type ModelScores,
  PieceTrie,
  type ShardUnits,
  StringLattice,
  type ViterbiCounts,
} from "./unigram_lattice.ts";
import type { UnigramWorkerReply, UnigramWorkerRequest } from "./unigram_worker.ts";

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
  /**
   * Workers for the lattices besides this thread (at most --num_threads − 1); default: one per further core
   * (navigator.hardwareConcurrency − 1) when the seed lattices hold ≥ WORKER_MIN_NODES nodes, else 0. The result
   * does not depend on it.
   */
  workers?: number;
  /** Starts a worker on unigram_worker.ts (default: a module Worker with the caller's permissions). */
  spawnWorker?: (url: URL) => Worker;
}

const UNK_PENALTY = 10;
const f32 = Math.fround;
const EXPECTED_FREQUENCY_THRESHOLD = 0.5;
const MIN_SCORE_PENALTY_DELTA = 0.0001;
/**
 * Below this many lattice nodes (the seed lattices of all units) a worker costs more than it saves: measured on a
 * loaded 2-core host, a 480 kB Chinese corpus (0.4 M nodes) and 2 MB of English (0.9 M) train faster without one; a
 * 4 MB poetry corpus (2.2 M) about twice as fast with one.
 */
export const WORKER_MIN_NODES = 1_000_000;

function digamma(x: number): number {
  let result = 0;
  for (; x < 7; ++x) result -= 1 / x;
  x -= 0.5;
  const xx = 1 / x, xx2 = xx * xx, xx4 = xx2 * xx2;
  return result + Math.log(x) + xx2 / 24 - (7 / 960) * xx4 + (31 / 8064) * xx4 * xx2 - (127 / 30720) * xx4 * xx4;
}

/** The units of spm_train's thread t: u ≡ t (mod nThreads), in order. */
function threadUnits(
  flat: { text: Int32Array; unitOff: Int32Array },
  freqs: number[],
  t: number,
  nThreads: number,
): ShardUnits {
  const ids: number[] = [];
  let nChars = 0;
  for (let u = t; u + 1 < flat.unitOff.length; u += nThreads) {
    ids.push(u);
    nChars += flat.unitOff[u + 1] - flat.unitOff[u];
  }
  const text = new Int32Array(nChars);
  const unitOff = new Int32Array(ids.length + 1);
  const f = new Float64Array(ids.length);
  let n = 0;
  for (let i = 0; i < ids.length; i++) {
    const u = ids[i], a = flat.unitOff[u], b = flat.unitOff[u + 1];
    for (let k = a; k < b; k++) text[n++] = flat.text[k];
    unitOff[i + 1] = n;
    f[i] = freqs[u];
  }
  return { text, unitOff, freqs: f, unitIds: Int32Array.from(ids) };
}

/**
 * The executors for training with `nThreads` (--num_threads): this thread, plus workers (see
 * UnigramTrainInput.workers) started by init() once the lattices show how much work the passes are.
 */
function startUnigramExecutors(
  nThreads: number,
  opts: Pick<UnigramTrainInput, "workers" | "spawnWorker"> = {},
): UnigramExecutors {
  const cores = typeof navigator !== "undefined" ? navigator.hardwareConcurrency ?? 1 : 1;
  const canSpawn = typeof Worker !== "undefined" || opts.spawnWorker !== undefined;
  return new UnigramExecutors(
    Math.max(0, Math.min(nThreads - 1, opts.workers ?? (canSpawn ? cores - 1 : 0))),
    opts.workers === undefined,
    opts.spawnWorker ?? ((url) => new Worker(url.href, { type: "module" })),
  );
}

/**
 * The executors of the lattice passes: executor 0 is this thread, executors 1.. are Workers (started by init() when
 * the work is worth it). Executor e holds spm_train's threads t ≡ e (mod executors); results
 * come back per thread, in thread order.
 */
class UnigramExecutors {
  #n = 1;
  readonly #maxWorkers: number;
  readonly #auto: boolean;
  readonly #spawn: (url: URL) => Worker;
  readonly #workers: Worker[] = [];
  readonly #pending: { resolve: (r: UnigramWorkerReply) => void; reject: (e: Error) => void }[][] = [];
  #failure?: Error;
  #local: LatticeShard[] = [];
  #nThreads = 0;

  constructor(maxWorkers: number, auto: boolean, spawn: (url: URL) => Worker) {
    this.#maxWorkers = maxWorkers;
    this.#auto = auto;
    this.#spawn = spawn;
  }

  #start(nWorkers: number): void {
    this.#n = 1 + nWorkers;
    const url = new URL("./unigram_worker.ts", import.meta.url);
    for (let w = 0; w < nWorkers; w++) {
      const worker = this.#spawn(url);
      const queue: { resolve: (r: UnigramWorkerReply) => void; reject: (e: Error) => void }[] = [];
      worker.onmessage = (e: MessageEvent<UnigramWorkerReply>) => {
        const p = queue.shift();
        if (!p) return;
        if ("error" in e.data) {
          this.#fail(new Error(`Cannot train: unigram worker failed: ${e.data.error}`));
          p.reject(this.#failure!);
        } else p.resolve(e.data);
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#fail(new Error(`Cannot train: unigram worker failed: ${e.message}`));
      };
      this.#workers.push(worker);
      this.#pending.push(queue);
    }
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    for (const q of this.#pending) for (const p of q.splice(0)) p.reject(this.#failure);
  }

  #call(w: number, req: UnigramWorkerRequest): Promise<UnigramWorkerReply> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#pending[w].push({ resolve, reject });
      this.#workers[w].postMessage(req);
    });
  }

  /** spm_train threads held by executor e. */
  #owned(e: number): number[] {
    const out: number[] = [];
    for (let t = e; t < this.#nThreads; t += this.#n) out.push(t);
    return out;
  }

  /**
   * Builds the lattices here; when they hold ≥ WORKER_MIN_NODES nodes (or workers were asked for), starts the
   * workers and hands each its threads' units and the seed pieces (it builds its own lattices from them).
   */
  init(shards: ShardUnits[], pieceText: Int32Array, pieceOff: Int32Array, trie: PieceTrie): void {
    this.#nThreads = shards.length;
    const all = shards.map((s) => new LatticeShard(s, trie));
    let nodes = 0;
    for (const l of all) nodes += l.nNodes;
    const nWorkers = this.#auto && nodes < WORKER_MIN_NODES ? 0 : this.#maxWorkers;
    if (nWorkers > 0) this.#start(nWorkers);
    this.#workers.forEach((_, w) => {
      this.#call(w, { type: "init", shards: this.#owned(w + 1).map((t) => shards[t]), pieceText, pieceOff })
        .catch(() => {}); // reported by the next pass
    });
    this.#local = this.#owned(0).map((t) => all[t]);
  }

  async #run<T>(
    type: "estep" | "viterbi",
    model: ModelScores,
    nPieces: number,
    remap: Int32Array | undefined,
    local: (l: LatticeShard) => T,
    pick: (r: UnigramWorkerReply) => T[],
  ): Promise<T[]> {
    const req = { type, remap, scores: model.scores, unkScore: model.unkScore, nPieces };
    const replies = this.#workers.map((_, w) => this.#call(w, req));
    if (remap) { for (const l of this.#local) l.compact(remap, model); }
    const out: T[] = new Array(this.#nThreads);
    const mine = this.#local.map(local);
    this.#owned(0).forEach((t, i) => out[t] = mine[i]);
    const theirs = await Promise.all(replies);
    theirs.forEach((r, w) => {
      const got = pick(r);
      this.#owned(w + 1).forEach((t, i) => out[t] = got[i]);
    });
    return out;
  }

  /** Per-thread expected counts (see LatticeShard.eStep) and the log-likelihood Σ weight × log Z of all units. */
  async eStep(
    model: ModelScores,
    nPieces: number,
    remap?: Int32Array,
  ): Promise<{ perThread: Float32Array[]; logLik: number }> {
    if (this.#workers.length === 0) return this.#eStepHere(model, nPieces, remap);
    let logLik = 0;
    const perThread = await this.#run("estep", model, nPieces, remap, (l) => {
      const out = new Float32Array(nPieces);
      logLik += l.eStep(model, out);
      return out;
    }, (r) => {
      if (!("expected" in r)) return [];
      logLik += r.logLik;
      return r.expected;
    });
    return { perThread, logLik };
  }

  /**
   * All threads in this thread, in thread order: each thread's vector is added into the first as soon as it is
   * complete (the same additions in the same order as sumInThreadOrder), so two vectors are live, not one per thread.
   */
  #eStepHere(model: ModelScores, nPieces: number, remap?: Int32Array): { perThread: Float32Array[]; logLik: number } {
    if (remap) { for (const l of this.#local) l.compact(remap, model); }
    const expected = new Float32Array(nPieces);
    const e = this.#local.length > 1 ? new Float32Array(nPieces) : expected;
    let logLik = 0;
    this.#local.forEach((l, t) => {
      if (t === 0) return void (logLik += l.eStep(model, expected));
      e.fill(0);
      logLik += l.eStep(model, e);
      for (let k = 0; k < nPieces; k++) expected[k] = expected[k] + e[k];
    });
    return { perThread: [expected], logLik };
  }

  /** Per-thread Viterbi counts (see LatticeShard.viterbi). */
  viterbi(model: ModelScores, nPieces: number, remap?: Int32Array): Promise<ViterbiCounts[]> {
    if (this.#workers.length === 0) {
      // in thread order, each thread's float vector folded in as it completes (as mergeViterbiCounts would)
      if (remap) { for (const l of this.#local) l.compact(remap, model); }
      let vsum = 0;
      const freq = new Float32Array(nPieces);
      const tokPiece: Int32Array[] = [], tokUnit: Int32Array[] = [];
      for (const l of this.#local) {
        const c = l.viterbi(model, nPieces);
        vsum = f32(vsum + c.vsum);
        for (let i = 0; i < nPieces; i++) freq[i] = freq[i] + c.freq[i];
        tokPiece.push(c.tokPiece), tokUnit.push(c.tokUnit);
      }
      return Promise.resolve([{ vsum, freq, tokPiece: concat(tokPiece), tokUnit: concat(tokUnit) }]);
    }
    return this.#run("viterbi", model, nPieces, remap, (l) => l.viterbi(model, nPieces), (r) => {
      return "counts" in r ? r.counts : [];
    });
  }

  close(): void {
    for (const w of this.#workers.splice(0)) w.terminate();
  }
}

function concat(parts: Int32Array[]): Int32Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Int32Array(n);
  n = 0;
  for (const p of parts) out.set(p, n), n += p.length;
  return out;
}

/** The model between steps: current pieces as seed indices, in model order, and their scores. */
interface State {
  cur: Int32Array;
  scores: Float64Array;
}

function modelScores(s: State): ModelScores {
  let min = Infinity;
  for (let i = 0; i < s.scores.length; i++) min = Math.min(min, f32(s.scores[i]));
  return { scores: s.scores, unkScore: f32(min - UNK_PENALTY) };
}

/** remap[old current index] = new current index or -1, for `next` made from `prev`'s pieces. */
function remapOf(prev: State, next: State, nSeeds: number): Int32Array {
  const at = new Int32Array(nSeeds).fill(-1);
  for (let i = 0; i < next.cur.length; i++) at[next.cur[i]] = i;
  const out = new Int32Array(prev.cur.length);
  for (let i = 0; i < out.length; i++) out[i] = at[prev.cur[i]];
  return out;
}

/** SentencePiece's merge of its threads' float vectors: added into the first, in thread order. */
function sumInThreadOrder(perThread: Float32Array[]): Float32Array {
  const expected = perThread[0];
  for (let t = 1; t < perThread.length; t++) {
    const e = perThread[t];
    for (let k = 0; k < expected.length; k++) expected[k] = expected[k] + e[k];
  }
  return expected;
}

/** M-step: drop rare pieces, Bayesian re-estimation of the scores (float32 as SentencePiece). */
function mStep(state: State, expected: Float32Array): State {
  const keep: number[] = [], freqs: number[] = [];
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const freq = expected[i];
    if (freq < EXPECTED_FREQUENCY_THRESHOLD) continue;
    keep.push(state.cur[i]);
    freqs.push(freq);
    sum = f32(sum + freq);
  }
  const logsum = f32(digamma(sum));
  const scores = new Float64Array(freqs.length);
  for (let i = 0; i < scores.length; i++) scores[i] = f32(digamma(freqs[i]) - logsum);
  return { cur: Int32Array.from(keep), scores };
}

/**
 * Per-thread Viterbi counts merged in thread order, in float32; F folds the inverted index (thread order, then unit
 * order) as SentencePiece's loop over inverted[i].
 */
function mergeViterbiCounts(
  counts: ViterbiCounts[],
  size: number,
  freqs: number[],
): { vsum: number; freq: Float32Array; F: Float32Array } {
  let vsum = 0;
  const freq = new Float32Array(size);
  const F = new Float32Array(size);
  for (const c of counts) {
    vsum = f32(vsum + c.vsum);
    const cf = c.freq, tp = c.tokPiece, tu = c.tokUnit;
    for (let i = 0; i < size; i++) freq[i] = freq[i] + cf[i];
    for (let k = 0; k < tp.length; k++) F[tp[k]] = F[tp[k]] + freqs[tu[k]];
  }
  return { vsum, freq, F };
}

/** Pruning: keep the pieces whose removal would cost the most likelihood. */
function prune(
  state: State,
  model: ModelScores,
  counts: ViterbiCounts[],
  freqs: number[],
  seedCps: (seed: number) => Int32Array,
  lattice: StringLattice,
  current: Int32Array,
  desired: number,
  shrink: number,
): State {
  const size = state.cur.length;
  const { vsum, freq, F } = mergeViterbiCounts(counts, size, freqs);
  // Which pieces the Viterbi path of their own characters splits (never kept), and the path without the piece (its
  // alternatives). Only for pieces the loss is computed for: used on some best path and longer than a character (a
  // character's own path is itself and it has no second segmentation).
  const alwaysKeep = new Uint8Array(size).fill(1);
  // alternatives of piece i: altIds[altOff[i] .. altOff[i + 1])
  const altOff = new Int32Array(size + 1);
  let altIds: Int32Array = new Int32Array(4 * size);
  let path = new Int32Array(16);
  for (let i = 0; i < size; i++) {
    altOff[i] = altOff[i + 1] = altOff[i];
    const s = seedCps(state.cur[i]);
    if (freq[i] === 0 || s.length === 1) continue;
    if (path.length < s.length) path = new Int32Array(s.length);
    lattice.populate(s, current, -1);
    if (lattice.viterbi(s.length, model, -1, path) >= 2) {
      alwaysKeep[i] = 0; // its Viterbi path already splits it
      continue;
    }
    const n = lattice.viterbi(s.length, model, i, path); // the same lattice without the piece itself
    altIds = grow(altIds, altOff[i] + n);
    altIds.set(path.subarray(0, n), altOff[i]);
    altOff[i + 1] = altOff[i] + n;
  }
  // float32 arithmetic as SentencePiece (its losses tie in float, and ties go to the lower index)
  let sumD = 0;
  for (let i = 0; i < size; i++) sumD += freq[i];
  const sum = f32(sumD);
  const logsum = f32(Math.log(sum));
  const kept: number[] = [];
  const candidates: [number, number][] = [];
  for (let i = 0; i < size; i++) {
    if (freq[i] === 0 || !alwaysKeep[i]) continue;
    const a0 = altOff[i], a1 = altOff[i + 1];
    if (a0 === a1) {
      kept.push(i);
      continue;
    }
    const Fi = f32(F[i] / f32(vsum));
    const logprobSp = f32(Math.log(freq[i]) - logsum);
    // SentencePiece writes alternatives.size() here, the number of pieces, not alternatives[i].size(): reproduced,
    // since it decides which pieces survive.
    const logsumAlt = f32(Math.log(f32(sum + f32(freq[i] * f32(size - 1)))));
    let logprobAlt = 0;
    for (let k = a0; k < a1; k++) {
      logprobAlt = f32(logprobAlt + (Math.log(f32(freq[altIds[k]] + freq[i])) - logsumAlt));
    }
    candidates.push([i, f32(Fi * f32(logprobSp - logprobAlt))]);
  }
  const prunedSize = Math.max(desired, Math.trunc(shrink * size));
  candidates.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  for (const [i] of candidates) {
    if (kept.length >= prunedSize) break;
    kept.push(i);
  }
  const next: State = { cur: new Int32Array(kept.length), scores: new Float64Array(kept.length) };
  for (let k = 0; k < kept.length; k++) next.cur[k] = state.cur[kept[k]], next.scores[k] = state.scores[kept[k]];
  return next;
}

/** Trains the unigram pieces (in vocabulary order: score desc, then string). */
export async function trainUnigram(input: UnigramTrainInput): Promise<ScoredPiece[]> {
  const { cfg, freqs } = input;
  const progress = input.onProgress ?? (() => {});
  const nThreads = Math.max(1, cfg.numThreads);
  const runner = startUnigramExecutors(nThreads, input);
  const flat = flattenUnits(input.texts);
  const seeds = seedPieces(flat, {
    freqs,
    followers: input.followers,
    maxPieceLength: cfg.maxSentencepieceLength,
    seedSize: cfg.seedSentencepieceSize,
    prefixLengths: (text, unitEnd) => validPrefixLengths(cfg, text, unitEnd),
    isValid: input.isValid,
  });
  const nSeeds = seeds.pieceOff.length - 1;
  progress("unigram seeds", nSeeds, nSeeds);
  const seedCps = (s: number) => seeds.pieceText.subarray(seeds.pieceOff[s], seeds.pieceOff[s + 1]);
  const trie = new PieceTrie(seeds.pieceText, seeds.pieceOff);
  const shards = Array.from({ length: nThreads }, (_, t) => threadUnits(flat, freqs, t, nThreads));
  runner.init(shards, seeds.pieceText, seeds.pieceOff, trie);
  try {
    const desired = Math.trunc(cfg.vocabSize * 1.1 + 1e-9);
    const lattice = new StringLattice(trie);
    let state: State = { cur: Int32Array.from({ length: nSeeds }, (_, i) => i), scores: seeds.scores };
    let remap: Int32Array | undefined;
    const advance = (next: State) => {
      remap = remapOf(state, next, nSeeds);
      state = next;
    };
    let weight = 0;
    for (const f of freqs) weight += f;
    const nSub = cfg.numSubIterations;
    for (let round = 1;; round++) {
      for (let iter = 0; iter < nSub; iter++) {
        const { perThread, logLik } = await runner.eStep(modelScores(state), state.cur.length, remap);
        advance(mStep(state, sumInThreadOrder(perThread)));
        // SentencePiece's EM objective (its log: obj = −Σ weight × log Z / Σ weight), and E-steps done / expected
        const done = (round - 1) * nSub + iter + 1;
        const total = done + nSub - iter - 1 + nSub * roundsLeft(state.cur.length, desired, cfg.shrinkingFactor);
        progress(
          "unigram EM",
          done,
          total,
          `${state.cur.length} pieces (→ ${desired}), obj ${(-logLik / weight).toFixed(4)}`,
        );
      }
      if (state.cur.length <= desired) break;
      const model = modelScores(state);
      const counts = await runner.viterbi(model, state.cur.length, remap);
      remap = undefined;
      const current = new Int32Array(nSeeds).fill(-1);
      for (let i = 0; i < state.cur.length; i++) current[state.cur[i]] = i;
      advance(prune(state, model, counts, freqs, seedCps, lattice, current, desired, cfg.shrinkingFactor));
      if (round > 1000) throw new RangeError("Cannot train: unigram pruning does not converge");
    }
    return finalPieces(input, state, seeds);
  } finally {
    runner.close();
  }
}

/** Pruning rounds still to come at `size` pieces: each keeps max(desired, shrink × size) (an estimate for progress). */
function roundsLeft(size: number, desired: number, shrink: number): number {
  if (size <= desired) return 0;
  if (!(shrink > 0 && shrink < 1)) return 1;
  return Math.max(1, Math.ceil(Math.log(size / desired) / -Math.log(shrink)));
}

/** Finalize: required characters first (missing ones just below the lowest score), then the best pieces. */
function finalPieces(input: UnigramTrainInput, state: State, seeds: Seeds): ScoredPiece[] {
  const n = state.cur.length;
  const strs: string[] = new Array(n);
  const sc = new Float64Array(n);
  // code point -> index of its one-character piece
  const single = new Map<number, number>();
  let minScore = Infinity;
  for (let i = 0; i < n; i++) {
    const seed = state.cur[i], a = seeds.pieceOff[seed];
    sc[i] = f32(state.scores[i]);
    strs[i] = seedString(seeds, seed);
    if (seeds.pieceOff[seed + 1] - a === 1) single.set(seeds.pieceText[a], i);
    minScore = Math.min(minScore, sc[i]);
  }
  const out: ScoredPiece[] = [];
  const taken = new Uint8Array(n);
  let penalty = 0;
  for (const c of input.requiredChars.keys()) {
    const i = single.get(c);
    if (i !== undefined) {
      out.push([strs[i], sc[i]]);
      taken[i] = 1;
    } else {
      out.push([String.fromCodePoint(c), f32(minScore + penalty)]);
      penalty = f32(penalty + MIN_SCORE_PENALTY_DELTA);
    }
  }
  const byScore = Array.from({ length: n }, (_, i) => i)
    .sort((a, b) => sc[b] - sc[a] || compareCodePoints(strs[a], strs[b]));
  for (const i of byScore) {
    if (taken[i]) continue;
    if (out.length >= input.vocabSize) break;
    out.push([strs[i], sc[i]]);
  }
  return out.sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
}
