/**
 * Scalar TypeScript references for every kernel: the definitions the WASM kernels are tested against.
 * Matrices are row-major (nRows, nCols); a matvec computes y[r] = W[r,:] · x for r in [rowStart, rowEnd).
 * Quantized weights multiply x quantized to Q8_0 (llama.cpp's CPU path): per block, the exact integer dot of the
 * quants times d_w * d_x (fp16 scales), summed in f64 here (the WASM kernels sum in f32 and are checked within a
 * tolerance).
 * see: ggml-cpu `ggml_vec_dot_q4_0_q8_0`, `ggml_vec_dot_q8_0_q8_0`, llama2.c `run.c` (rmsnorm, softmax, RoPE, attention)
 */
import { f16ToF32Ref } from "../core/f16.ts";
import { BLOCK_Q4_0_BYTES, QK4_0 } from "../quant/q4_0.ts";
import { BLOCK_Q8_0_BYTES, QK8_0, quantizeRowQ8_0Ref } from "../quant/q8_0.ts";

const fround = Math.fround;

/** Row range of a matrix product: [rowStart, rowEnd), both within [0, nRows]. */
export interface RowRange {
  rowStart?: number;
  rowEnd?: number;
}

/** Attention shape for one query position: GQA maps head h to KV head floor(h / (nHeads / nKvHeads)). */
export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headSize: number;
  /** Number of cached positions to attend over (positions 0..nPos-1, the query's own included). */
  nPos: number;
  /** Score scale; default 1 / sqrt(headSize). */
  scale?: number;
}

/** Throws RangeError when a dimension is not a positive integer. */
export function checkDim(what: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new RangeError(`Cannot ${what}: ${name} must be a positive integer, got ${v}`);
  }
}

/** Resolves and checks a row range against nRows. */
export function resolveRows(what: string, nRows: number, r: RowRange = {}): [number, number] {
  const rowStart = r.rowStart ?? 0;
  const rowEnd = r.rowEnd ?? nRows;
  if (!Number.isInteger(rowStart) || !Number.isInteger(rowEnd) || rowStart < 0 || rowEnd > nRows || rowStart > rowEnd) {
    throw new RangeError(`Cannot ${what}: row range [${rowStart}, ${rowEnd}) is outside [0, ${nRows})`);
  }
  return [rowStart, rowEnd];
}

/** Throws RangeError unless `arr` has exactly `n` elements. */
export function checkLength(what: string, name: string, arr: { length: number }, n: number): void {
  if (arr.length !== n) throw new RangeError(`Cannot ${what}: ${name} has ${arr.length} elements, expected ${n}`);
}

/** Checks a quantized matmul's shapes and lengths (w: nRows rows of nCols/qk blocks); returns the row bytes. */
export function checkQuantMatmul(
  what: string,
  qk: number,
  blockBytes: number,
  w: Uint8Array,
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  batch: number,
): number {
  checkDim(what, "nRows", nRows);
  checkDim(what, "nCols", nCols);
  checkDim(what, "batch", batch);
  if (nCols % qk !== 0) throw new RangeError(`Cannot ${what}: nCols ${nCols} is not a multiple of ${qk}`);
  const rowBytes = (nCols / qk) * blockBytes;
  checkLength(what, "weight bytes", w, nRows * rowBytes);
  checkLength(what, "x", x, batch * nCols);
  checkLength(what, "y", y, batch * nRows);
  return rowBytes;
}

// ---------------------------------------------------------------------------------------------------------------
// Q4_0 × Q8_0

/** Dot of one Q4_0 row (at byte `wo` of `w`) with a Q8_0-quantized activation row, f64 sum of f32 block terms. */
function dotQ4_0Q8_0(w: Uint8Array, wo: number, xq: Uint8Array, nb: number): number {
  let sum = 0;
  for (let b = 0; b < nb; b++) {
    const o = wo + b * BLOCK_Q4_0_BYTES;
    const xo = b * BLOCK_Q8_0_BYTES;
    let sumi = 0;
    for (let j = 0; j < QK4_0 / 2; j++) {
      const q = w[o + 2 + j];
      sumi += ((q & 0x0f) - 8) * ((xq[xo + 2 + j] << 24) >> 24);
      sumi += ((q >>> 4) - 8) * ((xq[xo + 2 + j + 16] << 24) >> 24);
    }
    const dw = f16ToF32Ref(w[o] | (w[o + 1] << 8));
    const dx = f16ToF32Ref(xq[xo] | (xq[xo + 1] << 8));
    sum += fround(fround(sumi * dw) * dx);
  }
  return sum;
}

