/**
 * Tests of the PEFT adapter writer. Oracles: torch.load in Debian's python3-torch 1.13 (the .bin loads, and its
 * keys/shapes equal the PEFT state-dict names that tests/train/peft_keys_oracle.py derives on its own from the
 * LlamaForCausalLM module tree); the safetensors file parsed by hand in that script; and `merge` consuming the
 * folder, compared with tests/merge/_expect.ts's independent base + scaling·B·A.
 */
import { assert, assertAllClose, assertEquals, assertThrows } from "../_assert.ts";
import { BytesSink } from "../../src/core/byte_source.ts";
import { merge } from "../../src/commands/merge.ts";
import { parseAdapterConfig } from "../../src/merge/lora.ts";
import { tensorName } from "../../src/model/tensor_names.ts";
import {
  type AdapterTensor,
  checkAdapterKey,
  peftAdapterConfig,
  peftAdapterFiles,
} from "../../src/train/peft_adapter.ts";
import {
  tinyGgufFiles,
  type TinyLoraSpec,
  tinyLoraTensors,
  type TinyModelSpec,
  writeTinyFiles,
} from "../_tiny_model.ts";
import { decode, expectedMerged, readOutputTensors } from "../merge/_expect.ts";

const ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj"];
const SPEC: TinyModelSpec = { dim: 64, hiddenDim: 172, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, seed: 3 };
const LORA: TinyLoraSpec = {
  r: 4,
  alpha: 8,
  targetModules: ALL,
  modulesToSave: ["embed_tokens", "lm_head"],
  seed: 9,
  dtype: "F32",
};

function settings(extra: Partial<Parameters<typeof peftAdapterConfig>[0]> = {}) {
  return {
    r: LORA.r,
    loraAlpha: LORA.alpha,
    loraDropout: 0.05,
    targetModules: ALL,
    modulesToSave: ["embed_tokens", "lm_head"],
    baseModelNameOrPath: "tiny",
    ...extra,
  };
}

/** The generated LoRA of tests/merge as AdapterTensors (f32 values read out). */
function adapterTensors(): AdapterTensor[] {
  return tinyLoraTensors(SPEC, LORA).map(({ name, t }) => ({
    name,
    shape: t.shape,
    data: Float32Array.from(t.readRows(0, t.shape[0])),
  }));
}

async function writeFolder(dir: string, files: ReturnType<typeof peftAdapterFiles>): Promise<string> {
  Deno.mkdirSync(dir, { recursive: true });
  for (const f of files) {
    const sink = new BytesSink();
    await f.write(sink);
    Deno.writeFileSync(`${dir}/${f.path}`, sink.bytes());
  }
  return dir;
}

Deno.test("peftAdapterConfig() writes every LoraConfig field PEFT saves, keys sorted, and merge reads it back", () => {
  const c = peftAdapterConfig(settings());
  assertEquals(Object.keys(c), [...Object.keys(c)].sort());
  assertEquals(c.peft_type, "LORA");
  assertEquals(c.task_type, "CAUSAL_LM");
  assertEquals([c.bias, c.fan_in_fan_out, c.inference_mode], ["none", false, true]);
  const parsed = parseAdapterConfig(JSON.parse(JSON.stringify(c)));
  assertEquals([parsed.r, parsed.loraAlpha, parsed.scaling], [4, 8, 2]);
  assertEquals(parsed.modulesToSave, ["embed_tokens", "lm_head"]);
  assertEquals(peftAdapterConfig(settings({ modulesToSave: [] })).modules_to_save, null);
  assertThrows(() => peftAdapterConfig(settings({ targetModules: ["qproj"] })), RangeError, '"qproj"');
  assertThrows(() => peftAdapterConfig(settings({ modulesToSave: ["norm"] })), RangeError, "modules_to_save");
  assertThrows(() => peftAdapterConfig(settings({ loraDropout: 1 })), RangeError, "lora_dropout");
});

Deno.test("checkAdapterKey() accepts PEFT's LlamaForCausalLM names and rejects near misses", () => {
  assertEquals(checkAdapterKey("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").part, "lora_B");
  assertEquals(checkAdapterKey("base_model.model.lm_head.weight").part, "full");
  assertEquals(checkAdapterKey("base_model.model.model.embed_tokens.weight").part, "full");
  assertThrows(() => checkAdapterKey("model.layers.0.self_attn.q_proj.lora_A.weight"), RangeError, "start with");
  assertThrows(() => checkAdapterKey("base_model.model.layers.0.self_attn.q_proj.lora_A.weight"), RangeError);
  assertThrows(() => checkAdapterKey("base_model.model.model.norm.lora_A.weight"), RangeError, "linear");
  assertThrows(() => checkAdapterKey("base_model.model.model.layers.0.self_attn.q_proj.weight"), RangeError, "whole");
});

