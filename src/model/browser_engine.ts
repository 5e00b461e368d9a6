/**
 * loadEngineFromBlob(): the browser's loadEngine() — a GGUF picked, dropped or fetched into a Blob is read with
 * Blob.slice (BlobSource) on this thread and by every shard worker, so nothing is copied whole and models above
 * 4 GiB shard as they do in Deno. Runs in a dedicated worker (FileReaderSync, Atomics.wait), never on a page's
 * main thread.
 * see: engine.ts (loadEngine, the Deno twin), engine_core.ts, ../core/blob_source.ts
 */
import { BlobSource, type SyncBlobReader } from "../core/blob_source.ts";
import { FormatError, UserError } from "../core/errors.ts";
import { readGguf } from "../formats/gguf.ts";
import { tokenizerFromGgufMetadata } from "../tokenizer/mod.ts";
import type { Engine } from "./engine.ts";
import { createEngine, type EngineOptions } from "./engine_core.ts";
import { withTokenizer } from "./with_tokenizer.ts";
import { GGUF_MAGIC_STRING } from "../formats/gguf_constants.ts";

const GGUF_MAGIC_BYTES = new TextEncoder().encode(GGUF_MAGIC_STRING);

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
export async function loadEngineFromBlob(
  blob: Blob,
  options: EngineOptions = {},
  name = (blob as { name?: string }).name ?? "model",
  read?: SyncBlobReader,
): Promise<Engine> {
  const source = new BlobSource(blob, name, read);
  const magic = source.size >= 4 ? source.read(0, 4) : new Uint8Array(0);
  if (!GGUF_MAGIC_BYTES.every((b, i) => magic[i] === b)) {
    throw new UserError(`Cannot load model "${name}": not a GGUF file`, "convert it first with `deno task convert`");
  }
  let g;
  try {
    g = readGguf(source);
  } catch (e) {
    if (e instanceof FormatError) {
      throw new UserError(`Cannot load model "${name}": ${e.message}`, "the file is damaged or not a model", {
        cause: e,
      });
    }
    throw e;
  }
  const metadata = g.metadata as Map<string, unknown>;
  let tokenizer;
  try {
    tokenizer = tokenizerFromGgufMetadata(metadata);
  } catch (e) {
    throw new UserError(
      `Cannot load the tokenizer from "${name}": ${(e as Error).message}`,
      "the GGUF needs tokenizer.ggml.* keys; convert the model with `deno task convert` to embed them",
      { cause: e },
    );
  }
  const base = await createEngine({ metadata, tensors: g.tensors, source, blob }, options);
  return withTokenizer(base, tokenizer);
}
