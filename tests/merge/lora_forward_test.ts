/**
 * A forward pass on the merged model equals one that applies the LoRA at run time.
 * Oracle: a forward pass written here that never merges — every targeted linear computes W·x + scaling·B·(A·x)
 * on the base weights, with B's q/k rows moved from HF to Meta order, and modules_to_save swapped in — against the
 * project's reference forward (src/model/llama.ts) on our merged GGUF F32 (HF base: the q/k permutation matters).
 * Tolerance: |Δlogit| ≤ 1e-4 + 1e-4·|logit| for the reference, 1e-3 for the WASM engine (f32 summation order
 * only; a missing or mis-permuted delta moves logits by ~1e-1).
 */
import { assertAllClose } from "../_assert.ts";
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { LlamaReference, loadWeightsF32 } from "../../src/model/llama.ts";
import { rmsNormRef, ropeRef, softmaxRef } from "../../src/kernels/scalar.ts";
import { configFromGgufMetadata } from "../../src/model/config.ts";
import { loadEngineFromBytes } from "../../src/model/engine.ts";
import { randomVocabMetadata } from "../../fixtures/random_model.ts";
import { TensorTable } from "../../src/model/weights.ts";
import { openBase, openLora } from "../../src/merge/open.ts";
import { MergeExecutor, planMerge } from "../../src/merge/plan.ts";
import { ggufOutput } from "../../src/merge/write.ts";
import { denoModelFs } from "../../src/commands/_model_fs.ts";
import { type TensorKind, tensorName } from "../../src/model/tensor_names.ts";
import {
  tinyConfig,
  tinyHfFiles,
  tinyLoraFiles,
  type TinyLoraSpec,
  tinyLoraTensors,
  type TinyModelSpec,
  tinyTensor,
  writeTinyFiles,
} from "../_tiny_model.ts";
import { hfToMeta, roundAs } from "./_expect.ts";

const SPEC: TinyModelSpec = { dim: 64, hiddenDim: 192, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 290, seed: 31 };
const LORA: TinyLoraSpec = {
  r: 4,
  alpha: 16,
  targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj"],
  modulesToSave: ["embed_tokens", "lm_head"],
  vocabSize: 300,
  seed: 77,
};
const TOKENS = [1, 7, 42, 299, 3, 264];

