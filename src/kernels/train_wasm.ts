/**
 * The WASM SIMD training kernels (wasm/assembly/train.ts) behind the `TrainKernels` interface. Inputs are copied
 * into the instance's memory per call (arena mark/reset: no reallocation once the high-water mark is reached);
 * frozen base weights are copied once and stay resident, cached by FrozenWeight identity.
 * see: src/kernels/train_kernels.ts (the definitions), wasm/README.md ("Training products")
 */
import { checkDim, checkLength } from "./scalar.ts";
import type { FrozenType, FrozenWeight, TrainKernels } from "./train_kernels.ts";
import { type LoadKernelsOptions, loadWasmKernels, type WasmKernels } from "./wasm.ts";
import { BLOCK_Q4_0_BYTES, QK4_0 } from "../quant/q4_0.ts";
import { BLOCK_Q8_0_BYTES } from "../quant/q8_0.ts";

/** The training exports of kernels.wasm (raw: no checks; pointers are byte offsets into the instance memory). */
export interface TrainKernelExports {
  /** Bytes of scratch each call needs (one packed 256×256 f32 chunk + one tile). */
  trainScratchBytes(): number;
  /** y (rows, nOut) rows [rowStart, rowEnd) = x (rows, nIn) @ w (nOut, nIn)ᵀ; w of `type` (TRAIN_TYPE_CODES). */
  trainMatmul(
    x: number,
    w: number,
    type: number,
    y: number,
    nIn: number,
    nOut: number,
    rowStart: number,
    rowEnd: number,
    scratch: number,
  ): void;
  /** dx (rows, nIn) rows [rowStart, rowEnd) += dy (rows, nOut) @ w (nOut, nIn). */
  trainMatmulBackwardInput(
    dy: number,
    w: number,
    type: number,
    dx: number,
    nIn: number,
    nOut: number,
    rowStart: number,
    rowEnd: number,
    scratch: number,
  ): void;
  /** dw (nOut, nIn) rows [outStart, outEnd) += dy (rows, nOut)ᵀ @ x (rows, nIn). */
  trainMatmulBackwardWeight(
    dy: number,
    x: number,
    dw: number,
    rows: number,
    nIn: number,
    nOut: number,
    outStart: number,
    outEnd: number,
    scratch: number,
  ): void;
}

/** The `type` argument of the training exports for each frozen file type. */
export const TRAIN_TYPE_CODES: Readonly<Record<FrozenType, number>> = { F32: 0, F16: 1, Q8_0: 2, Q4_0: 3 };

/** Bytes of a frozen weight of `type` with shape (nOut, nIn); RangeError when the shape cannot hold that type. */
export function frozenWeightBytes(what: string, type: FrozenType, nOut: number, nIn: number): number {
  checkDim(what, "nOut", nOut);
  checkDim(what, "nIn", nIn);
  switch (type) {
    case "F32":
      return 4 * nOut * nIn;
    case "F16":
      return 2 * nOut * nIn;
    case "Q8_0":
    case "Q4_0":
      if (nIn % QK4_0 !== 0) throw new RangeError(`Cannot ${what}: ${type} row length ${nIn} is not a multiple of 32`);
      return nOut * (nIn / QK4_0) * (type === "Q8_0" ? BLOCK_Q8_0_BYTES : BLOCK_Q4_0_BYTES);
    default:
      throw new TypeError(`Cannot ${what}: frozen weight type "${type}" is not one of F32, F16, Q8_0, Q4_0`);
  }
}

/** Options of createWasmTrainKernels. */
export interface WasmTrainKernelsOptions extends LoadKernelsOptions {
  /**
   * An instance to run on (default: a new one). Its arena must not be reset below the allocations made here
   * (scratch and resident frozen weights stay allocated for this object's lifetime).
   */
  kernels?: WasmKernels;
}

/** Loads (or reuses) a kernels instance and wraps its training exports. */
export async function createWasmTrainKernels(options: WasmTrainKernelsOptions = {}): Promise<WasmTrainKernels> {
  const kernels = options.kernels ?? await loadWasmKernels(options);
  return new WasmTrainKernels(kernels);
}

/** Throws RangeError when two typed arrays share bytes (an output must not overlap an input). */
function checkNoOverlap(what: string, out: string, a: ArrayBufferView, input: string, b: ArrayBufferView): void {
  if (
    a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength
  ) {
    throw new RangeError(`Cannot ${what}: ${out} overlaps ${input}`);
  }
}

/**
 * TrainKernels on one WASM instance. Not re-entrant (one call at a time per instance); frozen weights must not be
 * mutated after their first use (they are cached by object identity and never re-read).
 */
export class WasmTrainKernels implements TrainKernels {
  readonly name = "wasm";
  readonly kernels: WasmKernels;
  /** The raw training exports, for callers that keep their buffers in `kernels.arena` (no copies). */
  readonly raw: TrainKernelExports;
  /** Scratch for one call at a time (trainScratchBytes(), 64-aligned). */
  readonly scratch: number;
  readonly #resident = new WeakMap<FrozenWeight, number>();
  #residentBytes = 0;

  constructor(kernels: WasmKernels) {
    const raw = kernels.raw as unknown as Partial<TrainKernelExports>;
    if (typeof raw.trainMatmul !== "function" || typeof raw.trainScratchBytes !== "function") {
      throw new TypeError("Cannot create WASM train kernels: kernels.wasm has no training exports (rebuild it)");
    }
    this.kernels = kernels;
    this.raw = raw as TrainKernelExports;
    this.scratch = kernels.arena.alloc(this.raw.trainScratchBytes(), 64);
  }

  /** Bytes of frozen weights kept resident in WASM memory. */
  get residentBytes(): number {
    return this.#residentBytes;
  }

