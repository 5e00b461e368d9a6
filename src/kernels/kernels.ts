/**
 * The one `Kernels` interface: typed-array signatures that the scalar references (`scalarKernels`) and the WASM
 * module (`WasmKernels`, src/kernels/wasm.ts) both satisfy, so tests can run either against the other.
 * The engine's hot path uses the WASM pointer API (`WasmKernels.ptr`, `.raw`) instead; see wasm/README.md.
 */
import { bf16ArrayToF32Ref, f16ArrayToF32Ref, f32ArrayToF16Ref } from "../core/f16.ts";
import { dequantizeRowQ4_0Ref, quantizeRowQ4_0Ref } from "../quant/q4_0.ts";
import { dequantizeRowQ8_0Ref, quantizeRowQ8_0Ref } from "../quant/q8_0.ts";
import {
  attentionRef,
  type AttentionShape,
  matmulF16Ref,
  matmulF32Ref,
  matmulQ4_0Ref,
  matmulQ8_0Ref,
  matvecF16Ref,
  matvecF32Ref,
  matvecQ4_0Ref,
  matvecQ8_0Ref,
  rmsNormRef,
  ropeRef,
  type RowRange,
  siluGateRef,
  softmaxRef,
} from "./scalar.ts";

export type { AttentionShape, RowRange };

/** Every kernel, on typed arrays. Matrices row-major (nRows, nCols); quantized weights are standard GGUF rows. */
export interface Kernels {
  readonly name: string;
  quantizeRowQ4_0(x: Float32Array, out: Uint8Array): void;
  dequantizeRowQ4_0(blocks: Uint8Array, out: Float32Array): void;
  quantizeRowQ8_0(x: Float32Array, out: Uint8Array): void;
  dequantizeRowQ8_0(blocks: Uint8Array, out: Float32Array): void;
  f16ToF32(src: Uint16Array, dst: Float32Array): void;
  f32ToF16(src: Float32Array, dst: Uint16Array): void;
  bf16ToF32(src: Uint16Array, dst: Float32Array): void;
  /** W (nRows, nCols) Q4_0 @ x (nCols,) -> y (nRows,), x quantized to Q8_0; writes y[rowStart..rowEnd). */
  matvecQ4_0(w: Uint8Array, x: Float32Array, y: Float32Array, nRows: number, nCols: number, range?: RowRange): void;
  /** W (nRows, nCols) Q4_0 @ x (batch, nCols) -> y (batch, nRows). */
  matmulQ4_0(
    w: Uint8Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range?: RowRange,
  ): void;
  matvecQ8_0(w: Uint8Array, x: Float32Array, y: Float32Array, nRows: number, nCols: number, range?: RowRange): void;
  matmulQ8_0(
    w: Uint8Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range?: RowRange,
  ): void;
  matvecF16(w: Uint16Array, x: Float32Array, y: Float32Array, nRows: number, nCols: number, range?: RowRange): void;
  matmulF16(
    w: Uint16Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range?: RowRange,
  ): void;
  matvecF32(w: Float32Array, x: Float32Array, y: Float32Array, nRows: number, nCols: number, range?: RowRange): void;
  matmulF32(
    w: Float32Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range?: RowRange,
  ): void;
  rmsNorm(x: Float32Array, weight: Float32Array, out: Float32Array, eps: number): void;
  softmax(x: Float32Array): void;
  rope(x: Float32Array, nHeads: number, headSize: number, pos: number, theta: number): void;
  siluGate(gate: Float32Array, up: Float32Array, out: Float32Array): void;
  attention(
    q: Float32Array,
    k: Float32Array | Uint16Array,
    v: Float32Array | Uint16Array,
    out: Float32Array,
    shape: AttentionShape,
  ): void;
}

function checkSameLength(what: string, a: { length: number }, b: { length: number }): void {
  if (a.length !== b.length) throw new RangeError(`Cannot ${what}: ${a.length} inputs for ${b.length} outputs`);
}

/** The scalar references behind the Kernels interface. */
export const scalarKernels: Kernels = {
  name: "scalar",
  quantizeRowQ4_0: quantizeRowQ4_0Ref,
  dequantizeRowQ4_0: dequantizeRowQ4_0Ref,
  quantizeRowQ8_0: quantizeRowQ8_0Ref,
  dequantizeRowQ8_0: dequantizeRowQ8_0Ref,
  f16ToF32(src, dst) {
    checkSameLength("convert f16 to f32", src, dst);
    f16ArrayToF32Ref(src, dst);
  },
  f32ToF16(src, dst) {
    checkSameLength("convert f32 to f16", src, dst);
    f32ArrayToF16Ref(src, dst);
  },
  bf16ToF32(src, dst) {
    checkSameLength("convert bf16 to f32", src, dst);
    bf16ArrayToF32Ref(src, dst);
  },
  matvecQ4_0: matvecQ4_0Ref,
  matmulQ4_0: matmulQ4_0Ref,
  matvecQ8_0: matvecQ8_0Ref,
  matmulQ8_0: matmulQ8_0Ref,
  matvecF16: matvecF16Ref,
  matmulF16: matmulF16Ref,
  matvecF32: matvecF32Ref,
  matmulF32: matmulF32Ref,
  rmsNorm: rmsNormRef,
  softmax: softmaxRef,
  rope: ropeRef,
  siluGate: siluGateRef,
  attention: attentionRef,
};
