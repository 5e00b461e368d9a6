/**
 * Seed pieces of the UNIGRAM trainer, as SentencePiece's MakeSeedSentencePieces: every character (by count), then
 * the substrings that occur at least twice and are right-branching (the suffix tree's internal nodes, which esaxx
 * enumerates), valid as pieces, scored by occurrences × length, equal scores in suffix-tree order; scores become
 * float log-probabilities. Substrings are found over the whitespace-split units (a piece never spans ▁): what
 * follows a unit in its sentences (another word or the end) decides whether a substring ending there branches.
 * Algorithm: the unit positions sorted by their next P characters, P the smallest power of two ≥
 * `max_sentencepiece_length` (prefix doubling, each round one bucket scatter and one ranking pass, linear), then one
 * bottom-up walk over the LCP intervals of that order (LCPs over each position's longest valid piece).
 * see: google/sentencepiece src/unigram_model_trainer.cc MakeSeedSentencePieces (v0.1.97);
 *      Abouelhoda, Kurtz, Ohlebusch, "Replacing suffix trees with enhanced suffix arrays" (2004), LCP intervals
 */
import { UNK_CHAR, WS_CHAR } from "./corpus.ts";
import { grow } from "./unigram_lattice.ts";

/** The units as one code point array: unit u is text[unitOff[u] .. unitOff[u+1]). */
export interface FlatUnits {
  text: Int32Array;
  /** (nUnits + 1) offsets into `text`. */
  unitOff: Int32Array;
}

/** Flattens unit strings into code points. */
export function flattenUnits(texts: string[]): FlatUnits {
  let total = 0;
  for (const t of texts) total += t.length;
  const text = new Int32Array(total);
  const unitOff = new Int32Array(texts.length + 1);
  let n = 0;
  for (let u = 0; u < texts.length; u++) {
    const t = texts[u];
    for (let i = 0; i < t.length; i++) {
      let c = t.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < t.length) {
        const d = t.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      text[n++] = c;
    }
    unitOff[u + 1] = n;
  }
  return { text: text.subarray(0, n), unitOff };
}

/** What seedPieces needs besides the units. */
export interface SeedOptions {
  freqs: ArrayLike<number>;
  /** Per unit: bit 0 another word follows it in some sentence, bit 1 it ends some sentence. */
  followers: Uint8Array;
  maxPieceLength: number;
  seedSize: number;
  /**
   * For every position, how far the piece rules let a piece extend (validPrefixLengths) when they are incremental;
   * else `isValid` is asked about every prefix.
   */
  prefixLengths?: (text: Int32Array, unitEnd: Int32Array) => Uint16Array | undefined;
  isValid: (cps: ArrayLike<number>) => boolean;
}

/**
 * Seeds (characters first, then substrings) as code points: piece i = pieceText[pieceOff[i] .. pieceOff[i+1]) (strings
 * are made only for the pieces that survive, see seedString), with float log-probability `scores`.
 */
export interface Seeds {
  pieceText: Int32Array;
  pieceOff: Int32Array;
  scores: Float64Array;
}

/** Seed i as a string. */
export function seedString(seeds: Seeds, i: number): string {
  return codePointsToString(seeds.pieceText, seeds.pieceOff[i], seeds.pieceOff[i + 1]);
}

const f32 = Math.fround;
/** The follower code of a unit's end in the branching test: another word starts with ▁; -2 = the sentence end. */
const END = -2;

/** Seed pieces of `units` (see the file header). */
export function seedPieces(units: FlatUnits, opt: SeedOptions): Seeds {
  const { text, unitOff } = units;
  const N = text.length;
  const maxLen = opt.maxPieceLength;

  // 1. Per position: its unit and the unit's end; the distinct characters (ids in order of appearance) and counts.
  const { unitEnd, posUnit } = positionUnits(unitOff, N);
  const chars = charIds(units, opt.freqs);

  // 2. L[p]: the longest valid piece starting at p (the rules are checked as SentencePiece's seeding loop extends a
  // piece: it stops at the first invalid prefix), at most maxLen and the unit's end.
  const L = opt.prefixLengths?.(text, unitEnd) ?? prefixLengthsByValidator(text, unitEnd, maxLen, opt.isValid);

  // 3. Sort the positions by their next characters (bounded by the unit).
  const byCp = idsByCodePoint(chars.cps);
  const sa = sortPositions(chars, byCp, unitOff, unitEnd, maxLen);

  // 4. Bottom-up walk over the LCP intervals of the positions with a piece of ≥ 2 characters, in that order.
  const cand = walkSorted(sa, L, text, unitEnd, posUnit, opt, maxLen);

  // 5. Characters by count (code point order on ties), then the candidates by score (suffix-tree order on ties).
  return seedList(chars, byCp, cand, text, opt.seedSize);
}

