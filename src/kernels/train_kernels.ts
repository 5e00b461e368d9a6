/**
 * Training kernels: the f32 matrix products of a training step (forward, input gradient, weight gradient), the
 * frozen-base products over quantized GGUF rows, and the other hot ops of a step (causal GQA attention, cross-entropy,
 * RMSNorm, SwiGLU, forward and backward), on typed arrays. `scalarTrainKernels` and the `…Ref` functions are the
 * definitions; the WASM SIMD implementation (src/kernels/train_wasm.ts) must agree with them
 * (tests/kernels/train_*_test.ts). All matrices are row-major: X (rows, nIn), W (nOut, nIn) as in nn.Linear, Y (rows,
 * nOut).
 * see: PyTorch nn.Linear (y = x Wᵀ), its autograd (dX = dY W, dW = dYᵀ X); llm.c (attention, cross-entropy backward)
 */
import { dequantizeRef } from "../quant/dequantize.ts";

/** The file types a frozen base weight may keep (dequantized on the fly). */
export type FrozenType = "F32" | "F16" | "Q8_0" | "Q4_0";

/** A frozen base weight kept in its file type: GGUF rows of `type` (F32, F16, Q8_0 or Q4_0), shape (nOut, nIn). */
export interface FrozenWeight {
  readonly type: FrozenType;
  readonly bytes: Uint8Array;
  readonly nOut: number;
  readonly nIn: number;
}

export interface TrainKernels {
  readonly name: string;
  /** Y (rows, nOut) = X (rows, nIn) @ W (nOut, nIn)ᵀ; overwrites y. */
  matmulF32(y: Float32Array, x: Float32Array, w: Float32Array, rows: number, nIn: number, nOut: number): void;
  /** dX (rows, nIn) += dY (rows, nOut) @ W (nOut, nIn); accumulates into dx. */
  matmulF32BackwardInput(
    dx: Float32Array,
    dy: Float32Array,
    w: Float32Array,
    rows: number,
    nIn: number,
    nOut: number,
  ): void;
  /** dW (nOut, nIn) += dY (rows, nOut)ᵀ @ X (rows, nIn); accumulates into dw. */
  matmulF32BackwardWeight(
    dw: Float32Array,
    dy: Float32Array,
    x: Float32Array,
    rows: number,
    nIn: number,
    nOut: number,
  ): void;
  /** Y (rows, nOut) = X (rows, nIn) @ dequant(W)ᵀ for a frozen weight; overwrites y. */
  matmulFrozen(y: Float32Array, x: Float32Array, w: FrozenWeight, rows: number): void;
  /** dX (rows, nIn) += dY (rows, nOut) @ dequant(W); accumulates into dx. */
  matmulFrozenBackwardInput(dx: Float32Array, dy: Float32Array, w: FrozenWeight, rows: number): void;

