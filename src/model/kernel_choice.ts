/**
 * Picks the kernels a shard runs on: "wasm" (the SIMD module, the default) or "js" (plain TypeScript, the
 * portable cross-check). Both work on a shard-private WebAssembly.Memory.
 * see: shard_kernels.ts
 */
import { JsShardKernels, type ShardKernels } from "./shard_kernels.ts";

/** Which kernel implementation a shard uses. */
export type KernelChoice = "wasm" | "js";

/** Creates a shard's kernels (and its memory). */
export function createShardKernels(choice: KernelChoice): Promise<ShardKernels> {
  if (choice === "js") return Promise.resolve(new JsShardKernels());
  return import("./wasm_shard_kernels.ts").then((m) => m.createWasmShardKernels());
}
