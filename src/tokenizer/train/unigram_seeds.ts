/**
 * Seed pieces of the UNIGRAM trainer, as SentencePiece's MakeSeedSentencePieces: every character (by count), then
 * the substrings that occur at least twice and are right-branching (the suffix tree's internal nodes, which esaxx
 * enumerates), valid as pieces, scored by occurrences × length, equal scores in suffix-tree order; scores become
 * float log-probabilities. Substrings are found over the whitespace-split units (a piece never spans ▁): what
 * follows a unit in its sentences (another word or the end) decides whether a substring ending there branches.
 * Algorithm: the unit positions sorted by their next `max_sentencepiece_length` characters (prefix doubling with
 * counting sorts, linear per round), then one bottom-up walk over the LCP intervals of that order.
 * see: google/sentencepiece src/unigram_model_trainer.cc MakeSeedSentencePieces (v0.1.97);
 *      Abouelhoda, Kurtz, Ohlebusch, "Replacing suffix trees with enhanced suffix arrays" (2004), LCP intervals
 */
import { UNK_CHAR, WS_CHAR } from "./corpus.ts";

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
  const nUnits = unitOff.length - 1;
  const N = text.length;
  const maxLen = opt.maxPieceLength;

  // 1. Dense ranks of the code points (1..K, in code point order; 0 = past the unit's end), character counts.
  const seen = new Uint8Array(0x110000);
  const distinct: number[] = [];
  for (let i = 0; i < N; i++) {
    const c = text[i];
    if (!seen[c]) {
      seen[c] = 1;
      distinct.push(c);
    }
  }
  distinct.sort((a, b) => a - b);
  const rankOf = new Int32Array(0x110000);
  for (let r = 0; r < distinct.length; r++) rankOf[distinct[r]] = r + 1;
  const K = distinct.length;
  const charCount = new Float64Array(K + 1);
  // per position: its unit's end, and its weight
  const unitEnd = new Int32Array(N);
  const rank = new Int32Array(N);
  for (let u = 0; u < nUnits; u++) {
    const f = opt.freqs[u];
    for (let i = unitOff[u]; i < unitOff[u + 1]; i++) {
      const r = rankOf[text[i]];
      rank[i] = r;
      unitEnd[i] = unitOff[u + 1];
      const c = text[i];
      if (c !== UNK_CHAR && c !== 0) charCount[r] += f;
    }
  }

  // 2. L[p]: the longest valid piece starting at p (the rules are checked as SentencePiece's seeding loop extends a
  // piece: it stops at the first invalid prefix), at most maxLen and the unit's end.
  const given = opt.prefixLengths?.(text, unitEnd);
  const L = given ?? new Uint16Array(N);
  let nIncluded = 0;
  if (given) {
    for (let p = 0; p < N; p++) if (L[p] >= 2) nIncluded++;
  } else {
    const buf: number[] = [];
    for (let p = 0; p < N; p++) {
      const end = Math.min(unitEnd[p], p + maxLen);
      let len = 1;
      buf.length = 0;
      buf.push(text[p]);
      while (p + len < end) {
        buf.push(text[p + len]);
        if (!opt.isValid(buf)) break;
        len++;
      }
      L[p] = len;
      if (len >= 2) nIncluded++;
    }
  }

  // 3. Sort the positions by their next maxLen characters (bounded by the unit).
  const sa = sortPositions(rank, K, unitEnd, maxLen);

  // 4. The positions with a piece of ≥ 2 characters, in that order; LCP of neighbours over their valid prefixes.
  const ord = new Int32Array(nIncluded);
  {
    let k = 0;
    for (let i = 0; i < N; i++) if (L[sa[i]] >= 2) ord[k++] = sa[i];
  }
  const M = nIncluded;
  // weight prefix sums (W[i] = sum of the weights of ord[0..i)), per position its unit's weight and follower bits
  const posUnit = new Int32Array(N);
  for (let u = 0; u < nUnits; u++) posUnit.fill(u, unitOff[u], unitOff[u + 1]);
  const W = new Float64Array(M + 1);
  for (let i = 0; i < M; i++) W[i + 1] = W[i] + opt.freqs[posUnit[ord[i]]];
  // Per position: the symbol after its unit (WS_CHAR when only other words follow the unit, else END), and the depth
  // whose node branches because the unit ends a sentence in some places and not in others (else 0).
  const follow = new Int32Array(N);
  const forced = new Uint16Array(N);
  for (let p = 0; p < N; p++) {
    const fo = opt.followers[posUnit[p]];
    follow[p] = fo === 1 ? WS_CHAR : END;
    if (fo === 3 && p + L[p] === unitEnd[p]) forced[p] = L[p];
  }
  const lcp = neighbourLcp(ord, L, text);

  // 5. Bottom-up walk over the LCP intervals (see walkIntervals).
  const cand = walkIntervals({ ord, lcp, W, text, unitEnd, follow, forced, maxLen });
  const candPos = cand.pos, candLen = cand.len, candScore = cand.score;

  // 6. Characters by count (code point order on ties), then the candidates by score (suffix-tree order on ties).
  const chars: number[] = [];
  for (let r = 1; r <= K; r++) if (charCount[r] > 0) chars.push(r);
  chars.sort((a, b) => charCount[b] - charCount[a] || a - b);
  const nCand = candPos.length;
  const order = sortByScoreDesc(candScore);
  const nTake = Math.max(0, Math.min(nCand, opt.seedSize - chars.length));
  const nSeeds = chars.length + nTake;
  const pieceOff = new Int32Array(nSeeds + 1);
  const raw = new Float64Array(nSeeds);
  let total = chars.length;
  for (let k = 0; k < nTake; k++) total += candLen[order[k]];
  const pieceText = new Int32Array(total);
  let w = 0;
  for (let k = 0; k < chars.length; k++) {
    pieceText[w++] = distinct[chars[k] - 1];
    pieceOff[k + 1] = w;
    raw[k] = charCount[chars[k]];
  }
  for (let k = 0; k < nTake; k++) {
    const j = order[k];
    for (let i = candPos[j]; i < candPos[j] + candLen[j]; i++) pieceText[w++] = text[i];
    pieceOff[chars.length + k + 1] = w;
    raw[chars.length + k] = candScore[j];
  }
  // ToLogProb in float, as SentencePiece (its pieces hold float scores)
  let sum = 0;
  for (let k = 0; k < raw.length; k++) sum = f32(sum + f32(raw[k]));
  const logsum = f32(Math.log(sum));
  const scores = new Float64Array(raw.length);
  for (let k = 0; k < raw.length; k++) scores[k] = f32(Math.log(f32(raw[k])) - logsum);
  return { pieceText, pieceOff, scores };
}

