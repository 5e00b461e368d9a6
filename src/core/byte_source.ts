/**
 * ByteSource: synchronous positional reads, the one interface every format reader takes, so readers stay pure
 * (files are opened in src/io) and tests can parse in-memory bytes with no permissions.
 */

/** Random-access, read-only bytes. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** A name for error messages (a path), when there is one. */
  readonly name?: string;
  /**
   * Reads exactly `nBytes` at `byteOffset`. Throws RangeError when the range is outside [0, size].
   * The returned bytes may be a view into a shared buffer only for sources over memory; never mutate them.
   */
  read(byteOffset: number, nBytes: number): Uint8Array;
  /** Reads into `dst` from `byteOffset` (exactly dst.length bytes). */
  readInto(byteOffset: number, dst: Uint8Array): void;
}

/** A ByteSource over bytes already in memory. */
export class BytesSource implements ByteSource {
  readonly size: number;
  constructor(readonly bytes: Uint8Array, readonly name?: string) {
    this.size = bytes.length;
  }
  read(byteOffset: number, nBytes: number): Uint8Array {
    checkRange(this, byteOffset, nBytes);
    return this.bytes.subarray(byteOffset, byteOffset + nBytes);
  }
  readInto(byteOffset: number, dst: Uint8Array): void {
    checkRange(this, byteOffset, dst.length);
    dst.set(this.bytes.subarray(byteOffset, byteOffset + dst.length));
  }
}

/** ByteSource.read() for a source that reads through readInto(): a fresh array of `nBytes`. */
export function readFresh(src: ByteSource, byteOffset: number, nBytes: number): Uint8Array {
  const dst = new Uint8Array(nBytes);
  src.readInto(byteOffset, dst);
  return dst;
}

/** A file open for reading, as a Deno.FsFile is (structural: core touches no runtime API). */
export interface SeekableFile {
  /** Moves to `offset`; whence 0 = from the start (Deno.SeekMode.Start). */
  seekSync(offset: number, whence: number): number;
  /** Reads up to p.length bytes; null (or 0) at the end of the file. */
  readSync(p: Uint8Array): number | null;
}

/**
 * The one positional-read loop: reads exactly dst.length bytes of `file` at `byteOffset` (a read may return fewer
 * bytes than asked, so it loops). Throws RangeError naming `name` when the file ends first.
 */
export function readFileAt(file: SeekableFile, name: string, byteOffset: number, dst: Uint8Array): void {
  file.seekSync(byteOffset, 0);
  let done = 0;
  while (done < dst.length) {
    const n = file.readSync(dst.subarray(done));
    if (n === null || n === 0) throw new RangeError(`Cannot read "${name}": file ended at byte ${byteOffset + done}`);
    done += n;
  }
}

/** Throws RangeError unless [byteOffset, byteOffset+nBytes) lies inside the source. */
export function checkRange(src: ByteSource, byteOffset: number, nBytes: number): void {
  if (
    !Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(nBytes) || byteOffset < 0 || nBytes < 0 ||
    byteOffset + nBytes > src.size
  ) {
    throw new RangeError(
      `Cannot read ${nBytes} bytes at offset ${byteOffset}: source${
        src.name ? ` "${src.name}"` : ""
      } has ${src.size} bytes`,
    );
  }
}

/** A sink for sequential writes (a temp file in src/io, or memory in tests). */
export interface ByteSink {
  /** Bytes written so far. */
  readonly position: number;
  write(bytes: Uint8Array): void;
}

/** A ByteSink collecting into memory. */
export class BytesSink implements ByteSink {
  #chunks: Uint8Array[] = [];
  position = 0;
  write(bytes: Uint8Array): void {
    this.#chunks.push(bytes.slice());
    this.position += bytes.length;
  }
  /** All bytes written, concatenated. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.position);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}
