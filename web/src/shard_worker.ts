/**
 * A shard worker in the browser: shard_worker.ts (the same file Deno runs) after one message from the host
 * carrying the compiled kernels, so the worker, started from a blob: URL, never fetches the .wasm.
 * see: ../../src/model/shard_worker.ts, host_worker.ts (spawnShardWorker)
 */
/// <reference lib="deno.worker" />
import { provideKernelsModule } from "../../src/kernels/wasm.ts";
import "../../src/model/shard_worker.ts";

const engineOnMessage = self.onmessage as ((e: MessageEvent) => void) | null;
self.onmessage = (e: MessageEvent) => {
  if (e.data?.type === "kernels") {
    provideKernelsModule(e.data.module as WebAssembly.Module);
    return;
  }
  engineOnMessage?.(e);
};
