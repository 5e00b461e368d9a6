// yangtuo WASM kernels: the exported ABI. Pointers are byte offsets into the imported shared memory.
// see: wasm/README.md
export { f16ToF32Array, f32ToF16Array, bf16ToF32Array } from "./f16";
