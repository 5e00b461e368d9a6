/**
 * The shared tokenizer loader behind `tokenize` (and generate/perplexity --tokenizer): a SentencePiece .model, a
 * llama2.c tokenizer.bin, a GGUF vocabulary and a folder give the same ids for LLaMA's tokenizer. Oracle: the
 * SentencePiece .model path (golden-tested in tests/tokenizer against SentencePiece itself).
 */
import { assertEquals, assertRejects } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { UserError } from "../../src/core/errors.ts";
import { loadTokenizerFile } from "../../src/commands/_tokenizer_loader.ts";

const LLAMA = "models/tokenizers/llama";
const GGUF = "llamacpp/models/ggml-vocab-llama-spm.gguf";
const TEXT = "Hello  world, 你好 ⚡️ tabs\tx\n  end";

Deno.test(
  "loadTokenizerFile() reads tokenizer.model, llama2.c tokenizer.bin, a GGUF and a folder alike",
  needsTestData(`${LLAMA}/tokenizer.model`, `${LLAMA}/tokenizer.bin`, GGUF),
  async () => {
    const root = testDataRoot();
    const want = (await loadTokenizerFile(`${root}/${LLAMA}/tokenizer.model`)).encode(TEXT, { bos: true });
    for (const p of [`${LLAMA}/tokenizer.bin`, LLAMA, GGUF]) {
      const tok = await loadTokenizerFile(`${root}/${p}`);
      assertEquals(tok.vocabSize, 32000, p);
      assertEquals(tok.encode(TEXT, { bos: true }), want, p);
    }
  },
);

Deno.test("loadTokenizerFile() names the path and the flag for missing or unreadable files", async () => {
  await assertRejects(() => loadTokenizerFile("/nonexistent/tok.model", "--tokenizer"), UserError, "/nonexistent");
  const junk = await Deno.makeTempFile({ dir: "/tmp", prefix: "yangtuo-tok-", suffix: ".model" });
  try {
    await Deno.writeFile(junk, new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    await assertRejects(() => loadTokenizerFile(junk, "--tokenizer"), UserError, "Cannot load tokenizer");
  } finally {
    await Deno.remove(junk);
  }
});

Deno.test("tokenize accepts a llama2.c tokenizer.bin", needsTestData(`${LLAMA}/tokenizer.bin`), async () => {
  const cli = new URL("../../cli.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      cli,
      "tokenize",
      "--tokenizer",
      `${testDataRoot()}/${LLAMA}/tokenizer.bin`,
    ]
      .concat(["Hello world"]),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertEquals(JSON.parse(new TextDecoder().decode(out.stdout)), [1, 15043, 3186]);
});
