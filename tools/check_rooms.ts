/**
 * Enforces ../shared/STYLE.md "Rooms": which src/ room may import which, and that only io/, commands/,
 * chat/repl.ts and the model's worker entry touch Deno.* (pure rooms run in tests with no permissions).
 */

const ALLOWED: Record<string, string[]> = {
  core: [],
  io: ["core"],
  formats: ["core"],
  quant: ["core"],
  sampling: ["core"],
  tokenizer: ["core", "formats"],
  kernels: ["core", "quant"],
  model: ["core", "kernels", "quant", "formats", "tokenizer"],
  chat: ["core", "tokenizer", "sampling"],
  merge: ["core", "formats", "quant", "kernels", "model"],
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

/** STYLE.md "merge → model (config and tensor names only)". */
const NARROW: Record<string, Record<string, RegExp>> = { merge: { model: /^src\/model\/(config|tensor_names)\.ts$/ } };

/**
 * Known breaks of the table, each to be removed by a named step (an entry that no longer matches fails the check,
 * so the list cannot go stale). Nothing else is exempt.
 */
const KNOWN: string[] = [
  // TODO(#11) phase B: loadEngine(path) opens a FileSource; the engine should take a core ByteSource from its caller
  "src/model/engine.ts -> src/io/file_source.ts",
];

/** Files allowed to use Deno.* outside io/ and commands/. */
const DENO_OK = [/^src\/io\//, /^src\/commands\//, /^src\/chat\/repl\.ts$/, /^src\/(model|train)\/.*worker.*\.ts$/];

/** The only src/ modules that may import fixtures/ (the demo builds its model from them). */
const FIXTURE_OK = ["src/commands/demo.ts"];

const root = new URL("..", import.meta.url).pathname;
const problems: string[] = [];
const unusedKnown = new Set(KNOWN);

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
  // imports in comments (JSDoc examples) are not dependencies of the module
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const m of code.matchAll(/(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
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
    const known = KNOWN.indexOf(`${rel} -> ${target}`);
    if (known >= 0) {
      unusedKnown.delete(KNOWN[known]);
      continue;
    }
    if (to !== room && !allowed.includes(to)) problems.push(`${rel}: room "${room}" may not import "${to}" (${spec})`);
    const narrow = NARROW[room]?.[to];
    if (narrow && !narrow.test(target)) problems.push(`${rel}: room "${room}" may import only ${narrow} of "${to}"`);
    // commands never import each other: shared helpers live in src/commands/_*.ts
    if (room === "commands" && to === "commands" && !parts[2].startsWith("_")) {
      problems.push(`${rel}: a command may not import another command (${spec}); move shared code to a _*.ts helper`);
    }
  }
  if (!DENO_OK.some((re) => re.test(rel))) {
    if (/\bDeno\.(?!test\b)[a-zA-Z]/.test(code)) problems.push(`${rel}: uses Deno.* in a pure room`);
  }
}

for (const k of unusedKnown) problems.push(`tools/check_rooms.ts: known break "${k}" no longer occurs: remove it`);
if (problems.length) {
  console.error(`error: ${problems.length} room rule(s) broken:\n  ${problems.join("\n  ")}`);
  Deno.exit(1);
}
console.log("rooms ok");
