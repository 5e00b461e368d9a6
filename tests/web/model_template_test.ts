/**
 * templateForModel(): the page's choice of chat template from GGUF metadata. Oracle: the template texts of
 * Chinese-Alpaca-2 (Llama-2-chat, [INST]) and of GGUFs without a template (the seed's Alpaca).
 */
import { assertEquals } from "../_assert.ts";
import { templateForModel } from "../../web/src/model_template.ts";

Deno.test("templateForModel() picks llama-2 for an [INST] chat template and alpaca otherwise", {
  permissions: "none",
}, () => {
  const llama2 =
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}";
  assertEquals(templateForModel(new Map([["tokenizer.chat_template", llama2]])).name, "llama-2");
  assertEquals(templateForModel(new Map()).name, "alpaca");
  assertEquals(templateForModel(new Map([["tokenizer.chat_template", "{{ '<|im_start|>' }}"]])).name, "alpaca");
  assertEquals(templateForModel(new Map([["tokenizer.chat_template", 42]])).name, "alpaca");
});
