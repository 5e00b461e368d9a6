/**
 * `deno task serve` as a user runs it: the task's own scoped permissions (deno.json), --help, usage errors,
 * the loopback-only rule (non-loopback needs --api-key, and the task cannot open it anyway), a real listen on
 * 127.0.0.1 that answers /health and the page, and Ctrl+C (SIGINT) ending it with exit code 0.
 * Oracle: the contract in the issue and cli.ts's error boundary (exit 1 for errors, 2 for usage).
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { writeServeModel } from "./_server.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function task(args: string[]) {
  return new Deno.Command("deno", {
    args: ["task", "-q", "serve", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  });
}

async function runTask(args: string[]) {
  const out = await task(args).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("serve --help prints the flags and exits 0; a bad flag is a usage error (exit 2)", async () => {
  const help = await runTask(["--help"]);
  assertEquals(help.code, 0);
  assertStringIncludes(help.stdout, "--parallel");
  assertStringIncludes(help.stdout, "--api-key");
  const bad = await runTask(["--no-such-flag"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "error:");
  const none = await runTask([]);
  assertEquals(none.code, 2);
});

Deno.test("serve refuses a non-loopback address without --api-key, and the task cannot listen there at all", async () => {
  const path = await writeServeModel();
  try {
    const noKey = await runTask(["-m", path, "--host", "0.0.0.0", "--port", String(freePort())]);
    assertEquals(noKey.code, 1);
    assertStringIncludes(noKey.stderr, 'error: Cannot listen on "0.0.0.0" without an API key');
    assertStringIncludes(noKey.stderr, "hint:");
    const withKey = await runTask(["-m", path, "--host", "0.0.0.0", "--port", String(freePort()), "--api-key", "k"]);
    assertEquals(withKey.code, 1);
    assertStringIncludes(withKey.stderr, "no network permission");
    assert(!withKey.stderr.includes("    at "), "no stack trace");
    const missing = await runTask(["-m", "/tmp/does-not-exist.gguf"]);
    assertEquals(missing.code, 1);
    assertStringIncludes(missing.stderr, "error:");
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("deno task serve listens on 127.0.0.1, serves /health and the page, and stops on SIGINT", async () => {
  const path = await writeServeModel();
  const port = freePort();
  const child = task(["-m", path, "--port", String(port), "-np", "2", "-t", "1"]).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  try {
    while (!log.includes("listening on")) {
      const { value, done } = await stderr.read();
      if (done) throw new Error(`serve exited early: ${log}`);
      log += value;
    }
    assertStringIncludes(log, `listening on http://127.0.0.1:${port}`);
    const health = await (await fetch(`http://127.0.0.1:${port}/health`)).json();
    assertEquals(health, { status: "ok", slots_idle: 2, slots_processing: 0, queued: 0 });
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assertEquals(page.headers.get("content-type"), "text/html; charset=utf-8");
    assertStringIncludes(await page.text(), "/v1/chat/completions");
    const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: "你好", max_tokens: 3 }),
    });
    assertEquals(r.status, 200);
    assertEquals((await r.json()).usage.completion_tokens <= 3, true);
    child.kill("SIGINT");
    const status = await child.status;
    assertEquals(status.code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await stderr.cancel().catch(() => {});
    await child.stdout.cancel().catch(() => {});
    Deno.removeSync(path);
  }
});
