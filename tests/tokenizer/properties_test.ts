/**
 * Properties. Oracle: the definitions — decode(encode(s)) === s for LLaMA-family models (identity normalizer +
 * byte fallback make this total, except for U+2581 itself, which the generator avoids); the streaming decoder's
 * output after any prefix of ids is a prefix of decode(ids), and after flush() equals it. More cases with
 * YANGTUO_PROPERTY_CASES (default 400).
 */
import { assert, assertEquals } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { readSentencePieceModel } from "../../src/formats/sentencepiece_model.ts";
import {
  StreamingDecoder,
  type Tokenizer,
  tokenizerFromGgufMetadata,
  tokenizerFromSentencePiece,
} from "../../src/tokenizer/mod.ts";
import { BytesSource } from "../../src/core/byte_source.ts";
import { randomTexts } from "./_random_text.ts";

const LLAMA_FAMILY = [
  "models/tokenizers/llama/tokenizer.model",
  "models/tokenizers/chinese-llama/tokenizer.model",
  "models/tokenizers/chinese-alpaca/tokenizer.model",
  "models/tokenizers/chinese-llama2/tokenizer.model",
];
const CASES = Number(Deno.env.get("YANGTUO_PROPERTY_CASES") ?? 400);

function load(rel: string): Tokenizer {
  return tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/${rel}`)));
}

/** Streams `ids` one at a time, checking each partial output is a prefix of the batch decode. */
function checkStreaming(tok: Tokenizer, ids: number[]): void {
  const full = tok.decode(ids);
  const dec = new StreamingDecoder(tok);
  let got = "";
  for (const id of ids) {
    got += dec.push(id);
    if (!full.startsWith(got)) {
      throw new Error(`stream ${JSON.stringify(got)} is not a prefix of ${JSON.stringify(full)} (ids ${ids})`);
    }
  }
  got += dec.flush();
  assertEquals(got, full, `ids ${ids}`);
}

for (const rel of LLAMA_FAMILY) {
  const name = rel.split("/")[2];
  Deno.test(`decode(encode(s)) === s on ${CASES} seeded Unicode strings (${name})`, needsTestData(rel), () => {
    const tok = load(rel);
    for (const s of randomTexts(7, CASES)) {
      const ids = tok.encode(s);
      assertEquals(tok.decode(ids), s, JSON.stringify(s));
      assert(ids.every((id) => id >= 0 && id < tok.vocabSize));
    }
  });

  Deno.test(`StreamingDecoder output equals decode() at every split point (${name})`, needsTestData(rel), () => {
    const tok = load(rel);
    for (const s of randomTexts(11, CASES / 2)) checkStreaming(tok, tok.encode(s, { bos: true, eos: true }));
    // arbitrary id sequences: byte pieces that do not form UTF-8, control and unknown pieces anywhere
    const r = mulberry32(99);
    const interesting = [0, 1, 2, 13, 29871, 259, 15043, 231, 193, 160, 0xf0 + 3, 0x9f + 3, 0xa6 + 3, 0x99 + 3];
    for (let c = 0; c < CASES; c++) {
      const len = Math.floor(r() * 12);
      const ids = Array.from(
        { length: len },
        () => r() < 0.6 ? interesting[Math.floor(r() * interesting.length)] : 3 + Math.floor(r() * 256),
      );
      checkStreaming(tok, ids);
    }
  });
}

Deno.test("decode(encode(s)) === s for Baichuan's 64,000-piece Chinese SPM vocab read from GGUF", {
  ...needsTestData("llamacpp/models/ggml-vocab-baichuan.gguf"),
}, async () => {
  let readGguf;
  try {
    ({ readGguf } = await import("../../src/formats/gguf.ts"));
  } catch {
    console.warn("skip: src/formats/gguf.ts not available");
    return;
  }
  const bytes = Deno.readFileSync(`${testDataRoot()}/llamacpp/models/ggml-vocab-baichuan.gguf`);
  const tok = tokenizerFromGgufMetadata(readGguf(new BytesSource(bytes)).metadata);
  for (const s of randomTexts(13, CASES)) assertEquals(tok.decode(tok.encode(s)), s, JSON.stringify(s));
  // Chinese-heavy: far fewer tokens than UTF-8 bytes on Chinese text
  assert(tok.encode("白日依山尽，黄河入海流。", { bos: false }).length <= 12);
});
