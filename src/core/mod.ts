/**
 * Core: errors, dtypes, f16/bf16, tensor descriptors, byte sources. Imports nothing.
 *
 * @example
 * ```ts
 * import { f16ToF32Ref, f32ToF16Ref } from "./mod.ts";
 * f16ToF32Ref(f32ToF16Ref(1.5)); // 1.5
 * ```
 */
export * from "./errors.ts";
export * from "./dtypes.ts";
export * from "./f16.ts";
export * from "./tensor.ts";
export * from "./byte_source.ts";
export * from "./event_loop.ts";
export * from "./blob_source.ts";
