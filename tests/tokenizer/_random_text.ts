/**
 * Seeded random Unicode text for property tests: ASCII words and punctuation, whitespace runs (space, tab, newline,
 * CR, U+3000), Latin-1 and accents, CJK (common and rare, incl. astral 𠀀), full-width forms, emoji with ZWJ and
 * variation selectors, and arbitrary non-surrogate code points.
 */
import { mulberry32 } from "../_rand.ts";

const WORDS = ["Hello", " world", "LLaMA", "the", " is", "Chinese", "1314151", "3333", "café", "naïve", "Führer"];
const CJK = "白日依山尽黄河入海流欲穷千里目更上一层楼床前明月光疑是地上霜举头望低思故乡中华人民共和国鬱齉龘靐";
const SPECIAL = [
  "\t",
  "\n",
  "\r\n",
  "  ",
  "   ",
  " ",
  "\u3000",
  "，",
  "。",
  "～",
  "！",
  "😁",
  "🦙",
  "🚀",
  "😶‍🌫️",
  "½",
  "ﬁ",
  "Ａ",
  "𠀀",
  "𪚥",
];

/** `n` random strings with up to `maxParts` parts each (never lone surrogates, never U+2581). */
export function randomTexts(seed: number, n: number, maxParts = 12): string[] {
  const r = mulberry32(seed);
  const pick = <T>(a: ArrayLike<T>) => a[Math.floor(r() * a.length)];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = "";
    const parts = Math.floor(r() * maxParts);
    for (let p = 0; p < parts; p++) {
      const k = r();
      if (k < 0.25) s += pick(WORDS);
      else if (k < 0.5) s += pick(Array.from(CJK));
      else if (k < 0.7) s += pick(SPECIAL);
      else if (k < 0.8) s += String.fromCharCode(0x20 + Math.floor(r() * 95));
      else {
        let cp: number;
        do cp = Math.floor(r() * 0x110000); while ((cp >= 0xd800 && cp < 0xe000) || cp === 0x2581);
        s += String.fromCodePoint(cp);
      }
    }
    out.push(s);
  }
  return out;
}

/** Ranges where NFKC-style charsmaps have many (multi-character) rules: full/half-width forms, CJK compatibility,
 * enclosed and squared characters, Hangul jamo, combining marks, Latin with diacritics, ligatures. */
const NORMALIZATION_RANGES: [number, number][] = [
  [0xff00, 0xffef],
  [0x3000, 0x33ff],
  [0x2460, 0x24ff],
  [0x1100, 0x11ff],
  [0xac00, 0xac40],
  [0x0300, 0x036f],
  [0x00c0, 0x017f],
  [0xfb00, 0xfb06],
  [0xf900, 0xfaff],
  [0x2150, 0x218f],
  [0x0020, 0x007e],
];

/** `n` strings dense in characters that NFKC-like normalizers rewrite, with spaces between some. */
export function normalizationTexts(seed: number, n: number): string[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => {
    let s = "";
    const len = Math.floor(r() * 16);
    for (let i = 0; i < len; i++) {
      const [lo, hi] = NORMALIZATION_RANGES[Math.floor(r() * NORMALIZATION_RANGES.length)];
      s += String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
      if (r() < 0.15) s += " ";
    }
    return s;
  });
}
