/**
 * Seeded corpora for the trainer tests and bench: a generated "Chinese" corpus (a Zipf-distributed lexicon of 1–4
 * character words over common CJK ideographs, with full-width punctuation, some Latin and digits), English text
 * from the license files Debian ships in /usr/share/common-licenses, and a mix of both.
 */
import { mulberry32 } from "../_rand.ts";

const PUNCT = ["，", "。", "、", "！", "？", "；", "：", "“", "”", "（", "）", "《", "》"];
const LATIN = ["LLaMA", "GPU", "AI", "Deno", "SentencePiece", "2023", "100", "3.14", "OK", "iPhone"];

/** `nLines` lines of generated Chinese text (same seed, same text). */
export function chineseCorpus(seed: number, nLines: number, nChars = 2500): string[] {
  const r = mulberry32(seed);
  // `nChars` ideographs, Zipf-weighted so that a few hundred are frequent and the tail is rare.
  const chars: number[] = [];
  while (chars.length < nChars) chars.push(0x4e00 + Math.floor(r() * 0x5000));
  const zipf = (n: number, s = 1.05) => {
    const w = Array.from({ length: n }, (_, i) => 1 / Math.pow(i + 1, s));
    const total = w.reduce((a, b) => a + b, 0);
    let acc = 0;
    const cdf = w.map((x) => (acc += x / total));
    return () => {
      const u = r();
      let lo = 0, hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
  };
  const pickChar = zipf(chars.length, 0.9);
  const lexicon: string[] = [];
  for (let i = 0; i < Math.min(6000, nChars * 4); i++) {
    const len = 1 + Math.floor(r() * r() * 4.5);
    let w = "";
    for (let k = 0; k < len; k++) w += String.fromCodePoint(chars[pickChar()]);
    lexicon.push(w);
  }
  const pickWord = zipf(lexicon.length);
  const lines: string[] = [];
  for (let l = 0; l < nLines; l++) {
    let s = "";
    const nWords = 4 + Math.floor(r() * 40);
    for (let k = 0; k < nWords; k++) {
      const u = r();
      if (u < 0.1) s += PUNCT[Math.floor(r() * PUNCT.length)];
      else if (u < 0.13) s += (r() < 0.5 ? " " : "") + LATIN[Math.floor(r() * LATIN.length)] + (r() < 0.5 ? " " : "");
      else s += lexicon[pickWord()];
    }
    lines.push(s);
  }
  return lines;
}

/**
 * English lines from the license texts Debian ships: /usr/share/common-licenses, then /usr/share/doc/PACKAGE/copyright
 * files in name order, up to about `maxBytes` (undefined when there are none).
 */
export function englishCorpus(maxBytes = 240_000): string[] | undefined {
  const files: string[] = [];
  const list = (dir: string) => {
    try {
      return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    } catch {
      return [];
    }
  };
  for (const n of list("/usr/share/common-licenses")) files.push(`/usr/share/common-licenses/${n}`);
  for (const n of list("/usr/share/doc")) files.push(`/usr/share/doc/${n}/copyright`);
  const lines: string[] = [];
  let bytes = 0;
  for (const f of files) {
    if (bytes >= maxBytes) break;
    let text: string;
    try {
      if (!Deno.statSync(f).isFile) continue;
      text = Deno.readTextFileSync(f);
    } catch {
      continue;
    }
    bytes += text.length;
    lines.push(...text.split("\n"));
  }
  return lines.length ? lines : undefined;
}

/** English and Chinese lines interleaved. */
export function mixedCorpus(seed: number, english: string[]): string[] {
  const zh = chineseCorpus(seed, Math.ceil(english.length / 2));
  const out: string[] = [];
  for (let i = 0; i < english.length; i++) {
    out.push(english[i]);
    if (i % 2 === 0) out.push(zh[i >> 1]);
  }
  return out;
}
