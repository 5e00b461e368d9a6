/**
 * The tensor-name table. Oracles: the names in llama.cpp's own GGUF fixture (gguf-format-fixture), and the names
 * transformers and Meta's checkpoints use, written out literally; round trips between the three schemes.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { BytesSource } from "../../src/core/byte_source.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import {
  convertTensorName,
  detectNameScheme,
  expectedShape,
  GLOBAL_KINDS,
  LAYER_KINDS,
  type NameScheme,
  parseTensorName,
  tensorName,
} from "../../src/model/tensor_names.ts";
import type { LlamaConfig } from "../../src/model/config.ts";

const FIXTURE = "models/gguf-format-fixture/llama-2-tiny-random.gguf";

Deno.test({
  name: "parseTensorName() knows every tensor of llama.cpp's GGUF fixture, and tensorName() gives it back",
  ...needsTestData(FIXTURE),
  fn() {
    const f = readGguf(new BytesSource(Deno.readFileSync(`${testDataRoot()}/${FIXTURE}`)));
    assertEquals(f.tensors.length, 12);
    for (const t of f.tensors) {
      const p = parseTensorName("gguf", t.name);
      if (!p) throw new Error(`unknown tensor "${t.name}"`);
      assertEquals(tensorName("gguf", p.kind, p.layer), t.name);
      assertEquals(expectedShape({ ...CFG_FIXTURE }, p.kind), t.shape, t.name);
    }
    assertEquals(detectNameScheme(f.tensors.map((t) => t.name)), "gguf");
  },
});

// llama-2-tiny-random.gguf: embedding 8, feed-forward 32, 2 heads, 2 kv heads, vocab 32,000 (its PROVENANCE).
const CFG_FIXTURE: LlamaConfig = {
  dim: 8,
  hiddenDim: 32,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 2,
  headSize: 4,
  vocabSize: 32000,
  contextLength: 4096,
  normEps: 1e-5,
  ropeTheta: 10000,
};

Deno.test("convertTensorName() maps HF, Meta and GGUF names of the same tensor onto each other", () => {
  const same = [
    ["model.layers.3.self_attn.q_proj.weight", "layers.3.attention.wq.weight", "blk.3.attn_q.weight"],
    ["model.layers.0.mlp.gate_proj.weight", "layers.0.feed_forward.w1.weight", "blk.0.ffn_gate.weight"],
    ["model.layers.31.mlp.down_proj.weight", "layers.31.feed_forward.w2.weight", "blk.31.ffn_down.weight"],
    ["model.layers.1.post_attention_layernorm.weight", "layers.1.ffn_norm.weight", "blk.1.ffn_norm.weight"],
    ["model.embed_tokens.weight", "tok_embeddings.weight", "token_embd.weight"],
    ["lm_head.weight", "output.weight", "output.weight"],
    ["model.norm.weight", "norm.weight", "output_norm.weight"],
  ];
  const schemes: NameScheme[] = ["hf", "meta", "gguf"];
  for (const names of same) {
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) assertEquals(convertTensorName(names[i], schemes[i], schemes[j]), names[j]);
    }
  }
  assertEquals(convertTensorName("rope.freqs", "meta", "gguf"), undefined);
  assertEquals(detectNameScheme(["rope.freqs", "layers.0.attention.wk.weight"]), "meta");
  assertEquals(detectNameScheme(["model.layers.0.self_attn.k_proj.weight"]), "hf");
  assertEquals(detectNameScheme(["something.else"]), undefined);
});

Deno.test("tensorName() round-trips every kind in every scheme and needs a layer for per-layer kinds", () => {
  for (const scheme of ["hf", "meta", "gguf"] as NameScheme[]) {
    for (const kind of LAYER_KINDS) {
      assertEquals(parseTensorName(scheme, tensorName(scheme, kind, 7)), { kind, layer: 7 });
    }
    for (const kind of GLOBAL_KINDS) assertEquals(parseTensorName(scheme, tensorName(scheme, kind)), { kind });
  }
  assertThrows(() => tensorName("gguf", "attn_q"), RangeError, "layer index");
});

Deno.test("expectedShape() gives LLaMA-7B's shapes, with GQA k/v and a vocabulary override", () => {
  const c7b: LlamaConfig = {
    ...CFG_FIXTURE,
    dim: 4096,
    hiddenDim: 11008,
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 32,
    headSize: 128,
    vocabSize: 49953,
  };
  assertEquals(expectedShape(c7b, "tok_embd"), [49953, 4096]);
  assertEquals(expectedShape(c7b, "output", 32000), [32000, 4096]);
  assertEquals(expectedShape(c7b, "ffn_down"), [4096, 11008]);
  assertEquals(expectedShape(c7b, "ffn_up"), [11008, 4096]);
  assertEquals(expectedShape({ ...c7b, nKvHeads: 8 }, "attn_k"), [1024, 4096]);
  assertEquals(expectedShape(c7b, "attn_norm"), [4096]);
});
