/**
 * The shared option table for sampling/context flags (generate, chat, perplexity): same spellings, negative values
 * parsed as values and range-checked, default context limited by the model's context_length (warning beyond it),
 * threads capped at the cores and at the model's KV heads. Oracle: the ranges stated in issue #10 item 7 and
 * llama.cpp's flag names; end to end on babyllama105 (trained on 256 positions, 4 KV heads).
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { UsageError } from "../../src/core/errors.ts";
import { parseFlags } from "../../src/commands/_args.ts";
import {
  CONTEXT_FLAGS,
  parseSamplingFlags,
  resolveContextSize,
  resolveThreads,
  SAMPLING_DEFAULTS,
  SAMPLING_FLAGS,
  withNegativeValues,
} from "../../src/commands/_sampling_flags.ts";
import { parseChatArgs } from "../../src/commands/chat.ts";
import { resolveRunSettings, run as generateRun } from "../../src/commands/generate.ts";
import { UserError } from "../../src/core/errors.ts";
import { run as perplexityRun } from "../../src/commands/perplexity.ts";

const FLAGS = { ...SAMPLING_FLAGS, ...CONTEXT_FLAGS };
const D = { ...SAMPLING_DEFAULTS, contextSize: 512 };
const parse = (...args: string[]) => parseSamplingFlags(parseFlags(withNegativeValues(args, FLAGS), FLAGS).values, D);

Deno.test("parseSamplingFlags() reads negative values as values and checks every range", () => {
  for (
    const [args, flag] of [
      [["-c", "-5"], "--ctx-size"],
      [["-c", "8"], "--ctx-size"],
      [["--temp", "-1"], "--temp"],
      [["--top-p", "2"], "--top-p"],
      [["--top-p", "0"], "--top-p"],
      [["--top-k", "-1"], "--top-k"],
      [["-n", "-2"], "--n-predict"],
      [["--repeat-penalty", "0"], "--repeat-penalty"],
      [["-t", "0"], "--threads"],
      [["--seed", "1.5"], "--seed"],
      [["--temp", "abc"], "--temp"],
    ] as const
  ) {
    const e = assertThrows(() => parse(...args), UsageError);
    assertStringIncludes(e.message, flag, args.join(" "));
    assert(!e.message.includes("\n"), `one line: ${e.message}`);
  }
  assertEquals(parse("-n", "-1").maxNewTokens, -1);
  assertEquals(parse("-n=-1").maxNewTokens, -1);
  assertEquals(parse("--n_predict", "-1").maxNewTokens, -1);
  assertEquals(parse("-s", "7").seed, 7);
  assertEquals(parse("--top_k", "3", "--top_p", "0.5", "--ctx_size", "64").topK, 3);
  assertEquals(parse("--temp", "0").temperature, 0);
  assertEquals(parse("--top-p", "1").topP, 1);
  assertEquals(parse().contextSize, undefined);
});

Deno.test("generate, chat and perplexity parse the shared flags the same way", async () => {
  // each refuses the same bad values with a UsageError (exit 2) before opening any model
  for (const bad of [["-c", "-5"], ["--top-p", "2"]]) {
    let threw = false;
    try {
      await generateRun(["-m", "/nonexistent.gguf", ...bad]);
    } catch (e) {
      threw = e instanceof UsageError;
    }
    assert(threw, `generate ${bad.join(" ")}`);
    assertThrows(() => parseChatArgs(["-m", "x", ...bad]), UsageError);
  }
  assertThrows(() => parseChatArgs(["-m", "x", "--temp", "-1"]), UsageError, "--temp");
  assertEquals(parseChatArgs(["-m", "x", "-n=-1"])!.maxNewTokens, -1);
  let threw = false;
  try {
    await perplexityRun(["-m", "/nonexistent.gguf", "-f", "/nonexistent.txt", "-c", "-5"]);
  } catch (e) {
    threw = e instanceof UsageError;
  }
  assert(threw, "perplexity -c -5");
});

Deno.test("resolveContextSize() defaults to min(default, context_length) and warns beyond it", () => {
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  assertEquals(resolveContextSize({ contextSize: undefined, defaultContextSize: 2048 }, 256, warn), 256);
  assertEquals(resolveContextSize({ contextSize: undefined, defaultContextSize: 512 }, 4096, warn), 512);
  assertEquals(warnings, []);
  assertEquals(resolveContextSize({ contextSize: 1024, defaultContextSize: 512 }, 256, warn), 1024);
  assertEquals(warnings.length, 1);
  assertStringIncludes(warnings[0], "256");
});

Deno.test("resolveThreads() caps at the cores and at what the model can use, and says so", () => {
  const notes: string[] = [];
  const note = (m: string) => notes.push(m);
  assertEquals(resolveThreads(999, 2, 32, note), 2);
  assertStringIncludes(notes.pop()!, "2 core(s)");
  assertEquals(resolveThreads(8, 64, 4, note), 4);
  assertStringIncludes(notes.pop()!, "4 shard(s)");
  assertEquals(resolveThreads(undefined, 16, 4, note), 4);
  assertEquals(resolveThreads(2, 16, 4, note), 2);
  assertEquals(notes, []);
});

const MODEL = "models/babyllama105/model5000.bin", TOK = "models/babyllama105/tok105.model";
const CLI = new URL("../../cli.ts", import.meta.url).pathname;

Deno.test(
  "generate on babyllama105: default context is its 256 positions, -c beyond warns, -t 999 is capped",
  needsTestData(MODEL, TOK),
  async () => {
    const root = testDataRoot();
    const run = async (...extra: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", "--allow-read", "--allow-env", "--allow-sys=cpus,systemMemoryInfo", CLI]
          .concat(["generate", "-m", `${root}/${MODEL}`, "--tokenizer", `${root}/${TOK}`, "-p", "The", "-n", "2"])
          .concat(extra),
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const d = await run();
    assertEquals(d.code, 0, d.stderr);
    assertStringIncludes(d.stderr, "context 256,");
    assert(!d.stderr.includes("warning"), d.stderr);
    const big = await run("-c", "512");
    assertEquals(big.code, 0, big.stderr);
    assertStringIncludes(big.stderr, "warning: -c 512 exceeds the 256 positions");
    const many = await run("-t", "999");
    assertEquals(many.code, 0, many.stderr);
    assertStringIncludes(many.stderr, "not 999");
    const threads = Number(/(\d+) thread\(s\), (\d+) shard/.exec(many.stderr)![1]);
    assert(threads <= Math.min(4, navigator.hardwareConcurrency), many.stderr);
  },
);

Deno.test("resolveRunSettings() refuses a -c whose KV cache exceeds memory, advising a smaller -c (not threads)", () => {
  const config = {
    dim: 4096,
    hiddenDim: 11008,
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 32,
    headSize: 128,
    vocabSize: 49953,
    contextLength: 2048,
    normEps: 1e-6,
    ropeTheta: 10000,
  };
  const settings = { contextSize: 1 << 20, defaultContextSize: 512, threads: 999 };
  const e = assertThrows(() => resolveRunSettings(config, settings, () => {}, 2, 16 * 2 ** 30), UserError) as UserError;
  assertStringIncludes(e.message, "KV cache");
  assertEquals(e.hint, "use a smaller -c");
  assert(!/thread/.test(e.message + e.hint), e.message);
  const notes: string[] = [];
  const ok = resolveRunSettings(config, { ...settings, contextSize: 4096 }, (m) => notes.push(m), 2, 16 * 2 ** 30);
  assertEquals(ok, { contextSize: 4096, threads: 2 });
  assertEquals(notes.length, 2); // beyond context_length, and the thread cap
});
