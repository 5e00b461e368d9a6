/**
 * Tests of the training data pipeline. Oracles: run_clm's group_texts and the seed's build_dataset.py worked by
 * hand on a toy character tokenizer (ids written out below), and, when python3-sentencepiece and the shared
 * tokenizer exist, data_oracle.py (the seed's tokenization re-done in Python with SentencePiece itself).
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { FormatError } from "../../src/core/errors.ts";
import {
  ALPACA_PROMPT_TEMPLATE,
  alpacaPrompt,
  buildSftDataset,
  buildSftExample,
  concatPackedBlocks,
  DataOrder,
  type DataTokenizer,
  IGNORE_INDEX,
  packPretrainBlocks,
  readAlpacaRecords,
  readPretrainTexts,
  seededPermutation,
  splitTrainValidation,
  validationFraction,
} from "../../src/train/data.ts";
import { readSentencePieceModel, tokenizerFromSentencePiece } from "../../src/tokenizer/mod.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** Toy tokenizer: BOS 1, EOS 2, each character c → 10 + code point. */
const toy: DataTokenizer = {
  bosId: 1,
  eosId: 2,
  vocabSize: 1000,
  encode(text, o = {}) {
    const ids = [...text].map((c) => 10 + c.codePointAt(0)!);
    if (o.bos ?? true) ids.unshift(1);
    if (o.eos) ids.push(2);
    return ids;
  },
};

Deno.test("readPretrainTexts() yields every .txt line, empty ones included, like datasets' text loader", () => {
  assertEquals(readPretrainTexts("a.txt", enc("one\n\ntwo\r\nthree\rfour\n")), ["one", "", "two", "three", "four"]);
  assertEquals(readPretrainTexts("a.txt", enc("\ufeffno newline")), ["no newline"]);
  assertEquals(readPretrainTexts("a.txt", enc("")), []);
});

Deno.test("readPretrainTexts() reads the text field of .jsonl lines and names the bad line and field", () => {
  assertEquals(readPretrainTexts("d.jsonl", enc('{"text":"a"}\n\n{"text":"b","x":1}\n')), ["a", "b"]);
  assertThrows(
    () => readPretrainTexts("d.jsonl", enc('{"text":"a"}\n{"txt":"b"}')),
    FormatError,
    'line 2: field "text" is missing',
  );
  assertThrows(() => readPretrainTexts("d.jsonl", enc('{"text":3}')), FormatError, '"text" is a number');
  assertThrows(() => readPretrainTexts("d.jsonl", enc("{oops")), FormatError, "Cannot parse line 1 as JSON");
  assertThrows(() => readPretrainTexts("d.jsonl", enc("[1]")), FormatError, "line 1: expected a JSON object");
  assertThrows(() => readPretrainTexts("d.jsonl", enc("[1]")), FormatError, '"d.jsonl"');
  assertThrows(() => readPretrainTexts("d.csv", enc("x")), FormatError, ".txt or .jsonl");
  assertThrows(() => readPretrainTexts("d.txt", new Uint8Array([0x61, 0xff])), FormatError, "not valid UTF-8");
});

Deno.test("packPretrainBlocks() concatenates with BOS per text and drops each group's remainder", () => {
  // texts "ab", "c", "de" → [1,107,108, 1,109, 1,110,111] = 8 tokens → 2 blocks of 3, 2 dropped
  const p = packPretrainBlocks(["ab", "c", "de"], toy, 3);
  assertEquals([...p.tokens], [1, 107, 108, 1, 109, 1]);
  assertEquals([p.nBlocks, p.nTokens, p.nDropped], [2, 8, 2]);
  // a group shorter than one block gives nothing
  assertEquals(packPretrainBlocks(["a"], toy, 3).nBlocks, 0);
  assertThrows(() => packPretrainBlocks(["a"], toy, 1), RangeError, "block size 1");
});

Deno.test("packPretrainBlocks() groups by 1,000 texts as datasets' batched map does", () => {
  // 1,001 texts of one character: group 1 has 2,000 tokens (→ 666 blocks of 3, 2 dropped), group 2 has 2 (dropped)
  const texts = Array.from({ length: 1001 }, () => "x");
  const p = packPretrainBlocks(texts, toy, 3);
  assertEquals([p.nBlocks, p.nTokens, p.nDropped], [666, 2002, 4]);
});

Deno.test("concatPackedBlocks() puts files' blocks one after another, none spanning two files", () => {
  const a = packPretrainBlocks(["ab", "c"], toy, 2), b = packPretrainBlocks(["de"], toy, 2);
  const c = concatPackedBlocks([a, b]);
  assertEquals([...c.tokens], [1, 107, 108, 1, 1, 110]);
  assertEquals([c.nBlocks, c.nTokens, c.nDropped], [3, 8, 2]);
  assertThrows(() => concatPackedBlocks([a, packPretrainBlocks(["abc"], toy, 3)]), RangeError, "different sizes");
});

