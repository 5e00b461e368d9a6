/**
 * End to end: the official `openai` npm client against `createServer` on 127.0.0.1 over a tiny random model.
 * Oracles: generate() on a one-slot engine (greedy text per request), the tokenizer's own decode, the OpenAI
 * streaming contract checked chunk by chunk on the raw SSE bytes (one id, role first, one finish_reason, usage
 * chunk, [DONE]), and the shapes of OpenAI's error bodies.
 */
import { ALPACA } from "../../src/chat/templates.ts";
import { chatTokenizer } from "../../src/chat/chat_tokenizer.ts";
import { generate, loadEngine } from "../../src/model/engine.ts";
import { renderChat } from "../../src/serve/chat_prompt.ts";
import { argmax } from "../../src/sampling/sampler.ts";
import { StreamingDecoder, type Tokenizer } from "../../src/tokenizer/mod.ts";
import { assert, assertEquals, assertNotEquals } from "../_assert.ts";
import { CHINESE_PIECES, startServer, writeServeModel } from "./_server.ts";
import { importTestPackage, OPENAI_NPM } from "../_npm.ts";

// The client is typed loosely on purpose: its types would put the npm package into the checked module graph.
// deno-lint-ignore no-explicit-any
const OpenAI: any = (await importTestPackage<{ default: unknown }>(OPENAI_NPM, "openai_client_test"))?.default;
const needsOpenAI = { ignore: OpenAI === undefined };

const KEY = "sk-yangtuo-test";

function assertAlmostEquals(actual: number, expected: number, tol: number): void {
  assert(Math.abs(actual - expected) <= tol, `${actual} is not within ${tol} of ${expected}`);
}
const greedy = { sample: (l: Float32Array) => argmax(l) };

/** Text a completion shows for `ids` after its prompt (the first piece keeps its space). */
function continuation(tok: Tokenizer, ids: number[]): string {
  const d = new StreamingDecoder(tok, { continuation: true });
  return ids.map((id) => d.push(id)).join("") + d.flush();
}

/** Greedy ids of `prompt` by generate() on a fresh one-slot engine. */
async function greedyIds(path: string, prompts: number[][], maxTokens: number): Promise<number[][]> {
  const engine = await loadEngine(path, { threads: 1, contextSize: 256 });
  try {
    const out = [];
    for (const p of prompts) out.push((await generate(engine, greedy, p, { maxTokens })).ids);
    return out;
  } finally {
    engine.close();
  }
}

/** Reads an SSE body into its `data:` payloads, checking the framing. */
async function sseEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  assert(text.endsWith("\n\n"), "events end with a blank line");
  const events = text.slice(0, -2).split("\n\n");
  return events.map((e) => {
    assert(e.startsWith("data: "), `an SSE data line: ${JSON.stringify(e.slice(0, 40))}`);
    return e.slice(6);
  });
}

function checkErrorBody(body: unknown, status: number): void {
  const e = (body as { error: Record<string, unknown> }).error;
  assert(e && typeof e.message === "string" && typeof e.type === "string", `error shape for ${status}`);
  assert("code" in e, "error.code present");
  assert(!/\bat .*\.ts:\d+/.test(JSON.stringify(body)), "no stack trace");
}

