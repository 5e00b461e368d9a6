/**
 * BlobSource over a fake Blob (Deno has no FileReaderSync; the real one runs in tests/web in Chromium).
 * Oracle: the bytes themselves — every read must equal the same range of the backing array.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { type BlobLike, BlobSource, fileReaderSync } from "../../src/core/blob_source.ts";
import { UnsupportedError } from "../../src/core/errors.ts";

/** A Blob-shaped view of bytes (slice clamps like Blob.slice); `read` returns a slice's bytes. */
class FakeBlob implements BlobLike {
  slices: [number, number][] = [];
  constructor(readonly bytes: Uint8Array, readonly size = bytes.length, readonly start = 0, readonly root?: FakeBlob) {}
  slice(start = 0, end = this.size): FakeBlob {
    const s = Math.min(Math.max(start, 0), this.size), e = Math.min(Math.max(end, s), this.size);
    (this.root ?? this).slices.push([this.start + s, this.start + e]);
    return new FakeBlob(this.bytes, e - s, this.start + s, this.root ?? this);
  }
}
const read = (b: BlobLike) => {
  const f = b as FakeBlob;
  return f.bytes.slice(f.start, f.start + f.size).buffer;
};

Deno.test("BlobSource reads every range exactly as the bytes hold it", { permissions: "none" }, () => {
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 255);
  const src = new BlobSource(new FakeBlob(bytes), "m.gguf", read);
  assertEquals(src.size, 300);
  for (const [off, n] of [[0, 1], [0, 300], [299, 1], [17, 33], [300, 0], [150, 0]]) {
    assertEquals(src.read(off, n), bytes.slice(off, off + n), `read(${off}, ${n})`);
    const dst = new Uint8Array(n);
    src.readInto(off, dst);
    assertEquals(dst, bytes.slice(off, off + n));
  }
});

Deno.test("BlobSource throws RangeError outside the blob, naming it", { permissions: "none" }, () => {
  const src = new BlobSource(new FakeBlob(new Uint8Array(10)), "m.gguf", read);
  assertThrows(() => src.read(5, 6), RangeError, `"m.gguf" has 10 bytes`);
  assertThrows(() => src.read(-1, 1), RangeError);
  assertThrows(() => src.read(0.5, 1), RangeError);
});

Deno.test("BlobSource passes offsets above 4 GiB to Blob.slice unchanged", { permissions: "none" }, () => {
  // a 5 GiB "file" whose slices read as zeros: only the offsets matter here
  const big = new FakeBlob(new Uint8Array(0), 5 * 2 ** 30);
  const src = new BlobSource(big, "big.gguf", (b) => new ArrayBuffer(b.size));
  src.read(4 * 2 ** 30 + 3, 16);
  assertEquals(big.slices, [[4 * 2 ** 30 + 3, 4 * 2 ** 30 + 19]]);
});

Deno.test("BlobSource throws when the blob gives fewer bytes than asked (file changed on disk)", {
  permissions: "none",
}, () => {
  const src = new BlobSource(new FakeBlob(new Uint8Array(10)), "m.gguf", () => new ArrayBuffer(3));
  assertThrows(() => src.read(0, 4), RangeError, "gave 3");
});

Deno.test("fileReaderSync() throws UnsupportedError where there is no FileReaderSync", { permissions: "none" }, () => {
  assertThrows(() => fileReaderSync(), UnsupportedError, "dedicated workers");
  assertThrows(() => new BlobSource(new FakeBlob(new Uint8Array(1))), UnsupportedError);
});
