/**
 * The alpaca-sft chat template against the SFT data pipeline it must mirror: its first turn is token for token
 * what train/data.ts feeds `sft` (build_dataset.py's template), on the tokenizer yangtuo-poetry was made with.
 * Oracle: the training code path (alpacaPrompt + encode with BOS), which tests/train/data_test.ts checks against
 * the seed's Python.
 */
import { assertEquals } from "../_assert.ts";
import { ALPACA_SFT, ALPACA_SYSTEM, getTemplate } from "../../src/chat/templates.ts";
import { ALPACA_PROMPT_TEMPLATE, alpacaPrompt } from "../../src/train/data.ts";
import { readSentencePieceModel, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";
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
