/**
 * ScalarKernels: the `Kernels` interface on the scalar references — each operation is the `…Ref` definition of
 * scalar.ts applied to views of the kernel memory (readable, f64 sums, slow) — and `KernelMemory`, the bump
 * allocator both implementations share. SimdKernels (simd_kernels.ts) extends this class and replaces the hot
 * operations, so anything it does not override is the reference by construction.
 * see: kernels.ts (the interface), scalar.ts (the definitions)
 */
import { type DType, nBytesOf } from "../core/dtypes.ts";
import { dequantizeRef } from "../quant/dequantize.ts";
import { quantizeRowQ8_0Ref } from "../quant/q8_0.ts";
import type { CacheShape, Kernels, MatrixSlice } from "./kernels.ts";
import {
  attentionRef,
  matmulF16Ref,
  matmulF32Ref,
  matmulQ4_0Ref,
  matmulQ8_0Ref,
  rmsNormRef,
  ropeRef,
  siluGateRef,
} from "./scalar.ts";

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB: the wasm32 limit

/** A bump allocator over a shared WebAssembly.Memory, with typed views refreshed after growth. */
export class KernelMemory {
  readonly memory: WebAssembly.Memory;
  #top: number;
  #f32!: Float32Array;
  #u8!: Uint8Array;
  #u16!: Uint16Array;
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
    this.#u16 = new Uint16Array(buf);
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
  get u16(): Uint16Array {
    return this.#u16;
  }
  get f16(): Float16Array {
    return this.#f16;
  }
}

/** Converts `nRows` rows of `cols` values from `src` bytes to `dst` bytes (identity when the types agree). */
export function convertRows(src: DType, dst: DType, bytes: Uint8Array, nRows: number, cols: number): Uint8Array {
  if (src === dst) return bytes;
  const f = dequantizeRef(src, bytes, nRows * cols);
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

/** The scalar references over a KernelMemory. */
export class ScalarKernels implements Kernels {
  readonly mem: KernelMemory;

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
  scratch(_maxBatch: number, _maxCols: number): void {}
  loadRows(srcDtype: DType, _dst: "F32", bytes: Uint8Array, ptr: number, rows: number, cols: number): void {
    this.mem.f32.set(dequantizeRef(srcDtype, bytes, rows * cols), ptr / 4);
  }
  loadMatrixRows(slice: MatrixSlice, srcDtype: DType, bytes: Uint8Array, row0: number, nRows: number): void {
    const rowBytes = nBytesOf(slice.dtype, slice.cols);
    const dst = slice.ptr + row0 * rowBytes;
    this.mem.u8.set(convertRows(srcDtype, slice.dtype, bytes, nRows, slice.cols), dst);
  }
  copyIn(src: Float32Array, srcIndex: number, dstPtr: number, n: number): void {
    this.mem.f32.set(src.subarray(srcIndex, srcIndex + n), dstPtr / 4);
  }
  copyOut(src: number, B: number, cols: number, dst: Float32Array, dstIndex: number, dstStride: number): void {
    for (let b = 0; b < B; b++) dst.set(this.#f32(src + 4 * b * cols, cols), dstIndex + b * dstStride);
  }
  /** n f32 values at ptr. */
  #f32(ptr: number, n: number): Float32Array {
    return this.mem.f32.subarray(ptr / 4, ptr / 4 + n);
  }
  rmsNorm(x: number, weight: number, out: number, n: number, eps: number, B: number): void {
    const w = this.#f32(weight, n);
    for (let b = 0; b < B; b++) rmsNormRef(this.#f32(x + 4 * b * n, n), w, this.#f32(out + 4 * b * n, n), eps);
  }
  matmul(w: MatrixSlice, x: number, y: number, B: number): void {
    const { rows, cols, dtype } = w;
    if (rows === 0) return;
    const xs = this.#f32(x, B * cols), ys = this.#f32(y, B * rows);
    const wBytes = this.mem.u8.subarray(w.ptr, w.ptr + nBytesOf(dtype, rows * cols));
    if (dtype === "Q4_0") matmulQ4_0Ref(wBytes, xs, ys, rows, cols, B);
    else if (dtype === "Q8_0") matmulQ8_0Ref(wBytes, xs, ys, rows, cols, B);
    else if (dtype === "F16") {
      matmulF16Ref(this.mem.u16.subarray(w.ptr / 2, w.ptr / 2 + rows * cols), xs, ys, rows, cols, B);
    } else if (dtype === "F32") matmulF32Ref(this.#f32(w.ptr, rows * cols), xs, ys, rows, cols, B);
    else throw new RangeError(`Cannot multiply: weights stored as ${dtype} (kernels keep ${"F32/F16/Q4_0/Q8_0"})`);
  }
  rope(x: number, nHeads: number, headSize: number, pos: number, theta: number, B: number): void {
    const width = nHeads * headSize;
    for (let b = 0; b < B; b++) ropeRef(this.#f32(x + 4 * b * width, width), nHeads, headSize, pos + b, theta);
  }
  storeKv(src: number, cache: number, B: number, width: number, pos: number, kvType: "f16" | "f32"): void {
    const s = this.#f32(src, B * width);
    if (kvType === "f32") this.mem.f32.set(s, cache / 4 + pos * width);
    else this.mem.f16.set(s, cache / 2 + pos * width);
  }
  attention(q: number, k: number, v: number, out: number, shape: CacheShape, B: number, pos: number): void {
    const { nHeads, nKvHeads, headSize, kvType } = shape;
    const width = nHeads * headSize, kvWidth = nKvHeads * headSize;
    for (let b = 0; b < B; b++) {
      const nPos = pos + b + 1, n = nPos * kvWidth;
      const kc = kvType === "f16" ? this.mem.u16.subarray(k / 2, k / 2 + n) : this.#f32(k, n);
      const vc = kvType === "f16" ? this.mem.u16.subarray(v / 2, v / 2 + n) : this.#f32(v, n);
      const o = this.#f32(out + 4 * b * width, width);
      attentionRef(this.#f32(q + 4 * b * width, width), kc, vc, o, { nHeads, nKvHeads, headSize, nPos });
    }
  }
  add(dst: number, src: number, n: number): void {
    const f = this.mem.f32, d = dst / 4, s = src / 4;
    for (let i = 0; i < n; i++) f[d + i] += f[s + i];
  }
  addFrom(dst: number, src: Float32Array, srcIndex: number, n: number): void {
    const f = this.mem.f32, d = dst / 4;
    for (let i = 0; i < n; i++) f[d + i] += src[srcIndex + i];
  }
  fill(dst: number, n: number, value: number): void {
    this.mem.f32.fill(value, dst / 4, dst / 4 + n);
  }
  siluGate(gate: number, up: number, out: number, n: number): void {
    siluGateRef(this.#f32(gate, n), this.#f32(up, n), this.#f32(out, n));
  }
}
