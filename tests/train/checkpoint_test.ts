/**
 * Tests of the training checkpoint file: round trip (read(write(x)) ≡ x, bit for bit, NaN payloads and −0
 * included), size announced up front, and hostile input (truncation at every byte, flipped data, bad header).
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { FormatError } from "../../src/core/errors.ts";
import { type Checkpoint, checkpointSize, readCheckpoint, writeCheckpoint } from "../../src/train/checkpoint.ts";

function sample(): Checkpoint {
  const odd = new Float32Array([1.5, -0, NaN, Infinity, 3e-45]);
  new Uint32Array(odd.buffer)[2] = 0x7fc01234; // a NaN with a payload must survive
  return {
    meta: { step: 7, rng: [1, 2, 4294967295], cursor: { epoch: 1, position: 3 }, note: "中文" },
    tensors: [
      { name: "param/a", data: odd },
      { name: "adam_m/a", data: new Float32Array(0) },
      { name: "adam_v/a", data: Float32Array.from({ length: 33 }, (_, i) => i / 7) },
    ],
  };
}

function bytesOf(c: Checkpoint): Uint8Array {
  const sink = new BytesSink();
  writeCheckpoint(sink, c);
  return sink.bytes();
}

Deno.test("readCheckpoint(writeCheckpoint(x)) gives x back bit for bit", () => {
  const c = sample();
  const b = bytesOf(c);
  assertEquals(b.length, checkpointSize(c));
  const r = readCheckpoint(new BytesSource(b, "x.ckpt"));
  assertEquals(r.meta, c.meta);
  assertEquals(r.tensors.map((t) => t.name), c.tensors.map((t) => t.name));
  for (let i = 0; i < c.tensors.length; i++) {
    assertEquals([...new Uint32Array(r.tensors[i].data.buffer)], [...new Uint32Array(c.tensors[i].data.buffer)]);
  }
});

Deno.test("readCheckpoint() throws FormatError when truncated at every byte", () => {
  const b = bytesOf(sample());
  for (let n = 0; n < b.length; n++) {
    assertThrows(() => readCheckpoint(new BytesSource(b.subarray(0, n), "t.ckpt")), FormatError);
  }
});

Deno.test("readCheckpoint() refuses damaged data, a foreign file, a bad header and trailing bytes", () => {
  const b = bytesOf(sample());
  const flipped = b.slice();
  flipped[b.length - 10] ^= 1;
  assertThrows(() => readCheckpoint(new BytesSource(flipped)), FormatError, "CRC-32");
  const foreign = b.slice();
  foreign[0] = 0x50;
  assertThrows(() => readCheckpoint(new BytesSource(foreign)), FormatError, "bad magic");
  const longer = new Uint8Array(b.length + 4);
  longer.set(b);
  assertThrows(() => readCheckpoint(new BytesSource(longer)), FormatError, "unexpected bytes");
  const huge = b.slice();
  new DataView(huge.buffer).setUint32(8, 0xffffffff, true);
  assertThrows(() => readCheckpoint(new BytesSource(huge)), FormatError, "header length");
  const badJson = b.slice();
  badJson[12] = 0x7b + 1;
  assertThrows(() => readCheckpoint(new BytesSource(badJson)), FormatError, "not valid JSON");
  assertThrows(
    () => writeCheckpoint(new BytesSink(), { meta: {}, tensors: [sample().tensors[0], sample().tensors[0]] }),
    RangeError,
    "duplicate",
  );
});
