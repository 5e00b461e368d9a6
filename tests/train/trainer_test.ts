/**
 * Trainer properties: exact resume (getState/setState mid-run gives the uninterrupted loss curve bit for bit, LoRA
 * dropout included), gradient accumulation = one big batch, stage 1 leaves every base byte untouched, the adapter
 * tensors carry PEFT's names with q/k LoRA B rows in HF order (so W_hf + s·B·A is the trained model permuted),
 * LoRA init as PEFT (A in ±1/√in, B = 0 so the first forward equals the base), hostile options rejected.
 */
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import {
  Linear,
  LORA_TARGETS,
  Param,
  trainBaseFromTable,
  type TrainBatch,
  Trainer,
  type TrainOptions,
  TrainRng,
} from "../../src/train/mod.ts";
import { scalarTrainKernels } from "../../src/kernels/train_kernels.ts";
import { gqaConfig, randomBase, randomBatch, runOracle } from "./_oracle.ts";
import { needsTorch } from "../formats/_torch_oracle.ts";
import { createWasmTrainKernels } from "../../src/kernels/train_wasm.ts";
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { randomModelSpec } from "../../src/model/random_model.ts";
import { TensorTable } from "../../src/model/weights.ts";

const LORA: TrainOptions = {
  mode: "lora",
  lora: { r: 4, alpha: 16, dropout: 0.1, targets: ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"] },
  modulesToSave: ["embed_tokens", "lm_head"],
  lr: 1e-3,
  schedule: "cosine",
  maxSteps: 6,
  warmupRatio: 0.2,
  weightDecay: 0.01,
};

const batches = (n: number, seed: number): TrainBatch[][] =>
  Array.from(
    { length: n },
    (_, s) => [randomBatch(2, 12, 300, seed + 2 * s), randomBatch(2, 12, 300, seed + 2 * s + 1)],
  );

Deno.test("Trainer.setState() resumes exactly: the loss curve after resume equals the uninterrupted one", async () => {
  const base = await randomBase(gqaConfig(), { dtype: "Q8_0", seed: 41 });
  const data = batches(6, 500);
  const straight = new Trainer(base, LORA);
  const full = data.map((b) => straight.step(b));
  const first = new Trainer(base, LORA);
  const head = data.slice(0, 3).map((b) => first.step(b));
  const state = first.getState();
  first.step(data[3]); // the saved state is a copy: training on does not change it
  const resumed = new Trainer(base, LORA);
  resumed.setState(state);
  const tail = data.slice(3).map((b) => resumed.step(b));
  assertEquals([...head, ...tail], full);
  assertEquals(resumed.adapterTensors(), straight.adapterTensors());
});

Deno.test("Trainer.setState() rejects other options and missing tensors", async () => {
  const base = await randomBase(gqaConfig(), { dtype: "F32", seed: 42 });
  const t = new Trainer(base, LORA);
  const s = t.getState();
  assertThrows(() => new Trainer(base, { ...LORA, lr: 2e-3 }).setState(s), RangeError, "options differ");
  assertThrows(() => t.setState({ ...s, tensors: s.tensors.slice(1) }), RangeError, "tensors");
  assertThrows(() => t.setState({ ...s, step: -1 }), RangeError, "step");
});

Deno.test("Trainer.step() with gradient accumulation equals one step over the concatenated batch", async () => {
  const base = await randomBase(gqaConfig(), { dtype: "F32", seed: 43 });
  const opts: TrainOptions = { ...LORA, lora: { ...LORA.lora!, dropout: 0 }, maxGradNorm: 0 };
  const a = randomBatch(2, 10, 300, 1), b = randomBatch(2, 10, 300, 2);
  const cat: TrainBatch = {
    batch: 4,
    seqLen: 10,
    tokens: Int32Array.from([...a.tokens, ...b.tokens]),
    labels: Int32Array.from([...a.labels, ...b.labels]),
  };
  const t1 = new Trainer(base, opts), t2 = new Trainer(base, opts);
  const r1 = t1.step([a, b]), r2 = t2.step([cat]);
  // every micro-batch has the same label count, so the mean of means equals the mean over both
  assert(Math.abs(r1.loss - r2.loss) < 1e-6 * r2.loss, `${r1.loss} vs ${r2.loss}`);
  assert(Math.abs(r1.gradNorm - r2.gradNorm) < 1e-5 * r2.gradNorm, `${r1.gradNorm} vs ${r2.gradNorm}`);
});

Deno.test("Trainer stage 1 trains only embed_tokens and lm_head and never writes the base", async () => {
  const base = await randomBase(gqaConfig(), { dtype: "Q4_0", seed: 44, tiedOutput: true });
  const before = base.matrix("attn_q", 1).bytes.slice();
  const t = new Trainer(base, { mode: "stage1", lr: 1e-2, maxSteps: 3 });
  assertEquals(t.params.map((p) => p.name), [
    "base_model.model.model.embed_tokens.weight",
    "base_model.model.lm_head.weight",
  ]);
  const b = [randomBatch(2, 12, 300, 9)];
  const l0 = t.evalLoss(b[0]).loss;
  for (let i = 0; i < 3; i++) t.step(b);
  assert(t.evalLoss(b[0]).loss < l0, "stage-1 steps did not lower the loss on their own batch");
  assertEquals(base.matrix("attn_q", 1).bytes, before);
  const counts = t.parameterCounts();
  assertEquals(counts.trainable, 2 * 300 * 64);
});

Deno.test("Trainer LoRA init: A within ±1/√in, B = 0, so the first forward equals the base model", async () => {
  const base = await randomBase(gqaConfig(), { dtype: "F32", seed: 45 });
  const batch = randomBatch(2, 12, 300, 3);
  const plain = new Trainer(base, { mode: "stage1", lr: 0, maxSteps: 1 }).evalLoss(batch).loss;
  const t = new Trainer(base, LORA);
  assertEquals(t.evalLoss(batch).loss, plain);
  for (const p of t.params) {
    if (p.name.endsWith("lora_B.weight")) assert(p.data.every((v) => v === 0), p.name);
    if (p.name.endsWith("lora_A.weight")) {
      const bound = 1 / Math.sqrt(p.shape[1]);
      assert(p.data.every((v) => Math.abs(v) <= bound) && p.data.some((v) => Math.abs(v) > bound / 2), p.name);
    }
  }
});

Deno.test("Trainer.adapterTensors(): PEFT names, HF row order for q/k lora_B", async () => {
  const c = gqaConfig();
  const base = await randomBase(c, { dtype: "F32", seed: 46 });
  const t = new Trainer(base, LORA);
  for (let i = 0; i < 2; i++) t.step(batches(1, 60 + i)[0]);
  const named = new Map(t.adapterTensors().map((x) => [x.name, x]));
  const pre = "base_model.model.model.layers.1.self_attn.";
  assertEquals(named.get(`${pre}k_proj.lora_B.weight`)!.shape, [c.nKvHeads * c.headSize, 4]);
  assertEquals(named.get(`${pre}q_proj.lora_A.weight`)!.shape, [4, c.dim]);
  assert(named.has("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"));
  assert(named.has("base_model.model.model.embed_tokens.weight") && named.has("base_model.model.lm_head.weight"));
  // k_proj lora_B in the trainer (Meta order) vs the adapter (HF order): hf row h·D + p·D/2 + j = meta row h·D + 2j + p
  const meta = t.params.find((p) => p.name === `${pre}k_proj.lora_B.weight`)!.data;
  const hf = named.get(`${pre}k_proj.lora_B.weight`)!.data;
  const D = c.headSize, r = 4;
  for (let h = 0; h < c.nKvHeads; h++) {
    for (let j = 0; j < D / 2; j++) {
      for (let p = 0; p < 2; p++) {
        for (let k = 0; k < r; k++) {
          assertEquals(hf[(h * D + p * (D / 2) + j) * r + k], meta[(h * D + 2 * j + p) * r + k]);
        }
      }
    }
  }
  assert(meta.some((v) => v !== 0), "B was not trained");
  const cfg = t.adapterConfig();
  assertEquals([cfg.r, cfg.lora_alpha, cfg.peft_type, cfg.modules_to_save], [4, 16, "LORA", [
    "embed_tokens",
    "lm_head",
  ]]);
});

Deno.test("LoRA dropout: seeded, active in training only, and drops about p of the inputs", async () => {
  const base = await randomBase(gqaConfig(), { dtype: "F32", seed: 47 });
  const opts: TrainOptions = { ...LORA, lora: { ...LORA.lora!, dropout: 0.5 }, warmupRatio: 0 };
  const batch = randomBatch(2, 12, 300, 5);
  const a = new Trainer(base, opts), b = new Trainer(base, opts), c = new Trainer(base, { ...opts, seed: 7 });
  for (const t of [a, b, c]) t.step([batch]); // B ≠ 0 after one step, so dropout changes the loss
  const la = a.lossAndGrads(batch, true), lb = b.lossAndGrads(batch, true), lc = c.lossAndGrads(batch, true);
  assertEquals(la, lb);
  assert(la !== lc, "another seed gave the same dropout");
  const evalLoss = a.evalLoss(batch).loss;
  assertEquals(a.evalLoss(batch).loss, evalLoss);
  assert(la !== evalLoss, "dropout did not act in training");
  // the mask keeps about 1 − p of the inputs, scaled by 1/(1 − p): y = Σ dropout(x) through A = 1, B = 1
  const n = 4000, p = 0.3;
  const lin = new Linear(n, 1, { frozenF32: new Float32Array(n) });
  lin.lora = {
    a: new Param("a", [1, n], new Float32Array(n).fill(1)),
    b: new Param("b", [1, 1], new Float32Array([1])),
    r: 1,
    scaling: 1,
    dropout: p,
  };
  const y = new Float32Array(1), x = new Float32Array(n).fill(1);
  lin.forward(scalarTrainKernels, y, x, 1);
  assertEquals(y[0], n); // eval: no dropout
  lin.forward(scalarTrainKernels, y, x, 1, new TrainRng(1));
  const kept = (y[0] * (1 - p)) / n;
  assert(Math.abs(kept - 0.7) < 0.03, `kept fraction ${kept}`);
  // backward routes gradient only through kept inputs: dX = mask/(1−p) · (B·A) for the LoRA path
  const dx = new Float32Array(n);
  lin.backward(scalarTrainKernels, dx, new Float32Array([1]), x, 1);
  const nz = dx.filter((v) => v !== 0);
  assertEquals(nz.length, Math.round(kept * n));
  assert(nz.every((v) => Math.abs(v - 1 / (1 - p)) < 1e-6));
});

Deno.test("Trainer rejects bad options and batches with clear errors", async () => {
  const base = await randomBase(gqaConfig(), { dtype: "F32", seed: 48 });
  assertThrows(() => new Trainer(base, { mode: "lora", lr: 1, maxSteps: 1 }), RangeError, "lora options");
  assertThrows(() => new Trainer(base, { ...LORA, lora: { ...LORA.lora!, r: 0 } }), RangeError, "r is 0");
  assertThrows(() => new Trainer(base, { ...LORA, lora: { ...LORA.lora!, dropout: 1 } }), RangeError, "dropout");
  assertThrows(
    () => new Trainer(base, { ...LORA, lora: { ...LORA.lora!, targets: ["x_proj" as "q_proj"] } }),
    RangeError,
    "x_proj",
  );
  assertThrows(() => new Trainer(base, { ...LORA, maxSteps: 0 }), RangeError, "max steps");
  assertThrows(() => new Trainer(base, { mode: "stage1", modulesToSave: [], lr: 1, maxSteps: 1 }), RangeError);
  const t = new Trainer(base, LORA);
  const bad = randomBatch(1, 4, 300, 1);
  bad.tokens[2] = 300;
  assertThrows(() => t.step([bad]), RangeError, "outside the vocabulary");
  const bad2 = randomBatch(1, 4, 300, 1);
  bad2.labels[1] = -5;
  assertThrows(() => t.step([bad2]), RangeError, "label -5");
  assertThrows(() => t.step([{ ...bad2, seqLen: 5 }]), RangeError, "expected 5");
  assertThrows(() => t.step([randomBatch(1, 200, 300, 1)]), RangeError, "context length");
  assertThrows(() => t.step([]), RangeError, "micro-batch");
});

Deno.test(
  "Trainer.adapterTensors() merged as transformers + PEFT would (HF q/k order, rotate-half RoPE) give the trainer's loss",
  needsTorch(),
  async () => {
    // torch permutes the base's q/k rows Meta→HF itself (transformers' `permute`), adds scaling·B·A from the
    // adapter as written, takes embed_tokens/lm_head from modules_to_save, and runs HF's rotate-half RoPE
    const base = await randomBase(gqaConfig(), { dtype: "F32", seed: 49 });
    const opts: TrainOptions = {
      ...LORA,
      lora: { ...LORA.lora!, targets: [...LORA_TARGETS] },
      warmupRatio: 0,
      lr: 3e-3,
    };
    const t = new Trainer(base, opts);
    for (let i = 0; i < 3; i++) t.step(batches(1, 70 + i)[0]);
    const batch = randomBatch(2, 20, 300, 99);
    const ours = t.evalLoss(batch).loss;
    const torch = runOracle(t, {
      batch,
      adapter: { tensors: t.adapterTensors(), scaling: opts.lora!.alpha / opts.lora!.r },
    }) as { loss: number };
    const base0 = new Trainer(base, { mode: "stage1", lr: 0, maxSteps: 1 }).evalLoss(batch).loss;
    assert(Math.abs(ours - base0) > 1e-3, "training did not change the model");
    assert(Math.abs(ours - torch.loss) < 1e-5 * Math.abs(torch.loss), `ours ${ours} vs merged in torch ${torch.loss}`);
  },
);

Deno.test("Trainer with recompute (activation checkpointing) gives bit-identical steps and gradients, dropout included", async () => {
  const base = await randomBase(gqaConfig({ nLayers: 3 }), { dtype: "Q4_0", seed: 50 });
  const opts: TrainOptions = {
    ...LORA,
    lora: { ...LORA.lora!, targets: [...LORA_TARGETS], dropout: 0.2 },
    warmupRatio: 0,
  };
  const a = new Trainer(base, opts), b = new Trainer(base, { ...opts, recompute: true });
  const data = batches(3, 300);
  assertEquals(data.map((d) => b.step(d)), data.map((d) => a.step(d)));
  assertEquals(b.lossAndGrads(data[0][0], true), a.lossAndGrads(data[0][0], true));
  for (let i = 0; i < a.params.length; i++) assertEquals(b.params[i].grad, a.params[i].grad, a.params[i].name);
  const full = new Trainer(base, { mode: "full", lr: 1e-3, maxSteps: 2 });
  const fullR = new Trainer(base, { mode: "full", lr: 1e-3, maxSteps: 2, recompute: true });
  assertEquals(fullR.step(data[1]), full.step(data[1]));
  for (let i = 0; i < full.params.length; i++) assertEquals(fullR.params[i].data, full.params[i].data);
});

Deno.test("trainBaseFromTable() with WasmTrainKernels.allocFrozenWeight reads matrices into WASM memory, same steps", async () => {
  const wasm = await createWasmTrainKernels();
  const c = gqaConfig();
  const sink = new BytesSink();
  await writeGguf(sink, randomModelSpec(c, { dtype: "Q8_0", seed: 51 }));
  const src = new BytesSource(sink.bytes(), "q8.gguf");
  const g = readGguf(src);
  const table = new TensorTable({ metadata: g.metadata as Map<string, unknown>, tensors: g.tensors, source: src }, c);
  const before = wasm.residentBytes;
  const placed = trainBaseFromTable(table, (type, nOut, nIn) => wasm.allocFrozenWeight(type, nOut, nIn));
  const plain = trainBaseFromTable(table);
  const a = new Trainer(placed, LORA, wasm), b = new Trainer(plain, LORA, wasm);
  assert(wasm.residentBytes > before, "nothing was placed in WASM memory");
  const data = batches(2, 400);
  assertEquals(data.map((d) => a.step(d)), data.map((d) => b.step(d)));
});