/**
 * W (nRows, nCols) Q4_0 @ x (batch, nCols) -> y (batch, nRows), rows [rowStart, rowEnd) only; x rows are quantized
 * to Q8_0 first. `w` holds nRows rows of nCols/32 standard 18-byte blocks.
 */
export function matmulQ4_0Ref(
  w: Uint8Array,
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  batch: number,
  range: RowRange = {},
): void {
  const what = "multiply Q4_0 matrix";
  const rowBytes = checkQuantMatmul(what, QK4_0, BLOCK_Q4_0_BYTES, w, x, y, nRows, nCols, batch);
  const [r0, r1] = resolveRows(what, nRows, range);
  const nb = nCols / QK4_0;
  const xq = new Uint8Array(nb * BLOCK_Q8_0_BYTES);
  for (let t = 0; t < batch; t++) {
    quantizeRowQ8_0Ref(x.subarray(t * nCols, (t + 1) * nCols), xq);
    for (let r = r0; r < r1; r++) y[t * nRows + r] = dotQ4_0Q8_0(w, r * rowBytes, xq, nb);
  }
}

/** W (nRows, nCols) Q4_0 @ x (nCols,) -> y (nRows,), rows [rowStart, rowEnd). */
export function matvecQ4_0Ref(
  w: Uint8Array,
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  range: RowRange = {},
): void {
  matmulQ4_0Ref(w, x, y, nRows, nCols, 1, range);
}

// ---------------------------------------------------------------------------------------------------------------
// Q8_0 × Q8_0

function dotQ8_0Q8_0(w: Uint8Array, wo: number, xq: Uint8Array, nb: number): number {
  let sum = 0;
  for (let b = 0; b < nb; b++) {
    const o = wo + b * BLOCK_Q8_0_BYTES;
    const xo = b * BLOCK_Q8_0_BYTES;
    let sumi = 0;
    for (let j = 0; j < QK8_0; j++) sumi += ((w[o + 2 + j] << 24) >> 24) * ((xq[xo + 2 + j] << 24) >> 24);
    const dw = f16ToF32Ref(w[o] | (w[o + 1] << 8));
    const dx = f16ToF32Ref(xq[xo] | (xq[xo + 1] << 8));
    sum += fround(fround(sumi * dw) * dx);
  }
  return sum;
}

/** W (nRows, nCols) Q8_0 @ x (batch, nCols) -> y (batch, nRows), x quantized to Q8_0; rows [rowStart, rowEnd). */
export function matmulQ8_0Ref(
  w: Uint8Array,
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  batch: number,
  range: RowRange = {},
): void {
  const what = "multiply Q8_0 matrix";
  const rowBytes = checkQuantMatmul(what, QK8_0, BLOCK_Q8_0_BYTES, w, x, y, nRows, nCols, batch);
  const [r0, r1] = resolveRows(what, nRows, range);
  const nb = nCols / QK8_0;
  const xq = new Uint8Array(nb * BLOCK_Q8_0_BYTES);
  for (let t = 0; t < batch; t++) {
    quantizeRowQ8_0Ref(x.subarray(t * nCols, (t + 1) * nCols), xq);
    for (let r = r0; r < r1; r++) y[t * nRows + r] = dotQ8_0Q8_0(w, r * rowBytes, xq, nb);
  }
}

/** W (nRows, nCols) Q8_0 @ x (nCols,) -> y (nRows,), rows [rowStart, rowEnd). */
export function matvecQ8_0Ref(
  w: Uint8Array,
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  range: RowRange = {},
): void {
  matmulQ8_0Ref(w, x, y, nRows, nCols, 1, range);
}

// ---------------------------------------------------------------------------------------------------------------
// F16 / F32 weights (x stays f32; llama.cpp rounds x to f16 for F16 weights, we do not)

/** Checks a float matmul's shapes and lengths: w (nRows, nCols), x (batch, nCols), y (batch, nRows). */
export function checkFloatMatmul(
  what: string,
  w: { length: number },
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  batch: number,
): void {
  checkDim(what, "nRows", nRows);
  checkDim(what, "nCols", nCols);
  checkDim(what, "batch", batch);
  checkLength(what, "w", w, nRows * nCols);
  checkLength(what, "x", x, batch * nCols);
  checkLength(what, "y", y, batch * nRows);
}

