/**
 * Tests of the make-model corpus functions (pure: permissions "none"). Oracles: hand-written records shaped like
 * chinese-poetry's poet.tang.N.json, with the expected cleaning and forms worked out by hand.
 */
import { assert_ as assert, assertEquals } from "../_assert.ts";
import {
  charsQuestionRecord,
  checkForm,
  cleanPoem,
  continueRecord,
  dedupePoems,
  fnv1a32,
  formName,
  generateInstructions,
  isHeldOut,
  type Poem,
  poemPretrainText,
  requestedForm,
  writePoemRecord,
} from "../../src/train/poetry.ts";
import { mulberry32 } from "../../src/core/mulberry32.ts";

const NONE = { permissions: "none" } as const;

const JINGYESI = {
  author: "李白",
  title: "靜夜思",
  paragraphs: ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"],
};

function poem(title: string, lines: string[], author = "某"): Poem {
  const p = cleanPoem({
    author,
    title,
    paragraphs: lines.map((l, i) => l + (i % 2 === 0 ? "，" : "。")),
  });
  if (!p) throw new Error(`bad test poem ${title}`);
  return p;
}

Deno.test("cleanPoem() keeps a five-character quatrain with its punctuation", NONE, () => {
  const p = cleanPoem(JINGYESI)!;
  assertEquals(p.lines, ["床前明月光", "疑是地上霜", "舉頭望明月", "低頭思故鄉"]);
  assertEquals(p.text, "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。");
  assertEquals(p.lineChars, 5);
  assertEquals(formName(p.lineChars, p.lines.length), "五言絕句");
  assertEquals(poemPretrainText(p), "《靜夜思》李白：床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。");
});

Deno.test("cleanPoem() removes editorial notes and title suffixes after a space", NONE, () => {
  const p = cleanPoem({
    author: "杜甫",
    title: "春望 其一",
    paragraphs: ["國破山河在（一作存），城春草木深。", "感時花濺淚，恨別鳥驚心。"],
  })!;
  assertEquals(p.title, "春望");
  assertEquals(p.lines[0], "國破山河在");
});

Deno.test("cleanPoem() rejects unclean records", NONE, () => {
  assertEquals(cleanPoem({ author: "甲", title: "乙", paragraphs: ["床前□月光，疑是地上霜。"] }), null); // □ gap
  assertEquals(cleanPoem({ author: "甲", title: "乙", paragraphs: ["床前明月光"] }), null); // no punctuation
  assertEquals(cleanPoem({ author: "甲", title: "乙", paragraphs: ["床前明月光。"] }), null); // one line
  assertEquals(cleanPoem({ author: "", title: "乙", paragraphs: JINGYESI.paragraphs }), null);
  assertEquals(cleanPoem({ author: "甲", title: "A title", paragraphs: JINGYESI.paragraphs }), null);
  assertEquals(cleanPoem({ author: "甲", title: "乙", paragraphs: ["a，b。"] }), null);
  assertEquals(cleanPoem({ author: "甲", title: "乙", paragraphs: "床前明月光，疑是地上霜。" } as never), null);
  assertEquals(cleanPoem(null as never), null);
  const long = Array.from({ length: 20 }, () => "一二三四五，");
  assertEquals(cleanPoem({ author: "甲", title: "乙", paragraphs: long }), null); // too many lines
});

Deno.test("cleanPoem() marks irregular poems with lineChars 0", NONE, () => {
  const p = cleanPoem({ author: "甲", title: "乙", paragraphs: ["一二三四五，一二三四五六七。"] })!;
  assertEquals(p.lineChars, 0);
  assertEquals(formName(p.lineChars, p.lines.length), null);
});

Deno.test("fnv1a32() matches the published FNV-1a test vectors", NONE, () => {
  assertEquals(fnv1a32(""), 0x811c9dc5);
  assertEquals(fnv1a32("a"), 0xe40c292c);
  assertEquals(fnv1a32("foobar"), 0xbf9cf968);
});

Deno.test("isHeldOut() is a fixed split: the same poem always lands on the same side, at about the rate", NONE, () => {
  const p = cleanPoem(JINGYESI)!;
  assertEquals(isHeldOut(p, 20), isHeldOut({ ...p }, 20));
  assertEquals(isHeldOut(p, 0), false);
  assertEquals(isHeldOut(p, 1000), true);
  let held = 0;
  for (let i = 0; i < 5000; i++) if (isHeldOut({ ...p, title: `題${i}` }, 20)) held++;
  assert(held > 50 && held < 150, `held ${held} of 5000 at 2 %`);
});

