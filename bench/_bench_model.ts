/**
 * The random LLaMA-shaped GGUFs the engine benches share (e2e, serve, web): written once under /tmp with seeded raw
 * blocks and reused by every bench, so the same file (and bytes) is measured everywhere.
 */
import { writeFileAtomic } from "../src/io/atomic_file.ts";
import { writeGguf } from "../src/formats/gguf_writer.ts";
import { benchConfig, randomModelSpec } from "../fixtures/random_model.ts";

/** Path of the bench model `shape` in `dtype`, written (atomically, with a line on stderr) when it is missing. */
export async function ensureBenchModel(
  shape: "tinyllama-1.1b" | "7b-zh",
  dtype: "Q4_0" | "Q8_0" | "F16" = "Q4_0",
): Promise<string> {
  const path = `/tmp/yangtuo-bench-${shape}-${dtype.toLowerCase()}.gguf`;
  try {
    if (Deno.statSync(path).size > 0) return path;
  } catch { /* generate it */ }
  const t0 = performance.now();
  await writeFileAtomic(
    path,
    (sink) => writeGguf(sink, randomModelSpec(benchConfig(shape), { dtype, rawBlocks: true, seed: 1 })),
    8 << 20,
  );
  console.error(
    `wrote ${path} (${(Deno.statSync(path).size / 2 ** 30).toFixed(2)} GiB) in ${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s`,
  );
  return path;
}