/** W (nRows, nCols) F16 bits @ x (batch, nCols) -> y (batch, nRows), f64 sums; rows [rowStart, rowEnd). */
export function matmulF16Ref(
  w: Uint16Array,
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  batch: number,
  range: RowRange = {},
): void {
  const what = "multiply F16 matrix";
  checkFloatMatmul(what, w, x, y, nRows, nCols, batch);
  const [r0, r1] = resolveRows(what, nRows, range);
  for (let t = 0; t < batch; t++) {
    for (let r = r0; r < r1; r++) {
      let s = 0;
      for (let j = 0; j < nCols; j++) s += f16ToF32Ref(w[r * nCols + j]) * x[t * nCols + j];
      y[t * nRows + r] = s;
    }
  }
}

/** W (nRows, nCols) F16 @ x (nCols,) -> y (nRows,). */
export function matvecF16Ref(
  w: Uint16Array,
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  range: RowRange = {},
): void {
  matmulF16Ref(w, x, y, nRows, nCols, 1, range);
}

/** W (nRows, nCols) F32 @ x (batch, nCols) -> y (batch, nRows), f64 sums; rows [rowStart, rowEnd). */
export function matmulF32Ref(
  w: Float32Array,
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  batch: number,
  range: RowRange = {},
): void {
  const what = "multiply F32 matrix";
  checkFloatMatmul(what, w, x, y, nRows, nCols, batch);
  const [r0, r1] = resolveRows(what, nRows, range);
  for (let t = 0; t < batch; t++) {
    for (let r = r0; r < r1; r++) {
      let s = 0;
      for (let j = 0; j < nCols; j++) s += w[r * nCols + j] * x[t * nCols + j];
      y[t * nRows + r] = s;
    }
  }
}

/** W (nRows, nCols) F32 @ x (nCols,) -> y (nRows,). */
export function matvecF32Ref(
  w: Float32Array,
  x: Float32Array,
  y: Float32Array,
  nRows: number,
  nCols: number,
  range: RowRange = {},
): void {
  matmulF32Ref(w, x, y, nRows, nCols, 1, range);
}

// ---------------------------------------------------------------------------------------------------------------
// Per-token kernels

/** out = x / sqrt(mean(x²) + eps) * weight, all (n,); out may alias x. */
export function rmsNormRef(x: Float32Array, weight: Float32Array, out: Float32Array, eps: number): void {
  checkDim("apply RMSNorm", "n", x.length);
  checkLength("apply RMSNorm", "weight", weight, x.length);
  checkLength("apply RMSNorm", "out", out, x.length);
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * inv * weight[i];
}

/** In-place softmax of x (n,): subtracting the max first keeps exp() from overflowing. */
export function softmaxRef(x: Float32Array): void {
  checkDim("apply softmax", "n", x.length);
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  const e = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) sum += e[i] = Math.exp(x[i] - max);
  for (let i = 0; i < x.length; i++) x[i] = e[i] / sum;
}

/**
 * In-place RoPE, LLaMA "normal" mode (adjacent pairs, as GGUF stores q/k): x (nHeads, headSize); within each head
 * pair (2i, 2i+1) rotates by angle pos * theta^(-2i/headSize).
 */
export function ropeRef(x: Float32Array, nHeads: number, headSize: number, pos: number, theta: number): void {
  const what = "apply RoPE";
  checkDim(what, "nHeads", nHeads);
  checkDim(what, "headSize", headSize);
  if (headSize % 2 !== 0) throw new RangeError(`Cannot ${what}: headSize ${headSize} is odd`);
  if (!Number.isInteger(pos) || pos < 0) {
    throw new RangeError(`Cannot ${what}: pos ${pos} is not a non-negative integer`);
  }
  if (!(theta > 0)) throw new RangeError(`Cannot ${what}: theta ${theta} is not positive`);
  checkLength(what, "x", x, nHeads * headSize);
  for (let i = 0; i < headSize / 2; i++) {
    const angle = pos * Math.pow(theta, (-2 * i) / headSize);
    const c = Math.cos(angle), s = Math.sin(angle);
    for (let h = 0; h < nHeads; h++) {
      const o = h * headSize + 2 * i;
      const x0 = x[o], x1 = x[o + 1];
      x[o] = x0 * c - x1 * s;
      x[o + 1] = x0 * s + x1 * c;
    }
  }
}

