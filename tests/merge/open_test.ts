/**
 * Tests of opening merge inputs: one named case per failure (missing folder, no adapter_config.json, no weights,
 * lora_A without lora_B, quantized GGUF base, single .safetensors file) and the layouts each reader reports.
 * Oracle: the generator's files (written by the project's writers) and hand-broken copies of them.
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { FormatError, UserError } from "../../src/core/errors.ts";
import { memoryModelFs, openBase, openLora } from "../../src/merge/open.ts";
import { denoModelFs } from "../../src/commands/_model_fs.ts";
import { quantizeGguf } from "../../src/merge/pipeline.ts";
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { writePytorchCheckpoint } from "../../src/formats/pytorch_writer.ts";
import { tinyGgufFiles, tinyHfFiles, tinyLoraFiles, tinyMetaFiles, writeTinyFiles } from "../_tiny_model.ts";

const SPEC = { dim: 32, hiddenDim: 96, nLayers: 1, nHeads: 2, vocabSize: 40, seed: 2 };
const tmp = Deno.makeTempDirSync({ prefix: "yangtuo-open-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

Deno.test("openBase() reports format, q/k layout and config for HF, Meta and GGUF", async () => {
  const hf = await writeTinyFiles(`${tmp}/hf`, tinyHfFiles(SPEC, { dtype: "BF16" }));
  const meta = await writeTinyFiles(`${tmp}/meta`, tinyMetaFiles(SPEC, { dtype: "F32", shards: 1 }));
  const gguf = `${await writeTinyFiles(`${tmp}/gguf`, tinyGgufFiles(SPEC, { dtype: "F32" }))}/model.gguf`;
  for (const [path, format, layout] of [[hf, "hf", "hf"], [meta, "meta", "meta"], [gguf, "gguf", "meta"]]) {
    const b = openBase(denoModelFs, path);
    try {
      assertEquals([b.format, b.layout], [format, layout]);
      assertEquals([b.config.dim, b.config.hiddenDim, b.config.vocabSize, b.config.nLayers], [32, 96, 40, 1]);
      assertEquals(b.tensors.size, 2 + 9 + 1);
    } finally {
      b.close();
    }
  }
});

Deno.test("openBase() refuses missing paths, weightless folders, single safetensors files and quantized GGUF", async () => {
  assertThrows(() => openBase(denoModelFs, `${tmp}/nope`), UserError, "does not exist");
  Deno.mkdirSync(`${tmp}/cfg-only`);
  Deno.writeTextFileSync(`${tmp}/cfg-only/config.json`, "{}");
  assertThrows(() => openBase(denoModelFs, `${tmp}/cfg-only`), UserError, "no model*.safetensors");
  Deno.mkdirSync(`${tmp}/empty`);
  assertThrows(() => openBase(denoModelFs, `${tmp}/empty`), UserError, "no params.json");
  const hf = await writeTinyFiles(`${tmp}/hf2`, tinyHfFiles(SPEC, { dtype: "F16" }));
  assertThrows(() => openBase(denoModelFs, `${hf}/model.safetensors`), UserError, "single file");
  const f16 = Deno.readFileSync(
    `${await writeTinyFiles(`${tmp}/g16`, tinyGgufFiles(SPEC, { dtype: "F16" }))}/model.gguf`,
  );
  const sink = new BytesSink();
  await quantizeGguf(new BytesSource(f16), sink, "Q4_0");
  Deno.writeFileSync(`${tmp}/q4.gguf`, sink.bytes());
  const e = assertThrows(() => openBase(denoModelFs, `${tmp}/q4.gguf`), UserError, "is Q4_0");
  assert((e as UserError).hint!.includes("unquantized"));
});

Deno.test("openLora() refuses folders without config or weights, and a lora_A without its lora_B", async () => {
  const opened: { close(): void }[] = [];
  try {
    assertThrows(() => openLora(denoModelFs, `${tmp}/none`, opened), UserError, "not a folder");
    Deno.mkdirSync(`${tmp}/lora-empty`);
    assertThrows(() => openLora(denoModelFs, `${tmp}/lora-empty`, opened), UserError, "no adapter_config.json");
    const lora = { r: 2, alpha: 4, targetModules: ["q_proj"], seed: 1 };
    const dir = await writeTinyFiles(`${tmp}/lora-ok`, tinyLoraFiles(SPEC, lora));
    assertEquals(openLora(denoModelFs, dir, opened).pairs.size, 1);
    Deno.removeSync(`${dir}/adapter_model.bin`);
    assertThrows(() => openLora(denoModelFs, dir, opened), UserError, "no adapter_model");
    const sink = new BytesSink();
    writePytorchCheckpoint(sink, [{
      name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
      dtype: "F32",
      shape: [2, 32],
      write: (w) => w(new Uint8Array(256)),
    }]);
    Deno.writeFileSync(`${dir}/adapter_model.bin`, sink.bytes());
    assertThrows(() => openLora(denoModelFs, dir, opened), FormatError, "has no lora_B");
  } finally {
    opened.forEach((f) => f.close());
  }
});

Deno.test("memoryModelFs() opens the same base as the real file system, byte for byte", async () => {
  const dir = await writeTinyFiles(`${tmp}/mem-hf`, tinyHfFiles(SPEC, { dtype: "F16" }));
  const files: Record<string, Uint8Array> = {};
  for (const name of Deno.readDirSync(dir)) files[`hf/${name.name}`] = Deno.readFileSync(`${dir}/${name.name}`);
  const fs = memoryModelFs(files);
  assertEquals(fs.kind("hf"), "dir");
  assertEquals(fs.kind("hf/config.json"), "file");
  assertEquals(fs.kind("nope"), undefined);
  assertEquals(fs.list("hf").sort(), Object.keys(files).map((p) => p.slice(3)).sort());
  const mem = openBase(fs, "hf"), disk = openBase(denoModelFs, dir);
  try {
    assertEquals(mem.config, disk.config);
    assertEquals([...mem.tensors.keys()], [...disk.tensors.keys()]);
    for (const [key, t] of mem.tensors) {
      const rows = t.shape.length === 2 ? t.shape[0] : 1;
      assertEquals(t.readRows(0, rows), disk.tensors.get(key)!.readRows(0, rows), key);
    }
  } finally {
    mem.close();
    disk.close();
  }
});
