/**
 * The one `Kernels` interface: the operations the engine's shards run on their own linear memory, addressed by byte
 * pointers, with a bump allocator over that memory. Two implementations: `ScalarKernels` (scalar_kernels.ts, every
 * operation a `…Ref` definition of scalar.ts on views of the memory) and `SimdKernels` (simd_kernels.ts, the hot
 * operations in the WASM SIMD module). `createKernels()` is the switch between them.
 * One argument order per operation in the `…Ref`, this interface and the WASM export: `rmsNorm(x, weight, out, n,
 * eps)`, `siluGate(gate, up, out, n)`, `rope(x, nHeads, headSize, pos, theta)`, `attention(q, k, v, out, …)`, products
 * `(w, x, y, …)`; the interface appends the batch count B (attention: B, pos). (The WASM products take nCols before
 * nRows, the references nRows before nCols; the interface takes the matrix as a MatrixSlice.)
 * see: scalar.ts (the definitions), wasm/README.md (ABI), model/shard.ts (the caller)
 */
import { type DType, isQuantized } from "../core/dtypes.ts";

/** Rows [0, rows) of a weight matrix (rows, cols) stored in kernel memory as `dtype` at `ptr`. */
export interface MatrixSlice {
  dtype: DType;
  rows: number;
  cols: number;
  ptr: number;
}

/** Head geometry of attention over a KV cache of `contextSize` positions (GQA: nHeads a multiple of nKvHeads). */
export interface CacheShape {
  nHeads: number;
  nKvHeads: number;
  headSize: number;
  contextSize: number;
  kvType: "f16" | "f32";
}

/** The kernel implementations: the SIMD module (the default) or the scalar references. */
export type KernelChoice = "wasm" | "scalar";

/** What the engine needs from its kernels. All pointers are byte offsets into `memory`; f32 unless noted. */
export interface Kernels {
  readonly memory: WebAssembly.Memory;
  /** Bytes allocated so far. */
  readonly memoryBytes: number;
  /** Allocates `nBytes` (64-byte aligned, zeroed); grows the memory; throws RangeError past 4 GiB. */
  alloc(nBytes: number): number;
  /** Allocates room for a (rows, cols) matrix stored as `dtype` (the layout may be repacked). */
  allocMatrix(dtype: DType, rows: number, cols: number): number;
  /** Prepares scratch for batches of up to `maxBatch` rows of up to `maxCols` values. */
  scratch(maxBatch: number, maxCols: number): void;
  /** Converts `rows` rows of `srcDtype` bytes to f32 at `ptr` (norm weights). */
  loadRows(srcDtype: DType, dst: "F32", bytes: Uint8Array, ptr: number, rows: number, cols: number): void;
  /** Stores `nRows` rows of file bytes (`srcDtype`) into `slice` at row `row0`, converting to slice.dtype. */
  loadMatrixRows(slice: MatrixSlice, srcDtype: DType, bytes: Uint8Array, row0: number, nRows: number): void;
  /** dst[0..n) (at dstPtr) = src[srcIndex..srcIndex+n). */
  copyIn(src: Float32Array, srcIndex: number, dstPtr: number, n: number): void;
  /** Copies a (B, cols) block at src to B rows of `dst` dstStride apart, the first at dst[dstIndex]. */
  copyOut(src: number, B: number, cols: number, dst: Float32Array, dstIndex: number, dstStride: number): void;
  /** out (B, n) = rmsnorm of each row of x (B, n) with gains weight (n,); out may alias x. */
  rmsNorm(x: number, weight: number, out: number, n: number, eps: number, B: number): void;
  /** W (rows, cols) @ x (B, cols) -> y (B, rows), W = the slice. */
  matmul(w: MatrixSlice, x: number, y: number, B: number): void;
  /** In-place RoPE (adjacent pairs) on each row of x (B, nHeads*headSize); row b is at position pos + b. */
  rope(x: number, nHeads: number, headSize: number, pos: number, theta: number, B: number): void;
  /** Writes rows of src (B, width) into cache rows pos.. of a (contextSize, width) cache of kvType. */
  storeKv(src: number, cache: number, B: number, width: number, pos: number, kvType: "f16" | "f32"): void;
  /**
   * Causal attention: row b of q (B, nHeads*headSize) at position pos + b over cache rows 0..pos+b of k, v
   * (contextSize, nKvHeads*headSize) -> out (B, nHeads*headSize).
   */
  attention(q: number, k: number, v: number, out: number, shape: CacheShape, B: number, pos: number): void;
  /** dst[i] += src[i] for i < n. */
  add(dst: number, src: number, n: number): void;
  /** dst[i] += src[srcIndex + i] for i < n: dst in kernel memory, src an outside array (the exchange). */
  addFrom(dst: number, src: Float32Array, srcIndex: number, n: number): void;
  /** dst[0..n) = value. */
  fill(dst: number, n: number, value: number): void;
  /** out = silu(gate) * up, n values; out may alias gate or up. */
  siluGate(gate: number, up: number, out: number, n: number): void;
}

/** The type a file's weight type is kept in: fast types stay, K-quants and others become Q8_0 (or F32). */
export function storedTypeOf(fileDtype: DType, cols: number): DType {
  if (fileDtype === "F32" || fileDtype === "F16" || fileDtype === "Q4_0" || fileDtype === "Q8_0") return fileDtype;
  if (isQuantized(fileDtype) && cols % 32 === 0) return "Q8_0";
  return "F32";
}
