/**
 * `deno task demo` end to end, run exactly as the task runs it (its permission flags from deno.json): every step
 * reports, the merged and quantized files are produced by the real commands, the noise warning and the real-model
 * instructions are printed, and nothing is left behind. Oracle: the files the steps leave with --keep, read back
 * by readGguf (vocabulary = base + generated Chinese pieces; Q4_0 matrices).
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { FileSource } from "../../src/io/file_source.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function taskFlags(name: string): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks;
  const t = tasks[name];
  const command: string = typeof t === "string" ? t : t.command;
  const words = command.split(/\s+/);
  return words.slice(2, words.indexOf("cli.ts"));
}

Deno.test("deno task demo may write only under /tmp and has no network", () => {
  const flags = taskFlags("demo");
  const writes = flags.filter((f) => f.startsWith("--allow-write"));
  assertEquals(writes, ["--allow-write=/tmp"]);
  assert(!flags.some((f) => /^(-A|--allow-all|--allow-net|--allow-run|--allow-ffi)/.test(f)), flags.join(" "));
});

Deno.test("demo --random runs tokenizer → base → LoRA → merge → quantize → chat under the task's permissions", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...taskFlags("demo"), `${ROOT}cli.ts`, "demo", "--random", "--keep", "-t", "1"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, `${stdout}\n${stderr}`);
  for (let i = 1; i <= 6; i++) assertStringIncludes(stdout, `[${i}/6]`);
  assertMatch(stdout, /\[4\/6\] merge: .*\(\d+ ms\)|\[4\/6\] merge: .*\(\d+\.\d+ s\)/);
  assertStringIncludes(stdout, "> 用一句话介绍北京。");
  assertStringIncludes(stdout, "noise");
  assertStringIncludes(stdout, "deno task merge --base-model");
  assertStringIncludes(stdout, "deno task chat -m");
  const dir = /kept: (\/tmp\/yangtuo-demo-\S+)/.exec(stdout)?.[1];
  assert(dir, stdout);
  try {
    const tokLine = /(\d+) pieces \+ (\d+) generated Chinese pieces .* = (\d+)/.exec(stdout);
    assert(tokLine, stdout);
    const [base, added, total] = tokLine.slice(1).map(Number);
    assertEquals(base + added, total);
    assert(added > 0);
    using src = new FileSource(`${dir}/merged/ggml-model-q4_0.gguf`);
    const g = readGguf(src);
    assertEquals((g.metadata.get("tokenizer.ggml.tokens") as string[]).length, total);
    assert((g.metadata.get("tokenizer.ggml.tokens") as string[]).includes("北京"), "the Chinese pieces are in");
    assertEquals(g.tensors.find((t) => t.name === "blk.0.attn_q.weight")?.dtype, "Q4_0");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const SHIPPED = `${ROOT}models/yangtuo-poetry/yangtuo-poetry-q8_0.gguf`;
const hasShipped = (() => {
  try {
    return Deno.statSync(SHIPPED).isFile;
  } catch {
    console.warn(`skip: ${SHIPPED} is absent (run deno task make-model)`);
    return false;
  }
})();

Deno.test({
  name: "demo talks to the shipped model in Chinese under the task's permissions (read scoped)",
  ignore: !hasShipped,
}, async () => {
  const flags = taskFlags("demo");
  const reads = flags.filter((f) => f.startsWith("--allow-read"));
  assertEquals(reads.length, 1);
  assert(reads[0].startsWith("--allow-read=") && reads[0].includes("models/yangtuo-poetry"), reads[0]);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, `${ROOT}cli.ts`, "demo", "-t", "1"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, `${stdout}\n${new TextDecoder().decode(out.stderr)}`);
  for (let i = 1; i <= 4; i++) assertStringIncludes(stdout, `[${i}/4]`);
  assertStringIncludes(stdout, "identical to the shipped yangtuo-poetry-q4_0.gguf");
  assertStringIncludes(stdout, "> 寫一首題為《春夜》的五言絕句。");
  // the reply (the line after the request) is Chinese: CJK ideographs, not English noise
  const reply = stdout.split("> 寫一首題為《春夜》的五言絕句。\n")[1]?.split("\n")[0] ?? "";
  const cjk = [...reply].filter((c) => /[\u3400-\u9fff]/u.test(c)).length;
  assert(cjk >= 5, `reply "${reply}" has ${cjk} CJK characters`);
  assert(!/[a-z]{3}/i.test(reply), `reply "${reply}" has Latin words`);
});

Deno.test("demo removes its scratch folder without --keep", async () => {
  const before = new Set([...Deno.readDirSync("/tmp")].map((e) => e.name).filter((n) => n.startsWith("yangtuo-demo-")));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...taskFlags("demo"), `${ROOT}cli.ts`, "demo", "--random", "-t", "1", "--seed", "2"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const after = [...Deno.readDirSync("/tmp")].map((e) => e.name).filter((n) => n.startsWith("yangtuo-demo-"));
  assertEquals(after.filter((n) => !before.has(n)), []);
});

Deno.test("the demo tokenizer keeps the base's pieces and tokenizes the demo question without byte fallback", async () => {
  const { buildDemoTokenizer, demoBaseModel } = await import("../../fixtures/demo_tokenizer.ts");
  const { readSentencePieceModel, tokenizerFromSentencePiece } = await import("../../src/tokenizer/mod.ts");
  const t = buildDemoTokenizer();
  const model = readSentencePieceModel(t.model);
  assertEquals(model.pieces.slice(0, t.basePieces).map((p) => p.piece), demoBaseModel().pieces.map((p) => p.piece));
  assert(model.pieces.slice(t.basePieces).every((p) => (p.score ?? 0) === 0), "appended pieces have score 0");
  const tok = tokenizerFromSentencePiece(model);
  const pieces = tok.encodeAsPieces("用一句话介绍北京。", { bos: false });
  assert(!pieces.some((p) => /^<0x/.test(p)), pieces.join(" "));
  assert(pieces.includes("北京") && pieces.includes("一句话"), pieces.join(" "));
  assertEquals(tok.decode(tok.encode("Hello 北京 alpaca 羊驼!")), "Hello 北京 alpaca 羊驼!");
});

Deno.test("demo replies never show U+FFFD, whatever bytes the random weights pick (seeds 1-3)", async () => {
  for (const seed of ["1", "2", "3"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...taskFlags("demo"), `${ROOT}cli.ts`, "demo", "-t", "1", "--seed", seed],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assert(!stdout.includes("\uFFFD"), `seed ${seed}:\n${stdout}`);
  }
});
