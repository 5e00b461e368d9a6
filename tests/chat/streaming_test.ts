/**
 * Streaming Chinese through a chat reply with the project's real Tokenizer and StreamingDecoder, on a SentencePiece
 * vocabulary that has no Chinese pieces (the random-model vocabulary: <unk> <s> </s>, 256 byte tokens, ASCII
 * pieces), so every Chinese character arrives as 3 byte-fallback tokens and emoji as 4.
 * Oracle: the tokenizer's own whole-sequence decode(ids) (itself checked against SentencePiece in
 * tests/tokenizer), and the absence of U+FFFD in every streamed chunk.
 */
import { assert, assertEquals } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { ChatSession } from "../../src/chat/session.ts";
import { ALPACA } from "../../src/chat/templates.ts";
import { randomVocabMetadata } from "../../fixtures/random_model.ts";
import { type Tokenizer, tokenizerFromGgufMetadata } from "../../src/tokenizer/mod.ts";
import { FakeEngine } from "./_fake_engine.ts";

const VOCAB = 400;

function byteFallbackTokenizer(): Tokenizer {
  const meta = new Map<string, unknown>(randomVocabMetadata(VOCAB).map((kv) => [kv.key, kv.value]));
  return tokenizerFromGgufMetadata(meta);
}

const isByte = (tok: Tokenizer, id: number) => /^<0x[0-9A-F]{2}>$/.test(tok.pieceOf(id));

/** Streams `answer` as the model's reply; returns the chunks and the reply. */
async function streamReply(tok: Tokenizer, answer: string) {
  const ids = tok.encode(answer, { bos: false });
  let start = -1;
  const engine = new FakeEngine(
    4096,
    (ctx) => {
      const k = ctx.length - start;
      return k >= 0 && k < ids.length ? ids[k] : tok.eosId;
    },
    tok,
    VOCAB,
  );
  const session = new ChatSession(engine, { sampler: { temperature: 0, repeatPenalty: 1 } });
  start = session.contextTokens.length + ALPACA.turn(session.tokenizer, "问", 0).length;
  const chunks: string[] = [];
  const reply = await session.respond("问", { onText: (s) => chunks.push(s) });
  return { ids, chunks, reply };
}

Deno.test("chat streams byte-fallback Chinese whole: streamed text equals decode(ids), never U+FFFD", async () => {
  const tok = byteFallbackTokenizer();
  const answer = "北京是中国的首都，有三千多年的历史。🐑 Alpaca 羊驼!";
  const { ids, chunks, reply } = await streamReply(tok, answer);
  // the premise: Chinese really did fall back to bytes
  assert(ids.filter((id) => isByte(tok, id)).length >= 3 * 20, "Chinese characters are byte-fallback tokens");
  assertEquals(reply.tokenIds.slice(0, -1), ids);
  assertEquals(chunks.join(""), tok.decode(ids));
  assertEquals(reply.text, tok.decode(ids));
  for (const c of chunks) assert(!c.includes("\uFFFD"), `chunk ${JSON.stringify(c)} contains U+FFFD`);
  // characters come out whole, one byte token at a time: no chunk ends inside a surrogate pair either
  for (const c of chunks) assert(!/[\uD800-\uDBFF]$/.test(c), `chunk ${JSON.stringify(c)} splits a surrogate pair`);
});

Deno.test("chat streaming equals decode(ids) on seeded random Chinese / emoji / ASCII replies", async () => {
  const tok = byteFallbackTokenizer();
  const rand = mulberry32(42);
  const parts = ["北京", "羊驼", "你好", "，", "。", "🐑", "😀", "ab", " the", " ", "\n", "Ω", "é", "中文字符", "x"];
  for (let trial = 0; trial < 40; trial++) {
    let text = "";
    const n = 1 + Math.floor(rand() * 12);
    for (let i = 0; i < n; i++) text += parts[Math.floor(rand() * parts.length)];
    const { ids, chunks } = await streamReply(tok, text);
    const joined = chunks.join("");
    assertEquals(joined, tok.decode(ids), JSON.stringify(text));
    assert(!joined.includes("\uFFFD"), JSON.stringify(text));
  }
});
