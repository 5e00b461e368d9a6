/**
 * SourceTensor: a stored tensor read as f32 rows on demand, whatever file or shard it lives in. The merge plan
 * only ever asks for row ranges, so a 400 MB embedding is never resident at once.
 * A tensor of shape [d0, d1, …] is viewed as d0 rows of d1·d2·… columns; 1-D tensors are one row.
 */
import type { ByteSource } from "../core/byte_source.ts";
import type { DType } from "../core/dtypes.ts";
import { UnsupportedError } from "../core/errors.ts";
import type { TensorInfo } from "../core/tensor.ts";

/** A tensor whose rows can be read as f32. */
export interface SourceTensor {
  readonly name: string;
  readonly dtype: DType;
  /** Row-major shape, outermost first. */
  readonly shape: readonly number[];
  /** Reads rows [row0, row0 + nRows) as f32 into `dst` (length ≥ nRows·cols) and returns the filled view. */
  readRows(row0: number, nRows: number, dst?: Float32Array): Float32Array;
}

/** Rows and columns of a tensor's 2-D view (1-D tensors are 1 row). */
export function rowsCols(shape: readonly number[]): [number, number] {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [1, shape[0]];
  let cols = 1;
  for (let i = 1; i < shape.length; i++) cols *= shape[i];
  return [shape[0], cols];
}

/** Total elements of a tensor. */
export function nElementsOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Element sizes of the plain float dtypes we convert from. */
const ELEMENT_BYTES: Partial<Record<DType, number>> = { F32: 4, F16: 2, BF16: 2 };

/** True when `dtype` is a plain float type SourceTensor can read (F32, F16, BF16). */
export function isReadableFloat(dtype: DType): boolean {
  return ELEMENT_BYTES[dtype] !== undefined;
}

/** f16 bits → f32 value for all 65,536 patterns (256 KiB, built on first use; exact, NaNs included). */
let F16_TABLE: Float32Array | undefined;
function f16Table(): Float32Array {
  if (!F16_TABLE) {
    const bits = new Uint16Array(65536).map((_, i) => i);
    F16_TABLE = new Float32Array(65536);
    F16_TABLE.set(new Float16Array(bits.buffer));
  }
  return F16_TABLE;
}

/**
 * Decodes little-endian `bytes` of `dtype` into f32 `dst`: the merge's hot-path form of quant/dequantize.ts
 * dequantizeRef for F32/F16/BF16 (a table lookup instead of a DataView per value; bit-identical, see
 * tests/merge/source_tensor_test.ts). Copies first when the bytes are not aligned for a typed
 * view (memory-backed sources may hand out odd offsets).
 */
export function decodeF32(dtype: DType, bytes: Uint8Array, dst: Float32Array): void {
  const size = ELEMENT_BYTES[dtype];
  if (size === undefined) throw new UnsupportedError(`Cannot read ${dtype} tensor data as f32 (F32, F16, BF16 only)`);
  const n = bytes.length / size;
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  if (dtype === "F32") {
    dst.set(new Float32Array(aligned.buffer, aligned.byteOffset, n));
  } else if (dtype === "F16") {
    // hot loop: a table lookup per value (faster than Float16Array → Float32Array conversion in V8 today)
    const h = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    const table = f16Table();
    for (let i = 0; i < n; i++) dst[i] = table[h[i]];
  } else {
    // bf16 is the top half of an f32: widen by shifting into the high 16 bits.
    const h = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    const u = new Uint32Array(dst.buffer, dst.byteOffset, n);
    for (let i = 0; i < n; i++) u[i] = h[i] << 16;
  }
}

function checkRows(name: string, rows: number, row0: number, nRows: number): void {
  if (!Number.isInteger(row0) || !Number.isInteger(nRows) || row0 < 0 || nRows < 0 || row0 + nRows > rows) {
    throw new RangeError(`Cannot read rows ${row0}..${row0 + nRows} of "${name}": it has ${rows} rows`);
  }
}

