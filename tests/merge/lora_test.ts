/**
 * Tests of PEFT adapter parsing. Oracle: the adapter_config.json values and scalings displayed on the hfl/* model
 * pages (../shared/data/seed/observed_hf_configs.json); PEFT's key naming (with and without the adapter name).
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { parseAdapterConfig, parseLoraKey } from "../../src/merge/lora.ts";

const OBSERVED = "seed/observed_hf_configs.json";

Deno.test("parseAdapterConfig() gives the scaling the hfl LoRA pages show", needsTestData(OBSERVED), () => {
  const obs = JSON.parse(Deno.readTextFileSync(`${testDataRoot()}/${OBSERVED}`))["adapter_config.json"];
  for (const [name, cfg] of Object.entries(obs) as [string, Record<string, unknown>][]) {
    const c = parseAdapterConfig({ peft_type: "LORA", ...cfg });
    assertEquals(c.scaling, cfg.scaling, name);
    assertEquals(c.modulesToSave, ["embed_tokens", "lm_head"], name);
    assertEquals(c.fanInFanOut, false, name);
  }
});

Deno.test("parseAdapterConfig() rejects malformed and unsupported configs", () => {
  assertThrows(() => parseAdapterConfig({ r: 0, target_modules: ["q_proj"] }), FormatError, '"r" is 0');
  assertThrows(() => parseAdapterConfig({ r: 8, target_modules: 3 }), FormatError, "target_modules");
  assertThrows(() => parseAdapterConfig({ peft_type: "IA3", r: 8, target_modules: [] }), UnsupportedError, "IA3");
  assertThrows(() => parseAdapterConfig({ r: 8, target_modules: [], use_dora: true }), UnsupportedError, "DoRA");
  assertEquals(parseAdapterConfig({ r: 16, lora_alpha: 32, target_modules: [], use_rslora: true }).scaling, 8);
  assertEquals(parseAdapterConfig({ r: 8, target_modules: ["q_proj"], modules_to_save: null }).modulesToSave, []);
});

Deno.test("parseLoraKey() reads PEFT names with and without the adapter name", () => {
  assertEquals(parseLoraKey("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"), {
    part: "A",
    kind: "attn_q",
    layer: 3,
  });
  assertEquals(parseLoraKey("base_model.model.model.layers.0.mlp.down_proj.lora_B.default.weight"), {
    part: "B",
    kind: "ffn_down",
    layer: 0,
  });
  assertEquals(parseLoraKey("base_model.model.model.embed_tokens.weight"), { part: "full", kind: "tok_embd" });
  assertEquals(parseLoraKey("base_model.model.lm_head.modules_to_save.default.weight"), {
    part: "full",
    kind: "output",
  });
  assertEquals(parseLoraKey("base_model.model.lm_head.original_module.weight"), { part: "ignore" });
  assertThrows(() => parseLoraKey("base_model.model.model.embed_tokens.lora_embedding_A"), UnsupportedError);
  assertThrows(() => parseLoraKey("base_model.model.model.layers.0.self_attn.rotary_emb.bias"), FormatError);
});