/** Per position: the end of its unit and its unit. */
function positionUnits(unitOff: Int32Array, N: number): { unitEnd: Int32Array; posUnit: Int32Array } {
  const unitEnd = new Int32Array(N), posUnit = new Int32Array(N);
  // a plain loop: two fill() calls per unit cost more than they fill (units are short)
  for (let u = 0; u + 1 < unitOff.length; u++) {
    const e = unitOff[u + 1];
    for (let p = unitOff[u]; p < e; p++) unitEnd[p] = e, posUnit[p] = u;
  }
  return { unitEnd, posUnit };
}

/**
 * The distinct characters of the units: `id[p]` per position, `cps[id]`, `count[id]` (weighted occurrences, UNK and
 * NUL not counted), `occ[id]` (positions).
 */
interface CharIds {
  id: Int32Array;
  cps: Int32Array;
  count: Float64Array;
  occ: Int32Array;
}

function charIds(units: FlatUnits, freqs: ArrayLike<number>): CharIds {
  const { text, unitOff } = units;
  const id = new Int32Array(text.length);
  // id + 1 per BMP code point (0 = not seen yet); astral ones in a map
  const bmpId = new Int32Array(0x10000);
  const astralId = new Map<number, number>();
  let cps = new Int32Array(256), count = new Float64Array(256), occ = new Int32Array(256);
  let K = 0;
  for (let u = 0; u + 1 < unitOff.length; u++) {
    const f = freqs[u];
    for (let i = unitOff[u]; i < unitOff[u + 1]; i++) {
      const c = text[i];
      let k = c < 0x10000 ? bmpId[c] - 1 : astralId.get(c) ?? -1;
      if (k < 0) {
        k = K++;
        if (c < 0x10000) bmpId[c] = K;
        else astralId.set(c, k);
        if (K > cps.length) {
          cps = grow(cps, 2 * K), count = grow(count, 2 * K), occ = grow(occ, 2 * K);
        }
        cps[k] = c;
      }
      id[i] = k;
      occ[k]++;
      // UNK and NUL are not characters of the vocabulary
      if (c !== UNK_CHAR && c !== 0) count[k] += f;
    }
  }
  return { id, cps: cps.subarray(0, K), count: count.subarray(0, K), occ: occ.subarray(0, K) };
}

/** The ids in code point order. */
function idsByCodePoint(cps: Int32Array): Int32Array {
  const K = cps.length;
  // code point · 2^21 + id: distinct, exact in a double, so a plain numeric sort
  const keys = new Float64Array(K);
  for (let k = 0; k < K; k++) keys[k] = cps[k] * 0x200000 + k;
  keys.sort();
  const out = new Int32Array(K);
  for (let r = 0; r < K; r++) out[r] = keys[r] % 0x200000;
  return out;
}

/** L[p] asking `isValid` about every prefix (when the rules are not local, see SeedOptions.prefixLengths). */
function prefixLengthsByValidator(
  text: Int32Array,
  unitEnd: Int32Array,
  maxLen: number,
  isValid: (cps: ArrayLike<number>) => boolean,
): Uint16Array {
  const N = text.length;
  const L = new Uint16Array(N);
  const buf: number[] = [];
  for (let p = 0; p < N; p++) {
    const end = Math.min(unitEnd[p], p + maxLen);
    let len = 1;
    buf.length = 0;
    buf.push(text[p]);
    while (p + len < end) {
      buf.push(text[p + len]);
      if (!isValid(buf)) break;
      len++;
    }
    L[p] = len;
  }
  return L;
}

