/**
 * AtomicFileSink: the output appears only on commit, and every failure path (abort, a failing rename) removes the
 * temp file. Oracle: the file system listing.
 */
import { assertEquals, assertThrows } from "../_assert.ts";
import { AtomicFileSink, writeFileAtomic } from "../../src/io/atomic_file.ts";

const tmp = Deno.makeTempDirSync({ prefix: "yangtuo-atomic-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
const leftovers = (dir: string) => [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith(".yangtuo-tmp-"));

Deno.test("AtomicFileSink.commit() renames into place; abort() leaves nothing", () => {
  const dir = Deno.makeTempDirSync({ dir: tmp });
  const a = new AtomicFileSink(`${dir}/a.bin`);
  a.write(new Uint8Array([1, 2, 3]));
  a.commit();
  assertEquals(Deno.readFileSync(`${dir}/a.bin`), new Uint8Array([1, 2, 3]));
  const b = new AtomicFileSink(`${dir}/b.bin`);
  b.write(new Uint8Array([4]));
  b.abort();
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["a.bin"]);
});

Deno.test("AtomicFileSink.commit() removes its temp file when the rename fails (destination is a folder)", () => {
  const dir = Deno.makeTempDirSync({ dir: tmp });
  Deno.mkdirSync(`${dir}/out.gguf`);
  Deno.writeFileSync(`${dir}/out.gguf/keep`, new Uint8Array([9]));
  const sink = new AtomicFileSink(`${dir}/out.gguf`);
  sink.write(new Uint8Array(3 << 20));
  assertThrows(() => sink.commit());
  assertEquals(leftovers(dir), []);
});

Deno.test("writeFileAtomic() rejects and leaves no temp file when the destination is a folder", async () => {
  const dir = Deno.makeTempDirSync({ dir: tmp });
  Deno.mkdirSync(`${dir}/out`);
  let error: unknown;
  try {
    await writeFileAtomic(`${dir}/out`, (s) => s.write(new Uint8Array([1, 2])));
  } catch (e) {
    error = e;
  }
  assertEquals(error instanceof Error, true);
  assertEquals(leftovers(dir), []);
});