/** LCP of neighbours in `ord` over their valid prefixes: lcp[i] between ord[i-1] and ord[i]; lcp[0] = lcp[M] = 0. */
function neighbourLcp(ord: Int32Array, L: Uint16Array, text: Int32Array): Int32Array {
  const M = ord.length;
  const lcp = new Int32Array(M + 1);
  for (let i = 1; i < M; i++) {
    const a = ord[i - 1], b = ord[i];
    const m = Math.min(L[a], L[b]);
    let d = 0;
    while (d < m && text[a + d] === text[b + d]) d++;
    lcp[i] = d;
  }
  return lcp;
}

/**
 * Bottom-up walk over the LCP intervals. Each interval [lb, rb) with value ℓ ≥ 2 is one substring of length ℓ
 * (occurring at ord[lb..rb)); it branches when two neighbours inside it differ in their symbol after ℓ characters
 * (the next character, or what follows the unit), or when the unit ends right after it in some sentences but not
 * all. A position alone below its neighbours' LCP is a substring seen in one unit only: a candidate only if that
 * unit's weight is ≥ 2 and it is forced to branch. Candidates (count ≥ 2 and branching) come out by increasing
 * right end, deeper first: the suffix tree's node order, which breaks equal scores.
 */
function walkIntervals(a: {
  ord: Int32Array;
  lcp: Int32Array;
  /** W[i] = sum of the weights of ord[0..i) */
  W: Float64Array;
  text: Int32Array;
  unitEnd: Int32Array;
  follow: Int32Array;
  forced: Uint16Array;
  maxLen: number;
}): { pos: number[]; len: number[]; score: number[] } {
  const { ord, lcp, W, text, unitEnd, follow, forced, maxLen } = a;
  const M = ord.length;
  const pos: number[] = [], len: number[] = [], score: number[] = [];
  const report = (lb: number, rb: number, l: number, branching: boolean) => {
    const count = W[rb] - W[lb];
    if (count >= 2 && branching) {
      pos.push(ord[lb]);
      len.push(l);
      score.push(count * l);
    }
  };
  const stLcp = new Int32Array(maxLen + 2);
  const stLb = new Int32Array(maxLen + 2);
  const stBranch = new Uint8Array(maxLen + 2);
  let top = 0; // stack[0] = the root (ℓ = 0)
  for (let i = 1; i <= M; i++) {
    // position i-1 alone (deeper than both of its LCPs): reported before the intervals ending with it
    const q = ord[i - 1];
    const fd = forced[q];
    if (fd > lcp[i - 1] && fd > lcp[i]) report(i - 1, i, fd, true);
    const c = lcp[i];
    let lb = i - 1;
    while (c < stLcp[top]) {
      lb = stLb[top];
      report(lb, i, stLcp[top], stBranch[top] === 1);
      top--;
    }
    if (c > stLcp[top]) {
      top++;
      stLcp[top] = c, stLb[top] = lb, stBranch[top] = 0;
    }
    if (i < M && c >= 2) {
      const p = ord[i];
      const symQ = q + c < unitEnd[q] ? text[q + c] : follow[q];
      const symP = p + c < unitEnd[p] ? text[p + c] : follow[p];
      if (symQ !== symP || forced[q] === c || forced[p] === c) stBranch[top] = 1;
    }
  }
  return { pos, len, score };
}

/**
 * Positions sorted by their next `maxLen` characters, bounded by the unit (`rank` = character ranks 1..K, consumed):
 * prefix doubling, where the rank of a 2h-key is the pair (rank of the h-key at p, rank of the h-key at p + h or 0
 * past the unit's end), each round two stable counting sorts. Each loop is its own function: V8 optimizes small
 * functions called a few times better than one long function run once.
 */
function sortPositions(rank: Int32Array, K: number, unitEnd: Int32Array, maxLen: number): Int32Array {
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
    bySecondKey(sa, unitEnd, h, tmp);
    countingSort(rank, nRanks, tmp, sa, cnt);
    nRanks = rerank(sa, rank, unitEnd, h, nextRank);
    rank.set(nextRank);
  }
  return sa;
}

function identityOrder(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
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

/** Positions ordered by the rank of their h-key at p + h (sa order), those past their unit's end first. */
function bySecondKey(sa: Int32Array, unitEnd: Int32Array, h: number, out: Int32Array): void {
  const N = sa.length;
  let k = 0;
  for (let p = 0; p < N; p++) if (p + h >= unitEnd[p]) out[k++] = p;
  for (let i = 0; i < N; i++) {
    const q = sa[i] - h;
    if (q >= 0 && q + h < unitEnd[q]) out[k++] = q;
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
function sortByScoreDesc(score: number[]): Int32Array {
  const n = score.length;
  let max = 0, integral = true;
  for (const s of score) {
    max = Math.max(max, s);
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
