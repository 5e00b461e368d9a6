/**
 * The Alpaca template on the real LLaMA tokenizer. Oracle: token ids of the Alpaca prompt published by
 * independent projects that tokenized it with Hugging Face's LlamaTokenizer (the preamble
 * [1, 13866, 338, 385, 15278, …, 2009, 29889] and the in-text markers "\n\n### Instruction:" =
 * 13 13 2277 29937 2799 4080 29901, "\n\n### Response:" = 13 13 2277 29937 13291 29901), which is also what the
 * March-2023 llama.cpp produced for inp_pfx / inp_sfx (no dummy prefix; "\n" is byte fallback <0x0A> = 13).
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { chatTokenizer } from "../../src/chat/chat_tokenizer.ts";
import {
  ALPACA,
  ALPACA_SYSTEM,
  CHINESE_LLAMA_2_VOCAB_SIZE,
  getTemplate,
  LLAMA_2,
  templateForModel,
} from "../../src/chat/templates.ts";
import { readSentencePieceModel, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";

const LLAMA = "models/tokenizers/llama/tokenizer.model";

function llama() {
  const bytes = Deno.readFileSync(`${testDataRoot()}/${LLAMA}`);
  return chatTokenizer(tokenizerFromSentencePiece(readSentencePieceModel(bytes)));
}

Deno.test({
  name: "ALPACA template on the LLaMA tokenizer gives the published Alpaca prompt ids",
  ...needsTestData(LLAMA),
  fn: () => {
    const tok = llama();
    assertEquals(ALPACA.preamble(tok, ALPACA_SYSTEM), [
      1,
      13866,
      338,
      385,
      15278,
      393,
      16612,
      263,
      3414,
      29889,
      14350,
      263,
      2933,
      393,
      7128,
      2486,
      1614,
      2167,
      278,
      2009,
      29889,
    ]);
    const turn = ALPACA.turn(tok, "Hi", 0);
    const pfx = [1, 13, 13, 2277, 29937, 2799, 4080, 29901, 13, 13];
    const sfx = [13, 13, 2277, 29937, 13291, 29901, 13, 13];
    assertEquals(turn.slice(0, pfx.length), pfx);
    assertEquals(turn.slice(-sfx.length), sfx);
    // the user's line in between, without a dummy-prefix "▁", plus llama.cpp's "\n"
    const middle = turn.slice(pfx.length, -sfx.length);
    assertEquals(tok.decode(middle), "Hi\n");
    assertEquals(middle.at(-1), 13);
  },
});

Deno.test({
  name: "chatTokenizer() encodes with and without the dummy prefix",
  ...needsTestData(LLAMA),
  fn: () => {
    const tok = llama();
    const plain = tok.tokenizer.encode("Hello", { bos: false });
    assertEquals(tok.encode("Hello"), plain);
    const raw = tok.encode("Hello", { addDummyPrefix: false });
    assertEquals(tok.tokenizer.pieceOf(plain[0]).startsWith("▁"), true);
    assertEquals(tok.tokenizer.pieceOf(raw[0]).startsWith("▁"), false);
    assertEquals(tok.decode(raw), "Hello");
  },
});

Deno.test("getTemplate() knows alpaca, llama-2 and its alias alpaca-2, and names the choices otherwise", () => {
  assertEquals(getTemplate("alpaca"), ALPACA);
  assertEquals(getTemplate("alpaca-2"), LLAMA_2);
  assertThrows(() => getTemplate("vicuna"), RangeError, "alpaca, llama-2, alpaca-2");
});

Deno.test("templateForModel() recognises a model's chat template by what it writes, as llama.cpp does", () => {
  const inst = "{% for m in messages %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}{% endfor %}";
  assertEquals(templateForModel(inst)?.name, "llama-2");
  assertEquals(templateForModel("{{ '### Instruction:\\n\\n' + m + '\\n\\n### Response:\\n\\n' }}")?.name, "alpaca");
  assertEquals(templateForModel("{{ '### Instruction:\\n' + m + '\\n\\n### Response: ' }}")?.name, "alpaca-sft");
  assertEquals(templateForModel("{{ '<|im_start|>' }}"), undefined);
  assertEquals(templateForModel(undefined), undefined);
  assertEquals(templateForModel(undefined, CHINESE_LLAMA_2_VOCAB_SIZE)?.name, "llama-2");
  assertEquals(templateForModel(undefined, 32000), undefined);
});