Deno.test("alpacaPrompt() is the seed's template, input joined to the instruction with a newline", () => {
  assertEquals(
    alpacaPrompt({ instruction: "Add", input: "1 2", output: "3" }),
    "Below is an instruction that describes a task. Write a response that appropriately completes the request." +
      "\n\n### Instruction:\nAdd\n1 2\n\n### Response: ",
  );
  assertEquals(
    alpacaPrompt({ instruction: "$& {x}", input: "", output: "" }),
    ALPACA_PROMPT_TEMPLATE.replace("{instruction}", () => "$& {x}"),
  );
});

Deno.test("buildSftExample() masks the prompt with -100, appends EOS and truncates to the max length", () => {
  const rec = { instruction: "hi", input: "", output: "yo" };
  const prompt = toy.encode(alpacaPrompt(rec), { bos: true });
  const ex = buildSftExample(rec, toy, 4096);
  assertEquals([...ex.inputIds], [...prompt, 10 + 121, 10 + 111, 2]);
  assertEquals([...ex.labels], [...prompt.map(() => IGNORE_INDEX), 131, 121, 2]);
  const cut = buildSftExample(rec, toy, prompt.length + 1);
  assertEquals([...cut.labels.slice(-2)], [IGNORE_INDEX, 131]);
  assertEquals(cut.inputIds.length, prompt.length + 1);
});

Deno.test("buildSftDataset() skips records whose prompt fills the max length", () => {
  const recs = [{ instruction: "a", input: "", output: "b" }, { instruction: "a".repeat(500), input: "", output: "b" }];
  const d = buildSftDataset(recs, toy, 200);
  assertEquals([d.examples.length, d.nSkipped], [1, 1]);
});

Deno.test("readAlpacaRecords() reads a JSON array or JSON lines; input may be missing or null", () => {
  const arr = '[{"instruction":"i","input":"x","output":"o"},{"instruction":"j","output":"p","input":null}]';
  assertEquals(readAlpacaRecords("a.json", enc(arr)), [
    { instruction: "i", input: "x", output: "o" },
    { instruction: "j", input: "", output: "p" },
  ]);
  assertEquals(readAlpacaRecords("a.jsonl", enc('{"instruction":"i","output":"o"}\n\n')), [
    { instruction: "i", input: "", output: "o" },
  ]);
});

Deno.test("readAlpacaRecords() names the file, record and field of bad input", () => {
  assertThrows(
    () => readAlpacaRecords("a.json", enc('[{"instruction":"i","output":5}]')),
    FormatError,
    'record 0: field "output" is a number',
  );
  assertThrows(() => readAlpacaRecords("a.json", enc('[{"output":"o"}]')), FormatError, '"instruction" is missing');
  assertThrows(() => readAlpacaRecords("a.json", enc("[1,")), FormatError, "Cannot parse Alpaca JSON");
  assertThrows(
    () => readAlpacaRecords("a.json", enc('[{"instruction":"i","output":"o"}, "x"]')),
    FormatError,
    "record 1",
  );
  assertThrows(
    () => readAlpacaRecords("a.jsonl", enc('{"instruction":"i","output":"o"}\n{"instruction":[]}')),
    FormatError,
    "line 2",
  );
  assertThrows(() => readAlpacaRecords("b.json", enc('{"a":1}')), FormatError, '"b.json"');
});

Deno.test("splitTrainValidation() rounds the validation size up and is a seeded partition", () => {
  const s = splitTrainValidation(10, 0.001, 42);
  assertEquals([s.train.length, s.validation.length], [9, 1]);
  const all = [...s.train, ...s.validation].sort((a, b) => a - b);
  assertEquals(all, [...Array(10).keys()]);
  assertEquals(splitTrainValidation(10, 0.001, 42), s);
  assertEquals(splitTrainValidation(10, 0, 1).validation.length, 0);
  assertThrows(() => splitTrainValidation(1, 0.5, 1), RangeError, "none for training");
  assertEquals([validationFraction(0.05), validationFraction(5)], [0.05, 0.05]);
  assertThrows(() => validationFraction(100), RangeError);
});

Deno.test("seededPermutation() is a permutation that depends on the seed", () => {
  const a = seededPermutation(100, 1), b = seededPermutation(100, 2);
  assertEquals([...a].sort((x, y) => x - y), [...Array(100).keys()]);
  assert([...a].join() !== [...b].join());
  assertEquals(seededPermutation(100, 1), a);
});

