/**
 * Test helpers for src/train: tiny bases (random GGUF written by our writer and read back, or babyllama105), and
 * the PyTorch oracle (_torch_train_oracle.py, run by /usr/bin/python3): the trainer's model is dumped as raw f32
 * files in a /tmp folder with a manifest, and torch's loss/gradients/updates come back as JSON.
 */
import { BytesSink, BytesSource } from "../../src/core/byte_source.ts";
import { readGguf } from "../../src/formats/gguf.ts";
import { writeGguf } from "../../src/formats/gguf_writer.ts";
import { readLlama2c } from "../../src/formats/llama2c.ts";
import { FileSource } from "../../src/io/file_source.ts";
import type { LlamaConfig } from "../../src/model/config.ts";
import { configFromGgufMetadata } from "../../src/model/config.ts";
import { ggufSpecFromLlama2c } from "../../src/model/llama2c_gguf.ts";
import { type RandomModelOptions, randomModelSpec } from "../../src/model/random_model.ts";
import { LAYER_KINDS, parseTensorName, type TensorKind } from "../../src/model/tensor_names.ts";
import { TensorTable } from "../../src/model/weights.ts";
import { dequantizeRef } from "../../src/quant/dequantize.ts";
import type { TrainBase, TrainBatch, Trainer } from "../../src/train/mod.ts";
import { trainBaseFromTable } from "../../src/train/mod.ts";
import { testDataRoot } from "../_fixtures.ts";

export const PYTHON = "/usr/bin/python3";
const ORACLE = new URL("./_torch_train_oracle.py", import.meta.url).pathname;

/** The generated GQA model of the acceptance: dim 64, 2 layers, 4 heads / 2 kv heads, vocab 300. */
export function gqaConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    dim: 64,
    hiddenDim: 160,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    headSize: 16,
    vocabSize: 300,
    contextLength: 128,
    normEps: 1e-5,
    ropeTheta: 10000,
    ...overrides,
  };
}

/** A random base written as GGUF by our writer and read back (so the trainer sees real file rows). */
export async function randomBase(config: LlamaConfig, options: RandomModelOptions): Promise<TrainBase> {
  const sink = new BytesSink();
  await writeGguf(sink, randomModelSpec(config, options));
  const src = new BytesSource(sink.bytes(), "random.gguf");
  const g = readGguf(src);
  const meta = g.metadata as Map<string, unknown>;
  const table = new TensorTable({ metadata: meta, tensors: g.tensors, source: src }, configFromGgufMetadata(meta));
  return trainBaseFromTable(table);
}

export const BABYLLAMA = "models/babyllama105/model5000.bin";

/** babyllama105 (llama2.c checkpoint, tied embeddings) as a TrainBase. */
export function babyllamaBase(): TrainBase {
  const src = new FileSource(`${testDataRoot()}/${BABYLLAMA}`);
  const { tensors } = readLlama2c(src);
  const { config } = ggufSpecFromLlama2c(src);
  return trainBaseFromTable(new TensorTable({ metadata: new Map(), tensors, source: src }, config));
}

/** A seeded batch; labels = tokens (run_clm), with `ignore` positions set to −100. */
export function randomBatch(
  batch: number,
  seqLen: number,
  vocab: number,
  seed: number,
  ignore: (b: number, t: number) => boolean = () => false,
): TrainBatch {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const tokens = new Int32Array(batch * seqLen), labels = new Int32Array(batch * seqLen);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seqLen; t++) {
      const tok = next() % vocab;
      tokens[b * seqLen + t] = tok;
      labels[b * seqLen + t] = ignore(b, t) ? -100 : tok;
    }
  }
  return { batch, seqLen, tokens, labels };
}

const ROLE: Record<TensorKind, string> = {
  tok_embd: "tok_embd",
  output: "output",
  output_norm: "output_norm",
  attn_norm: "attn_norm",
  attn_q: "q",
  attn_k: "k",
  attn_v: "v",
  attn_output: "o",
  ffn_norm: "ffn_norm",
  ffn_gate: "gate",
  ffn_up: "up",
  ffn_down: "down",
};

/** The oracle's name for a trainer parameter (HF / PEFT names → "layers.0.q.lora_A", "tok_embd", …). */
export function roleOf(name: string): string {
  let n = name.replace(/^base_model\.model\./, "");
  let suffix = "";
  const m = /^(.*)\.lora_([AB])\.weight$/.exec(n);
  if (m) {
    n = `${m[1]}.weight`;
    suffix = `.lora_${m[2]}`;
  }
  const p = parseTensorName("hf", n);
  if (!p) throw new Error(`no role for ${name}`);
  const r = ROLE[p.kind];
  return (p.layer === undefined ? r : `layers.${p.layer}.${r}`) + suffix;
}

