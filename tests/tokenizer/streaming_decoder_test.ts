/**
 * StreamingDecoder named cases. Oracle: SentencePiece's DecodeIds on the same ids (expected full strings below were
 * produced by python3-sentencepiece 0.1.97 on LLaMA's tokenizer.model) and UTF-8 itself (依 = E4 BE 9D).
 */
import { assertEquals } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { readSentencePieceModel } from "../../src/formats/sentencepiece_model.ts";
import { StreamingDecoder, type Tokenizer, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";

const LLAMA = "models/tokenizers/llama/tokenizer.model";
let tok: Tokenizer | undefined;
const llama = () =>
  tok ??= tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/${LLAMA}`)));
const b = (byte: number) => byte + 3; // <0xXX> ids in LLaMA

Deno.test(
  "StreamingDecoder holds back a Chinese character split over byte tokens until it is whole",
  needsTestData(LLAMA),
  () => {
    const dec = new StreamingDecoder(llama());
    assertEquals([dec.push(29871), dec.push(b(0xe4)), dec.push(b(0xbe)), dec.push(b(0x9d)), dec.flush()], [
      "",
      "",
      "",
      "依",
      "",
    ]);
  },
);

Deno.test("StreamingDecoder drops the dummy-prefix space once, even after BOS", needsTestData(LLAMA), () => {
  const dec = new StreamingDecoder(llama());
  assertEquals([dec.push(1), dec.push(15043), dec.push(3186)], ["", "Hello", " world"]);
  const dec2 = new StreamingDecoder(llama());
  assertEquals([dec2.push(29871), dec2.push(15043)], ["", " Hello"]);
});

Deno.test("StreamingDecoder({continuation: true}) keeps the first piece's space", needsTestData(LLAMA), () => {
  const dec = new StreamingDecoder(llama(), { continuation: true });
  assertEquals(dec.push(15043), " Hello");
});

Deno.test(
  "StreamingDecoder emits U+FFFD per byte for sequences that cannot complete, as SentencePiece",
  needsTestData(LLAMA),
  () => {
    const dec = new StreamingDecoder(llama());
    // E4 BE then a normal piece: two invalid bytes → two U+FFFD (SentencePiece: "��  Hello" for [231,193,29871,15043])
    const out = [dec.push(b(0xe4)), dec.push(b(0xbe)), dec.push(29871), dec.push(15043)].join("");
    assertEquals(out, "\uFFFD\uFFFD  Hello");
    assertEquals(out, llama().decode([231, 193, 29871, 15043]));
    // a lone continuation byte is final immediately; an incomplete lead is flushed as U+FFFD
    const d2 = new StreamingDecoder(llama());
    assertEquals([d2.push(b(0x9d)), d2.push(b(0xf0)), d2.flush()], ["\uFFFD", "", "\uFFFD"]);
  },
);

Deno.test(
  "StreamingDecoder passes a 4-byte emoji through byte tokens and a control token flushes pending bytes",
  needsTestData(LLAMA),
  () => {
    const dec = new StreamingDecoder(llama());
    const parts = [b(0xf0), b(0x9f), b(0xa6), b(0x99)].map((id) => dec.push(id));
    assertEquals(parts, ["", "", "", "🦙"]);
    const d2 = new StreamingDecoder(llama());
    assertEquals([d2.push(b(0xf0)), d2.push(b(0x9f)), d2.push(2)], ["", "", "\uFFFD\uFFFD"]);
  },
);
