/**
 * Training-speed benchmark (opt-in: YANGTUO_BENCH_TRAIN=1): tokens/s of one optimizer step (forward + backward +
 * AdamW) on random LLaMA models, batch 8 × 256 tokens, vocab 4096, our Trainer on the WASM train kernels against
 * PyTorch 1.13 CPU eager in the same run (../shared/anchors/torch_train_anchor.py's `run`, the issue's anchor, in a
 * subprocess), full training and the seed's stage 2 (LoRA r 8 on q,k,v,o + embed_tokens/lm_head trainable).
 * Shapes: dim 128 / 5 layers / 8-4 heads / hidden 352 (babyllama105's body) and dim 288 / 6 layers / 6 heads /
 * hidden 768 (stories15M's; full only). Also model FLOP/s (6 × matmul parameters × tok/s) against numpy's sgemm
 * rate on this host (same run, same threads). Validates before timing: the WASM-kernel loss and gradient norm must
 * equal the scalar-kernel ones on a small batch.
 * Threads: ours at 1 and 2 (createWasmTrainKernels({ threads: 2 }) splits each matrix product, the attention, the
 * cross-entropy and SwiGLU with a Worker; RMSNorm, RoPE, residual adds, the embedding and AdamW stay on the main
 * thread), PyTorch at 1 and 2 (torch.set_num_threads).
 * Run: YANGTUO_BENCH_TRAIN=1 deno run --allow-read --allow-write=/tmp --allow-env --allow-run --allow-sys bench/train_bench.ts
 * Env: YANGTUO_BENCH_TRAIN_STEPS (timed steps, default 3), YANGTUO_BENCH_TRAIN_288=0 to skip the dim-288 shape,
 * YANGTUO_BENCH_TRAIN_ONLY=<shape name> for one shape, YANGTUO_BENCH_NUMPY_PYTHON (default `python3` on PATH: the
 * numpy with an optimized BLAS; Debian's /usr/bin/python3 numpy links the reference BLAS here).
 * Memory: YANGTUO_BENCH_TRAIN_7B=<layers> runs only a LoRA step (r 8 on q,k,v,o, no modules_to_save, recompute on)
 * on a 7B-shaped Q4_0 base (dim 4096, hidden 11008, 32 heads, vocab 49954) cut to <layers> layers, block 512,
 * batch 1, its matrices read from a /tmp GGUF straight into WASM memory; prints RSS and seconds per step, and the
 * per-layer increments so a 32-layer figure can be extrapolated (labelled as such).
 */
import { hostInfo } from "./_host.ts";
import { BytesSink, BytesSource } from "../src/core/byte_source.ts";
import { readGguf } from "../src/formats/gguf.ts";
import { writeGguf } from "../src/formats/gguf_writer.ts";
import { scalarTrainKernels, type TrainKernels } from "../src/kernels/train_kernels.ts";
import { createWasmTrainKernels } from "../src/kernels/train_wasm.ts";
import { configFromGgufMetadata, type LlamaConfig } from "../src/model/config.ts";
import { benchConfig, randomModelSpec } from "../fixtures/random_model.ts";
import { writeFileAtomic } from "../src/io/atomic_file.ts";
import { FileSource } from "../src/io/file_source.ts";
import { TensorTable } from "../src/model/weights.ts";
import { type TrainBase, trainBaseFromTable, type TrainBatch, Trainer, type TrainOptions } from "../src/train/mod.ts";

const PYTHON = "/usr/bin/python3"; // Debian's: PyTorch 1.13 (its numpy links the reference BLAS)
/** The python whose numpy has an optimized sgemm (pyenv's numpy 2.x with OpenBLAS on this host). */
const NUMPY_PYTHON = Deno.env.get("YANGTUO_BENCH_NUMPY_PYTHON") ?? "python3";
const ANCHOR = new URL("../../shared/anchors/torch_train_anchor.py", import.meta.url).pathname;
const env = (k: string) => Deno.env.get(k);
const STEPS = Number(env("YANGTUO_BENCH_TRAIN_STEPS") ?? 3);

interface Shape {
  name: string;
  config: LlamaConfig;
  modes: ("full" | "lora")[];
}

const cfg = (dim: number, nLayers: number, nHeads: number, nKvHeads: number, hiddenDim: number): LlamaConfig => ({
  dim,
  hiddenDim,
  nLayers,
  nHeads,
  nKvHeads,
  headSize: dim / nHeads,
  vocabSize: 4096,
  contextLength: 256,
  normEps: 1e-5,
  ropeTheta: 10000,
});

