/**
 * BPE and UNIGRAM edge paths real models do not reach (USER_DEFINED and UNUSED pieces, score ties, whitespace
 * options, no byte fallback). Oracle: SentencePiece's C++ library via /usr/bin/python3 + python3-sentencepiece on
 * synthetic models written with writeSentencePieceModel (skipped when unavailable). Plus the no-quadratic guard:
 * 1 MB without a single space must encode in seconds (a quadratic BPE needs ~10^12 steps).
 */
import { assert, assertEquals } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import {
  readSentencePieceModel,
  type SentencePiece,
  type SentencePieceModel,
  writeSentencePieceModel,
} from "../../src/formats/sentencepiece_model.ts";
import { tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";
import { byteToPiece } from "../../src/tokenizer/vocab.ts";

function synthetic(modelType: number, opts: { byteFallback?: boolean; removeExtra?: boolean; suffix?: boolean }) {
  const pieces: SentencePiece[] = [
    { piece: "<unk>", score: 0, type: 2 },
    { piece: "<s>", score: 0, type: 3 },
    { piece: "</s>", score: 0, type: 3 },
    { piece: "<sep>", score: 0, type: 4 },
    { piece: "▁", score: -1 },
    { piece: "a", score: -2 },
    { piece: "b", score: -2 },
    { piece: "c", score: -3 },
    { piece: "ab", score: -1.5 },
    { piece: "bc", score: -1.5 }, // ties with "ab"
    { piece: "ca", score: 5, type: 5 }, // UNUSED but best-scoring
    { piece: "cab", score: -1 },
    { piece: "▁a", score: -1.25 },
    { piece: "abc", score: -0.5 },
    { piece: "▁▁", score: -0.75 },
    { piece: "aa", score: -1.5 },
    { piece: "a▁", score: -4 },
  ];
  if (opts.byteFallback) { for (let b = 0; b < 256; b++) pieces.push({ piece: byteToPiece(b), score: 0, type: 6 }); }
  const model: SentencePieceModel = {
    pieces,
    trainerSpec: {
      modelType,
      vocabSize: pieces.length,
      byteFallback: opts.byteFallback ?? false,
      treatWhitespaceAsSuffix: opts.suffix ?? false,
    },
    normalizerSpec: { name: "identity", addDummyPrefix: true, removeExtraWhitespaces: opts.removeExtra ?? false },
  };
  return model;
}

function texts(seed: number, n: number): string[] {
  const r = mulberry32(seed);
  const alphabet = ["a", "b", "c", " ", "  ", "▁", "<sep>", "x", "依", "🦙", "ab", "ca"];
  return Array.from({ length: n }, () => {
    let s = "";
    const len = Math.floor(r() * 14);
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(r() * alphabet.length)];
    return s;
  });
}

const SCRIPT = `
import json, sys
import sentencepiece as spm
req = json.load(sys.stdin)
sp = spm.SentencePieceProcessor(model_file=req["model"])
ids = [sp.encode(t) for t in req["texts"]]
json.dump({"ids": ids, "decoded": [sp.decode(i) for i in ids]}, sys.stdout)
`;

async function oracle(model: SentencePieceModel, input: string[]) {
  const path = Deno.makeTempFileSync({ prefix: "yangtuo-sp-", suffix: ".model" });
  try {
    Deno.writeFileSync(path, writeSentencePieceModel(model));
    const child = new Deno.Command("/usr/bin/python3", {
      args: ["-c", SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify({ model: path, texts: input })));
    await w.close();
    const r = await child.output();
    if (r.code !== 0) return undefined;
    return JSON.parse(new TextDecoder().decode(r.stdout)) as { ids: number[][]; decoded: string[] };
  } catch {
    return undefined;
  } finally {
    Deno.removeSync(path);
  }
}

const variants: [string, number, Parameters<typeof synthetic>[1]][] = [
  ["BPE, byte fallback", 2, { byteFallback: true }],
  ["BPE, no byte fallback, remove_extra_whitespaces", 2, { removeExtra: true }],
  ["BPE, treat_whitespace_as_suffix", 2, { suffix: true, byteFallback: true }],
  ["UNIGRAM, no byte fallback", 1, {}],
  ["UNIGRAM, byte fallback, remove_extra_whitespaces", 1, { byteFallback: true, removeExtra: true }],
];
for (const [name, type, opts] of variants) {
  Deno.test(`Tokenizer equals SentencePiece C++ on a synthetic model with user-defined/unused pieces (${name})`, async () => {
    const model = synthetic(type, opts);
    const input = texts(type * 10 + Object.keys(opts).length, 400);
    const sp = await oracle(model, input);
    if (!sp) {
      console.warn("skip: python3-sentencepiece unavailable");
      return;
    }
    const tok = tokenizerFromSentencePiece(model);
    input.forEach((t, i) => {
      assertEquals(tok.encode(t, { bos: false }), sp.ids[i], JSON.stringify(t));
      assertEquals(tok.decode(sp.ids[i]), sp.decoded[i], `decode ${JSON.stringify(t)}`);
    });
  });
}

Deno.test("BPE encode of 1 MB without spaces is not quadratic (a run of one letter, and Chinese)", {
  ...needsTestData("models/tokenizers/chinese-llama/tokenizer.model"),
}, () => {
  const tok = tokenizerFromSentencePiece(
    readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/models/tokenizers/chinese-llama/tokenizer.model`)),
  );
  const r = mulberry32(3);
  const cjk = "白日依山尽黄河入海流欲穷千里目更上一层楼中华人民共和国";
  let zh = "";
  while (zh.length < 350_000) zh += cjk[Math.floor(r() * cjk.length)];
  for (const text of ["a".repeat(1 << 20), zh]) {
    const t = performance.now();
    const ids = tok.encode(text, { bos: false });
    const ms = performance.now() - t;
    assert(ms < 30_000, `took ${ms} ms`);
    assert(ids.length > 0 && ids.length < text.length);
    assertEquals(tok.decode(ids), text);
  }
});
