/**
 * End-to-end merges of generated checkpoints: every input layout (HF safetensors, HF .bin shards, Meta pth with 1
 * and 2 shards, GGUF) × every output type (GGUF, Hugging Face, pth), read back and compared with the merged
 * weights recomputed independently in tests/merge/_expect.ts (f64 B·A, permutation written from its definition).
 * Tolerance: one fp16 ulp-scale (rtol 1e-3, atol 1e-4) where fp16 is involved, 1e-5 in pure f32 runs — both far
 * below a LoRA delta (~10% of the weight), so a missing, mis-permuted or mis-scaled delta fails.
 */
import { assert, assertAllClose, assertEquals } from "../_assert.ts";
import { merge } from "../../src/commands/_pipeline_files.ts";
import { canonicalOrder } from "../../src/merge/plan.ts";
import { tensorName } from "../../src/model/tensor_names.ts";
import {
  tinyGgufFiles,
  tinyHfFiles,
  tinyLoraFiles,
  type TinyLoraSpec,
  tinyLoraTensors,
  tinyMetaFiles,
  type TinyModelSpec,
  writeTinyFiles,
} from "../_tiny_model.ts";
import { baseValues, decode, expectedMerged, hfToMeta, metaToHf, readOutputTensors } from "./_expect.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { BytesSource } from "../../src/core/byte_source.ts";
import { readLlama2c } from "../../src/model/llama2c_gguf.ts";
import type { DType } from "../../src/core/dtypes.ts";

const SPEC: TinyModelSpec = { dim: 64, hiddenDim: 192, nLayers: 2, nHeads: 4, vocabSize: 96, seed: 11 };
const LORA: TinyLoraSpec = {
  r: 4,
  alpha: 8,
  targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj"],
  modulesToSave: ["embed_tokens", "lm_head"],
  vocabSize: 100,
  seed: 5,
};

interface Input {
  name: string;
  dtype: "F32" | "F16" | "BF16";
  write: (dir: string) => Promise<string>;
}

const INPUTS: Input[] = [
  { name: "HF safetensors f32", dtype: "F32", write: (d) => writeTinyFiles(d, tinyHfFiles(SPEC, { dtype: "F32" })) },
  { name: "HF safetensors bf16", dtype: "BF16", write: (d) => writeTinyFiles(d, tinyHfFiles(SPEC, { dtype: "BF16" })) },
  {
    name: "HF .bin f16, 2 shards",
    dtype: "F16",
    write: (d) => writeTinyFiles(d, tinyHfFiles(SPEC, { dtype: "F16", hfFormat: "bin", shards: 2 })),
  },
  {
    name: "Meta pth f16, 1 shard",
    dtype: "F16",
    write: (d) => writeTinyFiles(d, tinyMetaFiles(SPEC, { dtype: "F16", shards: 1 })),
  },
  {
    name: "Meta pth f16, 2 shards",
    dtype: "F16",
    write: (d) => writeTinyFiles(d, tinyMetaFiles(SPEC, { dtype: "F16", shards: 2 })),
  },
  {
    name: "GGUF f16",
    dtype: "F16",
    write: async (d) => `${await writeTinyFiles(d, tinyGgufFiles(SPEC, { dtype: "F16" }))}/model.gguf`,
  },
];

const tmp = Deno.makeTempDirSync({ prefix: "yangtuo-merge-e2e-" });
const loraDir = await writeTinyFiles(`${tmp}/lora`, tinyLoraFiles(SPEC, LORA));

