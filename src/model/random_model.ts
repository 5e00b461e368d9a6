/**
 * Random LLaMA models as GGUF write specs: tiny ones for the engine's differential tests, and full-size shapes
 * (TinyLlama 1.1B, 7B) for benchmarks and the memory test, whose Q4_0 blocks are drawn directly (random nibbles
 * and fp16 scales) so a 3.9 GB file streams out without quantizing anything.
 * see: gguf_writer.ts (the writer), config.ts (the llama.* keys)
 */
import type { DType } from "../core/dtypes.ts";
import { f32ToF16Ref } from "../core/f16.ts";
import { type GgufKv, ggufKv, type GgufWriterTensor, type GgufWriteSpec } from "../formats/gguf_writer.ts";
import { quantizeRowQ4_0Ref } from "../quant/q4_0.ts";
import { quantizeRowQ8_0Ref } from "../quant/q8_0.ts";
import { configToGgufMetadata, type LlamaConfig } from "./config.ts";
import { GLOBAL_KINDS, LAYER_KINDS, type TensorKind, tensorName } from "./tensor_names.ts";
import { expectedShape } from "./weights.ts";

/** How to fill a random model. */
export interface RandomModelOptions {
  /** Type of the matrices (norms are always F32). */
  dtype: "F32" | "F16" | "Q8_0" | "Q4_0";
  seed?: number;
  /** Omit output.weight (the classifier is the embedding). Default false. */
  tiedOutput?: boolean;
  /** Q4_0 only: draw blocks directly instead of quantizing floats (fast; for multi-GB models). Default false. */
  rawBlocks?: boolean;
}

/** A small, fast seeded PRNG (mulberry32) returning floats in [0, 1); tests/_rand.ts uses it too. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** SentencePiece-style vocabulary KVs: <unk> <s> </s>, the 256 byte tokens, then "▁w<i>" pieces up to vocabSize. */
export function randomVocabMetadata(vocabSize: number): GgufKv[] {
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [2, 3, 3];
  for (let b = 0; b < 256 && tokens.length < vocabSize; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; tokens.length < vocabSize; i++) {
    // short word-like pieces so decoded text is readable
    let w = "", n = i;
    do {
      w += letters[n % 26];
      n = Math.floor(n / 26);
    } while (n > 0);
    tokens.push(i % 2 === 0 ? `▁${w}` : w);
    types.push(1);
  }
  return [
    ggufKv.string("tokenizer.ggml.model", "llama"),
    ggufKv.arrayString("tokenizer.ggml.tokens", tokens),
    ggufKv.arrayF32("tokenizer.ggml.scores", tokens.map((_, i) => -i)),
    ggufKv.arrayI32("tokenizer.ggml.token_type", types),
    ggufKv.u32("tokenizer.ggml.bos_token_id", 1),
    ggufKv.u32("tokenizer.ggml.eos_token_id", 2),
    ggufKv.u32("tokenizer.ggml.unknown_token_id", 0),
  ];
}

/** Metadata + tensors of a random model, each tensor produced when the writer reaches it. */
export function randomModelSpec(config: LlamaConfig, options: RandomModelOptions): GgufWriteSpec {
  const c = config;
  const seed = options.seed ?? 1;
  const metadata: GgufKv[] = [
    ggufKv.string("general.architecture", "llama"),
    ggufKv.string("general.name", `random-${options.dtype}`),
    ...configToGgufMetadata(c).map(([k, v]) =>
      k === "llama.attention.layer_norm_rms_epsilon" || k === "llama.rope.freq_base"
        ? ggufKv.f32(k, v)
        : ggufKv.u32(k, v)
    ),
    ggufKv.u32("general.file_type", { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7 }[options.dtype]),
    ...randomVocabMetadata(c.vocabSize),
  ];
  const tensors: GgufWriterTensor[] = [];
  let n = 0;
  const add = (kind: TensorKind, layer?: number) => {
    const shape = expectedShape(c, kind);
    const tseed = seed * 1000003 + n++;
    const isNorm = shape.length === 1;
    const dtype: DType = isNorm ? "F32" : options.dtype;
    tensors.push({
      name: tensorName("gguf", kind, layer),
      dtype,
      shape,
      data: () => randomTensor(kind, shape, dtype, tseed, options.rawBlocks ?? false),
    });
  };
  add("tok_embd");
  for (let l = 0; l < c.nLayers; l++) for (const kind of LAYER_KINDS) add(kind, l);
  for (const kind of GLOBAL_KINDS) {
    if (kind === "tok_embd" || (kind === "output" && options.tiedOutput)) continue;
    add(kind);
  }
  return { metadata, tensors };
}