Deno.test("peftAdapterFiles() rejects a lone factor, a wrong rank and a shape that does not match the data", () => {
  const config = peftAdapterConfig(settings());
  const [a, b] = adapterTensors();
  assertThrows(() => peftAdapterFiles({ config, tensors: [a] }), RangeError, "has no");
  assertThrows(() => peftAdapterFiles({ config, tensors: [{ ...a, shape: [4, 3] }, b] }), RangeError, "does not hold");
  assertThrows(() => peftAdapterFiles({ config: { ...config, r: 5 }, tensors: [a, b] }), RangeError, "r 5");
  assertThrows(() => peftAdapterFiles({ config, tensors: [a, a, b] }), RangeError, "duplicate");
  const files = peftAdapterFiles({ config, tensors: [a, b], tokenizerModel: new Uint8Array(3) });
  assertEquals(files.at(-1)!.path, "adapter_config.json"); // written last: a folder with a config is complete
  assertEquals(files.map((f) => f.path).sort(), [
    "adapter_config.json",
    "adapter_model.bin",
    "adapter_model.safetensors",
    "special_tokens_map.json",
    "tokenizer.model",
    "tokenizer_config.json",
  ]);
});

async function hasTorch(): Promise<boolean> {
  try {
    const p = await new Deno.Command("/usr/bin/python3", { args: ["-c", "import torch"], stderr: "null" }).output();
    return p.success;
  } catch {
    return false;
  }
}

Deno.test("adapter_model.bin loads with torch.load with PEFT's LlamaForCausalLM keys and shapes (python3-torch)", async () => {
  if (!(await hasTorch())) {
    console.warn("skip: torch.load check (python3-torch not installed)");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "yangtuo-peft-" });
  try {
    for (const dtype of ["F32", "F16"] as const) {
      const tensors = adapterTensors();
      const out = await writeFolder(
        `${dir}/${dtype}`,
        peftAdapterFiles({ config: peftAdapterConfig(settings()), tensors }, { dtype }),
      );
      const sums = Object.fromEntries(tensors.map((t) => [t.name, t.data.reduce((s, x) => s + Math.abs(x), 0)]));
      const args = {
        dir: out,
        dim: SPEC.dim,
        hidden: SPEC.hiddenDim,
        layers: SPEC.nLayers,
        heads: SPEC.nHeads,
        kv_heads: SPEC.nKvHeads,
        vocab: SPEC.vocabSize,
        r: LORA.r,
        targets: ALL,
        modules_to_save: ["embed_tokens", "lm_head"],
        dtype: dtype === "F32" ? "float32" : "float16",
        abs_sums: sums,
      };
      const script = new URL("./peft_keys_oracle.py", import.meta.url).pathname;
      const p = await new Deno.Command("/usr/bin/python3", {
        args: [script, JSON.stringify(args)],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(p.stdout), stderr = new TextDecoder().decode(p.stderr);
      assert(p.success, `oracle failed:\n${stdout}\n${stderr}`);
      assertEquals(stdout.trim().split("\n").at(-1), `ok ${tensors.length} tensors`);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("merge consumes the written folder: merged weights = base + scaling·B·A, embeddings replaced", async () => {
  const dir = await Deno.makeTempDir({ prefix: "yangtuo-peft-merge-" });
  try {
    const base = `${await writeTinyFiles(`${dir}/base`, tinyGgufFiles(SPEC, { dtype: "F32" }))}/model.gguf`;
    for (const format of ["bin", "safetensors"] as const) {
      const lora = await writeFolder(
        `${dir}/lora-${format}`,
        peftAdapterFiles({ config: peftAdapterConfig(settings()), tensors: adapterTensors() }, { formats: [format] }),
      );
      const outputDir = `${dir}/out-${format}`;
      const r = await merge({
        baseModel: base,
        loraModels: [lora],
        outputType: "gguf",
        outputDir,
        quant: "F32",
        allowNoTokenizer: true,
      });
      const out = readOutputTensors(`${outputDir}/${r.files[0]}`);
      for (const [kind, layer] of [["attn_q", 0], ["attn_k", 1], ["ffn_down", 1], ["tok_embd"], ["output"]] as const) {
        const t = out.get(tensorName("gguf", kind, layer))!;
        assert(t, `${kind} missing`);
        assertAllClose(decode(t.dtype, t.bytes), expectedMerged(SPEC, "F32", [LORA], kind, layer), {
          rtol: 1e-5,
          atol: 1e-6,
          msg: `${format} ${kind}.${layer}`,
        });
      }
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
