/**
 * Tests of the merge command: Q4_0 output byte-identical to the reference quantizer applied to the same merged
 * tensor (from the F32 output), the real Chinese-Alpaca tokenizer embedded (tokens checked against reference
 * SentencePiece pieces in tokenizer_golden.jsonl), a pth output loaded by torch.load (when python3-torch exists)
 * with Meta-layout q/k, --sha256 against coreutils sha256sum and the seed's SHA256.md, and refusals.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { hasTestData, needsTestData, testDataRoot } from "../_fixtures.ts";
import { UserError } from "../../src/core/errors.ts";
import { BytesSource } from "../../src/core/byte_source.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { tokenizerFromGgufMetadata } from "../../src/tokenizer/mod.ts";
import { run } from "../../src/commands/merge.ts";
import { merge, verifySha256 } from "../../src/commands/_pipeline_files.ts";
import { quantizeRowQ4_0Ref } from "../../src/quant/q4_0.ts";
import { canonicalOrder } from "../../src/merge/plan.ts";
import { tensorName } from "../../src/model/tensor_names.ts";
import {
  tinyHfFiles,
  tinyLoraFiles,
  type TinyLoraSpec,
  tinyMetaFiles,
  type TinyModelSpec,
  writeTinyFiles,
} from "../_tiny_model.ts";
import { decode, expectedMerged, readOutputTensors } from "../merge/_expect.ts";

const SPEC: TinyModelSpec = { dim: 64, hiddenDim: 192, nLayers: 2, nHeads: 4, vocabSize: 96, seed: 21 };
const LORA: TinyLoraSpec = {
  r: 8,
  alpha: 32,
  targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"],
  modulesToSave: ["embed_tokens", "lm_head"],
  vocabSize: 96,
  seed: 8,
};
const tmp = Deno.makeTempDirSync({ prefix: "yangtuo-merge-cmd-" });
const hfBase = await writeTinyFiles(`${tmp}/hf`, tinyHfFiles(SPEC, { dtype: "F16" }));
const loraDir = await writeTinyFiles(`${tmp}/lora`, tinyLoraFiles(SPEC, LORA));
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

Deno.test("merge --quant q4_0 writes the reference quantizer's bytes of the merged F32 tensor", async () => {
  const common = { baseModel: hfBase, loraModels: [loraDir], outputType: "gguf" as const, allowNoTokenizer: true };
  const f32 = await merge({ ...common, outputDir: `${tmp}/q-f32`, quant: "F32" });
  const q4 = await merge({ ...common, outputDir: `${tmp}/q-q4`, quant: "Q4_0" });
  const a = readOutputTensors(`${tmp}/q-f32/${f32.files[0]}`), b = readOutputTensors(`${tmp}/q-q4/${q4.files[0]}`);
  let quantized = 0;
  for (const [name, t] of a) {
    const q = b.get(name)!;
    if (t.shape.length === 1) {
      assertEquals(q.dtype, "F32");
      assertEquals(q.bytes, t.bytes);
      continue;
    }
    assertEquals(q.dtype, "Q4_0", name);
    const want = new Uint8Array(q.bytes.length);
    quantizeRowQ4_0Ref(decode("F32", t.bytes), want);
    assertEquals(q.bytes, want, name);
    quantized++;
  }
  assertEquals(quantized, 2 + 2 * 7);
  const meta = readGguf(new BytesSource(Deno.readFileSync(`${tmp}/q-q4/${q4.files[0]}`))).metadata;
  assertEquals(meta.get("general.file_type"), 2);
  assertEquals(meta.get("general.quantization_version"), 2);
});

const ALPACA = "models/tokenizers/chinese-alpaca/tokenizer.model";
const GOLDEN = "seed/tests/tokenizer_golden.jsonl";

Deno.test(
  "merge with the Chinese-Alpaca tokenizer embeds its 49,954 pieces in the GGUF",
  needsTestData(ALPACA, GOLDEN),
  async () => {
    const spec: TinyModelSpec = { dim: 32, hiddenDim: 96, nLayers: 1, nHeads: 2, vocabSize: 49953, seed: 2 };
    const tok = Deno.readFileSync(`${testDataRoot()}/${ALPACA}`);
    const base = await writeTinyFiles(`${tmp}/zh-base`, tinyMetaFiles(spec, { dtype: "F16", shards: 1 }));
    const lora = await writeTinyFiles(
      `${tmp}/zh-lora`,
      tinyLoraFiles(spec, { ...LORA, r: 4, vocabSize: 49954, tokenizerModel: tok }),
    );
    const r = await merge({ baseModel: base, loraModels: [lora], outputType: "gguf", outputDir: `${tmp}/zh-out` });
    assertEquals(r.vocabSize, 49954);
    const g = readGguf(new BytesSource(Deno.readFileSync(`${tmp}/zh-out/${r.files[0]}`)));
    const tokens = g.metadata.get("tokenizer.ggml.tokens") as string[];
    assertEquals(tokens.length, 49954);
    assertEquals(g.metadata.get("llama.vocab_size"), 49954);
    assertEquals(g.tensors.find((t) => t.name === "token_embd.weight")!.shape, [49954, 32]);
    assertEquals(tokens[49953], "[PAD]");
    assertEquals(g.metadata.get("tokenizer.ggml.padding_token_id"), 49953);
    // the embedded vocabulary tokenizes like reference SentencePiece on the .model (golden ids, no BOS)
    const tokenizer = tokenizerFromGgufMetadata(g.metadata as Map<string, unknown>);
    let checked = 0;
    for (const line of Deno.readTextFileSync(`${testDataRoot()}/${GOLDEN}`).split("\n").filter((l) => l)) {
      const rec = JSON.parse(line);
      const { ids, pieces } = rec.chinese_alpaca_49954;
      ids.forEach((id: number, i: number) => assertEquals(tokens[id], pieces[i]));
      assertEquals(tokenizer.encode(rec.text, { bos: false }), ids, JSON.stringify(rec.text));
      checked++;
    }
    assert(checked >= 20, `only ${checked} golden texts checked`);
  },
);

async function hasTorch(): Promise<boolean> {
  try {
    const p = await new Deno.Command("/usr/bin/python3", { args: ["-c", "import torch"], stderr: "null" }).output();
    return p.success;
  } catch {
    return false;
  }
}

Deno.test("merge --output-type pth: 2 shards load back and through torch.load, q/k in Meta layout", async () => {
  const out = `${tmp}/pth2`;
  await merge({ baseModel: hfBase, loraModels: [loraDir], outputType: "pth", outputDir: out, shards: 2 });
  const params = JSON.parse(Deno.readTextFileSync(`${out}/params.json`));
  assertEquals(params.dim, 64);
  assertEquals(params.vocab_size, -1);
  const ours = readOutputTensors(out);
  const wq = expectedMerged(SPEC, "F16", [LORA], "attn_q", 1); // Meta layout
  const got0 = decode("F16", ours.get("00/layers.1.attention.wq.weight")!.bytes);
  const got1 = decode("F16", ours.get("01/layers.1.attention.wq.weight")!.bytes);
  const got = new Float32Array([...got0, ...got1]);
  const want = Float32Array.from(Float16Array.from(wq));
  let bad = 0;
  for (let i = 0; i < want.length; i++) if (Math.abs(got[i] - want[i]) > 1e-3 + 1e-3 * Math.abs(want[i])) bad++;
  assertEquals(bad, 0);
  if (!(await hasTorch())) {
    console.warn("skip: torch.load check (python3-torch not installed)");
    return;
  }
  const script = `
import torch, json, sys
out = {}
for s in range(2):
    sd = torch.load(sys.argv[1] + "/consolidated.0%d.pth" % s, map_location="cpu")
    for k, v in sd.items():
        out["%02d/%s" % (s, k)] = [list(v.shape), str(v.dtype), float(v.float().sum()), float(v.float().flatten()[0])]
print(json.dumps(out))`;
  const p = await new Deno.Command("/usr/bin/python3", { args: ["-c", script, out], stdout: "piped", stderr: "piped" })
    .output();
  assert(p.success, new TextDecoder().decode(p.stderr));
  const torchView = JSON.parse(new TextDecoder().decode(p.stdout)) as Record<
    string,
    [number[], string, number, number]
  >;
  assertEquals(Object.keys(torchView).length, ours.size);
  for (const [k, t] of ours) {
    const [shape, dtype, sum, first] = torchView[k];
    assertEquals(shape, t.shape, k);
    assertEquals(dtype, "torch.float16");
    const v = decode(t.dtype, t.bytes);
    assertEquals(first, v[0], k);
    assert(Math.abs(sum - v.reduce((a, b) => a + b, 0)) < 1e-2 * Math.max(1, Math.abs(sum)), k);
  }
  // Meta layout: torch sees wq = our Meta rows, and the row order differs from HF's (the permutation matters)
  assertEquals(torchView["00/layers.1.attention.wq.weight"][3], want[0]);
});

Deno.test("merge refuses a non-empty output folder without --force, and leaves no partial files", async () => {
  const out = `${tmp}/busy`;
  Deno.mkdirSync(out);
  Deno.writeTextFileSync(`${out}/keep.txt`, "x");
  const o = { baseModel: hfBase, loraModels: [loraDir], outputType: "huggingface" as const, outputDir: out };
  await assertRejects(() => merge(o), UserError, "not empty");
  await merge({ ...o, force: true });
  const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
  assertEquals(names, ["config.json", "generation_config.json", "keep.txt", "model.safetensors"]);
  // a failing merge (LoRA for another size) writes nothing
  const other = await writeTinyFiles(
    `${tmp}/lora-big`,
    tinyLoraFiles({ ...SPEC, dim: 128, nHeads: 4 }, { ...LORA, modulesToSave: [] }),
  );
  const empty = `${tmp}/empty`;
  await assertRejects(() => merge({ ...o, loraModels: [other], outputDir: empty }), UserError, "lora_A");
  let exists = true;
  try {
    Deno.statSync(empty);
  } catch {
    exists = false;
  }
  assert(!exists, "a failed pre-flight check must not create the output folder");
});

async function sha256sum(files: string[]): Promise<string> {
  const p = await new Deno.Command("sha256sum", { args: files, stdout: "piped" }).output();
  return new TextDecoder().decode(p.stdout);
}

Deno.test("merge --sha256 verifies inputs against sha256sum output and the seed's SHA256.md", async () => {
  const files = [`${hfBase}/model.safetensors`, `${loraDir}/adapter_model.bin`, `${loraDir}/adapter_config.json`];
  const list = `${tmp}/sums.txt`;
  Deno.writeTextFileSync(list, await sha256sum(files));
  assertEquals(verifySha256(list, files), []);
  const bad = (await sha256sum(files)).replace(/^[0-9a-f]/, (c) => (c === "0" ? "1" : "0"));
  Deno.writeTextFileSync(list, bad);
  const o = { baseModel: hfBase, loraModels: [loraDir], outputType: "huggingface" as const, sha256: list };
  await assertRejects(() => merge({ ...o, outputDir: `${tmp}/sha-bad` }), UserError, "lists 0");
  if (!hasTestData("seed/SHA256.md") || !hasTestData(ALPACA)) return;
  const md = `${testDataRoot()}/seed/SHA256.md`;
  assertEquals(verifySha256(md, [`${testDataRoot()}/${ALPACA}`]), []);
  await assertRejects(
    () => merge({ ...o, sha256: md, outputDir: `${tmp}/sha-md` }),
    UserError,
    "is not in",
  );
});

Deno.test("merge run() prints help and rejects bad flags", async () => {
  assertEquals(await run(["--help"]), 0);
  const { UsageError } = await import("../../src/core/errors.ts");
  await assertRejects(() => run(["--base-model", "x", "--output-dir", "y"]), UsageError, "--lora-model");
  await assertRejects(
    () =>
      run(["--base-model", "x", "--lora-model", "l", "--output-dir", "y", "--output-type", "pth", "--quant", "q4_0"]),
    UsageError,
    "needs --output-type gguf",
  );
  assertStringIncludes(tensorName("gguf", "attn_q", 0), "attn_q");
  assertEquals(canonicalOrder(1).length, 12);
});

Deno.test("merge --output-type huggingface shards safetensors with an index, config and tokenizer files", async () => {
  const out = `${tmp}/hf-sharded`;
  const r = await merge({
    baseModel: hfBase,
    loraModels: [loraDir],
    outputType: "huggingface",
    outputDir: out,
    maxShardBytes: 100_000,
  });
  const shards = r.files.filter((f) => f.endsWith(".safetensors"));
  assert(shards.length >= 2, `expected several shards, got ${shards}`);
  assertEquals(shards[0], `model-00001-of-${String(shards.length).padStart(5, "0")}.safetensors`);
  const index = JSON.parse(Deno.readTextFileSync(`${out}/model.safetensors.index.json`));
  const tensors = readOutputTensors(out);
  assertEquals(Object.keys(index.weight_map).sort(), [...tensors.keys()].sort());
  assertEquals(index.metadata.total_size, [...tensors.values()].reduce((s, t) => s + t.bytes.length, 0));
  const cfg = JSON.parse(Deno.readTextFileSync(`${out}/config.json`));
  assertEquals([cfg.hidden_size, cfg.vocab_size, cfg.torch_dtype], [64, 96, "float16"]);
  for (const f of shards) {
    for (const [name, file] of Object.entries(index.weight_map)) if (file === f) assert(tensors.has(name));
  }
});

const LLAMA_ZH = "models/tokenizers/chinese-llama/tokenizer.model";

Deno.test(
  "merge LLaMA(32,000) + LLaMA-Plus(49,953) + Alpaca-Plus(49,954) with the real tokenizers; wrong pairings refused",
  needsTestData(ALPACA, LLAMA_ZH),
  async () => {
    const spec: TinyModelSpec = { dim: 32, hiddenDim: 96, nLayers: 1, nHeads: 2, vocabSize: 32000, seed: 5 };
    const base = await writeTinyFiles(`${tmp}/plus-base`, tinyHfFiles(spec, { dtype: "F16" }));
    const zh = Deno.readFileSync(`${testDataRoot()}/${LLAMA_ZH}`),
      alpaca = Deno.readFileSync(`${testDataRoot()}/${ALPACA}`);
    const lora = { ...LORA, r: 2, alpha: 4 };
    const llamaPlus = await writeTinyFiles(
      `${tmp}/chinese-llama-plus-lora`,
      tinyLoraFiles(spec, { ...lora, seed: 1, vocabSize: 49953, tokenizerModel: zh }),
    );
    const alpacaPlus = await writeTinyFiles(
      `${tmp}/chinese-alpaca-plus-lora`,
      tinyLoraFiles(spec, { ...lora, seed: 2, vocabSize: 49954, tokenizerModel: alpaca }),
    );
    const o = { baseModel: base, outputType: "huggingface" as const };
    const r = await merge({ ...o, loraModels: [llamaPlus, alpacaPlus], outputDir: `${tmp}/plus-out` });
    assertEquals(r.vocabSize, 49954);
    assertEquals(r.warnings.filter((w) => !w.includes("disk space")), []);
    assertEquals(Deno.readFileSync(`${tmp}/plus-out/tokenizer.model`), alpaca);
    // Alpaca-Plus alone: merged, with the seed FAQ's warning
    const alone = await merge({ ...o, loraModels: [alpacaPlus], outputDir: `${tmp}/plus-alone` });
    assert(alone.warnings.some((w) => w.includes("LLaMA-Plus")), alone.warnings.join("\n"));
    // wrong order: the Alpaca tokenizer (49,954) before the LLaMA one (49,953)
    await assertRejects(
      () => merge({ ...o, loraModels: [alpacaPlus, llamaPlus], outputDir: `${tmp}/plus-bad1` }),
      UserError,
      "fewer than the model's 49,954",
    );
    // an Alpaca LoRA shipped with the LLaMA tokenizer
    const mixed = await writeTinyFiles(
      `${tmp}/mixed-lora`,
      tinyLoraFiles(spec, { ...lora, seed: 3, vocabSize: 49954, tokenizerModel: zh }),
    );
    await assertRejects(
      () => merge({ ...o, loraModels: [mixed], outputDir: `${tmp}/plus-bad2` }),
      UserError,
      "49,954 rows but its tokenizer has 49,953 tokens",
    );
  },
);

Deno.test("merge with worker threads writes the same bytes as the single-threaded path", async () => {
  const o = { baseModel: hfBase, loraModels: [loraDir], allowNoTokenizer: true };
  for (const [outputType, quant] of [["gguf", "Q4_0"], ["huggingface", "F16"]] as const) {
    const one = await merge({ ...o, outputType, quant, threads: 1, outputDir: `${tmp}/t1-${outputType}` });
    const three = await merge({ ...o, outputType, quant, threads: 3, outputDir: `${tmp}/t3-${outputType}` });
    assertEquals(three.files, one.files);
    for (const f of one.files) {
      assertEquals(
        Deno.readFileSync(`${tmp}/t3-${outputType}/${f}`),
        Deno.readFileSync(`${tmp}/t1-${outputType}/${f}`),
        `${outputType} ${f}`,
      );
    }
  }
});

Deno.test("merge outputs agree under transformers' own permute: HF q/k = permute(pth q/k) (python3-torch)", async () => {
  if (!(await hasTorch())) {
    console.warn("skip: python3-torch not installed");
    return;
  }
  // both directions: from an HF base (pth output un-permutes) and from a Meta base (HF output permutes)
  const metaBase = await writeTinyFiles(`${tmp}/perm-meta-base`, tinyMetaFiles(SPEC, { dtype: "F16", shards: 1 }));
  const pairs: string[] = [];
  for (const [name, baseModel] of [["hfbase", hfBase], ["metabase", metaBase]]) {
    const o = { baseModel, loraModels: [loraDir], threads: 1 };
    await merge({ ...o, outputType: "huggingface", outputDir: `${tmp}/perm-${name}-hf` });
    await merge({ ...o, outputType: "pth", outputDir: `${tmp}/perm-${name}-pth` });
    pairs.push(`${tmp}/perm-${name}-hf`, `${tmp}/perm-${name}-pth`);
  }
  // transformers convert_llama_weights_to_hf.py: permute(w) = w.view(n_heads, dim1 // n_heads // 2, 2, dim2)
  //   .transpose(1, 2).reshape(dim1, dim2); safetensors parsed here by hand (json header + raw little-endian f16)
  const script = `
import json, struct, sys, torch, numpy as np
n_heads = int(sys.argv[1])
bad = []
for hf_dir, pth_dir in zip(sys.argv[2::2], sys.argv[3::2]):
  raw = open(hf_dir + "/model.safetensors", "rb").read()
  n = struct.unpack("<Q", raw[:8])[0]
  header = json.loads(raw[8:8 + n])
  def hf(name):
    info = header[name]
    a, b = info["data_offsets"]
    return torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float16).reshape(info["shape"]).copy())
  def permute(w, heads):
    d1, d2 = w.shape
    return w.view(heads, d1 // heads // 2, 2, d2).transpose(1, 2).reshape(d1, d2)
  sd = torch.load(pth_dir + "/consolidated.00.pth", map_location="cpu")
  for l in range(2):
    for meta, name in [("wq", "q_proj"), ("wk", "k_proj")]:
      a = permute(sd["layers.%d.attention.%s.weight" % (l, meta)], n_heads)
      b = hf("model.layers.%d.self_attn.%s.weight" % (l, name))
      if not torch.equal(a, b): bad.append(hf_dir + " " + name)
    if not torch.equal(sd["layers.%d.attention.wv.weight" % l], hf("model.layers.%d.self_attn.v_proj.weight" % l)): bad.append("v")
  if not torch.equal(sd["tok_embeddings.weight"], hf("model.embed_tokens.weight")): bad.append("embed")
print(json.dumps(bad))`;
  const p = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", script, String(SPEC.nHeads), ...pairs],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(p.success, new TextDecoder().decode(p.stderr));
  assertEquals(JSON.parse(new TextDecoder().decode(p.stdout)), []);
});
