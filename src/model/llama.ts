/**
 * The readable reference forward pass of LLaMA in plain TypeScript, f32 throughout, one token at a time, in the
 * style of llama2.c's run.c, each step one of the kernels' `…Ref` definitions (src/kernels/scalar.ts). The fast
 * engine (engine.ts, on either `Kernels` implementation) must agree with this before it is timed.
 * see: karpathy/llama2.c run.c `forward`, llama.cpp llm_build_llama (RoPE "normal" mode = adjacent pairs)
 */
import { attentionRef, matmulF32Ref, rmsNormRef, ropeRef, siluGateRef } from "../kernels/scalar.ts";
import { dequantizeRowQ8_0Ref, quantizeRowQ8_0Ref } from "../quant/q8_0.ts";
import type { LlamaConfig } from "./config.ts";
import { type TensorKind, tensorName } from "./tensor_names.ts";
import type { TensorTable } from "./weights.ts";

/** All weights as f32, matrices row-major [out, in] (so `y = W·x`). */
export interface LlamaWeightsF32 {
  tokEmbd: Float32Array; // (vocabSize, dim)
  attnNorm: Float32Array[]; // (layer)(dim,)
  attnQ: Float32Array[]; // (layer)(dim, dim)                  rows = nHeads*headSize
  attnK: Float32Array[]; // (layer)(nKvHeads*headSize, dim)
  attnV: Float32Array[]; // (layer)(nKvHeads*headSize, dim)
  attnOutput: Float32Array[]; // (layer)(dim, dim)
  ffnNorm: Float32Array[]; // (layer)(dim,)
  ffnGate: Float32Array[]; // (layer)(hiddenDim, dim)           w1
  ffnDown: Float32Array[]; // (layer)(dim, hiddenDim)           w2
  ffnUp: Float32Array[]; // (layer)(hiddenDim, dim)             w3
  outputNorm: Float32Array; // (dim,)
  output: Float32Array; // (vocabSize, dim)                    the embedding itself when tied
  /**
   * Tensors (GGUF names) whose input llama.cpp's CPU path — and our engine — rounds through Q8_0 before the dot
   * product (the Q4_0 and Q8_0 matrices). Used only when the reference runs with `numerics: "engine"`.
   */
  q8Inputs?: Set<string>;
}

/** How the reference rounds: pure f32, or as the engine does (Q8_0 activations into Q4_0/Q8_0 weights, f16 KV). */
export interface ReferenceNumerics {
  /** Round each quantized matrix's input through Q8_0 (see LlamaWeightsF32.q8Inputs). */
  q8Activations?: boolean;
  /** Round cached keys and values to f16. */
  f16Cache?: boolean;
}

/** Reads every weight of a model as f32 (dequantizing whatever type the file stores). */
export function loadWeightsF32(table: TensorTable): LlamaWeightsF32 {
  const c = table.config;
  const q8Inputs = new Set<string>();
  for (const t of table.file.tensors) {
    if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16") q8Inputs.add(t.name);
  }
  const layers = (k: TensorKind) => Array.from({ length: c.nLayers }, (_, l) => table.f32(k, l));
  const tokEmbd = table.f32("tok_embd");
  return {
    tokEmbd,
    attnNorm: layers("attn_norm"),
    attnQ: layers("attn_q"),
    attnK: layers("attn_k"),
    attnV: layers("attn_v"),
    attnOutput: layers("attn_output"),
    ffnNorm: layers("ffn_norm"),
    ffnGate: layers("ffn_gate"),
    ffnDown: layers("ffn_down"),
    ffnUp: layers("ffn_up"),
    outputNorm: table.f32("output_norm"),
    output: table.hasOutput ? table.f32("output") : tokEmbd,
    q8Inputs,
  };
}

/**
 * The reference model: weights in f32, an f32 KV cache of `contextSize` positions.
 *
 * @example
 * ```ts ignore
 * const model = new LlamaReference(config, loadWeightsF32(table), 256);
 * const logits = model.forward(1, 0); // BOS at position 0 -> (vocabSize,)
 * ```
 */
export class LlamaReference {
  readonly contextSize: number;
  readonly numerics: ReferenceNumerics;
  readonly #xq: Float32Array; // (max(dim, hiddenDim),) a Q8_0-rounded copy of a matmul input
  // activations
  readonly #x: Float32Array; // (dim,) the residual stream
  readonly #xb: Float32Array; // (dim,) normed input / attention output
  readonly #xb2: Float32Array; // (dim,)
  readonly #q: Float32Array; // (dim,)
  readonly #k: Float32Array; // (kvDim,)
  readonly #v: Float32Array; // (kvDim,)
  readonly #hb: Float32Array; // (hiddenDim,)
  readonly #hb2: Float32Array; // (hiddenDim,)
  readonly #logits: Float32Array; // (vocabSize,)
  // KV cache
  readonly #keyCache: Float32Array; // (layer, contextSize, kvDim)
  readonly #valueCache: Float32Array; // (layer, contextSize, kvDim)

