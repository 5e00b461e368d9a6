/**
 * BlobSource: a ByteSource over a browser Blob or File (a GGUF picked or dropped on the page), read with
 * `Blob.slice` + `FileReaderSync`, so format readers and the engine's shards read a model in a browser exactly as
 * they read a file in Deno. Synchronous Blob reads exist only in dedicated workers: the engine runs there.
 * Offsets above 4 GiB are plain numbers (Blob.slice takes them), so large models shard as in Deno.
 * see: byte_source.ts, https://w3c.github.io/FileAPI/#FileReaderSync
 */
import { type ByteSource, checkRange, readFresh } from "./byte_source.ts";
import { UnsupportedError } from "./errors.ts";

/** The part of Blob this source needs (a real Blob or File; tests pass a fake). */
export interface BlobLike {
  readonly size: number;
  slice(start?: number, end?: number): BlobLike;
}

/** Reads a whole (sliced) blob synchronously; FileReaderSync.readAsArrayBuffer in a worker. */
export type SyncBlobReader = (blob: BlobLike) => ArrayBuffer;

interface FileReaderSyncLike {
  readAsArrayBuffer(blob: BlobLike): ArrayBuffer;
}

/** The realm's FileReaderSync as a SyncBlobReader; throws UnsupportedError where there is none (a window, Deno). */
export function fileReaderSync(): SyncBlobReader {
  const Ctor = (globalThis as { FileReaderSync?: new () => FileReaderSyncLike }).FileReaderSync;
  if (typeof Ctor !== "function") {
    throw new UnsupportedError("Cannot read a Blob synchronously: FileReaderSync exists only in dedicated workers");
  }
  const reader = new Ctor();
  return (blob) => reader.readAsArrayBuffer(blob);
}

/** A ByteSource over a Blob. */
export class BlobSource implements ByteSource {
  readonly size: number;
  readonly #read: SyncBlobReader;

  /** `read` defaults to the realm's FileReaderSync. */
  constructor(readonly blob: BlobLike, readonly name?: string, read?: SyncBlobReader) {
    this.size = blob.size;
    this.#read = read ?? fileReaderSync();
  }

  read(byteOffset: number, nBytes: number): Uint8Array {
    return readFresh(this, byteOffset, nBytes);
  }

  readInto(byteOffset: number, dst: Uint8Array): void {
    checkRange(this, byteOffset, dst.length);
    if (dst.length === 0) return;
    const got = this.#read(this.blob.slice(byteOffset, byteOffset + dst.length));
    if (got.byteLength !== dst.length) {
      // a File changed or vanished on disk after it was picked
      throw new RangeError(
        `Cannot read ${dst.length} bytes at offset ${byteOffset}: blob${
          this.name ? ` "${this.name}"` : ""
        } gave ${got.byteLength}`,
      );
    }
    dst.set(new Uint8Array(got));
  }
}
