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

/**
 * A trie over UTF-16 code units of the segmentable pieces: transitions in an open-addressing hash keyed by
 * (node, code unit), node values = piece id or -1. Answers "all pieces that are prefixes of s[i..]" in one walk.
 */
class CodeUnitTrie {
  #bits: number;
  #keyNode: Int32Array;
  #keyUnit: Int32Array;
  #child: Int32Array;
  readonly value: Int32Array;

  constructor(entries: Iterable<[string, number]>, totalUnits: number) {
    this.#bits = Math.max(4, Math.ceil(Math.log2(2 * totalUnits + 2)));
    const cap = 1 << this.#bits;
    this.#keyNode = new Int32Array(cap).fill(-1);
    this.#keyUnit = new Int32Array(cap);
    this.#child = new Int32Array(cap);
    const values: number[] = [-1];
    for (const [piece, id] of entries) {
      let node = 0;
      for (let i = 0; i < piece.length; i++) {
        const u = piece.charCodeAt(i);
        let next = this.child(node, u);
        if (next < 0) {
          next = values.length;
          values.push(-1);
          this.#insert(node, u, next);
        }
        node = next;
      }
      values[node] = id;
    }
    this.value = Int32Array.from(values);
  }

  #slot(node: number, unit: number): number {
    return (Math.imul(node, 0x9e3779b1) ^ Math.imul(unit + 1, 0x85ebca77)) >>> (32 - this.#bits);
  }

  #insert(node: number, unit: number, child: number): void {
    const mask = (1 << this.#bits) - 1;
    let h = this.#slot(node, unit);
    while (this.#keyNode[h] !== -1) h = (h + 1) & mask;
    this.#keyNode[h] = node;
    this.#keyUnit[h] = unit;
    this.#child[h] = child;
  }

  /** The child of `node` along code unit `unit`, or -1. */
  child(node: number, unit: number): number {
    const mask = (1 << this.#bits) - 1;
    let h = this.#slot(node, unit);
    for (;;) {
      const k = this.#keyNode[h];
      if (k === -1) return -1;
      if (k === node && this.#keyUnit[h] === unit) return this.#child[h];
      h = (h + 1) & mask;
    }
  }
}

/** SentencePiece unigram segmentation over a Vocab. */
export class UnigramModel {
  readonly vocab: Vocab;
  readonly minScore: number;
  readonly maxScore: number;
  readonly #trie: CodeUnitTrie;
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
    let units = 0;
    for (const [p, id] of vocab.normalIds) {
      units += p.length;
      if (vocab.isUserDefined(id)) this.#userBytes.set(id, utf8Encode(p).length);
    }
    this.#trie = new CodeUnitTrie(vocab.normalIds, units);
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
      const trie = this.#trie;
      let node = 0;
      for (let len = 1; start + len <= size; len++) {
        node = trie.child(node, s.charCodeAt(from + start + len - 1));
        if (node < 0) break; // no piece continues this prefix (the darts trie's -2)
        const id = trie.value[node];
        if (id < 0 || vocab.isUnused(id)) continue;
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
