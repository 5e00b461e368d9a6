/**
 * The WASM SIMD training kernels (wasm/assembly/train.ts) behind the `TrainKernels` interface. Inputs are copied
 * into the instance's memory per call (arena mark/reset: no reallocation once the high-water mark is reached);
 * frozen base weights are copied once and stay resident up to maxResidentBytes, cached by FrozenWeight identity
 * (or are placed there from the start with allocFrozenWeight). With `threads: 2` a Worker on the same shared memory
 * computes half of each product's output rows.
 * see: src/kernels/train_kernels.ts (the definitions), wasm/README.md ("Training products"), train_worker.ts
 */
import { checkDim, checkLength } from "./scalar.ts";
import type { FrozenType, FrozenWeight, TrainKernels } from "./train_kernels.ts";
import { compileKernelsModule, type LoadKernelsOptions, loadWasmKernels, type WasmKernels } from "./wasm.ts";
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

/**
 * The control block shared with the helper thread (train_worker.ts): Int32 slots SEQ (bumped by the caller to start
 * a call), DONE (the worker stores the SEQ it finished), OP, FAILED; then N_ARGS f64 arguments from byte 8*ARGS.
 */
export const TRAIN_CTRL = {
  SEQ: 0,
  DONE: 1,
  OP: 2,
  FAILED: 3,
  ARGS: 4,
  N_ARGS: 9,
  OP_FORWARD: 1,
  OP_BACKWARD_INPUT: 2,
  OP_BACKWARD_WEIGHT: 3,
  OP_EXIT: 4,
} as const;

/** The message that starts a helper thread. */
export interface TrainWorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
}

/** Default WasmTrainKernelsOptions.maxResidentBytes: 3 GiB of the 4 GiB memory. */
export const DEFAULT_MAX_RESIDENT_BYTES: number = 3 * 2 ** 30;

/**
 * Below this many multiply-adds (~0.1 ms of work) a call runs on the calling thread alone: at 2^21 (LoRA r 8 at
 * 2048 × 128) splitting cost ~1.5x the CPU time of one thread in the bench, at 2^23 and up ~1.0–1.1x.
 */
const MIN_PARALLEL_MACS = 1 << 22;

type Args9 = [number, number, number, number, number, number, number, number, number];
type TrainOp =
  | typeof TRAIN_CTRL.OP_FORWARD
  | typeof TRAIN_CTRL.OP_BACKWARD_INPUT
  | typeof TRAIN_CTRL.OP_BACKWARD_WEIGHT;

interface Helper {
  worker: Worker;
  ctrl: Int32Array;
  args: Float64Array;
  scratch: number;
}

/** Options of createWasmTrainKernels. */
export interface WasmTrainKernelsOptions extends LoadKernelsOptions {
  /**
   * 1 (default) or 2: with 2, a Worker shares the instance's memory and computes the second half of each product's
   * output rows while the calling thread computes the first (the calling thread blocks in Atomics.wait meanwhile).
   * Call close() when done so the Worker ends.
   */
  threads?: 1 | 2;
  /**
   * Bytes of frozen weights kept resident in WASM memory (default 3 GiB, leaving 1 GiB of the 4 GiB for per-call
   * copies); weights past it are copied in per call.
   */
  maxResidentBytes?: number;
  /**
   * An instance to run on (default: a new one). Its arena must not be reset below the allocations made here
   * (scratch and resident frozen weights stay allocated for this object's lifetime).
   */
  kernels?: WasmKernels;
}