  /**
   * A zeroed f32 buffer for activations that these kernels read and write often (the WASM kernels place it in their
   * memory while a budget allows, so calls on it copy nothing; otherwise, and for the scalar kernels, a plain array).
   */
  allocF32(n: number): Float32Array;
  /**
   * Causal GQA attention over B sequences of T rows: for each query head h (kv head h / (nHeads/nKvHeads)) and row t,
   * E_j = exp(q_t·k_j/√hs − max_j) for j ≤ t, kept in p (B, nHeads, T, T) row t (entries past t: unspecified),
   * pInv (B, nHeads, T) = 1/Σ_j E_j, and ao's head columns = pInv · Σ_j E_j v_j. q, ao (B·T, nHeads·hs);
   * k, v (B·T, nKvHeads·hs). Overwrites ao, p (triangle), pInv.
   */
  attentionForward(
    ao: Float32Array,
    p: Float32Array,
    pInv: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    B: number,
    T: number,
    nHeads: number,
    nKvHeads: number,
    hs: number,
  ): void;
  /** Backward of attentionForward from dao (B·T, nHeads·hs): overwrites dq (like q), dk and dv (like k, v). */
  attentionBackward(
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    dao: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    p: Float32Array,
    pInv: Float32Array,
    B: number,
    T: number,
    nHeads: number,
    nKvHeads: number,
    hs: number,
  ): void;
  /**
   * Mean cross-entropy of logits (M, V) against targets (M,) in [0, V); leaves exp(logit − rowMax) in logits and
   * 1/Σexp per row in invSum (M,) for crossEntropyBackward. M > 0.
   */
  crossEntropyForward(logits: Float32Array, invSum: Float32Array, targets: Int32Array, m: number, V: number): number;
  /** In place after crossEntropyForward: logits (M, V) -> scale·(softmax − onehot(target)). */
  crossEntropyBackward(
    expLogits: Float32Array,
    invSum: Float32Array,
    targets: Int32Array,
    m: number,
    V: number,
    scale: number,
  ): void;
  /** y = w ⊙ x / √(mean(x²) + eps) per row, r = 1/√(…) per row. x, y (n, dim); w (dim,); r (n,). */
  rmsNormForward(
    y: Float32Array,
    r: Float32Array,
    x: Float32Array,
    w: Float32Array,
    n: number,
    dim: number,
    eps: number,
  ): void;
  /** RMSNorm backward, accumulating: dx += r·(w⊙dy) − x·r³/dim·Σ(w⊙dy⊙x); dw += Σ_rows dy⊙x·r when given. */
  rmsNormBackward(
    dx: Float32Array,
    dw: Float32Array | undefined,
    dy: Float32Array,
    x: Float32Array,
    r: Float32Array,
    w: Float32Array,
    n: number,
    dim: number,
  ): void;
  /**
   * RoPE on adjacent pairs (v[2j], v[2j+1]) of each head of x (B·T, nHeads·hs) at position t (the row within its
   * sequence), in place: sign 1 rotates by +t·θ_j (forward), −1 by −t·θ_j (the backward: a rotation's transpose).
   * cos, sin (T, hs/2); hs even.
   */
  rope(
    x: Float32Array,
    B: number,
    T: number,
    nHeads: number,
    hs: number,
    cos: Float32Array,
    sin: Float32Array,
    sign: 1 | -1,
  ): void;
  /**
   * Inverted dropout over n elements with xoshiro128** (`state`, 4 words, advanced n steps in place): for each i in
   * order, kept = next()/2^32 < 1 − p; mask[i] = kept; xd[i] = kept ? x[i]·(1/(1 − p)) : 0 (f64 product, rounded once).
   */
  dropout(xd: Float32Array, mask: Uint8Array, x: Float32Array, n: number, p: number, state: Uint32Array): void;
  /** Backward of dropout, accumulating: dx[i] += mask[i] ? dxd[i]·(1/(1 − p)) : 0 (f64, rounded once). */
  dropoutBackward(dx: Float32Array, dxd: Float32Array, mask: Uint8Array, n: number, p: number): void;
  /**
   * One AdamW update of n elements in f32 arithmetic, every operation rounded to f32 as torch's f32 tensors compute it
   * (no fused multiply-add): p ← p·decay, m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
   * p ← p + negStepSize·(m / (√v / bc2Sqrt + eps)). The coefficients are f32 values (the caller rounds them).
   */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, c: AdamWCoefficients): void;
  /** SwiGLU forward over n elements: sg = σ(g), g -> silu(g) = g·σ(g) in place, act = silu(g)·u. */
  swigluForward(g: Float32Array, sg: Float32Array, act: Float32Array, u: Float32Array, n: number): void;
  /** SwiGLU backward (overwrites dg, du): du = dact·silu, dg = dact·u·(σ + silu·(1 − σ)). */
  swigluBackward(
    dg: Float32Array,
    du: Float32Array,
    dact: Float32Array,
    silu: Float32Array,
    sg: Float32Array,
    u: Float32Array,
    n: number,
  ): void;
}

/** The f32 coefficients of one AdamW update (TrainKernels.adamw). */
export interface AdamWCoefficients {
  decay: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  negStepSize: number;
  bc2Sqrt: number;
  eps: number;
}