  constructor(
    readonly config: LlamaConfig,
    readonly weights: LlamaWeightsF32,
    contextSize = config.contextLength,
    numerics: ReferenceNumerics = {},
  ) {
    const c = config;
    this.numerics = numerics;
    this.#xq = new Float32Array(Math.max(c.dim, c.hiddenDim));
    if (!Number.isSafeInteger(contextSize) || contextSize <= 0) {
      throw new RangeError(`Cannot create model: context size ${contextSize} must be a positive integer`);
    }
    this.contextSize = contextSize;
    const kvDim = c.nKvHeads * c.headSize;
    this.#x = new Float32Array(c.dim);
    this.#xb = new Float32Array(c.dim);
    this.#xb2 = new Float32Array(c.dim);
    this.#q = new Float32Array(c.dim);
    this.#k = new Float32Array(kvDim);
    this.#v = new Float32Array(kvDim);
    this.#hb = new Float32Array(c.hiddenDim);
    this.#hb2 = new Float32Array(c.hiddenDim);
    this.#logits = new Float32Array(c.vocabSize);
    this.#keyCache = new Float32Array(c.nLayers * contextSize * kvDim);
    this.#valueCache = new Float32Array(c.nLayers * contextSize * kvDim);
  }

  /** W (d, n) @ x (n,) -> out (d,), with x rounded through Q8_0 first when the engine would do so for `name`. */
  #mm(out: Float32Array, x: Float32Array, w: Float32Array, n: number, d: number, name: string): void {
    if (this.numerics.q8Activations && this.weights.q8Inputs?.has(name) && n % 32 === 0) {
      const q = new Uint8Array((n / 32) * 34);
      quantizeRowQ8_0Ref(x.subarray(0, n), q);
      const xq = this.#xq.subarray(0, n);
      dequantizeRowQ8_0Ref(q, xq);
      x = xq;
    }
    matmulF32Ref(w, x, out, d, n, 1);
  }

  /** The final-normed hidden state (dim,) of the last forward() (the classifier's input), a fresh copy. */
  get hidden(): Float32Array {
    return this.#x.slice();
  }

  /** Runs `token` at position `pos` (writing the KV cache there); returns the logits (vocabSize,), a fresh copy. */
  forward(token: number, pos: number): Float32Array {
    const c = this.config, w = this.weights;
    if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize) {
      throw new RangeError(`Cannot run model: token ${token} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.contextSize) {
      throw new RangeError(`Cannot run model: position ${pos} is outside the context [0, ${this.contextSize})`);
    }
    const { dim, hiddenDim, headSize, nHeads, nKvHeads } = c;
    const kvDim = nKvHeads * headSize;
    const x = this.#x, xb = this.#xb, xb2 = this.#xb2, q = this.#q, k = this.#k, v = this.#v;
    const hb = this.#hb, hb2 = this.#hb2;

    x.set(w.tokEmbd.subarray(token * dim, (token + 1) * dim)); // tok_embd row -> x (dim,)

    for (let l = 0; l < c.nLayers; l++) {
      // attention: xb = rmsnorm(x); q,k,v = Wq·xb, Wk·xb, Wv·xb
      rmsNormRef(x, w.attnNorm[l], xb, c.normEps);
      this.#mm(q, xb, w.attnQ[l], dim, dim, tensorName("gguf", "attn_q", l)); // (dim, dim) @ (dim,) -> (dim,)
      this.#mm(k, xb, w.attnK[l], dim, kvDim, tensorName("gguf", "attn_k", l)); // (kvDim, dim) @ (dim,) -> (kvDim,)
      this.#mm(v, xb, w.attnV[l], dim, kvDim, tensorName("gguf", "attn_v", l));
      ropeRef(q, nHeads, headSize, pos, c.ropeTheta);
      ropeRef(k, nKvHeads, headSize, pos, c.ropeTheta);
      const layerOff = l * this.contextSize * kvDim;
      if (this.numerics.f16Cache) {
        for (let i = 0; i < kvDim; i++) {
          k[i] = Math.f16round(k[i]);
          v[i] = Math.f16round(v[i]);
        }
      }
      this.#keyCache.set(k, layerOff + pos * kvDim);
      this.#valueCache.set(v, layerOff + pos * kvDim);

      // multi-head attention, each query head over its key/value head's cache rows 0..pos (GQA) -> xb (dim,)
      const cache = (all: Float32Array) => all.subarray(layerOff, layerOff + (pos + 1) * kvDim);
      attentionRef(q, cache(this.#keyCache), cache(this.#valueCache), xb, {
        nHeads,
        nKvHeads,
        headSize,
        nPos: pos + 1,
      });
      this.#mm(xb2, xb, w.attnOutput[l], dim, dim, tensorName("gguf", "attn_output", l)); // Wo (dim, dim) @ xb (dim,) -> (dim,)
      for (let i = 0; i < dim; i++) x[i] += xb2[i];

      // SwiGLU FFN: x += W2 · (silu(W1·xb) ⊙ (W3·xb)), xb = rmsnorm(x)
      rmsNormRef(x, w.ffnNorm[l], xb, c.normEps);
      this.#mm(hb, xb, w.ffnGate[l], dim, hiddenDim, tensorName("gguf", "ffn_gate", l)); // (hiddenDim, dim) @ (dim,)
      this.#mm(hb2, xb, w.ffnUp[l], dim, hiddenDim, tensorName("gguf", "ffn_up", l));
      siluGateRef(hb, hb2, hb); // silu(W1·xb) ⊙ (W3·xb)
      this.#mm(xb, hb, w.ffnDown[l], hiddenDim, dim, tensorName("gguf", "ffn_down", l)); // (dim, hiddenDim) @ (hiddenDim,)
      for (let i = 0; i < dim; i++) x[i] += xb[i];
    }

    rmsNormRef(x, w.outputNorm, x, c.normEps);
    const outName = tensorName("gguf", w.output === w.tokEmbd ? "tok_embd" : "output");
    this.#mm(this.#logits, x, w.output, dim, c.vocabSize, outName); // (vocabSize, dim) @ (dim,) -> (vocabSize,)
    return this.#logits.slice();
  }
}
