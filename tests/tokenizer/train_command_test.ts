/**
 * train-tokenizer's command line and input side without the oracle: spm_train flag spellings, --help, usage and
 * input errors (exit codes and hints through cli.ts's error boundary), atomic output, the seeded reservoir keeping
 * memory bounded, and the ASCII fast path of normalization (checked against the charsmap path).
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { main } from "../../cli.ts";
import { parseSpmFlags } from "../../src/commands/train_tokenizer.ts";
import { UsageError } from "../../src/core/errors.ts";
import { SentenceSelector } from "../../src/tokenizer/train/corpus.ts";
import { charsmapFor, formatFloat, trainingNormalizer } from "../../src/tokenizer/train/trainer.ts";
import { defaultTrainerOptions, trainerConfig } from "../../src/tokenizer/train/trainer_spec.ts";
import { mulberry32 } from "../_rand.ts";

Deno.test("parseSpmFlags() reads --name=value, --name value, kebab-case, bare and --no booleans", () => {
  const { options } = parseSpmFlags([
    "--input=a.txt,b.txt",
    "--model-prefix",
    "m",
    "--vocab_size",
    "300",
    "--byte_fallback",
    "--nosplit_by_whitespace",
    "-character_coverage=0.98",
    '--user_defined_symbols="a,b",c',
    "--add_dummy_prefix",
    "false",
  ]);
  assertEquals(options.input, ["a.txt", "b.txt"]);
  assertEquals(options.model_prefix, "m");
  assertEquals(options.vocab_size, 300);
  assertEquals(options.byte_fallback, true);
  assertEquals(options.split_by_whitespace, false);
  assertEquals(options.character_coverage, 0.98);
  assertEquals(options.user_defined_symbols, ["a,b", "c"]);
  assertEquals(options.add_dummy_prefix, false);
});

Deno.test("parseSpmFlags() rejects unknown flags, bad numbers and bad booleans with UsageError", () => {
  assertThrows(() => parseSpmFlags(["--vocab_sz=3"]), UsageError, "unknown flag --vocab_sz");
  assertThrows(() => parseSpmFlags(["--vocab_size=3.5"]), UsageError, "expects an integer");
  assertThrows(() => parseSpmFlags(["--byte_fallback=maybe"]), UsageError, "true or false");
  assertThrows(() => parseSpmFlags(["--vocab_size"]), UsageError, "needs a value");
  assertThrows(() => parseSpmFlags(["stray"]), UsageError, "unexpected argument");
});

async function cli(args: string[]): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [], out: string[] = [];
  const e = console.error, l = console.log;
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    return { code: await main(["train-tokenizer", ...args]), err: err.join("\n"), out: out.join("\n") };
  } finally {
    console.error = e;
    console.log = l;
  }
}

Deno.test("train-tokenizer --help lists spm_train's flags with defaults; usage errors exit 2 with a hint", async () => {
  const help = await cli(["--help"]);
  assertEquals(help.code, 0);
  for (const f of ["--input", "--model_prefix", "--vocab_size", "--character_coverage", "--input_sentence_size"]) {
    assert(help.out.includes(f), `help lacks ${f}`);
  }
  const bad = await cli(["--input=x", "--model_prefix=y", "--vocab_size=0"]);
  assertEquals(bad.code, 2);
  assert(bad.err.includes("error:") && bad.err.includes("hint:"), bad.err);
  const missing = await cli(["--model_prefix=y"]);
  assertEquals(missing.code, 2);
  assert(missing.err.includes("--input is required"), missing.err);
});

Deno.test("train-tokenizer reports a missing input or folder and a too-small vocabulary (exit 1, hint)", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "yangtuo-train-cmd-" });
  try {
    const noFile = await cli([`--input=${dir}/nope.txt`, `--model_prefix=${dir}/m`]);
    assertEquals(noFile.code, 1);
    assert(noFile.err.includes("no such file") && noFile.err.includes("hint:"), noFile.err);
    const noDir = await cli([`--input=${dir}/nope.txt`, `--model_prefix=${dir}/sub/m`]);
    assertEquals(noDir.code, 1);
    assert(noDir.err.includes("does not exist"), noDir.err);
    Deno.writeTextFileSync(`${dir}/in.txt`, "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n".repeat(20));
    const small = await cli([
      `--input=${dir}/in.txt`,
      `--model_prefix=${dir}/m`,
      "--vocab_size=20",
      "--model_type=bpe",
    ]);
    assertEquals(small.code, 1);
    assert(small.err.includes("smaller than required_chars") && small.err.includes("hint:"), small.err);
    // nothing half-written: no output and no temp file
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["in.txt"]);
    const ok = await cli([`--input=${dir}/in.txt`, `--model_prefix=${dir}/m`, "--vocab_size=80", "--model_type=bpe"]);
    assertEquals(ok.code, 0, ok.err);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["in.txt", "m.model", "m.vocab"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SentenceSelector keeps at most --input_sentence_size sentences (first N, or a seeded sample)", () => {
  const cfg = { inputSentenceSize: 500, shuffleInputSentence: true, maxSentenceLength: 4192 };
  const a = new SentenceSelector(cfg), b = new SentenceSelector(cfg);
  for (let i = 0; i < 20000; i++) {
    a.add(`line ${i}`, 10);
    b.add(`line ${i}`, 10);
  }
  assertEquals(a.sentences.length, 500);
  assertEquals(a.sentences, b.sentences); // seeded: same input, same sample
  assert(a.sentences.some((s) => Number(s.slice(5)) >= 10000), "the sample reaches the second half");
  const first = new SentenceSelector({ ...cfg, shuffleInputSentence: false });
  let i = 0;
  while (first.add(`line ${i}`, 10)) i++;
  assertEquals(first.sentences.length, 500);
  assertEquals(i, 499); // stops reading once full
});

Deno.test("the printable-ASCII fast path normalizes exactly as the nmt_nfkc charsmap path", () => {
  const cfg = trainerConfig(defaultTrainerOptions());
  const full = trainingNormalizer(cfg, charsmapFor("nmt_nfkc"));
  const fast = trainingNormalizer(cfg, new Uint8Array(0));
  const r = mulberry32(14);
  for (let k = 0; k < 20000; k++) {
    let s = "";
    const n = Math.floor(r() * 12);
    for (let i = 0; i < n; i++) s += String.fromCharCode(0x20 + Math.floor(r() * 95));
    assertEquals(fast.normalize(s), full.normalize(s), JSON.stringify(s));
  }
});

Deno.test("formatFloat() prints floats as C++ ostream does (%g, 6 digits)", () => {
  const cases: [number, string][] = [
    [-0, "-0"],
    [0, "0"],
    [-12, "-12"],
    [-3.2681701183319092, "-3.26817"],
    [
      -1234567,
      "-1.23457e+06",
    ],
    [0.0001, "0.0001"],
    [0.00001, "1e-05"],
    [-10.5, "-10.5"],
    [100000, "100000"],
  ];
  for (const [x, want] of cases) assertEquals(formatFloat(x), want, String(x));
});
