/**
 * Kernel benchmarks at LLaMA-7B shapes (dim 4096, hidden 11008, vocab 49953) plus one cache-resident shape,
 * single thread. Every WASM result is validated against the scalar reference before anything is timed.
 * Each Q4_0 group has two baselines: the TypeScript reference (on a row slice: it is slow) and a pure WASM
 * streaming read of the same number of Q4_0 bytes (the bandwidth ceiling). Throughput = GB/s of Q4_0 weight bytes
 * (18 bytes per 32 weights; the repacked layout actually reads 160/144 of that).
 * Run: deno task bench (or deno bench --allow-read bench/kernels_bench.ts). A GB/s table is printed first.
 */
import { loadWasmKernels, q8ABytes, q8AStride, repackedQ4_0Bytes, scalarKernels } from "../src/kernels/mod.ts";
import { BLOCK_Q4_0_BYTES, quantizeRowQ4_0Ref } from "../src/quant/q4_0.ts";
import { f32ToF16Ref } from "../src/core/f16.ts";

const k = await loadWasmKernels({ initialPages: 256 });
const a = k.arena;

/** Deterministic pseudo-random bytes (xorshift32), fast enough for 100+ MB. */
function fillRandom(u8: Uint8Array, seed: number): void {
  const u32 = new Uint32Array(u8.buffer, u8.byteOffset, u8.byteLength >> 2);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < u32.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    u32[i] = s >>> 0;
  }
}

/** Random standard Q4_0 rows with plausible fp16 scales (|d| in [1e-3, 2e-2)). */
function randomQ4_0(nRows: number, nCols: number, seed: number): number {
  const nBytes = nRows * (nCols / 32) * BLOCK_Q4_0_BYTES;
  const p = a.alloc(nBytes + 64, 64);
  const u8 = a.u8(p, nBytes);
  fillRandom(a.u8(p, nBytes - (nBytes % 4)), seed);
  for (let o = 0; o < nBytes; o += BLOCK_Q4_0_BYTES) {
    const h = f32ToF16Ref((1e-3 + (u8[o] / 255) * 1.9e-2) * (u8[o + 1] & 1 ? -1 : 1));
    u8[o] = h & 0xff;
    u8[o + 1] = h >> 8;
  }
  return p;
}

function randomF32(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

interface Q4Case {
  nRows: number;
  nCols: number;
  q4: number; // standard Q4_0 rows
  wr: number; // repacked
  act: number;
  x: Float32Array;
  y: number;
  scratch: number;
  nBytes: number; // Q4_0 bytes
  refRows: number;
}

function setupQ4(nRows: number, nCols: number, seed: number): Q4Case {
  const q4 = randomQ4_0(nRows, nCols, seed);
  const wr = a.alloc(repackedQ4_0Bytes(nRows, nCols));
  k.ptr.repackQ4_0(q4, wr, nRows, nCols);
  const x = randomF32(nCols, seed + 1);
  const xp = a.put(x);
  const act = a.alloc(q8ABytes(nCols));
  k.ptr.quantizeQ8A(xp, act, nCols);
  const y = a.alloc(4 * nRows);
  const scratch = a.alloc(32);
  const nBytes = nRows * (nCols / 32) * BLOCK_Q4_0_BYTES;
  const c = { nRows, nCols, q4, wr, act, x, y, scratch, nBytes, refRows: Math.min(nRows, 256) };
  // validate: WASM rows vs the reference on a slice at the start and at the end
  k.ptr.matvecQ4_0R(wr, act, y, nRows, nCols, 0, nRows, scratch);
  const got = a.f32(y, nRows);
  for (const r0 of [0, Math.max(0, nRows - 64)]) {
    const n = Math.min(64, nRows - r0);
    const rowBytes = (nCols / 32) * BLOCK_Q4_0_BYTES;
    const want = new Float32Array(n);
    scalarKernels.matvecQ4_0(a.u8(q4 + r0 * rowBytes, n * rowBytes).slice(), x, want, n, nCols);
    for (let i = 0; i < n; i++) {
      if (!(Math.abs(got[r0 + i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])))) {
        throw new Error(`matvecQ4_0 ${nRows}x${nCols} row ${r0 + i}: ${got[r0 + i]} vs ${want[i]}`);
      }
    }
  }
  return c;
}