const ONLY = env("YANGTUO_BENCH_TRAIN_ONLY"); // one shape name, e.g. small-d288
const ALL_SHAPES: Shape[] = [
  { name: "tiny-d128", config: cfg(128, 5, 8, 4, 352), modes: ["full", "lora"] },
  ...(env("YANGTUO_BENCH_TRAIN_288") === "0"
    ? []
    : [{ name: "small-d288", config: cfg(288, 6, 6, 6, 768), modes: ["full" as const] }]),
];
const SHAPES = ONLY ? ALL_SHAPES.filter((s) => s.name === ONLY) : ALL_SHAPES;

function options(mode: "full" | "lora"): TrainOptions {
  return mode === "full" ? { mode: "full", lr: 1e-4, maxSteps: 1000 } : {
    mode: "lora",
    lora: { r: 8, alpha: 32, dropout: 0.05, targets: ["q_proj", "k_proj", "v_proj", "o_proj"] },
    modulesToSave: ["embed_tokens", "lm_head"],
    lr: 1e-4,
    maxSteps: 1000,
  };
}

async function randomBase(config: LlamaConfig): Promise<TrainBase> {
  const sink = new BytesSink();
  await writeGguf(sink, randomModelSpec(config, { dtype: "F32", seed: 1 }));
  const src = new BytesSource(sink.bytes(), "bench.gguf");
  const g = readGguf(src);
  const meta = g.metadata as Map<string, unknown>;
  return trainBaseFromTable(
    new TensorTable({ metadata: meta, tensors: g.tensors, source: src }, configFromGgufMetadata(meta)),
  );
}

function randomBatch(batch: number, seqLen: number, vocab: number, seed: number): TrainBatch {
  let s = seed >>> 0;
  const tokens = new Int32Array(batch * seqLen);
  for (let i = 0; i < tokens.length; i++) tokens[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % vocab;
  return { batch, seqLen, tokens, labels: tokens.slice() };
}

/** Matrix parameters a token passes through (q, k, v, o, gate, up, down per layer + lm_head). */
function matmulParams(c: LlamaConfig): number {
  const kv = c.nKvHeads * c.headSize;
  return c.nLayers * (2 * c.dim * c.dim + 2 * kv * c.dim + 3 * c.dim * c.hiddenDim) + c.vocabSize * c.dim;
}

function validate(base: TrainBase, mode: "full" | "lora", wasm: TrainKernels): void {
  const b = randomBatch(2, 32, base.config.vocabSize, 7);
  const o = { ...options(mode), lora: mode === "lora" ? { ...options(mode).lora!, dropout: 0 } : undefined };
  const a = new Trainer(base, o, scalarTrainKernels).step([b]);
  const w = new Trainer(base, o, wasm).step([b]);
  const rel = (x: number, y: number) => Math.abs(x - y) / Math.abs(y);
  if (!(rel(w.loss, a.loss) < 1e-5 && rel(w.gradNorm, a.gradNorm) < 1e-4)) {
    throw new Error(`WASM training step disagrees with the scalar one: ${JSON.stringify({ w, a })}`);
  }
}

function ours(base: TrainBase, mode: "full" | "lora", k: TrainKernels): number {
  const t = new Trainer(base, options(mode), k);
  const b = randomBatch(8, 256, base.config.vocabSize, 11);
  t.step([b]); // warm-up: buffers grow, frozen weights become resident
  let best = Infinity;
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    t.step([b]);
    best = Math.min(best, performance.now() - t0);
  }
  return (8 * 256) / (best / 1000);
}

function torch(shape: string, mode: "full" | "lora", threads: number): number {
  const code = `import sys; sys.path.insert(0, ${JSON.stringify(ANCHOR.replace(/\/[^/]*$/, ""))})
import torch_train_anchor as a
a.run(${JSON.stringify(shape)}, a.SHAPES[${JSON.stringify(shape)}], ${JSON.stringify(mode)}, ${threads}, ${STEPS + 1})`;
  const out = new Deno.Command(PYTHON, { args: ["-c", code], stdout: "piped", stderr: "piped" }).outputSync();
  const text = new TextDecoder().decode(out.stdout);
  const m = /([\d.]+) tok\/s/.exec(text);
  if (!out.success || !m) throw new Error(`torch anchor failed: ${new TextDecoder().decode(out.stderr)}${text}`);
  return Number(m[1]);
}

