/**
 * Tests for the GGUF reader and writer. Oracles: the llama.cpp-written fixture and vocab files in ../shared/data
 * (their PROVENANCE.md gives the counts, keys, offsets and tensor table; our writer must reproduce the fixture byte
 * for byte), headers built by hand with ByteWriter for hostile input, and round trips read(write(x)) ≡ x.
 */
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { ByteWriter } from "../../src/formats/byte_writer.ts";
import { GGUF_TYPE, type GgufFile, readGguf, readTensorBytes } from "../../src/formats/gguf.ts";
import { ggufKv, ggufKvsOf, type GgufWriterTensor, writeGguf } from "../../src/formats/gguf_writer.ts";
import { FileSource } from "../../src/io/file_source.ts";
import { writeFileAtomic } from "../../src/io/atomic_file.ts";
import { dequantizeRef } from "../../src/quant/dequantize.ts";
import { assert, assertBytesEqual, assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { needsTestData, testDataPath } from "../_fixtures.ts";
import { mulberry32 } from "../_rand.ts";
import { assertEveryTruncationFails, fuzzCases, fuzzParser } from "./_fuzz.ts";

/** Read here, at load time: the tests themselves run without permissions. */
const FUZZ_CASES = fuzzCases(2000);

const none = { permissions: "none" } as const;
const T = GGUF_TYPE;

function randomBytes(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  return new Uint8Array(n).map(() => Math.floor(r() * 256));
}

async function write(spec: Parameters<typeof writeGguf>[1]): Promise<Uint8Array> {
  const sink = new BytesSink();
  await writeGguf(sink, spec);
  return sink.bytes();
}

const parse = (b: Uint8Array): GgufFile => readGguf(new BytesSource(b));

const ALL_KVS = [
  ggufKv.u8("t.u8", 255),
  ggufKv.i8("t.i8", -128),
  ggufKv.u16("t.u16", 65535),
  ggufKv.i16("t.i16", -32768),
  ggufKv.u32("t.u32", 4294967295),
  ggufKv.i32("t.i32", -2147483648),
  ggufKv.u64("t.u64.small", 12345),
  ggufKv.u64("t.u64.big", 18446744073709551615n),
  ggufKv.i64("t.i64.small", -12345),
  ggufKv.i64("t.i64.big", -9223372036854775808n),
  ggufKv.f32("t.f32", Math.fround(1e-5)),
  ggufKv.f64("t.f64", Math.E),
  ggufKv.bool("t.true", true),
  ggufKv.bool("t.false", false),
  ggufKv.string("t.string", "羊驼 llama\n\u0000end"),
  ggufKv.string("t.empty", ""),
  ggufKv.arrayString("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "▁你好", ""]),
  ggufKv.arrayF32("tokenizer.ggml.scores", [0, -1.5, 3.25, -1000, 0.125]),
  ggufKv.arrayI32("tokenizer.ggml.token_type", [2, 3, 3, 1, 1]),
  ggufKv.arrayU32("t.arr.u32", [0, 4294967295]),
  ggufKv.array("t.arr.u8", T.UINT8, [0, 1, 255]),
  ggufKv.array("t.arr.bool", T.BOOL, [true, false]),
  ggufKv.array("t.arr.u64", T.UINT64, [1, 18446744073709551615n]),
  ggufKv.array("t.arr.f64", T.FLOAT64, [Math.PI]),
  ggufKv.array("t.arr.empty", T.INT32, []),
];

function tensors(): GgufWriterTensor[] {
  return [
    { name: "token_embd.weight", dtype: "F16", shape: [5, 8], data: randomBytes(80, 1) },
    { name: "blk.0.attn_q.weight", dtype: "Q4_0", shape: [3, 64], data: randomBytes(3 * 2 * 18, 2) },
    { name: "blk.0.attn_k.weight", dtype: "Q8_0", shape: [2, 32], data: () => randomBytes(2 * 34, 3) },
    { name: "blk.0.ffn_down.weight", dtype: "Q6_K", shape: [1, 256], data: () => Promise.resolve(randomBytes(210, 4)) },
    { name: "blk.0.bf16", dtype: "BF16", shape: [3], data: randomBytes(6, 5) },
    { name: "output_norm.weight", dtype: "F32", shape: [8], data: randomBytes(32, 6) },
  ];
}

Deno.test("readGguf() round-trips every metadata type and tensor bytes written by writeGguf()", none, async () => {
  const ts = tensors();
  const bytes = await write({ metadata: ALL_KVS, tensors: ts });
  const f = parse(bytes);
  assertEquals(f.version, 3);
  assertEquals(f.alignment, 32);
  assertEquals([...f.metadata.keys()], ALL_KVS.map((kv) => kv.key));
  assertEquals(ggufKvsOf(f), ALL_KVS.map((kv) => ({ ...kv, itemType: kv.itemType })));
  assertEquals(f.metadata.get("t.u64.big"), 18446744073709551615n);
  assertEquals(f.metadata.get("t.u64.small"), 12345);
  assertEquals(f.metadata.get("t.f32"), Math.fround(1e-5));
  assertEquals(f.tensors.map((t) => [t.name, t.dtype, t.shape, t.ne]), [
    ["token_embd.weight", "F16", [5, 8], [8, 5]],
    ["blk.0.attn_q.weight", "Q4_0", [3, 64], [64, 3]],
    ["blk.0.attn_k.weight", "Q8_0", [2, 32], [32, 2]],
    ["blk.0.ffn_down.weight", "Q6_K", [1, 256], [256, 1]],
    ["blk.0.bf16", "BF16", [3], [3]],
    ["output_norm.weight", "F32", [8], [8]],
  ]);
  const src = new BytesSource(bytes);
  for (let i = 0; i < ts.length; i++) {
    const d = ts[i].data;
    const expected = typeof d === "function" ? await d() : d;
    assertBytesEqual(readTensorBytes(src, f.tensors[i]), expected, ts[i].name);
  }
  // rewriting what we read gives the same file
  const again = await write({
    metadata: ggufKvsOf(f),
    tensors: f.tensors.map((t) => ({ ...t, data: readTensorBytes(src, t) })),
  });
  assertBytesEqual(again, bytes);
});

Deno.test("writeGguf() pads every tensor to the alignment with cumulative offsets", none, async () => {
  const bytes = await write({ metadata: [], tensors: tensors(), alignment: 64 });
  const f = parse(bytes);
  assertEquals(f.alignment, 64);
  assertEquals(f.metadata.get("general.alignment"), 64);
  assertEquals(f.metadataTypes.get("general.alignment"), { type: T.UINT32 });
  assertEquals(f.dataOffset % 64, 0);
  let expected = 0;
  for (const t of f.tensors) {
    assertEquals(t.relativeOffset, expected);
    expected += Math.ceil(t.nBytes / 64) * 64;
  }
  assertEquals(bytes.length, f.dataOffset + expected);
});

Deno.test(
  "writeGguf() writes the header before asking for any tensor data, then one tensor at a time",
  none,
  async () => {
    const sink = new BytesSink();
    const seen: number[] = [];
    await writeGguf(sink, {
      metadata: [ggufKv.string("general.architecture", "llama")],
      tensors: [0, 1, 2].map((i) => ({
        name: `t${i}`,
        dtype: "F32" as const,
        shape: [3],
        data: () => {
          seen.push(sink.position);
          return new Uint8Array(12).fill(i);
        },
      })),
    });
    const f = parse(sink.bytes());
    assertEquals(seen, f.tensors.map((t) => t.byteOffset));
  },
);

Deno.test("writeGguf() rejects duplicate keys, duplicate names, wrong sizes and partial blocks", none, async () => {
  const t = (o: Partial<GgufWriterTensor>): GgufWriterTensor => ({
    name: "a",
    dtype: "F32",
    shape: [2],
    data: new Uint8Array(8),
    ...o,
  });
  await assertRejects(
    () => write({ metadata: [ggufKv.u32("k", 1), ggufKv.u32("k", 2)], tensors: [] }),
    RangeError,
    "duplicate key",
  );
  await assertRejects(() => write({ metadata: [], tensors: [t({}), t({})] }), RangeError, "duplicate tensor name");
  await assertRejects(
    () => write({ metadata: [], tensors: [t({ data: new Uint8Array(7) })] }),
    RangeError,
    "expected 8 bytes",
  );
  await assertRejects(
    () => write({ metadata: [], tensors: [t({ data: () => new Uint8Array(9) })] }),
    RangeError,
    "expected 8 bytes",
  );
  await assertRejects(
    () => write({ metadata: [], tensors: [t({ dtype: "Q4_0", shape: [2, 16] })] }),
    RangeError,
    "block size",
  );
  await assertRejects(() => write({ metadata: [], tensors: [t({ name: "x".repeat(64) })] }), RangeError, "64 bytes");
  await assertRejects(() => write({ metadata: [], tensors: [t({ shape: [1, 1, 1, 1, 2] })] }), RangeError, "dims");
  await assertRejects(() => write({ metadata: [], tensors: [], alignment: 48 }), RangeError, "power of two");
  await assertRejects(() => write({ metadata: [ggufKv.u32("x", -1)], tensors: [] }), RangeError, '"x"');
  await assertRejects(() => write({ metadata: [ggufKv.u32("x", "s" as unknown as number)], tensors: [] }), TypeError);
  await assertRejects(
    () => write({ metadata: [ggufKv.u32("general.alignment", 32)], tensors: [], alignment: 64 }),
    RangeError,
  );
});

Deno.test("ggufKv.infer() picks gguf-py's types", none, () => {
  assertEquals(ggufKv.infer("a", "s").type, T.STRING);
  assertEquals(ggufKv.infer("a", 3).type, T.INT32);
  assertEquals(ggufKv.infer("a", 2 ** 40).type, T.UINT64);
  assertEquals(ggufKv.infer("a", 0.5).type, T.FLOAT32);
  assertEquals(ggufKv.infer("a", true).type, T.BOOL);
  assertEquals(ggufKv.infer("a", -1n).type, T.INT64);
  assertEquals(ggufKv.infer("a", ["x", "y"]), { key: "a", type: T.ARRAY, itemType: T.STRING, value: ["x", "y"] });
  assertEquals(ggufKv.infer("a", [1, 2.5]).itemType, T.FLOAT32);
  assertThrows(() => ggufKv.infer("a", [1, "x"]), TypeError);
});

// ---- real files written by llama.cpp -------------------------------------------------------------------------

const FIXTURE = "models/gguf-format-fixture/llama-2-tiny-random.gguf";

Deno.test("readGguf() parses llama-2-tiny-random.gguf as its PROVENANCE describes", needsTestData(FIXTURE), () => {
  using src = new FileSource(testDataPath(FIXTURE)!);
  const f = readGguf(src);
  assertEquals([f.version, f.metadata.size, f.tensors.length, f.alignment, f.dataOffset], [3, 18, 12, 32, 724416]);
  const m = f.metadata;
  assertEquals(m.get("general.architecture"), "llama");
  assertEquals(m.get("llama.context_length"), 4096);
  assertEquals(m.get("llama.embedding_length"), 8);
  assertEquals(m.get("llama.block_count"), 1);
  assertEquals(m.get("llama.feed_forward_length"), 32);
  assertEquals(m.get("llama.rope.dimension_count"), 4);
  assertEquals(m.get("llama.attention.head_count"), 2);
  assertEquals(m.get("llama.attention.head_count_kv"), 2);
  assertEquals(m.get("llama.attention.layer_norm_rms_epsilon"), Math.fround(1e-5));
  assertEquals(m.get("general.file_type"), 1);
  assertEquals(m.get("tokenizer.ggml.model"), "llama");
  for (const k of ["tokens", "scores", "token_type"]) {
    assertEquals((m.get(`tokenizer.ggml.${k}`) as unknown[]).length, 32000);
  }
  const types = new Set(m.get("tokenizer.ggml.token_type") as number[]);
  assertEquals([...types].sort(), [1, 2, 3, 6]);
  assertEquals((m.get("tokenizer.ggml.tokens") as string[]).slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
  assertEquals([
    m.get("tokenizer.ggml.bos_token_id"),
    m.get("tokenizer.ggml.eos_token_id"),
    m.get("tokenizer.ggml.unknown_token_id"),
  ], [1, 2, 0]);
  const table = Object.fromEntries(f.tensors.map((t) => [t.name, `${t.dtype} ${t.ne}`]));
  assertEquals(table, {
    "token_embd.weight": "F16 8,32000",
    "blk.0.attn_q.weight": "F16 8,8",
    "blk.0.attn_k.weight": "F16 8,8",
    "blk.0.attn_v.weight": "F16 8,8",
    "blk.0.attn_output.weight": "F16 8,8",
    "blk.0.ffn_gate.weight": "F16 8,32",
    "blk.0.ffn_up.weight": "F16 8,32",
    "blk.0.ffn_down.weight": "F16 32,8",
    "blk.0.attn_norm.weight": "F32 8",
    "blk.0.ffn_norm.weight": "F32 8",
    "output_norm.weight": "F32 8",
    "output.weight": "F16 8,32000",
  });
  assertEquals(f.tensors[0].shape, [32000, 8]);
});

Deno.test("writeGguf() reproduces llama-2-tiny-random.gguf byte for byte", needsTestData(FIXTURE), async () => {
  const original = Deno.readFileSync(testDataPath(FIXTURE)!);
  const src = new BytesSource(original);
  const f = readGguf(src);
  const out = await write({
    metadata: ggufKvsOf(f),
    tensors: f.tensors.map((t) => ({ ...t, data: () => readTensorBytes(src, t) })),
  });
  assertBytesEqual(out, original);
});

const VOCABS: [string, number, number, number][] = [
  ["llamacpp/models/ggml-vocab-llama-spm.gguf", 22, 32000, 723869],
  ["llamacpp/models/ggml-vocab-phi-3.gguf", 26, 32064, 726019],
  ["llamacpp/models/ggml-vocab-baichuan.gguf", 18, 64000, 1340998],
];

for (const [rel, nKv, nVocab, size] of VOCABS) {
  Deno.test(`readGguf() tolerates the unpadded end of vocab-only ${rel.split("/").pop()}`, needsTestData(rel), () => {
    using src = new FileSource(testDataPath(rel)!);
    assertEquals(src.size, size);
    const f = readGguf(src);
    assertEquals([f.version, f.metadata.size, f.tensors.length], [3, nKv, 0]);
    assert(f.dataOffset > src.size, "no padding after the KVs");
    assertEquals((f.metadata.get("tokenizer.ggml.tokens") as string[]).length, nVocab);
    assertEquals(f.metadata.get("tokenizer.ggml.model"), "llama");
  });
}

Deno.test("readGguf() reads the llama-spm vocab keys PROVENANCE lists", needsTestData(VOCABS[0][0]), () => {
  using src = new FileSource(testDataPath(VOCABS[0][0])!);
  const m = readGguf(src).metadata;
  assertEquals([
    m.get("tokenizer.ggml.bos_token_id"),
    m.get("tokenizer.ggml.eos_token_id"),
    m.get("tokenizer.ggml.unknown_token_id"),
  ], [1, 2, 0]);
  assertEquals([m.get("tokenizer.ggml.add_bos_token"), m.get("tokenizer.ggml.add_eos_token")], [true, false]);
  assertEquals(m.get("llama.embedding_length"), 4096);
});

// ---- hostile input ---------------------------------------------------------------------------------------------

interface RawTensor {
  name: string;
  ne: (number | bigint)[];
  type: number;
  offset: number | bigint;
  nDims?: number;
}

/** Builds a GGUF by hand (independent of writeGguf), so every field can be wrong. */
function raw(
  {
    magic = 0x46554747,
    version = 3,
    kvs = [] as ((w: ByteWriter) => void)[],
    tensors = [] as RawTensor[],
    tensorCount,
    kvCount,
    dataBytes = 0,
    alignment = 32,
  }: {
    magic?: number;
    version?: number;
    kvs?: ((w: ByteWriter) => void)[];
    tensors?: RawTensor[];
    tensorCount?: bigint;
    kvCount?: bigint;
    dataBytes?: number;
    alignment?: number;
  } = {},
): Uint8Array {
  const w = new ByteWriter();
  w.u32(magic);
  w.u32(version);
  w.u64(tensorCount ?? BigInt(tensors.length));
  w.u64(kvCount ?? BigInt(kvs.length));
  for (const kv of kvs) kv(w);
  for (const t of tensors) {
    str(w, t.name);
    w.u32(t.nDims ?? t.ne.length);
    for (const d of t.ne) w.u64(d);
    w.u32(t.type);
    w.u64(t.offset);
  }
  w.padTo(alignment);
  w.bytes(new Uint8Array(dataBytes));
  return w.finish();
}

function str(w: ByteWriter, s: string): void {
  const b = new TextEncoder().encode(s);
  w.u64(b.length);
  w.bytes(b);
}

const kvU32 = (key: string, v: number) => (w: ByteWriter) => {
  str(w, key);
  w.u32(T.UINT32);
  w.u32(v);
};

Deno.test("raw() builds a header readGguf() accepts", none, () => {
  const f = parse(raw({ kvs: [kvU32("a", 1)], tensors: [{ name: "t", ne: [4], type: 0, offset: 0 }], dataBytes: 16 }));
  assertEquals(f.tensors[0].nBytes, 16);
  assertEquals(f.metadata.get("a"), 1);
});

Deno.test("readGguf() rejects a wrong magic", none, () => {
  assertThrows(() => parse(raw({ magic: 0x4c4d4747 })), FormatError, "bad magic");
  assertThrows(() => parse(new TextEncoder().encode("PK\x03\x04 not gguf at all")), FormatError, "magic");
});

Deno.test("readGguf() rejects an unknown version, and GGUF v1 as unsupported", none, () => {
  assertThrows(() => parse(raw({ version: 4 })), FormatError, "unknown version 4");
  assertThrows(() => parse(raw({ version: 0 })), FormatError, "unknown version 0");
  assertThrows(() => parse(raw({ version: 1 })), UnsupportedError, "v1");
  assertThrows(() => parse(raw({ version: 0x03000000 })), UnsupportedError, "big-endian");
  assertEquals(parse(raw({ version: 2 })).version, 2);
});

Deno.test("readGguf() throws FormatError when truncated at every byte", none, async () => {
  // last tensor ends exactly on the alignment so there is no trailing padding that could be cut harmlessly
  const bytes = await write({
    metadata: [
      ggufKv.string("general.architecture", "llama"),
      ggufKv.arrayString("tokenizer.ggml.tokens", ["a", "bc"]),
      ggufKv.arrayF32("s", [1, 2]),
    ],
    tensors: [
      { name: "q", dtype: "Q4_0", shape: [1, 32], data: randomBytes(18, 9) },
      { name: "w", dtype: "F32", shape: [8], data: randomBytes(32, 8) },
    ],
  });
  parse(bytes);
  assertEveryTruncationFails("gguf", bytes, parse);
});

Deno.test("readGguf() rejects counts and lengths larger than the file", none, () => {
  assertThrows(() => parse(raw({ tensorCount: 1n << 40n })), FormatError, "tensor count");
  assertThrows(() => parse(raw({ kvCount: 0xffffffffffffffffn })), FormatError, "kv count");
  const hugeArray = (w: ByteWriter) => {
    str(w, "arr");
    w.u32(T.ARRAY);
    w.u32(T.UINT32);
    w.u64(1n << 50n);
  };
  assertThrows(() => parse(raw({ kvs: [hugeArray] })), FormatError, 'array "arr"');
  const hugeString = (w: ByteWriter) => {
    w.u64(0x7fffffffffffn);
    w.u8(65);
  };
  assertThrows(() => parse(raw({ kvs: [hugeString] })), FormatError, "exceeds");
  const hugeStringArray = (w: ByteWriter) => {
    str(w, "toks");
    w.u32(T.ARRAY);
    w.u32(T.STRING);
    w.u64(100n); // 100 strings need ≥ 800 bytes
    str(w, "a");
  };
  assertThrows(() => parse(raw({ kvs: [hugeStringArray] })), FormatError, "toks");
});

Deno.test("readGguf() rejects tensor data past the end of the file", none, () => {
  assertThrows(
    () => parse(raw({ tensors: [{ name: "t", ne: [8], type: 0, offset: 0 }], dataBytes: 16 })),
    FormatError,
    "past the file end",
  );
  assertThrows(() => parse(raw({ tensors: [{ name: "t", ne: [1], type: 0, offset: 1n << 62n }] })), FormatError);
});

Deno.test("readGguf() rejects size products that overflow", none, () => {
  const ne = [1n << 31n, 1n << 31n, 1n << 31n];
  assertThrows(() => parse(raw({ tensors: [{ name: "t", ne, type: 0, offset: 0 }] })), FormatError, "overflows");
  assertThrows(
    () => parse(raw({ tensors: [{ name: "t", ne: [0xffffffffffffffffn], type: 0, offset: 0 }] })),
    FormatError,
    "out of range",
  );
  assertThrows(() => parse(raw({ tensors: [{ name: "t", ne: [1n << 52n, 4n], type: 0, offset: 0 }] })), FormatError);
});

Deno.test("readGguf() rejects duplicate keys", none, () => {
  assertThrows(() => parse(raw({ kvs: [kvU32("a", 1), kvU32("a", 2)] })), FormatError, 'duplicate key "a"');
});

Deno.test("readGguf() rejects duplicate tensor names", none, () => {
  const t = { name: "w", ne: [8], type: 0, offset: 0 };
  assertThrows(
    () => parse(raw({ tensors: [t, { ...t, offset: 32 }], dataBytes: 64 })),
    FormatError,
    'duplicate tensor name "w"',
  );
});

Deno.test("readGguf() rejects a misaligned tensor offset", none, () => {
  assertThrows(
    () => parse(raw({ tensors: [{ name: "t", ne: [4], type: 0, offset: 4 }], dataBytes: 64 })),
    FormatError,
    "not a multiple of the alignment 32",
  );
});

Deno.test("readGguf() rejects a tensor that overlaps another", none, () => {
  const tensors = [{ name: "a", ne: [16], type: 0, offset: 0 }, { name: "b", ne: [8], type: 0, offset: 32 }];
  assertThrows(() => parse(raw({ tensors, dataBytes: 128 })), FormatError, "overlaps");
});

Deno.test("readGguf() rejects a non-power-of-two alignment", none, () => {
  for (const al of [0, 3, 48, 2 ** 31 + 1]) {
    assertThrows(() => parse(raw({ kvs: [kvU32("general.alignment", al >>> 0)] })), FormatError, "general.alignment");
  }
  const asString = (w: ByteWriter) => {
    str(w, "general.alignment");
    w.u32(T.STRING);
    str(w, "32");
  };
  assertThrows(() => parse(raw({ kvs: [asString] })), FormatError, "UINT32");
  assertEquals(parse(raw({ kvs: [kvU32("general.alignment", 64)], alignment: 64 })).alignment, 64);
});

Deno.test("readGguf() rejects unknown tensor types as UnsupportedError", none, () => {
  for (const type of [4, 5, 16, 23, 31, 1000]) {
    assertThrows(
      () => parse(raw({ tensors: [{ name: "t", ne: [32], type, offset: 0 }], dataBytes: 256 })),
      UnsupportedError,
      `ggml type ${type}`,
    );
  }
});

Deno.test("readGguf() rejects unknown metadata types, bad bools, deep nesting and too many dims", none, () => {
  const kv = (type: number, body: (w: ByteWriter) => void) => (w: ByteWriter) => {
    str(w, "k");
    w.u32(type);
    body(w);
  };
  assertThrows(() => parse(raw({ kvs: [kv(13, (w) => w.u32(0))] })), FormatError, "unknown type 13");
  assertThrows(() => parse(raw({ kvs: [kv(T.ARRAY, (w) => w.u32(99))] })), FormatError, "unknown item type");
  assertThrows(() => parse(raw({ kvs: [kv(T.BOOL, (w) => w.u8(2))] })), FormatError, "bool value 2");
  const nest = (w: ByteWriter) => {
    for (let i = 0; i < 10; i++) {
      w.u32(T.ARRAY);
      w.u64(1);
    }
    w.u32(T.UINT8);
    w.u64(0);
  };
  assertThrows(
    () =>
      parse(raw({
        kvs: [kv(T.ARRAY, (w) => {
          nest(w);
        })],
      })),
    FormatError,
    "deeper",
  );
  const nested2 = kv(T.ARRAY, (w) => {
    w.u32(T.ARRAY);
    w.u64(2);
    w.u32(T.INT32);
    w.u64(1);
    w.i32(-7);
    w.u32(T.STRING);
    w.u64(1);
    str(w, "x");
  });
  assertEquals(parse(raw({ kvs: [nested2] })).metadata.get("k"), [[-7], ["x"]]);
  assertThrows(
    () => parse(raw({ tensors: [{ name: "t", ne: [1, 1, 1, 1, 1], type: 0, offset: 0 }], dataBytes: 32 })),
    FormatError,
    "n_dims 5",
  );
  assertThrows(
    () => parse(raw({ tensors: [{ name: "t", ne: [16], type: 2, offset: 0 }], dataBytes: 64 })),
    FormatError,
    "block size",
  );
  assertThrows(
    () =>
      parse(
        raw({ tensors: [{ name: "\xff", ne: [1], type: 0, offset: 0 }], dataBytes: 32 }).map((b, i, a) =>
          i === a.indexOf(0xc3) ? 0xff : b
        ),
      ),
    FormatError,
    "UTF-8",
  );
});

Deno.test("readGguf() survives 2,000+ seeded mutations with typed errors only", none, async () => {
  const bytes = await write({
    metadata: [
      ggufKv.string("general.architecture", "llama"),
      ggufKv.u32("llama.block_count", 1),
      ggufKv.arrayString("tokenizer.ggml.tokens", ["<unk>", "<s>", "a", "b"]),
      ggufKv.arrayF32("tokenizer.ggml.scores", [0, 0, -1, -2]),
      ggufKv.u64("big", 1n << 60n),
    ],
    tensors: [
      { name: "token_embd.weight", dtype: "F16", shape: [4, 4], data: randomBytes(32, 1) },
      { name: "w", dtype: "Q8_0", shape: [1, 32], data: randomBytes(34, 2) },
    ],
  });
  const res = fuzzParser("gguf", bytes, (b) => {
    const src = new BytesSource(b);
    const f = readGguf(src);
    let size = 0;
    for (const v of f.metadata.values()) size += Array.isArray(v) ? v.length * 8 : typeof v === "string" ? v.length : 8;
    for (const t of f.tensors) size += readTensorBytes(src, t).length;
    return size;
  }, { cases: FUZZ_CASES });
  assert(res.ok > 0 && res.formatErrors > 0, JSON.stringify(res));
});

Deno.test("writeGguf() through an atomic file and readGguf() through a FileSource round-trip", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "yangtuo-gguf-" });
  try {
    const path = `${dir}/m.gguf`;
    const ts = tensors();
    await writeFileAtomic(path, (sink) => writeGguf(sink, { metadata: ALL_KVS, tensors: ts }));
    const mem = await write({ metadata: ALL_KVS, tensors: ts });
    assertBytesEqual(Deno.readFileSync(path), mem);
    using src = new FileSource(path);
    const f = readGguf(src);
    assertEquals(ggufKvsOf(f).length, ALL_KVS.length);
    const q6 = f.tensors.find((t) => t.dtype === "Q6_K")!;
    const fromFile = dequantizeRef(q6.dtype, readTensorBytes(src, q6), 256);
    assertEquals(fromFile, dequantizeRef("Q6_K", randomBytes(210, 4), 256));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Written by llama.cpp's gguf-py GGUFWriter (generator beside it); loaded here, the tests run without permissions. */
const GGUF_PY = Deno.readFileSync(new URL("./testdata/gguf_py_fixture.gguf", import.meta.url));

Deno.test("readGguf() reads every value type from a file gguf-py wrote", none, () => {
  const f = parse(GGUF_PY);
  const m = f.metadata;
  assertEquals([...m.keys()].length, 17);
  assertEquals(m.get("general.architecture"), "llama");
  assertEquals([m.get("t.u8"), m.get("t.i8"), m.get("t.u16"), m.get("t.i16")], [200, -100, 60000, -30000]);
  assertEquals([m.get("t.u32"), m.get("t.i32")], [4000000000, -2000000000]);
  assertEquals([m.get("t.u64"), m.get("t.i64")], [2n ** 63n + 5n, -(2n ** 62n)]);
  assertEquals([m.get("t.f32"), m.get("t.f64"), m.get("t.bool")], [Math.fround(0.1), 0.1, true]);
  assertEquals(m.get("t.str"), "羊驼 Alpaca");
  assertEquals(m.get("tokenizer.ggml.tokens"), ["<unk>", "<s>", "</s>", "▁你好", "\ufeff"]);
  assertEquals(m.get("tokenizer.ggml.scores"), [0, -1.5, 0.25]);
  assertEquals(f.metadataTypes.get("tokenizer.ggml.token_type"), { type: T.ARRAY, itemType: T.INT32 });
  assertEquals(m.get("t.bools"), [true, false]);
  assertEquals(f.tensors.map((t) => [t.name, t.dtype, t.shape, t.nBytes]), [
    ["token_embd.weight", "F16", [5, 8], 80],
    ["output_norm.weight", "F32", [8], 32],
    ["blk.0.attn_q.weight", "Q8_0", [2, 64], 136],
    ["blk.0.ffn_down.weight", "Q6_K", [1, 256], 210],
  ]);
});

Deno.test("writeGguf() reproduces a file gguf-py wrote byte for byte", none, async () => {
  const src = new BytesSource(GGUF_PY);
  const f = readGguf(src);
  const out = await write({
    metadata: ggufKvsOf(f),
    tensors: f.tensors.map((t) => ({ ...t, data: readTensorBytes(src, t) })),
  });
  assertBytesEqual(out, GGUF_PY);
});
