/**
 * The training forward and hand-written backward of LLaMA over a batch of B sequences of T tokens (N = B·T rows),
 * f32 throughout, weights in GGUF / Meta row order (RoPE rotates adjacent pairs, as llama.cpp and model/llama.ts).
 * Forward keeps what backward needs (one batch in flight); matrix products, attention, cross-entropy, RMSNorm and
 * SwiGLU, RoPE and LoRA dropout go through TrainKernels (on buffers from kernels.allocF32, which the WASM kernels use
 * in place); the rest (embedding gather/scatter, residual adds) are flat loops here. Allocation-free once the buffers have grown to
 * the largest batch seen.
 * Loss: LlamaForCausalLM's shifted cross-entropy, mean over labels ≠ −100 (torch CrossEntropyLoss(ignore_index)).
 * see: model/llama.ts (the inference reference), llama2.c train / llm.c backward passes, transformers
 *      modeling_llama.py (loss shift)
 */
import type { TrainKernels } from "../kernels/train_kernels.ts";
import type { LlamaConfig } from "../model/config.ts";
import { type Linear, Param, TrainRng } from "./lora.ts";
import { dequantizeRef } from "../quant/dequantize.ts";
import type { FrozenWeight } from "../kernels/train_kernels.ts";
import { nBytesOf } from "../core/dtypes.ts";

/** PyTorch's CrossEntropyLoss ignore_index, the seed's IGNORE_INDEX. */
export const IGNORE_INDEX = -100;

/** One batch: token ids and labels (HF convention: aligned with the ids; logits at t predict labels[t+1]). */
export interface TrainBatch {
  batch: number;
  seqLen: number;
  /** (batch·seqLen) input ids. */
  tokens: Int32Array;
  /** (batch·seqLen) labels, IGNORE_INDEX where no loss is taken. */
  labels: Int32Array;
}

/** One transformer layer's weights. */
export interface TrainLayer {
  attnNorm: Param; // (dim,)
  q: Linear; // (nHeads·headSize, dim)
  k: Linear; // (nKvHeads·headSize, dim)
  v: Linear; // (nKvHeads·headSize, dim)
  o: Linear; // (dim, dim)
  ffnNorm: Param; // (dim,)
  gate: Linear; // (hiddenDim, dim)  w1
  up: Linear; // (hiddenDim, dim)    w3
  down: Linear; // (dim, hiddenDim)  w2
}

/** The whole model: embedding (trainable f32 or frozen rows), layers, final norm, lm_head. */
export interface TrainWeights {
  /** (vocabSize, dim): a trainable Param or a frozen weight whose rows are dequantized on gather. */
  tokEmbd: Param | FrozenWeight;
  layers: TrainLayer[];
  outputNorm: Param; // (dim,)
  output: Linear; // (vocabSize, dim)
  /** Norm vectors that are trainable (full mode): their Param.grad accumulates. */
  trainNorms: boolean;
}