function baseF32(base: TrainBase, kind: TensorKind, layer?: number): Float32Array {
  if (kind === "attn_norm" || kind === "ffn_norm" || kind === "output_norm") return base.vector(kind, layer);
  const w = base.matrix(kind === "output" && base.tiedOutput ? "tok_embd" : kind, layer);
  if (w.type === "F32") return new Float32Array(w.bytes.slice().buffer);
  return dequantizeRef(w.type, w.bytes, w.nOut * w.nIn);
}

export interface OracleManifest {
  batch?: TrainBatch;
  steps?: TrainBatch[][];
  optim?: Record<string, unknown>;
  /** Run torch in float64 (the rounding-free reference) instead of float32. */
  float64?: boolean;
  /**
   * PEFT adapter tensors (HF layout): torch then permutes the base's q/k to HF order as transformers' converter
   * does, merges W + scaling·B·A, runs rotate-half RoPE and returns only the loss of `batch`.
   */
  adapter?: { tensors: { name: string; shape: number[]; data: Float32Array }[]; scaling: number };
}

/** Writes the trainer's current model (base + trainable values) to a /tmp folder and runs the torch oracle. */
export function runOracle(trainer: Trainer, extra: OracleManifest): Record<string, unknown> {
  const dir = Deno.makeTempDirSync({ dir: "/tmp", prefix: "yangtuo-train-oracle-" });
  try {
    const c = trainer.config, base = trainer.base;
    const tensors: Record<string, number[]> = {};
    const write = (role: string, shape: number[], data: Float32Array) => {
      tensors[role] = shape;
      Deno.writeFileSync(`${dir}/${role}.f32`, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    };
    const kvDim = c.nKvHeads * c.headSize;
    const shapes: Record<string, number[]> = {
      attn_norm: [c.dim],
      ffn_norm: [c.dim],
      attn_q: [c.dim, c.dim],
      attn_k: [kvDim, c.dim],
      attn_v: [kvDim, c.dim],
      attn_output: [c.dim, c.dim],
      ffn_gate: [c.hiddenDim, c.dim],
      ffn_up: [c.hiddenDim, c.dim],
      ffn_down: [c.dim, c.hiddenDim],
    };
    write("tok_embd", [c.vocabSize, c.dim], baseF32(base, "tok_embd"));
    write("output", [c.vocabSize, c.dim], baseF32(base, "output"));
    write("output_norm", [c.dim], baseF32(base, "output_norm"));
    for (let l = 0; l < c.nLayers; l++) {
      for (const kind of LAYER_KINDS) write(`layers.${l}.${ROLE[kind]}`, shapes[kind], baseF32(base, kind, l));
    }
    const trainable: string[] = [];
    for (const p of trainer.params) {
      const role = roleOf(p.name);
      write(role, p.shape, p.data);
      trainable.push(role);
    }
    const adapter: Record<string, number[]> = {};
    for (const t of extra.adapter?.tensors ?? []) {
      adapter[t.name] = t.shape;
      Deno.writeFileSync(
        `${dir}/adapter.${t.name}.f32`,
        new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      );
    }
    const lora = trainer.options.lora;
    const manifest = {
      config: c,
      tensors,
      trainable,
      lora: lora ? { scaling: lora.alpha / lora.r } : undefined,
      batch: extra.batch ? jsonBatch(extra.batch) : undefined,
      steps: extra.steps?.map((s) => s.map(jsonBatch)),
      optim: extra.optim,
      float64: extra.float64,
      adapter: extra.adapter ? adapter : undefined,
      adapterScaling: extra.adapter?.scaling,
    };
    Deno.writeTextFileSync(`${dir}/manifest.json`, JSON.stringify(manifest));
    const out = new Deno.Command(PYTHON, { args: [ORACLE, `${dir}/manifest.json`], stdout: "piped", stderr: "piped" })
      .outputSync();
    if (!out.success) throw new Error(`oracle failed:\n${new TextDecoder().decode(out.stderr)}`);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function jsonBatch(b: TrainBatch) {
  return { batch: b.batch, seqLen: b.seqLen, tokens: Array.from(b.tokens), labels: Array.from(b.labels) };
}

/** max |a−b| / max(|b|_∞, tiny): the relative error of a whole tensor against the oracle. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}