/** Runtime-LoRA forward: base weights (Meta layout) plus, per linear, scaling·B·(A·x). Returns logits per step. */
function runtimeLoraLogits(): Float32Array[] {
  const c = tinyConfig(SPEC);
  const all = (t: ReturnType<typeof tinyTensor>) => t.readRows(0, t.shape.length === 1 ? 1 : t.shape[0]);
  const base = (k: TensorKind, l?: number) => all(tinyTensor(SPEC, k, l, "meta"));
  const lt = new Map(
    tinyLoraTensors(SPEC, LORA).map((x) => [x.name, { shape: x.t.shape, v: roundAs("F16", all(x.t)) }]),
  );
  const s = LORA.alpha / LORA.r;
  const linear = (out: Float32Array, x: Float32Array, kind: TensorKind, l: number) => {
    const w = base(kind, l);
    const d = out.length, n = x.length;
    for (let i = 0; i < d; i++) {
      let acc = 0;
      for (let j = 0; j < n; j++) acc += w[i * n + j] * x[j];
      out[i] = acc;
    }
    const p = `base_model.model.${tensorName("hf", kind, l).replace(/\.weight$/, "")}`;
    const A = lt.get(`${p}.lora_A.weight`)!.v;
    let B = lt.get(`${p}.lora_B.weight`)!.v;
    if (kind === "attn_q" || kind === "attn_k") B = hfToMeta(B, d, LORA.r, c.headSize); // LoRA rows are HF-ordered
    const ax = new Float64Array(LORA.r);
    for (let k = 0; k < LORA.r; k++) for (let j = 0; j < n; j++) ax[k] += A[k * n + j] * x[j];
    for (let i = 0; i < d; i++) {
      let acc = 0;
      for (let k = 0; k < LORA.r; k++) acc += B[i * LORA.r + k] * ax[k];
      out[i] += s * acc;
    }
  };
  const emb = lt.get("base_model.model.model.embed_tokens.weight")!.v;
  const head = lt.get("base_model.model.lm_head.weight")!.v;
  const V = LORA.vocabSize!, kvDim = c.nKvHeads * c.headSize;
  const kc: Float32Array[][] = [], vc: Float32Array[][] = [];
  const out: Float32Array[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    kc.push([]);
    vc.push([]);
  }
  TOKENS.forEach((tok, pos) => {
    const x = emb.slice(tok * c.dim, (tok + 1) * c.dim);
    const xb = new Float32Array(c.dim);
    for (let l = 0; l < c.nLayers; l++) {
      rmsNormRef(x, base("attn_norm", l), xb, c.normEps);
      const q = new Float32Array(c.dim), k = new Float32Array(kvDim), v = new Float32Array(kvDim);
      linear(q, xb, "attn_q", l);
      linear(k, xb, "attn_k", l);
      linear(v, xb, "attn_v", l);
      ropeRef(q, c.nHeads, c.headSize, pos, c.ropeTheta);
      ropeRef(k, c.nKvHeads, c.headSize, pos, c.ropeTheta);
      kc[l].push(k);
      vc[l].push(v);
      const att = new Float32Array(c.dim);
      for (let h = 0; h < c.nHeads; h++) {
        const kvh = Math.floor(h / (c.nHeads / c.nKvHeads)) * c.headSize;
        const sc = new Float32Array(pos + 1);
        for (let t = 0; t <= pos; t++) {
          let d = 0;
          for (let i = 0; i < c.headSize; i++) d += q[h * c.headSize + i] * kc[l][t][kvh + i];
          sc[t] = d / Math.sqrt(c.headSize);
        }
        softmaxRef(sc);
        for (let t = 0; t <= pos; t++) {
          for (let i = 0; i < c.headSize; i++) att[h * c.headSize + i] += sc[t] * vc[l][t][kvh + i];
        }
      }
      const o = new Float32Array(c.dim);
      linear(o, att, "attn_output", l);
      for (let i = 0; i < c.dim; i++) x[i] += o[i];
      rmsNormRef(x, base("ffn_norm", l), xb, c.normEps);
      const g = new Float32Array(c.hiddenDim), u = new Float32Array(c.hiddenDim);
      linear(g, xb, "ffn_gate", l);
      linear(u, xb, "ffn_up", l);
      for (let i = 0; i < c.hiddenDim; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
      const dn = new Float32Array(c.dim);
      linear(dn, g, "ffn_down", l);
      for (let i = 0; i < c.dim; i++) x[i] += dn[i];
    }
    rmsNormRef(x, base("output_norm"), xb, c.normEps);
    const logits = new Float32Array(V);
    for (let i = 0; i < V; i++) {
      let acc = 0;
      for (let j = 0; j < c.dim; j++) acc += head[i * c.dim + j] * xb[j];
      logits[i] = acc;
    }
    out.push(logits);
  });
  return out;
}

Deno.test("reference forward on the merged GGUF equals a forward applying the LoRA at run time", async () => {
  const tmp = Deno.makeTempDirSync({ prefix: "yangtuo-lora-fwd-" });
  try {
    const baseDir = await writeTinyFiles(`${tmp}/base`, tinyHfFiles(SPEC, { dtype: "F32" }));
    const loraDir = await writeTinyFiles(`${tmp}/lora`, tinyLoraFiles(SPEC, LORA));
    const opened: { close(): void }[] = [];
    const base = openBase(denoModelFs, baseDir);
    const plan = planMerge(base, [openLora(denoModelFs, loraDir, opened)]);
    const [file] = ggufOutput(plan, new MergeExecutor(plan), "F32", {
      tokenizer: { ggufKvs: randomVocabMetadata(LORA.vocabSize!) },
    });
    const sink = new BytesSink();
    await file.write(sink);
    base.close();
    opened.forEach((f) => f.close());
    const src = new BytesSource(sink.bytes());
    const g = readGguf(src);
    const config = configFromGgufMetadata(g.metadata as Map<string, unknown>);
    const table = new TensorTable(
      { metadata: g.metadata as Map<string, unknown>, tensors: g.tensors, source: src },
      config,
    );
    const ref = new LlamaReference(config, loadWeightsF32(table), 16);
    const want = runtimeLoraLogits();
    TOKENS.forEach((tok, pos) => {
      assertAllClose(ref.forward(tok, pos), want[pos], { atol: 1e-4, rtol: 1e-4, msg: `position ${pos}` });
    });
    // the fast engine (WASM kernels, f32 KV cache) on the same merged file: tolerance 1e-3 (its own sum order)
    const engine = await loadEngineFromBytes(sink.bytes(), { threads: 1, kvType: "f32", contextSize: 16 });
    try {
      const all = await engine.evalAll(TOKENS, 0);
      all.forEach((logits, pos) => assertAllClose(logits, want[pos], { atol: 1e-3, rtol: 1e-3, msg: `engine ${pos}` }));
    } finally {
      engine.close();
    }
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
});
