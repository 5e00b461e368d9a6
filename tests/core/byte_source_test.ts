/**
 * readFileAt(), the one positional-read loop (io/file_source.ts and the engine's shard workers use it), on a fake
 * file whose reads return a few bytes at a time. Oracle: the fake file's own bytes.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { readFileAt, type SeekableFile } from "../../src/core/byte_source.ts";

/** A file over `bytes` whose reads return at most `chunk` bytes. */
function fakeFile(bytes: Uint8Array, chunk: number): SeekableFile {
  let pos = 0;
  return {
    seekSync(offset, whence) {
      assertEquals(whence, 0);
      return pos = offset;
    },
    readSync(p) {
      const n = Math.min(chunk, p.length, bytes.length - pos);
      if (n <= 0) return null;
      p.set(bytes.subarray(pos, pos + n));
      pos += n;
      return n;
    },
  };
}

Deno.test({
  name: "readFileAt() loops over short reads and throws RangeError naming the file when it ends first",
  permissions: "none",
  fn() {
    const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
    const dst = new Uint8Array(30);
    readFileAt(fakeFile(bytes, 7), "m.gguf", 50, dst);
    assertEquals(Array.from(dst), Array.from(bytes.subarray(50, 80)));
    assertThrows(
      () => readFileAt(fakeFile(bytes, 7), "m.gguf", 90, dst),
      RangeError,
      `"m.gguf": file ended at byte 100`,
    );
  },
});
