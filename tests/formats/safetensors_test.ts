/**
 * Tests for the safetensors reader/writer and sharded index. Oracles: headers written by hand from the format
 * description in huggingface/safetensors' README (JSON text + u64 size), round trips read(write(x)) ≡ x, and
 * hostile headers built as strings.
 */
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { FormatError, UnsupportedError } from "../../src/core/errors.ts";
import { readTensorBytes } from "../../src/formats/gguf.ts";
import {
  readSafetensors,
  readSafetensorsIndex,
  type SafetensorsWriterTensor,
  writeSafetensors,
} from "../../src/formats/safetensors.ts";
import { assert, assertBytesEqual, assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { mulberry32 } from "../_rand.ts";
import { assertEveryTruncationFails, fuzzCases, fuzzParser } from "./_fuzz.ts";

/** Read here, at load time: the tests themselves run without permissions. */
const FUZZ_CASES = fuzzCases(2000);
const none = { permissions: "none" } as const;

function randomBytes(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  return new Uint8Array(n).map(() => Math.floor(r() * 256));
}

/** A file from a header JSON string and data bytes, exactly as the format README describes. */
function file(json: string, data: Uint8Array = new Uint8Array(0), sizeOverride?: bigint): Uint8Array {
  const j = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + j.length + data.length);
  new DataView(out.buffer).setBigUint64(0, sizeOverride ?? BigInt(j.length), true);
  out.set(j, 8);
  out.set(data, 8 + j.length);
  return out;
}

const parse = (b: Uint8Array) => readSafetensors(new BytesSource(b));

async function write(tensors: SafetensorsWriterTensor[], metadata?: Record<string, string>): Promise<Uint8Array> {
  const sink = new BytesSink();
  await writeSafetensors(sink, tensors, metadata);
  return sink.bytes();
}

Deno.test("readSafetensors() reads a header written by hand from the format description", none, () => {
  const data = new Uint8Array(4 * 6 + 2 * 2);
  new DataView(data.buffer).setFloat32(20, 6.5, true);
  const bytes = file(
    '{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},' +
      '"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}',
    data,
  );
  const f = parse(bytes);
  assertEquals(f.metadata, { format: "pt" });
  const hdr = bytes.length - data.length;
  assertEquals(f.dataOffset, hdr);
  assertEquals(f.tensors, [
    { name: "b", dtype: "F16", shape: [2], byteOffset: hdr + 24, nBytes: 4 },
    { name: "a", dtype: "F32", shape: [2, 3], byteOffset: hdr, nBytes: 24 },
  ]);
  const a = readTensorBytes(new BytesSource(bytes), f.tensors[1]);
  assertEquals(new DataView(a.buffer, a.byteOffset).getFloat32(20, true), 6.5);
});

Deno.test("writeSafetensors() round-trips F32, F16, BF16 and integer tensors bit for bit", none, async () => {
  const tensors: SafetensorsWriterTensor[] = [
    { name: "model.embed_tokens.weight", dtype: "F16", shape: [7, 3], data: randomBytes(42, 1) },
    { name: "model.norm.weight", dtype: "F32", shape: [3], data: () => randomBytes(12, 2) },
    { name: "lm_head.weight", dtype: "BF16", shape: [7, 3], data: () => Promise.resolve(randomBytes(42, 3)) },
    { name: "ids", dtype: "I64", shape: [2], data: randomBytes(16, 4) },
    { name: "mask", dtype: "U8", shape: [5], data: randomBytes(5, 5) },
    { name: "empty", dtype: "F32", shape: [0, 4], data: new Uint8Array(0) },
    { name: '名字 "quoted"', dtype: "F32", shape: [], data: randomBytes(4, 6) },
  ];
  const meta = { format: "pt", note: "羊驼" };
  const bytes = await write(tensors, meta);
  const hdrSize = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals((8 + hdrSize) % 8, 0);
  assertEquals(bytes[8 + hdrSize - 1] === 0x20 || bytes[8 + hdrSize - 1] === 0x7d, true);
  const f = parse(bytes);
  assertEquals(f.metadata, meta);
  assertEquals(f.tensors.map((t) => [t.name, t.dtype, t.shape]), tensors.map((t) => [t.name, t.dtype, [...t.shape]]));
  const src = new BytesSource(bytes);
  for (let i = 0; i < tensors.length; i++) {
    const d = tensors[i].data;
    assertBytesEqual(readTensorBytes(src, f.tensors[i]), typeof d === "function" ? await d() : d, tensors[i].name);
  }
  assertEquals(bytes.length, f.dataOffset + f.tensors.reduce((s, t) => s + t.nBytes, 0));
  const again = await write(f.tensors.map((t) => ({ ...t, data: readTensorBytes(src, t) })), f.metadata);
  assertBytesEqual(again, bytes);
});