function randomTensor(kind: TensorKind, shape: number[], dtype: DType, seed: number, rawBlocks: boolean): Uint8Array {
  const r = mulberry32(seed);
  const cols = shape[shape.length - 1];
  const rows = shape.length === 2 ? shape[0] : 1;
  const n = rows * cols;
  if (dtype === "Q4_0" && rawBlocks) {
    // random nibbles and fp16 scales
    const len = (n / 32) * 18;
    const words = new Uint32Array(Math.ceil(len / 4));
    for (let i = 0; i < words.length; i++) words[i] = Math.floor(r() * 4294967296);
    const out = new Uint8Array(words.buffer, 0, len);
    // |value| ≤ 8·d = a; the residual branches (attn_output, ffn_down) small so that 20–30 random layers do not
    // drown the token embedding (else every position predicts the same token)
    const a = kind === "tok_embd"
      ? 1
      : kind === "output"
      ? 6 / Math.sqrt(cols)
      : kind === "attn_output" || kind === "ffn_down"
      ? 0.5 / Math.sqrt(cols)
      : 2 / Math.sqrt(cols);
    const scale = f32ToF16Ref(a / 8);
    for (let o = 0; o < out.length; o += 18) {
      // a random sign per block: nibbles 0..15 have mean 7.5, i.e. (q - 8)·d has mean -d/2; alternating signs
      // cancel that bias, which would otherwise push every row the same way and collapse generation to one token
      out[o] = scale & 0xff;
      out[o + 1] = (scale >>> 8) | (r() < 0.5 ? 0x80 : 0); // a fresh draw: a nibble bit would correlate
    }
    return out;
  }
  const x = new Float32Array(n);
  if (shape.length === 1) {
    for (let i = 0; i < n; i++) x[i] = 1 + 0.2 * (r() - 0.5); // norm gains near 1
  } else {
    // uniform(-a, a): embeddings O(1); matrices scaled by 1/sqrt(cols) so activations stay O(1); a wider
    // classifier spreads the logits so greedy picks are not near-ties
    const a = kind === "tok_embd" ? 1 : kind === "output" ? 6 / Math.sqrt(cols) : 2 / Math.sqrt(cols);
    for (let i = 0; i < n; i++) x[i] = a * (2 * r() - 1);
  }
  switch (dtype) {
    case "F32":
      return new Uint8Array(x.buffer);
    case "F16":
      return new Uint8Array(new Float16Array(x).buffer);
    case "Q8_0": {
      const out = new Uint8Array((n / 32) * 34);
      quantizeRowQ8_0Ref(x, out);
      return out;
    }
    case "Q4_0": {
      const out = new Uint8Array((n / 32) * 18);
      quantizeRowQ4_0Ref(x, out);
      return out;
    }
    default:
      throw new RangeError(`Cannot make a random ${dtype} tensor`);
  }
}

/** Config of a named benchmark shape. */
export function benchConfig(name: "tinyllama-1.1b" | "7b-zh"): LlamaConfig {
  if (name === "tinyllama-1.1b") {
    return {
      dim: 2048,
      hiddenDim: 5632,
      nLayers: 22,
      nHeads: 32,
      nKvHeads: 4,
      headSize: 64,
      vocabSize: 32000,
      contextLength: 2048,
      normEps: 1e-5,
      ropeTheta: 10000,
    };
  }
  return {
    dim: 4096,
    hiddenDim: 11008,
    nLayers: 32,
    nHeads: 32,
    nKvHeads: 32,
    headSize: 128,
    vocabSize: 49954,
    contextLength: 2048,
    normEps: 1e-6,
    ropeTheta: 10000,
  };
}
