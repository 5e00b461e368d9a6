/**
 * The alpaca-sft chat template against the SFT data pipeline it must mirror: its first turn is token for token
 * what train/data.ts feeds `sft` (build_dataset.py's template), on the tokenizer yangtuo-poetry was made with.
 * Oracle: the training code path (alpacaPrompt + encode with BOS), which tests/train/data_test.ts checks against
 * the seed's Python.
 */
import { assertEquals } from "../_assert.ts";
import { ALPACA_SFT, ALPACA_SYSTEM, getTemplate, templateForModel } from "../../src/chat/templates.ts";
import { ALPACA_PROMPT_TEMPLATE, ALPACA_SFT_CHAT_TEMPLATE, alpacaPrompt } from "../../src/train/data.ts";
import { ggufChatTemplate, readSentencePieceModel, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { BytesSource } from "../../src/core/byte_source.ts";
import { testDataPath } from "../_fixtures.ts";

Deno.test("alpaca-sft's text is the SFT prompt template (one home each side; they must agree)", () => {
  assertEquals(getTemplate("alpaca-sft"), ALPACA_SFT);
  assertEquals(ALPACA_PROMPT_TEMPLATE.startsWith(ALPACA_SYSTEM), true);
  const fake = {
    bosId: 1,
    eosId: 2,
    encode: (
      text: string,
      o?: { bos?: boolean },
    ) => [...(o?.bos ? [1] : []), ...[...text].map((c) => c.codePointAt(0)!)],
  };
  const ids = [...ALPACA_SFT.preamble(fake, ALPACA_SYSTEM), ...ALPACA_SFT.turn(fake, "你好", 0)];
  assertEquals(ids, fake.encode(alpacaPrompt({ instruction: "你好", input: "", output: "" }), { bos: true }));
  // later turns start again with BOS
  assertEquals(ALPACA_SFT.turn(fake, "再見", 1)[0], 1);
});

Deno.test("alpaca-sft's first turn tokenizes as the SFT data on babyllama's tokenizer", () => {
  const path = testDataPath("models/babyllama105/tok105.model");
  if (!path) return;
  const tok = tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(path)));
  for (const user of ["Tell me a story.", "寫一首題為《春夜》的五言絕句。", "a\nb"]) {
    const ids = [...ALPACA_SFT.preamble(tok, ALPACA_SYSTEM), ...ALPACA_SFT.turn(tok, user, 0)];
    assertEquals(ids, tok.encode(alpacaPrompt({ instruction: user, input: "", output: "" }), { bos: true }));
  }
});

Deno.test("the SFT chat template (Jinja, as sft records it) renders what alpaca-sft sends; the model picks alpaca-sft", async () => {
  assertEquals(templateForModel(ALPACA_SFT_CHAT_TEMPLATE)?.name, "alpaca-sft");
  // oracle: Jinja2 (Debian python3-jinja2), the engine HF's apply_chat_template renders with
  const messages = [
    { role: "user", content: "寫一首詩。" },
    { role: "assistant", content: "春眠不覺曉，\n處處聞啼鳥。" },
    { role: "user", content: "再寫一首 'x' {{y}}" },
  ];
  const script = "import sys, json, jinja2\n" +
    "a = json.loads(sys.stdin.read())\n" +
    "sys.stdout.write(jinja2.Environment().from_string(a['t']).render(messages=a['m'], bos_token='<s>', eos_token='</s>'))";
  let rendered: string;
  try {
    const p = new Deno.Command("/usr/bin/python3", {
      args: ["-c", script],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify({ t: ALPACA_SFT_CHAT_TEMPLATE, m: messages })));
    await w.close();
    const o = await p.output();
    if (!o.success) {
      console.warn(`skip: Jinja2 oracle (${new TextDecoder().decode(o.stderr).trim().split("\n").at(-1)})`);
      return;
    }
    rendered = new TextDecoder().decode(o.stdout);
  } catch {
    console.warn("skip: Jinja2 oracle (/usr/bin/python3 not found)");
    return;
  }
  // ours: the template's tokens over a tokenizer whose ids are code points (BOS/EOS as their HF strings)
  const BOS = -1, EOS = -2;
  const tok = {
    bosId: BOS,
    eosId: EOS,
    encode: (
      text: string,
      o?: { bos?: boolean },
    ) => [...(o?.bos ? [BOS] : []), ...[...text].map((c) => c.codePointAt(0)!)],
  };
  const ids = [
    ...ALPACA_SFT.preamble(tok, ALPACA_SYSTEM),
    ...ALPACA_SFT.turn(tok, messages[0].content, 0),
    ...tok.encode(messages[1].content),
    EOS,
    ...ALPACA_SFT.turn(tok, messages[2].content, 1),
  ];
  assertEquals(ids.map((i) => i === BOS ? "<s>" : i === EOS ? "</s>" : String.fromCodePoint(i)).join(""), rendered);
});

Deno.test("the shipped default model names its own prompt: chat, serve and the web page pick alpaca-sft from it", () => {
  const path = new URL("../../models/yangtuo-poetry/yangtuo-poetry-q8_0.gguf", import.meta.url).pathname;
  for (const file of [path, path.replace("q8_0", "q4_0")]) {
    const meta = readGguf(new BytesSource(Deno.readFileSync(file))).metadata as Map<string, unknown>;
    assertEquals(ggufChatTemplate(meta), ALPACA_SFT_CHAT_TEMPLATE, file);
    assertEquals(templateForModel(ggufChatTemplate(meta))?.name, "alpaca-sft");
  }
});
