/**
 * The reference for src/tokenizer/train/unigram_seeds.ts: the first (trie-based) seed extraction, kept for the
 * differential test — every valid substring of every unit inserted into a growing trie with its count, first
 * follower and a branching flag. Slow (a hash-table step per character per start position) but direct.
 * see: google/sentencepiece src/unigram_model_trainer.cc MakeSeedSentencePieces (v0.1.97)
 */
import { compareCodePoints, UNK_CHAR, WS_CHAR } from "../../src/tokenizer/train/corpus.ts";
import { type ExtendState, pieceExtender } from "../../src/tokenizer/train/piece_validator.ts";
import type { TrainerConfig } from "../../src/tokenizer/train/trainer_spec.ts";

const f32 = Math.fround;

/** What seedPiecesRef reads. */
export interface SeedRefInput {
  followers: Uint8Array;
  cfg: TrainerConfig;
  isValid: (cps: ArrayLike<number>) => boolean;
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
export function seedPiecesRef(units: Int32Array[], freqs: number[], input: SeedRefInput): [string, number][] {
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