/** A SourceTensor over a contiguous row-major tensor in a ByteSource (GGUF, safetensors, an uncompressed zip entry). */
export function sourceTensorFromInfo(source: ByteSource, info: TensorInfo): SourceTensor {
  const size = ELEMENT_BYTES[info.dtype];
  if (size === undefined) {
    throw new UnsupportedError(`Cannot read tensor "${info.name}": dtype ${info.dtype} is not F32, F16 or BF16`);
  }
  const [rows, cols] = rowsCols(info.shape);
  if (rows * cols * size !== info.nBytes) {
    throw new RangeError(
      `Cannot read tensor "${info.name}": ${info.nBytes} bytes do not hold shape [${info.shape}] of ${info.dtype}`,
    );
  }
  return {
    name: info.name,
    dtype: info.dtype,
    shape: info.shape,
    readRows(row0, nRows, dst = new Float32Array(nRows * cols)) {
      checkRows(info.name, rows, row0, nRows);
      const bytes = source.read(info.byteOffset + row0 * cols * size, nRows * cols * size);
      const view = dst.subarray(0, nRows * cols);
      decodeF32(info.dtype, bytes, view);
      return view;
    },
  };
}

/** A SourceTensor over f32 values in memory (tests, generated data). */
export function sourceTensorFromF32(name: string, shape: readonly number[], data: Float32Array): SourceTensor {
  const [rows, cols] = rowsCols(shape);
  if (data.length !== rows * cols) throw new RangeError(`Cannot wrap "${name}": ${data.length} values for [${shape}]`);
  return {
    name,
    dtype: "F32",
    shape,
    readRows(row0, nRows, dst = new Float32Array(nRows * cols)) {
      checkRows(name, rows, row0, nRows);
      const view = dst.subarray(0, nRows * cols);
      view.set(data.subarray(row0 * cols, (row0 + nRows) * cols));
      return view;
    },
  };
}

/**
 * Concatenates per-shard tensors along `dim` (0: rows, 1: columns of 2-D tensors), as Meta's model-parallel
 * shards are joined. Parts must agree on every other dimension.
 */
export function concatSourceTensors(name: string, parts: SourceTensor[], dim: 0 | 1): SourceTensor {
  if (parts.length === 0) throw new RangeError(`Cannot concatenate "${name}": no parts`);
  if (parts.length === 1) return parts[0];
  const shapes = parts.map((p) => rowsCols(p.shape));
  if (dim === 0) {
    const cols = shapes[0][1];
    if (shapes.some(([, c]) => c !== cols)) {
      throw new RangeError(
        `Cannot concatenate "${name}" along rows: column counts differ (${shapes.map((s) => s[1])})`,
      );
    }
    const starts: number[] = [];
    let rows = 0;
    for (const [r] of shapes) {
      starts.push(rows);
      rows += r;
    }
    const shape = [rows, ...parts[0].shape.slice(1)];
    return {
      name,
      dtype: parts[0].dtype,
      shape,
      readRows(row0, nRows, dst = new Float32Array(nRows * cols)) {
        checkRows(name, rows, row0, nRows);
        let done = 0;
        for (let i = 0; i < parts.length && done < nRows; i++) {
          const r = row0 + done;
          const end = starts[i] + shapes[i][0];
          if (r >= end) continue;
          const take = Math.min(end - r, nRows - done);
          parts[i].readRows(r - starts[i], take, dst.subarray(done * cols, (done + take) * cols));
          done += take;
        }
        return dst.subarray(0, nRows * cols);
      },
    };
  }
  const rows = shapes[0][0];
  if (parts.some((p) => p.shape.length !== 2) || shapes.some(([r]) => r !== rows)) {
    throw new RangeError(`Cannot concatenate "${name}" along columns: parts must be 2-D with ${rows} rows`);
  }
  const cols = shapes.reduce((s, [, c]) => s + c, 0);
  return {
    name,
    dtype: parts[0].dtype,
    shape: [rows, cols],
    readRows(row0, nRows, dst = new Float32Array(nRows * cols)) {
      checkRows(name, rows, row0, nRows);
      let c0 = 0;
      for (let i = 0; i < parts.length; i++) {
        const pc = shapes[i][1];
        const tmp = parts[i].readRows(row0, nRows);
        for (let r = 0; r < nRows; r++) dst.set(tmp.subarray(r * pc, (r + 1) * pc), r * cols + c0);
        c0 += pc;
      }
      return dst.subarray(0, nRows * cols);
    },
  };
}
