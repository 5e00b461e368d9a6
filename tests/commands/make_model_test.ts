/**
 * `make-model`: flags and errors (fast), the corpus reader on the real chinese-poetry@2.0.1 package when the Deno
 * npm cache has it (never fetched here: skipped with a message otherwise), and — opt-in with YANGTUO_MAKE_MODEL=1,
 * ~4 min on a loaded 2-core host — the whole `--quick` recipe run as the task runs it, checking that every stage's
 * held-out loss drops and that the shipped files match their recorded sha256. Oracles: the package's own record
 * counts and fields; the losses the training commands wrote in their loss.csv files.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { findPoetryPackage, readTangPoems } from "../../src/commands/make_model.ts";
import { checkForm, isHeldOut, requestedForm } from "../../src/train/poetry.ts";
import { hasTestData, testDataRoot } from "../_fixtures.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function taskFlags(name: string): string[] {
  const t = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks[name];
  const words = (typeof t === "string" ? t : t.command).split(/\s+/);
  return words.slice(2, words.indexOf("cli.ts"));
}

async function cli(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...taskFlags("make-model"), `${ROOT}cli.ts`, "make-model", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env,
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("make-model --help lists the steps; bad flags are usage errors; a used work dir needs --resume", async () => {
  const h = await cli(["--help"]);
  assertEquals(h.code, 0);
  for (const s of ["corpus", "tokenizer", "stage 1", "stage 2", "sft", "merge", "--quick", "--resume"]) {
    assertStringIncludes(h.stdout, s);
  }
  const bad = await cli(["--bogus"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "error:");
  const work = await Deno.makeTempDir({ dir: "/tmp", prefix: "yangtuo-mm-test-" });
  try {
    await Deno.writeTextFile(`${work}/state.json`, JSON.stringify({ recipe: "quick", done: {}, elapsedS: 0 }));
    const r = await cli(["--quick", "--work-dir", work]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "--resume");
    const r2 = await cli(["--work-dir", work, "--resume"]);
    assertEquals(r2.code, 1);
    assertStringIncludes(r2.stderr, "quick run");
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

const pkg = await findPoetryPackage(false);
if (!pkg) console.warn("skip: npm:chinese-poetry@2.0.1 is not in the Deno npm cache (the tests never fetch it)");

Deno.test({ name: "readTangPoems() cleans 全唐詩 from the cached package", ignore: !pkg }, async () => {
  const { raw, poems } = await readTangPoems(pkg!);
  // the package ships 57,607 Tang records (poet.tang.0 … 57000.json); most survive cleaning
  assertEquals(raw, 57607);
  assert(poems.length > 40000 && poems.length < raw, `${poems.length} clean poems`);
  const held = poems.filter((p) => isHeldOut(p, 20)).length;
  assert(held > 0.015 * poems.length && held < 0.025 * poems.length, `${held} held out`);
  const jingyesi = poems.find((p) => p.title === "靜夜思" && p.author === "李白");
  assert(jingyesi, "李白 靜夜思 is in the corpus");
  assertEquals(checkForm(jingyesi.text, requestedForm("五言絕句")!).follows, true);
  assertEquals(new Set(poems.map((p) => p.text)).size, poems.length);
});

const optIn = Deno.env.get("YANGTUO_MAKE_MODEL") === "1";
Deno.test({
  name: "make-model --quick: every stage's loss drops and the shipped files match PROVENANCE (YANGTUO_MAKE_MODEL=1)",
  ignore: !optIn || !pkg || !hasTestData("models/babyllama105/model5000.bin"),
}, async () => {
  const work = await Deno.makeTempDir({ dir: "/tmp", prefix: "yangtuo-mm-quick-" });
  try {
    const r = await cli(["--quick", "--work-dir", work], { YANGTUO_TESTDATA: testDataRoot() });
    assertEquals(r.code, 0, r.stderr.slice(-3000));
    for (let i = 1; i <= 10; i++) assertStringIncludes(r.stderr, `[${i}/10]`);
    const m = JSON.parse(await Deno.readTextFile(`${work}/out/metrics.json`));
    const s = m.state;
    assert(s.stage1.evalLossAfter < s.stage1.evalLossBefore, `stage 1 ${JSON.stringify(s.stage1)}`);
    assert(s.stage2.evalLossAfter < s.stage2.evalLossBefore, `stage 2 ${JSON.stringify(s.stage2)}`);
    assert(s.stage2.heldOutPerplexity < s.stage1.heldOutPerplexity, "fixed-split perplexity drops in stage 2");
    assert(s.sft.evalLossAfter < s.sft.evalLossStage2Model, `sft ${JSON.stringify(s.sft)}`);
    const prov = await Deno.readTextFile(`${work}/out/PROVENANCE.md`);
    for (const [file, sum] of Object.entries(m.sha256 as Record<string, string>)) {
      const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(`${work}/out/${file}`));
      const hex = [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
      assertEquals(hex, sum, file);
      assertStringIncludes(prov, sum);
    }
    assertEquals(s.evaluate.base.follows, 0, "the English base never writes a regular poem");
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