/** The definitions: plain loops, f32 accumulation in index order (tests compare with named tolerances). */
export const scalarTrainKernels: TrainKernels = {
  name: "scalar",
  matmulF32(y, x, w, rows, nIn, nOut) {
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < nOut; o++) {
        let s = 0;
        for (let i = 0; i < nIn; i++) s += x[r * nIn + i] * w[o * nIn + i];
        y[r * nOut + o] = s;
      }
    }
  },
  matmulF32BackwardInput(dx, dy, w, rows, nIn, nOut) {
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < nOut; o++) {
        const g = dy[r * nOut + o];
        if (g === 0) continue;
        for (let i = 0; i < nIn; i++) dx[r * nIn + i] += g * w[o * nIn + i];
      }
    }
  },
  matmulF32BackwardWeight(dw, dy, x, rows, nIn, nOut) {
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < nOut; o++) {
        const g = dy[r * nOut + o];
        if (g === 0) continue;
        for (let i = 0; i < nIn; i++) dw[o * nIn + i] += g * x[r * nIn + i];
      }
    }
  },
  matmulFrozen(y, x, w, rows) {
    this.matmulF32(y, x, dequantizeRef(w.type, w.bytes, w.nOut * w.nIn), rows, w.nIn, w.nOut);
  },
  matmulFrozenBackwardInput(dx, dy, w, rows) {
    this.matmulF32BackwardInput(dx, dy, dequantizeRef(w.type, w.bytes, w.nOut * w.nIn), rows, w.nIn, w.nOut);
  },
  allocF32: (n) => new Float32Array(n),
  attentionForward: attentionForwardRef,
  attentionBackward: attentionBackwardRef,
  crossEntropyForward: crossEntropyForwardRef,
  crossEntropyBackward: crossEntropyBackwardRef,
  rmsNormForward: rmsNormForwardRef,
  rmsNormBackward: rmsNormBackwardRef,
  rope: ropeRef,
  dropout: dropoutRef,
  dropoutBackward: dropoutBackwardRef,
  adamw: adamwRef,
  swigluForward: swigluForwardRef,
  swigluBackward: swigluBackwardRef,
};

/**
 * One step of xoshiro128** on `s` (4 uint32 words, advanced in place); returns the 32-bit output. The one home of
 * the generator (train's TrainRng and the dropout kernels run it).
 * see: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (xoshiro128**)
 */
export function xoshiro128ss(s: Uint32Array): number {
  const r = Math.imul(rotl32(Math.imul(s[1], 5), 7), 9) >>> 0;
  const t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl32(s[3], 11);
  return r;
}

function rotl32(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The definition of TrainKernels.rope. */
export function ropeRef(
  x: Float32Array,
  B: number,
  T: number,
  nHeads: number,
  hs: number,
  cos: Float32Array,
  sin: Float32Array,
  sign: 1 | -1,
): void {
  const half = hs / 2, stride = nHeads * hs;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * stride, co = t * half;
      for (let h = 0; h < nHeads; h++) {
        const ho = o + h * hs;
        for (let j = 0; j < half; j++) {
          const c = cos[co + j], s = sign * sin[co + j];
          const v0 = x[ho + 2 * j], v1 = x[ho + 2 * j + 1];
          x[ho + 2 * j] = v0 * c - v1 * s;
          x[ho + 2 * j + 1] = v0 * s + v1 * c;
        }
      }
    }
  }
}

/** The definition of TrainKernels.adamw (Math.fround after every operation). */
export function adamwRef(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  n: number,
  c: AdamWCoefficients,
): void {
  const f = Math.fround;
  const { decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, negStepSize, bc2Sqrt, eps } = c;
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const pi = decay === 1 ? p[i] : f(p[i] * decay);
    const mi = f(f(m[i] * beta1) + f(gi * oneMinusBeta1));
    const vi = f(f(v[i] * beta2) + f(f(gi * gi) * oneMinusBeta2));
    m[i] = mi;
    v[i] = vi;
    const denom = f(f(f(Math.sqrt(vi)) / bc2Sqrt) + eps);
    p[i] = f(pi + f(negStepSize * f(mi / denom)));
  }
}

