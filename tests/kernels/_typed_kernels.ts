/**
 * Test and bench helpers over the WASM module: checked pointer wrappers (`WasmPtrKernels`: every argument validated,
 * RangeError before the export runs) and a typed-array API (`TypedKernels`: copies in and out) that the scalar
 * references (`scalarKernels`) and the module (`TypedWasmKernels`) both satisfy, so a test can run either against
 * the other. Not library code: the engine uses src/kernels' pointer-level `Kernels`.
 */
import { bf16ArrayToF32Ref, f16ArrayToF32Ref, f32ArrayToF16Ref } from "../../src/core/f16.ts";
import {
  BLOCK_Q4_0_BYTES,
  checkQuantShape,
  dequantizeRowQ4_0Ref,
  QK4_0,
  quantizeRowQ4_0Ref,
} from "../../src/quant/q4_0.ts";
import { BLOCK_Q8_0_BYTES, dequantizeRowQ8_0Ref, quantizeRowQ8_0Ref } from "../../src/quant/q8_0.ts";
import {
  attentionRef,
  type AttentionShape,
  checkAttention,
  checkDim,
  checkFloatMatmul,
  checkLength,
  checkQuantMatmul,
  matmulF16Ref,
  matmulF32Ref,
  matmulQ4_0Ref,
  matmulQ8_0Ref,
  matvecF16Ref,
  matvecF32Ref,
  matvecQ4_0Ref,
  matvecQ8_0Ref,
  Q4_0R_ROWS,
  Q8_0R_ROWS,
  repackedQ4_0Bytes,
  repackedQ8_0Bytes,
  resolveRows,
  rmsNormRef,
  ropeRef,
  type RowRange,
  siluGateRef,
  softmaxRef,
} from "../../src/kernels/scalar.ts";
import {
  type Arena,
  instantiateWasmKernels,
  type KernelExports,
  type LoadKernelsOptions,
  loadWasmKernels,
  q4_0RScratchBytes,
  q8_0RScratchBytes,
  q8ABytes,
  q8AStride,
  type WasmKernels,
} from "../../src/kernels/wasm.ts";

export type { AttentionShape, RowRange };

/** Loads the module and wraps it in the checked and typed APIs. */
export async function loadTypedWasmKernels(options: LoadKernelsOptions = {}): Promise<TypedWasmKernels> {
  return new TypedWasmKernels(await loadWasmKernels(options));
}

/** Instantiates a compiled module synchronously, wrapped in the checked and typed APIs. */
export function instantiateTypedWasmKernels(module: WebAssembly.Module, options: LoadKernelsOptions = {}) {
  return new TypedWasmKernels(instantiateWasmKernels(module, options));
}

/** Every kernel, on typed arrays. Matrices row-major (nRows, nCols); quantized weights are standard GGUF rows. */
export interface TypedKernels {
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
export const scalarKernels: TypedKernels = {
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

/** Checked pointer-level kernels: every argument validated (RangeError) before the export runs. */
export class WasmPtrKernels {
  readonly #raw: KernelExports;
  readonly #memory: WebAssembly.Memory;
  readonly #base: number;

  constructor(raw: KernelExports, memory: WebAssembly.Memory, base: number) {
    this.#raw = raw;
    this.#memory = memory;
    this.#base = base;
  }

  #ptr(what: string, name: string, ptr: number, nBytes: number, align: number): void {
    if (!Number.isInteger(ptr)) throw new RangeError(`Cannot ${what}: ${name} pointer ${ptr} is not an integer`);
    if (ptr % align !== 0) throw new RangeError(`Cannot ${what}: ${name} pointer ${ptr} is not ${align}-byte aligned`);
    const size = this.#memory.buffer.byteLength;
    if (ptr < this.#base || ptr + nBytes > size) {
      throw new RangeError(
        `Cannot ${what}: ${name} [${ptr}, ${ptr + nBytes}) is out of bounds (heap is [${this.#base}, ${size}))`,
      );
    }
  }

  #noOverlap(what: string, a: string, ap: number, an: number, b: string, bp: number, bn: number): void {
    if (ap < bp + bn && bp < ap + an) throw new RangeError(`Cannot ${what}: ${a} overlaps ${b}`);
  }