  /** The pointer of a frozen weight's bytes in WASM memory, copying them in on first use (validated). */
  resident(w: FrozenWeight): number {
    const have = this.#resident.get(w);
    if (have !== undefined) return have;
    const nBytes = frozenWeightBytes("use frozen weight", w.type, w.nOut, w.nIn);
    checkLength("use frozen weight", `${w.type} bytes`, w.bytes, nBytes);
    const ptr = this.kernels.arena.put(w.bytes, 64);
    this.#resident.set(w, ptr);
    this.#residentBytes += nBytes;
    return ptr;
  }

  /** Runs fn with per-call arena allocations released afterwards (the memory keeps its high-water size). */
  #temp(fn: () => void): void {
    const arena = this.kernels.arena;
    const m = arena.mark();
    try {
      fn();
    } finally {
      arena.reset(m);
    }
  }

  matmulF32(y: Float32Array, x: Float32Array, w: Float32Array, rows: number, nIn: number, nOut: number): void {
    const what = "multiply training matrix";
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "x", x, rows * nIn);
    checkLength(what, "w", w, nOut * nIn);
    checkLength(what, "y", y, rows * nOut);
    checkNoOverlap(what, "y", y, "x", x);
    checkNoOverlap(what, "y", y, "w", w);
    const a = this.kernels.arena;
    this.#temp(() => {
      const xp = a.put(x), wp = a.put(w), yp = a.alloc(4 * y.length);
      this.raw.trainMatmul(xp, wp, TRAIN_TYPE_CODES.F32, yp, nIn, nOut, 0, rows, this.scratch);
      y.set(a.f32(yp, y.length));
    });
  }

  matmulF32BackwardInput(
    dx: Float32Array,
    dy: Float32Array,
    w: Float32Array,
    rows: number,
    nIn: number,
    nOut: number,
  ): void {
    const what = "multiply training input gradient";
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "dy", dy, rows * nOut);
    checkLength(what, "w", w, nOut * nIn);
    checkLength(what, "dx", dx, rows * nIn);
    checkNoOverlap(what, "dx", dx, "dy", dy);
    checkNoOverlap(what, "dx", dx, "w", w);
    const a = this.kernels.arena;
    this.#temp(() => {
      const dyp = a.put(dy), wp = a.put(w), dxp = a.put(dx);
      this.raw.trainMatmulBackwardInput(dyp, wp, TRAIN_TYPE_CODES.F32, dxp, nIn, nOut, 0, rows, this.scratch);
      dx.set(a.f32(dxp, dx.length));
    });
  }

  matmulF32BackwardWeight(
    dw: Float32Array,
    dy: Float32Array,
    x: Float32Array,
    rows: number,
    nIn: number,
    nOut: number,
  ): void {
    const what = "multiply training weight gradient";
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "dy", dy, rows * nOut);
    checkLength(what, "x", x, rows * nIn);
    checkLength(what, "dw", dw, nOut * nIn);
    checkNoOverlap(what, "dw", dw, "dy", dy);
    checkNoOverlap(what, "dw", dw, "x", x);
    const a = this.kernels.arena;
    this.#temp(() => {
      const dyp = a.put(dy), xp = a.put(x), dwp = a.put(dw);
      this.raw.trainMatmulBackwardWeight(dyp, xp, dwp, rows, nIn, nOut, 0, nOut, this.scratch);
      dw.set(a.f32(dwp, dw.length));
    });
  }

  matmulFrozen(y: Float32Array, x: Float32Array, w: FrozenWeight, rows: number): void {
    const what = "multiply frozen matrix";
    const { nIn, nOut } = w;
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "x", x, rows * nIn);
    checkLength(what, "y", y, rows * nOut);
    checkNoOverlap(what, "y", y, "x", x);
    checkNoOverlap(what, "y", y, "w", w.bytes);
    const wp = this.resident(w);
    const a = this.kernels.arena;
    this.#temp(() => {
      const xp = a.put(x), yp = a.alloc(4 * y.length);
      this.raw.trainMatmul(xp, wp, TRAIN_TYPE_CODES[w.type], yp, nIn, nOut, 0, rows, this.scratch);
      y.set(a.f32(yp, y.length));
    });
  }

  matmulFrozenBackwardInput(dx: Float32Array, dy: Float32Array, w: FrozenWeight, rows: number): void {
    const what = "multiply frozen input gradient";
    const { nIn, nOut } = w;
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "dy", dy, rows * nOut);
    checkLength(what, "dx", dx, rows * nIn);
    checkNoOverlap(what, "dx", dx, "dy", dy);
    checkNoOverlap(what, "dx", dx, "w", w.bytes);
    const wp = this.resident(w);
    const a = this.kernels.arena;
    this.#temp(() => {
      const dyp = a.put(dy), dxp = a.put(dx);
      this.raw.trainMatmulBackwardInput(dyp, wp, TRAIN_TYPE_CODES[w.type], dxp, nIn, nOut, 0, rows, this.scratch);
      dx.set(a.f32(dxp, dx.length));
    });
  }
}

/** Positive integer dimensions whose products stay below 2^31 elements (the WASM side uses i32 arguments). */
function checkShape(what: string, rows: number, nIn: number, nOut: number): void {
  checkDim(what, "rows", rows);
  checkDim(what, "nIn", nIn);
  checkDim(what, "nOut", nOut);
  for (const [name, n] of [["rows*nIn", rows * nIn], ["rows*nOut", rows * nOut], ["nOut*nIn", nOut * nIn]] as const) {
    if (n >= 2 ** 30) throw new RangeError(`Cannot ${what}: ${name} = ${n} elements exceeds the 2^30 WASM limit`);
  }
}
