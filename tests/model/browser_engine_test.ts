/**
 * loadEngineFromBlob(): a GGUF read through BlobSource (a fake Blob here; Chromium's real one in tests/web) must
 * run exactly like the same bytes loaded with loadEngineFromBytes(). Oracle: the in-memory engine — logits bit for
 * bit on one shard, and within float tolerance when the Blob engine is split into 3 shards (the sharding that lets
 * models above 4 GiB load); the TS reference is compared with the fast engine in engine_test.ts.
 */
import { assertAllClose, assertEquals, assertRejects } from "../_assert.ts";
import { BytesSink } from "../../src/core/byte_source.ts";
import type { BlobLike } from "../../src/core/blob_source.ts";
import { UserError } from "../../src/core/errors.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { loadEngineFromBlob } from "../../src/model/browser_engine.ts";
import { loadEngineFromBytes } from "../../src/model/engine.ts";
import { randomModelSpec } from "../../fixtures/random_model.ts";
import { tinyConfig } from "./_tiny.ts";

class FakeBlob implements BlobLike {
  constructor(readonly bytes: Uint8Array, readonly start = 0, readonly size = bytes.length) {}
  slice(start = 0, end = this.size): FakeBlob {
    return new FakeBlob(this.bytes, this.start + start, Math.min(end, this.size) - start);
  }
}
const readFake = (b: BlobLike) => {
  const f = b as FakeBlob;
  return f.bytes.slice(f.start, f.start + f.size).buffer;
};

async function tinyBytes(): Promise<Uint8Array> {
  const sink = new BytesSink();
  await writeGguf(sink, randomModelSpec(tinyConfig(2, { vocabSize: 320 }), { dtype: "Q8_0", seed: 3 }));
  return sink.bytes();
}

const PROMPT = [1, 50, 60, 70, 80, 90];

Deno.test("loadEngineFromBlob() gives the logits of loadEngineFromBytes() (1 shard exactly, 3 shards closely)", async () => {
  const bytes = await tinyBytes();
  const ref = await loadEngineFromBytes(bytes, { threads: 1, contextSize: 32 });
  const one = await loadEngineFromBlob(
    new FakeBlob(bytes) as unknown as Blob,
    { threads: 1, contextSize: 32 },
    "t",
    readFake,
  );
  const three = await loadEngineFromBlob(
    new FakeBlob(bytes) as unknown as Blob,
    { threads: 1, minShards: 3, contextSize: 32 },
    "t",
    readFake,
  );
  try {
    assertEquals(three.nShards, 3);
    assertEquals(one.tokenizer.encode("ab cd", { bos: true }), ref.tokenizer.encode("ab cd", { bos: true }));
    const want = await ref.evalAll(PROMPT, 0);
    assertEquals(await one.evalAll(PROMPT, 0), want);
    const got = await three.evalAll(PROMPT, 0);
    for (let i = 0; i < want.length; i++) {
      assertAllClose(got[i], want[i], { atol: 1e-4, rtol: 1e-4, msg: `token ${i}` });
    }
  } finally {
    ref.close();
    one.close();
    three.close();
  }
});

Deno.test("loadEngineFromBlob() rejects a file that is not GGUF, and a damaged one, with UserError", async () => {
  const junk = new FakeBlob(new TextEncoder().encode("not a model at all")) as unknown as Blob;
  await assertRejects(() => loadEngineFromBlob(junk, {}, "junk.bin", readFake), UserError, "not a GGUF file");
  const bytes = await tinyBytes();
  const cut = new FakeBlob(bytes.slice(0, 200)) as unknown as Blob;
  await assertRejects(() => loadEngineFromBlob(cut, {}, "cut.gguf", readFake), UserError, `"cut.gguf"`);
});
