/**
 * WasmShardKernels' load path for repacked weights: a chunk whose converted bytes exceed the 16 MiB staging area (as a
 * K-quant chunk does once requantized to Q8_0) is repacked in runs, at a chunk offset, and multiplies like the scalar
 * reference. Oracle: matmulQ8_0Ref / matmulQ4_0Ref on the same standard rows.
 */
import { assertAllClose } from "../_assert.ts";
import { randomNormal } from "../_rand.ts";
import { matmulQ4_0Ref, matmulQ8_0Ref } from "../../src/kernels/scalar.ts";
import { createWasmShardKernels } from "../../src/model/wasm_shard_kernels.ts";
import type { MatrixSlice } from "../../src/model/shard_kernels.ts";
import { quantizeRowQ4_0Ref } from "../../src/quant/q4_0.ts";
import { quantizeRowQ8_0Ref } from "../../src/quant/q8_0.ts";

for (const dtype of ["Q8_0", "Q4_0"] as const) {
  Deno.test(`WasmShardKernels loads ${dtype} chunks larger than the staging area, at a chunk offset`, async () => {
    // 4104 rows × 4096 cols: 17.9 MB of Q8_0 in one chunk (> 16 MiB), loaded as rows [0, 8) then [8, 4104)
    const rows = 4104, cols = 4096, B = 2;
    const wf = randomNormal(rows * cols, 5, 0.05);
    const blockBytes = dtype === "Q8_0" ? 34 : 18;
    const std = new Uint8Array(rows * (cols / 32) * blockBytes);
    (dtype === "Q8_0" ? quantizeRowQ8_0Ref : quantizeRowQ4_0Ref)(wf, std);
    const k = await createWasmShardKernels();
    k.scratch(B, cols);
    const slice: MatrixSlice = { dtype, rows, cols, ptr: k.allocMatrix(dtype, rows, cols) };
    const rowBytes = std.length / rows;
    k.loadMatrixRows(slice, dtype, std.subarray(0, 8 * rowBytes), 0, 8);
    k.loadMatrixRows(slice, dtype, std.subarray(8 * rowBytes), 8, rows - 8);
    const x = randomNormal(B * cols, 6);
    const xp = k.alloc(4 * B * cols), yp = k.alloc(4 * B * rows);
    k.copyIn(x, 0, xp, B * cols);
    k.matmul(slice, xp, yp, B);
    const got = new Float32Array(k.memory.buffer, yp, B * rows).slice();
    const want = new Float32Array(B * rows);
    (dtype === "Q8_0" ? matmulQ8_0Ref : matmulQ4_0Ref)(std, x, want, rows, cols, B);
    let scale = 0;
    for (const v of want) scale = Math.max(scale, Math.abs(v));
    assertAllClose(got, want, { atol: 1e-5 * scale, rtol: 1e-5 });
  });
}