/** Compares every output tensor of `out` with the independent expectation, in the output's naming and layout. */
function checkOutput(out: string, type: "gguf" | "huggingface" | "pth", baseDtype: DType, outDtype: DType, shards = 1) {
  const tensors = readOutputTensors(out);
  const spec = { ...SPEC };
  const headSize = spec.dim / spec.nHeads;
  const f16 = baseDtype !== "F32" || outDtype !== "F32";
  const tol = f16 ? { atol: 1e-4, rtol: 1e-3 } : { atol: 1e-5, rtol: 1e-5 };
  let checked = 0;
  for (const { kind, layer } of canonicalOrder(spec.nLayers)) {
    let want = expectedMerged(spec, baseDtype, [LORA], kind, layer);
    const shape = kind === "tok_embd" || kind === "output" ? [100, spec.dim] : undefined;
    if (type === "huggingface" && (kind === "attn_q" || kind === "attn_k")) {
      want = metaToHf(want, spec.dim, spec.dim, headSize);
    }
    if (type === "pth") {
      // Meta shards: rows split for wq wk wv w1 w3 output (remainder to the last), columns for wo w2 tok_embeddings
      const name = tensorName("meta", kind, layer);
      const rows = shape?.[0] ??
        (want.length === spec.dim ? 1 : kind === "ffn_gate" || kind === "ffn_up" ? spec.hiddenDim : spec.dim);
      const cols = want.length / rows;
      const byCols = kind === "tok_embd" || kind === "attn_output" || kind === "ffn_down";
      const norm = rows === 1;
      for (let s = 0; s < shards; s++) {
        const got = tensors.get(`${String(s).padStart(2, "0")}/${name}`);
        assert(got, `missing ${name} in shard ${s}`);
        let part: Float32Array;
        if (norm) part = want;
        else if (byCols) {
          const w = cols / shards;
          part = new Float32Array(rows * w);
          for (let r = 0; r < rows; r++) part.set(want.subarray(r * cols + s * w, r * cols + (s + 1) * w), r * w);
        } else {
          const base = Math.floor(rows / shards);
          const start = s * base, n = s === shards - 1 ? rows - start : base;
          part = want.subarray(start * cols, (start + n) * cols);
        }
        assertAllClose(decode(got.dtype, got.bytes), roundTo(outDtype, part), { ...tol, msg: `${name} shard ${s}` });
        checked++;
      }
      continue;
    }
    const name = tensorName(type === "gguf" ? "gguf" : "hf", kind, layer);
    const got = tensors.get(name);
    assert(got, `missing ${name}`);
    if (shape) assertEquals(got.shape, shape);
    const wantOut = type === "gguf" && want.length === spec.dim ? want : roundTo(outDtype, want);
    assertAllClose(decode(got.dtype, got.bytes), wantOut, { ...tol, msg: name });
    checked++;
  }
  assert(checked >= canonicalOrder(spec.nLayers).length);
}

function roundTo(dtype: DType, x: Float32Array): Float32Array {
  return dtype === "F16" ? Float32Array.from(Float16Array.from(x)) : x;
}

for (const input of INPUTS) {
  const slug = input.name.replace(/[^a-z0-9]+/gi, "-");
  const basePath = await input.write(`${tmp}/base-${slug}`);
  for (const type of ["gguf", "huggingface", "pth"] as const) {
    Deno.test(`merge() ${input.name} + LoRA → ${type} equals base + scaling·B·A`, async () => {
      const outputDir = `${tmp}/out-${slug}-${type}`;
      const tokenizer = type === "gguf" ? undefined : undefined;
      const quant = type === "gguf" && input.dtype === "F32" ? "F32" : "F16";
      const r = await merge({
        baseModel: basePath,
        loraModels: [loraDir],
        outputType: type,
        outputDir,
        quant,
        tokenizer,
        shards: type === "pth" && input.name.includes("2 shards") ? 2 : undefined,
        allowNoTokenizer: true,
      });
      assertEquals(r.vocabSize, 100);
      const shards = type === "pth" && input.name.includes("2 shards") ? 2 : 1;
      const out = type === "gguf" ? `${outputDir}/${r.files[0]}` : outputDir;
      checkOutput(out, type, input.dtype, quant, shards);
    });
  }
}

Deno.test("merge() leaves base tensors untouched where no LoRA applies (norms) and changes targeted ones", () => {
  const norm = baseValues(SPEC, "attn_norm", 0, "F16");
  assertAllClose(expectedMerged(SPEC, "F16", [LORA], "attn_norm", 0), norm);
  const q = expectedMerged(SPEC, "F16", [LORA], "attn_q", 0);
  const q0 = baseValues(SPEC, "attn_q", 0, "F16");
  let maxDelta = 0;
  for (let i = 0; i < q.length; i++) maxDelta = Math.max(maxDelta, Math.abs(q[i] - q0[i]));
  assert(maxDelta > 0.01, `the LoRA delta is too small to test with (${maxDelta})`);
});

globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

const BABY = "models/babyllama105/model5000.bin";

