/**
 * Tensor descriptors shared by every format reader: what a tensor is and where its bytes are.
 * Shapes are row-major, outermost dimension first (PyTorch order): a linear weight W is [out, in].
 * GGUF stores `ne` innermost first; its reader reverses it into `shape` and keeps `ne` for display.
 */
import type { DType } from "./dtypes.ts";

/** A tensor stored contiguously in a file. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  /** Row-major shape, outermost first. */
  shape: number[];
  /** Absolute byte offset of the tensor's first byte in its file. */
  byteOffset: number;
  nBytes: number;
}
