/**
 * Training memory at 7B (opt-in: YANGTUO_TRAIN_7B=1): one LoRA optimizer step (r 8 on q,k,v,o, no modules_to_save,
 * batch 1 × block 512, recompute on, 2 threads) on a 7B-shaped Q4_0 base (dim 4096, hidden 11008, 32 layers, 32
 * heads, vocab 49954), its layer matrices streamed from the GGUF one layer at a time (src/train/frozen_store.ts) and
 * the WASM kernels keeping no resident copy. Prints seconds per step and peak RSS (VmHWM from /proc/<pid>/status,
 * plus RSS sampled at every layer load), with a progress line per layer read (a step reads 2 × 32 layers).
 * The bit-identity of the streamed and resident paths is tested in tests/train/frozen_store_test.ts.
 * Run: YANGTUO_TRAIN_7B=1 deno run --allow-read --allow-write=/tmp --allow-env --allow-run=cat --allow-sys \
 *        bench/train_7b_bench.ts   (or under `/usr/bin/time -v` for the kernel's own max-RSS figure)
 * Env: YANGTUO_TRAIN_7B_LAYERS (default 32: the base cut to fewer layers for extrapolation),
 * YANGTUO_TRAIN_7B_GGUF (default /tmp/yangtuo-bench-7b-zh-q4_0.gguf for 32 layers, the e2e bench's file, else
 * /tmp/yangtuo-train-7b-<layers>l.gguf; generated when absent), YANGTUO_TRAIN_7B_STEPS (default 1),
 * YANGTUO_TRAIN_7B_THREADS (1 or 2, default 2), YANGTUO_TRAIN_7B_SAVE=1 for the seed's stage 2 (modules_to_save
 * embed_tokens + lm_head, f32 with AdamW state), YANGTUO_TRAIN_7B_RESIDENT=1 for the old path (every matrix read
 * into WASM memory once, allocFrozenWeight) to compare.
 */
import { ensureBenchModel } from "./_bench_model.ts";
import { readGguf } from "../src/formats/gguf.ts";
import { writeGguf } from "../src/formats/gguf_writer.ts";
import { createWasmTrainKernels } from "../src/kernels/train_wasm.ts";
import { configFromGgufMetadata, type LlamaConfig } from "../src/model/config.ts";
import { benchConfig, randomModelSpec } from "../fixtures/random_model.ts";
import { writeFileAtomic } from "../src/io/atomic_file.ts";
import { FileSource } from "../src/io/file_source.ts";
import { TensorTable } from "../src/model/weights.ts";
import {
  streamedTrainBase,
  type TrainBase,
  trainBaseFromTable,
  type TrainBatch,
  Trainer,
  type TrainOptions,
} from "../src/train/mod.ts";
import { hostInfo } from "./_host.ts";

const env = (k: string) => Deno.env.get(k);
const GiB = 2 ** 30;