const SHAPES: [number, number][] = [[4096, 4096], [11008, 4096], [4096, 11008], [49953, 4096], [256, 1024]];
const cases = SHAPES.map(([r, c], i) => setupQ4(r, c, 100 + i));

function streamBytes(c: Q4Case): number {
  return c.nBytes - (c.nBytes % 64);
}

function refSlice(c: Q4Case): () => void {
  const rowBytes = (c.nCols / 32) * BLOCK_Q4_0_BYTES;
  const w = a.u8(c.q4, c.refRows * rowBytes).slice();
  const y = new Float32Array(c.refRows);
  return () => scalarKernels.matvecQ4_0(w, c.x, y, c.refRows, c.nCols);
}

// ---- batched (prompt) product, quantizers, other dtypes -------------------------------------------------------
const BATCH = 16;
const mm = (() => {
  const c = cases[0];
  const stride = q8AStride(c.nCols);
  const acts = a.alloc(stride * BATCH);
  const xs = randomF32(BATCH * c.nCols, 7);
  const xp = a.put(xs);
  for (let t = 0; t < BATCH; t++) k.ptr.quantizeQ8A(xp + 4 * t * c.nCols, acts + t * stride, c.nCols);
  const y = a.alloc(4 * BATCH * c.nRows);
  const scratch = a.alloc(32 * BATCH);
  k.ptr.matmulQ4_0R(c.wr, acts, stride, y, c.nRows, c.nCols, BATCH, 0, c.nRows, scratch);
  const ym = a.f32(y, BATCH * c.nRows);
  const yv = a.f32(c.y, c.nRows);
  for (let t = 0; t < BATCH; t++) {
    k.ptr.matvecQ4_0R(c.wr, acts + t * stride, c.y, c.nRows, c.nCols, 0, c.nRows, c.scratch);
    for (let r = 0; r < c.nRows; r += 97) {
      if (!(Math.abs(ym[t * c.nRows + r] - yv[r]) <= 1e-4 * (1 + Math.abs(yv[r])))) {
        throw new Error(`matmulQ4_0 batch row ${t} row ${r}: ${ym[t * c.nRows + r]} vs ${yv[r]}`);
      }
    }
  }
  return { c, acts, stride, y, scratch };
})();

const QN = 4096 * 4096;
const quant = (() => {
  const x = randomF32(QN, 9);
  const xp = a.put(x);
  const out = a.alloc((QN / 32) * BLOCK_Q4_0_BYTES);
  k.ptr.quantizeRowQ4_0(xp, out, QN);
  const sliceN = 256 * 4096;
  const want = new Uint8Array((sliceN / 32) * BLOCK_Q4_0_BYTES);
  quantizeRowQ4_0Ref(x.subarray(0, sliceN), want);
  const got = a.u8(out, want.length);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Error(`quantizeRowQ4_0 byte ${i}: ${got[i]} vs ${want[i]}`);
  }
  return { x, xp, out, sliceX: x.subarray(0, sliceN), want };
})();

// ---- a small printed table (median of a few timed runs) -------------------------------------------------------
function timeMs(fn: () => void, minMs = 150, minReps = 3): number {
  fn();
  const ts: number[] = [];
  const t0 = performance.now();
  while (ts.length < minReps || performance.now() - t0 < minMs) {
    const t = performance.now();
    fn();
    ts.push(performance.now() - t);
    if (ts.length >= 200) break;
  }
  ts.sort((p, q) => p - q);
  return ts[ts.length >> 1];
}