Deno.test("DataOrder resumed from its cursor draws the same batches as an uninterrupted order", () => {
  const full = new DataOrder(7, 3);
  const batches = Array.from({ length: 6 }, () => full.next(3));
  const first = new DataOrder(7, 3);
  first.next(3);
  first.next(3);
  const resumed = new DataOrder(7, 3, first.cursor);
  assertEquals(Array.from({ length: 4 }, () => resumed.next(3)), batches.slice(2));
  // every epoch visits every example once
  const o = new DataOrder(5, 9);
  assertEquals(o.next(5).sort(), [0, 1, 2, 3, 4]);
  assertEquals(o.next(5).sort(), [0, 1, 2, 3, 4]);
  assertThrows(() => new DataOrder(5, 1, { epoch: 0, position: 6 }), RangeError, "cursor");
});

const TOK = "models/tokenizers/llama/tokenizer.model";

Deno.test("buildSftExample() with the LLaMA tokenizer: the prompt's trailing space and EOS", needsTestData(TOK), () => {
  const tok = tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/${TOK}`)));
  const ex = buildSftExample({ instruction: "Say hi", input: "", output: "Hi" }, tok, 512);
  const promptIds = tok.encode(alpacaPrompt({ instruction: "Say hi", input: "", output: "" }));
  assertEquals(promptIds[0], tok.bosId);
  assertEquals(tok.pieceOf(promptIds.at(-1)!), "▁"); // "### Response: " ends in a lone space piece
  assertEquals([...ex.inputIds.slice(promptIds.length)], [...tok.encode("Hi", { bos: false }), tok.eosId]);
});

Deno.test(
  "packPretrainBlocks() and buildSftExample() equal the seed's preparation redone with SentencePiece (Python)",
  needsTestData(TOK),
  async () => {
    try {
      const p = await new Deno.Command("/usr/bin/python3", { args: ["-c", "import sentencepiece"], stderr: "null" })
        .output();
      if (!p.success) throw new Error("no sentencepiece");
    } catch {
      console.warn("skip: python3-sentencepiece not installed");
      return;
    }
    const model = `${testDataRoot()}/${TOK}`;
    const tok = tokenizerFromSentencePiece(readSentencePieceModel(Deno.readFileSync(model)));
    const dir = await Deno.makeTempDir({ prefix: "yangtuo-data-oracle-" });
    try {
      // > 1,000 lines (two groups), empty lines, Chinese (byte fallback), leading/trailing spaces
      const lines = Array.from(
        { length: 1234 },
        (_, i) =>
          i % 97 === 0
            ? ""
            : i % 13 === 0
            ? `  第${i}行：白日依山尽 `
            : `Line ${i}: the quick brown fox, ${i * 7} times.`,
      );
      Deno.writeTextFileSync(`${dir}/t.txt`, lines.join("\n") + "\n");
      const records = [
        { instruction: "Translate to French", input: "Good morning", output: "Bonjour" },
        { instruction: "用一句话介绍北京", input: "", output: "北京是中国的首都。" },
        { instruction: "List three colours", input: null, output: " red,  green\nblue " },
        { instruction: "x".repeat(300), input: "", output: "cut off" },
      ];
      Deno.writeTextFileSync(`${dir}/a.json`, JSON.stringify(records));
      const args = { model, txt: `${dir}/t.txt`, alpaca: `${dir}/a.json`, block_size: 64, max_seq_length: 96 };
      const script = new URL("./data_oracle.py", import.meta.url).pathname;
      const out = await new Deno.Command("/usr/bin/python3", {
        args: [script, JSON.stringify(args)],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      assert(out.success, new TextDecoder().decode(out.stderr));
      const want = JSON.parse(new TextDecoder().decode(out.stdout)) as {
        blocks: number[][];
        sft: { ids: number[]; labels: number[] }[];
      };
      const texts = readPretrainTexts(`${dir}/t.txt`, Deno.readFileSync(`${dir}/t.txt`));
      const packed = packPretrainBlocks(texts, tok, 64);
      assertEquals(packed.nBlocks, want.blocks.length);
      assertEquals([...packed.tokens], want.blocks.flat());
      const recs = readAlpacaRecords(`${dir}/a.json`, Deno.readFileSync(`${dir}/a.json`));
      recs.forEach((r, i) => {
        const ex = buildSftExample(r, tok, 96);
        assertEquals([...ex.inputIds], want.sft[i].ids, `record ${i} ids`);
        assertEquals([...ex.labels], want.sft[i].labels, `record ${i} labels`);
      });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