  #cols32(what: string, nCols: number): void {
    checkDim(what, "nCols", nCols);
    if (nCols % QK4_0 !== 0) throw new RangeError(`Cannot ${what}: length ${nCols} is not a multiple of 32`);
  }

  #rows(what: string, nRows: number, rowStart: number, rowEnd: number): void {
    checkDim(what, "nRows", nRows);
    resolveRows(what, nRows, { rowStart, rowEnd });
  }

  f16ToF32(src: number, dst: number, n: number): void {
    const what = "convert f16 to f32";
    checkDim(what, "n", n);
    this.#ptr(what, "src", src, 2 * n, 2);
    this.#ptr(what, "dst", dst, 4 * n, 4);
    this.#noOverlap(what, "src", src, 2 * n, "dst", dst, 4 * n);
    this.#raw.f16ToF32Array(src, dst, n);
  }

  f32ToF16(src: number, dst: number, n: number): void {
    const what = "convert f32 to f16";
    checkDim(what, "n", n);
    this.#ptr(what, "src", src, 4 * n, 4);
    this.#ptr(what, "dst", dst, 2 * n, 2);
    this.#noOverlap(what, "src", src, 4 * n, "dst", dst, 2 * n);
    this.#raw.f32ToF16Array(src, dst, n);
  }

  bf16ToF32(src: number, dst: number, n: number): void {
    const what = "convert bf16 to f32";
    checkDim(what, "n", n);
    this.#ptr(what, "src", src, 2 * n, 2);
    this.#ptr(what, "dst", dst, 4 * n, 4);
    this.#noOverlap(what, "src", src, 2 * n, "dst", dst, 4 * n);
    this.#raw.bf16ToF32Array(src, dst, n);
  }

  /** n floats at x -> n/32 standard Q4_0 blocks at out (byte-identical to quantizeRowQ4_0Ref). */
  quantizeRowQ4_0(x: number, out: number, n: number): void {
    const what = "quantize Q4_0 row";
    this.#cols32(what, n);
    const nBytes = (n / QK4_0) * BLOCK_Q4_0_BYTES;
    this.#ptr(what, "x", x, 4 * n, 4);
    this.#ptr(what, "out", out, nBytes, 1);
    this.#noOverlap(what, "x", x, 4 * n, "out", out, nBytes);
    this.#raw.quantizeRowQ4_0(x, out, n);
  }

  /** n floats at x -> n/32 standard Q8_0 blocks at out (byte-identical to quantizeRowQ8_0Ref). */
  quantizeRowQ8_0(x: number, out: number, n: number): void {
    const what = "quantize Q8_0 row";
    this.#cols32(what, n);
    const nBytes = (n / QK4_0) * BLOCK_Q8_0_BYTES;
    this.#ptr(what, "x", x, 4 * n, 4);
    this.#ptr(what, "out", out, nBytes, 1);
    this.#noOverlap(what, "x", x, 4 * n, "out", out, nBytes);
    this.#raw.quantizeRowQ8_0(x, out, n);
  }

  /** n floats at x -> the Q8A activation layout at act (16-aligned, q8ABytes(n)). */
  quantizeQ8A(x: number, act: number, n: number): void {
    const what = "quantize activations";
    this.#cols32(what, n);
    this.#ptr(what, "x", x, 4 * n, 4);
    this.#ptr(what, "act", act, q8ABytes(n), 16);
    this.#noOverlap(what, "x", x, 4 * n, "act", act, q8ABytes(n));
    this.#raw.quantizeQ8A(x, act, n);
  }

  dequantizeRowQ4_0(src: number, dst: number, n: number): void {
    const what = "dequantize Q4_0 row";
    this.#cols32(what, n);
    const nBytes = (n / QK4_0) * BLOCK_Q4_0_BYTES;
    this.#ptr(what, "src", src, nBytes, 1);
    this.#ptr(what, "dst", dst, 4 * n, 4);
    this.#noOverlap(what, "src", src, nBytes, "dst", dst, 4 * n);
    this.#raw.dequantizeRowQ4_0(src, dst, n);
  }

  dequantizeRowQ8_0(src: number, dst: number, n: number): void {
    const what = "dequantize Q8_0 row";
    this.#cols32(what, n);
    const nBytes = (n / QK4_0) * BLOCK_Q8_0_BYTES;
    this.#ptr(what, "src", src, nBytes, 1);
    this.#ptr(what, "dst", dst, 4 * n, 4);
    this.#noOverlap(what, "src", src, nBytes, "dst", dst, 4 * n);
    this.#raw.dequantizeRowQ8_0(src, dst, n);
  }

  /** Standard Q4_0 rows at src -> the Q4_0R layout at dst (16-aligned, repackedQ4_0Bytes(nRows, nCols)). */
  repackQ4_0(src: number, dst: number, nRows: number, nCols: number): void {
    this.#checkRepack("repack Q4_0 matrix", BLOCK_Q4_0_BYTES, repackedQ4_0Bytes, src, dst, nRows, nCols);
    this.#raw.repackQ4_0(src, dst, nRows, nCols);
  }

  /** Standard Q8_0 rows at src -> the Q8_0R layout at dst (16-aligned, repackedQ8_0Bytes(nRows, nCols)). */
  repackQ8_0(src: number, dst: number, nRows: number, nCols: number): void {
    this.#checkRepack("repack Q8_0 matrix", BLOCK_Q8_0_BYTES, repackedQ8_0Bytes, src, dst, nRows, nCols);
    this.#raw.repackQ8_0(src, dst, nRows, nCols);
  }

  /** Checks a repack of standard rows (blockBytes per 32 values) at src into dstBytesOf(nRows, nCols) at dst. */
  #checkRepack(
    what: string,
    blockBytes: number,
    dstBytesOf: (nRows: number, nCols: number) => number,
    src: number,
    dst: number,
    nRows: number,
    nCols: number,
  ): void {
    this.#cols32(what, nCols);
    checkDim(what, "nRows", nRows);
    const srcBytes = nRows * (nCols / QK4_0) * blockBytes;
    const dstBytes = dstBytesOf(nRows, nCols);
    this.#ptr(what, "src", src, srcBytes, 1);
    this.#ptr(what, "dst", dst, dstBytes, 16);
    this.#noOverlap(what, "src", src, srcBytes, "dst", dst, dstBytes);
  }

  /**
   * Checks a repacked W (nRows, nCols; wBytesOf bytes, 16-aligned) @ acts (batch Q8A rows, actStride apart) -> y
   * (batch, nRows) for rows [rowStart, rowEnd), rowStart a multiple of groupRows; returns the acts and y extents.
   */
  #checkQ8AMatmul(
    what: string,
    wBytesOf: (nRows: number, nCols: number) => number,
    groupRows: number,
    w: number,
    acts: number,
    actStride: number,
    y: number,
    nRows: number,
    nCols: number,
    batch: number,
    rowStart: number,
    rowEnd: number,
  ): { aBytes: number; yBytes: number } {
    this.#cols32(what, nCols);
    checkDim(what, "batch", batch);
    this.#rows(what, nRows, rowStart, rowEnd);
    if (rowStart % groupRows !== 0) {
      throw new RangeError(`Cannot ${what}: rowStart ${rowStart} is not a multiple of ${groupRows}`);
    }
    if (actStride % 16 !== 0 || actStride < q8ABytes(nCols)) {
      throw new RangeError(
        `Cannot ${what}: activation stride ${actStride} is not a multiple of 16 >= ${q8ABytes(nCols)}`,
      );
    }
    const wBytes = wBytesOf(nRows, nCols);
    const aBytes = (batch - 1) * actStride + q8ABytes(nCols);
    const yBytes = 4 * batch * nRows;
    this.#ptr(what, "w", w, wBytes, 16);
    this.#ptr(what, "acts", acts, aBytes, 16);
    this.#ptr(what, "y", y, yBytes, 4);
    this.#noOverlap(what, "y", y, yBytes, "w", w, wBytes);
    this.#noOverlap(what, "y", y, yBytes, "acts", acts, aBytes);
    return { aBytes, yBytes };
  }

  /** W (nRows, nCols) Q8_0R @ act (Q8A of x) -> y[rowStart..rowEnd); rowStart must be a multiple of 4. */
  matvecQ8_0R(w: number, act: number, y: number, nRows: number, nCols: number, rowStart: number, rowEnd: number) {
    this.#checkQ8AMatmul(
      "multiply Q8_0 matrix",
      repackedQ8_0Bytes,
      Q8_0R_ROWS,
      w,
      act,
      q8AStride(nCols),
      y,
      nRows,
      nCols,
      1,
      rowStart,
      rowEnd,
    );
    this.#raw.matvecQ8_0R(w, act, y, nCols, rowStart, rowEnd);
  }

  /**
   * W (nRows, nCols) Q8_0R @ acts (batch Q8A rows, actStride apart) -> y (batch, nRows), rows [rowStart, rowEnd).
   * scratch: q8_0RScratchBytes(batch) = 64*min(batch, 16) bytes, 16-aligned.
   */
  matmulQ8_0R(
    w: number,
    acts: number,
    actStride: number,
    y: number,
    nRows: number,
    nCols: number,
    batch: number,
    rowStart: number,
    rowEnd: number,
    scratch: number,
  ): void {
    const what = "multiply Q8_0 matrix";
    const { aBytes, yBytes } = this.#checkQ8AMatmul(
      what,
      repackedQ8_0Bytes,
      Q8_0R_ROWS,
      w,
      acts,
      actStride,
      y,
      nRows,
      nCols,
      batch,
      rowStart,
      rowEnd,
    );
    const sBytes = q8_0RScratchBytes(batch);
    this.#ptr(what, "scratch", scratch, sBytes, 16);
    this.#noOverlap(what, "scratch", scratch, sBytes, "y", y, yBytes);
    this.#noOverlap(what, "scratch", scratch, sBytes, "acts", acts, aBytes);
    if (batch === 1) this.#raw.matvecQ8_0R(w, acts, y, nCols, rowStart, rowEnd);
    else this.#raw.matmulQ8_0R(w, acts, actStride, y, nCols, nRows, batch, rowStart, rowEnd, scratch);
  }

  /**
   * W (nRows, nCols) Q4_0R @ act (Q8A of x) -> y[rowStart..rowEnd) (y points at row 0). rowStart must be a
   * multiple of 8; scratch is 16-aligned, q4_0RScratchBytes(1) bytes.
   */
  matvecQ4_0R(
    w: number,
    act: number,
    y: number,
    nRows: number,
    nCols: number,
    rowStart: number,
    rowEnd: number,
    scratch: number,
  ): void {
    this.matmulQ4_0R(w, act, q8AStride(nCols), y, nRows, nCols, 1, rowStart, rowEnd, scratch);
  }

  /**
   * W (nRows, nCols) Q4_0R @ acts (batch Q8A rows, actStride apart) -> y (batch, nRows), rows [rowStart, rowEnd).
   * scratch: q4_0RScratchBytes(batch) = 64*min(batch, 16) bytes, 16-aligned.
   */
  matmulQ4_0R(
    w: number,
    acts: number,
    actStride: number,
    y: number,
    nRows: number,
    nCols: number,
    batch: number,
    rowStart: number,
    rowEnd: number,
    scratch: number,
  ): void {
    const what = "multiply Q4_0 matrix";
    const { aBytes, yBytes } = this.#checkQ8AMatmul(
      what,
      repackedQ4_0Bytes,
      Q4_0R_ROWS,
      w,
      acts,
      actStride,
      y,
      nRows,
      nCols,
      batch,
      rowStart,
      rowEnd,
    );
    const sBytes = q4_0RScratchBytes(batch);
    this.#ptr(what, "scratch", scratch, sBytes, 16);
    this.#noOverlap(what, "scratch", scratch, sBytes, "y", y, yBytes);
    this.#noOverlap(what, "scratch", scratch, sBytes, "acts", acts, aBytes);
    if (batch === 1) this.#raw.matvecQ4_0R(w, acts, y, nCols, rowStart, rowEnd, scratch);
    else this.#raw.matmulQ4_0R(w, acts, actStride, y, nCols, nRows, batch, rowStart, rowEnd, scratch);
  }

  #floatMatmul(
    f16: boolean,
    w: number,
    x: number,
    y: number,
    nRows: number,
    nCols: number,
    batch: number,
    rowStart: number,
    rowEnd: number,
  ): void {
    const what = f16 ? "multiply F16 matrix" : "multiply F32 matrix";
    checkDim(what, "nCols", nCols);
    checkDim(what, "batch", batch);
    this.#rows(what, nRows, rowStart, rowEnd);
    const es = f16 ? 2 : 4;
    const wBytes = es * nRows * nCols, xBytes = 4 * batch * nCols, yBytes = 4 * batch * nRows;
    this.#ptr(what, "w", w, wBytes, es);
    this.#ptr(what, "x", x, xBytes, 4);
    this.#ptr(what, "y", y, yBytes, 4);
    this.#noOverlap(what, "y", y, yBytes, "w", w, wBytes);
    this.#noOverlap(what, "y", y, yBytes, "x", x, xBytes);
    if (f16) {
      if (batch === 1) this.#raw.matvecF16(w, x, y, nCols, rowStart, rowEnd);
      else this.#raw.matmulF16(w, x, y, nCols, nRows, batch, rowStart, rowEnd);
    } else {
      if (batch === 1) this.#raw.matvecF32(w, x, y, nCols, rowStart, rowEnd);
      else this.#raw.matmulF32(w, x, y, nCols, nRows, batch, rowStart, rowEnd);
    }
  }

  /** W (nRows, nCols) f16 bits @ x (batch, nCols) f32 -> y (batch, nRows), rows [rowStart, rowEnd). */
  matmulF16(
    w: number,
    x: number,
    y: number,
    nRows: number,
    nCols: number,
    batch: number,
    rowStart: number,
    rowEnd: number,
  ): void {
    this.#floatMatmul(true, w, x, y, nRows, nCols, batch, rowStart, rowEnd);
  }

  /** W (nRows, nCols) f32 @ x (batch, nCols) -> y (batch, nRows), rows [rowStart, rowEnd). */
  matmulF32(
    w: number,
    x: number,
    y: number,
    nRows: number,
    nCols: number,
    batch: number,
    rowStart: number,
    rowEnd: number,
  ): void {
    this.#floatMatmul(false, w, x, y, nRows, nCols, batch, rowStart, rowEnd);
  }

  /** out = rmsnorm(x) * w, n floats; out may alias x. */
  rmsNorm(x: number, w: number, out: number, n: number, eps: number): void {
    const what = "apply RMSNorm";
    checkDim(what, "n", n);
    this.#ptr(what, "x", x, 4 * n, 4);
    this.#ptr(what, "weight", w, 4 * n, 4);
    this.#ptr(what, "out", out, 4 * n, 4);
    if (out !== x) this.#noOverlap(what, "out", out, 4 * n, "x", x, 4 * n);
    this.#noOverlap(what, "out", out, 4 * n, "weight", w, 4 * n);
    if (!(eps >= 0)) throw new RangeError(`Cannot ${what}: eps ${eps} is negative`);
    this.#raw.rmsNorm(x, w, out, n, eps);
  }

  /** In-place softmax of n floats. */
  softmax(x: number, n: number): void {
    checkDim("apply softmax", "n", n);
    this.#ptr("apply softmax", "x", x, 4 * n, 4);
    this.#raw.softmax(x, n);
  }

  /** In-place RoPE on x (nHeads, headSize). */
  rope(x: number, nHeads: number, headSize: number, pos: number, theta: number): void {
    const what = "apply RoPE";
    checkDim(what, "nHeads", nHeads);
    checkDim(what, "headSize", headSize);
    if (headSize % 2 !== 0) throw new RangeError(`Cannot ${what}: headSize ${headSize} is odd`);
    if (!Number.isInteger(pos) || pos < 0 || pos > 0x7fffffff) {
      throw new RangeError(`Cannot ${what}: pos ${pos} is not a non-negative integer`);
    }
    if (!(theta > 0)) throw new RangeError(`Cannot ${what}: theta ${theta} is not positive`);
    this.#ptr(what, "x", x, 4 * nHeads * headSize, 4);
    this.#raw.rope(x, nHeads, headSize, pos, theta);
  }

  /** out = silu(gate) * up, n floats; out may alias gate or up. */
  siluGate(gate: number, up: number, out: number, n: number): void {
    const what = "apply SiLU gate";
    checkDim(what, "n", n);
    this.#ptr(what, "gate", gate, 4 * n, 4);
    this.#ptr(what, "up", up, 4 * n, 4);
    this.#ptr(what, "out", out, 4 * n, 4);
    if (out !== gate) this.#noOverlap(what, "out", out, 4 * n, "gate", gate, 4 * n);
    if (out !== up) this.#noOverlap(what, "out", out, 4 * n, "up", up, 4 * n);
    this.#raw.siluGate(gate, up, out, n);
  }

  /** Attention for one query: q, out (nHeads, headSize); k, v (nPos, nKvHeads, headSize); att nPos f32 scratch. */
  attention(
    q: number,
    k: number,
    v: number,
    out: number,
    att: number,
    shape: AttentionShape & { kvF16: boolean },
  ): void {
    const what = "compute attention";
    const { nHeads, nKvHeads, headSize, nPos } = shape;
    const fake = (n: number) => ({ length: n });
    const qn = nHeads * headSize;
    const [kvDim, , scale] = checkAttention(
      fake(qn) as Float32Array,
      fake(nPos * nKvHeads * headSize),
      fake(nPos * nKvHeads * headSize),
      fake(qn) as Float32Array,
      shape,
    );
    const es = shape.kvF16 ? 2 : 4;
    const kvBytes = es * nPos * kvDim;
    this.#ptr(what, "q", q, 4 * qn, 4);
    this.#ptr(what, "k", k, kvBytes, es);
    this.#ptr(what, "v", v, kvBytes, es);
    this.#ptr(what, "out", out, 4 * qn, 4);
    this.#ptr(what, "att", att, 4 * nPos, 4);
    for (
      const [name, p, n] of [["q", q, 4 * qn], ["k", k, kvBytes], ["v", v, kvBytes], ["att", att, 4 * nPos]] as const
    ) {
      this.#noOverlap(what, "out", out, 4 * qn, name, p, n);
    }
    this.#noOverlap(what, "att", att, 4 * nPos, "q", q, 4 * qn);
    this.#noOverlap(what, "att", att, 4 * nPos, "k", k, kvBytes);
    this.#noOverlap(what, "att", att, 4 * nPos, "v", v, kvBytes);
    this.#raw.attention(q, k, v, out, att, nHeads, nKvHeads, headSize, nPos, shape.kvF16 ? 1 : 0, scale);
  }

  /** Reads nBytes (multiple of 64) at p (16-aligned); the bandwidth baseline. */
  streamRead(p: number, nBytes: number): number {
    const what = "stream memory";
    checkDim(what, "nBytes", nBytes);
    if (nBytes % 64 !== 0) throw new RangeError(`Cannot ${what}: ${nBytes} bytes is not a multiple of 64`);
    this.#ptr(what, "p", p, nBytes, 16);
    return this.#raw.streamRead(p, nBytes);
  }
}

