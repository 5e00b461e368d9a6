/**
 * WasmShardKernels: the shard operations on the SIMD kernel module, sharing the shard's memory.
 * Until the kernel module exports the model kernels, this falls back to the TypeScript ones.
 * see: wasm/README.md (the ABI), shard_kernels.ts
 */
import { JsShardKernels, type ShardKernels } from "./shard_kernels.ts";

/** Creates WASM-backed shard kernels over a fresh shared memory. */
export function createWasmShardKernels(): Promise<ShardKernels> {
  return Promise.resolve(new JsShardKernels());
}
