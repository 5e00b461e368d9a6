/**
 * ChatSession against a scripted engine that checks every eval() position.
 * Oracles: llama.cpp examples/main/main.cpp @ 3525899 — instruct-mode token layout (BOS + " " + prompt file;
 * per turn BOS "\n\n### Instruction:\n\n" + line + "\n" + "\n\n### Response:\n\n") and its context swap
 * (n_keep = prompt, keep the last (n_past - n_keep) / 2 tokens); the expected layouts below are written out by hand
 * from those strings, not produced by our template code.
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { ChatSession, type ChatSessionOptions } from "../../src/chat/session.ts";
import { getTemplate } from "../../src/chat/templates.ts";
import {
  alpacaScript,
  BOS,
  bytesOf,
  ByteStreamingDecoder,
  ByteTokenizer,
  EOS,
  FakeEngine,
  type FakeModel,
} from "./_fake_engine.ts";

const createDecoder = () => new ByteStreamingDecoder();

function session(engine: FakeEngine, options: Partial<ChatSessionOptions> = {}): ChatSession {
  return new ChatSession(engine, { createDecoder, sampler: { temperature: 0, repeatPenalty: 1 }, ...options });
}

const ALPACA_TEXT =
  "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

Deno.test("ChatSession lays out the preamble and a turn exactly as llama.cpp -ins did", async () => {
  const engine = new FakeEngine(2048, alpacaScript(() => "OK"));
  const s = session(engine);
  const reply = await s.respond("你好");
  assertEquals(reply.text, "OK");
  assertEquals(reply.stopReason, "eos");
  const expected = [
    BOS,
    ...bytesOf(` ${ALPACA_TEXT}`),
    BOS,
    ...bytesOf("\n\n### Instruction:\n\n"),
    ...bytesOf("你好\n"),
    ...bytesOf("\n\n### Response:\n\n"),
    ...bytesOf("OK"),
    EOS,
  ];
  assertEquals([...s.contextTokens], expected);
  assertEquals(s.preambleTokens.length, 1 + bytesOf(` ${ALPACA_TEXT}`).length);
  // the engine saw everything but the final EOS, which is queued for the next turn
  assertEquals(engine.cache, expected.slice(0, -1));
  assertEquals(s.evaluated, expected.length - 1);
});

Deno.test("ChatSession remembers earlier turns and evaluates the queued EOS with the next turn", async () => {
  const engine = new FakeEngine(2048, alpacaScript((q) => `answer to ${q.trim()}`));
  const s = session(engine, { system: "Be brief." });
  assertEquals((await s.respond("one")).text, "answer to one");
  const r2 = await s.respond("two");
  assertEquals(r2.text, "answer to two");
  const text = new ByteTokenizer().decode([...s.contextTokens]);
  assertEquals(
    text,
    " Be brief.\n\n### Instruction:\n\none\n\n\n### Response:\n\nanswer to one" +
      "\n\n### Instruction:\n\ntwo\n\n\n### Response:\n\nanswer to two",
  );
  assertEquals(s.contextTokens.filter((t) => t === EOS).length, 2);
  assertEquals(engine.cache, [...s.contextTokens].slice(0, -1));
  assertEquals(s.stats.turns, 2);
  assertEquals(s.stats.generatedTokens, "answer to one".length + 1 + "answer to two".length + 1);
});

Deno.test("ChatSession stops at the model's own '### Instruction:' and keeps it out of the text and context", async () => {
  const engine = new FakeEngine(
    2048,
    alpacaScript((q) => q.startsWith("a") ? "Sure.\n\n### Instruction:\n\nsay more" : "fine"),
  );
  const s = session(engine, { system: "" });
  const chunks: string[] = [];
  const r = await s.respond("a", { onText: (t) => chunks.push(t) });
  assertEquals(r.stopReason, "stop-string");
  assertEquals(r.text, "Sure.\n\n");
  assertEquals(chunks.join(""), "Sure.\n\n");
  assert(!chunks.some((c) => c.includes("#")), "no part of the stop string may be printed");
  const r2 = await s.respond("b");
  assertEquals(r2.text, "fine");
  const text = new ByteTokenizer().decode([...s.contextTokens]);
  assertEquals(
    text,
    "\n\n### Instruction:\n\na\n\n\n### Response:\n\nSure.\n\n\n\n### Instruction:\n\nb\n\n\n### Response:\n\nfine",
  );
  assertEquals(engine.cache, [...s.contextTokens].slice(0, -1));
});

Deno.test("ChatSession drops the stop string's tokens even after the context shifted mid-reply", async () => {
  // reads only the end of the context, so it keeps going after a shift: 25 "y" after the suffix, then the stop string
  const stopText = "### Instruction:";
  const dec = new ByteTokenizer();
  const model: FakeModel = (ctx) => {
    const text = dec.decode([...ctx]);
    if (text.endsWith("### Response:\n\n")) return bytesOf("y")[0];
    const tail = /y+([^y]*)$/.exec(text);
    if (!tail) return EOS;
    if (tail[1] === "") return tail[0].length < 25 ? bytesOf("y")[0] : bytesOf("#")[0];
    return stopText.startsWith(tail[1]) && tail[1].length < stopText.length
      ? bytesOf(stopText[tail[1].length])[0]
      : EOS;
  };
  const engine = new FakeEngine(64, model);
  const s = session(engine, { system: "", maxNewTokens: 500 });
  const r = await s.respond("q");
  assertEquals(r.stopReason, "stop-string");
  assertEquals(r.text, "y".repeat(25));
  assert(s.stats.contextShifts > 0, "the reply overflowed the context");
  const text = dec.decode([...s.contextTokens]);
  assert(text.endsWith("yyyy") && !text.includes("#"), JSON.stringify(text));
  // positions past `evaluated` hold the dropped tokens until the next turn overwrites them
  assertEquals(engine.cache.slice(0, s.evaluated), [...s.contextTokens].slice(0, s.evaluated));
});

Deno.test("ChatSession releases a '#' that does not become a stop string", async () => {
  const engine = new FakeEngine(2048, alpacaScript(() => "C# and ## are fine ###"));
  const r = await session(engine).respond("x");
  assertEquals(r.text, "C# and ## are fine ###");
});

Deno.test("ChatSession stops after maxNewTokens and goes on next turn", async () => {
  const engine = new FakeEngine(2048, alpacaScript(() => "abcdefghij"));
  const s = session(engine, { maxNewTokens: 4 });
  const r = await s.respond("x");
  assertEquals(r.stopReason, "length");
  assertEquals(r.text, "abcd");
  assertEquals(r.nGenerated, 4);
  assertEquals((await s.respond("y")).text, "abcd");
});

Deno.test("ChatSession with ignoreEos never samples EOS", async () => {
  const engine = new FakeEngine(2048, alpacaScript(() => "ab"));
  const r = await session(engine, { ignoreEos: true, maxNewTokens: 6 }).respond("x");
  assertEquals(r.stopReason, "length");
  assertEquals(r.tokenIds.length, 6);
  assert(!r.tokenIds.includes(EOS));
  assertEquals(r.text.slice(0, 2), "ab");
});

Deno.test("ChatSession streams Chinese split into bytes as whole characters", async () => {
  const answer = "北京是中国的首都。🐑";
  const engine = new FakeEngine(2048, alpacaScript(() => answer));
  const chunks: string[] = [];
  const r = await session(engine).respond("介绍北京", { onText: (t) => chunks.push(t) });
  assertEquals(chunks.join(""), answer);
  assertEquals(r.text, new ByteTokenizer().decode(r.tokenIds));
  for (const c of chunks) assert(!c.includes("\uFFFD"), `chunk ${JSON.stringify(c)} has U+FFFD`);
  assert(chunks.length === [...answer].length, "one chunk per character");
});

Deno.test("ChatSession stops on an aborted signal, keeps the partial reply, and goes on", async () => {
  const engine = new FakeEngine(2048, alpacaScript((q) => q.startsWith("long") ? "x".repeat(500) : "short"));
  const s = session(engine, { maxNewTokens: -1 });
  const ac = new AbortController();
  let n = 0;
  const r = await s.respond("long", {
    signal: ac.signal,
    onText: () => {
      if (++n === 10) ac.abort();
    },
  });
  assertEquals(r.stopReason, "interrupted");
  assertEquals(r.text, "x".repeat(10));
  const r2 = await s.respond("next");
  assertEquals(r2.text, "short");
  assertEquals(r2.stopReason, "eos");
  assertEquals(engine.cache, [...s.contextTokens].slice(0, -1));
});

Deno.test("ChatSession aborted before the reply returns an empty interrupted reply", async () => {
  const engine = new FakeEngine(2048, alpacaScript(() => "never"));
  const ac = new AbortController();
  ac.abort();
  const r = await session(engine).respond("x", { signal: ac.signal });
  assertEquals(r.stopReason, "interrupted");
  assertEquals(r.text, "");
  assertEquals(engine.calls.length, 0);
});

Deno.test("ChatSession keeps working through a 2,000-token conversation on a 256-token context", async () => {
  const answer = (q: string) => {
    const t = q.trim();
    return `re ${t.length}: ${"好".repeat(t.length % 4)}${"z".repeat(5 + (t.length % 11))}`;
  };
  const engine = new FakeEngine(256, alpacaScript(answer));
  // a 30-token preamble leaves (256 - 30) / 2 = 113 tokens after a shift: enough for the scripted model to still
  // see its instruction (byte tokens make Chinese 3 tokens per character)
  const s = session(engine, { maxNewTokens: 200, system: "You are a helpful assistant." });
  const preamble = [...s.preambleTokens];
  let total = 0;
  let turns = 0;
  let lastShifts = 0;
  while (total < 2000) {
    const q = `q${turns} ${"词 ".repeat(turns % 5)}`;
    const r = await s.respond(q);
    assertEquals(r.text, answer(q), `turn ${turns}`);
    assertEquals(r.stopReason, "eos");
    // the preamble stays; the context never exceeds its size; the engine holds exactly what the session says
    assertEquals([...s.contextTokens.slice(0, preamble.length)], preamble);
    assert(s.contextTokens.length <= 257, `context ${s.contextTokens.length}`);
    assertEquals(engine.cache, [...s.contextTokens].slice(0, s.evaluated));
    total += r.nPromptTokens + r.nGenerated;
    turns++;
    lastShifts = s.stats.contextShifts;
  }
  assert(lastShifts >= 5, `expected several context shifts, got ${lastShifts}`);
  assert(s.stats.evaluatedTokens >= 2000);
});

Deno.test("ChatSession shifts as llama.cpp: keeps the preamble and the last (n_past - n_keep)/2 tokens", async () => {
  // a model that babbles "ab" for ever: the shift happens during generation
  const model: FakeModel = (ctx) => (ctx.length % 2 ? bytesOf("a")[0] : bytesOf("b")[0]);
  const engine = new FakeEngine(64, model);
  const s = session(engine, { system: "", maxNewTokens: 100 });
  const before: number[][] = [];
  const origEval = engine.eval.bind(engine);
  engine.eval = (tokens, start) => {
    before.push([...engine.cache]);
    return origEval(tokens, start);
  };
  await s.respond("q");
  const shift = engine.calls.findIndex((c, i) => i > 0 && c.startPos < engine.calls[i - 1].startPos);
  assert(shift > 0, "a shift happened");
  const nKeep = s.preambleTokens.length;
  assertEquals(nKeep, 1);
  const call = engine.calls[shift];
  const nPast = engine.calls[shift - 1].startPos + engine.calls[shift - 1].tokens.length;
  assertEquals(nPast, 64);
  const nLeft = nPast - nKeep;
  assertEquals(call.startPos, nKeep);
  const old = before[shift];
  // re-evaluated: the last n_left/2 tokens of the old context, then the new token
  assertEquals(call.tokens.slice(0, Math.floor(nLeft / 2)), old.slice(nPast - Math.floor(nLeft / 2), nPast));
  assertEquals(call.tokens.length, Math.floor(nLeft / 2) + 1);
});

Deno.test("ChatSession.reset() keeps the evaluated preamble and forgets the turns", async () => {
  const engine = new FakeEngine(2048, alpacaScript((q) => `re ${q.trim()}`));
  const s = session(engine);
  await s.respond("one");
  s.reset();
  assertEquals([...s.contextTokens], [...s.preambleTokens]);
  const nCalls = engine.calls.length;
  const r = await s.respond("two");
  assertEquals(r.text, "re two");
  assertEquals(engine.calls[nCalls].startPos, s.preambleTokens.length);
});

Deno.test("ChatSession rejects a preamble longer than the context allows", () => {
  const engine = new FakeEngine(64, () => EOS);
  assertThrows(() => session(engine, { system: "x".repeat(100) }), RangeError, "preamble is 102 tokens");
});

Deno.test("ChatSession with the llama-2 template builds [INST] turns and BOS per later turn", async () => {
  const engine = new FakeEngine(2048, () => EOS);
  const s = session(engine, { template: getTemplate("llama-2"), system: "S" });
  await s.respond("u1");
  await s.respond("u2");
  const tok = new ByteTokenizer();
  assertEquals([...s.contextTokens], [
    BOS,
    ...bytesOf(" [INST] <<SYS>>\nS\n<</SYS>>\n\n"),
    ...bytesOf("u1 [/INST]"),
    EOS,
    BOS,
    ...bytesOf(" [INST] u2 [/INST]"),
    EOS,
  ]);
  assertEquals(tok.decode([...s.contextTokens]).includes("<</SYS>>"), true);
});