/** The definition of TrainKernels.dropoutBackward. */
export function dropoutBackwardRef(dx: Float32Array, dxd: Float32Array, mask: Uint8Array, n: number, p: number): void {
  const inv = 1 / (1 - p);
  for (let i = 0; i < n; i++) if (mask[i]) dx[i] += dxd[i] * inv;
}

/** The definition of TrainKernels.dropout. */
export function dropoutRef(
  xd: Float32Array,
  mask: Uint8Array,
  x: Float32Array,
  n: number,
  p: number,
  state: Uint32Array,
): void {
  const keep = 1 - p, inv = 1 / keep;
  for (let i = 0; i < n; i++) {
    const kept = xoshiro128ss(state) / 4294967296 < keep;
    mask[i] = kept ? 1 : 0;
    xd[i] = kept ? x[i] * inv : 0;
  }
}

/**
 * The definition of TrainKernels.attentionForward: f64 sums in index order, one exp per causal score
 * (max-subtraction: exp never overflows). P is kept unnormalized with 1/Σ per row: normalizing O (T·hs) instead of
 * P (T²/2) saves a pass over the triangle.
 */
export function attentionForwardRef(
  ao: Float32Array,
  p: Float32Array,
  pInv: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  B: number,
  T: number,
  nHeads: number,
  nKvHeads: number,
  hs: number,
): void {
  const dim = nHeads * hs, kvDim = nKvHeads * hs, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hs);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHeads; h++) {
      const kc = Math.floor(h / group) * hs, bh = b * nHeads + h;
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * dim + h * hs, po = (bh * T + t) * T;
        let max = -Infinity;
        for (let j = 0; j <= t; j++) {
          const ko = (b * T + j) * kvDim + kc;
          let s = 0;
          for (let d = 0; d < hs; d++) s += q[qo + d] * scale * k[ko + d];
          p[po + j] = s;
          if (p[po + j] > max) max = p[po + j];
        }
        let sum = 0;
        for (let j = 0; j <= t; j++) {
          p[po + j] = Math.exp(p[po + j] - max);
          sum += p[po + j];
        }
        const inv = pInv[bh * T + t] = 1 / sum;
        for (let d = 0; d < hs; d++) {
          let o = 0;
          for (let j = 0; j <= t; j++) o += p[po + j] * v[(b * T + j) * kvDim + kc + d];
          ao[qo + d] = o * inv;
        }
      }
    }
  }
}

/**
 * The definition of TrainKernels.attentionBackward. With P = pInv·E and dO' = pInv·dO: dV_j += E_j dO'_t,
 * dP'_j = dO'_t·v_j, dS_j = E_j (dP'_j − pInv Σ_k E_k dP'_k) (the softmax backward), dK_j += dS_j q_t/√hs,
 * dQ_t = Σ_j dS_j k_j/√hs.
 */
export function attentionBackwardRef(
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  dao: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  p: Float32Array,
  pInv: Float32Array,
  B: number,
  T: number,
  nHeads: number,
  nKvHeads: number,
  hs: number,
): void {
  const dim = nHeads * hs, kvDim = nKvHeads * hs, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hs);
  // f64 accumulators: each output sums up to T·group terms
  const gq = new Float64Array(B * T * dim), gk = new Float64Array(B * T * kvDim), gv = new Float64Array(B * T * kvDim);
  const dp = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHeads; h++) {
      const kc = Math.floor(h / group) * hs, bh = b * nHeads + h;
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * dim + h * hs, po = (bh * T + t) * T, inv = pInv[bh * T + t];
        let dot = 0;
        for (let j = 0; j <= t; j++) {
          const vo = (b * T + j) * kvDim + kc;
          let s = 0;
          for (let d = 0; d < hs; d++) s += dao[qo + d] * inv * v[vo + d];
          dp[j] = s;
          dot += p[po + j] * s;
        }
        dot *= inv;
        for (let j = 0; j <= t; j++) {
          const o = (b * T + j) * kvDim + kc, e = p[po + j], ds = e * (dp[j] - dot);
          for (let d = 0; d < hs; d++) {
            gv[o + d] += e * dao[qo + d] * inv;
            gk[o + d] += ds * q[qo + d] * scale;
            gq[qo + d] += ds * k[o + d] * scale;
          }
        }
      }
    }
  }
  dq.set(gq);
  dk.set(gk);
  dv.set(gv);
}

