/**
 * runRepl() in process, with scripted stdin, captured stdout and a fake Ctrl+C source, over the scripted engine.
 * Oracle: the llama.cpp -ins conventions written out by hand (turn text, "\" continuation joins lines with "\n")
 * and the fake model's known answers. The real terminal path is tested in tests/commands/chat_test.ts.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { LineReader, type ReplWriter, runRepl, terminalSafe } from "../../src/chat/repl.ts";
import { ChatSession } from "../../src/chat/session.ts";
import { alpacaScript, ByteStreamingDecoder, FakeEngine } from "./_fake_engine.ts";

class Capture implements ReplWriter {
  text = "";
  #dec = new TextDecoder();
  writeSync(bytes: Uint8Array): number {
    this.text += this.#dec.decode(bytes, { stream: true });
    return bytes.length;
  }
}

class FakeInterrupts {
  handlers = new Set<() => void>();
  add(h: () => void) {
    this.handlers.add(h);
  }
  remove(h: () => void) {
    this.handlers.delete(h);
  }
  fire() {
    for (const h of this.handlers) h();
  }
}

function streamOf(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
      c.close();
    },
  });
}

function newSession(engine: FakeEngine, maxNewTokens = 256) {
  return new ChatSession(engine, {
    createDecoder: () => new ByteStreamingDecoder(),
    sampler: { temperature: 0, repeatPenalty: 1 },
    maxNewTokens,
  });
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

Deno.test("LineReader splits lines across chunks, handles CRLF, multibyte splits and a last line without newline", async () => {
  const bytes = new TextEncoder().encode("一\r\n二三\n\nlast");
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const b of bytes) c.enqueue(new Uint8Array([b]));
      c.close();
    },
  });
  const r = new LineReader(stream);
  const got: (string | null)[] = [];
  for (let i = 0; i < 5; i++) got.push(await r.readLine());
  assertEquals(got, ["一", "二三", "", "last", null]);
});

Deno.test("runRepl() with piped input answers every line and prints only the replies", async () => {
  const engine = new FakeEngine(2048, alpacaScript((q) => `<${q.trimEnd()}>`));
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runRepl(newSession(engine), {
    interactive: false,
    stdin: streamOf("one\n\ntwo \\\nlines\n/reset\n/help\n三"),
    stdout,
    stderr,
  });
  assertEquals(code, 0);
  assertEquals(stdout.text, "<one>\n<two \nlines>\n<三>\n");
  assertStringIncludes(stderr.text, "/reset");
  assertStringIncludes(stderr.text, "chat: 3 turn(s)");
});

Deno.test("runRepl() stops a reply on Ctrl+C, returns to the prompt, goes on, and exits on Ctrl+C at the prompt", async () => {
  const engine = new FakeEngine(2048, alpacaScript((q) => q.startsWith("long") ? "x".repeat(100000) : "short one"));
  engine.delayMs = 1;
  let feed!: ReadableStreamDefaultController<Uint8Array>;
  const stdin = new ReadableStream<Uint8Array>({ start: (c) => void (feed = c) });
  const type = (s: string) => feed.enqueue(new TextEncoder().encode(s));
  const stdout = new Capture();
  const interrupts = new FakeInterrupts();
  const done = runRepl(newSession(engine, -1), {
    interactive: true,
    color: true,
    stdin,
    stdout,
    stderr: new Capture(),
    interrupts,
  });
  await until(() => stdout.text.includes("> "), "the first prompt");
  type("long story\n");
  await until(() => stdout.text.includes("xxxxx"), "the reply to start");
  interrupts.fire();
  await until(() => stdout.text.endsWith("> \x1b[1m\x1b[32m"), "the prompt after Ctrl+C");
  assertStringIncludes(stdout.text, "[stopped]");
  type("again\n");
  await until(() => stdout.text.includes("short one"), "the second reply");
  await until(() => stdout.text.endsWith("> \x1b[1m\x1b[32m"), "the third prompt");
  interrupts.fire();
  assertEquals(await done, 0);
  assertEquals(interrupts.handlers.size, 0, "the SIGINT handler is removed");
  // the preamble was echoed in the prompt color, as llama.cpp did
  assert(stdout.text.startsWith("\x1b[33mBelow is an instruction"));
});

Deno.test("runRepl() exits on Ctrl+D (end of input) at the prompt and on /exit", async () => {
  for (const input of ["hi\n", "hi\n/exit\nnever\n"]) {
    const engine = new FakeEngine(2048, alpacaScript(() => "ok"));
    const stdout = new Capture();
    const code = await runRepl(newSession(engine), {
      interactive: true,
      stdin: streamOf(input),
      stdout,
      stderr: new Capture(),
      interrupts: new FakeInterrupts(),
    });
    assertEquals(code, 0);
    assertEquals(stdout.text.split("ok").length, 2, "one reply");
  }
});

Deno.test("terminalSafe() drops control characters except tab, newline and CR", () => {
  assertEquals(terminalSafe("a\x1b[31mb\x07\x00c\td\ne\rf\x7f羊驼"), "a[31mbc\td\ne\rf羊驼");
});
