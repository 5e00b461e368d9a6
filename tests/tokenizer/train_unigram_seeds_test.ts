/**
 * seedPieces() (sorted positions + LCP intervals) against seedPiecesRef() (the first, trie-based extraction that
 * gave spm_train's models byte for byte): the same pieces, order and scores on the test corpora and on awkward
 * generated ones under every flag that changes what a piece may be (units that end a sentence in some places and
 * not in others, repeated units, one-character units, astral characters, ▅, maximum lengths 1–20).
 */
import { assertEquals } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { charsmapFor, defaultTrainerOptions, trainerConfig } from "../../src/tokenizer/train/mod.ts";
import { prepareCorpus } from "../../src/tokenizer/train/corpus.ts";
import { trainingNormalizer } from "../../src/tokenizer/train/trainer.ts";
import { pieceValidator, validPrefixLengths } from "../../src/tokenizer/train/piece_validator.ts";
import {
  flattenUnits,
  seedPieces,
  seedString,
  sortByScoreDesc,
  sortPositionsOf,
  sortPositionsRef,
} from "../../src/tokenizer/train/unigram_seeds.ts";
import { seedPiecesRef } from "./_unigram_seeds_ref.ts";
import { chineseCorpus, englishCorpus } from "./_train_corpus.ts";

function compare(lines: string[], flags: Record<string, unknown>, label: string): number {
  const options = { ...defaultTrainerOptions(), model_prefix: "m", ...flags };
  const cfg = trainerConfig(options);
  const charsmap = charsmapFor(cfg.normalizationRuleName);
  const corpus = prepareCorpus(lines, lines.map(() => 1), cfg, {
    normalizer: trainingNormalizer(cfg, charsmap),
    metaPieces: ["<unk>", "<s>", "</s>"],
    splitWords: cfg.splitByWhitespace,
  });
  const isValid = pieceValidator(cfg);
  const flat = flattenUnits(corpus.texts);
  const units = corpus.texts.map((_, u) => flat.text.subarray(flat.unitOff[u], flat.unitOff[u + 1]));
  const want = seedPiecesRef(units, corpus.freqs, { followers: corpus.followers, cfg, isValid });
  const got = seedPieces(flat, {
    freqs: corpus.freqs,
    followers: corpus.followers,
    maxPieceLength: cfg.maxSentencepieceLength,
    seedSize: cfg.seedSentencepieceSize,
    prefixLengths: (text, unitEnd) => validPrefixLengths(cfg, text, unitEnd),
    isValid,
  });
  assertEquals(got.pieceOff.length - 1, want.length, `${label}: number of seeds`);
  for (let i = 0; i < want.length; i++) {
    const piece = seedString(got, i);
    if (piece !== want[i][0] || got.scores[i] !== want[i][1]) {
      assertEquals([piece, got.scores[i]], want[i], `${label}: seed ${i}`);
    }
  }
  return want.length;
}

Deno.test("seedPieces() equals the trie reference on the Chinese and English test corpora", () => {
  compare(chineseCorpus(1, 1500), {}, "zh");
  const en = englishCorpus(300_000);
  if (!en) return console.warn("skip: English corpus (/usr/share/common-licenses) unavailable");
  compare(en, {}, "en");
  compare(en, { split_digits: true, max_sentencepiece_length: 5 }, "en split_digits len 5");
});

/** Short lines over a tiny alphabet (many repeats and branchings), with ▁, digits, astral characters and ▅. */
function awkwardLines(seed: number, n: number): string[] {
  const r = mulberry32(seed);
  const alphabet = [
    "a",
    "b",
    "c",
    "ab",
    "1",
    "2",
    " ",
    " ",
    "  ",
    "中",
    "文",
    "𠀀",
    "𝒜",
    "ー",
    "カ",
    "\u0301",
    "▅",
    ".",
  ];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = "";
    const len = Math.floor(r() * r() * 30);
    for (let k = 0; k < len; k++) s += alphabet[Math.floor(r() * alphabet.length)];
    lines.push(s);
  }
  // whole lines and single words repeated, so that units occur with weight ≥ 2 and end sentences only sometimes
  for (let i = 0; i < n / 4; i++) lines.push(lines[Math.floor(r() * lines.length)]);
  lines.push("ab", "ab cab", "ab", "cab ab", "a", "a", "aaaa aaaa aaaa", "aaaa");
  return lines.filter((l) => !l.includes("▅"));
}

