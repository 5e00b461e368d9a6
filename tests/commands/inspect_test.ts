/**
 * Tests for `inspect`. Oracles: ../shared/data PROVENANCE.md files (the llama.cpp fixture's KVs and tensor table,
 * the vocab GGUFs' counts, BabyLlama's header) and folders generated in /tmp by our writers with known contents.
 */
import { BytesSink } from "../../src/core/byte_source.ts";
import { writeSafetensors } from "../../src/formats/safetensors.ts";
import { writePytorchCheckpoint } from "../../src/formats/pytorch_writer.ts";
import { formatReport, inspectPath } from "../../src/commands/inspect.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { needsTestData, testDataPath } from "../_fixtures.ts";
import { UserError } from "../../src/core/errors.ts";

const FIXTURE = "models/gguf-format-fixture/llama-2-tiny-random.gguf";
const CLI = new URL("../../cli.ts", import.meta.url).pathname;

Deno.test(
  "inspectPath() reports llama-2-tiny-random.gguf as its PROVENANCE describes",
  needsTestData(FIXTURE),
  async () => {
    const r = await inspectPath(testDataPath(FIXTURE)!);
    assertEquals([r.format, r.version, r.architecture, r.vocabSize, r.alignment, r.dataOffset], [
      "gguf",
      3,
      "llama",
      32000,
      32,
      724416,
    ]);
    assertEquals(Object.keys(r.metadata).length, 18);
    assertEquals(r.metadata["llama.attention.head_count_kv"], 2);
    assertEquals(r.metadataTypes!["tokenizer.ggml.tokens"], "ARRAY[STRING]");
    assertEquals(r.config, {
      dim: 8,
      hiddenDim: 32,
      nLayers: 1,
      nHeads: 2,
      nKvHeads: 2,
      contextLength: 4096,
      ropeDimensionCount: 4,
      rmsNormEps: 1e-5, // the file's float32, as its shortest decimal
      fileType: 1,
    });
    assertEquals(r.tensors.length, 12);
    assertStringIncludes(r.shapeOrder, "innermost first");
    assertEquals(r.tensors[0], { name: "token_embd.weight", dtype: "F16", shape: [8, 32000], nBytes: 512000 });
    assertEquals(r.tensors.find((t) => t.name === "blk.0.ffn_down.weight")!.shape, [32, 8]);
    const text = formatReport(r);
    assertStringIncludes(text, "tokenizer.ggml.tokens = [32000 × STRING]");
    assertStringIncludes(text, "tensors (12,");
    assert(text.length < 5000, "long arrays are summarized");
  },
);

for (
  const [rel, n] of [["llamacpp/models/ggml-vocab-llama-spm.gguf", 32000], [
    "llamacpp/models/ggml-vocab-baichuan.gguf",
    64000,
  ]] as const
) {
  Deno.test(`inspectPath() reports the vocab size of ${rel.split("/").pop()}`, needsTestData(rel), async () => {
    const r = await inspectPath(testDataPath(rel)!);
    assertEquals([r.format, r.vocabSize, r.tensors.length], ["gguf", n, 0]);
  });
}

const BABY = "models/babyllama105/model5000.bin";

Deno.test(
  "inspectPath() reports babyllama105 as a llama2.c checkpoint with its PROVENANCE config",
  needsTestData(BABY),
  async () => {
    const r = await inspectPath(testDataPath(BABY)!);
    assertEquals(r.format, "llama2c");
    assertEquals(r.config, {
      dim: 128,
      hiddenDim: 352,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 105,
      seqLen: 256,
      sharedClassifier: true,
      headSize: 16,
    });
    assertEquals(r.totalBytes, 3762204 - 28 - 4 * 256 * 16);
  },
);

Deno.test(
  "inspectPath() reports tokenizer files",
  needsTestData("models/babyllama105/tok105.model", "models/tokenizers/llama/tokenizer.bin"),
  async () => {
    const sp = await inspectPath(testDataPath("models/babyllama105/tok105.model")!);
    assertEquals([sp.format, sp.vocabSize], ["sentencepiece", 105]);
    const bin = await inspectPath(testDataPath("models/tokenizers/llama/tokenizer.bin")!);
    assertEquals([bin.format, bin.vocabSize, bin.metadata.max_token_length], ["llama2c-tokenizer", 32000, 27]);
  },
);

async function st(path: string, tensors: { name: string; shape: number[] }[]): Promise<void> {
  const sink = new BytesSink();
  await writeSafetensors(
    sink,
    tensors.map((t) => ({ ...t, dtype: "F16" as const, data: new Uint8Array(2 * t.shape.reduce((a, b) => a * b, 1)) })),
    { format: "pt" },
  );
  Deno.writeFileSync(path, sink.bytes());
}