Deno.test("dedupePoems() keeps the first of identical texts", NONE, () => {
  const a = cleanPoem(JINGYESI)!;
  const b = { ...a, title: "夜思" };
  assertEquals(dedupePoems([a, b]).map((p) => p.title), ["靜夜思"]);
});

Deno.test("requestedForm() and checkForm() score replies against the requested form", NONE, () => {
  const f = requestedForm("寫一首題為《秋夕》的七言絕句。")!;
  assertEquals(f, { lineChars: 7, nLines: 4 });
  assertEquals(requestedForm("以《春望》為題，作一首五言律詩。"), { lineChars: 5, nLines: 8 });
  assertEquals(requestedForm("你好"), null);
  const good = "銀燭秋光冷畫屏，輕羅小扇撲流螢。天階夜色涼如水，臥看牽牛織女星。";
  assertEquals(checkForm(good, f).follows, true);
  assertEquals(checkForm(good + "\n", f).follows, true);
  // right line length, wrong count
  const c = checkForm("銀燭秋光冷畫屏，輕羅小扇撲流螢。", f);
  assertEquals([c.follows, c.lineLengthOk], [false, true]);
  // a five-character line in a seven-character request
  assertEquals(checkForm("銀燭秋光冷，輕羅小扇撲流螢。天階夜色涼如水，臥看牽牛織女星。", f).lineLengthOk, false);
  // English noise, an empty reply and unk surfaces never count
  assertEquals(checkForm("Once upon a time, there was a cat.", f).follows, false);
  assertEquals(checkForm("", f).lineLengthOk, false);
  assertEquals(checkForm(" ⁇ 燭秋光冷畫屏，輕羅小扇撲流螢。天階夜色涼如水，臥看牽牛織女星。", f).follows, false);
});

Deno.test("record builders produce the Alpaca records of each kind", NONE, () => {
  const p = cleanPoem(JINGYESI)!;
  const w = writePoemRecord(p, () => 0)!;
  assertEquals(w, { instruction: "寫一首題為《靜夜思》的五言絕句。", input: "", output: p.text });
  assertEquals(continueRecord(p), {
    instruction: "續寫下面這首詩。",
    input: "床前明月光，",
    output: "疑是地上霜。舉頭望明月，低頭思故鄉。",
  });
  assertEquals(charsQuestionRecord(p)!.output, "這首詩每句5個字，是五言詩。");
  const irregular = cleanPoem({ author: "甲", title: "乙", paragraphs: ["一二三四五，一二三四五六七。"] })!;
  assertEquals(writePoemRecord(irregular, () => 0), null);
  assertEquals(charsQuestionRecord(irregular), null);
});

Deno.test("generateInstructions() is seeded and keeps held-out poem titles out of training", NONE, () => {
  const five = ["一二三四五", "六七八九十", "甲乙丙丁戊", "己庚辛壬癸"];
  const seven = ["一二三四五六七", "八九十甲乙丙丁", "戊己庚辛壬癸子", "丑寅卯辰巳午未"];
  const train = Array.from(
    { length: 40 },
    (_, i) => poem(`訓${String.fromCharCode(0x4e00 + i)}`, i % 2 ? five : seven),
  );
  const held = Array.from({ length: 10 }, (_, i) => poem(`留${String.fromCharCode(0x4e00 + i)}`, i % 2 ? seven : five));
  const a = generateInstructions(train, held, { seed: 7, maxPerKind: 20, maxHeldOut: 10 });
  const b = generateInstructions(train, held, { seed: 7, maxPerKind: 20, maxHeldOut: 10 });
  assertEquals(a, b);
  assert(a.train.length >= 20 + 10 + 5, `${a.train.length} training records`);
  assertEquals(a.heldOut.length, 10);
  for (const r of a.train) assert(!r.instruction.includes("留"), `held-out title in training: ${r.instruction}`);
  const requests = a.heldOut.filter((r) => requestedForm(r.instruction) !== null);
  assertEquals(requests.length, 7);
  // the reference answer of every held-out poem request follows its own form
  for (const r of requests) assertEquals(checkForm(r.output, requestedForm(r.instruction)!).follows, true);
  assert(a.train.some((r) => r.instruction === "你好"), "conversational turns included");
});

Deno.test("mulberry32() is deterministic and in [0, 1)", NONE, () => {
  const r1 = mulberry32(3), r2 = mulberry32(3);
  for (let i = 0; i < 100; i++) {
    const x = r1();
    assertEquals(x, r2());
    assert(x >= 0 && x < 1);
  }
});
