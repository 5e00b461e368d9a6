/**
 * Enforces ../shared/STYLE.md "Rooms": which src/ room may import which, and that only io/, commands/,
 * chat/repl.ts and the model's worker entry touch Deno.* (pure rooms run in tests with no permissions).
 */

const ALLOWED: Record<string, string[]> = {
  core: [],
  io: ["core"],
  formats: ["core"],
  sampling: ["core"],
  quant: ["core"],
  kernels: ["core", "quant"],
  tokenizer: ["core", "formats"],
  model: ["core", "kernels", "quant", "formats", "io", "tokenizer"],
  merge: ["core", "formats", "quant", "model", "io", "tokenizer", "kernels"],
  chat: ["core", "model", "tokenizer", "sampling", "io"],
  train: ["core", "model", "kernels", "quant", "formats", "tokenizer", "sampling"],
  serve: ["core", "chat", "model", "tokenizer", "sampling"],
  commands: [
    "core",
    "io",
    "formats",
    "tokenizer",
    "quant",
    "kernels",
    "model",
    "sampling",
    "merge",
    "chat",
    "train",
    "serve",
  ],
};

/** Files allowed to use Deno.* outside io/ and commands/. */
const DENO_OK = [/^src\/io\//, /^src\/commands\//, /^src\/chat\/repl\.ts$/, /^src\/(model|train)\/.*worker.*\.ts$/];

/** The only src/ modules that may import fixtures/ (the demo builds its model from them). */
const FIXTURE_OK = ["src/commands/demo.ts"];

const root = new URL("..", import.meta.url).pathname;
const problems: string[] = [];

function* walk(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* walk(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

for (const abs of walk(`${root}src`)) {
  const rel = abs.slice(root.length);
  const room = rel.split("/")[1];
  const allowed = ALLOWED[room];
  if (!allowed) {
    problems.push(`${rel}: room "${room}" is not in tools/check_rooms.ts`);
    continue;
  }
  const text = Deno.readTextFileSync(abs);
  for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith(".")) continue;
    const target = new URL(spec, `file://${abs}`).pathname.slice(root.length);
    if (target.startsWith("wasm/")) {
      if (room !== "kernels") problems.push(`${rel}: only src/kernels may import the .wasm (${spec})`);
      continue;
    }
    if (target.startsWith("fixtures/")) {
      // generators of random/tiny models: tests, benches and the demo only, never production code
      if (!FIXTURE_OK.includes(rel)) {
        problems.push(`${rel}: only tests, bench and the demo may import fixtures/ (${spec})`);
      }
      continue;
    }
    const parts = target.split("/");
    if (parts[0] !== "src") {
      problems.push(`${rel}: imports outside src/ (${spec})`);
      continue;
    }
    const to = parts[1];
    if (to !== room && !allowed.includes(to)) problems.push(`${rel}: room "${room}" may not import "${to}" (${spec})`);
  }
  if (!DENO_OK.some((re) => re.test(rel))) {
    const code = text.replace(/\/\/.*$/gm, "").replace(/\/\*[\s\S]*?\*\//g, "");
    if (/\bDeno\.(?!test\b)[a-zA-Z]/.test(code)) problems.push(`${rel}: uses Deno.* in a pure room`);
  }
}

if (problems.length) {
  console.error(`error: ${problems.length} room rule(s) broken:\n  ${problems.join("\n  ")}`);
  Deno.exit(1);
}
console.log("rooms ok");