/** Candidates of the walk: substring text[pos .. pos+len) with its score, in suffix-tree order. */
interface Candidates {
  pos: number[];
  len: number[];
  score: number[];
}

/** The seeds: characters by count, then the candidates by score; float log-probabilities. */
function seedList(chars: CharIds, byCp: Int32Array, cand: Candidates, text: Int32Array, seedSize: number): Seeds {
  // characters with a count > 0 in code point order, then by count (stable: code point order on ties)
  const counted: number[] = [], countedN: number[] = [];
  for (const k of byCp) {
    if (chars.count[k] > 0) counted.push(k), countedN.push(chars.count[k]);
  }
  const charOrder = sortByScoreDesc(countedN);
  const nChars = counted.length;
  const order = sortByScoreDesc(cand.score);
  const nTake = Math.max(0, Math.min(order.length, seedSize - nChars));
  const nSeeds = nChars + nTake;
  const pieceOff = new Int32Array(nSeeds + 1);
  const raw = new Float64Array(nSeeds);
  let total = nChars;
  for (let k = 0; k < nTake; k++) total += cand.len[order[k]];
  const pieceText = new Int32Array(total);
  let w = 0;
  for (let k = 0; k < nChars; k++) {
    const id = counted[charOrder[k]];
    pieceText[w++] = chars.cps[id];
    pieceOff[k + 1] = w;
    raw[k] = chars.count[id];
  }
  for (let k = 0; k < nTake; k++) {
    const j = order[k];
    for (let i = cand.pos[j], e = i + cand.len[j]; i < e; i++) pieceText[w++] = text[i];
    pieceOff[nChars + k + 1] = w;
    raw[nChars + k] = cand.score[j];
  }
  return { pieceText, pieceOff, scores: logProbs(raw) };
}

/** ToLogProb in float, as SentencePiece (its pieces hold float scores). */
function logProbs(raw: Float64Array): Float64Array {
  let sum = 0;
  for (let k = 0; k < raw.length; k++) sum = f32(sum + f32(raw[k]));
  const logsum = f32(Math.log(sum));
  const scores = new Float64Array(raw.length);
  for (let k = 0; k < raw.length; k++) scores[k] = f32(Math.log(f32(raw[k])) - logsum);
  return scores;
}

/**
 * Bottom-up walk over the LCP intervals of the included positions (a valid piece of ≥ 2 characters starts there) in
 * sorted order, LCPs over their valid prefixes. Each interval [lb, rb) with value ℓ ≥ 2 is one substring of length
 * ℓ; it branches when two neighbours inside it differ in their symbol after ℓ characters (the next character, or
 * what follows the unit: ▁ when only other words follow it, else END), or when the unit ends right after it in
 * some sentences but not all ("forced"). A position alone below its neighbours' LCP is a substring seen in one unit
 * only: a candidate only if that unit's weight is ≥ 2 and it is forced to branch. Candidates (count ≥ 2 and
 * branching) come out by increasing right end, deeper first: the suffix tree's node order, which breaks equal
 * scores. One pass: the included order, its weight sums and LCPs are made as the walk consumes them; the stack
 * keeps each open interval's first position and the weight sum before it.
 */