/** The definition of TrainKernels.crossEntropyForward: log-sum-exp after subtracting the row max, f64 sums. */
export function crossEntropyForwardRef(
  logits: Float32Array,
  invSum: Float32Array,
  targets: Int32Array,
  m: number,
  V: number,
): number {
  let total = 0;
  for (let i = 0; i < m; i++) {
    const o = i * V;
    let max = -Infinity;
    for (let j = o; j < o + V; j++) if (logits[j] > max) max = logits[j];
    const target = logits[o + targets[i]];
    let sum = 0;
    for (let j = o; j < o + V; j++) {
      const e = Math.exp(logits[j] - max);
      logits[j] = e;
      sum += e;
    }
    invSum[i] = 1 / sum;
    total += Math.log(sum) + max - target;
  }
  return total / m;
}

/** The definition of TrainKernels.crossEntropyBackward. */
export function crossEntropyBackwardRef(
  expLogits: Float32Array,
  invSum: Float32Array,
  targets: Int32Array,
  m: number,
  V: number,
  scale: number,
): void {
  for (let i = 0; i < m; i++) {
    const o = i * V;
    const f = scale * invSum[i];
    for (let j = o; j < o + V; j++) expLogits[j] *= f;
    expLogits[o + targets[i]] -= scale;
  }
}

/** The definition of TrainKernels.rmsNormForward. */
export function rmsNormForwardRef(
  y: Float32Array,
  r: Float32Array,
  x: Float32Array,
  w: Float32Array,
  n: number,
  dim: number,
  eps: number,
): void {
  for (let row = 0; row < n; row++) {
    const o = row * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / dim + eps);
    r[row] = inv;
    for (let i = 0; i < dim; i++) y[o + i] = w[i] * (x[o + i] * inv);
  }
}

/** The definition of TrainKernels.rmsNormBackward. */
export function rmsNormBackwardRef(
  dx: Float32Array,
  dw: Float32Array | undefined,
  dy: Float32Array,
  x: Float32Array,
  r: Float32Array,
  w: Float32Array,
  n: number,
  dim: number,
): void {
  for (let row = 0; row < n; row++) {
    const o = row * dim;
    const inv = r[row];
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += w[i] * dy[o + i] * x[o + i];
    const c = (dot * inv * inv * inv) / dim;
    for (let i = 0; i < dim; i++) dx[o + i] += inv * w[i] * dy[o + i] - x[o + i] * c;
    if (dw) { for (let i = 0; i < dim; i++) dw[i] += dy[o + i] * x[o + i] * inv; }
  }
}

/** The definition of TrainKernels.swigluForward. */
export function swigluForwardRef(
  g: Float32Array,
  sg: Float32Array,
  act: Float32Array,
  u: Float32Array,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const si = 1 / (1 + Math.exp(-gi));
    const silu = gi * si;
    sg[i] = si;
    g[i] = silu; // g now holds silu(g): backward needs σ(g) and silu(g), not g
    act[i] = silu * u[i];
  }
}

/** The definition of TrainKernels.swigluBackward: silu'(g) = σ(g)(1 + g(1 − σ(g))) = σ + silu·(1 − σ). */
export function swigluBackwardRef(
  dg: Float32Array,
  du: Float32Array,
  dact: Float32Array,
  silu: Float32Array,
  sg: Float32Array,
  u: Float32Array,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const d = dact[i], si = sg[i], s = silu[i];
    du[i] = d * s;
    dg[i] = d * u[i] * (si + s * (1 - si));
  }
}
