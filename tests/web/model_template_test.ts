/**
 * templateForModel(): the page's choice of chat template from GGUF metadata. Oracle: the template texts of
 * Chinese-Alpaca-2 (Llama-2-chat, [INST]) and of GGUFs without a template (the seed's Alpaca).
 */
import { assertEquals } from "../_assert.ts";
import { templateForModel } from "../../web/src/model_template.ts";
import { ALPACA_SFT_CHAT_TEMPLATE } from "../../src/train/data.ts";

Deno.test("templateForModel() picks the model's own template (llama-2, alpaca-sft) and alpaca otherwise", {
  permissions: "none",
}, () => {
  const llama2 =
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}";
  assertEquals(templateForModel(new Map([["tokenizer.chat_template", llama2]])).name, "llama-2");
  assertEquals(templateForModel(new Map()).name, "alpaca");
  assertEquals(templateForModel(new Map([["tokenizer.chat_template", "{{ '<|im_start|>' }}"]])).name, "alpaca");
  assertEquals(templateForModel(new Map([["tokenizer.chat_template", 42]])).name, "alpaca");
  // what `sft` records (the default model carries it): the seed's SFT prompt
  assertEquals(templateForModel(new Map([["tokenizer.chat_template", ALPACA_SFT_CHAT_TEMPLATE]])).name, "alpaca-sft");
  assertEquals(templateForModel(new Map(), 55296).name, "llama-2");
});
