/**
 * Training kernels: the f32 matrix products of a training step (forward, input gradient, weight gradient) and the
 * frozen-base products over quantized GGUF rows, on typed arrays. `scalarTrainKernels` is the definition (…Ref);
 * the WASM SIMD implementation (src/kernels/train_wasm.ts) must agree with it (tests/kernels/train_*_test.ts).
 * All matrices are row-major: X (rows, nIn), W (nOut, nIn) as in nn.Linear, Y (rows, nOut).
 * see: PyTorch nn.Linear (y = x Wᵀ), its autograd (dX = dY W, dW = dYᵀ X).
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
};