Deno.test("writeSafetensors() rejects duplicate names, wrong sizes and dtypes it cannot name", none, async () => {
  const t = { name: "a", dtype: "F32" as const, shape: [2], data: new Uint8Array(8) };
  await assertRejects(() => write([t, t]), RangeError, "duplicate");
  await assertRejects(() => write([{ ...t, name: "__metadata__" }]), RangeError, "reserved");
  await assertRejects(() => write([{ ...t, data: new Uint8Array(4) }]), RangeError, "expected 8 bytes");
  await assertRejects(() => write([{ ...t, dtype: "Q4_0", shape: [32] }]), UnsupportedError, "Q4_0");
  await assertRejects(() => write([t], { n: 1 as unknown as string }), TypeError);
});

Deno.test("readSafetensorsIndex() joins shards through their index", none, async () => {
  const s1 = await write([{ name: "a", dtype: "F32", shape: [2], data: randomBytes(8, 1) }], { format: "pt" });
  const s2 = await write([
    { name: "b", dtype: "F16", shape: [4], data: randomBytes(8, 2) },
    { name: "c", dtype: "F16", shape: [1], data: randomBytes(2, 3) },
  ]);
  const shards: Record<string, Uint8Array> = {
    "model-00001-of-00002.safetensors": s1,
    "model-00002-of-00002.safetensors": s2,
  };
  const opened: string[] = [];
  const open = (f: string) => {
    opened.push(f);
    if (!shards[f]) throw new Error(`no ${f}`);
    return new BytesSource(shards[f], f);
  };
  const index = JSON.stringify({
    metadata: { total_size: 18 },
    weight_map: {
      b: "model-00002-of-00002.safetensors",
      a: "model-00001-of-00002.safetensors",
      c: "model-00002-of-00002.safetensors",
    },
  });
  const m = readSafetensorsIndex(index, open);
  assertEquals(opened, ["model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors"]);
  assertEquals(m.indexMetadata, { total_size: 18 });
  assertEquals(m.tensors.map((t) => [t.name, t.file]), [
    ["b", "model-00002-of-00002.safetensors"],
    ["a", "model-00001-of-00002.safetensors"],
    ["c", "model-00002-of-00002.safetensors"],
  ]);
  const a = m.tensors[1];
  assertBytesEqual(readTensorBytes(m.sources.get(a.file)!, a), randomBytes(8, 1));
  const bad = (wm: Record<string, unknown>) => JSON.stringify({ weight_map: wm });
  assertThrows(
    () => readSafetensorsIndex(bad({ z: "model-00001-of-00002.safetensors" }), open),
    FormatError,
    '"z" is not in',
  );
  assertThrows(() => readSafetensorsIndex(bad({ a: "../etc/passwd" }), open), FormatError, "plain file name");
  assertThrows(() => readSafetensorsIndex(bad({ a: ".." }), open), FormatError, "plain file name");
  assertThrows(() => readSafetensorsIndex(bad({ a: 3 }), open), FormatError);
  assertThrows(() => readSafetensorsIndex("{", open), FormatError);
  assertThrows(() => readSafetensorsIndex("{}", open), FormatError, "weight_map");
});

// ---- hostile input ---------------------------------------------------------------------------------------------

const T1 = (offs: string, dtype = "F32", shape = "[2]") =>
  `"t":{"dtype":"${dtype}","shape":${shape},"data_offsets":${offs}}`;

Deno.test("readSafetensors() rejects a header size larger than the file or the limit", none, () => {
  assertThrows(() => parse(file("{}", new Uint8Array(0), 3n)), FormatError, "exceeds the 2 bytes");
  assertThrows(() => parse(file("{}", new Uint8Array(0), 1n)), FormatError, "JSON");
  assertThrows(() => parse(file("{}", new Uint8Array(0), 100n)), FormatError, "exceeds the 2 bytes");
  assertThrows(() => parse(file("{}", new Uint8Array(0), 1n << 62n)), FormatError, "limit");
});

Deno.test("readSafetensors() rejects headers that are not a JSON object (wrong magic)", none, () => {
  assertThrows(() => parse(file("[]")), FormatError, 'start with "{"');
  assertThrows(() => parse(file("GGUF")), FormatError);
  assertThrows(() => parse(file("{]")), FormatError);
  assertThrows(() => parse(file('{"t": 3}')), FormatError, "not an object");
  assertThrows(() => parse(file('{"__metadata__": {"a": 1}}')), FormatError, "not a string");
  assertThrows(() => parse(file('{"a":"\xff"}'.replace("\xff", "\ud800"))), FormatError);
  assertEquals(parse(file("{}")).tensors, []);
});

Deno.test("readSafetensors() throws FormatError when truncated at every byte", none, async () => {
  const bytes = await write([
    { name: "a", dtype: "F32", shape: [2], data: randomBytes(8, 1) },
    { name: "b", dtype: "BF16", shape: [3], data: randomBytes(6, 2) },
  ], { format: "pt" });
  parse(bytes);
  assertEveryTruncationFails("safetensors", bytes, parse);
});

Deno.test("readSafetensors() rejects unknown dtypes as UnsupportedError", none, () => {
  assertThrows(() => parse(file(`{${T1("[0,2]", "F8_E4M3")}}`, new Uint8Array(2))), UnsupportedError, "F8_E4M3");
  assertThrows(() => parse(file(`{${T1("[0,2]", "Q4_0")}}`, new Uint8Array(2))), UnsupportedError);
});

