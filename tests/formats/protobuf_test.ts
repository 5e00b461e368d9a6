/**
 * Protobuf wire reader/writer. Oracle: the protobuf encoding spec (protobuf.dev/programming-guides/encoding) —
 * hand-assembled byte strings with known meanings (e.g. 150 = 96 01, int32 -1 = ten bytes ff…ff 01) — plus
 * one named hostile case per failure kind.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { FormatError } from "../../src/core/errors.ts";
import {
  fieldBool,
  fieldFloat32,
  fieldInt32,
  fieldString,
  fieldUint64,
  ProtoWriter,
  readProtoFields,
} from "../../src/formats/protobuf.ts";

const ctx = { format: "test" };
const bytes = (...b: number[]) => new Uint8Array(b);

Deno.test("readProtoFields() decodes the spec's examples (varint 150, string, fixed32)", () => {
  const f = readProtoFields(bytes(0x08, 0x96, 0x01, 0x12, 0x07, ...new TextEncoder().encode("testing")), ctx);
  assertEquals(f.length, 2);
  assertEquals([f[0].field, f[0].wire, fieldUint64(f[0])], [1, 0, 150]);
  assertEquals([f[1].field, f[1].wire, fieldString(f[1], ctx, "s")], [2, 2, "testing"]);
  assertEquals(Array.from(f[1].raw), [0x12, 0x07, ...new TextEncoder().encode("testing")]);
  const g = readProtoFields(bytes(0x15, 0x00, 0x00, 0x80, 0x3f), ctx);
  assertEquals(fieldFloat32(g[0]), 1);
});

Deno.test("readProtoFields() reads negative int32 as 10-byte varints and ProtoWriter writes them the same way", () => {
  const minusOne = bytes(0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
  const f = readProtoFields(minusOne, ctx)[0];
  assertEquals(fieldInt32(f), -1);
  assertEquals(Array.from(new ProtoWriter().int32(3, -1).finish()), Array.from(minusOne));
  assertEquals(fieldInt32(readProtoFields(new ProtoWriter().int32(1, -2147483648).finish(), ctx)[0]), -2147483648);
  assertEquals(fieldInt32(readProtoFields(new ProtoWriter().int32(1, 2147483647).finish(), ctx)[0]), 2147483647);
});

Deno.test("ProtoWriter output reads back field by field", () => {
  const w = new ProtoWriter().bool(1, true).bool(2, false).float32(3, -0.5).string(4, "▁你好").uint64(5, 2 ** 40)
    .bytes(6, bytes(1, 2, 3));
  const f = readProtoFields(w.finish(), ctx);
  assertEquals(f.map((x) => x.field), [1, 2, 3, 4, 5, 6]);
  assertEquals([fieldBool(f[0]), fieldBool(f[1]), fieldFloat32(f[2])], [true, false, -0.5]);
  assertEquals(fieldString(f[3], ctx, "s"), "▁你好");
  assertEquals(fieldUint64(f[4]), 2 ** 40);
  assertEquals(Array.from(f[5].bytes!), [1, 2, 3]);
});

Deno.test("readProtoFields() rejects a truncated varint", () => {
  assertThrows(() => readProtoFields(bytes(0x08, 0x96), ctx), FormatError, "truncated varint");
});

Deno.test("readProtoFields() rejects a varint longer than 10 bytes", () => {
  assertThrows(() => readProtoFields(bytes(0x08, ...new Array(11).fill(0x80), 0), ctx), FormatError, "longer than 10");
});

Deno.test("readProtoFields() rejects a length past the end (absurd length)", () => {
  assertThrows(() => readProtoFields(bytes(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2), ctx), FormatError, "exceeds");
  assertThrows(() => readProtoFields(bytes(0x0a, 0x05, 1, 2), ctx), FormatError, "length 5 exceeds the 2 bytes");
});

Deno.test("readProtoFields() rejects wire types 3, 4, 6 and 7", () => {
  for (const w of [3, 4, 6, 7]) assertThrows(() => readProtoFields(bytes(0x08 | w, 0), ctx), FormatError, "wire type");
});

Deno.test("readProtoFields() rejects field number 0", () => {
  assertThrows(() => readProtoFields(bytes(0x00, 0x01), ctx), FormatError, "field number 0");
});

Deno.test("readProtoFields() rejects a truncated fixed32 and fixed64", () => {
  assertThrows(() => readProtoFields(bytes(0x0d, 1, 2, 3), ctx), FormatError, "needs 4 bytes");
  assertThrows(() => readProtoFields(bytes(0x09, 1, 2, 3), ctx), FormatError, "needs 8 bytes");
});

Deno.test("fieldString() rejects invalid UTF-8 with FormatError and keeps a leading BOM", () => {
  const f = readProtoFields(bytes(0x0a, 0x02, 0xc3, 0x28), ctx)[0];
  assertThrows(() => fieldString(f, ctx, "piece 7"), FormatError, "piece 7 is not valid UTF-8");
  const bom = readProtoFields(bytes(0x0a, 0x03, 0xef, 0xbb, 0xbf), ctx)[0];
  assertEquals(fieldString(bom, ctx, "s"), "\uFEFF");
});

Deno.test("FormatError offsets point at the bad field in the outer buffer", () => {
  const e = assertThrows<FormatError>(
    () => readProtoFields(bytes(0x08, 0x01, 0x0f), { format: "test", baseOffset: 100 }),
    FormatError,
  );
  assertEquals(e.offset, 102);
});
