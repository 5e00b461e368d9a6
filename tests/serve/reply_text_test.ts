/**
 * ReplyText and the request checks, no permissions. Oracles: UTF-8 bytes of known characters (北 = E5 8C 97),
 * the tokenizer's own whole-sequence decode, hand-written stop-string cases, and log-softmax computed in f64 here.
 */
import { tokenizerFromGgufMetadata } from "../../src/tokenizer/mod.ts";
import { randomVocabMetadata } from "../../fixtures/random_model.ts";
import { ReplyText, tokenSurface } from "../../src/serve/reply_text.ts";
import { logprobsOf } from "../../src/serve/request_sampler.ts";
import {
  DEFAULT_SAMPLING,
  parseChatRequest,
  parseCompletionRequest,
  parseEmbeddingRequest,
} from "../../src/serve/request_params.ts";
import { ApiError } from "../../src/serve/api_error.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";

const tok = tokenizerFromGgufMetadata(new Map(randomVocabMetadata(400).map((kv) => [kv.key, kv.value])));
const byte = (b: number) => tok.vocab.byteIds[b];
const flat = new Float32Array(400);
const opts = { stop: [] as string[], continuation: false, logprobs: false, topLogprobs: 0 };

Deno.test("ReplyText never sends part of a character split over byte tokens", { permissions: "none" }, () => {
  const r = new ReplyText(tok, opts);
  // 北 = E5 8C 97, then "京" = E4 BA AC
  const parts = [0xe5, 0x8c, 0x97, 0xe4, 0xba, 0xac].map((b) => r.push(byte(b), flat));
  assertEquals(parts, ["", "", "北", "", "", "京"]);
  assertEquals(r.finish(), "");
  assertEquals(r.text, "北京");
  // an unfinished character at the end comes out as U+FFFD, as decode() renders it
  const cut = new ReplyText(tok, opts);
  assertEquals(cut.push(byte(0xe5), flat), "");
  assertEquals(cut.finish(), tok.decode([byte(0xe5)]));
});

Deno.test(
  "ReplyText holds back a stop string's beginning and never sends the stop string",
  { permissions: "none" },
  () => {
    const ids = tok.encode("ab cd ef", { bos: false });
    const whole = tok.decode(ids);
    const stop = whole.slice(3, 5);
    const r = new ReplyText(tok, { ...opts, stop: [stop] });
    let sent = "";
    for (const id of ids) {
      sent += r.push(id, flat);
      if (r.stopped) break;
    }
    sent += r.finish();
    assertEquals(sent, whole.slice(0, whole.indexOf(stop)));
    assert(r.stopped);
    // a completion keeps the first piece's leading space; a chat reply drops it, as decode()
    const c = new ReplyText(tok, { ...opts, continuation: true });
    const text = ids.map((id) => c.push(id, flat)).join("") + c.finish();
    assertEquals(text, " " + whole);
  },
);

Deno.test("logprobsOf() is the log-softmax of the logits and top tokens come sorted", { permissions: "none" }, () => {
  const l = Float32Array.of(1, 3, -2, 3, 0.5);
  const z = Math.log([...l].reduce((a, v) => a + Math.exp(v), 0));
  const r = logprobsOf(l, 0, 3);
  assert(Math.abs(r.chosen.logprob - (1 - z)) < 1e-12);
  assertEquals(r.top.map((t) => t.id), [1, 3, 0]);
  const r2 = new ReplyText(tok, { ...opts, logprobs: true, topLogprobs: 2 });
  r2.push(byte(0xe5), new Float32Array(400));
  const [e] = r2.takeLogprobs();
  assertEquals(e.bytes, [0xe5]);
  assert(Math.abs(e.logprob - -Math.log(400)) < 1e-9);
  assertEquals(r2.takeLogprobs(), []);
  assertEquals(tokenSurface(tok, tok.eosId), { token: "", bytes: [] });
});

Deno.test(
  "request checks name the bad field (400) and accept what the openai client sends",
  { permissions: "none" },
  () => {
    const user = [{ role: "user", content: "你好" }];
    const bad: [unknown, string][] = [
      [null, "body"],
      [{ messages: "hi" }, "messages"],
      [{ messages: [{ role: "user" }] }, "messages[0].content"],
      [{ messages: [{ role: "tool", content: "x" }] }, "messages[0].role"],
      [{ messages: [{ role: "user", content: [{ type: "image_url" }] }] }, "messages[0].content"],
      [{ messages: [{ role: "assistant", content: "x" }] }, "messages"],
      [{ messages: user, temperature: -1 }, "temperature"],
      [{ messages: user, temperature: "1" }, "temperature"],
      [{ messages: user, top_p: 2 }, "top_p"],
      [{ messages: user, max_tokens: 0 }, "max_tokens"],
      [{ messages: user, max_tokens: 1.5 }, "max_tokens"],
      [{ messages: user, n: 3 }, "n"],
      [{ messages: user, stop: [1] }, "stop"],
      [{ messages: user, stop: Array(17).fill("x") }, "stop"],
      [{ messages: user, top_logprobs: 3 }, "top_logprobs"],
      [{ messages: user, top_logprobs: 21, logprobs: true }, "top_logprobs"],
      [{ messages: user, seed: "x" }, "seed"],
      [{ messages: user, stream: "yes" }, "stream"],
      [{ messages: user, model: 5 }, "model"],
      [{ messages: user, presence_penalty: 3 }, "presence_penalty"],
      [{ messages: user, ignore_eos: 1 }, "ignore_eos"],
    ];
    for (const [body, param] of bad) {
      const e = assertThrows<ApiError>(() => parseChatRequest(body, DEFAULT_SAMPLING), ApiError);
      assertEquals([e.status, e.param], [400, param], JSON.stringify(body));
    }
    const ok = parseChatRequest({
      model: "x",
      messages: [{ role: "developer", content: "be brief" }, { role: "user", content: [{ type: "text", text: "hi" }] }],
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 7,
      stop: "###",
      n: 1,
      seed: 42,
    }, DEFAULT_SAMPLING);
    assertEquals(ok.messages, [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }]);
    assertEquals([ok.params.stream, ok.params.includeUsage, ok.params.maxTokens, ok.params.stop, ok.params.seed], [
      true,
      true,
      7,
      ["###"],
      42,
    ]);
    assertEquals(parseCompletionRequest({ prompt: ["x"] }, DEFAULT_SAMPLING).prompt, "x");
    assertEquals(parseCompletionRequest({ prompt: [[1, 2]] }, DEFAULT_SAMPLING).prompt, [1, 2]);
    for (const prompt of [undefined, ["a", "b"], [], [1.5], {}]) {
      assertThrows(() => parseCompletionRequest({ prompt }, DEFAULT_SAMPLING), ApiError);
    }
    assertEquals(parseEmbeddingRequest({ input: [[1, 2], "x"] }).inputs, [[1, 2], "x"]);
    assertThrows(() => parseEmbeddingRequest({ input: [] }), ApiError);
    assertThrows(() => parseEmbeddingRequest({ input: "x", encoding_format: "hex" }), ApiError);
  },
);
