/**
 * The engine (1–3 shards in Workers, on each `Kernels` implementation: "wasm" and "scalar") against the TypeScript
 * reference (llama.ts) on tiny random models written through our GGUF writer. Oracle: the reference forward pass, run with the engine's rounding
 * (Q8_0 activations into Q4_0/Q8_0 matrices as llama.cpp does, f16 KV cache), itself checked against the
 * independent babyllama105 vectors in llama_test.ts.
 * Tolerance: logits within 2e-3 absolute + 2e-3 relative (f32 sums in SIMD lane order and a polynomial exp differ
 * from the f64 reference by ~1e-5 per step; rare Q8 rounding flips of one activation quant move a logit by ~1e-3).
 * Greedy: the same 64 tokens.
 */
import { createEngine } from "../../src/model/engine.ts";
import { LlamaReference, loadWeightsF32 } from "../../src/model/llama.ts";
import { TensorTable } from "../../src/model/weights.ts";
import { configFromGgufMetadata } from "../../src/model/config.ts";
import { argmax } from "../../src/sampling/sampler.ts";
import { assertAllClose, assertEquals } from "../_assert.ts";
import { openModel, tinyConfig, writeTinyModel } from "./_tiny.ts";
import { randomModelSpec } from "../../fixtures/random_model.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { AtomicFileSink } from "../../src/io/atomic_file.ts";

const STEPS = 64;
const PROMPT = [1, 20, 77, 150, 3, 299, 42, 8];

for (const dtype of ["F32", "F16", "Q8_0", "Q4_0"] as const) {
  for (const nKvHeads of [4, 2]) {
    const name = `engine ${dtype} ${nKvHeads === 4 ? "MHA" : "GQA"} matches the reference for 1, 2 and 3 shards`;
    Deno.test(`${name}, on the wasm and the scalar kernels`, async () => {
      const config = tinyConfig(nKvHeads);
      const path = await writeTinyModel(config, { dtype, seed: 7 + nKvHeads, tiedOutput: dtype === "F16" });
      const model = openModel(path);
      try {
        const cfg = configFromGgufMetadata(model.metadata);
        const weights = loadWeightsF32(new TensorTable(model, cfg));
        // reference: batched prompt then greedy
        const ref = new LlamaReference(cfg, weights, 128, { q8Activations: true, f16Cache: true });
        const refLogits: Float32Array[] = [];
        const refIds: number[] = [];
        let logits: Float32Array = new Float32Array(0);
        const refPrompt: Float32Array[] = [];
        for (let i = 0; i < PROMPT.length; i++) refPrompt.push(logits = ref.forward(PROMPT[i], i));
        refLogits.push(logits);
        for (let s = 0; s < STEPS; s++) {
          const id = argmax(logits);
          refIds.push(id);
          logits = ref.forward(id, PROMPT.length + s);
          if (s < 4) refLogits.push(logits);
        }
        const runs = [[1, "wasm"], [2, "wasm"], [3, "wasm"], [1, "scalar"], [2, "scalar"]] as const;
        for (const [threads, kernels] of runs) {
          const engine = await createEngine(model, { threads, contextSize: 128, maxBatch: 5, kernels });
          try {
            assertEquals(engine.nShards, threads);
            let l = await engine.eval(PROMPT, 0); // batches of 5 + 3
            assertAllClose(l, refLogits[0], { atol: 2e-3, rtol: 2e-3 });
            const ids: number[] = [];
            for (let s = 0; s < STEPS; s++) {
              const id = argmax(l);
              ids.push(id);
              l = await engine.eval([id], PROMPT.length + s);
              if (s < 4) assertAllClose(l, refLogits[s + 1], { atol: 2e-3, rtol: 2e-3 });
            }
            assertEquals(ids, refIds, `greedy ids, ${threads} shard(s), ${kernels} kernels`);
            // every position's logits of a batch (perplexity's path), overwriting the cache from position 0
            const all = await engine.evalAll(PROMPT, 0);
            assertEquals(all.length, PROMPT.length);
            all.forEach((row, i) => assertAllClose(row, refPrompt[i], { atol: 2e-3, rtol: 2e-3 }));
          } finally {
            engine.close();
          }
        }
      } finally {
        model.source.close();
        Deno.removeSync(path);
      }
    });
  }
}

Deno.test("engine with more shards than threads (a thread runs several) matches the reference", async () => {
  const config = tinyConfig(4);
  const path = await writeTinyModel(config, { dtype: "Q4_0", seed: 21 });
  const model = openModel(path);
  try {
    const cfg = configFromGgufMetadata(model.metadata);
    const ref = new LlamaReference(cfg, loadWeightsF32(new TensorTable(model, cfg)), 64, {
      q8Activations: true,
      f16Cache: true,
    });
    const want: Float32Array[] = PROMPT.map((t, i) => ref.forward(t, i));
    for (const [threads, minShards] of [[1, 3], [2, 4]]) {
      const engine = await createEngine(model, { threads, minShards, contextSize: 64 });
      try {
        assertEquals([engine.nThreads, engine.nShards], [threads, minShards]);
        const got = await engine.evalAll(PROMPT, 0);
        got.forEach((row, i) => assertAllClose(row, want[i], { atol: 2e-3, rtol: 2e-3 }));
      } finally {
        engine.close();
      }
    }
  } finally {
    model.source.close();
    Deno.removeSync(path);
  }
});

