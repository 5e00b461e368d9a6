/**
 * FileSource: positional reads over a Deno.FsFile, so multi-GB files are never slurped.
 */
import { type ByteSource, checkRange, readFileAt, readFresh } from "../core/byte_source.ts";

/** A ByteSource over an open file. Close it when done. */
export class FileSource implements ByteSource, Disposable {
  readonly size: number;
  #file: Deno.FsFile;
  constructor(readonly name: string) {
    this.#file = Deno.openSync(name, { read: true });
    this.size = this.#file.statSync().size;
  }
  read(byteOffset: number, nBytes: number): Uint8Array {
    return readFresh(this, byteOffset, nBytes);
  }
  readInto(byteOffset: number, dst: Uint8Array): void {
    checkRange(this, byteOffset, dst.length);
    readFileAt(this.#file, this.name, byteOffset, dst);
  }
  close(): void {
    this.#file.close();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Opens `path` for positional reads. */
export function openFileSource(path: string): FileSource {
  return new FileSource(path);
}
