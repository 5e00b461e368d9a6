/**
 * Shared helpers for kernel tests: the WASM instance, quantized test matrices, and accumulation-error bounds.
 */
import { loadTypedWasmKernels, type TypedWasmKernels } from "./_typed_kernels.ts";
import { BLOCK_Q4_0_BYTES, dequantizeRowQ4_0Ref, quantizeRowQ4_0Ref } from "../../src/quant/q4_0.ts";
import { BLOCK_Q8_0_BYTES, dequantizeRowQ8_0Ref, quantizeRowQ8_0Ref } from "../../src/quant/q8_0.ts";
import { assert } from "../_assert.ts";

let instance: Promise<TypedWasmKernels> | undefined;

/** One WASM kernels instance per test module. */
export function wasm(): Promise<TypedWasmKernels> {
  instance ??= loadTypedWasmKernels();
  return instance;
}

/** Quantizes a (nRows, nCols) f32 matrix to Q4_0 rows with the reference. */
export function q4(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * BLOCK_Q4_0_BYTES);
  quantizeRowQ4_0Ref(x, out);
  return out;
}

/** Quantizes to Q8_0 rows with the reference. */
export function q8(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * BLOCK_Q8_0_BYTES);
  quantizeRowQ8_0Ref(x, out);
  return out;
}

export function dq4(b: Uint8Array): Float32Array {
  const out = new Float32Array((b.length / BLOCK_Q4_0_BYTES) * 32);
  dequantizeRowQ4_0Ref(b, out);
  return out;
}

export function dq8(b: Uint8Array): Float32Array {
  const out = new Float32Array((b.length / BLOCK_Q8_0_BYTES) * 32);
  dequantizeRowQ8_0Ref(b, out);
  return out;
}

/** Per-output sums S[t*nRows+r] = Σ_j |W[r,j]| |X[t,j]| (f64): the scale of a dot product's rounding error. */
export function absDotSums(w: ArrayLike<number>, x: ArrayLike<number>, nRows: number, nCols: number, batch: number) {
  const s = new Float64Array(batch * nRows);
  for (let t = 0; t < batch; t++) {
    for (let r = 0; r < nRows; r++) {
      let a = 0;
      for (let j = 0; j < nCols; j++) a += Math.abs(w[r * nCols + j]) * Math.abs(x[t * nCols + j]);
      s[t * nRows + r] = a;
    }
  }
  return s;
}

/** Asserts |a[i] - e[i]| <= relTol * s[i] + atol for every i, printing the worst offender. */
export function assertWithinBound(
  a: ArrayLike<number>,
  e: ArrayLike<number>,
  s: ArrayLike<number>,
  relTol: number,
  atol = 0,
  msg = "",
): void {
  let worst = -1, worstRatio = 0;
  for (let i = 0; i < e.length; i++) {
    const err = Math.abs(a[i] - e[i]);
    const tol = relTol * s[i] + atol;
    const ratio = tol > 0 ? err / tol : (err > 0 ? Infinity : 0);
    if (!(ratio <= worstRatio)) {
      worstRatio = ratio;
      worst = i;
    }
  }
  assert(
    worstRatio <= 1,
    `${msg}: [${worst}] ${a[worst]} vs ${e[worst]} (err ${Math.abs(a[worst] - e[worst])}, bound ${
      relTol * s[worst] + atol
    })`,
  );
}