Deno.test("readSafetensors() rejects offsets whose size disagrees with shape and dtype", none, () => {
  assertThrows(() => parse(file(`{${T1("[0,4]")}}`, new Uint8Array(8))), FormatError, "needs 8");
  assertThrows(() => parse(file(`{${T1("[8,0]")}}`, new Uint8Array(8))), FormatError, "begin ≤ end");
  assertThrows(() => parse(file(`{${T1("[0]")}}`, new Uint8Array(8))), FormatError);
  assertThrows(() => parse(file(`{${T1("[-8,0]")}}`, new Uint8Array(8))), FormatError);
  assertThrows(() => parse(file(`{${T1("[0,8]", "F32", "[-2]")}}`, new Uint8Array(8))), FormatError, "non-negative");
  assertThrows(() => parse(file(`{${T1("[0,8]", "F32", "[2.5]")}}`, new Uint8Array(8))), FormatError);
});

Deno.test("readSafetensors() rejects data ranges past the end of the file", none, () => {
  assertThrows(() => parse(file(`{${T1("[0,8]")}}`, new Uint8Array(7))), FormatError, "past the 7-byte data section");
  assertThrows(() => parse(file(`{${T1("[9007199254740000,9007199254740008]")}}`, new Uint8Array(8))), FormatError);
});

Deno.test("readSafetensors() rejects size products that overflow", none, () => {
  const big = "[4294967296,4294967296,4294967296]";
  assertThrows(() => parse(file(`{${T1("[0,8]", "F32", big)}}`, new Uint8Array(8))), FormatError, "overflows");
  assertThrows(() => parse(file(`{${T1("[0,8]", "F32", "[2251799813685248]")}}`, new Uint8Array(8))), FormatError);
});

Deno.test("readSafetensors() rejects a tensor that overlaps another", none, () => {
  const json =
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
  assertThrows(() => parse(file(json, new Uint8Array(12))), FormatError, "overlaps");
});

Deno.test("readSafetensors() rejects duplicate tensor names", none, () => {
  const json = `{${T1("[0,8]")},${T1("[8,16]")}}`;
  assertThrows(() => parse(file(json, new Uint8Array(16))), FormatError, 'duplicate tensor name "t"');
  // the same key nested deeper is not a duplicate
  const ok = '{"__metadata__":{"t":"x"},' + T1("[0,8]") + "}";
  assertEquals(parse(file(ok, new Uint8Array(8))).tensors.length, 1);
  const escaped = `{${T1("[0,8]")},"\\u0074":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`;
  assertThrows(() => parse(file(escaped, new Uint8Array(16))), FormatError, "duplicate");
});

Deno.test("readSafetensors() survives 2,000+ seeded mutations with typed errors only", none, async () => {
  const bytes = await write([
    { name: "a", dtype: "F32", shape: [2, 2], data: randomBytes(16, 1) },
    { name: "b", dtype: "F16", shape: [3], data: randomBytes(6, 2) },
  ], { format: "pt" });
  const res = fuzzParser("safetensors", bytes, (b) => {
    const src = new BytesSource(b);
    const f = readSafetensors(src);
    let size = 0;
    for (const t of f.tensors) size += readTensorBytes(src, t).length + t.shape.length * 8;
    return size;
  }, { cases: FUZZ_CASES, focusEnd: bytes.length - 22 });
  assert(res.ok > 0 && res.formatErrors > 0, JSON.stringify(res));
});

/** Written by Hugging Face safetensors 0.8.0 (generator beside it); loaded here, the tests run without permissions. */
const HF = Deno.readFileSync(new URL("./testdata/hf_fixture.safetensors", import.meta.url));

Deno.test("readSafetensors() reads a file Hugging Face safetensors wrote", none, () => {
  const f = parse(HF);
  assertEquals(f.metadata, { format: "pt" });
  assertEquals(f.tensors.map((t) => [t.name, t.dtype, t.shape, t.byteOffset - f.dataOffset, t.nBytes]), [
    ["lm_head.weight", "F64", [2, 4], 0, 64],
    ["model.norm.weight", "F32", [4], 64, 16],
    ["ids", "I32", [6], 80, 24],
    ["model.embed_tokens.weight", "F16", [6, 4], 104, 48],
    ["mask", "U8", [3], 152, 3],
  ]);
  assertEquals(f.dataOffset % 8, 0);
  const ids = readTensorBytes(new BytesSource(HF), f.tensors[2]);
  assertEquals(Array.from(new Int32Array(ids.slice().buffer)), [-3, -2, -1, 0, 1, 2]);
  assertEquals(Array.from(readTensorBytes(new BytesSource(HF), f.tensors[4])), [1, 0, 1]);
});

Deno.test("writeSafetensors() reproduces a file Hugging Face safetensors wrote byte for byte", none, async () => {
  const src = new BytesSource(HF);
  const f = readSafetensors(src);
  assertBytesEqual(await write(f.tensors.map((t) => ({ ...t, data: readTensorBytes(src, t) })), f.metadata), HF);
});
