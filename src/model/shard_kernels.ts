/**
 * ShardKernels: the operations a shard (shard.ts) runs on its own linear memory, addressed by byte pointers, and a
 * bump allocator over that memory. `JsShardKernels` implements them in plain TypeScript over a
 * WebAssembly.Memory (the portable fallback and the engine's own cross-check); `WasmShardKernels`
 * (wasm_shard_kernels.ts) runs the hot ones in the SIMD kernel module on the same memory.
 * see: shard.ts (the callers), llama.ts (the numerics every implementation must agree with)
 */
import { type DType, isQuantized, nBytesOf } from "../core/dtypes.ts";
import { quantizeRowQ8_0Ref } from "../quant/q8_0.ts";
import { dequantizeToF32 } from "./weights.ts";

/** Rows [0, rows) of a weight matrix (rows, cols) stored in kernel memory as `dtype` at `ptr`. */
export interface MatrixSlice {
  dtype: DType;
  rows: number;
  cols: number;
  ptr: number;
}

/** Head geometry of a shard's attention. */
export interface LayerOps {
  nHeads: number;
  nKvHeads: number;
  headSize: number;
  contextSize: number;
  kvType: "f16" | "f32";
}

/** What a shard needs from its kernels. All pointers are byte offsets into the shard's memory. */
export interface ShardKernels {
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
  /** dst[0..n) (f32 at dstPtr) = src[srcIndex..srcIndex+n). */
  copyIn(src: Float32Array, srcIndex: number, dstPtr: number, n: number): void;
  /** Copies a (B, cols) f32 block into columns [colOffset, colOffset+cols) of a (B, dstStride) array. */
  copyOutCols(
    srcPtr: number,
    B: number,
    cols: number,
    dst: Float32Array,
    dstIndex: number,
    dstStride: number,
    colOffset: number,
  ): void;
  /** out (B, n) = rmsnorm of each row of x (B, n) with gains w (n,); out may alias x. */
  rmsnorm(outPtr: number, xPtr: number, wPtr: number, n: number, B: number, eps: number): void;
  /** y (B, rows) = x (B, cols) @ W^T, W = the slice (rows, cols). */
  matmul(w: MatrixSlice, xPtr: number, yPtr: number, B: number): void;
  /** RoPE (adjacent pairs) on each row of v (B, width); row b is at position startPos + b. */
  rope(ptr: number, B: number, width: number, headSize: number, startPos: number, theta: number): void;
  /** Writes rows of src (B, width) f32 into cache rows startPos.. (cache (ctx, width) of kvType). */
  storeKv(srcPtr: number, cachePtr: number, B: number, width: number, startPos: number, kvType: "f16" | "f32"): void;
  /** Causal attention of q (B, nHeads*hs) over cache rows 0..startPos+b -> out (B, nHeads*hs). */
  attention(
    ops: LayerOps,
    qPtr: number,
    kPtr: number,
    vPtr: number,
    outPtr: number,
    B: number,
    startPos: number,
  ): void;
  /** dst[i] += src[i] for i < n (f32). */
  add(dstPtr: number, srcPtr: number, n: number): void;
  /** dst[i] += src[srcIndex + i] for i < n: dst f32 in kernel memory, src an outside array (the exchange). */
  addFrom(dstPtr: number, src: Float32Array, srcIndex: number, n: number): void;
  /** dst[0..n) = value (f32). */
  fill(dstPtr: number, n: number, value: number): void;
  /** a[i] = silu(a[i]) * b[i] for i < n (f32). */
  siluMul(aPtr: number, bPtr: number, n: number): void;
}

/** The type a file's weight type is kept in: fast types stay, K-quants and others become Q8_0 (or F32). */
export function storedTypeOf(fileDtype: DType, cols: number): DType {
  if (fileDtype === "F32" || fileDtype === "F16" || fileDtype === "Q4_0" || fileDtype === "Q8_0") return fileDtype;
  if (isQuantized(fileDtype) && cols % 32 === 0) return "Q8_0";
  return "F32";
}

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB: the wasm32 limit

/** A bump allocator over a shared WebAssembly.Memory, with f32/u16 views refreshed after growth. */
export class KernelMemory {
  readonly memory: WebAssembly.Memory;
  #top: number;
  #f32!: Float32Array;
  #u8!: Uint8Array;
  #f16!: Float16Array;

  constructor(memory?: WebAssembly.Memory, base = 1024) {
    this.memory = memory ?? new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    this.#top = base;
    this.#views();
  }

