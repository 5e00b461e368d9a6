/**
 * A pool of merge workers: the main thread reads and prepares row blocks (stage 1: I/O, f16 decode, new rows),
 * workers add the LoRA deltas and quantize them (stage 2), so reading and computing overlap on separate cores.
 * Output bytes are identical to the single-threaded MergeExecutor path (same pure functions, same order per
 * block); tests/commands/merge_test.ts checks it. Opt-in (-t N): on the shared 2-core machine the pipeline
 * measured slower than one thread (bench/README.md), so the commands default to 1.
 */
import { type DType, nBytesOf } from "../core/dtypes.ts";
import type { EncodeOptions } from "./encode.ts";
import type { RopeLayout } from "../formats/rope_permute.ts";
import type { MergeExecutor, PlannedTensor } from "./plan.ts";
import { rowsCols } from "./source_tensor.ts";

interface Slot {
  worker: Worker;
  key: string;
  inFlight: number;
}

/** Workers that finish row blocks; `tensorBytes` has the same contract as src/merge/encode.ts tensorBytes. */
export class MergePool {
  #slots: Slot[];
  #next = 1;
  #waiting = new Map<number, { resolve: (b: ArrayBuffer) => void; reject: (e: Error) => void }>();

  constructor(readonly size: number) {
    this.#slots = Array.from({ length: size }, () => {
      const worker = new Worker(new URL("./pool_worker.ts", import.meta.url).href, { type: "module" });
      worker.onmessage = (e: MessageEvent) => {
        const w = this.#waiting.get(e.data.id);
        if (!w) return;
        this.#waiting.delete(e.data.id);
        if (e.data.type === "done") w.resolve(e.data.bytes);
        else w.reject(new Error(`merge worker: ${e.data.message}`));
      };
      worker.onerror = (e) => {
        e.preventDefault();
        for (const w of this.#waiting.values()) w.reject(new Error(`merge worker failed: ${e.message}`));
        this.#waiting.clear();
      };
      return { worker, key: "", inFlight: 0 };
    });
  }

  /** All bytes of one merged tensor in `outLayout`, encoded as `dtype`, computed by the workers. */
  async tensorBytes(
    exec: MergeExecutor,
    t: PlannedTensor,
    outLayout: RopeLayout,
    dtype: DType,
    opts: EncodeOptions = {},
  ): Promise<Uint8Array> {
    const [rows, cols] = rowsCols(t.shape);
    const rowBytes = nBytesOf(dtype, cols);
    const out = new Uint8Array(rows * rowBytes);
    const step = exec.blockRows(t, opts.blockElements);
    const factors = exec.factorsOf(t);
    const pending = new Set<Promise<void>>();
    const limit = 2 * this.#slots.length;
    for (let r = 0; r < rows; r += step) {
      const n = Math.min(step, rows - r);
      const w = new Float32Array(n * cols);
      const layoutNow = exec.startRows(t, r, n, w); // stage 1 here, while workers run stage 2 of earlier blocks
      const spec = exec.finishSpec(t, r, n, layoutNow, outLayout);
      const slot = this.#slots.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
      const id = this.#next++;
      const sendFactors = factors.length > 0 && slot.key !== t.key;
      slot.key = t.key;
      slot.inFlight++;
      const done = new Promise<ArrayBuffer>((resolve, reject) => this.#waiting.set(id, { resolve, reject }));
      slot.worker.postMessage(
        { type: "block", id, key: t.key, factors: sendFactors ? factors : undefined, spec, w: w.buffer, dtype },
        [w.buffer],
      );
      const row = r;
      const p: Promise<void> = done.then((bytes) => {
        slot.inFlight--;
        out.set(new Uint8Array(bytes), row * rowBytes);
        opts.onElements?.(n * cols);
        pending.delete(p);
      });
      pending.add(p);
      if (pending.size >= limit) await Promise.race(pending);
    }
    await Promise.all(pending);
    return out;
  }

  /**
   * Encodes a (rows, cols) tensor as `dtype` in the workers; `readBlock` fills f32 rows [r0, r0+n) on the main
   * thread (quantizeGguf's row reader). Same bytes as encodeF32 over the whole tensor.
   */
  async encodeTensor(
    rows: number,
    cols: number,
    dtype: DType,
    readBlock: (row0: number, nRows: number, dst: Float32Array) => void,
    onRows?: (n: number) => void,
  ): Promise<Uint8Array> {
    const rowBytes = nBytesOf(dtype, cols);
    const out = new Uint8Array(rows * rowBytes);
    const step = Math.max(1, Math.min(rows, Math.floor((1 << 20) / cols)));
    const pending = new Set<Promise<void>>();
    const limit = 2 * this.#slots.length;
    for (let r = 0; r < rows; r += step) {
      const n = Math.min(step, rows - r);
      const w = new Float32Array(n * cols);
      readBlock(r, n, w);
      const spec = {
        row0: r,
        nRows: n,
        cols,
        scalings: [],
        rope: false,
        headSize: 1,
        layoutNow: "meta" as const,
        outLayout: "meta" as const,
      };
      const slot = this.#slots.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
      const id = this.#next++;
      slot.inFlight++;
      const done = new Promise<ArrayBuffer>((resolve, reject) => this.#waiting.set(id, { resolve, reject }));
      slot.worker.postMessage({ type: "block", id, key: "", spec, w: w.buffer, dtype }, [w.buffer]);
      const row = r;
      const p: Promise<void> = done.then((bytes) => {
        slot.inFlight--;
        out.set(new Uint8Array(bytes), row * rowBytes);
        onRows?.(n);
        pending.delete(p);
      });
      pending.add(p);
      if (pending.size >= limit) await Promise.race(pending);
    }
    await Promise.all(pending);
    return out;
  }

  /** Terminates the workers. */
  close(): void {
    for (const s of this.#slots) s.worker.terminate();
    for (const w of this.#waiting.values()) w.reject(new Error("merge pool closed"));
    this.#waiting.clear();
  }
}

/** Worker count for `threads` (the main thread is one of them): threads - 1, none for 1 thread. */
export function poolSizeFor(threads: number): number {
  return Math.max(0, Math.min(16, threads - 1));
}