Deno.test("engine eval rejects tokens outside the vocabulary and positions past the context", async () => {
  const config = tinyConfig(2);
  const path = await writeTinyModel(config, { dtype: "F32" });
  const model = openModel(path);
  try {
    const engine = await createEngine(model, { threads: 1, contextSize: 16 });
    try {
      let err = "";
      await engine.eval([300], 0).catch((e) => err = e.message);
      assertEquals(err.includes("outside the vocabulary"), true, err);
      await engine.eval([1, 2], 15).catch((e) => err = e.message);
      assertEquals(err.includes("context holds 16"), true, err);
    } finally {
      engine.close();
    }
  } finally {
    model.source.close();
    Deno.removeSync(path);
  }
});

/** Random K-quant super-blocks with small valid fp16 scales; Q4_K's dmin ≈ 7.5·d centres its values near 0. */
function randomKBlocks(dtype: "Q4_K" | "Q6_K", n: number, seed: number): Uint8Array {
  const bytes = dtype === "Q4_K" ? 144 : 210;
  const out = new Uint8Array((n / 256) * bytes);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13, s ^= s >>> 17, s ^= s << 5;
    out[i] = s & 0xff;
  }
  for (let o = 0; o < out.length; o += bytes) {
    if (dtype === "Q4_K") {
      out[o] = 0x00, out[o + 1] = 0x18; // d = 2^-9
      out[o + 2] = 0x80, out[o + 3] = 0x23; // dmin = 1.875·2^-7 ≈ 7.5·d
    } else {
      out[o + 208] = 0x00, out[o + 209] = 0x04; // d = 2^-14 (the int8 sub-scales reach ±127)
    }
  }
  return out;
}

Deno.test("engine runs K-quant tensors (Q4_K, Q6_K) through Q8_0 requantization close to the reference", async () => {
  const config = tinyConfig(2, { dim: 256, hiddenDim: 256, nHeads: 4, headSize: 64 });
  const spec = randomModelSpec(config, { dtype: "F32", seed: 3 });
  let seed = 100;
  for (const t of spec.tensors) {
    const k = /attn_[qkv]|ffn_gate|ffn_up/.test(t.name)
      ? "Q4_K"
      : /ffn_down|^output\.weight/.test(t.name)
      ? "Q6_K"
      : undefined;
    if (!k) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    const bytes = randomKBlocks(k, n, seed++);
    Object.assign(t, { dtype: k, data: bytes });
  }
  const path = await Deno.makeTempFile({ dir: "/tmp", prefix: "yangtuo-kq-", suffix: ".gguf" });
  const sink = new AtomicFileSink(path);
  await writeGguf(sink, spec);
  sink.commit();
  const model = openModel(path);
  try {
    const cfg = configFromGgufMetadata(model.metadata);
    const ref = new LlamaReference(cfg, loadWeightsF32(new TensorTable(model, cfg)), 64, { q8Activations: true });
    const engine = await createEngine(model, { threads: 2, contextSize: 64, kvType: "f32" });
    try {
      const prompt = [1, 50, 60, 70];
      let want: Float32Array = new Float32Array(0);
      prompt.forEach((t, i) => want = ref.forward(t, i));
      const got = await engine.eval(prompt, 0);
      // the engine keeps K-quants as Q8_0 (a second rounding of every weight, ≤ 1/254 of a block's max)
      let scale = 0;
      for (const v of want) scale = Math.max(scale, Math.abs(v));
      assertAllClose(got, want, { atol: 0.03 * scale, rtol: 0 });
      assertEquals(argmax(got), argmax(want));
    } finally {
      engine.close();
    }
  } finally {
    model.source.close();
    Deno.removeSync(path);
  }
});

for (const dtype of ["F32", "F16", "Q4_0"] as const) {
  Deno.test(`engine useReference gives LlamaReference's logits bit for bit (${dtype}, prompt in batches, 2 slots)`, async () => {
    const config = tinyConfig(2);
    const path = await writeTinyModel(config, { dtype, seed: 3, tiedOutput: dtype === "F16" });
    const model = openModel(path);
    try {
      const cfg = configFromGgufMetadata(model.metadata);
      const ref = new LlamaReference(cfg, loadWeightsF32(new TensorTable(model, cfg)), 32);
      const want = PROMPT.map((t, i) => ref.forward(t, i));
      const engine = await createEngine(model, { useReference: true, contextSize: 32, maxBatch: 3, slots: 2 });
      try {
        const got = await engine.evalAll(PROMPT, 0); // batches of 3 + 3 + 2
        got.forEach((row, i) => assertEquals(Array.from(row), Array.from(want[i]), `position ${i}`));
        const [row] = await engine.evalBatch([{ slot: 1, token: PROMPT[0], pos: 0 }]);
        assertEquals(Array.from(row), Array.from(want[0]), "slot 1");
      } finally {
        engine.close();
      }
    } finally {
      model.source.close();
      Deno.removeSync(path);
    }
  });
}
