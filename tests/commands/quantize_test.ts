/**
 * Tests of `quantize`: every 2-D tensor's bytes equal the reference quantizer (llama.cpp-identical, golden-tested
 * in tests/quant) applied to the input tensor, 1-D tensors stay F32 byte for byte, metadata gets llama.cpp's
 * file type, already-quantized input needs --allow-requantize, and an existing output is refused.
 */
import { assertEquals, assertRejects } from "../_assert.ts";
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { UserError } from "../../src/core/errors.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { run } from "../../src/commands/quantize.ts";
import { quantizeGguf } from "../../src/merge/pipeline.ts";
import { quantizeRowQ4_0Ref } from "../../src/quant/q4_0.ts";
import { quantizeRowQ8_0Ref } from "../../src/quant/q8_0.ts";
import { tinyGgufFiles, writeTinyFiles } from "../_tiny_model.ts";
import { decode } from "../merge/_expect.ts";

const tmp = Deno.makeTempDirSync({ prefix: "yangtuo-quantize-" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
const spec = { dim: 64, hiddenDim: 160, nLayers: 1, nHeads: 2, vocabSize: 40, seed: 4 };
const src = `${(await writeTinyFiles(`${tmp}/in`, tinyGgufFiles(spec, { dtype: "F16" })))}/model.gguf`;

for (
  const [target, ref, dtype] of [["Q4_0", quantizeRowQ4_0Ref, "Q4_0"], ["Q8_0", quantizeRowQ8_0Ref, "Q8_0"]] as const
) {
  Deno.test(`quantizeGguf() ${target} equals the reference quantizer on every weight`, async () => {
    const input = new BytesSource(Deno.readFileSync(src));
    const sink = new BytesSink();
    await quantizeGguf(input, sink, target);
    const inFile = readGguf(input), out = new BytesSource(sink.bytes());
    const outFile = readGguf(out);
    assertEquals(outFile.metadata.get("general.file_type"), target === "Q4_0" ? 2 : 7);
    assertEquals(outFile.metadata.get("llama.embedding_length"), 64);
    for (const t of inFile.tensors) {
      const o = outFile.tensors.find((x) => x.name === t.name)!;
      const bytes = out.read(o.byteOffset, o.nBytes);
      if (t.shape.length === 1) {
        assertEquals(o.dtype, "F32");
        assertEquals(bytes, input.read(t.byteOffset, t.nBytes));
        continue;
      }
      assertEquals(o.dtype, dtype);
      const want = new Uint8Array(o.nBytes);
      ref(decode(t.dtype, input.read(t.byteOffset, t.nBytes)), want);
      assertEquals(bytes, want, t.name);
    }
  });
}

Deno.test("quantize run() writes atomically, refuses existing output and re-quantization", async () => {
  const q4 = `${tmp}/q4.gguf`;
  assertEquals(await run([src, q4, "q4_0"]), 0);
  await assertRejects(() => run([src, q4, "q4_0"]), UserError, "exists");
  await assertRejects(() => run([q4, `${tmp}/q8.gguf`, "q8_0"]), UserError, "already Q4_0");
  assertEquals(await run([q4, `${tmp}/q8.gguf`, "q8_0", "--allow-requantize"]), 0);
  assertEquals([...Deno.readDirSync(tmp)].filter((e) => e.name.startsWith(".yangtuo-tmp")).length, 0);
});

Deno.test("quantizeGguf() with worker threads writes the same bytes", async () => {
  const input = new BytesSource(Deno.readFileSync(src));
  const one = new BytesSink(), pooled = new BytesSink();
  await quantizeGguf(input, one, "Q4_0");
  await quantizeGguf(input, pooled, "Q4_0", { threads: 3 });
  assertEquals(pooled.bytes(), one.bytes());
});

Deno.test("progress formatting: bytes, durations", async () => {
  const { formatBytes, formatDuration, Progress } = await import("../../src/commands/_progress.ts");
  assertEquals([formatBytes(999), formatBytes(12_345), formatBytes(4.2e7), formatBytes(1.3e10)], [
    "999 B",
    "12 kB",
    "42.0 MB",
    "13.00 GB",
  ]);
  assertEquals([formatDuration(42.4), formatDuration(187), formatDuration(3720)], ["42s", "3m07s", "1h02m"]);
  const bar = new Progress("x", 100, false); // disabled: counts, draws nothing
  bar.add(40);
  bar.add(60);
  bar.finish();
  assertEquals(bar.done, 100);
});

Deno.test("quantize and convert refuse an OUT that is a folder (even with --force) before any work", async () => {
  const { convertToGguf } = await import("../../src/commands/_pipeline_files.ts");
  const out = `${tmp}/out-is-a-folder`;
  Deno.mkdirSync(out);
  await assertRejects(() => run([src, out, "q4_0", "--force"]), UserError, "it is a folder");
  await assertRejects(() => convertToGguf(src, out, { force: true }), UserError, "it is a folder");
  await assertRejects(() => run([src, `${tmp}/no-such-dir/x.gguf`, "q8_0"]), UserError, "does not exist");
  // nothing was written beside or inside it
  assertEquals([...Deno.readDirSync(out)], []);
  assertEquals([...Deno.readDirSync(tmp)].filter((e) => e.name.startsWith(".yangtuo-tmp-")), []);
});