if (!Deno.args.includes("--no-table")) {
  const rows: string[] = [];
  rows.push(
    "| shape (rows x cols) | Q4_0 MB | stream GB/s | WASM matvec GB/s | % of stream | TS ref GB/s | WASM / ref |",
  );
  rows.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const c of cases) {
    const ts = timeMs(() => k.raw.streamRead(c.q4, streamBytes(c)));
    const tk = timeMs(() => k.raw.matvecQ4_0R(c.wr, c.act, c.y, c.nCols, 0, c.nRows, c.scratch));
    const tr = timeMs(refSlice(c), 0, 2);
    const gs = streamBytes(c) / ts / 1e6, gk = c.nBytes / tk / 1e6;
    const gr = (c.refRows * (c.nCols / 32) * BLOCK_Q4_0_BYTES) / tr / 1e6;
    rows.push(
      `| matvecQ4_0 ${c.nRows}x${c.nCols} | ${(c.nBytes / 1e6).toFixed(1)} | ${gs.toFixed(2)} | ${gk.toFixed(2)} | ${
        (100 * gk / gs).toFixed(0)
      }% | ${gr.toFixed(3)} | ${(gk / gr).toFixed(0)}x |`,
    );
  }
  const tmm = timeMs(() =>
    k.raw.matmulQ4_0R(mm.c.wr, mm.acts, mm.stride, mm.y, mm.c.nCols, mm.c.nRows, BATCH, 0, mm.c.nRows, mm.scratch)
  );
  const tmv = timeMs(() => k.raw.matvecQ4_0R(mm.c.wr, mm.c.act, mm.c.y, mm.c.nCols, 0, mm.c.nRows, mm.c.scratch));
  const tq = timeMs(() => k.raw.quantizeRowQ4_0(quant.xp, quant.out, QN), 0, 3);
  const tqr = timeMs(() => quantizeRowQ4_0Ref(quant.sliceX, quant.want), 0, 2) * (QN / quant.sliceX.length);
  console.log(rows.join("\n"));
  console.log(
    `\nmatmulQ4_0 4096x4096 batch ${BATCH}: ${(tmm / BATCH).toFixed(3)} ms/row vs matvec ${tmv.toFixed(3)} ms ` +
      `(${(tmv / (tmm / BATCH)).toFixed(2)}x per row)`,
  );
  console.log(
    `quantizeRowQ4_0 4096x4096: WASM ${tq.toFixed(1)} ms, TS ref ${tqr.toFixed(0)} ms (${(tqr / tq).toFixed(1)}x), ` +
      `bytes identical (checked on 256 rows)\n`,
  );
}

// ---- deno bench groups ----------------------------------------------------------------------------------------
for (const c of cases) {
  const group = `matvecQ4_0 ${c.nRows}x${c.nCols}`;
  Deno.bench(`${group} stream read (WASM, same bytes)`, { group, baseline: true, n: 30, warmup: 3 }, () => {
    k.raw.streamRead(c.q4, streamBytes(c));
  });
  Deno.bench(`${group} TS reference (${c.refRows}-row slice)`, { group, n: 3, warmup: 1 }, refSlice(c));
  Deno.bench(`${group} WASM Q4_0R relaxed SIMD`, { group, n: 30, warmup: 3 }, () => {
    k.raw.matvecQ4_0R(c.wr, c.act, c.y, c.nCols, 0, c.nRows, c.scratch);
  });
}

Deno.bench(`matmulQ4_0 4096x4096 batch ${BATCH} as ${BATCH} matvecs`, {
  group: "matmulQ4_0 batch",
  baseline: true,
  n: 10,
  warmup: 2,
}, () => {
  for (let t = 0; t < BATCH; t++) {
    k.raw.matvecQ4_0R(mm.c.wr, mm.acts + t * mm.stride, mm.y, mm.c.nCols, 0, mm.c.nRows, mm.scratch);
  }
});
Deno.bench(`matmulQ4_0 4096x4096 batch ${BATCH}`, { group: "matmulQ4_0 batch", n: 10, warmup: 2 }, () => {
  k.raw.matmulQ4_0R(mm.c.wr, mm.acts, mm.stride, mm.y, mm.c.nCols, mm.c.nRows, BATCH, 0, mm.c.nRows, mm.scratch);
});

Deno.bench("quantizeRowQ4_0 4096x4096 TS reference (256-row slice)", {
  group: "quantizeRowQ4_0",
  baseline: true,
  n: 3,
  warmup: 1,
}, () => quantizeRowQ4_0Ref(quant.sliceX, quant.want));
Deno.bench("quantizeRowQ4_0 4096x4096 WASM (256-row slice)", { group: "quantizeRowQ4_0", n: 20, warmup: 2 }, () => {
  k.raw.quantizeRowQ4_0(quant.xp, quant.out, quant.sliceX.length);
});
