/**
 * renderChat / templateOfMetadata, no permissions. Oracle: the chat templates' own preamble()/turn() (the terminal
 * chat's token sequence, itself checked against llama.cpp -ins in tests/chat) composed by hand.
 */
import { ALPACA, LLAMA_2 } from "../../src/chat/templates.ts";
import { chatTokenizer } from "../../src/chat/chat_tokenizer.ts";
import { CHINESE_LLAMA_2_VOCAB_SIZE, templateOfMetadata } from "../../src/chat/templates.ts";
import { renderChat } from "../../src/serve/chat_prompt.ts";
import { ALPACA_SFT_CHAT_TEMPLATE } from "../../src/train/data.ts";
import { randomVocabMetadata } from "../../fixtures/random_model.ts";
import { tokenizerFromGgufMetadata } from "../../src/tokenizer/mod.ts";
import { assertEquals } from "../_assert.ts";

const tok = chatTokenizer(tokenizerFromGgufMetadata(new Map(randomVocabMetadata(400).map((kv) => [kv.key, kv.value]))));

Deno.test(
  "renderChat() is the terminal chat's preamble and turns, replies closed by EOS",
  { permissions: "none" },
  () => {
    for (const t of [ALPACA, LLAMA_2]) {
      assertEquals(
        renderChat(t, tok, [{ role: "user", content: "你好" }]),
        [...t.preamble(tok, t.defaultSystem), ...t.turn(tok, "你好", 0)],
      );
      const reply = tok.encode("ok", { bos: false, addDummyPrefix: t === LLAMA_2 });
      assertEquals(
        renderChat(t, tok, [
          { role: "system", content: "sys" },
          { role: "user", content: "a" },
          { role: "assistant", content: "ok" },
          { role: "user", content: "b" },
        ]),
        [...t.preamble(tok, "sys"), ...t.turn(tok, "a", 0), ...reply, tok.eosId, ...t.turn(tok, "b", 1)],
      );
    }
    // an explicit empty system prompt is kept empty
    assertEquals(
      renderChat(ALPACA, tok, [{ role: "system", content: "" }, { role: "user", content: "x" }]),
      [...ALPACA.preamble(tok, ""), ...ALPACA.turn(tok, "x", 0)],
    );
  },
);

Deno.test(
  "templateOfMetadata() picks the model's own template (Llama-2-chat, alpaca-sft, a Chinese-Alpaca-2 vocabulary), else Alpaca",
  { permissions: "none" },
  () => {
    assertEquals(templateOfMetadata(new Map(), CHINESE_LLAMA_2_VOCAB_SIZE).name, "llama-2");
    assertEquals(templateOfMetadata(new Map([["tokenizer.chat_template", "{{ '[INST] ' }}"]]), 32000).name, "llama-2");
    assertEquals(templateOfMetadata(new Map(), 49954).name, "alpaca");
    // the page and the server share it: what `sft` records (the default model carries it), and odd values
    assertEquals(
      templateOfMetadata(new Map([["tokenizer.chat_template", ALPACA_SFT_CHAT_TEMPLATE]])).name,
      "alpaca-sft",
    );
    assertEquals(templateOfMetadata(new Map([["tokenizer.chat_template", "{{ '<|im_start|>' }}"]])).name, "alpaca");
    assertEquals(templateOfMetadata(new Map([["tokenizer.chat_template", 42]])).name, "alpaca");
  },
);
