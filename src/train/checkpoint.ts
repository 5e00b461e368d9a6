/**
 * A resumable training checkpoint in one file: the trainer's state (trainable tensors, AdamW moments, step, RNG)
 * plus whatever the command needs to continue exactly (data order cursor, log rows), as JSON + raw f32.
 * The command writes it through a temp file + rename, so a checkpoint on disk is always whole.
 *
 * Layout (little-endian):
 * 1. magic `YTCKPT01` (8 bytes);
 * 2. u32 header length H (≤ MAX_HEADER_BYTES), then H bytes of UTF-8 JSON
 *    `{"meta": {...}, "tensors": [{"name", "nElements"}, …]}`, padded with spaces to a multiple of 4;
 * 3. every tensor's f32 values in header order, no gaps;
 * 4. u32 CRC-32 of the tensor data (3.), so a damaged file is refused rather than resumed from.
 */
import type { ByteSink, ByteSource } from "../core/byte_source.ts";
import { FormatError } from "../core/errors.ts";
import { crc32 } from "../formats/zip.ts";

/** The file's first 8 bytes. */
export const CHECKPOINT_MAGIC = "YTCKPT01";
/** Largest JSON header we read. */
export const MAX_HEADER_BYTES = 64 << 20;
/** Most tensors in a checkpoint. */
const MAX_TENSORS = 1_000_000;

/** One named f32 tensor. */
export interface CheckpointTensor {
  name: string;
  data: Float32Array;
}

/** What a checkpoint holds: JSON metadata and tensors. */
export interface Checkpoint {
  meta: Record<string, unknown>;
  tensors: CheckpointTensor[];
}

function header(ckpt: Checkpoint): Uint8Array {
  const names = new Set<string>();
  for (const t of ckpt.tensors) {
    if (typeof t.name !== "string" || names.has(t.name)) {
      throw new RangeError(`Cannot write checkpoint: duplicate or bad tensor name "${t.name}"`);
    }
    names.add(t.name);
  }
  const json = new TextEncoder().encode(JSON.stringify({
    meta: ckpt.meta,
    tensors: ckpt.tensors.map((t) => ({ name: t.name, nElements: t.data.length })),
  }));
  const padded = new Uint8Array(Math.ceil(json.length / 4) * 4).fill(0x20);
  padded.set(json);
  if (padded.length > MAX_HEADER_BYTES) {
    throw new RangeError(`Cannot write checkpoint: header of ${padded.length} bytes exceeds ${MAX_HEADER_BYTES}`);
  }
  return padded;
}

/** Bytes the checkpoint file will have. */
export function checkpointSize(ckpt: Checkpoint): number {
  return 12 + header(ckpt).length + ckpt.tensors.reduce((s, t) => s + t.data.byteLength, 0) + 4;
}

/** Writes `ckpt` to `sink` (streaming, tensor by tensor). */
export function writeCheckpoint(sink: ByteSink, ckpt: Checkpoint): void {
  const h = header(ckpt);
  const pre = new Uint8Array(12);
  pre.set(new TextEncoder().encode(CHECKPOINT_MAGIC));
  new DataView(pre.buffer).setUint32(8, h.length, true);
  sink.write(pre);
  sink.write(h);
  let crc = 0;
  for (const t of ckpt.tensors) {
    const b = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    crc = crc32(b, crc);
    sink.write(b);
  }
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, crc, true);
  sink.write(tail);
}

/**
 * Reads a checkpoint, validating every length against the file and the data's CRC-32; FormatError (with the
 * path and byte offset) for anything malformed or damaged.
 */
export function readCheckpoint(src: ByteSource): Checkpoint {
  const bad = (msg: string, offset?: number) =>
    new FormatError(`Cannot read checkpoint: ${msg}`, { format: "checkpoint", path: src.name, offset });
  if (src.size < 16) throw bad(`file has ${src.size} bytes, too short for a checkpoint`);
  const pre = src.read(0, 12);
  if (new TextDecoder().decode(pre.subarray(0, 8)) !== CHECKPOINT_MAGIC) {
    throw bad(`bad magic (expected "${CHECKPOINT_MAGIC}": not a yangtuo training checkpoint)`, 0);
  }
  const hLen = new DataView(pre.buffer, pre.byteOffset, 12).getUint32(8, true);
  if (hLen > MAX_HEADER_BYTES || 12 + hLen + 4 > src.size) {
    throw bad(`header length ${hLen} exceeds the file (${src.size} bytes)`, 8);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(src.read(12, hLen)));
  } catch (e) {
    throw bad(`header is not valid JSON (${(e as Error).message})`, 12);
  }
  const h = parsed as { meta?: unknown; tensors?: unknown };
  if (
    typeof h !== "object" || h === null || typeof h.meta !== "object" || h.meta === null || !Array.isArray(h.tensors)
  ) {
    throw bad(`header lacks "meta" or "tensors"`, 12);
  }
  if (h.tensors.length > MAX_TENSORS) throw bad(`${h.tensors.length} tensors exceeds ${MAX_TENSORS}`, 12);
  let offset = 12 + hLen;
  const dataStart = offset;
  const tensors: CheckpointTensor[] = [];
  const names = new Set<string>();
  for (const [i, t] of (h.tensors as unknown[]).entries()) {
    const { name, nElements } = (t ?? {}) as { name?: unknown; nElements?: unknown };
    if (typeof name !== "string" || names.has(name)) throw bad(`tensor ${i} has a bad or duplicate name`, 12);
    names.add(name);
    if (typeof nElements !== "number" || !Number.isSafeInteger(nElements) || nElements < 0) {
      throw bad(`tensor "${name}" has a bad element count ${JSON.stringify(nElements)}`, 12);
    }
    if (offset + nElements * 4 + 4 > src.size) {
      throw bad(`tensor "${name}" (${nElements} values) runs past the end of the file`, offset);
    }
    const data = new Float32Array(nElements);
    src.readInto(offset, new Uint8Array(data.buffer));
    tensors.push({ name, data });
    offset += nElements * 4;
  }
  if (offset + 4 !== src.size) throw bad(`${src.size - offset - 4} unexpected bytes after the tensors`, offset);
  let crc = 0;
  for (const t of tensors) crc = crc32(new Uint8Array(t.data.buffer), crc);
  const stored = new DataView(src.read(offset, 4).slice().buffer).getUint32(0, true);
  if (crc !== stored) throw bad(`CRC-32 of the tensor data does not match (the file is damaged)`, dataStart);
  return { meta: h.meta as Record<string, unknown>, tensors };
}
