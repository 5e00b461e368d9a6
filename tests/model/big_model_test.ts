/**
 * The 7B shape with the Chinese vocabulary (dim 4096, 32 layers, hidden 11008, vocab 49,954; ~3.9 GB Q4_0, random
 * blocks written directly) loads and generates with `-c 2048` within 16 GiB of RSS: `cli.ts generate` in a child
 * process under GNU time (peak RSS of the whole process, workers included). Only with YANGTUO_BIG_TESTS=1:
 * writing the file takes ~45 s and loading ~15 s on the shared 2-core machine; the file is kept in /tmp for reuse.
 * Oracle: the acceptance bound itself (16 GiB) and the shard count the 4 GiB-per-memory limit forces (≥ 2 shards
 * on the one thread asked for).
 */
import { assert, assertEquals } from "../_assert.ts";
import { AtomicFileSink } from "../../src/io/atomic_file.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { benchConfig, randomModelSpec } from "../../fixtures/random_model.ts";

const PATH = "/tmp/yangtuo-bench-7b-zh-q4_0.gguf";
const big = (() => {
  try {
    return Deno.env.get("YANGTUO_BIG_TESTS") === "1";
  } catch {
    return false;
  }
})();

Deno.test({
  name: "generate runs a 7B-shaped Q4_0 model (vocab 49,954) at -c 2048 within 16 GiB RSS",
  ignore: !big,
  async fn() {
    try {
      Deno.statSync(PATH);
    } catch {
      const sink = new AtomicFileSink(PATH, 8 << 20);
      await writeGguf(sink, randomModelSpec(benchConfig("7b-zh"), { dtype: "Q4_0", rawBlocks: true, seed: 1 }));
      sink.commit();
    }
    const cli = new URL("../../cli.ts", import.meta.url).pathname;
    const out = await new Deno.Command("/usr/bin/time", {
      args: [
        "-v",
        Deno.execPath(),
        "run",
        "--allow-read",
        "--allow-env",
        "--allow-sys",
        cli,
        "generate",
        "-m",
        PATH,
        "-c",
        "2048",
        "-n",
        "8",
        "-t",
        "1",
        "-p",
        "abc",
        "--temp",
        "0",
        "--json",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr.slice(-3000));
    const j = JSON.parse(new TextDecoder().decode(out.stdout));
    assertEquals(j.ids.length, 8);
    // -t 1 still needs ≥ 2 shards: 3.75 GB of weights + 1 GiB of f16 KV cache exceed one 4 GiB memory
    assert(/context 2048, 1 thread\(s\), [2-9] shard/.test(stderr), stderr.slice(0, 500));
    const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1]);
    console.log(`7B Q4_0 -c 2048: peak RSS ${(kb / 2 ** 20).toFixed(2)} GiB`);
    assert(kb > 0 && kb < 16 * 2 ** 20, `peak RSS ${kb} kB`);
  },
});
