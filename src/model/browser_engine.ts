/**
 * loadEngineFromBlob(): the browser's loadEngine() — a GGUF picked, dropped or fetched into a Blob is read with
 * Blob.slice (BlobSource) on this thread and by every shard worker, so nothing is copied whole and models above
 * 4 GiB shard as they do in Deno. Runs in a dedicated worker (FileReaderSync, Atomics.wait), never on a page's
 * main thread.
 * see: engine.ts (loadEngine, the Deno twin), ../core/blob_source.ts
 */
import { BlobSource, type SyncBlobReader } from "../core/blob_source.ts";
import { type Engine, type EngineOptions, loadEngineFromSource } from "./engine.ts";

/**
 * Loads a GGUF held in a Blob (a File from a picker). `read` replaces FileReaderSync for this thread's reads
 * (tests); shard workers always use their own FileReaderSync.
 *
 * @example
 * ```ts ignore
 * // inside a dedicated worker, with `file` posted from the page
 * const engine = await loadEngineFromBlob(file, { threads: 2, spawnWorker: () => new Worker(shardUrl, { type: "module" }) });
 * ```
 */
export function loadEngineFromBlob(
  blob: Blob,
  options: EngineOptions = {},
  name = (blob as { name?: string }).name ?? "model",
  read?: SyncBlobReader,
): Promise<Engine> {
  return loadEngineFromSource(new BlobSource(blob, name, read), { blob }, options);
}
