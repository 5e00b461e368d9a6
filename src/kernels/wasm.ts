/**
 * The WASM kernel module (wasm/build/kernels.wasm): compiling and instantiating it on a shared WebAssembly.Memory,
 * a bump arena for placing buffers, the raw exports (unchecked; SimdKernels and the training kernels call them),
 * the scratch sizes they need and the dot-form probe (pickDotForm). The only module that touches the .wasm.
 * see: wasm/README.md (ABI, layouts, alignment, aliasing), simd_kernels.ts (the `Kernels` on top)
 */
import { repackedQ4_0Bytes, repackedQ8_0Bytes } from "./scalar.ts";
import { QK4_0 } from "../quant/q4_0.ts";

/**
 * Where the committed module lives. A browser bundle started from a blob: URL has no base to resolve it against;
 * there it is `yangtuo:kernels.wasm` (never fetched: the page hands the module in with provideKernelsModule()).
 */
export const KERNELS_WASM_URL: URL = URL.canParse("../../wasm/build/kernels.wasm", import.meta.url)
  ? new URL("../../wasm/build/kernels.wasm", import.meta.url)
  : new URL("yangtuo:kernels.wasm");
/** WebAssembly page size. */
export const WASM_PAGE_BYTES = 65536;
/** The module declares its memory with this maximum (4 GiB). */
export const WASM_MAX_PAGES = 65536;

/** W (nRows, nCols) repacked @ one Q8A activation row -> y[rowStart..rowEnd) (y points at row 0). */
type Q8AMatvec = (
  w: number,
  act: number,
  y: number,
  nCols: number,
  rowStart: number,
  rowEnd: number,
  scratch: number,
) => void;
/** The sizes of a batched product: W (nRows, nCols) @ x (batch, nCols) -> y (batch, nRows), rows [rowStart, rowEnd). */
type ProductShape = [nCols: number, nRows: number, batch: number, rowStart: number, rowEnd: number];
/** W repacked @ `batch` Q8A rows `actStride` bytes apart -> y. */
type Q8AMatmul = (
  w: number,
  acts: number,
  actStride: number,
  y: number,
  ...s: [...ProductShape, scratch: number]
) => void;
/** W (nRows, nCols) @ x (nCols,) -> y[rowStart..rowEnd). */
type FloatMatvec = (w: number, x: number, y: number, nCols: number, rowStart: number, rowEnd: number) => void;
/** W @ x (batch, nCols) f32 -> y. */
type FloatMatmul = (w: number, x: number, y: number, ...s: ProductShape) => void;

/** The raw exports (unchecked: a wrong pointer corrupts memory silently). Pointers are byte offsets. */
export interface KernelExports {
  heapBase(): number;
  f16ToF32Array(src: number, dst: number, n: number): void;
  f32ToF16Array(src: number, dst: number, n: number): void;
  bf16ToF32Array(src: number, dst: number, n: number): void;
  quantizeRowQ4_0(x: number, out: number, n: number): void;
  quantizeRowQ8_0(x: number, out: number, n: number): void;
  quantizeQ8A(x: number, act: number, n: number): void;
  dequantizeRowQ4_0(src: number, dst: number, n: number): void;
  dequantizeRowQ8_0(src: number, dst: number, n: number): void;
  repackQ4_0(src: number, dst: number, nRows: number, nCols: number): void;
  repackQ8_0(src: number, dst: number, nRows: number, nCols: number): void;
  matvecQ4_0R: Q8AMatvec;
  matmulQ4_0R: Q8AMatmul;
  /** matvecQ4_0R in the relaxed i32 dot-add form (one vpdpbusd on AVX-VNNI hosts); same results bit for bit. */
  matvecQ4_0RVnni: Q8AMatvec;
  /** matmulQ4_0R in the relaxed i32 dot-add form; same arguments and results. */
  matmulQ4_0RVnni: Q8AMatmul;
  /** As Q8AMatvec without the scratch. */
  matvecQ8_0R: FloatMatvec;
  matmulQ8_0R: Q8AMatmul;
  /** matvecQ8_0R in the relaxed i32 dot-add form (vpdpbusd on AVX-VNNI hosts); same results bit for bit. */
  matvecQ8_0RVnni: FloatMatvec;
  /** matmulQ8_0R in the relaxed i32 dot-add form; same arguments and results. */
  matmulQ8_0RVnni: Q8AMatmul;
  matvecF16: FloatMatvec;
  matmulF16: FloatMatmul;
  matvecF32: FloatMatvec;
  matmulF32: FloatMatmul;
  rmsNorm(x: number, weight: number, out: number, n: number, eps: number): void;
  softmax(x: number, n: number): void;
  rope(x: number, nHeads: number, headSize: number, pos: number, theta: number): void;
  siluGate(gate: number, up: number, out: number, n: number): void;
  attention(
    q: number,
    k: number,
    v: number,
    out: number,
    att: number,
    nHeads: number,
    nKvHeads: number,
    headSize: number,
    nPos: number,
    kvF16: number,
    scale: number,
  ): void;
  streamRead(p: number, nBytes: number): number;
}