function walkSorted(
  sa: Int32Array,
  L: Uint16Array,
  text: Int32Array,
  unitEnd: Int32Array,
  posUnit: Int32Array,
  opt: Pick<SeedOptions, "freqs" | "followers">,
  maxLen: number,
): Candidates {
  const { freqs, followers } = opt;
  const N = sa.length;
  const cand: Candidates = { pos: [], len: [], score: [] };
  const stLcp = new Int32Array(maxLen + 2), stPos = new Int32Array(maxLen + 2);
  const stW = new Float64Array(maxLen + 2), stBranch = new Uint8Array(maxLen + 2);
  let top = 0; // stack[0] = the root (ℓ = 0)
  // the previous included position q: its valid length, weight, follower symbol, forced depth, LCP with its own
  // predecessor; W = the weight of all included positions up to q
  let q = -1, qL = 0, qW = 0, qFollow = 0, qForced = 0, qLcp = 0, W = 0;
  for (let i = 0; i <= N; i++) {
    let p = -1, l = 0, c = 0, pFollow = 0, pForced = 0;
    if (i < N) {
      p = sa[i], l = L[p];
      if (l < 2) continue;
      const fo = followers[posUnit[p]];
      pFollow = fo === 1 ? WS_CHAR : END;
      if (fo === 3 && p + l === unitEnd[p]) pForced = l;
      if (q >= 0) c = commonPrefix(text, q, p, Math.min(qL, l));
    }
    if (q >= 0) {
      // q alone (deeper than both of its LCPs): reported before the intervals ending with it
      if (qForced > qLcp && qForced > c) report(cand, q, qForced, qW);
      let lbPos = q, lbW = W - qW;
      while (c < stLcp[top]) {
        lbPos = stPos[top], lbW = stW[top];
        if (stBranch[top] === 1) report(cand, lbPos, stLcp[top], W - lbW);
        top--;
      }
      if (c > stLcp[top]) {
        top++;
        stLcp[top] = c, stPos[top] = lbPos, stW[top] = lbW, stBranch[top] = 0;
      }
      if (p >= 0 && c >= 2) {
        const symQ = q + c < unitEnd[q] ? text[q + c] : qFollow;
        const symP = p + c < unitEnd[p] ? text[p + c] : pFollow;
        if (symQ !== symP || qForced === c || pForced === c) stBranch[top] = 1;
      }
    }
    if (p < 0) break;
    const w = freqs[posUnit[p]];
    q = p, qL = l, qW = w, qFollow = pFollow, qForced = pForced, qLcp = c;
    W += w;
  }
  return cand;
}

/** A candidate text[pos .. pos+len) seen `count` times (weighted), when count ≥ 2. */
function report(cand: Candidates, pos: number, len: number, count: number): void {
  if (count >= 2) {
    cand.pos.push(pos);
    cand.len.push(len);
    cand.score.push(count * len);
  }
}

/** Length of the common prefix of text[a..] and text[b..], at most m. */
function commonPrefix(text: Int32Array, a: number, b: number, m: number): number {
  let d = 0;
  while (d < m && text[a + d] === text[b + d]) d++;
  return d;
}

/**
 * Positions sorted by their next P characters bounded by the unit, P = the smallest power of two ≥ maxLen (a key
 * that ends with its unit sorts before its extensions), equal keys by position: prefix doubling, where the key of a
 * 2h-key is the pair (key of the h-key at p, key of the h-key at p + h or "none" past the unit's end). Round 1 keys
 * are the character ids, bucketed in code point order; later ones dense ranks. Each round: the positions by their
 * second key (sa order), scattered stably into the buckets of their first key, whose starts the previous ranking
 * recorded (a rank's positions are contiguous in sa), then ranked. Each loop is its own function: V8 optimizes small
 * functions called a few times better than one long function run once.
 */
function sortPositions(
  chars: CharIds,
  byCp: Int32Array,
  unitOff: Int32Array,
  unitEnd: Int32Array,
  maxLen: number,
): Int32Array {
  const N = chars.id.length, K = byCp.length;
  const sa = new Int32Array(N);
  // start[key]: the first slot of the key's bucket (consumed as the scatter's cursor; re-recorded by rank())
  const start = new Int32Array(Math.max(N, K) + 2);
  if (maxLen <= 1 || K >= N) {
    bucketStarts(chars, byCp, start);
    scatterIdentity(chars.id, start, sa);
    return sa;
  }
  const order = new Int32Array(N), rankA = new Int32Array(N), rankB = new Int32Array(N);
  // order: the positions by their second key (round 1: the next character); rank() prepares it for later rounds
  bySecondChar(chars, byCp, unitOff, unitEnd, start, order);
  bucketStarts(chars, byCp, start);
  let key = chars.id, none = -1, nKeys = K;
  for (let h = 1; h < maxLen && nKeys < N; h *= 2) {
    scatter(key, order, start, sa);
    // the last round's ranks would serve no further round
    if (2 * h >= maxLen) break;
    const out = key === rankA ? rankB : rankA;
    const at = pastUnitEnd(unitOff, 2 * h, order);
    nKeys = rank(sa, key, unitEnd, h, none, out, start, order, at);
    key = out, none = 0;
  }
  return sa;
}