Deno.test("seedPieces() equals the trie reference on awkward corpora under every piece rule", () => {
  const flagSets: Record<string, unknown>[] = [
    {},
    { max_sentencepiece_length: 1 },
    { max_sentencepiece_length: 2 },
    { max_sentencepiece_length: 3 },
    { max_sentencepiece_length: 20 },
    { split_digits: true },
    { split_by_number: false, split_by_unicode_script: false },
    { treat_whitespace_as_suffix: true },
    { split_by_whitespace: false },
    { allow_whitespace_only_pieces: true, remove_extra_whitespaces: false },
    { split_by_whitespace: false, treat_whitespace_as_suffix: true },
    { normalization_rule_name: "identity", remove_extra_whitespaces: false },
    { seed_sentencepiece_size: 40 },
  ];
  let total = 0;
  for (let seed = 1; seed <= 4; seed++) {
    const lines = awkwardLines(seed, 200);
    for (const flags of flagSets) total += compare(lines, flags, `seed ${seed} ${JSON.stringify(flags)}`);
  }
  if (total < 1000) throw new Error(`too few seeds compared (${total}): the generated corpora are degenerate`);
});

Deno.test("sortPositions() orders positions exactly as sortPositionsRef() (plain prefix doubling)", () => {
  const r = mulberry32(0x5a);
  let compared = 0;
  for (const alphabetSize of [1, 2, 3, 30, 5000]) {
    for (const maxLen of [1, 2, 3, 4, 5, 8, 9, 16, 20]) {
      // units of 1–25 characters (many repeats with small alphabets), code points spread over BMP and astral
      const text: number[] = [], unitEnd: number[] = [];
      while (text.length < 2000) {
        const n = 1 + Math.floor(r() * 25);
        for (let i = 0; i < n; i++) text.push(0x41 + Math.floor(r() * alphabetSize) * 37);
        for (let i = 0; i < n; i++) unitEnd.push(text.length);
      }
      const t = Int32Array.from(text), e = Int32Array.from(unitEnd);
      const distinct = [...new Set(text)].sort((a, b) => a - b);
      const rankOf = new Map(distinct.map((c, i) => [c, i + 1]));
      const want = sortPositionsRef(t.map((c) => rankOf.get(c)!), distinct.length, e, maxLen);
      assertEquals(sortPositionsOf(t, e, maxLen), want, `alphabet ${alphabetSize}, maxLen ${maxLen}`);
      compared++;
    }
  }
  assertEquals(compared, 45);
});

Deno.test("sortByScoreDesc() is a stable descending sort on both paths (packed doubles, comparator)", () => {
  const r = mulberry32(0x5b);
  const cases: number[][] = [
    [],
    [0],
    [0, 0, 0],
    [5, 5, 1, 5, 0, 7],
    Array.from({ length: 3000 }, () => Math.floor(r() * 40)), // many ties
    Array.from({ length: 3000 }, () => Math.floor(r() * 2 ** 31) * 2 + 1), // large integers
    Array.from({ length: 500 }, () => Math.floor(r() * 2 ** 40)), // packed doubles
    Array.from({ length: 500 }, () => Math.floor(r() * 30) / 4), // comparator
  ];
  for (const score of cases) {
    const want = Array.from({ length: score.length }, (_, i) => i).sort((a, b) => score[b] - score[a] || a - b);
    assertEquals([...sortByScoreDesc(score)], want, `${score.length} scores, first ${score[0]}`);
  }
});
