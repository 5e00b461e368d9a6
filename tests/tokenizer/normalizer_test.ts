/**
 * Normalizer.normalize() (which runs on the JS string when it can) against normalizeRef() (SentencePiece's algorithm
 * on UTF-8 bytes, step for step): the same output on seeded Unicode text under every whitespace option, with the
 * nmt_nfkc charsmap spm_train writes and with mutated ones (rules that end inside a character, replacements that
 * are not UTF-8, hostile offsets: the same result or the same error).
 */
import { assertEquals } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { Normalizer } from "../../src/tokenizer/normalizer.ts";
import { PrecompiledCharsmap } from "../../src/tokenizer/precompiled_charsmap.ts";
import { nmtNfkcCharsmap } from "../../src/tokenizer/train/nmt_nfkc_charsmap.ts";
import { randomTexts } from "./_random_text.ts";

const OPTIONS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((b) => ({
  addDummyPrefix: (b & 1) !== 0,
  removeExtraWhitespaces: (b & 2) !== 0,
  escapeWhitespaces: (b & 4) !== 0,
  treatWhitespaceAsSuffix: (b & 8) !== 0,
}));

/** Seeded text plus named edge cases: whitespace runs at both ends, ▁ in the input, rules on spaces, astral. */
function texts(seed: number, n: number): string[] {
  return [
    ...randomTexts(seed, n),
    "",
    " ",
    "   ",
    "\u3000",
    " \u3000 a\u3000\u3000b ",
    "▁a▁ ▁",
    "  ＡＢＣ　１２３，。  ",
    "½ ﬁ ㈱ Ⅻ ´ ¨ ̈",
    "a\u0301 é e\u0301",
    "𝒜𝐁 𠀀 😁",
    "\ufdd0\ufffd\uffff",
    "中文 ，中文！",
  ];
}

function checkAgree(cm: PrecompiledCharsmap, lines: string[], label: string): void {
  for (const o of OPTIONS) {
    const n = new Normalizer({ ...o, charsmap: cm });
    for (const t of lines) {
      let want: string | Error, got: string | Error;
      try {
        want = n.normalizeRef(t);
      } catch (e) {
        want = e as Error;
      }
      try {
        got = n.normalize(t);
      } catch (e) {
        got = e as Error;
      }
      if (got !== want) {
        assertEquals(
          got instanceof Error ? `${got.name}: ${got.message}` : got,
          want instanceof Error ? `${want.name}: ${want.message}` : want,
          `${label} ${JSON.stringify(o)} ${JSON.stringify(t)}`,
        );
      }
    }
  }
}

Deno.test("normalize() equals normalizeRef() with nmt_nfkc under every whitespace option", () => {
  const cm = new PrecompiledCharsmap(nmtNfkcCharsmap());
  checkAgree(cm, texts(0x6e6f, 400), "nmt_nfkc");
});

/**
 * Byte offsets in `blob` of the trie units the walk over `bytes` visits, and of the replacement strings of the rules
 * it passes (the blob layout of precompiled_charsmap.ts).
 */
function usedOffsets(blob: Uint8Array, bytes: Uint8Array): number[] {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const nUnits = dv.getUint32(0, true) / 4;
  const unit = (id: number) => dv.getUint32(4 + 4 * id, true);
  const offset = (u: number) => ((u >>> 10) << ((u & 0x200) >>> 6)) >>> 0;
  const out: number[] = [4];
  let id = offset(unit(0));
  for (const b of bytes) {
    id ^= b;
    if (id >= nUnits) break;
    const u = unit(id);
    out.push(4 + 4 * id);
    if ((u & 0x800000ff) >>> 0 !== b) break;
    id ^= offset(u);
    if ((u >>> 8) & 1 && id < nUnits) {
      out.push(4 + 4 * id);
      out.push(4 + 4 * nUnits + (unit(id) & 0x7fffffff));
    }
  }
  return out;
}

Deno.test("normalize() equals normalizeRef() with mutated nmt_nfkc charsmaps (same result or same error)", () => {
  const blob = nmtNfkcCharsmap();
  const r = mulberry32(0x6e70);
  const lines = texts(0x6e71, 40);
  const enc = new TextEncoder();
  // the units and replacement bytes the texts' characters reach: mutations there change what they normalize to
  const targets = [...new Set(lines.flatMap((t) => [...t].flatMap((ch) => usedOffsets(blob, enc.encode(ch + " ")))))];
  let differentOutput = 0;
  const plain = new Normalizer({ ...OPTIONS[7], charsmap: new PrecompiledCharsmap(blob) });
  for (let c = 0; c < 150; c++) {
    const m = blob.slice();
    for (let e = 0; e < 1 + Math.floor(r() * 4); e++) {
      const at = targets[Math.floor(r() * targets.length)] + Math.floor(r() * 4);
      m[Math.min(at, m.length - 1)] = r() < 0.5 ? m[at] ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 256);
    }
    let cm: PrecompiledCharsmap;
    try {
      cm = new PrecompiledCharsmap(m);
    } catch {
      continue;
    }
    checkAgree(cm, lines, `mutation ${c}`);
    const n = new Normalizer({ ...OPTIONS[7], charsmap: cm });
    try {
      if (lines.some((t) => n.normalizeRef(t) !== plain.normalizeRef(t))) differentOutput++;
    } catch {
      differentOutput++;
    }
  }
  // the mutations must reach the rules these texts use, or the test proves nothing
  if (differentOutput < 75) throw new Error(`only ${differentOutput} mutated charsmaps changed any output`);
});