/** Loads (or reuses) a kernels instance and wraps its training exports. */
export async function createWasmTrainKernels(options: WasmTrainKernelsOptions = {}): Promise<WasmTrainKernels> {
  const threads = options.threads ?? 1;
  if (threads !== 1 && threads !== 2) {
    throw new RangeError(`Cannot create WASM train kernels: threads must be 1 or 2, got ${threads}`);
  }
  const kernels = options.kernels ?? await loadWasmKernels(options);
  const k = new WasmTrainKernels(kernels, options.maxResidentBytes);
  if (threads === 2) await k.startHelper(options.module ?? await compileKernelsModule());
  return k;
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
 * TrainKernels on one WASM instance (and optionally a helper Worker on the same memory). Not re-entrant (one call at
 * a time per instance); frozen weights must not be mutated after their first use (they are cached by object
 * identity and never re-read).
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
  #helper?: Helper;
  #parallelCalls = 0;

  /** Frozen weights beyond this many bytes are copied in per call instead of kept (the memory is 4 GiB at most). */
  readonly maxResidentBytes: number;

  constructor(kernels: WasmKernels, maxResidentBytes = DEFAULT_MAX_RESIDENT_BYTES) {
    if (!(maxResidentBytes >= 0)) {
      throw new RangeError(`Cannot create WASM train kernels: maxResidentBytes ${maxResidentBytes} is negative`);
    }
    this.maxResidentBytes = maxResidentBytes;
    const raw = kernels.raw as unknown as Partial<TrainKernelExports>;
    if (typeof raw.trainMatmul !== "function" || typeof raw.trainScratchBytes !== "function") {
      throw new TypeError("Cannot create WASM train kernels: kernels.wasm has no training exports (rebuild it)");
    }
    this.kernels = kernels;
    this.raw = raw as TrainKernelExports;
    this.scratch = kernels.arena.alloc(this.raw.trainScratchBytes(), 64);
  }

  /** Threads each product runs on (1, or 2 once startHelper() has run). */
  get threads(): number {
    return this.#helper ? 2 : 1;
  }

  /**
   * Starts the helper thread (createWasmTrainKernels({ threads: 2 }) calls this): a Worker instantiating `module`
   * (the module of this instance) on the same shared memory, with its own scratch.
   */
  async startHelper(module: WebAssembly.Module): Promise<void> {
    if (this.#helper) return;
    const control = new SharedArrayBuffer(8 * (TRAIN_CTRL.ARGS + TRAIN_CTRL.N_ARGS));
    const ctrl = new Int32Array(control, 0, TRAIN_CTRL.ARGS);
    const args = new Float64Array(control, 8 * TRAIN_CTRL.ARGS, TRAIN_CTRL.N_ARGS);
    const scratch = this.kernels.arena.alloc(this.raw.trainScratchBytes(), 64);
    const worker = new Worker(new URL("./train_worker.ts", import.meta.url).href, { type: "module" });
    try {
      await new Promise<void>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent<{ type: string; message?: string }>) => {
          if (e.data.type === "ready") resolve();
          else reject(new Error(`Cannot start training helper thread: ${e.data.message}`));
        };
        worker.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`Cannot start training helper thread: ${e.message}`));
        };
        const init: TrainWorkerInit = { module, memory: this.kernels.memory, control };
        worker.postMessage(init);
      });
    } catch (e) {
      worker.terminate();
      throw e;
    }
    worker.onmessage = null;
    this.#helper = { worker, ctrl, args, scratch };
  }

  /** Ends the helper thread, if any (products then run on the calling thread). */
  close(): void {
    const h = this.#helper;
    if (!h) return;
    this.#helper = undefined;
    Atomics.store(h.ctrl, TRAIN_CTRL.OP, TRAIN_CTRL.OP_EXIT);
    Atomics.add(h.ctrl, TRAIN_CTRL.SEQ, 1);
    Atomics.notify(h.ctrl, TRAIN_CTRL.SEQ);
    h.worker.terminate();
  }

  #call(op: TrainOp, a: Args9): void {
    if (op === TRAIN_CTRL.OP_FORWARD) this.raw.trainMatmul(...a);
    else if (op === TRAIN_CTRL.OP_BACKWARD_INPUT) this.raw.trainMatmulBackwardInput(...a);
    else this.raw.trainMatmulBackwardWeight(...a);
  }

  /**
   * Runs op over output rows [0, M): on this thread alone, or split with the helper at a multiple of 6 rows (the
   * register tile). argsFor(r0, r1, scratch) gives the export's arguments for rows [r0, r1). Split calls give the
   * same bits as one call.
   */
  #run(op: TrainOp, M: number, macs: number, argsFor: (r0: number, r1: number, scratch: number) => Args9): void {
    const h = this.#helper;
    if (!h || M < 12 || macs < MIN_PARALLEL_MACS) {
      this.#call(op, argsFor(0, M, this.scratch));
      return;
    }
    const mid = Math.min(M, Math.ceil(M / 12) * 6);
    this.#parallelCalls++;
    h.args.set(argsFor(mid, M, h.scratch));
    Atomics.store(h.ctrl, TRAIN_CTRL.OP, op);
    const seq = (Atomics.add(h.ctrl, TRAIN_CTRL.SEQ, 1) + 1) | 0;
    Atomics.notify(h.ctrl, TRAIN_CTRL.SEQ);
    try {
      this.#call(op, argsFor(0, mid, this.scratch));
    } finally {
      for (let d = Atomics.load(h.ctrl, TRAIN_CTRL.DONE); d !== seq; d = Atomics.load(h.ctrl, TRAIN_CTRL.DONE)) {
        Atomics.wait(h.ctrl, TRAIN_CTRL.DONE, d, 1000);
      }
    }
    if (Atomics.load(h.ctrl, TRAIN_CTRL.FAILED) !== 0) {
      throw new Error("Cannot run training product: the helper thread failed; close() and run on one thread");
    }
  }

  /** Products that were split with the helper thread so far. */
  get parallelCalls(): number {
    return this.#parallelCalls;
  }

  /** Bytes of frozen weights kept resident in WASM memory. */
  get residentBytes(): number {
    return this.#residentBytes;
  }

  /**
   * The pointer of a frozen weight's bytes in WASM memory, copying them in on first use (validated); undefined when
   * keeping it would pass maxResidentBytes (the products then copy it in per call, which costs little next to a
   * product at training batch sizes).
   */
  resident(w: FrozenWeight): number | undefined {
    const have = this.#resident.get(w);
    if (have !== undefined) return have;
    const nBytes = frozenWeightBytes("use frozen weight", w.type, w.nOut, w.nIn);
    checkLength("use frozen weight", `${w.type} bytes`, w.bytes, nBytes);
    if (this.#residentBytes + nBytes > this.maxResidentBytes) return undefined;
    const ptr = this.kernels.arena.put(w.bytes, 64);
    this.#resident.set(w, ptr);
    this.#residentBytes += nBytes;
    return ptr;
  }

  /**
   * A frozen weight whose bytes live in WASM memory from the start: fill `bytes` (e.g. read the file straight into
   * it) and pass it to the frozen products, which then use it in place. This avoids holding a weight twice (JS copy +
   * resident copy), which matters for 7B-sized bases. Counts toward residentBytes but is not limited by
   * maxResidentBytes; RangeError when the 4 GiB memory cannot hold it. The view stays valid when the memory grows.
   */
  allocFrozenWeight(type: FrozenType, nOut: number, nIn: number): FrozenWeight {
    const nBytes = frozenWeightBytes("allocate frozen weight", type, nOut, nIn);
    const ptr = this.kernels.arena.alloc(nBytes, 64);
    const w: FrozenWeight = { type, bytes: this.kernels.arena.u8(ptr, nBytes), nOut, nIn };
    this.#resident.set(w, ptr);
    this.#residentBytes += nBytes;
    return w;
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
    checkF32(what, { y, x, w });
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "x", x, rows * nIn);
    checkLength(what, "w", w, nOut * nIn);
    checkLength(what, "y", y, rows * nOut);
    checkNoOverlap(what, "y", y, "x", x);
    checkNoOverlap(what, "y", y, "w", w);
    this.#forward(y, x, () => this.kernels.arena.put(w), TRAIN_TYPE_CODES.F32, rows, nIn, nOut);
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
    checkF32(what, { dx, dy, w });
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "dy", dy, rows * nOut);
    checkLength(what, "w", w, nOut * nIn);
    checkLength(what, "dx", dx, rows * nIn);
    checkNoOverlap(what, "dx", dx, "dy", dy);
    checkNoOverlap(what, "dx", dx, "w", w);
    this.#backwardInput(dx, dy, () => this.kernels.arena.put(w), TRAIN_TYPE_CODES.F32, rows, nIn, nOut);
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
    checkF32(what, { dw, dy, x });
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "dy", dy, rows * nOut);
    checkLength(what, "x", x, rows * nIn);
    checkLength(what, "dw", dw, nOut * nIn);
    checkNoOverlap(what, "dw", dw, "dy", dy);
    checkNoOverlap(what, "dw", dw, "x", x);
    const a = this.kernels.arena;
    this.#temp(() => {
      const dyp = a.put(dy), xp = a.put(x), dwp = a.put(dw);
      this.#run(
        TRAIN_CTRL.OP_BACKWARD_WEIGHT,
        nOut,
        rows * nIn * nOut,
        (o0, o1, sc) => [dyp, xp, dwp, rows, nIn, nOut, o0, o1, sc],
      );
      dw.set(a.f32(dwp, dw.length));
    });
  }

  matmulFrozen(y: Float32Array, x: Float32Array, w: FrozenWeight, rows: number): void {
    const what = "multiply frozen matrix";
    checkF32(what, { y, x });
    checkFrozen(what, w);
    const { nIn, nOut } = w;
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "x", x, rows * nIn);
    checkLength(what, "y", y, rows * nOut);
    checkNoOverlap(what, "y", y, "x", x);
    checkNoOverlap(what, "y", y, "w", w.bytes);
    this.#forward(y, x, this.#frozenPtr(w), TRAIN_TYPE_CODES[w.type], rows, nIn, nOut);
  }

  matmulFrozenBackwardInput(dx: Float32Array, dy: Float32Array, w: FrozenWeight, rows: number): void {
    const what = "multiply frozen input gradient";
    checkF32(what, { dx, dy });
    checkFrozen(what, w);
    const { nIn, nOut } = w;
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "dy", dy, rows * nOut);
    checkLength(what, "dx", dx, rows * nIn);
    checkNoOverlap(what, "dx", dx, "dy", dy);
    checkNoOverlap(what, "dx", dx, "w", w.bytes);
    this.#backwardInput(dx, dy, this.#frozenPtr(w), TRAIN_TYPE_CODES[w.type], rows, nIn, nOut);
  }

  /** Where a frozen weight's bytes are for one call: resident, or put into the call's arena space. */
  #frozenPtr(w: FrozenWeight): () => number {
    const resident = this.resident(w);
    return () => resident ?? this.kernels.arena.put(w.bytes, 64);
  }

  /** Y (rows, nOut) = X @ Wᵀ, W put by `putW` (type code t); shapes checked by the caller. Forward of F32 and frozen. */
  #forward(y: Float32Array, x: Float32Array, putW: () => number, t: number, rows: number, nIn: number, nOut: number) {
    const a = this.kernels.arena;
    this.#temp(() => {
      const wp = putW();
      const xp = a.put(x), yp = a.alloc(4 * y.length);
      this.#run(TRAIN_CTRL.OP_FORWARD, rows, rows * nIn * nOut, (r0, r1, sc) => [xp, wp, t, yp, nIn, nOut, r0, r1, sc]);
      y.set(a.f32(yp, y.length));
    });
  }

  /** dX (rows, nIn) += dY @ W, W put by `putW` (type code t); shapes checked by the caller. */
  #backwardInput(
    dx: Float32Array,
    dy: Float32Array,
    putW: () => number,
    t: number,
    rows: number,
    nIn: number,
    nOut: number,
  ) {
    const a = this.kernels.arena;
    this.#temp(() => {
      const wp = putW();
      const dyp = a.put(dy), dxp = a.put(dx);
      this.#run(
        TRAIN_CTRL.OP_BACKWARD_INPUT,
        rows,
        rows * nIn * nOut,
        (r0, r1, sc) => [dyp, wp, t, dxp, nIn, nOut, r0, r1, sc],
      );
      dx.set(a.f32(dxp, dx.length));
    });
  }
}

/** TypeError unless every array is a Float32Array (a Float64Array of the right length would be misread). */
function checkF32(what: string, arrays: Record<string, unknown>): void {
  for (const [name, a] of Object.entries(arrays)) {
    if (!(a instanceof Float32Array)) throw new TypeError(`Cannot ${what}: ${name} is not a Float32Array`);
  }
}

/** TypeError unless w is a FrozenWeight whose bytes are a Uint8Array. */
function checkFrozen(what: string, w: FrozenWeight): void {
  if (typeof w !== "object" || w === null || !(w.bytes instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${what}: the frozen weight has no Uint8Array bytes`);
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
