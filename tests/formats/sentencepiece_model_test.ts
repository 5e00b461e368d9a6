/**
 * SentencePiece .model reader/writer. Oracles: the real files in ../shared/data (protobuf-written by SentencePiece
 * and by the seed's merge script; read → write must reproduce them byte for byte), hand-built protobuf for named
 * hostile cases, truncation at every byte of tok105.model, and a seeded mutation fuzz (YANGTUO_FUZZ_CASES, default
 * 2,000) in which only FormatError / UnsupportedError may escape.
 */
import { assert, assertBytesEqual, assertEquals, assertThrows } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { needsTestData, testDataRoot } from "../_fixtures.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { ProtoWriter } from "../../src/formats/protobuf.ts";
import {
  MODEL_BPE,
  readSentencePieceModel,
  type SentencePieceModel,
  writeSentencePieceModel,
} from "../../src/formats/sentencepiece_model.ts";
import { tokenizerFromSentencePiece } from "../../src/tokenizer/tokenizer.ts";

const MODELS = [
  "models/tokenizers/llama/tokenizer.model",
  "models/tokenizers/chinese_sp/chinese_sp.model",
  "models/tokenizers/chinese-llama/tokenizer.model",
  "models/tokenizers/chinese-alpaca/tokenizer.model",
  "models/tokenizers/chinese-llama2/tokenizer.model",
  "models/babyllama105/tok105.model",
];
const TOK105 = "models/babyllama105/tok105.model";

Deno.test("readSentencePieceModel() then writeSentencePieceModel() reproduces all six real models byte for byte", {
  ...needsTestData(...MODELS),
}, () => {
  for (const rel of MODELS) {
    const bytes = Deno.readFileSync(`${testDataRoot()}/${rel}`);
    const model = readSentencePieceModel(bytes, rel);
    assertBytesEqual(writeSentencePieceModel(model), bytes, rel);
  }
});

