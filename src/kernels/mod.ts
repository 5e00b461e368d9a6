/**
 * Kernels: scalar TypeScript references (`…Ref`, the definitions) and the WASM SIMD module behind one `Kernels`
 * interface; the engine uses `WasmKernels.ptr` / `.raw` on its own buffers (see wasm/README.md).
 *
 * @example
 * ```ts
 * import { loadWasmKernels, scalarKernels } from "./mod.ts";
 * const k = await loadWasmKernels();
 * const x = new Float32Array([1, 2, 3]);
 * k.softmax(x); // same as scalarKernels.softmax within ~1e-6
 * ```
 * @module
 */
export type { Kernels } from "./kernels.ts";
export { scalarKernels } from "./kernels.ts";
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
  instantiateWasmKernels,
  type KernelExports,
  KERNELS_WASM_URL,
  type LoadKernelsOptions,
  loadWasmKernels,
  q4_0RScratchBytes,
  q8ABytes,
  q8AStride,
  WASM_MAX_PAGES,
  WASM_PAGE_BYTES,
  WasmKernels,
  WasmPtrKernels,
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
