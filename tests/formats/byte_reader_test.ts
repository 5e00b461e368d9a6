/**
 * Tests for ByteReader / ByteWriter. Oracle: DataView little-endian encodings written by hand in the test, and
 * round trips through ByteWriter.
 */
import { ByteReader } from "../../src/formats/byte_reader.ts";
import { ByteWriter } from "../../src/formats/byte_writer.ts";
import type { ByteSource } from "../../src/core/byte_source.ts";
import { FormatError } from "../../src/core/errors.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";

const none = { permissions: "none" } as const;

/** A ByteSource that counts its reads and copies like a file would. */
class CountingSource implements ByteSource {
  reads = 0;
  constructor(readonly bytes: Uint8Array, readonly name = "mem.bin") {}
  get size() {
    return this.bytes.length;
  }
  read(off: number, n: number): Uint8Array {
    this.reads++;
    if (off < 0 || off + n > this.bytes.length) throw new RangeError(`out of range ${off}+${n}`);
    return this.bytes.slice(off, off + n);
  }
  readInto(off: number, dst: Uint8Array): void {
    dst.set(this.read(off, dst.length));
  }
}

function sample(): Uint8Array {
  const w = new ByteWriter(4);
  w.u8(0xfe);
  w.i8(-2);
  w.u16(0xbeef);
  w.i16(-300);
  w.u32(0xdeadbeef);
  w.i32(-123456789);
  w.u64(0xfedcba9876543210n);
  w.i64(-5n);
  w.f32(1.5);
  w.f64(Math.PI);
  w.utf8("羊驼");
  return w.finish();
}

Deno.test("ByteReader reads every little-endian type ByteWriter writes", none, () => {
  for (const src of [sample(), new CountingSource(sample())]) {
    const r = new ByteReader(src, { format: "t", windowBytes: 5 });
    assertEquals(r.u8(), 0xfe);
    assertEquals(r.i8(), -2);
    assertEquals(r.u16(), 0xbeef);
    assertEquals(r.i16(), -300);
    assertEquals(r.u32(), 0xdeadbeef);
    assertEquals(r.i32(), -123456789);
    assertEquals(r.u64(), 0xfedcba9876543210n);
    assertEquals(r.i64(), -5n);
    assertEquals(r.f32(), 1.5);
    assertEquals(r.f64(), Math.PI);
    assertEquals(r.string(6), "羊驼");
    assertEquals(r.remaining, 0);
  }
});

Deno.test("ByteReader decodes bytes laid out by DataView by hand", none, () => {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x01020304, true);
  v.setBigUint64(4, 42n, true);
  const r = new ByteReader(b, { format: "t" });
  assertEquals(r.u32(), 0x01020304);
  assertEquals(r.u64Number(), 42);
});

Deno.test("ByteReader throws FormatError with the offset on every overrun", none, () => {
  const b = sample();
  for (let n = 0; n < b.length; n++) {
    const r = new ByteReader(new CountingSource(b.slice(0, n)), { format: "t", windowBytes: 3 });
    const e = assertThrows<FormatError>(() => {
      r.u8();
      r.i8();
      r.u16();
      r.i16();
      r.u32();
      r.i32();
      r.u64();
      r.i64();
      r.f32();
      r.f64();
      r.string(6);
    }, FormatError);
    assertEquals(e.format, "t");
    assert(e.offset !== undefined && e.offset <= n);
  }
});

Deno.test("ByteReader.u64Number() rejects values past 2^53", none, () => {
  const w = new ByteWriter();
  w.u64(1n << 60n);
  w.i64(-(1n << 60n));
  const r = new ByteReader(w.finish(), { format: "t" });
  assertThrows(() => r.u64Number("count"), FormatError, "count");
  assertThrows(() => r.i64Number("delta"), FormatError, "delta");
});

Deno.test("ByteReader.string() enforces its length limit and UTF-8 before reading", none, () => {
  const r = new ByteReader(new Uint8Array([0xff, 0xfe, 0x41]), { format: "t" });
  assertThrows(() => r.string(2, "name", { maxBytes: 1 }), FormatError, "limit");
  assertThrows(() => r.string(2, "name"), FormatError, "UTF-8");
  r.seek(0);
  assertEquals(r.string(3, "name", { lossy: true }), "\ufffd\ufffdA");
  assertThrows(() => r.bytes(2 ** 60), FormatError);
  assertThrows(() => r.bytes(-1), FormatError);
  assertThrows(() => r.seek(4), FormatError);
});

Deno.test("ByteReader reads a ByteSource through a window, not byte by byte", none, () => {
  const src = new CountingSource(new Uint8Array(1000));
  const r = new ByteReader(src, { format: "t", windowBytes: 256 });
  for (let i = 0; i < 250; i++) r.u32();
  assertEquals(src.reads, 4);
  assertThrows(() => r.u8(), FormatError);
});

Deno.test("ByteReader honours an end inside the source", none, () => {
  const r = new ByteReader(new Uint8Array(16), { format: "t", offset: 4, end: 8 });
  assertEquals(r.remaining, 4);
  r.u32();
  assertThrows(() => r.u8(), FormatError);
  assertThrows(() => new ByteReader(new Uint8Array(4), { format: "t", end: 5 }), RangeError);
});

Deno.test("ByteWriter rejects values outside their type", none, () => {
  const w = new ByteWriter();
  assertThrows(() => w.u32(2 ** 32), RangeError);
  assertThrows(() => w.u8(-1), RangeError);
  assertThrows(() => w.i32(1.5), RangeError);
  assertThrows(() => w.u64(-1n), RangeError);
  assertThrows(() => w.i64(1n << 63n), RangeError);
  w.u8(1);
  w.padTo(8);
  assertEquals(w.finish(), new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
});

Deno.test("ByteReader.string() keeps a leading byte-order mark", none, () => {
  const r = new ByteReader(new Uint8Array([0xef, 0xbb, 0xbf]), { format: "t" });
  assertEquals(r.string(3), "\ufeff");
  r.seek(0);
  assertEquals(r.string(3, "s", { lossy: true }), "\ufeff");
});
