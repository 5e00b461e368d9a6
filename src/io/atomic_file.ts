/**
 * Atomic output files: write to a temporary file beside the destination, flush, then rename into place.
 * A crash or Ctrl+C leaves only a `.yangtuo-tmp-*` file, never a half-written output under the final name.
 */
import type { ByteSink } from "../core/byte_source.ts";

/** A ByteSink writing to a temp file; `commit()` renames it to the destination, `abort()` deletes it. */
export class AtomicFileSink implements ByteSink, Disposable {
  position = 0;
  readonly tempPath: string;
  #file: Deno.FsFile;
  #done = false;
  #buf: Uint8Array;
  #bufLen = 0;

  constructor(readonly path: string, bufferBytes = 1 << 20) {
    const slash = path.lastIndexOf("/");
    const dir = slash >= 0 ? path.slice(0, slash + 1) : "";
    const base = slash >= 0 ? path.slice(slash + 1) : path;
    this.tempPath = `${dir}.yangtuo-tmp-${crypto.randomUUID().slice(0, 8)}-${base}`;
    this.#file = Deno.openSync(this.tempPath, { write: true, createNew: true });
    this.#buf = new Uint8Array(bufferBytes);
  }

  write(bytes: Uint8Array): void {
    if (this.#done) throw new Error(`Cannot write "${this.path}": already committed or aborted`);
    if (this.#bufLen + bytes.length > this.#buf.length) this.#flushBuffer();
    if (bytes.length >= this.#buf.length) {
      writeAll(this.#file, bytes);
    } else {
      this.#buf.set(bytes, this.#bufLen);
      this.#bufLen += bytes.length;
    }
    this.position += bytes.length;
  }

  #flushBuffer(): void {
    if (this.#bufLen > 0) writeAll(this.#file, this.#buf.subarray(0, this.#bufLen));
    this.#bufLen = 0;
  }

  /** Flushes to disk and renames the temp file to `path`; on any failure the temp file is removed and the error thrown. */
  commit(): void {
    if (this.#done) return;
    try {
      this.#flushBuffer();
      this.#file.syncSync();
    } catch (e) {
      this.abort();
      throw e;
    }
    this.#file.close();
    this.#done = true;
    try {
      Deno.renameSync(this.tempPath, this.path);
    } catch (e) {
      // e.g. the destination is a folder: the finished temp file must not stay behind
      try {
        Deno.removeSync(this.tempPath);
      } catch { /* already gone */ }
      throw e;
    }
  }

  /** Deletes the temp file; safe to call after commit (does nothing then). */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#file.close();
    } catch { /* already closed */ }
    try {
      Deno.removeSync(this.tempPath);
    } catch { /* already gone */ }
  }

  [Symbol.dispose](): void {
    this.abort();
  }
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
}

/**
 * Writes `path` atomically: `fill` writes into the sink (buffered `bufferBytes`, default 1 MiB); on success the
 * file is renamed into place, on any error the temp file is removed and the error rethrown.
 */
export async function writeFileAtomic(
  path: string,
  fill: (sink: AtomicFileSink) => void | Promise<void>,
  bufferBytes?: number,
): Promise<void> {
  const sink = new AtomicFileSink(path, bufferBytes);
  try {
    await fill(sink);
    sink.commit();
  } catch (e) {
    sink.abort();
    throw e;
  }
}
