/**
 * streamedTrainBase(): a base whose layer matrices are read from the file per layer must train exactly as the
 * resident base (trainBaseFromTable): the same loss, every gradient and every step bit for bit, on scalar and WASM
 * kernels (the WASM ones holding no resident copy), with and without recompute, for every frozen file type; and it
 * must really stream (one layer loaded at a time, each layer re-read per pass).
 * Oracle: the resident path itself, which tests/train/model_test.ts checks against PyTorch 1.13 autograd.
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import {
  streamedTrainBase,
  trainBaseFromTable,
  type TrainBatch,
  Trainer,
  type TrainOptions,
} from "../../src/train/mod.ts";
import { scalarTrainKernels, type TrainKernels } from "../../src/kernels/train_kernels.ts";
import { createWasmTrainKernels } from "../../src/kernels/train_wasm.ts";
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { randomModelSpec } from "../../fixtures/random_model.ts";
import { TensorTable } from "../../src/model/weights.ts";
import type { LlamaConfig } from "../../src/model/config.ts";
import { gqaConfig, randomBatch } from "./_oracle.ts";

const LAYERS = 4;
const config = (): LlamaConfig => gqaConfig({ nLayers: LAYERS });

const LORA: TrainOptions = {
  mode: "lora",
  lora: { r: 4, alpha: 16, dropout: 0.1, targets: ["q_proj", "k_proj", "v_proj", "o_proj"] },
  lr: 1e-3,
  schedule: "cosine",
  maxSteps: 4,
  warmupRatio: 0.25,
};

async function table(dtype: "F32" | "F16" | "Q8_0" | "Q4_0", seed: number): Promise<TensorTable> {
  const c = config();
  const sink = new BytesSink();
  await writeGguf(sink, randomModelSpec(c, { dtype, seed }));
  const src = new BytesSource(sink.bytes(), `${dtype}.gguf`);
  const g = readGguf(src);
  return new TensorTable({ metadata: g.metadata as Map<string, unknown>, tensors: g.tensors, source: src }, c);
}

const data = (n: number, seed: number): TrainBatch[][] =>
  Array.from(
    { length: n },
    (_, s) => [randomBatch(2, 12, 300, seed + 2 * s), randomBatch(2, 12, 300, seed + 2 * s + 1)],
  );

/** Loss and every gradient of one batch, then two optimizer steps and the final parameters. */
function run(t: Trainer, batches: TrainBatch[][]) {
  const loss = t.lossAndGrads(batches[0][0], true);
  const grads = t.params.map((p) => Float32Array.from(p.grad));
  const steps = batches.map((b) => t.step(b));
  return { loss, grads, steps, params: t.params.map((p) => Float32Array.from(p.data)) };
}

Deno.test("streamedTrainBase() trains bit for bit as the resident base (Q4_0, 4 layers, scalar kernels)", async () => {
  const tab = await table("Q4_0", 61);
  const batches = data(2, 700);
  for (const recompute of [false, true]) {
    const resident = run(new Trainer(trainBaseFromTable(tab), { ...LORA, recompute }), batches);
    const base = streamedTrainBase(tab);
    const streamed = run(new Trainer(base, { ...LORA, recompute }), batches);
    assertEquals(streamed, resident);
    // it streamed: one layer at a time, read again in each forward and backward pass (5 passes: the loss and two
    // steps of two micro-batches); only the turning layers (the last at forward → backward, layer 0 at backward →
    // next forward) stay loaded
    const layerBytes = tab.file.tensors.filter((t) => t.name.startsWith("blk.0.") && t.shape.length === 2)
      .reduce((s, t) => s + t.nBytes, 0);
    assertEquals(base.stats.peakLoadedBytes, layerBytes);
    assertEquals(base.stats.layerLoads, 1 + 5 * (2 * LAYERS - 2));
  }
});

Deno.test("streamedTrainBase() on WASM kernels without resident copies equals the resident base, every file type", async () => {
  const streamK = await createWasmTrainKernels({ maxResidentBytes: 0 });
  const residentK = await createWasmTrainKernels();
  const batches = data(2, 800);
  for (const [i, dtype] of (["F32", "F16", "Q8_0", "Q4_0"] as const).entries()) {
    const tab = await table(dtype, 70 + i);
    for (const recompute of [false, true]) {
      const opts = { ...LORA, recompute };
      const resident = run(new Trainer(trainBaseFromTable(tab), opts, residentK), batches);
      const base = streamedTrainBase(tab);
      const streamed = run(new Trainer(base, opts, streamK), batches);
      assertEquals(streamed, resident, `${dtype} recompute ${recompute}`);
      assert(base.stats.layerLoads > LAYERS, `${dtype}: ${base.stats.layerLoads} layer loads`);
    }
  }
  assertEquals(streamK.residentBytes, 0);
});

Deno.test("streamedTrainBase() gives the same steps in full and stage-1 mode and with several layers kept", async () => {
  const tab = await table("Q8_0", 81);
  const batches = data(2, 900);
  const k: TrainKernels = scalarTrainKernels;
  const modes: TrainOptions[] = [
    { mode: "full", lr: 1e-3, maxSteps: 2 },
    { mode: "stage1", lr: 1e-3, maxSteps: 2 },
  ];
  for (const opts of modes) {
    const resident = run(new Trainer(trainBaseFromTable(tab), opts, k), batches);
    for (const maxLayers of [1, 3, Infinity]) {
      const base = streamedTrainBase(tab, { maxLayers });
      assertEquals(run(new Trainer(base, opts, k), batches), resident, `${opts.mode} maxLayers ${maxLayers}`);
      if (maxLayers === Infinity) assertEquals(base.stats.layerLoads, LAYERS);
    }
  }
});

Deno.test("streamedTrainBase() resumes exactly: a state saved from it continues the resident curve", async () => {
  const tab = await table("Q4_0", 91);
  const batches = data(4, 1000);
  const opts = { ...LORA, recompute: true };
  const straight = new Trainer(trainBaseFromTable(tab), opts);
  const full = batches.map((b) => straight.step(b));
  const first = new Trainer(streamedTrainBase(tab), opts);
  const head = batches.slice(0, 2).map((b) => first.step(b));
  const resumed = new Trainer(streamedTrainBase(tab), opts);
  resumed.setState(first.getState());
  const tail = batches.slice(2).map((b) => resumed.step(b));
  assertEquals([...head, ...tail], full);
  assertEquals(resumed.adapterTensors(), straight.adapterTensors());
});

Deno.test("streamedTrainBase() rejects a bad maxLayers and a layer out of range", async () => {
  const tab = await table("Q4_0", 95);
  for (const maxLayers of [0, -1, 1.5, NaN]) {
    assertThrows(() => streamedTrainBase(tab, { maxLayers }), RangeError, "maxLayers");
  }
  const base = streamedTrainBase(tab);
  assertThrows(() => base.matrix("attn_q", LAYERS), RangeError, "layer");
  assertThrows(() => base.matrix("attn_q"), RangeError, "layer");
  assertEquals(base.matrix("tok_embd").bytes, trainBaseFromTable(tab).matrix("tok_embd").bytes);
});
