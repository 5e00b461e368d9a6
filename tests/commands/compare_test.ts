/**
 * `compare` end to end on two generated random GGUF models (different seeds), run with the task's permissions, and
 * its pure parts. Oracle: the same engine + sampler driven directly (generate()), which must give the same replies.
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";
import { writeFileAtomic } from "../../src/io/atomic_file.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { randomModelSpec } from "../../fixtures/random_model.ts";
import type { LlamaConfig } from "../../src/model/config.ts";
import { loadEngine } from "../../src/model/engine.ts";
import { generate } from "../../src/model/generate.ts";
import { Sampler } from "../../src/sampling/sampler.ts";
import { alpacaPrompt } from "../../src/train/data.ts";
import { compareReport, markdownCell, MAX_PROMPTS, parsePrompts } from "../../src/commands/compare.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function taskFlags(name: string): string[] {
  const t = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks[name];
  const words = (typeof t === "string" ? t : t.command).split(/\s+/);
  return words.slice(2, words.indexOf("cli.ts"));
}

const CONFIG: LlamaConfig = {
  dim: 64,
  hiddenDim: 128,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 4,
  headSize: 16,
  vocabSize: 512,
  contextLength: 512,
  normEps: 1e-5,
  ropeTheta: 10000,
};

async function tinyModel(seed: number): Promise<string> {
  const path = await Deno.makeTempFile({ dir: "/tmp", prefix: "yangtuo-compare-", suffix: ".gguf" });
  await writeFileAtomic(path, (sink) => writeGguf(sink, randomModelSpec(CONFIG, { dtype: "Q8_0", seed })));
  return path;
}

Deno.test("parsePrompts() skips blank and # lines and bounds the count", () => {
  assertEquals(parsePrompts("a\n\n# note\r\n b \n"), ["a", "b"]);
  assertThrows(() => parsePrompts("x\n".repeat(MAX_PROMPTS + 1)), RangeError, "limit");
});

Deno.test("markdownCell() keeps a reply on one table line", () => {
  assertEquals(markdownCell("a|b\nc"), "a\\|b<br>c");
  assertEquals(markdownCell("  "), "(empty)");
});

Deno.test("compareReport() writes prompt | A | B rows and a timing table", () => {
  const col = (model: string, replies: string[]) => ({
    model,
    replies,
    loadMs: 10,
    promptTokens: 20,
    promptMs: 100,
    genTokens: 5,
    genMs: 50,
  });
  const r = compareReport(["p1", "p2"], [col("/x/a.gguf", ["a1", "a2"]), col("/y/b.gguf", ["b1", "b|2"])], "s");
  const lines = r.split("\n");
  assertEquals(lines[0], "| prompt | A: `a.gguf` | B: `b.gguf` |");
  assertEquals(lines[2], "| p1 | a1 | b1 |");
  assertEquals(lines[3], "| p2 | a2 | b\\|2 |");
  assertStringIncludes(r, "| A: `a.gguf` | 0.01 s | 20 | 200.0 | 5 | 100.0 |");
});

Deno.test("compare runs the same prompts through two models with the task's permissions", async () => {
  const a = await tinyModel(1), b = await tinyModel(2);
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "yangtuo-compare-" });
  try {
    await Deno.writeTextFile(`${dir}/prompts.txt`, "Hello\n# skipped\n你好\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...taskFlags("compare"),
        `${ROOT}cli.ts`,
        "compare",
        "-m",
        a,
        "-m",
        b,
        "-f",
        `${dir}/prompts.txt`,
        "-o",
        `${dir}/report.md`,
        "-n",
        "8",
        "--temp",
        "0",
        "-t",
        "1",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const report = await Deno.readTextFile(`${dir}/report.md`);
    const rows = report.split("\n").filter((l) => l.startsWith("| Hello") || l.startsWith("| 你好"));
    assertEquals(rows.length, 2, report);
    // oracle: the same greedy run through the library gives model A's first reply
    const engine = await loadEngine(a, { threads: 1 });
    try {
      const ids = engine.tokenizer.encode(alpacaPrompt({ instruction: "Hello", input: "", output: "" }), { bos: true });
      const r = await generate(engine, new Sampler({ temperature: 0, repeatPenalty: 1, seed: 1 }), ids, {
        maxTokens: 8,
      });
      const expected = markdownCell(engine.tokenizer.decode(r.ids).trim());
      assertEquals(rows[0].split(" | ")[1], expected);
    } finally {
      engine.close();
    }
    assertStringIncludes(report, "generation tok/s");
    // usage errors exit 2
    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...taskFlags("compare"), `${ROOT}cli.ts`, "compare", "-m", a, "-f", `${dir}/prompts.txt`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(bad.code, 2);
    assert(new TextDecoder().decode(bad.stderr).includes("two or more models"));
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(a);
    await Deno.remove(b);
  }
});