/** VmHWM / VmRSS of this process in bytes (through `cat`: Deno reads /proc only with --allow-all). */
function procStatus(): { hwm: number; rss: number } {
  try {
    const out = new Deno.Command("cat", { args: [`/proc/${Deno.pid}/status`], stdout: "piped", stderr: "null" })
      .outputSync();
    const text = new TextDecoder().decode(out.stdout);
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s*(\\d+) kB`, "m").exec(text)?.[1] ?? NaN) * 1024;
    return { hwm: kb("VmHWM"), rss: kb("VmRSS") };
  } catch {
    return { hwm: NaN, rss: NaN };
  }
}

/** A seeded batch of random tokens; labels = tokens (run_clm). */
function randomBatch(seqLen: number, vocab: number, seed: number): TrainBatch {
  let s = seed >>> 0;
  const tokens = new Int32Array(seqLen);
  for (let i = 0; i < seqLen; i++) tokens[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % vocab;
  return { batch: 1, seqLen, tokens, labels: tokens.slice() };
}

async function ensureModel(layers: number): Promise<string> {
  const given = env("YANGTUO_TRAIN_7B_GGUF");
  // all 32 layers: the e2e bench's own file (same seed and bytes), written by the same function when missing
  if (given === undefined && layers === 32) return ensureBenchModel("7b-zh");
  const c: LlamaConfig = { ...benchConfig("7b-zh"), nLayers: layers };
  const path = given ?? `/tmp/yangtuo-train-7b-${layers}l.gguf`;
  try {
    Deno.statSync(path);
    return path;
  } catch { /* generate it */ }
  console.error(`writing ${path} (7B-shaped Q4_0, ${layers} layers, random weights)…`);
  await writeFileAtomic(
    path,
    (sink) => writeGguf(sink, randomModelSpec(c, { dtype: "Q4_0", seed: 3, rawBlocks: true })),
  );
  return path;
}

async function main(): Promise<void> {
  const layers = Number(env("YANGTUO_TRAIN_7B_LAYERS") ?? 32);
  const steps = Number(env("YANGTUO_TRAIN_7B_STEPS") ?? 1);
  const threads = Number(env("YANGTUO_TRAIN_7B_THREADS") ?? 2) as 1 | 2;
  const save = env("YANGTUO_TRAIN_7B_SAVE") === "1";
  const residentPath = env("YANGTUO_TRAIN_7B_RESIDENT") === "1";
  console.log(hostInfo().line);
  const path = await ensureModel(layers);
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
  let peakSampled = 0;
  const sample = () => {
    const r = Deno.memoryUsage().rss;
    peakSampled = Math.max(peakSampled, r);
    return r;
  };
  const wasm = await createWasmTrainKernels({ threads, maxResidentBytes: 0 });
  using src = new FileSource(path);
  const g = readGguf(src);
  const meta = g.metadata as Map<string, unknown>;
  const c = configFromGgufMetadata(meta);
  if (c.dim !== 4096 || c.nLayers !== layers || c.vocabSize !== 49954) {
    throw new Error(`${path}: dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize} is not the 7B-zh shape`);
  }
  const table = new TensorTable({ metadata: meta, tensors: g.tensors, source: src }, c);
  let base: TrainBase;
  if (residentPath) {
    base = trainBaseFromTable(table, (type, nOut, nIn) => wasm.allocFrozenWeight(type, nOut, nIn));
  } else {
    base = streamedTrainBase(table, {
      onLayerLoad: (layer, st) => {
        const r = sample();
        console.error(
          `  [${secs()} s] layer ${layer} read (${st.layerLoads} loads, ${
            (st.bytesRead / GiB).toFixed(2)
          } GiB read), ` +
            `RSS ${(r / GiB).toFixed(2)} GiB`,
        );
      },
    });
  }
  const options: TrainOptions = {
    mode: "lora",
    lora: { r: 8, alpha: 32, dropout: 0.05, targets: ["q_proj", "k_proj", "v_proj", "o_proj"] },
    modulesToSave: save ? ["embed_tokens", "lm_head"] : [],
    lr: 1e-4,
    maxSteps: 10,
    recompute: true,
  };
  const trainer = new Trainer(base, options, wasm);
  const counts = trainer.parameterCounts();
  console.log(
    `7B-shaped Q4_0 ${layers} layers, LoRA r8 q,k,v,o${save ? " + embed_tokens/lm_head" : ""}, block 512, batch 1, ` +
      `recompute, ${threads} thread(s), ${residentPath ? "resident (allocFrozenWeight)" : "streamed per layer"}; ` +
      `trainable ${counts.trainable} of ${counts.total}; setup ${secs()} s, RSS ${(sample() / GiB).toFixed(2)} GiB`,
  );
  const batch = randomBatch(512, c.vocabSize, 5);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s0 = performance.now();
    const r = trainer.step([batch]);
    times.push((performance.now() - s0) / 1000);
    console.log(
      `step ${r.step}: loss ${r.loss.toFixed(4)} grad norm ${r.gradNorm.toExponential(3)} in ${
        times[i].toFixed(1)
      } s, RSS ${(sample() / GiB).toFixed(2)} GiB`,
    );
  }
  wasm.close();
  const st = procStatus();
  console.log(
    `result: ${layers} layers${save ? " stage 2 + modules_to_save" : ""}: ${Math.min(...times).toFixed(1)} s/step, ` +
      `peak RSS (VmHWM) ${(st.hwm / GiB).toFixed(2)} GiB, peak sampled ${(peakSampled / GiB).toFixed(2)} GiB, ` +
      `WASM memory ${(wasm.kernels.memory.buffer.byteLength / GiB).toFixed(2)} GiB, ` +
      `${wasm.parallelCalls} products split over 2 threads` +
      ("stats" in base
        ? `, layer bytes read ${((base as ReturnType<typeof streamedTrainBase>).stats.bytesRead / GiB).toFixed(2)} GiB`
        : ""),
  );
}

if (import.meta.main) {
  if (env("YANGTUO_TRAIN_7B") !== "1") console.log("skip: set YANGTUO_TRAIN_7B=1 to run the 7B training-memory bench");
  else await main();
}