Deno.test(
  "merge() of a LoRA into the real BabyLlama (llama2.c, GQA 8/4, tied classifier) → GGUF equals base + scaling·B·A",
  needsTestData(BABY),
  async () => {
    const spec: TinyModelSpec = {
      dim: 128,
      hiddenDim: 352,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 105,
      seed: 1,
    };
    const lora: TinyLoraSpec = {
      r: 2,
      alpha: 4,
      targetModules: ["q_proj", "k_proj", "up_proj"],
      seed: 12,
      dtype: "F32",
    };
    const dir = await writeTinyFiles(`${tmp}/baby-lora`, tinyLoraFiles(spec, lora));
    const out = `${tmp}/baby-out`;
    const r = await merge({
      baseModel: `${testDataRoot()}/${BABY}`,
      loraModels: [dir],
      outputType: "gguf",
      outputDir: out,
      quant: "F32",
      allowNoTokenizer: true,
    });
    const got = readOutputTensors(`${out}/${r.files[0]}`);
    const src = new BytesSource(Deno.readFileSync(`${testDataRoot()}/${BABY}`));
    const base = new Map(
      readLlama2c(src).tensors.map((t) => [t.name, decode("F32", src.read(t.byteOffset, t.nBytes))]),
    );
    const factors = new Map(tinyLoraTensors(spec, lora).map((x) => [x.name, x.t.readRows(0, x.t.shape[0])]));
    const headSize = 16;
    for (
      const [gguf, hf, rows, cols] of [
        ["blk.3.attn_q.weight", "self_attn.q_proj", 128, 128],
        ["blk.3.attn_k.weight", "self_attn.k_proj", 64, 128],
        ["blk.3.ffn_up.weight", "mlp.up_proj", 352, 128],
      ] as const
    ) {
      const A = factors.get(`base_model.model.model.layers.3.${hf}.lora_A.weight`)!;
      const B = factors.get(`base_model.model.model.layers.3.${hf}.lora_B.weight`)!;
      let delta: Float32Array = new Float32Array(rows * cols);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) delta[i * cols + j] = 2 * (B[i * 2] * A[j] + B[i * 2 + 1] * A[cols + j]);
      }
      if (hf !== "mlp.up_proj") delta = hfToMeta(delta, rows, cols, headSize); // LoRA rows are in HF order
      const want = base.get(gguf)!.map((x: number, i: number) => x + delta[i]);
      assertAllClose(decode("F32", got.get(gguf)!.bytes), want, { atol: 1e-6, rtol: 1e-5, msg: gguf });
    }
    // untouched tensors are bit-identical; the tied classifier is written out as the embedding
    assertEquals(
      got.get("blk.3.attn_v.weight")!.bytes,
      src.read(
        readLlama2c(src).tensors.find((t) => t.name === "blk.3.attn_v.weight")!.byteOffset,
        128 * 64 * 4,
      ),
    );
    assertEquals(got.get("output.weight")!.bytes, got.get("token_embd.weight")!.bytes);
  },
);

Deno.test("merge() reads adapter_model.safetensors with fan_in_fan_out (delta transposed) and no modules_to_save", async () => {
  const fan: TinyLoraSpec = {
    r: 3,
    alpha: 9,
    fanInFanOut: true,
    targetModules: ["q_proj", "k_proj", "gate_proj", "down_proj"],
    seed: 41,
    dtype: "F32",
    format: "safetensors",
  };
  const dir = await writeTinyFiles(`${tmp}/lora-fan`, tinyLoraFiles(SPEC, fan));
  const base = await writeTinyFiles(`${tmp}/base-fan`, tinyHfFiles(SPEC, { dtype: "F32" }));
  const r = await merge({
    baseModel: base,
    loraModels: [dir],
    outputType: "gguf",
    outputDir: `${tmp}/out-fan`,
    quant: "F32",
    allowNoTokenizer: true,
  });
  assertEquals(r.vocabSize, 96);
  const got = readOutputTensors(`${tmp}/out-fan/${r.files[0]}`);
  for (const { kind, layer } of canonicalOrder(SPEC.nLayers)) {
    const name = tensorName("gguf", kind, layer);
    assertAllClose(decode("F32", got.get(name)!.bytes), expectedMerged(SPEC, "F32", [fan], kind, layer), {
      atol: 1e-5,
      rtol: 1e-5,
      msg: name,
    });
  }
});
