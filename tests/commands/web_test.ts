/**
 * `web`: serveWeb() answers static files of web/ with the cross-origin isolation headers, serves the -m model at
 * /model.gguf, and refuses everything else (other methods, dotfiles, paths out of web/, unknown types); the CLI
 * runs under deno.json's exact permissions (read-only, loopback) and prints error/hint for bad flags and files.
 * Oracle: the files on disk and the COOP/COEP spec values.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { serveWeb, WEB_HEADERS } from "../../src/commands/web.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const WEB = new URL("../../web/", import.meta.url).pathname;
/** deno.json's `web` task permissions. */
const TASK_PERMS = ["--no-prompt", "--allow-read", "--allow-net=127.0.0.1", "--allow-env=YANGTUO_DEBUG"];

function cmd(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...TASK_PERMS, CLI, "web", ...args],
    stdout: "piped",
    stderr: "piped",
  });
}

async function cli(...args: string[]) {
  const out = await cmd(args).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("serveWeb() serves the page and its bundles with COOP/COEP and the right types", async () => {
  const server = serveWeb({ port: 0 });
  try {
    const index = await fetch(server.url);
    assertEquals(index.status, 200);
    assertEquals(index.headers.get("cross-origin-opener-policy"), "same-origin");
    assertEquals(index.headers.get("cross-origin-embedder-policy"), "require-corp");
    assertEquals(index.headers.get("content-type"), "text/html; charset=utf-8");
    for (const [k, v] of Object.entries(WEB_HEADERS)) assertEquals(index.headers.get(k), v, k);
    assertEquals(await index.text(), Deno.readTextFileSync(`${WEB}index.html`));
    for (const [path, type] of [["dist/page.js", "text/javascript"], ["dist/kernels.wasm", "application/wasm"]]) {
      const r = await fetch(server.url + path);
      assertEquals(r.status, 200, path);
      assertStringIncludes(r.headers.get("content-type")!, type);
      assertEquals(new Uint8Array(await r.arrayBuffer()), Deno.readFileSync(WEB + path));
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveWeb() refuses other methods, dotfiles, escapes from web/ and unknown file types", async () => {
  const seen: string[] = [];
  const server = serveWeb({ port: 0, onRequest: (m, p) => seen.push(`${m} ${p}`) });
  try {
    const post = await fetch(server.url + "index.html", { method: "POST", body: "x" });
    assertEquals(post.status, 405);
    await post.body?.cancel();
    for (
      const p of [
        "%2e%2e/deno.json",
        "..%2fdeno.json",
        "dist/%2e%2e/%2e%2e/deno.json",
        ".git/HEAD",
        "src/page.ts",
        "nope.html",
        "dist",
      ]
    ) {
      const r = await fetch(server.url + p);
      assertEquals(r.status, 404, p);
      await r.body?.cancel();
    }
    const noModel = await fetch(server.url + "model.gguf");
    assertEquals(noModel.status, 404);
    await noModel.body?.cancel();
    assert(seen.length >= 9);
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveWeb() serves the -m model at /model.gguf (GET and HEAD)", async () => {
  const model = Deno.makeTempFileSync({ dir: "/tmp", prefix: "yangtuo-web-", suffix: ".gguf" });
  const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => i & 255);
  bytes.set([0x47, 0x47, 0x55, 0x46]);
  Deno.writeFileSync(model, bytes);
  const server = serveWeb({ port: 0, model });
  try {
    const head = await fetch(server.url + "model.gguf", { method: "HEAD" });
    assertEquals(head.status, 200);
    assertEquals(head.headers.get("content-length"), "70000");
    assertEquals(head.headers.get("cross-origin-embedder-policy"), "require-corp");
    const get = await fetch(server.url + "model.gguf");
    assertEquals(new Uint8Array(await get.arrayBuffer()), bytes);
  } finally {
    await server.shutdown();
    Deno.removeSync(model);
  }
});

Deno.test("web --help prints the usage; bad flags exit 2; a missing or non-GGUF -m exits 1 with a hint", async () => {
  const help = await cli("--help");
  assertEquals(help.code, 0);
  assertStringIncludes(help.stdout, "/model.gguf");
  assertEquals((await cli("--port", "x")).code, 2);
  assertEquals((await cli("--port", "70000")).code, 2);
  assertEquals((await cli("--frobnicate")).code, 2);
  const missing = await cli("-m", "/tmp/yangtuo-web-no-such-model.gguf");
  assertEquals(missing.code, 1);
  assertMatch(missing.stderr, /error: Cannot serve model .*file not found\nhint: /);
  const notGguf = await cli("-m", CLI);
  assertEquals(notGguf.code, 1);
  assertStringIncludes(notGguf.stderr, "not a GGUF file");
});

Deno.test("web (with deno.json's permissions) serves on loopback and stops cleanly on SIGINT", async () => {
  const child = cmd(["--port", "0"]).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/http:\/\/127\.0\.0\.1:\d+\//.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(text)?.[0];
  assert(url, `no URL in: ${text}`);
  const r = await fetch(url);
  assertEquals(r.status, 200);
  assertEquals(r.headers.get("cross-origin-opener-policy"), "same-origin");
  await r.body?.cancel();
  // no -m: the shipped default model is one click away at /model.gguf, byte for byte the file in models/
  const shipped = Deno.statSync(new URL("../../models/yangtuo-poetry/yangtuo-poetry-q8_0.gguf", import.meta.url));
  const m = await fetch(url + "model.gguf", { method: "HEAD" });
  assertEquals([m.status, Number(m.headers.get("content-length"))], [200, shipped.size]);
  await m.body?.cancel();
  child.kill("SIGINT");
  const status = await child.status;
  await reader.cancel();
  await child.stderr.cancel();
  assertEquals(status.code, 0);
});
