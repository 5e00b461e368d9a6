/**
 * The shard worker, the fast engine's Worker entry: builds its Shards (usually one; each with its own kernel memory
 * ≤ 4 GiB), reading their weight slices straight from the model file (or from shared bytes), then serves forward
 * commands posted through the control SharedArrayBuffer until told to exit. No message round-trips while running.
 * see: engine.ts (the calling side), shard.ts
 */
/// <reference lib="deno.worker" />
import { CTRL, postFailure, runShards, Shard, type ShardPlan, waitForCommand } from "./shard.ts";
import type { TensorInfo } from "../core/tensor.ts";
import type { KernelChoice } from "../kernels/kernels.ts";
import { createKernels } from "../kernels/simd_kernels.ts";
import { BlobSource } from "../core/blob_source.ts";
import { readFileAt } from "../core/byte_source.ts";

/** The one message a worker receives. */
export interface WorkerInit {
  /** The shards this thread runs (each gets its own kernel memory). */
  plans: ShardPlan[];
  /** Threads in all (the barrier's party size). */
  nThreads: number;
  tensors: TensorInfo[];
  /** Model file to read the slices from… */
  path?: string;
  /** …or a Blob (browser File) read with FileReaderSync… */
  blob?: Blob;
  /** …or the whole model in shared memory. */
  bytes?: SharedArrayBuffer;
  exchange: SharedArrayBuffer;
  control: SharedArrayBuffer;
  kernels: KernelChoice;
}

self.onmessage = async (e: MessageEvent<WorkerInit>) => {
  const init = e.data;
  const ctrl = new Int32Array(init.control);
  const shards: Shard[] = [];
  let file: Deno.FsFile | undefined;
  try {
    let readInto: (off: number, dst: Uint8Array) => void;
    if (init.path !== undefined) {
      const f = Deno.openSync(init.path, { read: true }), path = init.path;
      file = f;
      readInto = (off, dst) => readFileAt(f, path, off, dst);
    } else if (init.blob !== undefined) {
      const src = new BlobSource(init.blob);
      readInto = (off, dst) => src.readInto(off, dst);
    } else {
      const all = new Uint8Array(init.bytes!);
      readInto = (off, dst) => dst.set(all.subarray(off, off + dst.length));
    }
    for (const plan of init.plans) {
      const kernels = await createKernels(init.kernels);
      const progress = () => self.postMessage({ type: "progress" });
      const { tensors, exchange, control } = init;
      shards.push(new Shard({ plan, kernels, tensors, readInto, exchange, control, onTensor: progress }));
    }
  } catch (err) {
    self.postMessage({ type: "error", message: (err as Error).message });
    return;
  } finally {
    file?.close();
  }
  // read the command counter before saying ready: the caller may start a forward as soon as it hears from us
  let seen = Atomics.load(ctrl, CTRL.COMMAND);
  self.postMessage({ type: "ready", memoryBytes: shards.reduce((a, s) => a + s.memoryBytes, 0) });
  for (;;) {
    const command = waitForCommand(ctrl, seen);
    seen = command.seen;
    if (!command.forward) break;
    try {
      runShards(shards, ctrl, init.nThreads);
    } catch (err) {
      postFailure(ctrl);
      self.postMessage({ type: "error", message: (err as Error).message });
    }
  }
  self.close();
};