/**
 * The positions whose p + h is past their unit's end (key "none": first), in position order, into `out`; returns
 * how many.
 */
function pastUnitEnd(unitOff: Int32Array, h: number, out: Int32Array): number {
  let k = 0;
  for (let u = 0; u + 1 < unitOff.length; u++) {
    const e = unitOff[u + 1];
    for (let p = Math.max(unitOff[u], e - h); p < e; p++) out[k++] = p;
  }
  return k;
}

/**
 * Positions by the character after them in their unit (none first: each unit's last position), by position within
 * equal ones: one scatter into buckets in code point order (a character's bucket holds its occurrences that do not
 * start a unit). Round 1's second-key order, as bySecondKeyRef(…, 1, …) makes it from the positions by character.
 */
function bySecondChar(
  chars: CharIds,
  byCp: Int32Array,
  unitOff: Int32Array,
  unitEnd: Int32Array,
  start: Int32Array,
  out: Int32Array,
): void {
  const { id } = chars;
  const size = chars.occ.slice();
  let nLast = 0;
  for (let u = 0; u + 1 < unitOff.length; u++) {
    if (unitOff[u + 1] > unitOff[u]) size[id[unitOff[u]]]--, nLast++;
  }
  let at = nLast;
  for (let r = 0; r < byCp.length; r++) {
    start[byCp[r]] = at;
    at += size[byCp[r]];
  }
  let none = 0;
  for (let p = 0; p < id.length; p++) {
    if (p + 1 < unitEnd[p]) out[start[id[p + 1]]++] = p;
    else out[none++] = p;
  }
}

/** start[id] = the first slot of the character's bucket (ids in code point order). */
function bucketStarts(chars: CharIds, byCp: Int32Array, start: Int32Array): void {
  let at = 0;
  for (let r = 0; r < byCp.length; r++) {
    start[byCp[r]] = at;
    at += chars.occ[byCp[r]];
  }
}

/** Positions 0..N-1 scattered stably by key into the buckets starting at start[key] (consumed). */
function scatterIdentity(key: Int32Array, start: Int32Array, sa: Int32Array): void {
  for (let p = 0; p < key.length; p++) sa[start[key[p]]++] = p;
}

/** The positions of `order` scattered stably by key into the buckets starting at start[key] (consumed). */
function scatter(key: Int32Array, order: Int32Array, start: Int32Array, sa: Int32Array): void {
  for (let i = 0; i < order.length; i++) {
    const p = order[i];
    sa[start[key[p]]++] = p;
  }
}

/**
 * Dense ranks (1-based, equal pairs share one) of the pairs (key[p], key[p + h] or `none` past the unit's end) in sa
 * order into `out`, start[r] = the first slot of rank r; returns the number of ranks. Also the rest of the next
 * round's order into `next` from slot `at` on: q = p - 2h in sa order, for q whose q + 2h is in its unit.
 */
function rank(
  sa: Int32Array,
  key: Int32Array,
  unitEnd: Int32Array,
  h: number,
  none: number,
  out: Int32Array,
  start: Int32Array,
  next: Int32Array,
  at: number,
): number {
  let r = 0;
  let prevA = -2, prevB = -2;
  const h2 = 2 * h;
  for (let i = 0; i < sa.length; i++) {
    const p = sa[i];
    const a = key[p], b = p + h < unitEnd[p] ? key[p + h] : none;
    if (a !== prevA || b !== prevB) {
      r++;
      start[r] = i;
      prevA = a, prevB = b;
    }
    out[p] = r;
    const q = p - h2;
    if (q >= 0 && p < unitEnd[q]) next[at++] = q;
  }
  return r;
}

/**
 * sortPositions by plain prefix doubling over dense ranks (`rank` = character ranks 1..K in code point order,
 * consumed), each round two full stable counting sorts: the reference of the differential test.
 */