Deno.test(
  "serve: the openai client gets chat, completions, streams, logprobs, embeddings and errors",
  needsOpenAI,
  async (t) => {
    const path = await writeServeModel();
    const srv = await startServer(path, { slots: 2, apiKey: KEY, maxBodyBytes: 64 * 1024 });
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const tok = srv.engine.tokenizer;
    try {
      await t.step("models.list() lists the served model", async () => {
        const models = await client.models.list();
        assertEquals(models.data.map((m: { id: string }) => m.id), ["tiny"]);
      });

      const question = "用一句话介绍北京";
      const chatPrompt = renderChat(ALPACA, chatTokenizer(tok), [{ role: "user", content: question }]);
      const [chatIds] = await greedyIds(path, [chatPrompt], 20);
      const chatText = tok.decode(chatIds);

      await t.step("chat.completions.create() greedy text equals generate() on the Alpaca prompt", async () => {
        const r = await client.chat.completions.create({
          model: "tiny",
          messages: [{ role: "user", content: question }],
          temperature: 0,
          max_tokens: 20,
        });
        assertEquals(r.object, "chat.completion");
        assertEquals(r.choices.length, 1);
        assertEquals(r.choices[0].message.role, "assistant");
        assertEquals(r.choices[0].message.content, chatText);
        assertEquals(r.choices[0].finish_reason, chatIds.length === 20 ? "length" : "stop");
        assertEquals(r.usage, {
          prompt_tokens: chatPrompt.length,
          completion_tokens: chatIds.length,
          total_tokens: chatPrompt.length + chatIds.length,
        });
      });

      await t.step("a stream is one id, role first, whole characters, one finish_reason, usage, [DONE]", async () => {
        const res = await fetch(`${srv.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
          body: JSON.stringify({
            messages: [{ role: "user", content: question }],
            temperature: 0,
            max_tokens: 20,
            stream: true,
            stream_options: { include_usage: true },
          }),
        });
        assertEquals(res.status, 200);
        assert(res.headers.get("content-type")!.startsWith("text/event-stream"));
        const events = await sseEvents(res);
        assertEquals(events.at(-1), "[DONE]");
        const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
        const ids = new Set(chunks.map((c) => c.id));
        assertEquals(ids.size, 1, "one id per response");
        assert(chunks.every((c) => c.object === "chat.completion.chunk"));
        assertEquals(chunks[0].choices[0].delta.role, "assistant", "role in the first delta");
        assert(chunks.slice(1).every((c) => c.choices.every((ch: { delta: object }) => !("role" in ch.delta))));
        const usageChunk = chunks.at(-1);
        assertEquals(usageChunk.choices, []);
        assertEquals(usageChunk.usage.completion_tokens, chatIds.length);
        assertEquals(usageChunk.usage.prompt_tokens, chatPrompt.length);
        const finishes = chunks.filter((c) => c.choices[0]?.finish_reason);
        assertEquals(finishes.length, 1);
        assertEquals(finishes[0], chunks.at(-2), "finish_reason on the last choice chunk");
        assertEquals(finishes[0].choices[0].delta, {});
        let text = "";
        for (const c of chunks.slice(0, -1)) {
          const piece: string = c.choices[0].delta.content ?? "";
          // a chunk is whole characters: re-encoding it as UTF-8 is lossless (no lone surrogate) …
          assertEquals(new TextDecoder().decode(new TextEncoder().encode(piece)), piece);
          text += piece;
        }
        // … and no character was cut into U+FFFD pieces: the concatenation is the whole-sequence decode
        assertEquals(text, chatText);
      });

      await t.step("the SDK's stream iterator sees the same text and usage", async () => {
        const stream = await client.chat.completions.create({
          model: "tiny",
          messages: [{ role: "user", content: question }],
          temperature: 0,
          max_tokens: 20,
          stream: true,
          stream_options: { include_usage: true },
        });
        let text = "", usage = null, finish = null;
        for await (const c of stream) {
          text += c.choices[0]?.delta.content ?? "";
          if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
          if (c.usage) usage = c.usage;
        }
        assertEquals(text, chatText);
        assertEquals(finish, chatIds.length === 20 ? "length" : "stop");
        assertEquals(usage!.completion_tokens, chatIds.length);
      });

      const prompt = "Once upon a time 北京";
      const promptIds = tok.encode(prompt, { bos: true });
      const [compIds] = await greedyIds(path, [promptIds], 24);
      const compText = continuation(tok, compIds);

      await t.step("completions.create() greedy text equals generate() on the same prompt", async () => {
        const r = await client.completions.create({ model: "tiny", prompt, temperature: 0, max_tokens: 24 });
        assertEquals(r.object, "text_completion");
        assertEquals(r.choices[0].text, compText);
        assertEquals(r.usage!.prompt_tokens, promptIds.length);
        assertEquals(r.usage!.completion_tokens, compIds.length);
        // a prompt given as token ids is the same request
        const r2 = await client.completions.create({
          model: "tiny",
          prompt: promptIds,
          temperature: 0,
          max_tokens: 24,
        });
        assertEquals(r2.choices[0].text, compText);
      });

      await t.step("a stop sequence ends the text right before it, finish_reason stop", async () => {
        const k = Math.floor(compText.length / 2);
        const stop = compText.slice(k, k + 2);
        const r = await client.completions.create({
          model: "tiny",
          prompt,
          temperature: 0,
          max_tokens: 24,
          stop: [stop],
        });
        assertEquals(r.choices[0].text, compText.slice(0, compText.indexOf(stop)));
        assertEquals(r.choices[0].finish_reason, "stop");
        // streamed, the stop string is never sent either
        const s = await client.completions.create({
          model: "tiny",
          prompt,
          temperature: 0,
          max_tokens: 24,
          stop,
          stream: true,
        });
        let text = "";
        for await (const c of s) text += c.choices[0]?.text ?? "";
        assertEquals(text, compText.slice(0, compText.indexOf(stop)));
      });

      await t.step("logprobs: one entry per token, greedy picks the top one, top_logprobs sorted", async () => {
        const r = await client.chat.completions.create({
          model: "tiny",
          messages: [{ role: "user", content: question }],
          temperature: 0,
          max_tokens: 8,
          logprobs: true,
          top_logprobs: 3,
        });
        const content = r.choices[0].logprobs!.content!;
        assertEquals(content.length, r.usage!.completion_tokens);
        let sum = 0;
        for (const e of content) {
          assert(e.logprob <= 0);
          assertEquals(e.top_logprobs.length, 3);
          assertAlmostEquals(e.logprob, e.top_logprobs[0].logprob, 1e-9);
          assert(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
          sum += Math.exp(e.logprob);
        }
        assert(sum > 0);
        const c = await client.completions.create({
          model: "tiny",
          prompt,
          temperature: 0,
          max_tokens: 6,
          logprobs: 2,
        });
        const lp = c.choices[0].logprobs!;
        assertEquals(lp.tokens!.length, c.usage!.completion_tokens);
        assertEquals(lp.token_logprobs!.length, lp.tokens!.length);
        assert(
          lp.top_logprobs!.every((m: Record<string, number> | null) =>
            Object.keys(m!).length >= 1 && Object.keys(m!).length <= 2
          ),
        );
      });

      await t.step("the same seed gives the same sampled text; other seeds differ", async () => {
        const ask = (seed: number) =>
          client.completions.create(
            { model: "tiny", prompt, temperature: 1.5, top_k: 0, max_tokens: 16, seed } as never,
          )
            .then((r: unknown) => (r as { choices: { text: string }[] }).choices[0].text);
        const a = await ask(1234), b = await ask(1234);
        assertEquals(a, b);
        const others = await Promise.all([7, 99, 2024].map(ask));
        assert(others.some((o) => o !== a), "another seed changes the text");
      });

      await t.step(
        "embeddings: one L2-normalised vector of dim per input, deterministic (base64 and float)",
        async () => {
          const r = await client.embeddings.create({ model: "tiny", input: ["你好", "hello world", "你好"] });
          assertEquals(r.data.length, 3);
          for (const d of r.data) {
            assertEquals(d.embedding.length, srv.engine.config.dim);
            assertAlmostEquals(Math.hypot(...d.embedding), 1, 1e-5);
          }
          assertEquals(r.data[0].embedding, r.data[2].embedding);
          assertNotEquals(r.data[0].embedding, r.data[1].embedding);
          const f = await client.embeddings.create({ model: "tiny", input: "你好", encoding_format: "float" });
          assertEquals(f.data[0].embedding.length, srv.engine.config.dim);
          f.data[0].embedding.forEach((v: number, i: number) => assertAlmostEquals(v, r.data[0].embedding[i], 1e-7));
          assertEquals(f.usage.prompt_tokens, tok.encode("你好", { bos: true }).length);
        },
      );

      await t.step("every error status has OpenAI's shape and the server keeps serving", async () => {
        const post = (p: string, body: BodyInit, key = KEY) =>
          fetch(`${srv.url}${p}`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body });
        const cases: [Promise<Response>, number][] = [
          [post("/v1/chat/completions", "{not json"), 400],
          [post("/v1/chat/completions", "[1,2]"), 400],
          [post("/v1/chat/completions", JSON.stringify({ messages: [] })), 400],
          [
            post(
              "/v1/chat/completions",
              JSON.stringify({ messages: [{ role: "user", content: "hi" }], temperature: "hot" }),
            ),
            400,
          ],
          [post("/v1/chat/completions", JSON.stringify({ messages: [{ role: "user", content: "hi" }], n: 2 })), 400],
          [post("/v1/chat/completions", JSON.stringify({ messages: [{ role: "tool", content: "hi" }] })), 400],
          [post("/v1/completions", JSON.stringify({ prompt: [1, 99999] })), 400],
          [post("/v1/completions", JSON.stringify({ prompt: Array(300).fill(5) })), 400], // longer than the context
          [post("/v1/embeddings", JSON.stringify({ input: 42 })), 400],
          [post("/v1/chat/completions", new Uint8Array([0x7b, 0xff, 0x7d])), 400], // not UTF-8
          [post("/v1/chat/completions", "{}", "wrong-key"), 401],
          [fetch(`${srv.url}/v1/models`), 401],
          [fetch(`${srv.url}/v1/nope`), 404],
          [fetch(`${srv.url}/v1/chat/completions`), 405],
          [post("/v1/chat/completions", "x".repeat(65 * 1024)), 413],
        ];
        for (const [pending, status] of cases) {
          const res = await pending;
          assertEquals(res.status, status, `${status}`);
          checkErrorBody(await res.json(), status);
        }
        const tooLong = await post("/v1/completions", JSON.stringify({ prompt: Array(300).fill(5) }));
        assertEquals((await tooLong.json()).error.code, "context_length_exceeded");
        // the SDK maps them to its error classes
        const bad = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "nope", maxRetries: 0 });
        let err: unknown;
        await bad.models.list().catch((e: unknown) => err = e);
        assert(err instanceof OpenAI.AuthenticationError);
        await client.chat.completions.create({ model: "tiny", messages: [] }).catch((e: unknown) => err = e);
        assert(err instanceof OpenAI.BadRequestError);
        // still serving
        const ok = await client.completions.create({ model: "tiny", prompt, temperature: 0, max_tokens: 24 });
        assertEquals(ok.choices[0].text, compText);
      });

      await t.step("8 clients streaming at once on 2 slots each get generate()'s greedy text", async () => {
        const prompts = Array.from({ length: 8 }, (_, i) => `客户 ${i}: ${CHINESE_PIECES.slice(i, i + 3).join("")}`);
        const ids = prompts.map((p) => tok.encode(p, { bos: true }));
        const want = (await greedyIds(path, ids, 16)).map((g) => continuation(tok, g));
        const before = srv.server.scheduler.stats();
        const got = await Promise.all(prompts.map(async (p) => {
          const s = await client.completions.create({
            model: "tiny",
            prompt: p,
            temperature: 0,
            max_tokens: 16,
            stream: true,
          });
          let text = "";
          for await (const c of s) text += c.choices[0]?.text ?? "";
          return text;
        }));
        assertEquals(got, want);
        const after = srv.server.scheduler.stats();
        const rows = after.rows - before.rows, steps = after.steps - before.steps;
        assert(rows / steps > 1.5, `sequences shared forwards: ${rows} rows in ${steps} steps`);
        assertEquals(after.slotsIdle, 2);
      });
    } finally {
      await srv.close();
      Deno.removeSync(path);
    }
  },
);

Deno.test(
  "serve: a full queue answers 503, a client that leaves mid-stream frees its slot at the next step",
  needsOpenAI,
  async () => {
    const path = await writeServeModel();
    // the slot's stream must still be running when the second request comes: a slow model that never ends by itself
    const srv = await startServer(path, { slots: 1, maxQueue: 0, slowNeverEnding: 15 });
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "unused", maxRetries: 0 });
    try {
      const long = await client.completions.create({ model: "tiny", prompt: "a", max_tokens: 150, stream: true });
      const it = long[Symbol.asyncIterator]();
      await it.next(); // the one slot is taken
      const res = await fetch(`${srv.url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "b" }) });
      assertEquals(res.status, 503);
      const body = await res.json();
      assertEquals(body.error.type, "unavailable_error");
      let err: unknown;
      await client.completions.create({ model: "tiny", prompt: "b", max_tokens: 2 }).catch((e: unknown) => err = e);
      assert(err instanceof OpenAI.APIError && (err as { status: number }).status === 503);
      for (let r = await it.next(); !r.done; r = await it.next()) { /* drain */ }
      const ok = await client.completions.create({ model: "tiny", prompt: "b", max_tokens: 2 });
      assertEquals(ok.choices.length, 1);

      // leave after 4 chunks of a reply that would take 200 × ≥ 15 ms = 3 s: the slot is free long before that
      const stream = await client.completions.create({
        model: "tiny",
        prompt: "讲一个故事",
        max_tokens: 200,
        stream: true,
      });
      const t0 = performance.now();
      let n = 0;
      for await (const _ of stream) if (++n === 4) break; // breaking out aborts the request
      for (;;) {
        const h = await (await fetch(`${srv.url}/health`)).json();
        if (h.slots_idle === 1) break;
        assert(performance.now() - t0 < 2000, `slot not freed: ${JSON.stringify(h)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      const steps = srv.server.scheduler.stats().steps;
      await new Promise((r) => setTimeout(r, 100));
      assertEquals(srv.server.scheduler.stats().steps, steps, "no step runs for a cancelled sequence");
    } finally {
      await srv.close();
      Deno.removeSync(path);
    }
  },
);