/** A kernels instance with the checked pointer API (`ptr`) and the typed-array API (copies in and out). */
export class TypedWasmKernels implements TypedKernels {
  readonly name = "wasm";
  readonly memory: WebAssembly.Memory;
  readonly raw: KernelExports;
  readonly arena: Arena;
  readonly ptr: WasmPtrKernels;

  constructor(k: WasmKernels) {
    this.memory = k.memory;
    this.raw = k.raw;
    this.arena = k.arena;
    this.ptr = new WasmPtrKernels(k.raw, k.memory, k.raw.heapBase());
  }

  /** Runs fn with temporary arena allocations released afterwards. */
  #temp<T>(fn: (a: Arena) => T): T {
    const m = this.arena.mark();
    try {
      return fn(this.arena);
    } finally {
      this.arena.reset(m);
    }
  }

  quantizeRowQ4_0(x: Float32Array, out: Uint8Array): void {
    checkQuantShape("quantize Q4_0 row", x.length, QK4_0, out.length, BLOCK_Q4_0_BYTES);
    this.#temp((a) => {
      const xp = a.put(x), op = a.alloc(out.length);
      this.ptr.quantizeRowQ4_0(xp, op, x.length);
      out.set(a.u8(op, out.length));
    });
  }

  dequantizeRowQ4_0(blocks: Uint8Array, out: Float32Array): void {
    checkQuantShape("dequantize Q4_0 row", out.length, QK4_0, blocks.length, BLOCK_Q4_0_BYTES);
    this.#temp((a) => {
      const bp = a.put(blocks), op = a.alloc(4 * out.length);
      this.ptr.dequantizeRowQ4_0(bp, op, out.length);
      out.set(a.f32(op, out.length));
    });
  }

  quantizeRowQ8_0(x: Float32Array, out: Uint8Array): void {
    checkQuantShape("quantize Q8_0 row", x.length, QK4_0, out.length, BLOCK_Q8_0_BYTES);
    this.#temp((a) => {
      const xp = a.put(x), op = a.alloc(out.length);
      this.ptr.quantizeRowQ8_0(xp, op, x.length);
      out.set(a.u8(op, out.length));
    });
  }

  dequantizeRowQ8_0(blocks: Uint8Array, out: Float32Array): void {
    checkQuantShape("dequantize Q8_0 row", out.length, QK4_0, blocks.length, BLOCK_Q8_0_BYTES);
    this.#temp((a) => {
      const bp = a.put(blocks), op = a.alloc(4 * out.length);
      this.ptr.dequantizeRowQ8_0(bp, op, out.length);
      out.set(a.f32(op, out.length));
    });
  }

  f16ToF32(src: Uint16Array, dst: Float32Array): void {
    checkLength("convert f16 to f32", "dst", dst, src.length);
    this.#temp((a) => {
      const sp = a.put(src), dp = a.alloc(4 * src.length);
      this.ptr.f16ToF32(sp, dp, src.length);
      dst.set(a.f32(dp, src.length));
    });
  }

  f32ToF16(src: Float32Array, dst: Uint16Array): void {
    checkLength("convert f32 to f16", "dst", dst, src.length);
    this.#temp((a) => {
      const sp = a.put(src), dp = a.alloc(2 * src.length);
      this.ptr.f32ToF16(sp, dp, src.length);
      dst.set(a.u16(dp, src.length));
    });
  }

  bf16ToF32(src: Uint16Array, dst: Float32Array): void {
    checkLength("convert bf16 to f32", "dst", dst, src.length);
    this.#temp((a) => {
      const sp = a.put(src), dp = a.alloc(4 * src.length);
      this.ptr.bf16ToF32(sp, dp, src.length);
      dst.set(a.f32(dp, src.length));
    });
  }

  /** Quantizes batch rows of x into Q8A rows (q8AStride apart); returns the pointer. */
  #acts(a: Arena, x: Float32Array, nCols: number, batch: number): number {
    const stride = q8AStride(nCols);
    const xp = a.put(x);
    const acts = a.alloc(stride * batch);
    for (let t = 0; t < batch; t++) this.ptr.quantizeQ8A(xp + 4 * t * nCols, acts + t * stride, nCols);
    return acts;
  }

  #copyRows(a: Arena, yp: number, y: Float32Array, nRows: number, batch: number, r0: number, r1: number): void {
    const all = a.f32(yp, batch * nRows);
    for (let t = 0; t < batch; t++) y.set(all.subarray(t * nRows + r0, t * nRows + r1), t * nRows + r0);
  }

  /** Standard Q4_0/Q8_0 rows, repacked (Q4_0R/Q8_0R) in temporary memory, @ x quantized to Q8A -> y. */
  #matmulQuant(
    q4: boolean,
    w: Uint8Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range: RowRange,
  ): void {
    const what = q4 ? "multiply Q4_0 matrix" : "multiply Q8_0 matrix";
    checkQuantMatmul(what, QK4_0, q4 ? BLOCK_Q4_0_BYTES : BLOCK_Q8_0_BYTES, w, x, y, nRows, nCols, batch);
    const [r0, r1] = resolveRows(what, nRows, range);
    this.#temp((a) => {
      const src = a.put(w, 1);
      const wr = a.alloc(q4 ? repackedQ4_0Bytes(nRows, nCols) : repackedQ8_0Bytes(nRows, nCols));
      if (q4) this.ptr.repackQ4_0(src, wr, nRows, nCols);
      else this.ptr.repackQ8_0(src, wr, nRows, nCols);
      const acts = this.#acts(a, x, nCols, batch);
      const yp = a.alloc(4 * batch * nRows);
      const start = r0 - (r0 % (q4 ? Q4_0R_ROWS : Q8_0R_ROWS)); // the repacked kernels start at a row group
      const stride = q8AStride(nCols);
      const scratch = a.alloc(q4 ? q4_0RScratchBytes(batch) : q8_0RScratchBytes(batch));
      if (q4) this.ptr.matmulQ4_0R(wr, acts, stride, yp, nRows, nCols, batch, start, r1, scratch);
      else this.ptr.matmulQ8_0R(wr, acts, stride, yp, nRows, nCols, batch, start, r1, scratch);
      this.#copyRows(a, yp, y, nRows, batch, r0, r1);
    });
  }

  matmulQ4_0(
    w: Uint8Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range: RowRange = {},
  ): void {
    this.#matmulQuant(true, w, x, y, nRows, nCols, batch, range);
  }

  matvecQ4_0(w: Uint8Array, x: Float32Array, y: Float32Array, nRows: number, nCols: number, range?: RowRange): void {
    this.#matmulQuant(true, w, x, y, nRows, nCols, 1, range ?? {});
  }

  matmulQ8_0(
    w: Uint8Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range: RowRange = {},
  ): void {
    this.#matmulQuant(false, w, x, y, nRows, nCols, batch, range);
  }

  matvecQ8_0(w: Uint8Array, x: Float32Array, y: Float32Array, nRows: number, nCols: number, range?: RowRange): void {
    this.#matmulQuant(false, w, x, y, nRows, nCols, 1, range ?? {});
  }

  #matmulFloat(
    f16: boolean,
    w: Uint16Array | Float32Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range: RowRange,
  ): void {
    const what = f16 ? "multiply F16 matrix" : "multiply F32 matrix";
    checkFloatMatmul(what, w, x, y, nRows, nCols, batch);
    const [r0, r1] = resolveRows(what, nRows, range);
    this.#temp((a) => {
      const wp = a.put(w), xp = a.put(x), yp = a.alloc(4 * batch * nRows);
      if (f16) this.ptr.matmulF16(wp, xp, yp, nRows, nCols, batch, r0, r1);
      else this.ptr.matmulF32(wp, xp, yp, nRows, nCols, batch, r0, r1);
      this.#copyRows(a, yp, y, nRows, batch, r0, r1);
    });
  }

  matmulF16(
    w: Uint16Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range: RowRange = {},
  ): void {
    this.#matmulFloat(true, w, x, y, nRows, nCols, batch, range);
  }

  matvecF16(
    w: Uint16Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    range: RowRange = {},
  ): void {
    this.#matmulFloat(true, w, x, y, nRows, nCols, 1, range);
  }

  matmulF32(
    w: Float32Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    batch: number,
    range: RowRange = {},
  ): void {
    this.#matmulFloat(false, w, x, y, nRows, nCols, batch, range);
  }

  matvecF32(
    w: Float32Array,
    x: Float32Array,
    y: Float32Array,
    nRows: number,
    nCols: number,
    range: RowRange = {},
  ): void {
    this.#matmulFloat(false, w, x, y, nRows, nCols, 1, range);
  }

  rmsNorm(x: Float32Array, weight: Float32Array, out: Float32Array, eps: number): void {
    checkDim("apply RMSNorm", "n", x.length);
    checkLength("apply RMSNorm", "weight", weight, x.length);
    checkLength("apply RMSNorm", "out", out, x.length);
    this.#temp((a) => {
      const xp = a.put(x), wp = a.put(weight), op = a.alloc(4 * x.length);
      this.ptr.rmsNorm(xp, wp, op, x.length, eps);
      out.set(a.f32(op, x.length));
    });
  }

  softmax(x: Float32Array): void {
    checkDim("apply softmax", "n", x.length);
    this.#temp((a) => {
      const xp = a.put(x);
      this.ptr.softmax(xp, x.length);
      x.set(a.f32(xp, x.length));
    });
  }

  rope(x: Float32Array, nHeads: number, headSize: number, pos: number, theta: number): void {
    checkLength("apply RoPE", "x", x, nHeads * headSize);
    this.#temp((a) => {
      const xp = a.put(x);
      this.ptr.rope(xp, nHeads, headSize, pos, theta);
      x.set(a.f32(xp, x.length));
    });
  }

  siluGate(gate: Float32Array, up: Float32Array, out: Float32Array): void {
    checkDim("apply SiLU gate", "n", gate.length);
    checkLength("apply SiLU gate", "up", up, gate.length);
    checkLength("apply SiLU gate", "out", out, gate.length);
    this.#temp((a) => {
      const gp = a.put(gate), up_ = a.put(up), op = a.alloc(4 * gate.length);
      this.ptr.siluGate(gp, up_, op, gate.length);
      out.set(a.f32(op, gate.length));
    });
  }

  attention(
    q: Float32Array,
    k: Float32Array | Uint16Array,
    v: Float32Array | Uint16Array,
    out: Float32Array,
    shape: AttentionShape,
  ): void {
    const kvF16 = k instanceof Uint16Array;
    if (kvF16 !== (v instanceof Uint16Array)) throw new TypeError("Cannot compute attention: K and V dtypes differ");
    const [kvDim] = checkAttention(q, k, v, out, shape);
    const n = shape.nPos * kvDim;
    this.#temp((a) => {
      const qp = a.put(q), kp = a.put(k.subarray(0, n)), vp = a.put(v.subarray(0, n));
      const op = a.alloc(4 * out.length), att = a.alloc(4 * shape.nPos);
      this.ptr.attention(qp, kp, vp, op, att, { ...shape, kvF16 });
      out.set(a.f32(op, out.length));
    });
  }
}