  #views(): void {
    const buf = this.memory.buffer;
    this.#f32 = new Float32Array(buf);
    this.#u8 = new Uint8Array(buf);
    this.#f16 = new Float16Array(buf);
  }

  get top(): number {
    return this.#top;
  }

  alloc(nBytes: number): number {
    const ptr = Math.ceil(this.#top / 64) * 64;
    const end = ptr + Math.max(0, nBytes);
    if (end > MAX_PAGES * PAGE) {
      throw new RangeError(
        `Cannot allocate ${nBytes} bytes of kernel memory: a shard would need ${(end / 2 ** 30).toFixed(2)} GiB ` +
          `(limit 4 GiB per WebAssembly memory)`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // grow in steps of at least 64 MiB to avoid many small grows
      const need = Math.ceil((end - have) / PAGE);
      const step = Math.min(MAX_PAGES - have / PAGE, Math.max(need, 1024));
      this.memory.grow(step);
      this.#views();
    }
    this.#top = end;
    return ptr;
  }

  // Only this allocator grows the memory, so the views are refreshed there and read without a check here
  // (reading `memory.buffer` of a shared memory makes a new SharedArrayBuffer object each time).
  get f32(): Float32Array {
    return this.#f32;
  }
  get u8(): Uint8Array {
    return this.#u8;
  }
  get f16(): Float16Array {
    return this.#f16;
  }
}

/** Plain TypeScript kernels over a KernelMemory: readable, exact in f64 accumulation, slow. */
export class JsShardKernels implements ShardKernels {
  readonly mem: KernelMemory;
  #rowTmp = new Float32Array(0);
  #att = new Float32Array(0);

  constructor(mem = new KernelMemory()) {
    this.mem = mem;
  }
  get memory(): WebAssembly.Memory {
    return this.mem.memory;
  }
  get memoryBytes(): number {
    return this.mem.top;
  }
  alloc(nBytes: number): number {
    return this.mem.alloc(nBytes);
  }
  allocMatrix(dtype: DType, rows: number, cols: number): number {
    return this.mem.alloc(nBytesOf(dtype, rows * cols));
  }
  scratch(_maxBatch: number, maxCols: number): void {
    this.#rowTmp = new Float32Array(maxCols);
  }
  loadRows(srcDtype: DType, _dst: "F32", bytes: Uint8Array, ptr: number, rows: number, cols: number): void {
    this.mem.f32.set(dequantizeToF32(srcDtype, bytes, rows * cols), ptr / 4);
  }
  loadMatrixRows(slice: MatrixSlice, srcDtype: DType, bytes: Uint8Array, row0: number, nRows: number): void {
    const rowBytes = nBytesOf(slice.dtype, slice.cols);
    const dst = slice.ptr + row0 * rowBytes;
    this.mem.u8.set(convertRows(srcDtype, slice.dtype, bytes, nRows, slice.cols), dst);
  }
  copyIn(src: Float32Array, srcIndex: number, dstPtr: number, n: number): void {
    this.mem.f32.set(src.subarray(srcIndex, srcIndex + n), dstPtr / 4);
  }
  copyOutCols(
    srcPtr: number,
    B: number,
    cols: number,
    dst: Float32Array,
    dstIndex: number,
    dstStride: number,
    colOffset: number,
  ): void {
    const f = this.mem.f32;
    for (let b = 0; b < B; b++) {
      const s = srcPtr / 4 + b * cols;
      dst.set(f.subarray(s, s + cols), dstIndex + b * dstStride + colOffset);
    }
  }
  rmsnorm(outPtr: number, xPtr: number, wPtr: number, n: number, B: number, eps: number): void {
    const f = this.mem.f32, w = wPtr / 4;
    for (let b = 0; b < B; b++) {
      const x = xPtr / 4 + b * n, o = outPtr / 4 + b * n;
      let ss = 0;
      for (let i = 0; i < n; i++) ss += f[x + i] * f[x + i];
      const scale = 1 / Math.sqrt(ss / n + eps);
      for (let i = 0; i < n; i++) f[o + i] = f[w + i] * (scale * f[x + i]);
    }
  }
  matmul(w: MatrixSlice, xPtr: number, yPtr: number, B: number): void {
    const f = this.mem.f32, { rows, cols, dtype } = w;
    const rowBytes = nBytesOf(dtype, cols);
    if (this.#rowTmp.length < cols) this.#rowTmp = new Float32Array(cols);
    for (let r = 0; r < rows; r++) {
      // hot loop (of the fallback): one dequantized weight row against every batch row
      let row: Float32Array;
      if (dtype === "F32") row = f.subarray(w.ptr / 4 + r * cols, w.ptr / 4 + (r + 1) * cols);
      else {
        const bytes = this.mem.u8.subarray(w.ptr + r * rowBytes, w.ptr + (r + 1) * rowBytes);
        row = dequantizeToF32(dtype, bytes, cols);
      }
      for (let b = 0; b < B; b++) {
        const x = xPtr / 4 + b * cols;
        let v = 0;
        for (let j = 0; j < cols; j++) v += row[j] * f[x + j];
        f[yPtr / 4 + b * rows + r] = v;
      }
    }
  }
  rope(ptr: number, B: number, width: number, headSize: number, startPos: number, theta: number): void {
    const f = this.mem.f32;
    for (let b = 0; b < B; b++) {
      const pos = startPos + b, o = ptr / 4 + b * width;
      for (let i = 0; i < width; i += 2) {
        const a = pos * Math.pow(theta, -(i % headSize) / headSize);
        const c = Math.cos(a), s = Math.sin(a);
        const v0 = f[o + i], v1 = f[o + i + 1];
        f[o + i] = v0 * c - v1 * s;
        f[o + i + 1] = v0 * s + v1 * c;
      }
    }
  }
  storeKv(srcPtr: number, cachePtr: number, B: number, width: number, startPos: number, kvType: "f16" | "f32"): void {
    const src = this.mem.f32.subarray(srcPtr / 4, srcPtr / 4 + B * width);
    if (kvType === "f32") this.mem.f32.set(src, cachePtr / 4 + startPos * width);
    else this.mem.f16.set(src, cachePtr / 2 + startPos * width);
  }
  attention(ops: LayerOps, qPtr: number, kPtr: number, vPtr: number, outPtr: number, B: number, startPos: number) {
    const f = this.mem.f32;
    const cache = ops.kvType === "f16" ? this.mem.f16 : f;
    const el = ops.kvType === "f16" ? 2 : 4;
    const { nHeads, nKvHeads, headSize: hs } = ops;
    const width = nHeads * hs, kvWidth = nKvHeads * hs, kvMul = nHeads / nKvHeads;
    if (this.#att.length < startPos + B) this.#att = new Float32Array(ops.contextSize);
    const att = this.#att, scale = 1 / Math.sqrt(hs);
    for (let b = 0; b < B; b++) {
      const pos = startPos + b;
      for (let h = 0; h < nHeads; h++) {
        const q = qPtr / 4 + b * width + h * hs;
        const kvo = Math.floor(h / kvMul) * hs;
        let max = -Infinity;
        for (let t = 0; t <= pos; t++) {
          const k = kPtr / el + t * kvWidth + kvo;
          let s = 0;
          for (let i = 0; i < hs; i++) s += f[q + i] * cache[k + i];
          att[t] = s * scale;
          if (att[t] > max) max = att[t];
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) {
          att[t] = Math.exp(att[t] - max); // max-subtracted: exp never overflows
          sum += att[t];
        }
        const o = outPtr / 4 + b * width + h * hs;
        for (let i = 0; i < hs; i++) f[o + i] = 0;
        for (let t = 0; t <= pos; t++) {
          const v = vPtr / el + t * kvWidth + kvo, a = att[t] / sum;
          for (let i = 0; i < hs; i++) f[o + i] += a * cache[v + i];
        }
      }
    }
  }
  add(dstPtr: number, srcPtr: number, n: number): void {
    const f = this.mem.f32, d = dstPtr / 4, s = srcPtr / 4;
    for (let i = 0; i < n; i++) f[d + i] += f[s + i];
  }
  addFrom(dstPtr: number, src: Float32Array, srcIndex: number, n: number): void {
    const f = this.mem.f32, d = dstPtr / 4;
    for (let i = 0; i < n; i++) f[d + i] += src[srcIndex + i];
  }
  fill(dstPtr: number, n: number, value: number): void {
    this.mem.f32.fill(value, dstPtr / 4, dstPtr / 4 + n);
  }
  siluMul(aPtr: number, bPtr: number, n: number): void {
    const f = this.mem.f32, a = aPtr / 4, b = bPtr / 4;
    for (let i = 0; i < n; i++) {
      const g = f[a + i];
      f[a + i] = (g / (1 + Math.exp(-g))) * f[b + i];
    }
  }
}

/** Converts `nRows` rows of `cols` values from `src` bytes to `dst` bytes (identity when the types agree). */
export function convertRows(src: DType, dst: DType, bytes: Uint8Array, nRows: number, cols: number): Uint8Array {
  if (src === dst) return bytes;
  const f = dequantizeToF32(src, bytes, nRows * cols);
  if (dst === "F32") return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  if (dst === "F16") {
    const h = new Float16Array(f);
    return new Uint8Array(h.buffer);
  }
  if (dst === "Q8_0") {
    const out = new Uint8Array(nBytesOf("Q8_0", nRows * cols));
    quantizeRowQ8_0Ref(f, out);
    return out;
  }
  throw new RangeError(`Cannot convert ${src} rows to ${dst}`);
}
