/**
 * Tests for the llama2.c checkpoint and tokenizer.bin readers. Oracles: ../shared/data/models/PROVENANCE.md (the
 * BabyLlama header and size formula, tokenizer.bin facts), offsets computed by hand from its layout list, and small
 * checkpoints built in the test with every float set to its own index so each tensor's first value is known.
 */
import { BytesSource } from "../../src/core/byte_source.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { readTensorBytes } from "../../src/formats/gguf.ts";
import { readLlama2cLayout, readLlama2cTokenizer } from "../../src/formats/llama2c.ts";
import { readLlama2c } from "../../src/model/llama2c_gguf.ts";
import { FileSource } from "../../src/io/file_source.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { needsTestData, testDataPath } from "../_fixtures.ts";
import { assertEveryTruncationFails, fuzzCases, fuzzParser } from "./_fuzz.ts";

/** Read here, at load time: the tests themselves run without permissions. */
const FUZZ_CASES = fuzzCases(2000);
const none = { permissions: "none" } as const;

/** A checkpoint whose float k (0-based after the header) is k, so a tensor's first value is its float index. */
function checkpoint(h: number[], nFloats?: number): Uint8Array {
  const [dim, hidden, L, nh, nkv, vocab, seq] = h;
  const hs = dim / nh, kv = nkv * hs, V = Math.abs(vocab);
  const n = nFloats ??
    V * dim + L * dim + 2 * L * dim * dim + 2 * L * kv * dim + L * dim + 3 * L * hidden * dim + dim + seq * hs +
      (vocab < 0 ? V * dim : 0);
  const b = new Uint8Array(28 + 4 * n);
  const v = new DataView(b.buffer);
  h.forEach((x, i) => v.setInt32(4 * i, x, true));
  for (let k = 0; k < n; k++) v.setFloat32(28 + 4 * k, k, true);
  return b;
}

function firstFloat(src: BytesSource, t: { byteOffset: number; nBytes: number; name: string }): number {
  const b = readTensorBytes(src, { ...t, dtype: "F32", shape: [] });
  return new DataView(b.buffer, b.byteOffset).getFloat32(0, true);
}

Deno.test("readLlama2c() lays out tensors in llama2.c order with GGUF names (untied classifier)", none, () => {
  // dim 8, hidden 12, 2 layers, 4 heads, 2 kv heads (hs 2, kv_dim 4), vocab -5 (untied), seq 3
  const bytes = checkpoint([8, 12, 2, 4, 2, -5, 3]);
  const src = new BytesSource(bytes);
  const f = readLlama2c(src);
  assertEquals(f.config, {
    dim: 8,
    hiddenDim: 12,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    vocabSize: 5,
    seqLen: 3,
    sharedClassifier: false,
    headSize: 2,
  });
  const byName = new Map(f.tensors.map((t) => [t.name, t]));
  // float indices by hand: emb 40; rms_att 2×8; wq 2×64; wk 2×32; wv 2×32; wo 2×64; rms_ffn 2×8;
  // w1 2×96; w2 2×96; w3 2×96; rms_final 8; freq 3×2; wcls 40
  const expect: [string, number, number[]][] = [
    ["token_embd.weight", 0, [5, 8]],
    ["blk.0.attn_norm.weight", 40, [8]],
    ["blk.1.attn_norm.weight", 48, [8]],
    ["blk.0.attn_q.weight", 56, [8, 8]],
    ["blk.1.attn_q.weight", 120, [8, 8]],
    ["blk.0.attn_k.weight", 184, [4, 8]],
    ["blk.1.attn_k.weight", 216, [4, 8]],
    ["blk.0.attn_v.weight", 248, [4, 8]],
    ["blk.0.attn_output.weight", 312, [8, 8]],
    ["blk.1.attn_output.weight", 376, [8, 8]],
    ["blk.0.ffn_norm.weight", 440, [8]],
    ["blk.0.ffn_gate.weight", 456, [12, 8]],
    ["blk.1.ffn_gate.weight", 552, [12, 8]],
    ["blk.0.ffn_down.weight", 648, [8, 12]],
    ["blk.0.ffn_up.weight", 840, [12, 8]],
    ["blk.1.ffn_up.weight", 936, [12, 8]],
    ["output_norm.weight", 1032, [8]],
    ["output.weight", 1046, [5, 8]],
  ];
  for (const [name, first, shape] of expect) {
    const t = byName.get(name);
    assert(t, name);
    assertEquals([t.shape, t.dtype, firstFloat(src, t)], [shape, "F32", first], name);
  }
  assertEquals(f.tensors.length, 2 + 9 * 2 + 1);
  assertEquals(byName.get("output.weight")!.byteOffset + 160, bytes.length);
});

