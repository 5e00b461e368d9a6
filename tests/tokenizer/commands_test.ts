/**
 * `tokenize` and `merge-tokenizer` end to end through cli.ts in a subprocess. Oracles: SentencePiece ids from
 * tokenizer_vectors.json, the official tokenizer sha256 values, and the commands' documented contracts
 * (refuse to overwrite without --force, usage errors exit 2).
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const BASE = "models/tokenizers/llama/tokenizer.model";
const ADD = "models/tokenizers/chinese_sp/chinese_sp.model";
const CN = "models/tokenizers/chinese-llama/tokenizer.model";
const AL = "models/tokenizers/chinese-alpaca/tokenizer.model";

async function cli(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write=/tmp", "--allow-env", CLI, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await child.output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
}

Deno.test("tokenize prints ids with BOS, pieces, and reads stdin", needsTestData(CN), async () => {
  const file = `${testDataRoot()}/${CN}`;
  const a = await cli(["tokenize", "--tokenizer", file, "白日依山尽"]);
  assertEquals([a.code, JSON.parse(a.out)], [0, [1, 39226, 30325, 33282, 30329, 32555]]);
  const b = await cli(["tokenize", "--tokenizer", file, "--no-bos", "--pieces", "白日依山尽"]);
  assertEquals(JSON.parse(b.out), ["▁白", "日", "依", "山", "尽"]);
  const c = await cli(["tokenize", "--tokenizer", file, "--no-bos", "-"], "白日依山尽");
  assertEquals(JSON.parse(c.out), [39226, 30325, 33282, 30329, 32555]);
});

Deno.test("tokenize --compare explains 49,953 vs 49,954", needsTestData(CN, AL), async () => {
  const r = await cli(["tokenize", "--compare", `${testDataRoot()}/${CN}`, `${testDataRoot()}/${AL}`, "你好"]);
  assertEquals(r.code, 0);
  assertStringIncludes(r.out, "the first 49953 pieces are identical");
  assertStringIncludes(r.out, "[PAD]");
  assertStringIncludes(r.out, "identical ids for this text");
});

Deno.test("tokenize without --tokenizer is a usage error (exit 2); --help exits 0", async () => {
  assertEquals((await cli(["tokenize", "hi"])).code, 2);
  const h = await cli(["tokenize", "--help"]);
  assertEquals(h.code, 0);
  assertStringIncludes(h.out, "usage: tokenize");
});

Deno.test("merge-tokenizer writes the official Chinese-Alpaca tokenizer and refuses to overwrite", {
  ...needsTestData(BASE, ADD),
}, async () => {
  const dir = Deno.makeTempDirSync({ prefix: "yangtuo-merge-tok-" });
  try {
    const args = [
      "merge-tokenizer",
      "--base",
      `${testDataRoot()}/${BASE}`,
      "--add",
      `${testDataRoot()}/${ADD}`,
      "--pad",
      "--output-dir",
      dir,
    ];
    const r = await cli(args);
    assertEquals(r.code, 0, r.err);
    assertStringIncludes(r.out, "2d967e855b1213a439df6c8ce2791f869c84b4f3b6cfacf22b86440b8192a2f8");
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(names, ["special_tokens_map.json", "tokenizer.model", "tokenizer_config.json"]);
    const again = await cli(args);
    assertEquals(again.code, 1);
    assertStringIncludes(again.err, "--force");
    assert((await cli([...args, "--force"])).code === 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
