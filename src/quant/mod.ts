/**
 * Quantized block formats (llama.cpp Q4_0, Q8_0) and their reference quantizers, the definition the WASM
 * kernels are tested against.
 *
 * @example
 * ```ts
 * import { BLOCK_Q4_0_BYTES, dequantizeRowQ4_0Ref, quantizeRowQ4_0Ref } from "./mod.ts";
 * const x = new Float32Array(32).map((_, i) => i - 16);
 * const q = new Uint8Array(BLOCK_Q4_0_BYTES);
 * quantizeRowQ4_0Ref(x, q);
 * const y = new Float32Array(32);
 * dequantizeRowQ4_0Ref(q, y); // y[0] === -16
 * ```
 * @module
 */
export { BLOCK_Q4_0_BYTES, dequantizeRowQ4_0Ref, QK4_0, quantizeRowQ4_0Ref } from "./q4_0.ts";
export { BLOCK_Q8_0_BYTES, dequantizeRowQ8_0Ref, QK8_0, quantizeRowQ8_0Ref } from "./q8_0.ts";
export * from "./legacy_quants.ts";
export * from "./k_quants.ts";
export { DEQUANTIZABLE_DTYPES, dequantizeRef } from "./dequantize.ts";