Deno.test("readLlama2c() marks a positive vocab as a shared classifier with no output tensor", none, () => {
  const f = readLlama2c(new BytesSource(checkpoint([8, 12, 1, 4, 4, 5, 3])));
  assert(f.config.sharedClassifier);
  assertEquals(f.tensors.some((t) => t.name === "output.weight"), false);
});

Deno.test(
  "readLlama2cLayout() lists run.c's fields layer by layer (offsets in the file's field-major order), with no names",
  none,
  () => {
    const f = readLlama2cLayout(new BytesSource(checkpoint([8, 12, 2, 4, 4, -5, 3])));
    const perLayer = ["rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight", "w1", "w2", "w3"];
    assertEquals(f.tensors.map((t) => (t.layer === undefined ? t.field : `${t.field}[${t.layer}]`)), [
      "token_embedding_table",
      ...[0, 1].flatMap((l) => perLayer.map((w) => `${w}[${l}]`)),
      "rms_final_weight",
      "wcls",
    ]);
    assertEquals(f.tensors.some((t) => "name" in t), false);
  },
);

const BABY = "models/babyllama105/model5000.bin";

Deno.test("readLlama2c() imports babyllama105 with the configuration its PROVENANCE gives", needsTestData(BABY), () => {
  using src = new FileSource(testDataPath(BABY)!);
  const f = readLlama2c(src);
  assertEquals(f.config, {
    dim: 128,
    hiddenDim: 352,
    nLayers: 5,
    nHeads: 8,
    nKvHeads: 4,
    vocabSize: 105,
    seqLen: 256,
    sharedClassifier: true,
    headSize: 16,
  });
  assertEquals(src.size, 3762204);
  assertEquals(f.tensors.length, 2 + 9 * 5);
  const norm = f.tensors.find((t) => t.name === "output_norm.weight")!;
  // 28 + 4·(emb 13440 + rms 640 + wq 81920 + wk 40960 + wv 40960 + wo 81920 + rms 640 + 3·225280)
  assertEquals(norm.byteOffset, 28 + 4 * (13440 + 640 + 81920 + 40960 + 40960 + 81920 + 640 + 675840));
  assertEquals(norm.byteOffset + 4 * 128 + 4 * 256 * 16, src.size);
  const k4 = f.tensors.find((t) => t.name === "blk.4.attn_k.weight")!;
  assertEquals(k4.shape, [64, 128]);
});

const TOK = "models/tokenizers/llama/tokenizer.bin";

Deno.test(
  "readLlama2cTokenizer() reads llama2.c's LLaMA tokenizer.bin as PROVENANCE describes",
  needsTestData(TOK),
  () => {
    const t = readLlama2cTokenizer(Deno.readFileSync(testDataPath(TOK)!));
    assertEquals(t.maxTokenLength, 27);
    assertEquals(t.pieces.length, 32000);
    assertEquals(t.pieces.slice(0, 4), ["<unk>", "\n<s>\n", "\n</s>\n", "<0x00>"]);
    assertEquals(t.pieces[258], "<0xFF>");
    assert(!t.pieces.some((p) => p.includes("▁")), "▁ is stored as a space");
    assert(t.pieces.includes(" the"));
    assertEquals(Math.max(...t.pieceBytes.map((b) => b.length)), 27);
    const same = readLlama2cTokenizer(Deno.readFileSync(testDataPath(TOK)!), 32000);
    assertEquals(same.scores, t.scores);
  },
);

function tokBin(pieces: string[], scores: number[], maxLen = 8): Uint8Array {
  const enc = pieces.map((p) => new TextEncoder().encode(p));
  const b = new Uint8Array(4 + enc.reduce((s, e) => s + 8 + e.length, 0));
  const v = new DataView(b.buffer);
  v.setInt32(0, maxLen, true);
  let o = 4;
  enc.forEach((e, i) => {
    v.setFloat32(o, scores[i], true);
    v.setInt32(o + 4, e.length, true);
    b.set(e, o + 8);
    o += 8 + e.length;
  });
  return b;
}