/** SwiGLU gate: out = silu(gate) * up = gate / (1 + exp(-gate)) * up, all (n,); out may alias gate or up. */
export function siluGateRef(gate: Float32Array, up: Float32Array, out: Float32Array): void {
  checkDim("apply SiLU gate", "n", gate.length);
  checkLength("apply SiLU gate", "up", up, gate.length);
  checkLength("apply SiLU gate", "out", out, gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
}

/** Checks an attention call's shapes; returns [kvDim, groupSize, scale]. */
export function checkAttention(
  q: Float32Array,
  k: { length: number },
  v: { length: number },
  out: Float32Array,
  s: AttentionShape,
): [number, number, number] {
  const what = "compute attention";
  checkDim(what, "nHeads", s.nHeads);
  checkDim(what, "nKvHeads", s.nKvHeads);
  checkDim(what, "headSize", s.headSize);
  checkDim(what, "nPos", s.nPos);
  if (s.nHeads % s.nKvHeads !== 0) {
    throw new RangeError(`Cannot ${what}: nHeads ${s.nHeads} is not a multiple of nKvHeads ${s.nKvHeads}`);
  }
  const kvDim = s.nKvHeads * s.headSize;
  checkLength(what, "q", q, s.nHeads * s.headSize);
  checkLength(what, "out", out, s.nHeads * s.headSize);
  if (k.length < s.nPos * kvDim) {
    throw new RangeError(`Cannot ${what}: K cache has ${k.length} elements, needs ${s.nPos * kvDim}`);
  }
  if (v.length < s.nPos * kvDim) {
    throw new RangeError(`Cannot ${what}: V cache has ${v.length} elements, needs ${s.nPos * kvDim}`);
  }
  return [kvDim, s.nHeads / s.nKvHeads, s.scale ?? 1 / Math.sqrt(s.headSize)];
}

/**
 * Attention for one query position: q (nHeads, headSize); K, V caches (nPos, nKvHeads, headSize) as f32 or f16 bits;
 * out (nHeads, headSize) = softmax(q_h · K[:, g(h)] * scale) @ V[:, g(h)], g(h) = floor(h / (nHeads / nKvHeads)).
 */
export function attentionRef(
  q: Float32Array,
  k: Float32Array | Uint16Array,
  v: Float32Array | Uint16Array,
  out: Float32Array,
  shape: AttentionShape,
): void {
  const [kvDim, group, scale] = checkAttention(q, k, v, out, shape);
  const { nHeads, headSize, nPos } = shape;
  const kf = k instanceof Uint16Array ? (i: number) => f16ToF32Ref(k[i]) : (i: number) => k[i];
  const vf = v instanceof Uint16Array ? (i: number) => f16ToF32Ref(v[i]) : (i: number) => v[i];
  const att = new Float32Array(nPos);
  for (let h = 0; h < nHeads; h++) {
    const kvo = Math.floor(h / group) * headSize;
    for (let t = 0; t < nPos; t++) {
      let s = 0;
      for (let i = 0; i < headSize; i++) s += q[h * headSize + i] * kf(t * kvDim + kvo + i);
      att[t] = s * scale;
    }
    softmaxRef(att);
    for (let i = 0; i < headSize; i++) {
      let s = 0;
      for (let t = 0; t < nPos; t++) s += att[t] * vf(t * kvDim + kvo + i);
      out[h * headSize + i] = s;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Q4_0 repacking (the layout the fast WASM matvec reads; see wasm/README.md)

/** Rows interleaved per group in the repacked Q4_0 layout. */
export const Q4_0R_ROWS = 8;
/** Bytes of one group-block: 8 f32 scales + 8 rows × 16 nibble bytes. */
export const Q4_0R_GROUP_BLOCK_BYTES = 32 + 128;

/** Bytes of a repacked Q4_0 matrix (nRows rounded up to a multiple of 8; padding rows are zero). */
export function repackedQ4_0Bytes(nRows: number, nCols: number): number {
  return Math.ceil(nRows / Q4_0R_ROWS) * (nCols / QK4_0) * Q4_0R_GROUP_BLOCK_BYTES;
}

/**
 * Repacks standard Q4_0 rows (nRows, nCols) into the interleaved layout of wasm/README.md: for each group of 8 rows
 * and each block b, 8 f32 scales (row order), then for k in 0..3 and half h in 0..1 (the two halves' vectors
 * adjacent, so a kernel can load both as one 32-byte pair) a 16-byte vector holding bytes 4k..4k+3 of rows
 * 4h..4h+3 (row-major within the vector). Padding rows have d = 0 and nibbles 0.
 */
export function repackQ4_0Ref(src: Uint8Array, dst: Uint8Array, nRows: number, nCols: number): void {
  const what = "repack Q4_0 matrix";
  checkDim(what, "nRows", nRows);
  checkDim(what, "nCols", nCols);
  if (nCols % QK4_0 !== 0) throw new RangeError(`Cannot ${what}: nCols ${nCols} is not a multiple of ${QK4_0}`);
  const nb = nCols / QK4_0;
  checkLength(what, "src", src, nRows * nb * BLOCK_Q4_0_BYTES);
  checkLength(what, "dst", dst, repackedQ4_0Bytes(nRows, nCols));
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  dst.fill(0);
  for (let r = 0; r < nRows; r++) {
    const g = Math.floor(r / Q4_0R_ROWS), i = r % Q4_0R_ROWS;
    const h = i >> 2, ri = i & 3;
    for (let b = 0; b < nb; b++) {
      const so = (r * nb + b) * BLOCK_Q4_0_BYTES;
      const go = (g * nb + b) * Q4_0R_GROUP_BLOCK_BYTES;
      dv.setFloat32(go + 4 * i, f16ToF32Ref(src[so] | (src[so + 1] << 8)), true);
      for (let k = 0; k < 4; k++) {
        for (let t = 0; t < 4; t++) dst[go + 32 + k * 32 + h * 16 + ri * 4 + t] = src[so + 2 + 4 * k + t];
      }
    }
  }
}

/** Rows per group of the repacked Q8_0 layout (Q8_0R). */
export const Q8_0R_ROWS = 4;
/** Bytes of one group-block: 4 f32 scales + 4 rows × 32 quant bytes. */
export const Q8_0R_GROUP_BLOCK_BYTES = 16 + 128;

/** Bytes of a repacked Q8_0 matrix (nRows rounded up to a multiple of 4; padding rows are zero). */
export function repackedQ8_0Bytes(nRows: number, nCols: number): number {
  return Math.ceil(nRows / Q8_0R_ROWS) * (nCols / QK8_0) * Q8_0R_GROUP_BLOCK_BYTES;
}

/**
 * Repacks standard Q8_0 rows (nRows, nCols) into the layout of wasm/README.md: for each group of 4 rows and each
 * block b, 4 f32 scales (row order), then for k in 0..7 a 16-byte vector holding elements 4k..4k+3 of rows 0..3
 * (row-major within the vector), each quant q stored as the byte q + 128 (its two nibbles unsigned). Padding rows
 * have d = 0 and zero bytes.
 */
export function repackQ8_0Ref(src: Uint8Array, dst: Uint8Array, nRows: number, nCols: number): void {
  const what = "repack Q8_0 matrix";
  checkDim(what, "nRows", nRows);
  checkDim(what, "nCols", nCols);
  if (nCols % QK8_0 !== 0) throw new RangeError(`Cannot ${what}: nCols ${nCols} is not a multiple of ${QK8_0}`);
  const nb = nCols / QK8_0;
  checkLength(what, "src", src, nRows * nb * BLOCK_Q8_0_BYTES);
  checkLength(what, "dst", dst, repackedQ8_0Bytes(nRows, nCols));
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  dst.fill(0);
  for (let r = 0; r < nRows; r++) {
    const g = Math.floor(r / Q8_0R_ROWS), i = r % Q8_0R_ROWS;
    for (let b = 0; b < nb; b++) {
      const so = (r * nb + b) * BLOCK_Q8_0_BYTES;
      const go = (g * nb + b) * Q8_0R_GROUP_BLOCK_BYTES;
      dv.setFloat32(go + 4 * i, f16ToF32Ref(src[so] | (src[so + 1] << 8)), true);
      for (let j = 0; j < QK8_0; j++) {
        const k = j >> 2, t = j & 3;
        dst[go + 16 + k * 16 + i * 4 + t] = (((src[so + 2 + j] << 24) >> 24) + 128) & 0xff;
      }
    }
  }
}
