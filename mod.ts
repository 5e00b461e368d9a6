/**
 * yangtuo library API: each room's public surface (commands are not part of it).
 *
 * @example
 * ```ts
 * import { f32ToF16Ref } from "./mod.ts";
 * f32ToF16Ref(1); // 0x3c00
 * ```
 */
export * from "./src/core/mod.ts";
export * from "./src/quant/mod.ts";
export * from "./src/kernels/mod.ts";
export * from "./src/tokenizer/mod.ts";
export * from "./src/chat/mod.ts";
export * from "./src/merge/mod.ts";
export * from "./src/train/mod.ts";
