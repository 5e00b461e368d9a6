/**
 * Kernels: the one pointer-level `Kernels` interface the engine runs on, with its two implementations —
 * `ScalarKernels` (the scalar TypeScript references, `…Ref`, the definitions) and `SimdKernels` (the WASM SIMD
 * module) — chosen by `createKernels("scalar" | "wasm")`; the training kernels beside them.
 *
 * @example
 * ```ts
 * import { createKernels } from "./mod.ts";
 * const k = await createKernels("scalar"); // or "wasm": same results within the tolerances of tests/kernels
 * const x = k.alloc(4 * 4), w = k.alloc(4 * 4); // pointers: byte offsets into k.memory
 * k.copyIn(new Float32Array([1, 2, 3, 4]), 0, x, 4);
 * k.fill(w, 4, 2); // gains
 * k.rmsNorm(x, w, x, 4, 0, 1); // x = x / rms(x) * w, in place, one row
 * const out = new Float32Array(4);
 * k.copyOut(x, 1, 4, out, 0, 4); // ≈ [0.730, 1.461, 2.191, 2.921]
 * ```
 * @module
 */
export { type CacheShape, type KernelChoice, type Kernels, type MatrixSlice, storedTypeOf } from "./kernels.ts";
export { convertRows, KernelMemory, ScalarKernels } from "./scalar_kernels.ts";
export { createKernels, SimdKernels, wasmMatrixBytes } from "./simd_kernels.ts";
export {
  attentionRef,
  type AttentionShape,
  matmulF16Ref,
  matmulF32Ref,
  matmulQ4_0Ref,
  matmulQ8_0Ref,
  matvecF16Ref,
  matvecF32Ref,
  matvecQ4_0Ref,
  matvecQ8_0Ref,
  Q4_0R_GROUP_BLOCK_BYTES,
  Q4_0R_ROWS,
  Q8_0R_GROUP_BLOCK_BYTES,
  Q8_0R_ROWS,
  repackedQ4_0Bytes,
  repackedQ8_0Bytes,
  repackQ4_0Ref,
  repackQ8_0Ref,
  rmsNormRef,
  ropeRef,
  type RowRange,
  siluGateRef,
  softmaxRef,
} from "./scalar.ts";
export {
  Arena,
  compileKernelsModule,
  DOT_PROBE_BYTES,
  type DotForm,
  instantiateWasmKernels,
  type KernelExports,
  KERNELS_WASM_URL,
  type LoadKernelsOptions,
  loadWasmKernels,
  pickDotForm,
  provideKernelsModule,
  q4_0RScratchBytes,
  q8_0RScratchBytes,
  q8ABytes,
  q8AStride,
  WASM_MAX_PAGES,
  WASM_PAGE_BYTES,
  WasmKernels,
} from "./wasm.ts";
export { type FrozenType, type FrozenWeight, scalarTrainKernels, type TrainKernels } from "./train_kernels.ts";
export {
  createWasmTrainKernels,
  DEFAULT_MAX_RESIDENT_BYTES,
  frozenWeightBytes,
  TRAIN_TYPE_CODES,
  type TrainKernelExports,
  WasmTrainKernels,
  type WasmTrainKernelsOptions,
} from "./train_wasm.ts";