/** Bytes of the Q8A activation layout for n values (n a multiple of 32): int8 qs[n], f32 d[n/32], i32 corr[n/32]. */
export function q8ABytes(n: number): number {
  return n + (n / QK4_0) * 8;
}

/** Scratch bytes matvecQ4_0R / matmulQ4_0R need: 64 per activation row of a tile of up to 16 (partial sums, accumulators). */
export function q4_0RScratchBytes(batch: number): number {
  return 64 * Math.min(batch, 16);
}

/** Scratch bytes matmulQ8_0R needs: 64 per activation row of a tile of up to 16 (partial sums, f64 accumulators). */
export function q8_0RScratchBytes(batch: number): number {
  return 64 * Math.min(batch, 16);
}

/** The two forms of the Q4_0R and Q8_0R kernels: i16 dots + i16 adds, or the relaxed i32 dot-add ("VNNI"). */
export type DotForm = "i16" | "vnni";

/** Bytes pickDotForm() needs at its `mem` pointer: a 64x2048 Q4_0R or Q8_0R matrix, one Q8A row, y, scratch. */
export const DOT_PROBE_BYTES: number = Math.max(repackedQ4_0Bytes(64, 2048), repackedQ8_0Bytes(64, 2048)) + 4096 +
  2048 + 256 + 64;

/**
 * Measures which form of the `fmt` (Q4_0R or Q8_0R) kernels is faster on this host:
 * `i32x4.relaxed_dot_i8x16_i7x16_add_s` is one `vpdpbusd` where V8 sees AVX-VNNI and three instructions elsewhere
 * (where the i16 form wins). Both forms give the same results bit for bit, so the choice changes only speed. Times
 * the two matvecs in alternation on a cache-resident 64x2048 matrix at `mem` (DOT_PROBE_BYTES of scratch memory,
 * contents irrelevant; a few ms including tier-up warm-up) and picks "vnni" only when it is at least 10% faster.
 */
export function pickDotForm(raw: KernelExports, mem: number, fmt: "Q4_0" | "Q8_0"): DotForm {
  const nRows = 64, nCols = 2048;
  const w = Math.ceil(mem / 64) * 64;
  const act = w + (fmt === "Q4_0" ? repackedQ4_0Bytes(nRows, nCols) : repackedQ8_0Bytes(nRows, nCols));
  const y = act + q8AStride(nCols), scratch = y + 4 * nRows;
  const run = fmt === "Q4_0"
    ? (vnni: boolean) => (vnni ? raw.matvecQ4_0RVnni : raw.matvecQ4_0R)(w, act, y, nCols, 0, nRows, scratch)
    : (vnni: boolean) => (vnni ? raw.matvecQ8_0RVnni : raw.matvecQ8_0R)(w, act, y, nCols, 0, nRows);
  const time = (vnni: boolean, n: number) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) run(vnni);
    return performance.now() - t;
  };
  time(false, 300); // warm up past Liftoff into the optimizing tier
  time(true, 300);
  let i16 = Infinity, vnni = Infinity;
  for (let r = 0; r < 7; r++) {
    i16 = Math.min(i16, time(false, 40));
    vnni = Math.min(vnni, time(true, 40));
  }
  return vnni < 0.9 * i16 ? "vnni" : "i16";
}

/** Stride between batched Q8A rows: q8ABytes rounded up to 16 so every row stays 16-aligned. */
export function q8AStride(n: number): number {
  return Math.ceil(q8ABytes(n) / 16) * 16;
}

let modulePromise: Promise<WebAssembly.Module> | undefined;

/** Compiles the committed kernels.wasm once per realm (post the Module to workers to skip recompiling). */
export function compileKernelsModule(): Promise<WebAssembly.Module> {
  modulePromise ??= (async () => {
    const res = await fetch(KERNELS_WASM_URL);
    if (!res.ok) throw new Error(`Cannot load kernels: fetching ${KERNELS_WASM_URL} gave HTTP ${res.status}`);
    return await WebAssembly.compile(await res.arrayBuffer());
  })();
  return modulePromise;
}