/** Validates a batch against the model; throws RangeError / TypeError naming what is wrong. */
export function checkBatch(b: TrainBatch, c: LlamaConfig, maxTokens = 1 << 24): void {
  if (!Number.isInteger(b.batch) || b.batch <= 0 || !Number.isInteger(b.seqLen) || b.seqLen <= 0) {
    throw new RangeError(`Cannot train on batch: batch ${b.batch} and seqLen ${b.seqLen} must be positive integers`);
  }
  const n = b.batch * b.seqLen;
  if (n > maxTokens) throw new RangeError(`Cannot train on batch: ${n} tokens exceed the limit ${maxTokens}`);
  if (b.seqLen > c.contextLength) {
    throw new RangeError(`Cannot train on batch: seqLen ${b.seqLen} exceeds the context length ${c.contextLength}`);
  }
  if (!(b.tokens instanceof Int32Array) || !(b.labels instanceof Int32Array)) {
    throw new TypeError("Cannot train on batch: tokens and labels must be Int32Arrays");
  }
  if (b.tokens.length !== n || b.labels.length !== n) {
    throw new RangeError(
      `Cannot train on batch: expected ${n} tokens and labels, got ${b.tokens.length} and ${b.labels.length}`,
    );
  }
  for (let i = 0; i < n; i++) {
    const t = b.tokens[i], l = b.labels[i];
    if (!(t >= 0 && t < c.vocabSize)) {
      throw new RangeError(`Cannot train on batch: token ${t} at ${i} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    if (l !== IGNORE_INDEX && !(l >= 0 && l < c.vocabSize)) {
      throw new RangeError(`Cannot train on batch: label ${l} at ${i} is neither ${IGNORE_INDEX} nor a token id`);
    }
  }
}

/** Per-layer activations kept for backward. */
interface LayerActs {
  r1: Float32Array; // (N,) 1/rms of the layer input xIn (N, dim), which #xIns keeps
  h1: Float32Array; // (N, dim) attn_norm(xIn): input of q, k, v
  q: Float32Array; // (N, dim) after RoPE
  k: Float32Array; // (N, kvDim) after RoPE
  v: Float32Array; // (N, kvDim)
  p: Float32Array; // (B, nHeads, T, T) exp(s − rowMax), unnormalized (the causal triangle; the rest unspecified)
  pInv: Float32Array; // (B, nHeads, T) 1/Σ of each row: softmax = p · pInv
  ao: Float32Array; // (N, dim) attention output: input of o
  xMid: Float32Array; // (N, dim) residual after attention
  r2: Float32Array; // (N,)
  h2: Float32Array; // (N, dim) ffn_norm(xMid): input of gate, up
  g: Float32Array; // (N, hiddenDim) silu(gate pre-activation)
  sg: Float32Array; // (N, hiddenDim) sigmoid(gate pre-activation)
  u: Float32Array; // (N, hiddenDim) up
  act: Float32Array; // (N, hiddenDim) silu(g)·u: input of down
}

/**
 * The training model over `TrainWeights`. `forward` returns the mean loss and keeps activations; `backward`
 * accumulates gradients (scaled by `lossScale`, e.g. 1/gradient-accumulation steps) into every trainable Param.
 */
export class TrainModel {
  #n = 0; // rows the buffers hold
  #b = 0;
  #t = 0;
  #acts: LayerActs[] = [];
  #xOut: Float32Array = new Float32Array(0); // (N, dim) residual after the last layer
  #rF: Float32Array = new Float32Array(0); // (N,)
  #hF: Float32Array = new Float32Array(0); // (N, dim) output_norm(xOut)
  #rows = new Int32Array(0); // (M,) rows with a label (compacted)
  #targets = new Int32Array(0); // (M,) their next-token labels
  #m = 0;
  #hc: Float32Array = new Float32Array(0); // (M, dim) compacted hF rows
  #logits: Float32Array = new Float32Array(0); // (M, vocab) logits, then exp(logit − max), then dlogits
  #invSum: Float32Array = new Float32Array(0); // (M,) 1/Σexp per row
  #tokens = new Int32Array(0);
  // scratch
  #cos: Float32Array = new Float32Array(0); // (T, headSize/2)
  #sin: Float32Array = new Float32Array(0);
  #dx: Float32Array = new Float32Array(0); // (N, dim) gradient of the residual stream
  #dh: Float32Array = new Float32Array(0); // (N, dim)
  #dq: Float32Array = new Float32Array(0); // (N, dim)
  #dk: Float32Array = new Float32Array(0); // (N, kvDim)
  #dv: Float32Array = new Float32Array(0); // (N, kvDim)
  #dact: Float32Array = new Float32Array(0); // (N, hiddenDim)
  #dg: Float32Array = new Float32Array(0); // (N, hiddenDim)
  #du: Float32Array = new Float32Array(0); // (N, hiddenDim)
  #rowTmp: Float32Array = new Float32Array(0); // (dim,)
  /** Backing storage by buffer name, grown only (kernels.allocF32 memory is never freed): views are cut from it. */
  readonly #store = new Map<string, Float32Array>();

  #xIns: Float32Array[] = []; // (layer)(N, dim) residual stream entering each layer (kept in both modes)
  #rngStates: (number[] | undefined)[] = []; // (layer) dropout RNG state at each layer's start (recompute)
  readonly #replayRng = new TrainRng(0);

  /**
   * `recompute`: keep only each layer's input and re-run the layer's forward during backward (activation
   * checkpointing: one layer's activations in memory instead of all, for one extra forward; dropout masks are
   * replayed from the saved RNG state, so gradients are bit-identical to the stored-activation mode).
   */
  constructor(
    readonly config: LlamaConfig,
    readonly weights: TrainWeights,
    readonly kernels: TrainKernels,
    readonly recompute = false,
  ) {}

  #ensure(b: number, t: number): void {
    const c = this.config;
    const n = b * t;
    const kvDim = c.nKvHeads * c.headSize;
    const hs = c.headSize;
    if (t !== this.#t) {
      // RoPE tables in f32 as Meta's precompute_freqs_cis: θ^(−2j/hs) and t·freq in float32
      this.#cos = this.#view("cos", t * (hs / 2));
      this.#sin = this.#view("sin", t * (hs / 2));
      for (let pos = 0; pos < t; pos++) {
        for (let j = 0; j < hs / 2; j++) {
          const freq = Math.fround(1 / Math.fround(Math.pow(c.ropeTheta, Math.fround((2 * j) / hs))));
          const a = Math.fround(pos * freq);
          this.#cos[pos * (hs / 2) + j] = Math.cos(a);
          this.#sin[pos * (hs / 2) + j] = Math.sin(a);
        }
      }
    }
    if (n === this.#n && b === this.#b && t === this.#t) return;
    const nActs = this.recompute ? Math.min(1, this.weights.layers.length) : this.weights.layers.length;
    const F = (key: string, k: number) => this.#view(key, k);
    this.#xIns = this.weights.layers.map((_, l) => F(`xIn${l}`, n * c.dim));
    this.#rngStates = this.weights.layers.map(() => undefined);
    this.#acts = Array.from({ length: nActs }, (_, l) => ({
      r1: F(`r1.${l}`, n),
      h1: F(`h1.${l}`, n * c.dim),
      q: F(`q.${l}`, n * c.dim),
      k: F(`k.${l}`, n * kvDim),
      v: F(`v.${l}`, n * kvDim),
      p: F(`p.${l}`, b * c.nHeads * t * t),
      pInv: F(`pInv.${l}`, b * c.nHeads * t),
      ao: F(`ao.${l}`, n * c.dim),
      xMid: F(`xMid.${l}`, n * c.dim),
      r2: F(`r2.${l}`, n),
      h2: F(`h2.${l}`, n * c.dim),
      g: F(`g.${l}`, n * c.hiddenDim),
      sg: F(`sg.${l}`, n * c.hiddenDim),
      u: F(`u.${l}`, n * c.hiddenDim),
      act: F(`act.${l}`, n * c.hiddenDim),
    }));
    this.#xOut = F("xOut", n * c.dim);
    this.#rF = F("rF", n);
    this.#hF = F("hF", n * c.dim);
    this.#rows = new Int32Array(n);
    this.#targets = new Int32Array(n);
    this.#hc = F("hc", n * c.dim);
    this.#logits = F("logits", n * c.vocabSize);
    this.#invSum = F("invSum", n);
    this.#tokens = new Int32Array(n);
    this.#dx = F("dx", n * c.dim);
    this.#dh = F("dh", n * c.dim);
    this.#dq = F("dq", n * c.dim);
    this.#dk = F("dk", n * kvDim);
    this.#dv = F("dv", n * kvDim);
    this.#dact = F("dact", n * c.hiddenDim);
    this.#dg = F("dg", n * c.hiddenDim);
    this.#du = F("du", n * c.hiddenDim);
    this.#rowTmp = new Float32Array(c.dim);
    this.#n = n;
    this.#b = b;
    this.#t = t;
  }

  /** The first k floats of the buffer named `key`, (re)allocated through the kernels when too small. */
  #view(key: string, k: number): Float32Array {
    let a = this.#store.get(key);
    if (!a || a.length < k) {
      a = this.kernels.allocF32(k);
      this.#store.set(key, a);
    }
    return a.subarray(0, k);
  }

  /** Number of labelled positions of the last forward (the loss's denominator). */
  get nTargets(): number {
    return this.#m;
  }

  /**
   * Runs the batch; returns the mean cross-entropy over positions t whose label[t+1] ≠ −100 (NaN when none).
   * `rng` given = training (LoRA dropout active).
   */
  forward(batch: TrainBatch, rng?: TrainRng): number {
    const c = this.config, w = this.weights, k = this.kernels;
    checkBatch(batch, c);
    const B = batch.batch, T = batch.seqLen, N = B * T;
    this.#ensure(B, T);
    const dim = c.dim;
    this.#tokens.set(batch.tokens);

    // embedding gather: x[row] = tok_embd[token]  (N, dim)
    const x0 = this.#xIns.length > 0 ? this.#xIns[0] : this.#xOut;
    gatherRows(x0, batch.tokens, w.tokEmbd, dim, this.#rowTmp);

    for (let l = 0; l < w.layers.length; l++) {
      const next = l + 1 < w.layers.length ? this.#xIns[l + 1] : this.#xOut;
      this.#rngStates[l] = this.recompute && rng ? rng.state : undefined;
      this.#layerForward(l, this.#acts[this.recompute ? 0 : l], this.#xIns[l], next, B, T, rng);
    }
    k.rmsNormForward(this.#hF, this.#rF, this.#xOut, w.outputNorm.data, N, dim, c.normEps);

    // compact the rows that have a next-token label: only they need logits
    let m = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t + 1 < T; t++) {
        const lab = batch.labels[b * T + t + 1];
        if (lab === IGNORE_INDEX) continue;
        this.#rows[m] = b * T + t;
        this.#targets[m] = lab;
        m++;
      }
    }
    this.#m = m;
    if (m === 0) return NaN;
    const hc = this.#hc, hF = this.#hF;
    for (let i = 0; i < m; i++) hc.set(hF.subarray(this.#rows[i] * dim, (this.#rows[i] + 1) * dim), i * dim);
    w.output.forward(k, this.#logits, hc, m, rng); // (M, dim) @ W_out (vocab, dim)ᵀ -> (M, vocab)
    const V = c.vocabSize;
    return k.crossEntropyForward(
      this.#logits.subarray(0, m * V),
      this.#invSum.subarray(0, m),
      this.#targets.subarray(0, m),
      m,
      V,
    );
  }

  /** One layer: xOut = xIn + attention(xIn), then xOut += FFN(xOut); activations into `a`. */
  #layerForward(
    l: number,
    a: LayerActs,
    xIn: Float32Array,
    xOut: Float32Array,
    B: number,
    T: number,
    rng: TrainRng | undefined,
  ): void {
    const c = this.config, k = this.kernels, L = this.weights.layers[l];
    const N = B * T, dim = c.dim, hd = c.hiddenDim;
    k.rmsNormForward(a.h1, a.r1, xIn, L.attnNorm.data, N, dim, c.normEps);
    L.q.forward(k, a.q, a.h1, N, rng); // (N, dim) @ Wq (dim, dim)ᵀ
    L.k.forward(k, a.k, a.h1, N, rng); // (N, dim) @ Wk (kvDim, dim)ᵀ
    L.v.forward(k, a.v, a.h1, N, rng);
    k.rope(a.q, B, T, c.nHeads, c.headSize, this.#cos, this.#sin, 1);
    k.rope(a.k, B, T, c.nKvHeads, c.headSize, this.#cos, this.#sin, 1);
    k.attentionForward(a.ao, a.p, a.pInv, a.q, a.k, a.v, B, T, c.nHeads, c.nKvHeads, c.headSize);
    L.o.forward(k, a.xMid, a.ao, N, rng); // (N, dim) @ Wo (dim, dim)ᵀ, then the residual
    for (let i = 0; i < N * dim; i++) a.xMid[i] += xIn[i];
    k.rmsNormForward(a.h2, a.r2, a.xMid, L.ffnNorm.data, N, dim, c.normEps);
    L.gate.forward(k, a.g, a.h2, N, rng); // (N, dim) @ W1 (hd, dim)ᵀ
    L.up.forward(k, a.u, a.h2, N, rng); // (N, dim) @ W3 (hd, dim)ᵀ
    k.swigluForward(a.g, a.sg, a.act, a.u, N * hd); // g becomes silu(g); act = silu(g)·u
    L.down.forward(k, xOut, a.act, N, rng); // (N, hd) @ W2 (dim, hd)ᵀ
    for (let i = 0; i < N * dim; i++) xOut[i] += a.xMid[i];
  }

  /**
   * Backward of the last forward (which must have been a training forward of the same batch): accumulates
   * d(lossScale · loss)/dθ into every trainable Param.grad. The logits buffer is consumed.
   */
  backward(lossScale = 1): void {
    const c = this.config, w = this.weights, k = this.kernels;
    const m = this.#m;
    if (m === 0) return;
    const B = this.#b, T = this.#t, N = B * T;
    const dim = c.dim, hd = c.hiddenDim;
    const V = c.vocabSize;
    k.crossEntropyBackward(
      this.#logits.subarray(0, m * V),
      this.#invSum.subarray(0, m),
      this.#targets.subarray(0, m),
      m,
      V,
      lossScale / m,
    );
    // lm_head: dHc (M, dim) = dlogits @ W_out; dW_out += dlogitsᵀ Hc
    const dhc = this.#dh; // (M ≤ N rows, dim)
    dhc.fill(0, 0, m * dim);
    w.output.backward(k, dhc, this.#logits, this.#hc, m);
    const dx = this.#dx;
    const dhF = this.#dq; // scatter into an (N, dim) buffer
    dhF.fill(0, 0, N * dim);
    for (let i = 0; i < m; i++) dhF.set(dhc.subarray(i * dim, (i + 1) * dim), this.#rows[i] * dim);
    dx.fill(0, 0, N * dim);
    k.rmsNormBackward(
      dx,
      w.trainNorms ? w.outputNorm.grad : undefined,
      dhF,
      this.#xOut,
      this.#rF,
      w.outputNorm.data,
      N,
      dim,
    );

    for (let l = w.layers.length - 1; l >= 0; l--) {
      const L = w.layers[l], xIn = this.#xIns[l];
      let a = this.#acts[l];
      if (this.recompute) {
        // re-run the layer from its kept input (writing the same values to its output again), replaying dropout
        a = this.#acts[0];
        const saved = this.#rngStates[l];
        if (saved) this.#replayRng.state = saved;
        const next = l + 1 < w.layers.length ? this.#xIns[l + 1] : this.#xOut;
        this.#layerForward(l, a, xIn, next, B, T, saved ? this.#replayRng : undefined);
      }
      // FFN: next = xMid + down(act); dx is d(next)
      const dact = this.#dact;
      dact.fill(0, 0, N * hd);
      L.down.backward(k, dact, dx, a.act, N);
      const dg = this.#dg, du = this.#du;
      k.swigluBackward(dg, du, dact, a.g, a.sg, a.u, N * hd); // a.g holds silu(g)
      const dh = this.#dh;
      dh.fill(0, 0, N * dim);
      L.gate.backward(k, dh, dg, a.h2, N);
      L.up.backward(k, dh, du, a.h2, N);
      // dx (= d xMid through the residual) += rmsnorm backward
      k.rmsNormBackward(dx, w.trainNorms ? L.ffnNorm.grad : undefined, dh, a.xMid, a.r2, L.ffnNorm.data, N, dim);

      // attention: xMid = xIn + o(ao)
      const dao = this.#dh;
      dao.fill(0, 0, N * dim);
      L.o.backward(k, dao, dx, a.ao, N);
      k.attentionBackward(
        this.#dq,
        this.#dk,
        this.#dv,
        dao,
        a.q,
        a.k,
        a.v,
        a.p,
        a.pInv,
        B,
        T,
        c.nHeads,
        c.nKvHeads,
        c.headSize,
      );
      k.rope(this.#dq, B, T, c.nHeads, c.headSize, this.#cos, this.#sin, -1); // inverse rotation
      k.rope(this.#dk, B, T, c.nKvHeads, c.headSize, this.#cos, this.#sin, -1);
      const dh1 = this.#dh;
      dh1.fill(0, 0, N * dim);
      L.q.backward(k, dh1, this.#dq, a.h1, N);
      L.k.backward(k, dh1, this.#dk, a.h1, N);
      L.v.backward(k, dh1, this.#dv, a.h1, N);
      k.rmsNormBackward(dx, w.trainNorms ? L.attnNorm.grad : undefined, dh1, xIn, a.r1, L.attnNorm.data, N, dim);
    }
    // embedding scatter-add: dE[token] += dx[row]
    if (w.tokEmbd instanceof Param) {
      const g = w.tokEmbd.grad, toks = this.#tokens;
      for (let r = 0; r < N; r++) {
        const o = toks[r] * dim, s = r * dim;
        for (let i = 0; i < dim; i++) g[o + i] += dx[s + i];
      }
    }
  }
}

/** x[r] = table[tokens[r]] for a trainable (f32) or frozen (file-type rows) embedding. */
function gatherRows(
  x: Float32Array,
  tokens: Int32Array,
  table: Param | FrozenWeight,
  dim: number,
  tmp: Float32Array,
): void {
  if (table instanceof Param) {
    for (let r = 0; r < tokens.length; r++) x.set(table.data.subarray(tokens[r] * dim, (tokens[r] + 1) * dim), r * dim);
    return;
  }
  const rowBytes = nBytesOf(table.type, dim);
  for (let r = 0; r < tokens.length; r++) {
    const o = tokens[r] * rowBytes;
    if (table.type === "F32") {
      const dv = new DataView(table.bytes.buffer, table.bytes.byteOffset + o, rowBytes);
      for (let i = 0; i < dim; i++) tmp[i] = dv.getFloat32(4 * i, true);
      x.set(tmp.subarray(0, dim), r * dim);
    } else {
      x.set(dequantizeRef(table.type, table.bytes.subarray(o, o + rowBytes), dim), r * dim);
    }
  }
}
