/**
 * Paths are checked up front by each command and named in one `error:` line, with a hint in the command's own words:
 * no raw OS error ("Is a directory (os error 21)", "Not a directory"), no internal `.yangtuo-partial-…` name, no
 * library hint naming another command's flag, and the scoped-permission hint only for Deno's NotCapable.
 * Oracle: the list of what a new user hit (#10 item 9).
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { reportError } from "../../cli.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const tmp = Deno.makeTempDirSync({ prefix: "yangtuo-paths-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
const aFile = `${tmp}/a-file.txt`;
Deno.writeTextFileSync(aFile, "hello");

/** Runs `deno task NAME args` (the task's own permissions); returns exit code and stderr. */
async function task(name: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", name, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

function assertFriendly(r: { code: number; stderr: string }, ...expected: string[]) {
  assertEquals(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert(lines[0].startsWith("error: "), r.stderr);
  assert(lines.length <= 2 && (lines.length === 1 || lines[1].startsWith("hint: ")), r.stderr);
  assert(!/os error|\bat .*\.ts:\d+|yangtuo-partial/.test(r.stderr), r.stderr);
  for (const e of expected) assertStringIncludes(r.stderr, e);
}

Deno.test("chat -m DIR, perplexity -f DIR and quantize with a missing IN name the path", async () => {
  assertFriendly(await task("chat", "-m", tmp), `"${tmp}"`, "it is a folder");
  assertFriendly(await task("perplexity", "-m", aFile, "-f", tmp), `"${tmp}"`, "-f");
  assertFriendly(await task("quantize", `${tmp}/missing.gguf`, `${tmp}/out.gguf`, "q4_0"), "missing.gguf", "IN.gguf");
});

Deno.test("convert with a missing input gets convert's hint, not merge's --base-model", async () => {
  const r = await task("convert", `${tmp}/missing-model`, `${tmp}/out.gguf`);
  assertFriendly(r, "missing-model");
  assert(!r.stderr.includes("--base-model"), r.stderr);
});

Deno.test("merge --output-dir FILE is refused before any work, naming the file", async () => {
  const r = await task("merge", "--base-model", tmp, "--lora-model", tmp, "--output-dir", aFile);
  assertFriendly(r, aFile, "not a folder");
});

Deno.test({
  name: "prepareOutputDir() names --output-dir, not the staging folder, when the OS refuses to write there",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    // sysfs refuses mkdir even to root: the closest thing to a read-only mount a test can rely on. Deno lets only
    // --allow-all touch /sys, so the call runs in `deno eval` (all permissions), printing what it threw
    const mod = new URL("../../src/commands/_model_fs.ts", import.meta.url).href;
    for (const dir of ["/sys/kernel", "/sys/kernel/yangtuo-out"]) {
      const code = `import { prepareOutputDir } from "${mod}";
try { prepareOutputDir(${JSON.stringify(dir)}, true); console.log("{}"); }
catch (e) { console.log(JSON.stringify({ name: e.constructor.name, message: e.message, hint: e.hint })); }`;
      const out = await new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped" }).output();
      const e = JSON.parse(new TextDecoder().decode(out.stdout));
      assertEquals(e.name, "UserError", JSON.stringify(e));
      assertStringIncludes(e.message, `"${dir}"`);
      assert(!e.message.includes(".yangtuo-partial"), e.message);
      assertStringIncludes(e.hint, "--output-dir");
    }
  },
});

Deno.test("reportError() gives the scoped-permissions hint for NotCapable only, not for an OS EACCES", () => {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (s: string) => lines.push(s);
  try {
    assertEquals(reportError(new Deno.errors.PermissionDenied("Permission denied (os error 13)")), 1);
    assertEquals(reportError(new Deno.errors.NotCapable("Requires write access")), 1);
  } finally {
    console.error = orig;
  }
  assert(!lines[0].includes("scoped permissions"), lines[0]);
  assertStringIncludes(lines[1], "scoped permissions");
});
