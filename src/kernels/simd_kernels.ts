/**
 * SimdKernels: the `Kernels` interface on the WASM SIMD module (wasm.ts `raw` exports), on the kernels' own shared
 * memory. Q4_0 and Q8_0 weights are repacked at load (Q4_0R, Q8_0R) and multiply Q8A activations, as llama.cpp's CPU
 * path multiplies them by Q8_0; F16/F32 multiply f32 activations. What it does not override is ScalarKernels' (the
 * references). Shapes and pointers are checked once, where the engine allocates them; the hot path calls the raw
 * exports with the same argument order as the interface.
 * see: wasm/README.md (ABI, layouts), kernels.ts (the interface), scalar_kernels.ts (the references)
 */
import { type DType, nBytesOf } from "../core/dtypes.ts";
import type { CacheShape, KernelChoice, Kernels, MatrixSlice } from "./kernels.ts";
import { repackedQ4_0Bytes, repackedQ8_0Bytes } from "./scalar.ts";
import { convertRows, KernelMemory, ScalarKernels } from "./scalar_kernels.ts";
import {
  DOT_PROBE_BYTES,
  type KernelExports,
  loadWasmKernels,
  pickDotForm,
  q4_0RScratchBytes,
  q8_0RScratchBytes,
  q8AStride,
} from "./wasm.ts";

/** Bytes of a weight matrix as SimdKernels keep it: Q4_0 and Q8_0 repacked (padded to whole row groups). */
export function wasmMatrixBytes(dtype: DType, rows: number, cols: number): number {
  if (dtype === "Q4_0") return repackedQ4_0Bytes(rows, cols);
  if (dtype === "Q8_0") return repackedQ8_0Bytes(rows, cols);
  return nBytesOf(dtype, rows * cols);
}

/** Creates kernels over a fresh shared memory: "wasm" (SimdKernels, the default) or "scalar" (the references). */
export async function createKernels(choice: KernelChoice = "wasm", module?: WebAssembly.Module): Promise<Kernels> {
  if (choice === "scalar") return new ScalarKernels();
  const k = await loadWasmKernels({ module, initialPages: 16 });
  return new SimdKernels(k.raw, new KernelMemory(k.memory, k.arena.base));
}

/** Staging area for standard Q4_0 / Q8_0 rows before repacking: bytes per load chunk. */
const STAGING_BYTES = 16 << 20;

/** Kernels whose hot operations run in WASM; allocation and the cold operations are ScalarKernels'. */
export class SimdKernels extends ScalarKernels {
  readonly #raw: KernelExports;
  #staging = 0;
  #act = 0; // (maxBatch, q8AStride(maxCols)) Q8A activations
  #actStride = 0;
  #mmScratch = 0; // scratch for matmulQ4_0R / matmulQ8_0R (the larger of their sizes)
  #att = 0; // (contextSize,) f32 attention scores
  #attLen = 0;
  #maxBatch = 0;
  // the Q4_0R / Q8_0R kernels in the form measured faster on this host (pickDotForm; identical results)
  #matvecQ4: KernelExports["matvecQ4_0R"];
  #matmulQ4: KernelExports["matmulQ4_0R"];
  #matvecQ8: KernelExports["matvecQ8_0R"];
  #matmulQ8: KernelExports["matmulQ8_0R"];
  #probe = 0;

  constructor(raw: KernelExports, mem: KernelMemory) {
    super(mem);
    this.#raw = raw;
    this.#matvecQ4 = raw.matvecQ4_0R;
    this.#matmulQ4 = raw.matmulQ4_0R;
    this.#matvecQ8 = raw.matvecQ8_0R;
    this.#matmulQ8 = raw.matmulQ8_0R;
  }

  override allocMatrix(dtype: DType, rows: number, cols: number): number {
    return this.mem.alloc(wasmMatrixBytes(dtype, rows, cols));
  }