Deno.test("inspectPath() reads Hugging Face folders: single, sharded and LoRA", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "yangtuo-inspect-" });
  try {
    Deno.mkdirSync(`${dir}/single`);
    await st(`${dir}/single/model.safetensors`, [{ name: "model.embed_tokens.weight", shape: [49953, 4] }]);
    Deno.writeTextFileSync(
      `${dir}/single/config.json`,
      JSON.stringify({ architectures: ["LlamaForCausalLM"], vocab_size: 49953 }),
    );
    const a = await inspectPath(`${dir}/single`);
    assertEquals([a.format, a.vocabSize, a.architecture, a.tensors[0].shape], [
      "safetensors",
      49953,
      "LlamaForCausalLM",
      [49953, 4],
    ]);

    Deno.mkdirSync(`${dir}/sharded`);
    await st(`${dir}/sharded/model-00001-of-00002.safetensors`, [{
      name: "model.embed_tokens.weight",
      shape: [10, 4],
    }]);
    await st(`${dir}/sharded/model-00002-of-00002.safetensors`, [{ name: "lm_head.weight", shape: [10, 4] }]);
    Deno.writeTextFileSync(
      `${dir}/sharded/model.safetensors.index.json`,
      JSON.stringify({
        metadata: { total_size: 160 },
        weight_map: {
          "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
          "lm_head.weight": "model-00002-of-00002.safetensors",
        },
      }),
    );
    const b = await inspectPath(`${dir}/sharded`);
    assertEquals(b.tensors.map((t) => [t.name, t.file]), [
      ["model.embed_tokens.weight", "model-00001-of-00002.safetensors"],
      ["lm_head.weight", "model-00002-of-00002.safetensors"],
    ]);
    assertEquals(b.totalBytes, 160);

    Deno.mkdirSync(`${dir}/lora`);
    await st(`${dir}/lora/adapter_model.safetensors`, [{
      name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
      shape: [8, 4],
    }]);
    Deno.writeTextFileSync(
      `${dir}/lora/adapter_config.json`,
      JSON.stringify({ r: 8, lora_alpha: 32, peft_type: "LORA" }),
    );
    const c = await inspectPath(`${dir}/lora`);
    assertEquals([c.format, c.container, (c.config as { r: number }).r, c.tensors.length], [
      "lora",
      "safetensors",
      8,
      1,
    ]);

    Deno.mkdirSync(`${dir}/empty`);
    await assertRejects(() => inspectPath(`${dir}/empty`), UserError, "no model files");
    await assertRejects(() => inspectPath(`${dir}/missing`), UserError, "no such file");
    Deno.writeFileSync(`${dir}/junk.bin`, new Uint8Array(100).fill(7));
    await assertRejects(() => inspectPath(`${dir}/junk.bin`), UserError, "not a GGUF");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("cli.ts inspect --json prints the report and --help exits 0", needsTestData(FIXTURE), async () => {
  const run = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", CLI, "inspect", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const out = await run(testDataPath(FIXTURE)!, "--json");
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const j = JSON.parse(new TextDecoder().decode(out.stdout));
  assertEquals([j.format, j.metadata["general.architecture"], j.tensors.length, j.tensors[11].name], [
    "gguf",
    "llama",
    12,
    "output.weight",
  ]);
  assertEquals(Object.keys(j.tensors[0]).sort(), ["dtype", "nBytes", "name", "shape"]);
  assertEquals(j.metadata["tokenizer.ggml.tokens"].length, 32000);
  const help = await run("--help");
  assertEquals(help.code, 0);
  assertStringIncludes(new TextDecoder().decode(help.stdout), "usage: inspect");
  const bad = await run("/nonexistent/model.gguf");
  assertEquals(bad.code, 1);
  assertStringIncludes(new TextDecoder().decode(bad.stderr), "error: Cannot inspect");
});

function pth(path: string, tensors: { name: string; shape: number[] }[]): void {
  const sink = new BytesSink();
  writePytorchCheckpoint(
    sink,
    tensors.map((t) => ({
      ...t,
      dtype: "F16" as const,
      write: (w: (b: Uint8Array) => void) => w(new Uint8Array(2 * t.shape.reduce((a, b) => a * b, 1))),
    })),
    { archiveName: path.split("/").pop()!.replace(/\.[^.]*$/, "") },
  );
  Deno.writeFileSync(path, sink.bytes());
}

Deno.test("inspectPath() reads PyTorch checkpoints and 2-shard Meta folders through the pytorch/meta readers", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "yangtuo-inspect-" });
  try {
    pth(`${dir}/adapter_model.bin`, [{ name: "base_model.model.lm_head.lora_B.weight", shape: [10, 2] }]);
    const a = await inspectPath(`${dir}/adapter_model.bin`);
    assertEquals([a.format, a.tensors[0].shape, a.tensors[0].nBytes], ["pytorch", [10, 2], 40]);

    Deno.mkdirSync(`${dir}/meta`);
    const params = { dim: 8, multiple_of: 4, n_heads: 2, n_layers: 1, norm_eps: 1e-6, vocab_size: -1 };
    Deno.writeTextFileSync(`${dir}/meta/params.json`, JSON.stringify(params));
    for (const i of [0, 1]) {
      pth(`${dir}/meta/consolidated.0${i}.pth`, [
        { name: "tok_embeddings.weight", shape: [10, 4] }, // split along dim 1
        { name: "layers.0.attention.wq.weight", shape: [4, 8] }, // split along dim 0
        { name: "norm.weight", shape: [8] }, // replicated
      ]);
    }
    const m = await inspectPath(`${dir}/meta`);
    assertEquals([m.format, m.vocabSize, m.files], ["meta", 10, ["consolidated.00.pth", "consolidated.01.pth"]]);
    assertEquals(m.tensors.map((t) => [t.name, t.shape]), [
      ["tok_embeddings.weight", [10, 8]],
      ["layers.0.attention.wq.weight", [8, 8]],
      ["norm.weight", [8]],
    ]);
    assertEquals((m.config as { dim: number }).dim, 8);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test(
  "inspectPath() describes a tokenizer.model: type, normalizer, flags, special ids, piece types, 49,953/49,954 note",
  needsTestData(
    "models/tokenizers/chinese-alpaca/tokenizer.model",
    "models/tokenizers/chinese_sp/chinese_sp.model",
    "models/tokenizers/llama/tokenizer.model",
  ),
  async () => {
    // oracle: models/PROVENANCE.md (the trainer/normalizer specs) and SentencePiece 0.1.97's own counts
    // (is_unknown / is_control / is_byte over every id: 1 / 2 / 256, the rest normal)
    const a = await inspectPath(testDataPath("models/tokenizers/chinese-alpaca/tokenizer.model")!);
    assertEquals(a.vocabSize, 49954);
    assertEquals(a.config, {
      modelType: "bpe",
      normalizer: "identity",
      addDummyPrefix: true,
      removeExtraWhitespaces: false,
      byteFallback: true,
      unk: '0 "<unk>"',
      bos: '1 "<s>"',
      eos: '2 "</s>"',
      pad: "-1",
      pieceTypes: { unknown: 1, control: 2, byte: 256, normal: 49695 },
    });
    assertStringIncludes(a.note!, "Chinese-Alpaca");
    assertStringIncludes(formatReport(a), "note: Chinese-Alpaca");
    const sp = await inspectPath(testDataPath("models/tokenizers/chinese_sp/chinese_sp.model")!);
    assertEquals([sp.config!.modelType, sp.config!.normalizer, sp.config!.byteFallback], [
      "unigram",
      "nmt_nfkc",
      false,
    ]);
    const llama = await inspectPath(testDataPath("models/tokenizers/llama/tokenizer.model")!);
    assertStringIncludes(llama.note!, "original LLaMA");
  },
);

Deno.test("inspectPath() names legacy ggml / ggmf / ggjt files and points to convert", async () => {
  const dir = await Deno.makeTempDir({ prefix: "yangtuo-legacy-" });
  try {
    for (
      const [magic, name, version] of [[0x67676d6c, "ggml", ""], [0x67676d66, "ggmf", " v1"], [
        0x67676a74,
        "ggjt",
        " v3",
      ]] as const
    ) {
      const bytes = new Uint8Array(64);
      const dv = new DataView(bytes.buffer);
      dv.setUint32(0, magic, true);
      dv.setUint32(4, version === " v3" ? 3 : 1, true);
      const path = `${dir}/${name}.bin`;
      await Deno.writeFile(path, bytes);
      const e = await assertRejects(() => inspectPath(path), UserError, `legacy llama.cpp ${name}${version} file`);
      assertStringIncludes((e as UserError).hint!, "convert");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "inspectPath() recognises llama.cpp's March-2023 ggjt v1 vocabulary file",
  needsTestData("llamacpp/legacy-2023-03-31/ggml-vocab.bin"),
  async () => {
    await assertRejects(
      () => inspectPath(testDataPath("llamacpp/legacy-2023-03-31/ggml-vocab.bin")!),
      UserError,
      "legacy llama.cpp ggjt v1 file",
    );
  },
);

Deno.test("inspect prints a FLOAT32 rms epsilon as the float32 it is (1e-5)", needsTestData(FIXTURE), async () => {
  const r = await inspectPath(testDataPath(FIXTURE)!);
  assertEquals(r.config!.rmsNormEps, 1e-5);
  assertEquals(r.metadata["llama.attention.layer_norm_rms_epsilon"], 1e-5);
  const text = formatReport(r);
  assertStringIncludes(text, "rmsNormEps 1e-5");
  assert(!text.includes("0.0000099999"), text);
});
