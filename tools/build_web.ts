/**
 * Builds the browser bundles web/dist/{page,host_worker,shard_worker}.js with Deno's own bundler (`deno bundle`,
 * esbuild underneath; offline once Deno has cached it) and copies wasm/build/kernels.wasm beside them.
 * `--check` builds into a temp dir and fails when a committed file differs by a single byte (the bytes depend on
 * the Deno version, whose bundler is esbuild: 2.9.6 here, as everywhere in the project).
 * see: web/src/*.ts (the entries), tools/build_wasm.ts (the same freshness rule for the .wasm)
 */
const root = new URL("..", import.meta.url).pathname;
const check = Deno.args.includes("--check");
const ENTRIES = ["page", "host_worker", "shard_worker"];
const OUT_FILES = [...ENTRIES.map((e) => `${e}.js`), "kernels.wasm"];

const outDir = check ? Deno.makeTempDirSync({ prefix: "yangtuo-web-" }) : `${root}web/dist`;
Deno.mkdirSync(outDir, { recursive: true });
try {
  for (const entry of ENTRIES) {
    // one self-contained file per entry (workers run from blob: URLs, so no shared chunks)
    const out = await new Deno.Command("deno", {
      args: ["bundle", "--quiet", "--platform", "browser", "-o", `${outDir}/${entry}.js`, `web/src/${entry}.ts`],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      console.error(new TextDecoder().decode(out.stderr));
      console.error(`error: deno bundle failed on web/src/${entry}.ts`);
      Deno.exit(1);
    }
  }
  Deno.copyFileSync(`${root}wasm/build/kernels.wasm`, `${outDir}/kernels.wasm`);
  if (check) {
    const stale: string[] = [];
    for (const f of OUT_FILES) {
      const fresh = Deno.readFileSync(`${outDir}/${f}`);
      let committed: Uint8Array | undefined;
      try {
        committed = Deno.readFileSync(`${root}web/dist/${f}`);
      } catch { /* missing counts as stale */ }
      if (!committed || committed.length !== fresh.length || !fresh.every((b, i) => b === committed[i])) stale.push(f);
    }
    if (stale.length > 0) {
      console.error(
        `error: web/dist is stale: ${stale.join(", ")} differ from a fresh build of web/src and src/\n` +
          "hint: run `deno task build:web` and commit web/dist with its sources",
      );
      Deno.exit(1);
    }
    console.log(`web fresh: web/dist (${OUT_FILES.join(", ")}) matches its sources`);
  } else {
    for (const f of OUT_FILES) console.log(`built web/dist/${f} (${Deno.statSync(`${outDir}/${f}`).size} bytes)`);
  }
} finally {
  if (check) Deno.removeSync(outDir, { recursive: true });
}
