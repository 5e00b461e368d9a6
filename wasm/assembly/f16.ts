// f16 / bf16 conversion kernels. see: src/core/f16.ts (the references)
import { f2h, h2f } from "./common";

// Converts n f16 values at src (2-byte aligned) to f32 at dst (4-byte aligned). src and dst must not overlap.
export function f16ToF32Array(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    store<f32>(dst + (<usize>i << 2), h2f(<u32>load<u16>(src + (<usize>i << 1))));
  }
}

// Converts n f32 values at src to f16 bits at dst. src and dst must not overlap.
export function f32ToF16Array(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    store<u16>(dst + (<usize>i << 1), <u16>f2h(load<f32>(src + (<usize>i << 2))));
  }
}

// Converts n bf16 values at src to f32 at dst.
export function bf16ToF32Array(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
  }
}
