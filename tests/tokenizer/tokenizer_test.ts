/**
 * Tokenizer golden vectors. Oracles (all independent of yangtuo): SentencePiece 0.1.97's encode/decode on 55 texts
 * × 6 models (testvectors/tokenizer_vectors.json), SentencePiece 0.2.2 on the seed's 24 texts
 * (seed/tests/tokenizer_golden.jsonl), and llama.cpp's expected ids for its LLaMA SPM vocab
 * (llamacpp_llama_spm_vectors.json, ggml-vocab-llama-spm.gguf.inp/.out, read through readGguf).
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { BytesSource } from "../../src/core/byte_source.ts";
import { readSentencePieceModel } from "../../src/formats/sentencepiece_model.ts";
import {
  ggufVocabMetadata,
  type Tokenizer,
  tokenizerFromGgufMetadata,
  tokenizerFromSentencePiece,
} from "../../src/tokenizer/mod.ts";
import { PrecompiledCharsmap } from "../../src/tokenizer/precompiled_charsmap.ts";
import { Normalizer } from "../../src/tokenizer/normalizer.ts";

const FILES: Record<string, string> = {
  llama: "models/tokenizers/llama/tokenizer.model",
  chinese_sp: "models/tokenizers/chinese_sp/chinese_sp.model",
  chinese_llama: "models/tokenizers/chinese-llama/tokenizer.model",
  chinese_alpaca: "models/tokenizers/chinese-alpaca/tokenizer.model",
  chinese_llama2: "models/tokenizers/chinese-llama2/tokenizer.model",
  tok105: "models/babyllama105/tok105.model",
};
const VECTORS = "models/testvectors/tokenizer_vectors.json";
const GGUF = "llamacpp/models/ggml-vocab-llama-spm.gguf";

const cache = new Map<string, Tokenizer>();
function load(name: string): Tokenizer {
  let t = cache.get(name);
  if (!t) {
    t = tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/${FILES[name]}`)));
    cache.set(name, t);
  }
  return t;
}

interface VectorCase {
  ids: number[];
  pieces: string[];
  decoded: string;
}

for (const name of Object.keys(FILES)) {
  Deno.test(`Tokenizer.encode() and decode() match SentencePiece on all 55 texts for ${name}`, {
    ...needsTestData(VECTORS, FILES[name]),
  }, () => {
    const tv = JSON.parse(Deno.readTextFileSync(`${testDataRoot()}/${VECTORS}`));
    const m = tv.models[name];
    const tok = load(name);
    assertEquals([tok.vocabSize, tok.bosId, tok.eosId, tok.unkId, tok.padId], [
      m.vocab_size,
      m.bos_id,
      m.eos_id,
      m.unk_id,
      m.pad_id,
    ]);
    const bad: string[] = [];
    (tv.texts as string[]).forEach((text, i) => {
      const c: VectorCase = m.cases[i];
      const ids = tok.encode(text, { bos: false });
      if (JSON.stringify(ids) !== JSON.stringify(c.ids)) bad.push(`#${i} ${JSON.stringify(text)}: ${ids} vs ${c.ids}`);
      if (tok.decode(c.ids) !== c.decoded) bad.push(`#${i} decode ${JSON.stringify(tok.decode(c.ids))}`);
      if (
        !c.pieces.includes("<unk>") && JSON.stringify(c.ids.map((id) => tok.pieceOf(id))) !== JSON.stringify(c.pieces)
      ) {
        bad.push(`#${i} pieces`);
      }
    });
    assertEquals(bad, []);
  });
}

Deno.test("Tokenizer.encode() matches llama.cpp's expected ids (llamacpp_llama_spm_vectors.json)", {
  ...needsTestData("models/testvectors/llamacpp_llama_spm_vectors.json", FILES.llama),
}, () => {
  const v = JSON.parse(Deno.readTextFileSync(`${testDataRoot()}/models/testvectors/llamacpp_llama_spm_vectors.json`));
  const tok = load("llama");
  assertEquals(v.cases.length, 43);
  for (const c of v.cases) assertEquals(tok.encode(c.text, { bos: false }), c.ids, JSON.stringify(c.text));
  // llama.cpp prepends BOS by default
  assertEquals(tok.encode(v.cases[11].text), [1, ...v.cases[11].ids]);
});

Deno.test("Tokenizer.encode() matches the seed's golden ids and pieces (tokenizer_golden.jsonl)", {
  ...needsTestData("seed/tests/tokenizer_golden.jsonl", FILES.llama, FILES.chinese_llama, FILES.chinese_alpaca),
}, () => {
  const lines = Deno.readTextFileSync(`${testDataRoot()}/seed/tests/tokenizer_golden.jsonl`).trim().split("\n");
  assertEquals(lines.length, 24);
  const toks: [string, Tokenizer][] = [
    ["llama_32000", load("llama")],
    ["chinese_llama_49953", load("chinese_llama")],
    ["chinese_alpaca_49954", load("chinese_alpaca")],
  ];
  for (const line of lines) {
    const g = JSON.parse(line);
    for (const [key, tok] of toks) {
      assertEquals(tok.encode(g.text, { bos: false }), g[key].ids, `${key} ${JSON.stringify(g.text)}`);
      assertEquals(tok.encodeAsPieces(g.text, { bos: false }), g[key].pieces);
    }
    if ("decode_roundtrip_chinese_llama" in g) {
      assertEquals(load("chinese_llama").decode(g.chinese_llama_49953.ids), g.decode_roundtrip_chinese_llama);
    }
  }
});

async function gguf(): Promise<typeof import("../../src/formats/gguf.ts").readGguf | undefined> {
  try {
    return (await import("../../src/formats/gguf.ts")).readGguf;
  } catch {
    console.warn("skip: src/formats/gguf.ts not available");
    return undefined;
  }
}

for (const vocab of ["ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"]) {
  const file = `llamacpp/models/${vocab}`;
  Deno.test(`tokenizerFromGgufMetadata() reproduces llama.cpp's ${vocab} .inp/.out`, {
    ...needsTestData(file, `${file}.inp`, `${file}.out`),
  }, async () => {
    const readGguf = await gguf();
    if (!readGguf) return;
    const root = testDataRoot();
    const tok = tokenizerFromGgufMetadata(readGguf(new BytesSource(Deno.readFileSync(`${root}/${file}`))).metadata);
    assertEquals([tok.bosId, tok.unkId, tok.addBos, tok.addEos], [1, 0, true, false]);
    const inputs = Deno.readTextFileSync(`${root}/${file}.inp`).split("\n__ggml_vocab_test__\n").slice(0, -1);
    const outputs = Deno.readTextFileSync(`${root}/${file}.out`).split("\n");
    assertEquals(inputs.length, 46);
    inputs.forEach((text, i) => {
      assertEquals(tok.encode(text, { bos: false }).join(" "), outputs[i].trim(), `case ${i} ${JSON.stringify(text)}`);
    });
  });
}

Deno.test("ggufVocabMetadata() of LLaMA's tokenizer.model equals the tokenizer.ggml.* llama.cpp wrote", {
  ...needsTestData(GGUF, FILES.llama),
}, async () => {
  const readGguf = await gguf();
  if (!readGguf) return;
  const root = testDataRoot();
  const theirs = readGguf(new BytesSource(Deno.readFileSync(`${root}/${GGUF}`))).metadata;
  const mine = ggufVocabMetadata(readSentencePieceModel(Deno.readFileSync(`${root}/${FILES.llama}`)));
  assertEquals(mine.size, 9);
  for (const [k, v] of mine) {
    const t = theirs.get(k);
    if (typeof v === "object") {
      assertEquals(Array.from(v as ArrayLike<unknown>), Array.from(t as ArrayLike<unknown>), k);
    } else assertEquals(v, t, k);
  }
});

Deno.test("tokenizerFromGgufMetadata() on a map built from the .model equals the .model tokenizer", {
  ...needsTestData(VECTORS, FILES.chinese_alpaca),
}, () => {
  const model = readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/${FILES.chinese_alpaca}`));
  const meta = ggufVocabMetadata(model);
  assertEquals(meta.get("tokenizer.ggml.padding_token_id"), 49953);
  // plain arrays, as a GGUF reader may return them
  meta.set("tokenizer.ggml.scores", Array.from(meta.get("tokenizer.ggml.scores") as Float32Array));
  meta.set("tokenizer.ggml.token_type", Array.from(meta.get("tokenizer.ggml.token_type") as Int32Array));
  const fromGguf = tokenizerFromGgufMetadata(meta);
  const fromModel = load("chinese_alpaca");
  assertEquals(fromGguf.padId, 49953);
  const tv = JSON.parse(Deno.readTextFileSync(`${testDataRoot()}/${VECTORS}`));
  for (const text of tv.texts as string[]) assertEquals(fromGguf.encode(text), fromModel.encode(text), text);
});

Deno.test("tokenizerFromGgufMetadata() defaults like llama.cpp: all NORMAL types, unknown id 0, BOS <s>", () => {
  const tok = tokenizerFromGgufMetadata(
    new Map<string, unknown>([["tokenizer.ggml.model", "llama"], ["tokenizer.ggml.tokens", [
      "<unk>",
      "<s>",
      "▁",
      "a",
      "▁a",
    ]]]),
  );
  assertEquals([tok.unkId, tok.bosId, tok.eosId, tok.byteFallback], [0, 1, -1, false]);
  // equal scores: merges go leftmost-first; "b" is unknown and not byte-fallen-back
  assertEquals(tok.encode("a ab", { bos: false }), [4, 4, 0]);
  assertEquals(tok.decode([4, 4, 0]), "a a \u2047 ");
});

Deno.test("tokenizerFromGgufMetadata() rejects non-SentencePiece vocabularies and malformed arrays", () => {
  assertThrows(() => tokenizerFromGgufMetadata(new Map([["tokenizer.ggml.model", "gpt2"]])), UnsupportedError, "gpt2");
  assertThrows(() => tokenizerFromGgufMetadata(new Map()), FormatError, "missing");
  assertThrows(
    () =>
      tokenizerFromGgufMetadata(
        new Map<string, unknown>([["tokenizer.ggml.model", "llama"], ["tokenizer.ggml.tokens", ["<unk>", "a"]], [
          "tokenizer.ggml.scores",
          [0],
        ]]),
      ),
    FormatError,
    "scores",
  );
});

Deno.test("Tokenizer.encode() adds BOS by default and EOS on request; pieceOf() and idOf() look up", {
  ...needsTestData(FILES.chinese_llama),
}, () => {
  const tok = load("chinese_llama");
  assertEquals(tok.encode("白日依山尽"), [1, 39226, 30325, 33282, 30329, 32555]);
  assertEquals(tok.encode("白日依山尽", { bos: false, eos: true }), [39226, 30325, 33282, 30329, 32555, 2]);
  assertEquals(tok.encode("", { bos: true }), [1]);
  assertEquals([tok.pieceOf(39226), tok.idOf("▁白"), tok.idOf("no such piece")], ["▁白", 39226, undefined]);
  assertThrows(() => tok.pieceOf(49953), RangeError);
  assertThrows(() => tok.decode([-1]), RangeError);
});

Deno.test("Tokenizer.decode() follows SentencePiece on dummy prefix, control, unknown and broken bytes", {
  ...needsTestData(FILES.llama),
}, () => {
  // expected strings from SentencePiece 0.1.97 DecodeIds on llama/tokenizer.model
  const tok = load("llama");
  const cases: [number[], string][] = [
    [[29871, 15043], " Hello"],
    [[29871, 29871, 15043], "  Hello"],
    [[1, 29871, 15043], " Hello"],
    [[13, 29871, 15043], "\n  Hello"],
    [[0, 29871, 15043], " \u2047   Hello"],
    [[231, 193], "\uFFFD\uFFFD"],
    [[231, 193, 160], "依"],
    [[242, 194, 192], "\uFFFD"],
    [[2, 15043], "Hello"],
    [[1, 1, 15043], "Hello"],
  ];
  for (const [ids, text] of cases) assertEquals(tok.decode(ids), text, JSON.stringify(ids));
});

Deno.test("PrecompiledCharsmap rejects a blob whose trie size is inconsistent", () => {
  assertThrows(() => new PrecompiledCharsmap(new Uint8Array([1, 2])), FormatError, "more than 4");
  assertThrows(() => new PrecompiledCharsmap(new Uint8Array([0xff, 0, 0, 0, 1, 2, 3, 4])), FormatError, "exceeds");
  assertThrows(() => new PrecompiledCharsmap(new Uint8Array([3, 0, 0, 0, 1, 2, 3, 4])), FormatError, "multiple of 4");
});

Deno.test("tokenizerFromSentencePiece() rejects WORD models and byte pieces without byte_fallback", () => {
  const pieces = [{ piece: "<unk>", type: 2 }, { piece: "a" }];
  assertThrows(
    () => tokenizerFromSentencePiece({ pieces, trainerSpec: { modelType: 3 } }),
    UnsupportedError,
    "WORD".length ? "model_type 3" : "",
  );
  assertThrows(
    () =>
      tokenizerFromSentencePiece({ pieces: [...pieces, { piece: "<0x41>", type: 6 }], trainerSpec: { modelType: 2 } }),
    FormatError,
    "byte_fallback is false",
  );
  assertThrows(() => tokenizerFromSentencePiece({ pieces: [{ piece: "a" }] }), FormatError, "no unknown piece");
  assertThrows(
    () => tokenizerFromSentencePiece({ pieces: [...pieces, { piece: "a" }] }),
    FormatError,
    "already defined",
  );
  // UNIGRAM by default: "▁aa" → <unk> (no piece covers ▁), a, a
  assertEquals(tokenizerFromSentencePiece({ pieces }).encode("aa", { bos: false }), [0, 1, 1]);
});

Deno.test(
  "a mutated nmt_nfkc charsmap only ever yields FormatError (seeded fuzz)",
  needsTestData(FILES.chinese_sp),
  () => {
    const model = readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/${FILES.chinese_sp}`));
    const blob = model.normalizerSpec!.precompiledCharsmap!;
    const r = mulberry32(0xc4a5);
    const cases = Math.max(200, Number(Deno.env.get("YANGTUO_FUZZ_CASES") ?? 2000) / 10);
    let rejected = 0;
    for (let c = 0; c < cases; c++) {
      const m = blob.slice();
      for (let e = 0; e < 1 + Math.floor(r() * 8); e++) {
        // mostly the first 4 KiB of the trie (the root's transitions), sometimes anywhere, sometimes the header
        const at = r() < 0.1
          ? Math.floor(r() * 4)
          : r() < 0.7
          ? 4 + Math.floor(r() * 4096)
          : Math.floor(r() * m.length);
        m[at] = Math.floor(r() * 256);
      }
      try {
        const norm = new Normalizer({
          addDummyPrefix: true,
          removeExtraWhitespaces: true,
          escapeWhitespaces: true,
          treatWhitespaceAsSuffix: false,
          charsmap: new PrecompiledCharsmap(m),
        });
        for (const t of ["ＡＢＣ　１２３，。", "½ ﬁ ㈱ Ⅻ", "Hello  world", "白日依山尽"]) norm.normalize(t);
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        rejected++;
      }
    }
    assert(rejected < cases);
  },
);
