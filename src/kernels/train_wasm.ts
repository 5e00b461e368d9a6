/**
 * The WASM SIMD training kernels (wasm/assembly/train.ts) behind the `TrainKernels` interface. Inputs are copied
 * into the instance's memory per call (arena mark/reset: no reallocation once the high-water mark is reached);
 * frozen base weights are copied once and stay resident up to maxResidentBytes, cached by FrozenWeight identity
 * (or are placed there from the start with allocFrozenWeight). With `threads: 2` a Worker on the same shared memory
 * computes half of each product's output rows.
 * see: src/kernels/train_kernels.ts (the definitions), wasm/README.md ("Training products"), train_worker.ts
 */
import { checkDim, checkLength } from "./scalar.ts";
import type { AdamWCoefficients, FrozenType, FrozenWeight, TrainKernels } from "./train_kernels.ts";
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
  /** Bytes of attention scratch per thread for sequences of T rows and head size hs. */
  trainAttentionScratchBytes(T: number, hs: number): number;
  /** Attention forward of units [uStart, uEnd) (unit = sequence · nKvHeads + kv head). */
  trainAttentionForward(
    q: number,
    k: number,
    v: number,
    ao: number,
    p: number,
    pInv: number,
    T: number,
    nHeads: number,
    nKvHeads: number,
    hs: number,
    uStart: number,
    uEnd: number,
    scratch: number,
  ): void;
  /** Attention backward of units [uStart, uEnd) (dq, dk, dv head columns overwritten). */
  trainAttentionBackward(
    q: number,
    k: number,
    v: number,
    p: number,
    pInv: number,
    dao: number,
    dq: number,
    dk: number,
    dv: number,
    T: number,
    nHeads: number,
    nKvHeads: number,
    hs: number,
    uStart: number,
    uEnd: number,
    scratch: number,
  ): void;
  /** Cross-entropy forward of rows [r0, r1): logits -> exp, invSum (f32), loss (f64) per row. */
  trainCrossEntropyForward(
    logits: number,
    targets: number,
    invSum: number,
    loss: number,
    V: number,
    r0: number,
    r1: number,
  ): void;
  /** Cross-entropy backward of rows [r0, r1), in place. */
  trainCrossEntropyBackward(
    logits: number,
    targets: number,
    invSum: number,
    V: number,
    scale: number,
    r0: number,
    r1: number,
  ): void;
  /** RMSNorm forward of rows [r0, r1). */
  trainRmsNormForward(
    x: number,
    w: number,
    y: number,
    r: number,
    dim: number,
    eps: number,
    r0: number,
    r1: number,
  ): void;
  /** RMSNorm backward of rows [r0, r1) (dw = 0: no weight gradient). */
  trainRmsNormBackward(
    dy: number,
    x: number,
    r: number,
    w: number,
    dx: number,
    dw: number,
    dim: number,
    r0: number,
    r1: number,
  ): void;
  /** One AdamW update of n elements (f32 arithmetic). */
  trainAdamw(
    p: number,
    g: number,
    m: number,
    v: number,
    n: number,
    decay: number,
    b1: number,
    ob1: number,
    b2: number,
    ob2: number,
    negStep: number,
    bc2Sqrt: number,
    eps: number,
  ): void;
  /** Dropout backward of n elements, accumulating into dx. */
  trainDropoutBackward(dx: number, dxd: number, mask: number, n: number, inv: number): void;
  /** RoPE of rows [r0, r1) in place (sign 1 forward, −1 backward). */
  trainRope(
    x: number,
    cos: number,
    sin: number,
    T: number,
    nHeads: number,
    hs: number,
    sign: number,
    r0: number,
    r1: number,
  ): void;
  /** Inverted dropout of n elements (xoshiro128** state: 4 u32 at `state`, advanced and stored back). */
  trainDropout(x: number, xd: number, mask: number, n: number, keep: number, inv: number, state: number): void;
  /** SwiGLU forward of elements [i0, i1). */
  trainSwigluForward(g: number, u: number, sg: number, act: number, i0: number, i1: number): void;
  /** SwiGLU backward of elements [i0, i1). */
  trainSwigluBackward(
    dact: number,
    silu: number,
    sg: number,
    u: number,
    dg: number,
    du: number,
    i0: number,
    i1: number,
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
 * OP_* codes index TRAIN_OP_EXPORTS (the export the helper runs with the arguments).
 */
export const TRAIN_CTRL = {
  SEQ: 0,
  DONE: 1,
  OP: 2,
  FAILED: 3,
  ARGS: 4,
  N_ARGS: 16,
  OP_FORWARD: 1,
  OP_BACKWARD_INPUT: 2,
  OP_BACKWARD_WEIGHT: 3,
  OP_EXIT: 4,
  OP_ATTENTION_FORWARD: 5,
  OP_ATTENTION_BACKWARD: 6,
  OP_CROSS_ENTROPY_FORWARD: 7,
  OP_CROSS_ENTROPY_BACKWARD: 8,
  OP_SWIGLU_FORWARD: 9,
  OP_SWIGLU_BACKWARD: 10,
  OP_RMS_NORM_FORWARD: 11,
  OP_RMS_NORM_BACKWARD: 12,
  OP_ROPE: 13,
} as const;

/** The export each OP code runs (index = code; 0 and OP_EXIT run nothing). */
export const TRAIN_OP_EXPORTS: readonly (keyof TrainKernelExports | null)[] = [
  null,
  "trainMatmul",
  "trainMatmulBackwardInput",
  "trainMatmulBackwardWeight",
  null,
  "trainAttentionForward",
  "trainAttentionBackward",
  "trainCrossEntropyForward",
  "trainCrossEntropyBackward",
  "trainSwigluForward",
  "trainSwigluBackward",
  "trainRmsNormForward",
  "trainRmsNormBackward",
  "trainRope",
];

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

type TrainOp = number;

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
   * output rows (and of the attention, cross-entropy, SwiGLU and RMSNorm work) while the calling thread computes the first
   * (the calling thread blocks in Atomics.wait meanwhile). Call close() when done so the Worker ends.
   */
  threads?: 1 | 2;
  /**
   * Bytes of frozen weights and allocF32 activations kept in WASM memory (default 3 GiB, leaving 1 GiB of the 4 GiB
   * for per-call copies); weights past it are copied in per call, activations past it are plain arrays.
   */
  maxResidentBytes?: number;
  /**
   * An instance to run on (default: a new one). Its arena must not be reset below the allocations made here
   * (scratch, resident frozen weights and allocF32 buffers stay allocated for this object's lifetime).
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

/**
 * TrainKernels on one WASM instance (and optionally a helper Worker on the same memory). Not re-entrant (one call at
 * a time per instance); frozen weights must not be mutated after their first use (they are cached by object
 * identity and never re-read). Arrays from allocF32 live in the instance's memory: calls use them in place.
 */
export class WasmTrainKernels implements TrainKernels {
  readonly name = "wasm";
  readonly kernels: WasmKernels;
  /** The raw training exports, for callers that keep their buffers in `kernels.arena` (no copies). */
  readonly raw: TrainKernelExports;
  /** Scratch for one call at a time (trainScratchBytes(), 64-aligned). */
  readonly scratch: number;
  readonly #resident = new WeakMap<FrozenWeight, number>();
  /** The memory's buffer objects that allocF32 views were made on (a grow gives a new object, same bytes). */
  readonly #own = new WeakSet<ArrayBufferLike>();
  #residentBytes = 0;
  #activationBytes = 0;
  #helper?: Helper;
  #parallelCalls = 0;
  /** Outputs of the current call that live outside WASM memory: copied back when it ends. */
  #copyBack: [ArrayBufferView, number][] = [];

  /** Frozen weights beyond this many bytes are copied in per call instead of kept (the memory is 4 GiB at most). */
  readonly maxResidentBytes: number;

  constructor(kernels: WasmKernels, maxResidentBytes = DEFAULT_MAX_RESIDENT_BYTES) {
    if (!(maxResidentBytes >= 0)) {
      throw new RangeError(`Cannot create WASM train kernels: maxResidentBytes ${maxResidentBytes} is negative`);
    }
    this.maxResidentBytes = maxResidentBytes;
    const raw = kernels.raw as unknown as Partial<TrainKernelExports>;
    if (typeof raw.trainMatmul !== "function" || typeof raw.trainDropout !== "function") {
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

  #call(op: TrainOp, a: number[]): void {
    (this.raw[TRAIN_OP_EXPORTS[op]!] as (...args: number[]) => void)(...a);
  }

  /**
   * Runs op over work units [0, M) (output rows, attention units, elements): on this thread alone, or split with the
   * helper at a multiple of `align` units (6 = the product's register tile). argsFor(u0, u1, scratch) gives the
   * export's arguments for units [u0, u1). Split calls give the same bits as one call.
   */
  #run(
    op: TrainOp,
    M: number,
    macs: number,
    argsFor: (u0: number, u1: number, scratch: number) => number[],
    align = 6,
    helperScratch?: number,
  ): void {
    const h = this.#helper;
    if (!h || M < 2 * align || macs < MIN_PARALLEL_MACS) {
      this.#call(op, argsFor(0, M, this.scratch));
      return;
    }
    const mid = Math.min(M, Math.ceil(M / (2 * align)) * align);
    this.#parallelCalls++;
    h.args.set(argsFor(mid, M, helperScratch ?? h.scratch));
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
      throw new Error("Cannot run training kernel: the helper thread failed; close() and run on one thread");
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

  /** Bytes of allocF32 buffers placed in WASM memory. */
  get activationBytes(): number {
    return this.#activationBytes;
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
    if (this.#residentBytes + this.#activationBytes + nBytes > this.maxResidentBytes) return undefined;
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

  /**
   * A zeroed f32 array in WASM memory (calls use it in place: no copies), while resident weights and earlier
   * buffers stay within maxResidentBytes; past that a plain Float32Array. Never freed (allocate once, reuse).
   */
  allocF32(n: number): Float32Array {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`Cannot allocate activations: size ${n} is invalid`);
    const nBytes = 4 * n;
    if (this.#residentBytes + this.#activationBytes + nBytes > this.maxResidentBytes) return new Float32Array(n);
    const ptr = this.kernels.arena.alloc(nBytes, 64);
    this.#activationBytes += nBytes;
    const a = this.kernels.arena.f32(ptr, n);
    this.#own.add(a.buffer);
    a.fill(0);
    return a;
  }

  /** Whether `a` is a view of this instance's memory (made by allocF32 or a subarray of one). */
  #inWasm(a: ArrayBufferView): boolean {
    return this.#own.has(a.buffer);
  }

  /** The pointer of an input for this call: in place, or copied into the call's arena space. */
  #in(a: ArrayBufferView): number {
    return this.#inWasm(a) ? a.byteOffset : this.kernels.arena.put(a);
  }

  /** The pointer of an output for this call; one outside WASM memory is copied in when `read` and back at the end. */
  #out(a: ArrayBufferView, read: boolean): number {
    if (this.#inWasm(a)) return a.byteOffset;
    const ptr = read ? this.kernels.arena.put(a) : this.kernels.arena.alloc(a.byteLength);
    this.#copyBack.push([a, ptr]);
    return ptr;
  }

  /** Runs fn with per-call arena allocations released afterwards (the memory keeps its high-water size). */
  #temp(fn: () => void): void {
    const arena = this.kernels.arena;
    const m = arena.mark();
    this.#copyBack.length = 0;
    try {
      fn();
      for (const [a, ptr] of this.#copyBack) {
        new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(arena.u8(ptr, a.byteLength));
      }
    } finally {
      this.#copyBack.length = 0;
      arena.reset(m);
    }
  }

  /** RangeError when an output shares bytes with an input (WASM memory views compare by pointer). */
  #checkNoOverlap(what: string, out: string, a: ArrayBufferView, input: string, b: ArrayBufferView): void {
    const same = a.buffer === b.buffer || (this.#inWasm(a) && this.#inWasm(b));
    if (same && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength) {
      throw new RangeError(`Cannot ${what}: ${out} overlaps ${input}`);
    }
  }

  matmulF32(y: Float32Array, x: Float32Array, w: Float32Array, rows: number, nIn: number, nOut: number): void {
    const what = "multiply training matrix";
    checkF32(what, { y, x, w });
    checkShape(what, rows, nIn, nOut);
    checkLength(what, "x", x, rows * nIn);
    checkLength(what, "w", w, nOut * nIn);
    checkLength(what, "y", y, rows * nOut);
    this.#checkNoOverlap(what, "y", y, "x", x);
    this.#checkNoOverlap(what, "y", y, "w", w);
    this.#forward(y, x, () => this.#in(w), TRAIN_TYPE_CODES.F32, rows, nIn, nOut);
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
    this.#checkNoOverlap(what, "dx", dx, "dy", dy);
    this.#checkNoOverlap(what, "dx", dx, "w", w);
    this.#backwardInput(dx, dy, () => this.#in(w), TRAIN_TYPE_CODES.F32, rows, nIn, nOut);
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
    this.#checkNoOverlap(what, "dw", dw, "dy", dy);
    this.#checkNoOverlap(what, "dw", dw, "x", x);
    this.#temp(() => {
      const dyp = this.#in(dy), xp = this.#in(x), dwp = this.#out(dw, true);
      this.#run(
        TRAIN_CTRL.OP_BACKWARD_WEIGHT,
        nOut,
        rows * nIn * nOut,
        (o0, o1, sc) => [dyp, xp, dwp, rows, nIn, nOut, o0, o1, sc],
      );
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
    this.#checkNoOverlap(what, "y", y, "x", x);
    this.#checkNoOverlap(what, "y", y, "w", w.bytes);
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
    this.#checkNoOverlap(what, "dx", dx, "dy", dy);
    this.#checkNoOverlap(what, "dx", dx, "w", w.bytes);
    this.#backwardInput(dx, dy, this.#frozenPtr(w), TRAIN_TYPE_CODES[w.type], rows, nIn, nOut);
  }

  /** Where a frozen weight's bytes are for one call: resident, or put into the call's arena space. */
  #frozenPtr(w: FrozenWeight): () => number {
    const resident = this.resident(w);
    return () => resident ?? this.kernels.arena.put(w.bytes, 64);
  }

  /** Y (rows, nOut) = X @ Wᵀ, W put by `putW` (type code t); shapes checked by the caller. Forward of F32 and frozen. */
  #forward(y: Float32Array, x: Float32Array, putW: () => number, t: number, rows: number, nIn: number, nOut: number) {
    this.#temp(() => {
      const wp = putW();
      const xp = this.#in(x), yp = this.#out(y, false);
      this.#run(TRAIN_CTRL.OP_FORWARD, rows, rows * nIn * nOut, (r0, r1, sc) => [xp, wp, t, yp, nIn, nOut, r0, r1, sc]);
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
    this.#temp(() => {
      const wp = putW();
      const dyp = this.#in(dy), dxp = this.#out(dx, true);
      this.#run(
        TRAIN_CTRL.OP_BACKWARD_INPUT,
        rows,
        rows * nIn * nOut,
        (r0, r1, sc) => [dyp, wp, t, dxp, nIn, nOut, r0, r1, sc],
      );
    });
  }

  /** Attention scratch for both threads: [this thread's, the helper's]. */
  #attentionScratch(T: number, hs: number): [number, number] {
    const n = this.raw.trainAttentionScratchBytes(T, hs), a = this.kernels.arena;
    const mine = a.alloc(n, 64);
    return [mine, this.#helper ? a.alloc(n, 64) : mine];
  }

  attentionForward(
    ao: Float32Array,
    p: Float32Array,
    pInv: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    B: number,
    T: number,
    nHeads: number,
    nKvHeads: number,
    hs: number,
  ): void {
    const what = "run training attention";
    checkF32(what, { ao, p, pInv, q, k, v });
    checkAttention(what, B, T, nHeads, nKvHeads, hs);
    const N = B * T, dim = nHeads * hs, kvDim = nKvHeads * hs;
    checkLength(what, "q", q, N * dim);
    checkLength(what, "ao", ao, N * dim);
    checkLength(what, "k", k, N * kvDim);
    checkLength(what, "v", v, N * kvDim);
    checkLength(what, "p", p, B * nHeads * T * T);
    checkLength(what, "pInv", pInv, B * nHeads * T);
    for (const [name, out] of [["ao", ao], ["p", p], ["pInv", pInv]] as const) {
      for (const [iname, inp] of [["q", q], ["k", k], ["v", v]] as const) {
        this.#checkNoOverlap(what, name, out, iname, inp);
      }
    }
    this.#temp(() => {
      const qp = this.#in(q), kp = this.#in(k), vp = this.#in(v);
      const aop = this.#out(ao, false), pp = this.#out(p, true), ip = this.#out(pInv, false);
      const [s0, s1] = this.#attentionScratch(T, hs);
      this.#run(
        TRAIN_CTRL.OP_ATTENTION_FORWARD,
        B * nKvHeads,
        B * nHeads * T * T * hs,
        (u0, u1, sc) => [qp, kp, vp, aop, pp, ip, T, nHeads, nKvHeads, hs, u0, u1, sc === this.scratch ? s0 : sc],
        1,
        s1,
      );
    });
  }

  attentionBackward(
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    dao: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    p: Float32Array,
    pInv: Float32Array,
    B: number,
    T: number,
    nHeads: number,
    nKvHeads: number,
    hs: number,
  ): void {
    const what = "run training attention backward";
    checkF32(what, { dq, dk, dv, dao, q, k, v, p, pInv });
    checkAttention(what, B, T, nHeads, nKvHeads, hs);
    const N = B * T, dim = nHeads * hs, kvDim = nKvHeads * hs;
    for (const [name, a, n] of [["dq", dq, dim], ["dao", dao, dim], ["q", q, dim], ["dk", dk, kvDim]] as const) {
      checkLength(what, name, a, N * n);
    }
    for (const [name, a] of [["dv", dv], ["k", k], ["v", v]] as const) checkLength(what, name, a, N * kvDim);
    checkLength(what, "p", p, B * nHeads * T * T);
    checkLength(what, "pInv", pInv, B * nHeads * T);
    const ins = [["dao", dao], ["q", q], ["k", k], ["v", v], ["p", p], ["pInv", pInv]] as const;
    for (const [name, out] of [["dq", dq], ["dk", dk], ["dv", dv]] as const) {
      for (const [iname, inp] of ins) this.#checkNoOverlap(what, name, out, iname, inp);
    }
    this.#checkNoOverlap(what, "dq", dq, "dk", dk);
    this.#checkNoOverlap(what, "dq", dq, "dv", dv);
    this.#checkNoOverlap(what, "dk", dk, "dv", dv);
    this.#temp(() => {
      const qp = this.#in(q), kp = this.#in(k), vp = this.#in(v), pp = this.#in(p), ip = this.#in(pInv);
      const daop = this.#in(dao);
      const dqp = this.#out(dq, false), dkp = this.#out(dk, false), dvp = this.#out(dv, false);
      const [s0, s1] = this.#attentionScratch(T, hs);
      this.#run(
        TRAIN_CTRL.OP_ATTENTION_BACKWARD,
        B * nKvHeads,
        2 * B * nHeads * T * T * hs,
        (u0, u1, sc) => [
          qp,
          kp,
          vp,
          pp,
          ip,
          daop,
          dqp,
          dkp,
          dvp,
          T,
          nHeads,
          nKvHeads,
          hs,
          u0,
          u1,
          sc === this.scratch ? s0 : sc,
        ],
        1,
        s1,
      );
    });
  }

  crossEntropyForward(logits: Float32Array, invSum: Float32Array, targets: Int32Array, m: number, V: number): number {
    const what = "run training cross-entropy";
    checkF32(what, { logits, invSum });
    checkCrossEntropy(what, logits, invSum, targets, m, V);
    this.#checkNoOverlap(what, "invSum", invSum, "logits", logits);
    let total = 0;
    this.#temp(() => {
      const lp = this.#out(logits, true), ip = this.#out(invSum, false), tp = this.#in(targets);
      const lossp = this.kernels.arena.alloc(8 * m, 8);
      this.#run(TRAIN_CTRL.OP_CROSS_ENTROPY_FORWARD, m, 4 * m * V, (r0, r1) => [lp, tp, ip, lossp, V, r0, r1], 1);
      const loss = new Float64Array(this.kernels.memory.buffer, lossp, m);
      for (let i = 0; i < m; i++) total += loss[i];
    });
    return total / m;
  }

  crossEntropyBackward(
    expLogits: Float32Array,
    invSum: Float32Array,
    targets: Int32Array,
    m: number,
    V: number,
    scale: number,
  ): void {
    const what = "run training cross-entropy backward";
    checkF32(what, { expLogits, invSum });
    checkCrossEntropy(what, expLogits, invSum, targets, m, V);
    this.#checkNoOverlap(what, "expLogits", expLogits, "invSum", invSum);
    this.#temp(() => {
      const lp = this.#out(expLogits, true), ip = this.#in(invSum), tp = this.#in(targets);
      this.#run(TRAIN_CTRL.OP_CROSS_ENTROPY_BACKWARD, m, m * V, (r0, r1) => [lp, tp, ip, V, scale, r0, r1], 1);
    });
  }

  rmsNormForward(
    y: Float32Array,
    r: Float32Array,
    x: Float32Array,
    w: Float32Array,
    n: number,
    dim: number,
    eps: number,
  ): void {
    const what = "run training RMSNorm";
    checkF32(what, { y, r, x, w });
    checkDim(what, "n", n);
    checkDim(what, "dim", dim);
    checkLength(what, "x", x, n * dim);
    checkLength(what, "y", y, n * dim);
    checkLength(what, "r", r, n);
    checkLength(what, "w", w, dim);
    for (const [name, out] of [["y", y], ["r", r]] as const) {
      this.#checkNoOverlap(what, name, out, "x", x);
      this.#checkNoOverlap(what, name, out, "w", w);
    }
    this.#temp(() => {
      const xp = this.#in(x), wp = this.#in(w), yp = this.#out(y, false), rp = this.#out(r, false);
      this.#run(TRAIN_CTRL.OP_RMS_NORM_FORWARD, n, 16 * n * dim, (r0, r1) => [xp, wp, yp, rp, dim, eps, r0, r1], 1);
    });
  }

  rmsNormBackward(
    dx: Float32Array,
    dw: Float32Array | undefined,
    dy: Float32Array,
    x: Float32Array,
    r: Float32Array,
    w: Float32Array,
    n: number,
    dim: number,
  ): void {
    const what = "run training RMSNorm backward";
    checkF32(what, { dx, dy, x, r, w, ...(dw ? { dw } : {}) });
    checkDim(what, "n", n);
    checkDim(what, "dim", dim);
    for (const [name, a] of [["dx", dx], ["dy", dy], ["x", x]] as const) checkLength(what, name, a, n * dim);
    checkLength(what, "r", r, n);
    checkLength(what, "w", w, dim);
    if (dw) checkLength(what, "dw", dw, dim);
    const ins = [["dy", dy], ["x", x], ["r", r], ["w", w]] as const;
    for (const [name, out] of [["dx", dx], ...(dw ? [["dw", dw] as const] : [])] as const) {
      for (const [iname, inp] of ins) this.#checkNoOverlap(what, name, out, iname, inp);
    }
    if (dw) this.#checkNoOverlap(what, "dw", dw, "dx", dx);
    this.#temp(() => {
      const dyp = this.#in(dy), xp = this.#in(x), rp = this.#in(r), wp = this.#in(w);
      const dxp = this.#out(dx, true), dwp = dw ? this.#out(dw, true) : 0;
      // rows split between threads only without dw (both would add into it)
      const args = (r0: number, r1: number) => [dyp, xp, rp, wp, dxp, dwp, dim, r0, r1];
      if (dw) this.raw.trainRmsNormBackward(dyp, xp, rp, wp, dxp, dwp, dim, 0, n);
      else this.#run(TRAIN_CTRL.OP_RMS_NORM_BACKWARD, n, 16 * n * dim, args, 1);
    });
  }

  rope(
    x: Float32Array,
    B: number,
    T: number,
    nHeads: number,
    hs: number,
    cos: Float32Array,
    sin: Float32Array,
    sign: 1 | -1,
  ): void {
    const what = "run training RoPE";
    checkF32(what, { x, cos, sin });
    for (const [name, v] of [["B", B], ["T", T], ["nHeads", nHeads], ["hs", hs]] as const) checkDim(what, name, v);
    if (hs % 2 !== 0) throw new RangeError(`Cannot ${what}: head size ${hs} is odd`);
    if (sign !== 1 && sign !== -1) throw new RangeError(`Cannot ${what}: sign ${sign} is not 1 or -1`);
    if (B * T * nHeads * hs >= 2 ** 30) throw new RangeError(`Cannot ${what}: x exceeds the 2^30 WASM limit`);
    checkLength(what, "x", x, B * T * nHeads * hs);
    checkLength(what, "cos", cos, T * (hs / 2));
    checkLength(what, "sin", sin, T * (hs / 2));
    this.#checkNoOverlap(what, "x", x, "cos", cos);
    this.#checkNoOverlap(what, "x", x, "sin", sin);
    this.#temp(() => {
      const xp = this.#out(x, true), cp = this.#in(cos), sp = this.#in(sin);
      this.#run(
        TRAIN_CTRL.OP_ROPE,
        B * T,
        8 * B * T * nHeads * hs,
        (r0, r1) => [xp, cp, sp, T, nHeads, hs, sign, r0, r1],
        1,
      );
    });
  }

  dropout(xd: Float32Array, mask: Uint8Array, x: Float32Array, n: number, p: number, state: Uint32Array): void {
    const what = "run training dropout";
    checkF32(what, { xd, x });
    if (!(mask instanceof Uint8Array)) throw new TypeError(`Cannot ${what}: mask is not a Uint8Array`);
    if (!(state instanceof Uint32Array) || state.length !== 4) {
      throw new TypeError(`Cannot ${what}: state must be a Uint32Array of 4 words`);
    }
    checkDim(what, "n", n);
    if (!(p >= 0 && p < 1)) throw new RangeError(`Cannot ${what}: p ${p} is not in [0, 1)`);
    for (const [name, a] of [["xd", xd], ["mask", mask], ["x", x]] as const) checkLength(what, name, a, n);
    this.#checkNoOverlap(what, "xd", xd, "x", x);
    this.#checkNoOverlap(what, "mask", mask, "x", x);
    this.#checkNoOverlap(what, "mask", mask, "xd", xd);
    const keep = 1 - p;
    this.#temp(() => {
      const xp = this.#in(x), xdp = this.#out(xd, false), mp = this.#out(mask, false), sp = this.#out(state, true);
      this.raw.trainDropout(xp, xdp, mp, n, keep, 1 / keep, sp);
    });
  }

  dropoutBackward(dx: Float32Array, dxd: Float32Array, mask: Uint8Array, n: number, p: number): void {
    const what = "run training dropout backward";
    checkF32(what, { dx, dxd });
    if (!(mask instanceof Uint8Array)) throw new TypeError(`Cannot ${what}: mask is not a Uint8Array`);
    checkDim(what, "n", n);
    if (!(p >= 0 && p < 1)) throw new RangeError(`Cannot ${what}: p ${p} is not in [0, 1)`);
    for (const [name, a] of [["dx", dx], ["dxd", dxd], ["mask", mask]] as const) checkLength(what, name, a, n);
    this.#checkNoOverlap(what, "dx", dx, "dxd", dxd);
    this.#checkNoOverlap(what, "dx", dx, "mask", mask);
    this.#temp(() => {
      const dxp = this.#out(dx, true), dp = this.#in(dxd), mp = this.#in(mask);
      this.raw.trainDropoutBackward(dxp, dp, mp, n, 1 / (1 - p));
    });
  }

  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, c: AdamWCoefficients): void {
    const what = "run AdamW update";
    checkF32(what, { p, g, m, v });
    checkDim(what, "n", n);
    for (const [name, a] of [["p", p], ["g", g], ["m", m], ["v", v]] as const) checkLength(what, name, a, n);
    for (const [name, out] of [["p", p], ["m", m], ["v", v]] as const) this.#checkNoOverlap(what, name, out, "g", g);
    this.#checkNoOverlap(what, "p", p, "m", m);
    this.#checkNoOverlap(what, "p", p, "v", v);
    this.#checkNoOverlap(what, "m", m, "v", v);
    const f = Math.fround;
    for (const [name, x] of Object.entries(c)) {
      if (typeof x !== "number" || f(x) !== x && !Number.isNaN(x)) {
        throw new RangeError(`Cannot ${what}: coefficient ${name} ${x} is not an f32 value`);
      }
    }
    this.#temp(() => {
      const pp = this.#out(p, true), gp = this.#in(g), mp = this.#out(m, true), vp = this.#out(v, true);
      const { decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, negStepSize, bc2Sqrt, eps } = c;
      this.raw.trainAdamw(
        pp,
        gp,
        mp,
        vp,
        n,
        decay,
        beta1,
        oneMinusBeta1,
        beta2,
        oneMinusBeta2,
        negStepSize,
        bc2Sqrt,
        eps,
      );
    });
  }

  swigluForward(g: Float32Array, sg: Float32Array, act: Float32Array, u: Float32Array, n: number): void {
    const what = "run training SwiGLU";
    checkF32(what, { g, sg, act, u });
    checkDim(what, "n", n);
    for (const [name, a] of [["g", g], ["sg", sg], ["act", act], ["u", u]] as const) checkLength(what, name, a, n);
    for (const [name, out] of [["g", g], ["sg", sg], ["act", act]] as const) {
      this.#checkNoOverlap(what, name, out, "u", u);
    }
    this.#checkNoOverlap(what, "g", g, "sg", sg);
    this.#checkNoOverlap(what, "g", g, "act", act);
    this.#checkNoOverlap(what, "sg", sg, "act", act);
    this.#temp(() => {
      const up = this.#in(u), gp = this.#out(g, true), sp = this.#out(sg, false), ap = this.#out(act, false);
      this.#run(TRAIN_CTRL.OP_SWIGLU_FORWARD, n, 8 * n, (i0, i1) => [gp, up, sp, ap, i0, i1], 4);
    });
  }

  swigluBackward(
    dg: Float32Array,
    du: Float32Array,
    dact: Float32Array,
    silu: Float32Array,
    sg: Float32Array,
    u: Float32Array,
    n: number,
  ): void {
    const what = "run training SwiGLU backward";
    checkF32(what, { dg, du, dact, silu, sg, u });
    checkDim(what, "n", n);
    const ins = [["dact", dact], ["silu", silu], ["sg", sg], ["u", u]] as const;
    for (const [name, a] of [["dg", dg], ["du", du], ...ins] as const) checkLength(what, name, a, n);
    for (const [name, out] of [["dg", dg], ["du", du]] as const) {
      for (const [iname, inp] of ins) this.#checkNoOverlap(what, name, out, iname, inp);
    }
    this.#checkNoOverlap(what, "dg", dg, "du", du);
    this.#temp(() => {
      const dap = this.#in(dact), sip = this.#in(silu), sgp = this.#in(sg), up = this.#in(u);
      const dgp = this.#out(dg, false), dup = this.#out(du, false);
      this.#run(TRAIN_CTRL.OP_SWIGLU_BACKWARD, n, 4 * n, (i0, i1) => [dap, sip, sgp, up, dgp, dup, i0, i1], 4);
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

/** Attention dimensions: positive integers, nHeads a multiple of nKvHeads, arrays below 2^30 elements. */
function checkAttention(what: string, B: number, T: number, nHeads: number, nKvHeads: number, hs: number): void {
  for (const [name, v] of [["B", B], ["T", T], ["nHeads", nHeads], ["nKvHeads", nKvHeads], ["hs", hs]] as const) {
    checkDim(what, name, v);
  }
  if (nHeads % nKvHeads !== 0) {
    throw new RangeError(`Cannot ${what}: nHeads ${nHeads} is not a multiple of nKvHeads ${nKvHeads}`);
  }
  if (B * nHeads * T * T >= 2 ** 30 || B * T * nHeads * hs >= 2 ** 30) {
    throw new RangeError(`Cannot ${what}: B ${B} × nHeads ${nHeads} × T ${T}² exceeds the 2^30 WASM limit`);
  }
}

/** Cross-entropy shapes; every target in [0, V) (the WASM side indexes with it). */
function checkCrossEntropy(
  what: string,
  logits: Float32Array,
  invSum: Float32Array,
  targets: Int32Array,
  m: number,
  V: number,
): void {
  checkDim(what, "m", m);
  checkDim(what, "V", V);
  if (!(targets instanceof Int32Array)) throw new TypeError(`Cannot ${what}: targets is not an Int32Array`);
  if (m * V >= 2 ** 30) throw new RangeError(`Cannot ${what}: m*V = ${m * V} elements exceeds the 2^30 WASM limit`);
  checkLength(what, "logits", logits, m * V);
  checkLength(what, "invSum", invSum, m);
  checkLength(what, "targets", targets, m);
  for (let i = 0; i < m; i++) {
    if (!(targets[i] >= 0 && targets[i] < V)) {
      throw new RangeError(`Cannot ${what}: target ${targets[i]} at ${i} is outside [0, ${V})`);
    }
  }
}
