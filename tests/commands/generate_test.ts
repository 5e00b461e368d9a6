/**
 * `cli.ts generate` end to end in a subprocess (scoped permissions as deno.json's task): babyllama105 (llama2.c
 * .bin + tok105.model, converted in memory) must print the independent greedy continuation of
 * ../shared/data/models/testvectors/babyllama105_greedy.json; friendly errors for missing or wrong files.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { tinyConfig, writeTinyModel } from "../model/_tiny.ts";
import { continuationText } from "../../src/commands/generate.ts";
import { readSentencePieceModel, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const MODEL = "models/babyllama105/model5000.bin";
const TOK = "models/babyllama105/tok105.model";
const VECTORS = "models/testvectors/babyllama105_greedy.json";

async function cli(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "--allow-sys=cpus,systemMemoryInfo", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("generate --help prints the usage and exits 0", async () => {
  const r = await cli("generate", "--help");
  assertEquals(r.code, 0);
  assertStringIncludes(r.stdout, "--repeat-penalty");
});

Deno.test(
  "generate on babyllama105 (.bin + tokenizer.model) prints the independent greedy ids",
  needsTestData(MODEL, TOK, VECTORS),
  async () => {
    const root = testDataRoot();
    const c = JSON.parse(Deno.readTextFileSync(`${root}/${VECTORS}`)).cases.find((x: { prompt: string }) =>
      x.prompt === "Once upon a time"
    );
    const nGen = c.ids_after_bos.length - (c.prompt_tokens.length - 1);
    const r = await cli(
      "generate",
      "-m",
      `${root}/${MODEL}`,
      "--tokenizer",
      `${root}/${TOK}`,
      "-p",
      c.prompt,
      "--temp",
      "0",
      "--repeat-penalty",
      "1",
      "-n",
      String(nGen),
      "-t",
      "2",
      "--json",
    );
    assertEquals(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assertEquals(j.prompt_ids, c.prompt_tokens);
    assertEquals([...j.prompt_ids.slice(1), ...j.ids], c.ids_after_bos);
    assert(c.text.startsWith(c.prompt + j.text) || c.text.includes(j.text.trim().slice(0, 40)), j.text);
    assertStringIncludes(r.stderr, "tok/s");
  },
);

Deno.test("generate streams text to stdout and stats to stderr", needsTestData(MODEL, TOK), async () => {
  const root = testDataRoot();
  const r = await cli(
    "generate",
    "-m",
    `${root}/${MODEL}`,
    "--tokenizer",
    `${root}/${TOK}`,
    "-p",
    "The dog",
    "-n",
    "20",
    "--seed",
    "1",
  );
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.length > 5 && !r.stdout.includes("tok/s"), r.stdout);
  assertStringIncludes(r.stderr, "generated");
});

Deno.test("generate explains a missing model file", async () => {
  const r = await cli("generate", "-m", "/tmp/yangtuo-no-such-model.gguf", "-p", "hi");
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "error: Cannot open model");
  assertStringIncludes(r.stderr, "hint:");
});

Deno.test("generate asks for --tokenizer when the model is not GGUF", needsTestData(MODEL), async () => {
  const r = await cli("generate", "-m", `${testDataRoot()}/${MODEL}`, "-p", "hi");
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "not a GGUF file");
  assertStringIncludes(r.stderr, "--tokenizer");
});

Deno.test("generate rejects a bad flag value with exit code 2", async () => {
  const r = await cli("generate", "-m", "x.gguf", "-n", "many");
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "--n-predict");
});

Deno.test("generate on a GGUF file: the WASM engine (2 threads) and --reference give the same greedy text", async () => {
  const path = await writeTinyModel(tinyConfig(2, { vocabSize: 320 }), { dtype: "F32", seed: 5 });
  try {
    const args = ["generate", "-m", path, "-p", "abc", "--temp", "0", "-n", "24", "--json"];
    const fast = await cli(...args, "-t", "2");
    const ref = await cli(...args, "--reference");
    assertEquals(fast.code, 0, fast.stderr);
    assertEquals(ref.code, 0, ref.stderr);
    const a = JSON.parse(fast.stdout), b = JSON.parse(ref.stdout);
    assertEquals(a.prompt_ids, b.prompt_ids);
    assertEquals(a.prompt_ids[0], 1); // BOS
    assertEquals(a.ids, b.ids);
    assertEquals(a.ids.length, 24);
    assertEquals(a.text, b.text);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("generate explains a file that is neither GGUF nor llama2.c", async () => {
  const path = await Deno.makeTempFile({ dir: "/tmp", suffix: ".bin" });
  Deno.writeTextFileSync(path, "definitely not a model");
  const tok = await Deno.makeTempFile({ dir: "/tmp", suffix: ".model" });
  try {
    const r = await cli("generate", "-m", path, "-p", "hi");
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "not a GGUF file");
    const r2 = await cli("generate", "-m", path, "--tokenizer", tok, "-p", "hi");
    assertEquals(r2.code, 1);
    assertStringIncludes(r2.stderr, "error:");
  } finally {
    Deno.removeSync(path);
    Deno.removeSync(tok);
  }
});

const TOKENIZERS = [
  "models/tokenizers/llama/tokenizer.model",
  "models/tokenizers/chinese-alpaca/tokenizer.model",
  TOK,
];

function loadSp(rel: string) {
  return tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/${rel}`)));
}

Deno.test(
  "continuationText() keeps the space before the first generated word (LLaMA, Chinese-Alpaca, babyllama)",
  needsTestData(...TOKENIZERS),
  () => {
    for (const rel of TOKENIZERS) {
      const tok = loadSp(rel);
      for (const [prompt, more] of [["The dog", " was a good dog"], ["Once upon a time", ", there was"]]) {
        const promptIds = tok.encode(prompt, { bos: true });
        const all = tok.encode(prompt + more, { bos: true });
        assertEquals(all.slice(0, promptIds.length), promptIds, `${rel}: ${prompt}`);
        const ids = all.slice(promptIds.length);
        assertEquals(continuationText(tok, promptIds, ids), more, rel);
        assertEquals(prompt + continuationText(tok, promptIds, ids), tok.decode(all), rel);
      }
      // from BOS alone the first piece starts the text: its dummy-prefix space goes, as in SentencePiece
      const ids = tok.encode("Hello world", { bos: false });
      assertEquals(continuationText(tok, [tok.bosId], ids), "Hello world", rel);
    }
  },
);

Deno.test(
  "generate --json: prompt + text equals the decoded prompt and generated ids (space kept)",
  needsTestData(MODEL, TOK),
  async () => {
    const root = testDataRoot();
    const j = await cli(
      ...["generate", "-m", `${root}/${MODEL}`, "--tokenizer", `${root}/${TOK}`, "-p", "The dog", "-n", "8"],
      ...["--temp", "0", "--json", "-t", "1"],
    );
    assertEquals(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout);
    const tok = loadSp(TOK);
    assertEquals("The dog" + out.text, tok.decode([...out.prompt_ids, ...out.ids]));
    if (tok.pieceOf(out.ids[0]).startsWith("\u2581")) assert(out.text.startsWith(" "), out.text);
    // streamed text (no --json) is the same text
    const streamed = await cli(
      ...["generate", "-m", `${root}/${MODEL}`, "--tokenizer", `${root}/${TOK}`, "-p", "The dog", "-n", "8"],
      ...["--temp", "0", "-t", "1"],
    );
    assertEquals(streamed.stdout, out.text + "\n");
  },
);
