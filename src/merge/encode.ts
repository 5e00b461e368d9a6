/**
 * Output encoding of merged f32 rows: F32, F16, BF16 bytes, or Q4_0 / Q8_0 blocks through a row quantizer
 * (WASM via loadQuantizers(), the `…Ref` definitions by default — both byte-identical).
 * tensorBytes() builds one whole output tensor block by block, the unit the GGUF and safetensors writers stream.
 */
import { type DType, nBytesOf } from "../core/dtypes.ts";
import { UnsupportedError } from "../core/errors.ts";
import { checkQuantShape, quantizeRowQ4_0Ref } from "../quant/q4_0.ts";
import { quantizeRowQ8_0Ref } from "../quant/q8_0.ts";
import type { RopeLayout } from "../formats/rope_permute.ts";
import type { MergeExecutor, PlannedTensor } from "./plan.ts";
import { rowsCols } from "./source_tensor.ts";

/** Row quantizers: quantize x (length a multiple of 32) into out. */
export interface RowQuantizers {
  Q4_0(x: Float32Array, out: Uint8Array): void;
  Q8_0(x: Float32Array, out: Uint8Array): void;
}

/** The reference quantizers (the definition). */
export const REF_QUANTIZERS: RowQuantizers = { Q4_0: quantizeRowQ4_0Ref, Q8_0: quantizeRowQ8_0Ref };

/** The WASM row quantizers (byte-identical to the references), or the references when WASM is unavailable. */
export async function loadQuantizers(): Promise<RowQuantizers> {
  try {
    const { loadWasmKernels } = await import("../kernels/mod.ts");
    const k = await loadWasmKernels();
    // x copied into the module's memory, quantized there, the blocks copied out; shapes checked before the call
    const quantizer = (dtype: "Q4_0" | "Q8_0", quantize: (x: number, out: number, n: number) => void) => {
      return (x: Float32Array, out: Uint8Array) => {
        checkQuantShape(`quantize ${dtype} row`, x.length, 32, out.length, nBytesOf(dtype, 32));
        const a = k.arena, mark = a.mark();
        try {
          const xp = a.put(x), op = a.alloc(out.length);
          quantize(xp, op, x.length);
          out.set(a.u8(op, out.length));
        } finally {
          a.reset(mark);
        }
      };
    };
    return { Q4_0: quantizer("Q4_0", k.raw.quantizeRowQ4_0), Q8_0: quantizer("Q8_0", k.raw.quantizeRowQ8_0) };
  } catch {
    return REF_QUANTIZERS;
  }
}

/** Encodes f32 values `x` as `dtype` into `out` (exactly nBytesOf(dtype, x.length) bytes). */
export function encodeF32(dtype: DType, x: Float32Array, out: Uint8Array, q: RowQuantizers = REF_QUANTIZERS): void {
  const n = x.length;
  if (out.length !== nBytesOf(dtype, n)) {
    throw new RangeError(`Cannot encode ${n} values as ${dtype}: output has ${out.length} bytes`);
  }
  switch (dtype) {
    case "F32":
      if (out.byteOffset % 4 === 0) new Float32Array(out.buffer, out.byteOffset, n).set(x);
      else out.set(new Uint8Array(x.buffer, x.byteOffset, n * 4));
      return;
    case "F16": {
      const h = out.byteOffset % 2 === 0 ? new Float16Array(out.buffer, out.byteOffset, n) : new Float16Array(n);
      h.set(x);
      if (h.buffer !== out.buffer) out.set(new Uint8Array(h.buffer));
      return;
    }
    case "BF16": {
      const u = new Uint32Array(x.buffer, x.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const v = u[i];
        const b = (v & 0x7fffffff) > 0x7f800000
          ? ((v >>> 16) | 0x40) & 0xffff
          : ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff;
        out[2 * i] = b & 0xff;
        out[2 * i + 1] = b >>> 8;
      }
      return;
    }
    case "Q4_0":
      q.Q4_0(x, out);
      return;
    case "Q8_0":
      q.Q8_0(x, out);
      return;
    default:
      throw new UnsupportedError(`Cannot encode tensors as ${dtype}`);
  }
}

/** Options of tensorBytes. */
export interface EncodeOptions {
  quantizers?: RowQuantizers;
  /** Called with the number of f32 elements finished after each block. */
  onElements?: (n: number) => void;
  /** Target block size in elements (default 1 Mi). */
  blockElements?: number;
}

/** All bytes of one merged tensor, rows [row0, row1) (default all), in `outLayout`, encoded as `dtype`. */
export function tensorBytes(
  exec: MergeExecutor,
  t: PlannedTensor,
  outLayout: RopeLayout,
  dtype: DType,
  opts: EncodeOptions = {},
  row0 = 0,
  row1: number = rowsCols(t.shape)[0],
): Uint8Array {
  const [, cols] = rowsCols(t.shape);
  const rowBytes = nBytesOf(dtype, cols);
  const out = new Uint8Array((row1 - row0) * rowBytes);
  const step = exec.blockRows(t, opts.blockElements);
  const buf = new Float32Array(step * cols);
  for (let r = row0; r < row1; r += step) {
    const n = Math.min(step, row1 - r);
    const w = exec.computeRows(t, outLayout, r, n, buf);
    encodeF32(dtype, w, out.subarray((r - row0) * rowBytes, (r - row0 + n) * rowBytes), opts.quantizers);
    opts.onElements?.(n * cols);
  }
  return out;
}

/** Bytes of columns [col0, col1) of a merged 2-D tensor (Meta shards split wo, w2 and tok_embeddings so). */
export function tensorColumnBytes(
  exec: MergeExecutor,
  t: PlannedTensor,
  outLayout: RopeLayout,
  dtype: "F32" | "F16" | "BF16",
  col0: number,
  col1: number,
  opts: EncodeOptions = {},
): Uint8Array {
  const [rows, cols] = rowsCols(t.shape);
  const width = col1 - col0;
  const size = nBytesOf(dtype, 1);
  const out = new Uint8Array(rows * width * size);
  const step = exec.blockRows(t, opts.blockElements);
  const buf = new Float32Array(step * cols);
  const slice = new Float32Array(step * width);
  for (let r = 0; r < rows; r += step) {
    const n = Math.min(step, rows - r);
    const w = exec.computeRows(t, outLayout, r, n, buf);
    for (let i = 0; i < n; i++) slice.set(w.subarray(i * cols + col0, i * cols + col1), i * width);
    encodeF32(dtype, slice.subarray(0, n * width), out.subarray(r * width * size, (r + n) * width * size));
    opts.onElements?.(n * width);
  }
  return out;
}