Deno.test("readLlama2cTokenizer() reads records, by count or until the end", none, () => {
  const b = tokBin(["<unk>", " t", "he", "你"], [0, 0, -1, -2.5]);
  const t = readLlama2cTokenizer(b);
  assertEquals(t.pieces, ["<unk>", " t", "he", "你"]);
  assertEquals([...t.scores], [0, 0, -1, -2.5]);
  assertEquals(readLlama2cTokenizer(b, 2).pieces, ["<unk>", " t"]);
  assertThrows(() => readLlama2cTokenizer(b, 5), FormatError);
  assertThrows(() => readLlama2cTokenizer(b, 1e9), FormatError, "count");
  const neg = b.slice();
  new DataView(neg.buffer).setInt32(8, -1, true);
  assertThrows(() => readLlama2cTokenizer(neg), FormatError, "length -1");
  assertEveryTruncationFails("tokenizer.bin", b, (x) => readLlama2cTokenizer(x, 4));
});

// ---- hostile input ---------------------------------------------------------------------------------------------

const SMALL = [8, 12, 1, 4, 2, -5, 3];

Deno.test("readLlama2c() throws FormatError when truncated at every byte", none, () => {
  const bytes = checkpoint(SMALL);
  readLlama2c(new BytesSource(bytes));
  assertEveryTruncationFails("llama2c", bytes, (b) => readLlama2c(new BytesSource(b)));
});

Deno.test("readLlama2c() rejects a file larger than its header implies", none, () => {
  const bytes = checkpoint(SMALL, 1000);
  assertThrows(() => readLlama2c(new BytesSource(bytes)), FormatError, "implies");
});

Deno.test("readLlama2c() rejects out-of-range and inconsistent headers", none, () => {
  const bad = (h: number[], msg: string) =>
    assertThrows(() => readLlama2c(new BytesSource(checkpoint(h, 16))), FormatError, msg);
  bad([0, 12, 1, 4, 2, 5, 3], "dim = 0");
  bad([8, -12, 1, 4, 2, 5, 3], "hidden_dim = -12");
  bad([8, 12, 1, 4, 2, 0, 3], "vocab_size = 0");
  bad([8, 12, 1, 3, 3, 5, 3], "not divisible");
  bad([8, 12, 1, 4, 3, 5, 3], "multiple of n_kv_heads");
  bad([8, 12, 1, 8, 8, 5, 3], "odd");
  bad([1 << 30, 12, 1, 4, 2, 5, 3], "out of range");
  bad([-2147483648, 12, 1, 4, 2, 5, 3], "out of range");
  bad([8, 12, 1, 4, 2, -2147483648, 3], "out of range");
});

Deno.test("readLlama2c() rejects size products that overflow", none, () => {
  const m = 1 << 23;
  assertThrows(() => readLlama2c(new BytesSource(checkpoint([m, m, m, 8, 8, m, m], 16))), FormatError, "implies");
});

Deno.test("readLlama2c() rejects the newer llama2.c export as unsupported", none, () => {
  const b = new Uint8Array(256);
  new DataView(b.buffer).setUint32(0, 0x616b3432, true);
  assertThrows(() => readLlama2c(new BytesSource(b)), UnsupportedError, "ak42");
});

Deno.test("readLlama2c() survives 2,000+ seeded mutations with typed errors only", none, () => {
  const bytes = checkpoint(SMALL);
  const res = fuzzParser("llama2c", bytes, (b) => {
    const src = new BytesSource(b);
    const f = readLlama2c(src);
    return f.tensors.reduce((s, t) => s + readTensorBytes(src, t).length, 0);
  }, { cases: FUZZ_CASES, focusEnd: 28 });
  assert(res.formatErrors > 0, JSON.stringify(res));
  const tok = tokBin(["<unk>", "a", "bc", "def"], [0, 1, 2, 3]);
  fuzzParser("tokenizer.bin", tok, (b) => {
    const t = readLlama2cTokenizer(b);
    return t.pieceBytes.reduce((s, p) => s + p.length + 8, 0);
  }, { cases: FUZZ_CASES, maxFactor: 64 });
});
