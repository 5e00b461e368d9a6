/**
 * pieceValidator (SentencePiece's IsValidSentencePiece rules) on named cases, and pieceExtender (the incremental
 * form the unigram seeding uses) against it on seeded random sequences under every flag combination it supports.
 */
import { assertEquals } from "../_assert.ts";
import {
  type ExtendState,
  pieceExtender,
  pieceValidator,
  validPrefixLengths,
  validPrefixLengthsRef,
} from "../../src/tokenizer/train/piece_validator.ts";
import { mulberry32 } from "../_rand.ts";

const BASE = {
  maxSentencepieceLength: 16,
  splitByUnicodeScript: true,
  splitByWhitespace: true,
  splitByNumber: true,
  splitDigits: false,
  treatWhitespaceAsSuffix: false,
  allowWhitespaceOnlyPieces: false,
};
const cps = (s: string) => [...s].map((c) => c.codePointAt(0)!);

Deno.test("pieceValidator() applies SentencePiece's piece rules", () => {
  const v = pieceValidator(BASE);
  const cases: [string, boolean][] = [
    ["▁the", true],
    ["the▁", false],
    ["a▁b", false],
    ["中文", true],
    ["ひらがな漢字カタカナー", true], // Hiragana/Katakana/ー count as Han
    ["ab中", false], // Latin then Han
    ["a1", false], // Latin then Common digit (split_by_number)
    ["12", true],
    ["a\u0301", true], // combining mark (Inherited) takes the previous script
    ["a\u2585", false],
    ["a\tb", false],
    ["", false],
    ["abcdefghijklmnopq", false], // 17 > 16
  ];
  for (const [s, want] of cases) assertEquals(v(cps(s)), want, s);
  assertEquals(pieceValidator({ ...BASE, splitDigits: true })(cps("12")), false);
  assertEquals(pieceValidator({ ...BASE, splitByNumber: false })(cps("a1")), true);
  assertEquals(pieceValidator({ ...BASE, treatWhitespaceAsSuffix: true })(cps("the▁")), true);
  assertEquals(pieceValidator({ ...BASE, splitByWhitespace: false })(cps("a▁b")), true);
});

Deno.test("pieceExtender() agrees with pieceValidator() on every prefix of random sequences", () => {
  const alphabet = cps("ab▁中文ひカー1２\u0301\u2585\t ,.аб");
  const r = mulberry32(2581);
  for (const splitDigits of [false, true]) {
    for (const splitByNumber of [false, true]) {
      for (const treatWhitespaceAsSuffix of [false, true]) {
        for (const splitByUnicodeScript of [false, true]) {
          const cfg = { ...BASE, splitDigits, splitByNumber, treatWhitespaceAsSuffix, splitByUnicodeScript };
          const v = pieceValidator(cfg), ext = pieceExtender(cfg)!;
          for (let k = 0; k < 3000; k++) {
            const seq = Array.from(
              { length: 1 + Math.floor(r() * 20) },
              () => alphabet[Math.floor(r() * alphabet.length)],
            );
            const st: ExtendState = { length: 0, prevScript: -1, hasDigit: false, hasWs: false };
            let ok = true;
            for (let i = 0; i < seq.length; i++) {
              ok = ok && ext(st, seq[i]);
              // up to the first invalid prefix, the extender and the validator agree exactly
              assertEquals(ok, v(seq.slice(0, i + 1)), JSON.stringify({ cfg, seq, i }));
              if (!ok) break;
            }
          }
        }
      }
    }
  }
});

Deno.test("validPrefixLengths() gives, at every start, how far pieceExtender() extends a piece", () => {
  // the second alphabet is heavy in Inherited marks (runs of them at unit starts, after digits, ▁ and script changes)
  const alphabets = [
    cps("ab▁中文ひカー1２\u0301\u2585\t ,.аб𠀀"),
    cps("a中1▁\u0301\u0301\u0301\u0308\u064b𠀀ー.\u0301"),
  ];
  const r = mulberry32(2582);
  for (const alphabet of alphabets) {
    for (const splitDigits of [false, true]) {
      for (const splitByNumber of [false, true]) {
        for (const treatWhitespaceAsSuffix of [false, true]) {
          for (const splitByUnicodeScript of [false, true]) {
            for (const maxSentencepieceLength of [1, 2, 3, 5, 16]) {
              const cfg = {
                ...BASE,
                splitDigits,
                splitByNumber,
                treatWhitespaceAsSuffix,
                splitByUnicodeScript,
                maxSentencepieceLength,
              };
              const ext = pieceExtender(cfg)!;
              // units of 1–20 characters, back to back
              const text: number[] = [], unitEnd: number[] = [];
              while (text.length < 3000) {
                const n = 1 + Math.floor(r() * 20);
                for (let i = 0; i < n; i++) text.push(alphabet[Math.floor(r() * alphabet.length)]);
                for (let i = 0; i < n; i++) unitEnd.push(text.length);
              }
              const t = Int32Array.from(text), e = Int32Array.from(unitEnd);
              const got = validPrefixLengths(cfg, t, e)!;
              assertEquals(got, validPrefixLengthsRef(cfg, t, e), JSON.stringify(cfg));
              for (let p = 0; p < text.length; p++) {
                const st: ExtendState = { length: 0, prevScript: -1, hasDigit: false, hasWs: false };
                let len = 0;
                while (p + len < unitEnd[p] && ext(st, text[p + len])) len++;
                assertEquals(got[p], Math.max(1, len), JSON.stringify({ cfg, p, piece: text.slice(p, unitEnd[p]) }));
              }
            }
          }
        }
      }
    }
  }
  for (const f of [validPrefixLengths, validPrefixLengthsRef]) {
    assertEquals(f({ ...BASE, splitByWhitespace: false }, new Int32Array(1), new Int32Array(1)), undefined);
    assertEquals(f({ ...BASE, allowWhitespaceOnlyPieces: true }, new Int32Array(1), new Int32Array(1)), undefined);
  }
});