export function sortPositionsRef(rank: Int32Array, K: number, unitEnd: Int32Array, maxLen: number): Int32Array {
  const N = rank.length;
  const sa = new Int32Array(N);
  const tmp = new Int32Array(N);
  const nextRank = new Int32Array(N);
  const cnt = new Int32Array(Math.max(N, K) + 2);
  countingSort(rank, K, identityOrder(N), sa, cnt);
  let nRanks = K;
  for (let h = 1; h < maxLen && nRanks < N; h *= 2) {
    // second key: positions whose p + h is past the unit's end come first (key 0), then by rank of p + h (the order
    // of sa); the stable counting sort by the first key keeps that order among equal first keys.
    bySecondKeyRef(sa, unitEnd, h, tmp);
    countingSort(rank, nRanks, tmp, sa, cnt);
    nRanks = rerank(sa, rank, unitEnd, h, nextRank);
    rank.set(nextRank);
  }
  return sa;
}

/** sortPositions on code points (ranks from the code points themselves), for the differential test. */
export function sortPositionsOf(text: Int32Array, unitEnd: Int32Array, maxLen: number): Int32Array {
  const unitOff = unitOffsets(unitEnd);
  const chars = charIds({ text, unitOff }, new Float64Array(text.length));
  return sortPositions(chars, idsByCodePoint(chars.cps), unitOff, unitEnd, maxLen);
}

/** The unit offsets of per-position unit ends. */
function unitOffsets(unitEnd: Int32Array): Int32Array {
  const off = [0];
  for (let p = 0; p < unitEnd.length; p = unitEnd[p]) off.push(unitEnd[p]);
  return Int32Array.from(off);
}

function identityOrder(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/** Positions ordered by the rank of their h-key at p + h (sa order), those past their unit's end first. */
function bySecondKeyRef(sa: Int32Array, unitEnd: Int32Array, h: number, out: Int32Array): void {
  const N = sa.length;
  let k = 0;
  for (let p = 0; p < N; p++) if (p + h >= unitEnd[p]) out[k++] = p;
  for (let i = 0; i < N; i++) {
    const q = sa[i] - h;
    if (q >= 0 && q + h < unitEnd[q]) out[k++] = q;
  }
}

/** Stable counting sort of `order` by key[p] ∈ 0..maxKey into `out`. */
function countingSort(key: Int32Array, maxKey: number, order: Int32Array, out: Int32Array, cnt: Int32Array): void {
  cnt.fill(0, 0, maxKey + 2);
  for (let i = 0; i < order.length; i++) cnt[key[order[i]] + 1]++;
  for (let r = 1; r <= maxKey + 1; r++) cnt[r] += cnt[r - 1];
  for (let i = 0; i < order.length; i++) {
    const p = order[i];
    out[cnt[key[p]]++] = p;
  }
}

/** New ranks (1-based; equal pairs share one) in sa order; returns the number of ranks. */
function rerank(sa: Int32Array, rank: Int32Array, unitEnd: Int32Array, h: number, out: Int32Array): number {
  let r = 0;
  let prevA = -1, prevB = -1;
  for (let i = 0; i < sa.length; i++) {
    const p = sa[i];
    const a = rank[p], b = p + h < unitEnd[p] ? rank[p + h] : 0;
    if (a !== prevA || b !== prevB) {
      r++;
      prevA = a, prevB = b;
    }
    out[p] = r;
  }
  return r;
}

/** text[a..b) as a string. */
function codePointsToString(text: Int32Array, a: number, b: number): string {
  let s = "";
  for (let i = a; i < b; i++) {
    const c = text[i];
    s += c < 0x10000 ? String.fromCharCode(c) : String.fromCodePoint(c);
  }
  return s;
}

/** Indices of `score` sorted by score descending, equal scores in index order (a stable sort). */
export function sortByScoreDesc(score: number[]): Int32Array {
  const n = score.length;
  let max = 0, integral = true;
  for (let i = 0; i < n; i++) {
    const s = score[i];
    if (s > max) max = s;
    if (!Number.isInteger(s) || s < 0) integral = false;
  }
  const B = 2 ** Math.ceil(Math.log2(n + 1));
  if (integral && (max + 1) * B < 2 ** 53) {
    // integer keys (max − score)·B + index, exact in a double: a plain numeric sort is stable by construction
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = (max - score[i]) * B + i;
    keys.sort();
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = keys[i] % B;
    return out;
  }
  return Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => score[b] - score[a] || a - b);
}
