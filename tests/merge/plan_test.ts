/**
 * Tests of the merge plan: the seed's LoRA formula on its golden (merge_vectors.json part "lora_merge", a numpy
 * re-statement of the seed script), Meta shard sizes (part "pth_sharding"), vocabulary growth through several
 * LoRAs, fan_in_fan_out, and every pre-flight check (one named case each).
 * Oracles: ../shared/data/seed/tests/merge_vectors.json; naive f64 recomputation for the property cases.
 */
import { assert, assertAllClose, assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import type { DType } from "../../src/core/dtypes.ts";
import { UserError } from "../../src/core/errors.ts";
import { tensorBytes } from "../../src/merge/encode.ts";
import { loraAdapterFromTensors, parseAdapterConfig, tensorKey } from "../../src/merge/lora.ts";
import { metaSplit } from "../../src/merge/meta_shards.ts";
import { type BaseCheckpoint, canonicalOrder, MergeExecutor, planMerge } from "../../src/merge/plan.ts";
import type { SourceTensor } from "../../src/merge/source_tensor.ts";
import type { LlamaConfig } from "../../src/model/config.ts";
import { type TensorKind, tensorName } from "../../src/model/tensor_names.ts";
import { tinyConfig, tinyShape } from "../_tiny_model.ts";
import { randomUniform } from "../_rand.ts";

const VECTORS = "seed/tests/merge_vectors.json";
const vectors = () => JSON.parse(Deno.readTextFileSync(`${testDataRoot()}/${VECTORS}`));

function mem(name: string, shape: number[], values: Float32Array, dtype: DType = "F32"): SourceTensor {
  const cols = shape.length === 1 ? shape[0] : values.length / shape[0];
  return {
    name,
    dtype,
    shape,
    readRows(r0, n, dst = new Float32Array(n * cols)) {
      const v = dst.subarray(0, n * cols);
      v.set(values.subarray(r0 * cols, (r0 + n) * cols));
      return v;
    },
  };
}

const hexToF32 = (rows: string[][]) =>
  Float32Array.from(new Float16Array(Uint16Array.from(rows.flat(), (h) => parseInt(h, 16)).buffer));

/** A base checkpoint of random values for `c`, with overrides. */
function memBase(
  c: LlamaConfig,
  dtype: DType = "F32",
  over: Partial<Record<string, SourceTensor>> = {},
): BaseCheckpoint {
  const tensors = new Map<string, SourceTensor>();
  let seed = 1;
  for (const { kind, layer } of canonicalOrder(c.nLayers)) {
    const shape = tinyShape(c, kind);
    const n = shape.reduce((a, b) => a * b, 1);
    let v = randomUniform(n, seed++, -0.5, 0.5);
    if (dtype === "F16") v = Float32Array.from(Float16Array.from(v));
    const k = tensorKey(kind, layer);
    tensors.set(k, over[k] ?? mem(tensorName("hf", kind, layer), shape, v, dtype));
  }
  return { label: "mem", format: "hf", layout: "hf", config: c, tensors };
}

function lora(cfg: Record<string, unknown>, tensors: SourceTensor[], label = "lora") {
  return loraAdapterFromTensors(label, parseAdapterConfig({ peft_type: "LORA", ...cfg }), tensors);
}

Deno.test("MergeExecutor reproduces the seed's fp16 LoRA merge golden byte for byte", needsTestData(VECTORS), () => {
  const v = vectors().lora_merge;
  // W is [out 4, in 6]: use it as ffn_gate of a model with dim 6, hiddenDim 4
  const c = tinyConfig({ dim: 6, hiddenDim: 4, nLayers: 1, nHeads: 1, vocabSize: 3 });
  const W = hexToF32(v.W_fp16_hex), A = hexToF32(v.lora_A_fp16_hex), B = hexToF32(v.lora_B_fp16_hex);
  const base = memBase(c, "F16", { "ffn_gate.0": mem("model.layers.0.mlp.gate_proj.weight", [4, 6], W, "F16") });
  const p = "base_model.model.model.layers.0.mlp.gate_proj";
  const l = lora({ r: v.r, lora_alpha: v.lora_alpha, target_modules: ["gate_proj"] }, [
    mem(`${p}.lora_A.weight`, [2, 6], A, "F16"),
    mem(`${p}.lora_B.weight`, [4, 2], B, "F16"),
  ]);
  assertEquals(l.config.scaling, v.scaling);
  const plan = planMerge(base, [l]);
  const t = plan.tensors.find((x) => x.key === "ffn_gate.0")!;
  const bytes = tensorBytes(new MergeExecutor(plan), t, "meta", "F16");
  const hex = Array.from(new Uint16Array(bytes.buffer), (h) => h.toString(16).padStart(4, "0"));
  assertEquals(hex, (v.merged_fp16_hex as string[][]).flat());
});

Deno.test(
  "metaSplit() gives the seed's shard sizes for 7B/13B/33B with 49,953 and 49,954 rows",
  needsTestData(VECTORS),
  () => {
    const s = vectors().pth_sharding;
    const cases: [string, number, number, number][] = [["7B", 4096, 1, 49954], ["13B", 5120, 2, 49953], [
      "33B",
      6656,
      4,
      49953,
    ]];
    for (const [size, dim, n, vocab] of cases) {
      assertEquals(metaSplit("tok_embd", [vocab, dim], n).sizes, s[size]["tok_embeddings.weight_cols_per_shard"]);
      assertEquals(metaSplit("output", [vocab, dim], n).sizes, s[size]["output.weight_rows_per_shard"]);
      if (s[size].alpaca_49954) {
        assertEquals(metaSplit("output", [49954, dim], n).sizes, s[size].alpaca_49954["output.weight_rows_per_shard"]);
      }
    }
    assertEquals(metaSplit("ffn_norm", [5120], 2), { sizes: [5120, 5120] });
    assertEquals(metaSplit("ffn_down", [5120, 13824], 2).dim, 1);
    assertEquals(metaSplit("attn_k", [5120, 5120], 2).dim, 0);
  },
);

const C = tinyConfig({ dim: 8, hiddenDim: 24, nLayers: 2, nHeads: 2, vocabSize: 10 });

function factors(kind: TensorKind, layer: number, r: number, fan: boolean, seed: number): SourceTensor[] {
  const [o, i] = tinyShape(C, kind);
  const p = `base_model.model.${tensorName("hf", kind, layer).replace(/\.weight$/, "")}`;
  const a = fan ? [r, o] : [r, i], b = fan ? [i, r] : [o, r];
  return [
    mem(`${p}.lora_A.weight`, a, randomUniform(a[0] * a[1], seed)),
    mem(`${p}.lora_B.weight`, b, randomUniform(b[0] * b[1], seed + 1)),
  ];
}

function naiveMerged(w: Float32Array, rows: number, cols: number, f: SourceTensor[], s: number, fan: boolean) {
  const A = f[0].readRows(0, f[0].shape[0]), B = f[1].readRows(0, f[1].shape[0]);
  const r = f[0].shape[0];
  return Float32Array.from(w, (x, idx) => {
    const i = Math.floor(idx / cols), j = idx % cols;
    let acc = 0;
    for (let k = 0; k < r; k++) acc += fan ? B[j * r + k] * A[k * rows + i] : B[i * r + k] * A[k * cols + j];
    return x + acc * s;
  });
}

Deno.test("planMerge() applies several LoRAs in order, fan_in_fan_out transposed, in f32", () => {
  const base = memBase(C);
  const f1 = factors("attn_v", 1, 2, false, 10), f2 = factors("attn_v", 1, 3, true, 20);
  const l1 = lora({ r: 2, lora_alpha: 6, target_modules: ["v_proj"] }, f1, "first");
  const l2 = lora({ r: 3, lora_alpha: 1.5, fan_in_fan_out: true, target_modules: ["v_proj"] }, f2, "second");
  const plan = planMerge(base, [l1, l2]);
  const t = plan.tensors.find((x) => x.key === "attn_v.1")!;
  const got = new MergeExecutor(plan).computeRows(t, "hf", 0, 8, new Float32Array(64));
  const w0 = base.tensors.get("attn_v.1")!.readRows(0, 8);
  const want = naiveMerged(naiveMerged(w0, 8, 8, f1, 3, false), 8, 8, f2, 0.5, true);
  assertAllClose(got, want, { atol: 1e-6, rtol: 1e-6 });
  // B = 0 changes nothing
  const zero = [f1[0], mem(f1[1].name, [8, 2], new Float32Array(16))];
  const p0 = planMerge(base, [lora({ r: 2, lora_alpha: 6, target_modules: ["v_proj"] }, zero)]);
  const t0 = p0.tensors.find((x) => x.key === "attn_v.1")!;
  assertEquals(Array.from(new MergeExecutor(p0).computeRows(t0, "hf", 0, 8, new Float32Array(64))), Array.from(w0));
});

Deno.test("planMerge() grows the vocabulary LoRA by LoRA: 10 → 12 (replaced) → 13 (new row initialised)", () => {
  const base = memBase(C);
  const emb12 = mem("base_model.model.model.embed_tokens.weight", [12, 8], randomUniform(96, 3));
  const l1 = {
    ...lora({ r: 2, lora_alpha: 2, target_modules: ["q_proj"] }, [...factors("attn_q", 0, 2, false, 1), emb12]),
  };
  l1.tokenizerSize = 12;
  const l2 = { ...lora({ r: 2, lora_alpha: 2, target_modules: ["q_proj"] }, factors("attn_q", 0, 2, false, 5)) };
  l2.tokenizerSize = 13;
  const plan = planMerge(base, [l1, l2]);
  assertEquals(plan.config.vocabSize, 13);
  const t = plan.tensors.find((x) => x.key === "tok_embd")!;
  assertEquals(t.shape, [13, 8]);
  const got = new MergeExecutor(plan).computeRows(t, "meta", 0, 13, new Float32Array(13 * 8));
  assertEquals(Array.from(got.subarray(0, 96)), Array.from(emb12.readRows(0, 12)));
  const newRow = got.subarray(96);
  assert(newRow.some((x) => x !== 0) && newRow.every((x) => Math.abs(x) < 0.2), "new row ~ N(0, 0.02²)");
  const out = plan.tensors.find((x) => x.key === "output")!;
  assertEquals(out.shape, [13, 8]);
  assert(plan.warnings.some((w) => w.includes("initialised randomly")));
});

Deno.test("planMerge() names the right tokenizer when LoRA embeddings and tokenizer disagree", () => {
  const c = { ...C, vocabSize: 32000, dim: 8 };
  const big = (rows: number) => ({
    name: "base_model.model.model.embed_tokens.weight",
    dtype: "F16" as DType,
    shape: [rows, 8],
    readRows: () => new Float32Array(0),
  });
  const base = memBase({ ...C, vocabSize: 10 });
  base.config = c;
  base.tensors.set("tok_embd", big(32000));
  base.tensors.set("output", { ...big(32000), name: "lm_head.weight" });
  const l = lora({ r: 2, lora_alpha: 2, target_modules: ["q_proj"] }, [
    ...factors("attn_q", 0, 2, false, 1),
    big(49954),
  ]);
  l.tokenizerSize = 49953;
  const e = assertThrows(() => planMerge(base, [l]), UserError, "49,954 rows but its tokenizer has 49,953");
  assert((e as UserError).hint!.includes("Chinese-Alpaca tokenizer (49,954)"));
  assert((e as UserError).hint!.includes("Chinese-LLaMA tokenizer (49,953)"));
});

Deno.test("planMerge() rejects each bad input with a UserError naming it", () => {
  const base = memBase(C);
  const cfg = { r: 2, lora_alpha: 2, target_modules: ["q_proj"] };
  // LoRA shapes vs base: rank 2 factors for a config saying r=4
  assertThrows(
    () => planMerge(base, [lora({ ...cfg, r: 4 }, factors("attn_q", 0, 2, false, 1))]),
    UserError,
    "expected [4,8]",
  );
  // a LoRA for a deeper model
  const deep = factors("attn_q", 0, 2, false, 1).map((t) => ({ ...t, name: t.name.replace("layers.0", "layers.5") }));
  assertThrows(() => planMerge(base, [lora(cfg, deep)]), UserError, "only 2 layers");
  // target_modules lists a module with no tensors
  assertThrows(
    () => planMerge(base, [lora({ ...cfg, target_modules: ["q_proj", "v_proj"] }, factors("attn_q", 0, 2, false, 1))]),
    UserError,
    'targets "v_proj"',
  );
  // tokenizer smaller than the model
  const small = lora(cfg, factors("attn_q", 0, 2, false, 1));
  small.tokenizerSize = 9;
  assertThrows(() => planMerge(base, [small]), UserError, "fewer than the model's 10");
  // base missing a tensor
  const broken = memBase(C);
  broken.tensors.delete("ffn_up.1");
  assertThrows(() => planMerge(broken, []), UserError, "model.layers.1.mlp.up_proj.weight");
  // --tokenizer of the wrong size
  assertThrows(() => planMerge(base, [], { tokenizerSize: 11 }), UserError, "--tokenizer has 11 tokens");
});

Deno.test("planMerge() warns when an Alpaca-Plus LoRA comes without LLaMA-Plus first", () => {
  const base = memBase(C);
  const cfg = { r: 2, lora_alpha: 2, target_modules: ["q_proj"] };
  const plus = lora(cfg, factors("attn_q", 0, 2, false, 1), "/models/chinese-alpaca-plus-lora-7b");
  assert(planMerge(base, [plus]).warnings.some((w) => w.includes("LLaMA-Plus")));
  const unnamed = lora({ ...cfg, r: 64 }, factors("attn_q", 0, 64, false, 1), "/models/lora2");
  unnamed.tokenizerSize = 49954;
  assert(planMerge(base, [unnamed]).warnings.some((w) => w.includes("LLaMA-Plus")), "rank-64 Alpaca-vocab LoRA");
  const llamaPlus = lora(cfg, factors("attn_q", 0, 2, false, 3), "/models/chinese-llama-plus-lora-7b");
  assertEquals(planMerge(base, [llamaPlus, plus]).warnings.filter((w) => w.includes("LLaMA-Plus")), []);
});

Deno.test("addLoraDelta() matches a naive f64 B·A for ranks 1, 3, 8, 12, 16 and 64", async () => {
  const { addLoraDelta } = await import("../../src/merge/plan.ts");
  const rows = 5, cols = 37;
  for (const rank of [1, 3, 8, 12, 16, 64]) {
    const left = randomUniform(rows * rank, rank), right = randomUniform(rank * cols, rank + 100);
    const w = randomUniform(rows * cols, 7);
    const want = Float32Array.from(w, (x, idx) => {
      const i = Math.floor(idx / cols), j = idx % cols;
      let a = 0;
      for (let k = 0; k < rank; k++) a += left[i * rank + k] * right[k * cols + j];
      return x + a * 0.5;
    });
    addLoraDelta(w, 0, rows, cols, left, right, rank, 0.5);
    assertAllClose(w, want, { atol: 1e-5, rtol: 1e-5, msg: `rank ${rank}` });
  }
});

Deno.test("planMerge() refuses a LoRA whose lm_head and embed_tokens disagree in rows", () => {
  const base = memBase(C);
  const emb = mem("base_model.model.model.embed_tokens.weight", [12, 8], randomUniform(96, 3));
  const head = mem("base_model.model.lm_head.weight", [13, 8], randomUniform(104, 4));
  const l = lora({ r: 2, lora_alpha: 2, target_modules: ["q_proj"] }, [
    ...factors("attn_q", 0, 2, false, 1),
    emb,
    head,
  ]);
  assertThrows(() => planMerge(base, [l]), UserError, "13 rows but its tokenizer has 12 tokens");
});
