/**
 * Vocabulary extension. Oracle: the official Chinese-LLaMA / Chinese-Alpaca tokenizer.model sha256 values from
 * ymcui/Chinese-LLaMA-Alpaca SHA256.md (e2676d4c…, 2d967e85…), and the files in ../shared/data byte for byte.
 */
import { assertBytesEqual, assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { PIECE_BYTE, readSentencePieceModel, writeSentencePieceModel } from "../../src/formats/sentencepiece_model.ts";
import { extendVocabulary, huggingFaceTokenizerFiles, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";
import { hasSpmEncode, spmEncodeIds } from "./_spm_oracle.ts";

const BASE = "models/tokenizers/llama/tokenizer.model";
const ADD = "models/tokenizers/chinese_sp/chinese_sp.model";

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("extendVocabulary() rebuilds the official Chinese-LLaMA and Chinese-Alpaca tokenizer.model exactly", {
  ...needsTestData(BASE, ADD, "models/tokenizers/chinese-llama/tokenizer.model"),
}, async () => {
  const root = testDataRoot();
  const base = readSentencePieceModel(Deno.readFileSync(`${root}/${BASE}`));
  const add = readSentencePieceModel(Deno.readFileSync(`${root}/${ADD}`));
  const llama = extendVocabulary(base, add);
  assertEquals(llama.pieces.length, 49953);
  assertEquals(base.pieces.length, 32000); // inputs untouched
  const bytes = writeSentencePieceModel(llama);
  assertEquals(await sha256(bytes), "e2676d4ca29ca1750f6ff203328d73b189321dc5776ceede037cbd36541d70c0");
  assertBytesEqual(bytes, Deno.readFileSync(`${root}/models/tokenizers/chinese-llama/tokenizer.model`));
  const alpaca = extendVocabulary(base, add, { pad: true });
  assertEquals([alpaca.pieces.length, alpaca.pieces[49953]], [49954, { piece: "[PAD]", score: 0 }]);
  assertEquals(
    await sha256(writeSentencePieceModel(alpaca)),
    "2d967e855b1213a439df6c8ce2791f869c84b4f3b6cfacf22b86440b8192a2f8",
  );
  // extending twice adds nothing new (and [PAD] only once)
  assertEquals(extendVocabulary(alpaca, add, { pad: true }).pieces.length, 49954);
});

Deno.test("huggingFaceTokenizerFiles() writes LlamaTokenizer configs, with [PAD] only for Alpaca", () => {
  const llama = huggingFaceTokenizerFiles();
  const alpaca = huggingFaceTokenizerFiles({ pad: true });
  const cfg = JSON.parse(alpaca["tokenizer_config.json"]);
  assertEquals([cfg.tokenizer_class, cfg.add_bos_token, cfg.add_eos_token, cfg.pad_token], [
    "LlamaTokenizer",
    true,
    false,
    "[PAD]",
  ]);
  assertEquals(JSON.parse(llama["tokenizer_config.json"]).pad_token, null);
  assertEquals(llama["tokenizer_config.json"].includes(`"model_max_length": 1000000000000000019884624838656,`), true);
  assertEquals(JSON.parse(alpaca["special_tokens_map.json"]).pad_token, "[PAD]");
  assertEquals("pad_token" in JSON.parse(llama["special_tokens_map.json"]), false);
  assertEquals(JSON.parse(llama["special_tokens_map.json"]).bos_token.content, "<s>");
});

Deno.test("extendVocabulary({byteFallback}) gives tok105 LLaMA's byte pieces; spm_encode agrees on unseen characters", {
  ...needsTestData("models/babyllama105/tok105.model", ADD),
}, async () => {
  const root = testDataRoot();
  const tok105 = readSentencePieceModel(Deno.readFileSync(`${root}/models/babyllama105/tok105.model`));
  const add = readSentencePieceModel(Deno.readFileSync(`${root}/${ADD}`));
  const plain = extendVocabulary(tok105, add);
  const merged = extendVocabulary(tok105, add, { byteFallback: true });
  assertEquals(merged.pieces.length, plain.pieces.length + 256);
  assertEquals(merged.pieces.slice(0, plain.pieces.length), plain.pieces); // the seed's pieces first, unchanged
  assertEquals(merged.pieces[plain.pieces.length], { piece: "<0x00>", score: 0, type: PIECE_BYTE });
  assertEquals(merged.pieces.at(-1), { piece: "<0xFF>", score: 0, type: PIECE_BYTE });
  assertEquals([tok105.trainerSpec?.byteFallback ?? false, merged.trainerSpec?.byteFallback], [false, true]);
  // LLaMA's vocabulary has every byte piece already: nothing to add
  const llama = readSentencePieceModel(Deno.readFileSync(`${root}/${BASE}`));
  assertEquals(extendVocabulary(llama, add, { byteFallback: true }).pieces.length, 49953);
  // a NORMAL piece spelled like a byte piece cannot become one
  const clash = { ...tok105, pieces: [...tok105.pieces, { piece: "<0x41>", score: 0 }] };
  assertThrows(() => extendVocabulary(clash, add, { byteFallback: true }), RangeError, "<0x41>");
  // oracle: SentencePiece's own encoder on the written file, with characters in neither vocabulary and a newline
  const ours = tokenizerFromSentencePiece(readSentencePieceModel(writeSentencePieceModel(merged)));
  const lines = ["用一句话介绍北京。Hello, World! 😀 ⁇", "tab\there ÿ ǅ", "寫一首詩"];
  if (!hasSpmEncode()) return;
  const dir = Deno.makeTempDirSync({ dir: "/tmp", prefix: "yangtuo-bytefb-" });
  try {
    Deno.writeFileSync(`${dir}/m.model`, writeSentencePieceModel(merged));
    Deno.writeTextFileSync(`${dir}/in.txt`, lines.join("\n") + "\n");
    const theirs = await spmEncodeIds(`${dir}/m.model`, `${dir}/in.txt`);
    assertEquals(lines.map((l) => ours.encode(l, { bos: false })), theirs);
    assertEquals(theirs[0].includes(0), false, "no <unk> left: unseen characters are bytes");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
