/**
 * Model stage, UNIGRAM: SentencePiece's optimized Viterbi. For each character position keep the best path ending
 * there; each piece starting at a position extends it; a character no piece covers gets an unknown node with score
 * min_score − 10. Scores are float32 like SentencePiece's, including its float/double mix, so ties resolve alike.
 * see: google/sentencepiece src/unigram_model.cc Model::EncodeOptimized (v0.1.97)
 */
import type { Vocab } from "./vocab.ts";
import { PIECE_NORMAL } from "../formats/sentencepiece_model.ts";
import { utf8Encode } from "./utf8.ts";

const UNK_PENALTY = 10;
const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38;

/** SentencePiece unigram segmentation over a Vocab. */
export class UnigramModel {
  readonly vocab: Vocab;
  readonly minScore: number;
  readonly maxScore: number;
  /** Every prefix of every segmentable piece (to stop scanning early, like the trie's -2). */
  readonly #prefixes = new Set<string>();
  readonly #maxLen: number;
  /** UTF-8 byte length per user-defined id (their score depends on it). */
  readonly #userBytes = new Map<number, number>();

  constructor(vocab: Vocab) {
    this.vocab = vocab;
    let min = FLT_MAX, max = FLT_MIN;
    for (let i = 0; i < vocab.size; i++) {
      if (vocab.types[i] === PIECE_NORMAL) {
        min = Math.min(min, vocab.scores[i]);
        max = Math.max(max, vocab.scores[i]);
      }
    }
    this.minScore = min;
    this.maxScore = max;
    let maxLen = 0;
    for (const [p, id] of vocab.normalIds) {
      maxLen = Math.max(maxLen, p.length);
      for (let k = 1; k <= p.length; k++) this.#prefixes.add(p.slice(0, k));
      if (vocab.isUserDefined(id)) this.#userBytes.set(id, utf8Encode(p).length);
    }
    this.#maxLen = maxLen;
  }

  /** Segments normalized `s[from, to)`; appends (id, start, end) triples to `out`. */
  encode(s: string, from: number, to: number, out: number[]): void {
    if (to <= from) return;
    const vocab = this.vocab;
    const size = to - from;
    const unkScore = Math.fround(this.minScore - UNK_PENALTY);
    // best path ending at each UTF-16 offset (relative to `from`)
    const bestScore = new Float32Array(size + 1);
    const bestStart = new Int32Array(size + 1).fill(-1);
    const bestId = new Int32Array(size + 1).fill(-1);
    for (let start = 0; start < size;) {
      const till = bestScore[start];
      const c = s.charCodeAt(from + start);
      const mblen = c >= 0xd800 && c < 0xdc00 && start + 1 < size ? 2 : 1;
      let hasSingle = false;
      const limit = Math.min(size - start, this.#maxLen);
      for (let len = 1; len <= limit; len++) {
        const piece = s.slice(from + start, from + start + len);
        if (!this.#prefixes.has(piece)) break;
        const id = vocab.normalIds.get(piece);
        if (id === undefined || vocab.isUnused(id)) continue;
        const end = start + len;
        // Double arithmetic for the candidate, stored as float32: as SentencePiece does.
        const score = vocab.isUserDefined(id)
          ? Math.fround(this.#userBytes.get(id)! * this.maxScore) - 0.1
          : vocab.scores[id];
        const cand = score + till;
        if (bestStart[end] === -1 || cand > bestScore[end]) {
          bestScore[end] = cand;
          bestStart[end] = start;
          bestId[end] = id;
        }
        if (len === mblen) hasSingle = true;
      }
      if (!hasSingle) {
        const end = start + mblen;
        const cand = Math.fround(unkScore + till);
        if (bestStart[end] === -1 || cand > bestScore[end]) {
          bestScore[end] = cand;
          bestStart[end] = start;
          bestId[end] = vocab.unkId;
        }
      }
      start += mblen;
    }
    const rev: number[] = [];
    for (let end = size; end > 0;) {
      const start = bestStart[end];
      rev.push(bestId[end], from + start, from + end);
      end = start;
    }
    for (let i = rev.length - 3; i >= 0; i -= 3) out.push(rev[i], rev[i + 1], rev[i + 2]);
  }
}