  override scratch(maxBatch: number, maxCols: number): void {
    super.scratch(maxBatch, maxCols);
    this.#maxBatch = maxBatch;
    const cols32 = Math.ceil(maxCols / 32) * 32;
    this.#actStride = q8AStride(cols32);
    this.#act = this.mem.alloc(maxBatch * this.#actStride);
    this.#mmScratch = this.mem.alloc(Math.max(q4_0RScratchBytes(maxBatch), q8_0RScratchBytes(maxBatch)));
    // i16 dots or the relaxed i32 dot-add (one vpdpbusd with AVX-VNNI): measured once per shard, a few ms
    if (this.#probe === 0) {
      this.#probe = this.mem.alloc(DOT_PROBE_BYTES);
      this.mem.u8.fill(0, this.#probe, this.#probe + DOT_PROBE_BYTES); // zeros: no denormal slow paths
      const raw = this.#raw;
      if (pickDotForm(raw, this.#probe, "Q4_0") === "vnni") {
        this.#matvecQ4 = raw.matvecQ4_0RVnni;
        this.#matmulQ4 = raw.matmulQ4_0RVnni;
      }
      if (pickDotForm(raw, this.#probe, "Q8_0") === "vnni") {
        this.#matvecQ8 = raw.matvecQ8_0RVnni;
        this.#matmulQ8 = raw.matmulQ8_0RVnni;
      }
    }
  }

  override loadMatrixRows(slice: MatrixSlice, srcDtype: DType, bytes: Uint8Array, row0: number, nRows: number): void {
    const t = slice.dtype;
    if (t !== "Q4_0" && t !== "Q8_0") return super.loadMatrixRows(slice, srcDtype, bytes, row0, nRows);
    if (row0 % 8 !== 0) throw new RangeError(`Cannot repack ${t} rows: chunk start ${row0} is not a multiple of 8`);
    const cols = slice.cols;
    const std = convertRows(srcDtype, t, bytes, nRows, cols);
    if (this.#staging === 0) this.#staging = this.mem.alloc(STAGING_BYTES);
    // through the staging area in runs of whole 8-row groups (a K-quant converted to Q8_0 grows ~2x)
    const rowBytes = std.length / nRows;
    const run = Math.floor(STAGING_BYTES / rowBytes / 8) * 8;
    if (run === 0) throw new RangeError(`Cannot repack ${t} rows: a row of ${rowBytes} bytes`);
    for (let r = 0; r < nRows; r += run) {
      const n = Math.min(run, nRows - r);
      this.mem.u8.set(std.subarray(r * rowBytes, (r + n) * rowBytes), this.#staging);
      // row0 + r is a whole number of groups (8 rows for Q4_0R, 4 for Q8_0R)
      if (t === "Q4_0") this.#raw.repackQ4_0(this.#staging, slice.ptr + repackedQ4_0Bytes(row0 + r, cols), n, cols);
      else this.#raw.repackQ8_0(this.#staging, slice.ptr + repackedQ8_0Bytes(row0 + r, cols), n, cols);
    }
  }

  override rmsNorm(x: number, weight: number, out: number, n: number, eps: number, B: number): void {
    for (let b = 0; b < B; b++) this.#raw.rmsNorm(x + 4 * b * n, weight, out + 4 * b * n, n, eps);
  }

  override matmul(w: MatrixSlice, xPtr: number, yPtr: number, B: number): void {
    const raw = this.#raw, { rows, cols } = w;
    if (rows === 0) return;
    if (B > this.#maxBatch) throw new RangeError(`Cannot multiply: batch ${B} exceeds the scratch (${this.#maxBatch})`);
    switch (w.dtype) {
      case "F32":
        if (B === 1) raw.matvecF32(w.ptr, xPtr, yPtr, cols, 0, rows);
        else raw.matmulF32(w.ptr, xPtr, yPtr, cols, rows, B, 0, rows);
        return;
      case "F16":
        if (B === 1) raw.matvecF16(w.ptr, xPtr, yPtr, cols, 0, rows);
        else raw.matmulF16(w.ptr, xPtr, yPtr, cols, rows, B, 0, rows);
        return;
      case "Q4_0":
      case "Q8_0": {
        // x (B, cols) f32 -> Q8A activations, once per row of the batch
        const stride = this.#actStride;
        for (let b = 0; b < B; b++) raw.quantizeQ8A(xPtr + 4 * b * cols, this.#act + b * stride, cols);
        // one row (generation): the matvec; a batch (prompt chunk, or several sequences' tokens): the tiled kernel
        if (w.dtype === "Q4_0") {
          if (B === 1) this.#matvecQ4(w.ptr, this.#act, yPtr, cols, 0, rows, this.#mmScratch);
          else this.#matmulQ4(w.ptr, this.#act, stride, yPtr, cols, rows, B, 0, rows, this.#mmScratch);
        } else {
          if (B === 1) this.#matvecQ8(w.ptr, this.#act, yPtr, cols, 0, rows);
          else this.#matmulQ8(w.ptr, this.#act, stride, yPtr, cols, rows, B, 0, rows, this.#mmScratch);
        }
        return;
      }
      default:
        return super.matmul(w, xPtr, yPtr, B);
    }
  }

  override rope(x: number, nHeads: number, headSize: number, pos: number, theta: number, B: number): void {
    const width = nHeads * headSize;
    for (let b = 0; b < B; b++) this.#raw.rope(x + 4 * b * width, nHeads, headSize, pos + b, theta);
  }

  override storeKv(src: number, cache: number, B: number, width: number, pos: number, kvType: "f16" | "f32"): void {
    if (kvType === "f16") this.#raw.f32ToF16Array(src, cache + 2 * pos * width, B * width);
    else super.storeKv(src, cache, B, width, pos, kvType);
  }

  override attention(q: number, k: number, v: number, out: number, shape: CacheShape, B: number, pos: number): void {
    if (this.#attLen < shape.contextSize) {
      this.#att = this.mem.alloc(4 * shape.contextSize);
      this.#attLen = shape.contextSize;
    }
    const { nHeads, nKvHeads, headSize } = shape;
    const width = nHeads * headSize, scale = 1 / Math.sqrt(headSize), f16 = shape.kvType === "f16" ? 1 : 0;
    for (let b = 0; b < B; b++) {
      const o = 4 * b * width;
      this.#raw.attention(q + o, k, v, out + o, this.#att, nHeads, nKvHeads, headSize, pos + b + 1, f16, scale);
    }
  }

  override siluGate(gate: number, up: number, out: number, n: number): void {
    this.#raw.siluGate(gate, up, out, n);
  }
}
