/**
 * deno.json tasks as a new user meets them: every task runs with `--no-prompt` and scoped permissions, only the WASM
 * build tasks need the AssemblyScript compiler, and `demo` / `inspect` run on a machine with an empty Deno cache and
 * no reachable npm registry. Oracles: Deno itself (a task that needs a download fails with an unreachable registry)
 * and the deno.json / deno.lock text.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { writeFileAtomic } from "../../src/io/atomic_file.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { randomModelSpec } from "../../fixtures/random_model.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

interface Task {
  description?: string;
  command: string;
}

function tasks(): Record<string, Task> {
  const raw = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks as Record<string, Task | string>;
  return Object.fromEntries(Object.entries(raw).map(([k, t]) => [k, typeof t === "string" ? { command: t } : t]));
}

/** Each `deno run|test|bench …` invocation inside a task command (split on && and ;). */
function denoInvocations(command: string): string[][] {
  return command.split(/&&|;|\|\|/).map((c) => c.trim().split(/\s+/))
    .filter((w) => w[0] === "deno" && ["run", "test", "bench"].includes(w[1]));
}

Deno.test("every deno.json task runs deno with --no-prompt and never with -A", () => {
  for (const [name, t] of Object.entries(tasks())) {
    for (const words of denoInvocations(t.command)) {
      assert(words.includes("--no-prompt"), `task "${name}" can prompt: ${words.join(" ")}`);
      assert(!words.includes("-A") && !words.includes("--allow-all"), `task "${name}" grants everything`);
    }
  }
});

Deno.test("only build:wasm and check:wasm can reach the AssemblyScript compiler", () => {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const imports = Object.values(config.imports ?? {}) as string[];
  assertEquals(imports.filter((s) => /^(npm|jsr):/.test(s)), [], "deno.json imports make every task download them");
  const lock = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.lock`));
  assertEquals(Object.keys(lock.npm ?? {}), [], "npm packages in deno.lock are installed before every task");
  for (const [name, t] of Object.entries(tasks())) {
    const usesCompiler = t.command.includes("tools/build_wasm.ts");
    assertEquals(usesCompiler, name === "build:wasm" || name === "check:wasm", name);
    if (usesCompiler) assertStringIncludes(t.command, "--lock=tools/build_wasm.lock");
  }
  const buildLock = JSON.parse(Deno.readTextFileSync(`${ROOT}tools/build_wasm.lock`));
  assert(buildLock.npm?.["assemblyscript@0.28.20"]?.integrity, "the compiler stays pinned by integrity");
});

Deno.test("task descriptions of quantize and convert list every type they accept", () => {
  const t = tasks();
  for (const type of ["q4_0", "q8_0", "f16", "f32"]) {
    assertStringIncludes(t.quantize.description!.toLowerCase(), type);
    assertStringIncludes(t.convert.description!.toLowerCase(), type);
  }
});

Deno.test({
  name: "deno task demo and inspect run with an empty DENO_DIR and an unreachable npm registry",
  sanitizeResources: false,
  fn: async () => {
    const denoDir = await Deno.makeTempDir({ dir: "/tmp", prefix: "yangtuo-denodir-" });
    const model = await Deno.makeTempFile({ dir: "/tmp", prefix: "yangtuo-task-", suffix: ".gguf" });
    try {
      const config = {
        dim: 32,
        hiddenDim: 64,
        nLayers: 1,
        nHeads: 2,
        nKvHeads: 2,
        headSize: 16,
        vocabSize: 64,
        contextLength: 64,
        normEps: 1e-5,
        ropeTheta: 10000,
      };
      await writeFileAtomic(model, (sink) => writeGguf(sink, randomModelSpec(config, { dtype: "F32", seed: 1 })));
      const env = { DENO_DIR: denoDir, NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/", NO_COLOR: "1" };
      for (const args of [["demo", "-t", "1"], ["inspect", model]]) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["task", "-q", ...args],
          cwd: ROOT,
          env,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assertEquals(out.code, 0, `deno task ${args.join(" ")} offline:\n${text.slice(-2000)}`);
        assert(!/Failed caching npm package|Download/.test(text), text.slice(-2000));
      }
    } finally {
      Deno.removeSync(denoDir, { recursive: true });
      Deno.removeSync(model);
    }
  },
});
