/**
 * Tests of `convert`: the real BabyLlama (llama2.c, GQA 8/4 heads, tied classifier) to GGUF F32 keeps every
 * weight bit for bit (oracle: the llama2.c file's own bytes) with tok105.model's vocabulary; a generated HF
 * checkpoint converts to GGUF with q/k un-permuted to Meta layout (oracle: the generator's Meta values).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { UserError } from "../../src/core/errors.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { BytesSource } from "../../src/core/byte_source.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { readLlama2c } from "../../src/model/llama2c_gguf.ts";
import { convertToGguf } from "../../src/commands/_pipeline_files.ts";
import { tinyHfFiles, tinyTensor, writeTinyFiles } from "../_tiny_model.ts";
import { decode } from "../merge/_expect.ts";

const tmp = Deno.makeTempDirSync({ prefix: "yangtuo-convert-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
const BABY = "models/babyllama105/model5000.bin", TOK = "models/babyllama105/tok105.model";

Deno.test(
  "convertToGguf() keeps BabyLlama's llama2.c weights bit for bit in GGUF F32",
  needsTestData(BABY, TOK),
  async () => {
    const out = `${tmp}/baby.gguf`;
    await convertToGguf(`${testDataRoot()}/${BABY}`, out, { outtype: "F32", tokenizer: `${testDataRoot()}/${TOK}` });
    const l2 = new BytesSource(Deno.readFileSync(`${testDataRoot()}/${BABY}`));
    const src = readLlama2c(l2);
    const g = new BytesSource(Deno.readFileSync(out));
    const gg = readGguf(g);
    assertEquals(gg.metadata.get("llama.attention.head_count_kv"), 4);
    assertEquals((gg.metadata.get("tokenizer.ggml.tokens") as string[]).length, 105);
    for (const t of src.tensors) {
      const o = gg.tensors.find((x) => x.name === t.name)!;
      assertEquals(o.shape, t.shape, t.name);
      assertEquals(g.read(o.byteOffset, o.nBytes), l2.read(t.byteOffset, t.nBytes), t.name);
    }
    // tied classifier: output.weight is written as a copy of the embedding
    const emb = gg.tensors.find((x) => x.name === "token_embd.weight")!,
      outW = gg.tensors.find((x) => x.name === "output.weight")!;
    assertEquals(g.read(outW.byteOffset, outW.nBytes), g.read(emb.byteOffset, emb.nBytes));
  },
);

Deno.test("convertToGguf() un-permutes HF q/k rows into GGUF's (Meta) layout", async () => {
  const spec = { dim: 64, hiddenDim: 192, nLayers: 1, nHeads: 4, nKvHeads: 2, vocabSize: 50, seed: 9 };
  const dir = await writeTinyFiles(`${tmp}/hf`, tinyHfFiles(spec, { dtype: "F32" }));
  const out = `${tmp}/hf.gguf`;
  await convertToGguf(dir, out, { outtype: "F32", allowNoTokenizer: true });
  const g = new BytesSource(Deno.readFileSync(out));
  const gg = readGguf(g);
  for (const [name, kind] of [["blk.0.attn_q.weight", "attn_q"], ["blk.0.attn_k.weight", "attn_k"]] as const) {
    const o = gg.tensors.find((x) => x.name === name)!;
    const meta = tinyTensor(spec, kind, 0, "meta");
    assertEquals(
      Array.from(decode("F32", g.read(o.byteOffset, o.nBytes))),
      Array.from(meta.readRows(0, meta.shape[0])),
    );
  }
  const k = gg.tensors.find((x) => x.name === "blk.0.attn_k.weight")!;
  assertEquals(k.shape, [32, 64]);
  assert(gg.metadata.get("general.file_type") === 0);
});

Deno.test(
  "convertToGguf() refuses a tokenizer that does not fit the embedding rows before writing anything",
  needsTestData(BABY, "models/tokenizers/llama/tokenizer.model"),
  async () => {
    const out = `${tmp}/baby-llama-tok.gguf`;
    const e = await assertRejects(
      () =>
        convertToGguf(`${testDataRoot()}/${BABY}`, out, {
          tokenizer: `${testDataRoot()}/models/tokenizers/llama/tokenizer.model`,
        }),
      UserError,
      "has 32,000 tokens but the model has 105 embedding rows",
    );
    // the same explanation merge gives (one shared check): which tokenizer the weights belong with
    assertStringIncludes((e as UserError).hint!, "the original LLaMA tokenizer (32,000)");
    assertEquals([...Deno.readDirSync(tmp)].filter((f) => f.name.includes("baby-llama-tok")), []);
  },
);