/** numpy sgemm GFLOP/s at `threads` on (2048, dim) @ (dim, hidden) and its transpose products. */
function numpySgemm(c: LlamaConfig, threads: number): number {
  const code = `import time, numpy as np
a = np.random.rand(2048, ${c.dim}).astype(np.float32); b = np.random.rand(${c.dim}, ${c.hiddenDim}).astype(np.float32)
g = np.random.rand(2048, ${c.hiddenDim}).astype(np.float32)
best = 1e9
for _ in range(20):
    t = time.perf_counter(); a @ b; g @ b.T; a.T @ g; best = min(best, time.perf_counter() - t)
print(3 * 2 * 2048 * ${c.dim} * ${c.hiddenDim} / best / 1e9)`;
  const e = { OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const out = new Deno.Command(NUMPY_PYTHON, { args: ["-c", code], stdout: "piped", stderr: "piped", env: e })
    .outputSync();
  if (!out.success) throw new Error(`numpy failed: ${new TextDecoder().decode(out.stderr)}`);
  return Number(new TextDecoder().decode(out.stdout).trim());
}

async function memory7b(layers: number): Promise<void> {
  const c: LlamaConfig = { ...benchConfig("7b-zh"), nLayers: layers };
  const path = `/tmp/yangtuo-train-7b-${layers}l.gguf`;
  try {
    Deno.statSync(path);
  } catch {
    await writeFileAtomic(
      path,
      (sink) => writeGguf(sink, randomModelSpec(c, { dtype: "Q4_0", seed: 3, rawBlocks: true })),
    );
  }
  const rss0 = Deno.memoryUsage().rss;
  const wasm = await createWasmTrainKernels();
  using src = new FileSource(path);
  const g = readGguf(src);
  const table = new TensorTable({ metadata: g.metadata as Map<string, unknown>, tensors: g.tensors, source: src }, c);
  const base = trainBaseFromTable(table, (type, nOut, nIn) => wasm.allocFrozenWeight(type, nOut, nIn));
  const t = new Trainer(base, {
    mode: "lora",
    lora: { r: 8, alpha: 32, dropout: 0.05, targets: ["q_proj", "k_proj", "v_proj", "o_proj"] },
    lr: 1e-4,
    maxSteps: 10,
    recompute: true,
  }, wasm);
  const b = randomBatch(1, 512, c.vocabSize, 5);
  const times: number[] = [];
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    const r = t.step([b]);
    times.push((performance.now() - t0) / 1000);
    console.log(`7B-shaped, ${layers} layers: step ${i} loss ${r.loss.toFixed(3)} in ${times[i].toFixed(1)} s`);
  }
  const rss = Deno.memoryUsage().rss;
  console.log(
    `7B-shaped Q4_0, ${layers} layers, LoRA r8 q,k,v,o, block 512, recompute: RSS ${(rss / 2 ** 30).toFixed(2)} GiB ` +
      `(before load ${(rss0 / 2 ** 30).toFixed(2)} GiB; WASM-resident weights ${
        (wasm.residentBytes / 2 ** 30).toFixed(2)
      } GiB), ` +
      `${Math.min(...times).toFixed(1)} s/step`,
  );
}

if (import.meta.main && env("YANGTUO_BENCH_TRAIN_7B")) {
  await memory7b(Number(env("YANGTUO_BENCH_TRAIN_7B")));
} else if (import.meta.main) {
  if (env("YANGTUO_BENCH_TRAIN") !== "1") {
    console.log("skip: set YANGTUO_BENCH_TRAIN=1 to run the training benchmark");
  } else {
    console.log(hostInfo().line);
    const wasm = await createWasmTrainKernels();
    const wasm2 = await createWasmTrainKernels({ threads: 2 });
    console.log(
      "| shape | mode | ours 1 thr tok/s | torch 1 thr | ours/torch 1 thr | ours 2 thr | torch 2 thr | " +
        "ours/torch 2 thr | model GFLOP/s 1 thr (× sgemm) | model GFLOP/s 2 thr (× sgemm) | numpy sgemm 1 / 2 thr |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const s of SHAPES) {
      const base = await randomBase(s.config);
      const sgemm = numpySgemm(s.config, 1), sgemm2 = numpySgemm(s.config, 2);
      for (const mode of s.modes) {
        validate(base, mode, wasm);
        validate(base, mode, wasm2);
        // interleaved so that load changes on the shared host hit both sides alike
        const t1 = torch(s.name, mode, 1);
        const us = ours(base, mode, wasm);
        const t2 = torch(s.name, mode, 2);
        const us2 = ours(base, mode, wasm2);
        const flops = (6 * matmulParams(s.config) * us) / 1e9, flops2 = (6 * matmulParams(s.config) * us2) / 1e9;
        const row = [
          s.name,
          mode,
          us.toFixed(0),
          t1.toFixed(0),
          `${(us / t1).toFixed(2)}×`,
          us2.toFixed(0),
          t2.toFixed(0),
          `${(us2 / t2).toFixed(2)}×`,
          `${flops.toFixed(1)} (${(flops / sgemm).toFixed(2)}×)`,
          `${flops2.toFixed(1)} (${(flops2 / sgemm2).toFixed(2)}×)`,
          `${sgemm.toFixed(0)} / ${sgemm2.toFixed(0)}`,
        ];
        console.log(`| ${row.join(" | ")} |`);
      }
    }
    wasm2.close();
  }
}