Deno.test("readSentencePieceModel() reads LLaMA's pieces, types and specs", needsTestData(MODELS[0]), () => {
  const m = readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/${MODELS[0]}`));
  assertEquals(m.pieces.length, 32000);
  assertEquals(m.pieces.slice(0, 4).map((p) => [p.piece, p.type]), [["<unk>", 2], ["<s>", 3], ["</s>", 3], [
    "<0x00>",
    6,
  ]]);
  assertEquals(m.pieces[29871].piece, "▁");
  assertEquals(m.trainerSpec?.modelType, MODEL_BPE);
  assertEquals([m.trainerSpec?.byteFallback, m.trainerSpec?.padId, m.trainerSpec?.vocabSize], [true, -1, 32000]);
  assertEquals([m.normalizerSpec?.name, m.normalizerSpec?.addDummyPrefix, m.normalizerSpec?.removeExtraWhitespaces], [
    "identity",
    true,
    false,
  ]);
});

Deno.test("readSentencePieceModel() reads chinese_sp's UNIGRAM defaults and its nmt_nfkc charsmap", {
  ...needsTestData(MODELS[1]),
}, () => {
  const m = readSentencePieceModel(Deno.readFileSync(`${testDataRoot()}/${MODELS[1]}`));
  assertEquals(m.pieces.length, 20000);
  assertEquals(m.trainerSpec?.modelType, undefined); // absent → UNIGRAM
  assertEquals(m.normalizerSpec?.name, "nmt_nfkc");
  assertEquals(m.normalizerSpec?.precompiledCharsmap?.length, 237561);
});

/** A minimal valid model: <unk>, <s>, </s>, ▁, a, b, ab; BPE. */
function tinyModel(): SentencePieceModel {
  return {
    pieces: [
      { piece: "<unk>", score: 0, type: 2 },
      { piece: "<s>", score: 0, type: 3 },
      { piece: "</s>", score: 0, type: 3 },
      { piece: "▁", score: -1 },
      { piece: "a", score: -2 },
      { piece: "b", score: -3 },
      { piece: "ab", score: -0.5 },
    ],
    trainerSpec: { modelType: MODEL_BPE, vocabSize: 7 },
    normalizerSpec: { name: "identity", addDummyPrefix: true, removeExtraWhitespaces: false },
  };
}

Deno.test("writeSentencePieceModel() output reads back equal, unknown fields kept in field order", () => {
  const m = tinyModel();
  const bytes = writeSentencePieceModel(m);
  const back = readSentencePieceModel(bytes);
  assertEquals(back.pieces, m.pieces);
  assertEquals(back.trainerSpec, m.trainerSpec);
  // Splice an unknown trainer field 10 (float) between known fields 4 and 24 and an unknown top-level field 99.
  const trainer = new ProtoWriter().int32(3, 2).int32(4, 7).float32(10, 0.9995).bool(25, true).finish();
  const file = new ProtoWriter().bytes(1, new ProtoWriter().string(1, "<unk>").int32(3, 2).finish()).bytes(2, trainer)
    .string(99, "extra").finish();
  const m2 = readSentencePieceModel(file);
  assertEquals(m2.trainerSpec?.unknownFields?.map((f) => f.field), [10]);
  assertEquals(m2.unknownFields?.map((f) => f.field), [99]);
  assertBytesEqual(writeSentencePieceModel(m2), file);
});

Deno.test("writeSentencePieceModel() encodes pieces of 1- to 4-byte UTF-8 and lone surrogates as TextEncoder does", () => {
  const sets = [
    ["a", "\u00e9t\u00e9", "\u4e2d\u6587", "\u{1f600}x", "\u2581\u{20000}", "<0x0A>"],
    ["\ud800", "\udc00", "b\ud83d", "\ude00c"], // lone halves that a join would pair up
  ];
  for (const pieces of sets) {
    const want = new ProtoWriter();
    for (const [i, p] of pieces.entries()) want.bytes(1, new ProtoWriter().string(1, p).float32(2, -i).finish());
    const got = writeSentencePieceModel({ pieces: pieces.map((piece, i) => ({ piece, score: -i })) });
    assertBytesEqual(got, want.finish());
  }
});

const hostile: [string, () => Uint8Array, string][] = [
  ["a piece with wire type 0", () => new ProtoWriter().uint64(1, 5).finish(), "wire type 0"],
  [
    "a score with wire type 2",
    () => new ProtoWriter().bytes(1, new ProtoWriter().string(1, "a").bytes(2, new Uint8Array(4)).finish()).finish(),
    "score",
  ],
  [
    "an empty piece",
    () => new ProtoWriter().bytes(1, new ProtoWriter().float32(2, 1).finish()).finish(),
    "piece 0 is empty",
  ],
  [
    "a piece that is not UTF-8",
    () => new ProtoWriter().bytes(1, new ProtoWriter().bytes(1, new Uint8Array([0xff])).finish()).finish(),
    "not valid UTF-8",
  ],
  [
    "trainer_spec twice",
    () => new ProtoWriter().bytes(2, new Uint8Array(0)).bytes(2, new Uint8Array(0)).finish(),
    "twice",
  ],
  ["an absurd piece length", () => new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x07, 0]), "exceeds"],
  ["a group wire type", () => new Uint8Array([0x0b, 0x0c]), "group"],
];
for (const [name, make, msg] of hostile) {
  Deno.test(`readSentencePieceModel() rejects ${name}`, () => {
    assertThrows(() => readSentencePieceModel(make()), FormatError, msg);
  });
}

/** Only these may escape from reading or building a tokenizer from hostile bytes. */
function tryAll(bytes: Uint8Array): "ok" | "format" | "unsupported" {
  let model: SentencePieceModel;
  try {
    model = readSentencePieceModel(bytes);
  } catch (e) {
    if (e instanceof FormatError) return "format";
    throw e;
  }
  // Whatever parsed must write back, and writing is idempotent through a re-read (canonical field order).
  const written = writeSentencePieceModel(model);
  const again = readSentencePieceModel(written);
  assertBytesEqual(writeSentencePieceModel(again), written);
  assertEquals(
    again.pieces.map((p) => [p.piece, p.score, p.type]),
    model.pieces.map((p) => [p.piece, p.score, p.type]),
  );
  try {
    const tok = tokenizerFromSentencePiece(model);
    const ids = tok.encode("Hello wörld 你好 🦙\t ", { bos: true, eos: true });
    tok.decode(ids);
  } catch (e) {
    if (e instanceof FormatError) return "format";
    if (e instanceof UnsupportedError) return "unsupported";
    throw e;
  }
  return "ok";
}

Deno.test("readSentencePieceModel() on tok105.model cut at every byte: FormatError or a valid prefix", {
  ...needsTestData(TOK105),
}, () => {
  const bytes = Deno.readFileSync(`${testDataRoot()}/${TOK105}`);
  let rejected = 0;
  for (let n = 0; n < bytes.length; n++) {
    const cut = bytes.subarray(0, n);
    let model: SentencePieceModel | undefined;
    try {
      model = readSentencePieceModel(cut);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      rejected++;
    }
    // A cut that parses is a field boundary: writing it back gives exactly the cut bytes.
    if (model) assertBytesEqual(writeSentencePieceModel(model), cut, `cut at ${n}`);
    tryAll(cut);
  }
  assert(rejected > bytes.length * 0.9, `only ${rejected} of ${bytes.length} cuts rejected`);
});

Deno.test("readSentencePieceModel() + tokenizer survive a seeded mutation fuzz of tok105.model", {
  ...needsTestData(TOK105),
}, () => {
  const bytes = Deno.readFileSync(`${testDataRoot()}/${TOK105}`);
  const cases = Number(Deno.env.get("YANGTUO_FUZZ_CASES") ?? 2000);
  const r = mulberry32(0x5e17);
  const counts = { ok: 0, format: 0, unsupported: 0 };
  for (let c = 0; c < cases; c++) {
    const m = Array.from(bytes);
    const edits = 1 + Math.floor(r() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(r() * m.length);
      const kind = r();
      if (kind < 0.5) m[at] = Math.floor(r() * 256);
      else if (kind < 0.7) m[at] ^= 1 << Math.floor(r() * 8);
      else if (kind < 0.85) m.splice(at, 1);
      else m.splice(at, 0, Math.floor(r() * 256));
    }
    counts[tryAll(new Uint8Array(m))]++;
  }
  assert(counts.ok > 0 && counts.format > 0, JSON.stringify(counts));
});
