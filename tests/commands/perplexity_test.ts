/**
 * `cli.ts perplexity` end to end on babyllama105 (llama2.c .bin + tok105.model). Oracle: the same perplexity
 * recomputed here with the TypeScript reference forward pass (llama.ts, itself checked against the independent
 * numpy vectors) and llama.cpp's chunking rule written out by hand: chunks of c tokens, BOS first in each, the
 * second half scored.
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { FileSource } from "../../src/io/file_source.ts";
import { readLlama2c } from "../../src/model/llama2c_gguf.ts";
import { ggufSpecFromLlama2c } from "../../src/model/llama2c_gguf.ts";
import { LlamaReference, loadWeightsF32 } from "../../src/model/llama.ts";
import { TensorTable } from "../../src/model/weights.ts";
import { readSentencePieceModel, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const MODEL = "models/babyllama105/model5000.bin";
const TOK = "models/babyllama105/tok105.model";
const TEXT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. " +
  "One day, she went to the park with her mommy and daddy. She saw a big box on the ground. " +
  "She wanted to open it, but it was too heavy. Her dad came and helped her. Inside the box was a tiny puppy.";

Deno.test("perplexity matches a reference recomputation on babyllama105", needsTestData(MODEL, TOK), async () => {
  const root = testDataRoot();
  const textPath = await Deno.makeTempFile({ dir: "/tmp", suffix: ".txt" });
  Deno.writeTextFileSync(textPath, TEXT);
  try {
    const ctx = 64;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        "--allow-sys",
        CLI,
        "perplexity",
        "-m",
        `${root}/${MODEL}`,
        "--tokenizer",
        `${root}/${TOK}`,
        "-f",
        textPath,
        "-c",
        String(ctx),
        "-t",
        "2",
        "--json",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    assertStringIncludes(stderr, "[1]");
    const got = JSON.parse(new TextDecoder().decode(out.stdout));

    // the oracle
    const tok = tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(`${root}/${TOK}`)));
    const ids = tok.encode(TEXT, { bos: true });
    using src = new FileSource(`${root}/${MODEL}`);
    const { config } = ggufSpecFromLlama2c(src);
    const w = loadWeightsF32(
      new TensorTable({ metadata: new Map(), tensors: readLlama2c(src).tensors, source: src }, config),
    );
    const nChunks = Math.floor(ids.length / ctx);
    let nll = 0, count = 0;
    for (let c = 0; c < nChunks; c++) {
      const chunk = ids.slice(c * ctx, (c + 1) * ctx);
      const ref = new LlamaReference(config, w, ctx);
      for (let j = 0; j < ctx - 1; j++) {
        const logits = ref.forward(j === 0 ? 1 : chunk[j], j);
        if (j < ctx / 2) continue;
        let max = -Infinity;
        for (const v of logits) max = Math.max(max, v);
        let sum = 0;
        for (const v of logits) sum += Math.exp(v - max);
        nll += Math.log(sum) - (logits[chunk[j + 1]] - max);
        count++;
      }
    }
    assertEquals(got.chunks, nChunks);
    assertEquals(got.tokens_scored, count);
    const want = Math.exp(nll / count);
    // engine (f16 KV cache, f32 SIMD sums) vs reference: relative 1e-3
    assertEquals(Math.abs(got.perplexity - want) / want < 1e-3, true, `${got.perplexity} vs ${want}`);
  } finally {
    Deno.removeSync(textPath);
  }
});

Deno.test("perplexity --help prints the usage", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", CLI, "perplexity", "--help"],
    stdout: "piped",
  }).output();
  assertEquals(out.code, 0);
  assertStringIncludes(new TextDecoder().decode(out.stdout), "second half");
});
