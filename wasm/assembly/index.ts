// yangtuo WASM kernels: the exported ABI. Pointers are byte offsets into the imported shared memory.
// see: wasm/README.md
export { f16ToF32Array, f32ToF16Array, bf16ToF32Array } from "./f16";
export {
  quantizeRowQ4_0, quantizeRowQ8_0, quantizeQ8A, dequantizeRowQ4_0, dequantizeRowQ8_0, repackQ4_0, repackQ8_0,
} from "./quant";
export {
  matvecQ4_0R, matmulQ4_0R, matvecQ8_0R, matmulQ8_0R, matvecF16, matmulF16, matvecF32, matmulF32, streamRead,
} from "./matmul";
export { matvecQ4_0RVnni, matmulQ4_0RVnni, matvecQ8_0RVnni, matmulQ8_0RVnni } from "./matmul";
export { rmsNorm, softmax, rope, siluGate, attention } from "./ops";

// First byte after the module's static data: the TypeScript arena allocates from here.
export function heapBase(): usize {
  return __heap_base;
}
export { trainScratchBytes, trainMatmul, trainMatmulBackwardInput, trainMatmulBackwardWeight } from "./train";
export {
  trainAttentionScratchBytes, trainAttentionForward, trainAttentionBackward, trainCrossEntropyForward,
  trainCrossEntropyBackward, trainRmsNormForward, trainRmsNormBackward, trainSwigluForward, trainSwigluBackward,
  trainDropout, trainRope, trainDropoutBackward, trainAdamw,
} from "./train";