/**
 * Makes compileKernelsModule() resolve to `module` in this realm instead of fetching KERNELS_WASM_URL (a browser
 * worker given the module compiled once by the page, so nothing is fetched after the page has loaded).
 */
export function provideKernelsModule(module: WebAssembly.Module): void {
  modulePromise = Promise.resolve(module);
}

/** Options for loading an instance. */
export interface LoadKernelsOptions {
  /** A compiled kernels module (e.g. posted from the main thread); compiled from KERNELS_WASM_URL otherwise. */
  module?: WebAssembly.Module;
  /** A shared memory with maximum 65536 pages (one per instance); created when absent. */
  memory?: WebAssembly.Memory;
  /** Initial pages of a created memory (default 16 = 1 MiB). */
  initialPages?: number;
  /** First byte the arena hands out (default: the module's heap base); raise it to keep a region for yourself. */
  arenaStart?: number;
}

/** Loads (compiling if needed) and instantiates the kernels. */
export async function loadWasmKernels(options: LoadKernelsOptions = {}): Promise<WasmKernels> {
  const module = options.module ?? await compileKernelsModule();
  return instantiateWasmKernels(module, options);
}

/** Instantiates a compiled kernels module synchronously. */
export function instantiateWasmKernels(module: WebAssembly.Module, options: LoadKernelsOptions = {}): WasmKernels {
  const memory = options.memory ??
    new WebAssembly.Memory({ initial: options.initialPages ?? 16, maximum: WASM_MAX_PAGES, shared: true });
  const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => {} } });
  return new WasmKernels(memory, instance.exports as unknown as KernelExports, options.arenaStart);
}

/**
 * A bump allocator over the instance's memory: alloc() hands out aligned byte ranges and grows the memory as
 * needed; mark()/reset() release everything allocated after a mark. Views are made fresh from memory.buffer on
 * each call, so they stay valid after a grow (older views keep their old length).
 */
export class Arena {
  readonly memory: WebAssembly.Memory;
  readonly base: number;
  #top: number;

  constructor(memory: WebAssembly.Memory, base: number) {
    this.memory = memory;
    this.base = base;
    this.#top = base;
  }

  /** The next free byte. */
  get top(): number {
    return this.#top;
  }

  /** Reserves nBytes at a multiple of align (a power of two, default 16); returns the pointer. */
  alloc(nBytes: number, align = 16): number {
    if (!Number.isInteger(nBytes) || nBytes < 0) throw new RangeError(`Cannot allocate: size ${nBytes} is invalid`);
    if (!(align > 0 && (align & (align - 1)) === 0)) {
      throw new RangeError(`Cannot allocate: alignment ${align} is not a power of two`);
    }
    const ptr = Math.ceil(this.#top / align) * align;
    this.ensure(ptr + nBytes);
    this.#top = ptr + nBytes;
    return ptr;
  }

  /** Grows the memory so bytes [0, end) exist. */
  ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / WASM_PAGE_BYTES);
    if (have / WASM_PAGE_BYTES + pages > WASM_MAX_PAGES) {
      throw new RangeError(`Cannot allocate: ${end} bytes exceed the 4 GiB WebAssembly memory`);
    }
    this.memory.grow(pages);
  }

  /** The current top, to pass to reset(). */
  mark(): number {
    return this.#top;
  }

  /** Frees everything allocated since mark. */
  reset(mark: number): void {
    if (mark < this.base || mark > this.#top) throw new RangeError(`Cannot reset arena: mark ${mark} is not live`);
    this.#top = mark;
  }

  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }
  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, n);
  }
  i8(ptr: number, n: number): Int8Array {
    return new Int8Array(this.memory.buffer, ptr, n);
  }
  u16(ptr: number, n: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, n);
  }
  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, n);
  }

  /** Allocates and copies `src` in; returns the pointer. */
  put(src: ArrayBufferView, align = 16): number {
    const ptr = this.alloc(src.byteLength, align);
    this.u8(ptr, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    return ptr;
  }
}

/** One instance of the kernels module: its shared memory, the raw exports and a bump arena over the memory. */
export class WasmKernels {
  readonly memory: WebAssembly.Memory;
  readonly raw: KernelExports;
  readonly arena: Arena;

  constructor(memory: WebAssembly.Memory, raw: KernelExports, arenaStart?: number) {
    this.memory = memory;
    this.raw = raw;
    const base = Math.ceil(Math.max(raw.heapBase(), arenaStart ?? 0) / 64) * 64;
    this.arena = new Arena(memory, base);
  }
}
