/**
 * The WASM training ops other than products (src/kernels/train_wasm.ts: causal GQA attention, cross-entropy, RMSNorm,
 * SwiGLU, forward and backward) vs their definitions, the …Ref functions of src/kernels/train_kernels.ts, on awkward
 * sizes. Oracle: the plain TS loops (f64 sums, Math.exp); the WASM side sums f32 vectors and uses a ~2 ulp exp, so
 * floats agree within tolerances relative to each output's scale. Also: 2 threads give the same bits as 1, buffers
 * from allocF32 (used in place) give the same bits as plain arrays (copied), and bad shapes throw before any work.
 */
import { assert, assertAllClose, assertEquals, assertThrows } from "../_assert.ts";
import { randomNormal } from "../_rand.ts";
import {
  adamwRef,
  attentionBackwardRef,
  attentionForwardRef,
  crossEntropyBackwardRef,
  crossEntropyForwardRef,
  dropoutBackwardRef,
  dropoutRef,
  rmsNormBackwardRef,
  rmsNormForwardRef,
  ropeRef,
  swigluBackwardRef,
  swigluForwardRef,
} from "../../src/kernels/train_kernels.ts";
import { createWasmTrainKernels, type WasmTrainKernels } from "../../src/kernels/train_wasm.ts";

const k = await createWasmTrainKernels();

/** Close within rel of the expected values' largest magnitude (sums of mixed signs cancel, so not per element). */
function close(a: Float32Array, e: ArrayLike<number>, rel: number, msg: string, atol = 1e-30): void {
  let scale = 0;
  for (let i = 0; i < e.length; i++) scale = Math.max(scale, Math.abs(e[i]));
  assertAllClose(a, e, { atol: rel * scale + atol, rtol: rel, msg });
}

/** (B, T, nHeads, nKvHeads, headSize): T past and below the 16-row score block, odd head sizes, GQA groups. */
const ATTENTION_SHAPES: [number, number, number, number, number][] = [
  [1, 1, 1, 1, 1],
  [2, 3, 2, 1, 3],
  [1, 17, 4, 2, 5],
  [2, 33, 3, 3, 8],
  [1, 40, 4, 1, 16],
  [1, 70, 2, 2, 12],
  [2, 31, 2, 1, 48],
];

interface AttentionCase {
  q: Float32Array;
  kk: Float32Array;
  v: Float32Array;
  dao: Float32Array;
  dims: [number, number, number, number, number];
}

function attentionCase(B: number, T: number, nHeads: number, nKv: number, hs: number, seed: number): AttentionCase {
  const N = B * T;
  return {
    q: randomNormal(N * nHeads * hs, seed),
    kk: randomNormal(N * nKv * hs, seed + 1),
    v: randomNormal(N * nKv * hs, seed + 2),
    dao: randomNormal(N * nHeads * hs, seed + 3),
    dims: [B, T, nHeads, nKv, hs],
  };
}

/** Runs forward + backward on `kernels`; outputs in arrays made by `alloc`. */
function runAttention(kernels: WasmTrainKernels, c: AttentionCase, alloc: (n: number) => Float32Array) {
  const [B, T, nHeads, nKv, hs] = c.dims;
  const N = B * T;
  const put = (a: Float32Array) => {
    const b = alloc(a.length);
    b.set(a);
    return b;
  };
  const q = put(c.q), kk = put(c.kk), v = put(c.v), dao = put(c.dao);
  const ao = alloc(N * nHeads * hs), p = alloc(B * nHeads * T * T), pInv = alloc(B * nHeads * T);
  kernels.attentionForward(ao, p, pInv, q, kk, v, B, T, nHeads, nKv, hs);
  const dq = alloc(N * nHeads * hs).fill(NaN), dk = alloc(N * nKv * hs).fill(NaN), dv = alloc(N * nKv * hs).fill(NaN);
  kernels.attentionBackward(dq, dk, dv, dao, q, kk, v, p, pInv, B, T, nHeads, nKv, hs);
  return { ao, p, pInv, dq, dk, dv };
}

/** The causal triangle of p (B·nHeads, T, T): the entries the forward defines. */
function triangle(p: Float32Array, BH: number, T: number): Float32Array {
  const out: number[] = [];
  for (let bh = 0; bh < BH; bh++) {
    for (let t = 0; t < T; t++) for (let j = 0; j <= t; j++) out.push(p[(bh * T + t) * T + j]);
  }
  return Float32Array.from(out);
}

Deno.test("attentionForward()/attentionBackward() (WASM) match attentionForwardRef/attentionBackwardRef at awkward shapes", () => {
  for (const [B, T, nHeads, nKv, hs] of ATTENTION_SHAPES) {
    const c = attentionCase(B, T, nHeads, nKv, hs, 10 * T + hs);
    const N = B * T;
    const ao = new Float32Array(N * nHeads * hs), p = new Float32Array(B * nHeads * T * T);
    const pInv = new Float32Array(B * nHeads * T);
    attentionForwardRef(ao, p, pInv, c.q, c.kk, c.v, B, T, nHeads, nKv, hs);
    const dq = new Float32Array(N * nHeads * hs), dk = new Float32Array(N * nKv * hs), dv = dk.slice();
    attentionBackwardRef(dq, dk, dv, c.dao, c.q, c.kk, c.v, p, pInv, B, T, nHeads, nKv, hs);
    const got = runAttention(k, c, (n) => new Float32Array(n));
    const what = `B ${B} T ${T} heads ${nHeads}/${nKv} hs ${hs}`;
    close(got.ao, ao, 2e-6, `ao ${what}`);
    close(got.pInv, pInv, 2e-6, `pInv ${what}`);
    close(triangle(got.p, B * nHeads, T), triangle(p, B * nHeads, T), 2e-6, `p ${what}`);
    close(got.dq, dq, 1e-5, `dq ${what}`);
    close(got.dk, dk, 1e-5, `dk ${what}`);
    close(got.dv, dv, 1e-5, `dv ${what}`);
  }
});

Deno.test("crossEntropyForward()/crossEntropyBackward() (WASM) match the references at awkward vocabulary sizes", () => {
  for (const [m, V] of [[1, 1], [3, 5], [7, 33], [5, 300], [4, 4099]]) {
    const logits = randomNormal(m * V, m + V, 3), targets = Int32Array.from({ length: m }, (_, i) => (i * 7919) % V);
    const want = logits.slice(), wantInv = new Float32Array(m);
    const lossWant = crossEntropyForwardRef(want, wantInv, targets, m, V);
    const got = logits.slice(), gotInv = new Float32Array(m);
    const loss = k.crossEntropyForward(got, gotInv, targets, m, V);
    assert(Math.abs(loss - lossWant) <= 1e-6 * Math.max(1, Math.abs(lossWant)), `loss ${loss} vs ${lossWant}`);
    close(got, want, 1e-6, `exp logits ${m}x${V}`);
    close(gotInv, wantInv, 1e-6, `invSum ${m}x${V}`);
    crossEntropyBackwardRef(want, wantInv, targets, m, V, 0.37);
    k.crossEntropyBackward(got, gotInv, targets, m, V, 0.37);
    close(got, want, 2e-6, `dlogits ${m}x${V}`, 1e-7); // softmax − 1 at V = 1 is 0 up to rounding
  }
});

Deno.test("rmsNormForward()/rmsNormBackward() (WASM) match the references at awkward widths, with and without dw", () => {
  for (const [n, dim] of [[1, 1], [3, 3], [5, 31], [2, 33], [7, 128], [2, 4099]]) {
    const x = randomNormal(n * dim, n + dim), w = randomNormal(dim, dim, 0.5), dy = randomNormal(n * dim, dim + 1);
    const y = new Float32Array(n * dim), r = new Float32Array(n), y2 = y.slice(), r2 = r.slice();
    rmsNormForwardRef(y, r, x, w, n, dim, 1e-5);
    k.rmsNormForward(y2, r2, x, w, n, dim, 1e-5);
    close(y2, y, 2e-6, `y ${n}x${dim}`);
    close(r2, r, 2e-6, `r ${n}x${dim}`);
    const dx0 = randomNormal(n * dim, 7, 0.1), dw0 = randomNormal(dim, 8, 0.1);
    const dx = dx0.slice(), dw = dw0.slice(), dx2 = dx0.slice(), dw2 = dw0.slice();
    rmsNormBackwardRef(dx, dw, dy, x, r, w, n, dim);
    k.rmsNormBackward(dx2, dw2, dy, x, r, w, n, dim);
    close(dx2, dx, 1e-5, `dx ${n}x${dim}`);
    close(dw2, dw, 1e-5, `dw ${n}x${dim}`);
    const dx3 = dx0.slice();
    k.rmsNormBackward(dx3, undefined, dy, x, r, w, n, dim);
    assertEquals(dx3, dx2, "dx does not depend on whether dw is asked for");
  }
});

Deno.test("swigluForward()/swigluBackward() (WASM) match the references, tails and large |g| included", () => {
  for (const n of [1, 3, 4, 5, 31, 33, 4099]) {
    const g = randomNormal(n, n, 4), u = randomNormal(n, n + 1);
    if (n > 3) g.set([-120, 120, 0], 0);
    const dact = randomNormal(n, n + 2);
    const g1 = g.slice(), sg1 = new Float32Array(n), act1 = new Float32Array(n);
    swigluForwardRef(g1, sg1, act1, u, n);
    const g2 = g.slice(), sg2 = new Float32Array(n), act2 = new Float32Array(n);
    k.swigluForward(g2, sg2, act2, u, n);
    close(g2, g1, 1e-6, `silu ${n}`);
    close(sg2, sg1, 1e-6, `sigmoid ${n}`);
    close(act2, act1, 1e-6, `act ${n}`);
    const dg1 = new Float32Array(n), du1 = new Float32Array(n), dg2 = dg1.slice(), du2 = du1.slice();
    swigluBackwardRef(dg1, du1, dact, g1, sg1, u, n);
    k.swigluBackward(dg2, du2, dact, g1, sg1, u, n);
    close(dg2, dg1, 1e-6, `dg ${n}`);
    close(du2, du1, 1e-6, `du ${n}`);
  }
});

Deno.test("the WASM training ops give the same bits on 2 threads, and on allocF32 buffers (in place) as on copies", async () => {
  const k2 = await createWasmTrainKernels({ threads: 2 });
  try {
    const c = attentionCase(4, 128, 8, 4, 16, 5);
    const one = runAttention(k, c, (n) => new Float32Array(n));
    const calls = k2.parallelCalls;
    const two = runAttention(k2, c, (n) => new Float32Array(n));
    assertEquals(k2.parallelCalls - calls, 2, "forward and backward were split");
    const inPlace = runAttention(k, c, (n) => k.allocF32(n));
    for (const key of ["ao", "pInv", "dq", "dk", "dv"] as const) {
      assertEquals(two[key], one[key], `2 threads: ${key}`);
      assertEquals(Float32Array.from(inPlace[key]), one[key], `allocF32: ${key}`);
    }
    const m = 600, V = 4096;
    const logits = randomNormal(m * V, 3, 2), targets = Int32Array.from({ length: m }, (_, i) => i % V);
    const a = logits.slice(), b = logits.slice(), ia = new Float32Array(m), ib = new Float32Array(m);
    assertEquals(k2.crossEntropyForward(b, ib, targets, m, V), k.crossEntropyForward(a, ia, targets, m, V));
    k.crossEntropyBackward(a, ia, targets, m, V, 0.5);
    k2.crossEntropyBackward(b, ib, targets, m, V, 0.5);
    assertEquals(b, a);
    assertEquals(ib, ia);
    const n = 1 << 20, g = randomNormal(n, 9), u = randomNormal(n, 10);
    const g1 = g.slice(), g2 = g.slice(), s1 = new Float32Array(n), s2 = s1.slice(), a1 = s1.slice(), a2 = s1.slice();
    k.swigluForward(g1, s1, a1, u, n);
    k2.swigluForward(g2, s2, a2, u, n);
    assertEquals([g2, s2, a2], [g1, s1, a1]);
    const rows = 2048,
      dim = 128,
      x = randomNormal(rows * dim, 11),
      w = randomNormal(dim, 12),
      dy = randomNormal(rows * dim, 13);
    const y1 = new Float32Array(rows * dim), y2 = y1.slice(), r1 = new Float32Array(rows), r2 = r1.slice();
    const before = k2.parallelCalls;
    k.rmsNormForward(y1, r1, x, w, rows, dim, 1e-5);
    k2.rmsNormForward(y2, r2, x, w, rows, dim, 1e-5);
    const dx1 = randomNormal(rows * dim, 14), dx2 = dx1.slice();
    k.rmsNormBackward(dx1, undefined, dy, x, r1, w, rows, dim);
    k2.rmsNormBackward(dx2, undefined, dy, x, r2, w, rows, dim);
    assertEquals(k2.parallelCalls - before, 2, "RMSNorm forward and backward (no dw) were split");
    assertEquals([y2, r2, dx2], [y1, r1, dx1]);
  } finally {
    k2.close();
  }
});

Deno.test("the WASM training ops throw RangeError/TypeError on bad shapes and targets before any work", () => {
  const f = (n: number) => new Float32Array(n);
  assertThrows(() => k.attentionForward(f(18), f(9), f(6), f(18), f(9), f(9), 1, 3, 2, 1, 3), RangeError, "p has");
  assertThrows(() => k.attentionForward(f(9), f(27), f(9), f(9), f(6), f(6), 1, 3, 3, 2, 1), RangeError, "multiple");
  const q = f(4);
  assertThrows(() => k.attentionForward(q, f(4), f(2), q, f(4), f(4), 1, 2, 1, 1, 2), RangeError, "ao overlaps q");
  assertThrows(() => k.crossEntropyForward(f(6), f(2), Int32Array.of(0, 3), 2, 3), RangeError, "target 3");
  assertThrows(() => k.crossEntropyForward(f(6), f(2), Int32Array.of(0, -1), 2, 3), RangeError, "target -1");
  assertThrows(() => k.crossEntropyForward(f(6), f(2), [0, 1] as unknown as Int32Array, 2, 3), TypeError);
  assertThrows(() => k.rmsNormForward(f(6), f(2), f(6), f(2), 2, 3, 1e-5), RangeError, "w has");
  const x = f(6);
  assertThrows(() => k.rmsNormForward(x, f(2), x, f(3), 2, 3, 1e-5), RangeError, "overlaps");
  assertThrows(() => k.swigluForward(f(4), f(4), f(4), f(3), 4), RangeError, "u has");
  assertThrows(
    () => k.swigluBackward(f(4), f(4), f(4), f(4), f(4), new Float64Array(4) as unknown as Float32Array, 4),
    TypeError,
  );
});

Deno.test("dropout()/dropoutBackward() (WASM) give the references' mask, values, generator state and gradients bit for bit", () => {
  for (const [n, p] of [[1, 0.5], [3, 0.1], [33, 0.05], [4099, 0.3], [1000, 0.999]] as const) {
    const x = randomNormal(n, n);
    const s1 = Uint32Array.of(1, 2, 3, 0x9e3779b9), s2 = s1.slice();
    const xd1 = new Float32Array(n),
      m1 = new Uint8Array(n),
      xd2 = new Float32Array(n).fill(NaN),
      m2 = new Uint8Array(n);
    dropoutRef(xd1, m1, x, n, p, s1);
    k.dropout(xd2, m2, x, n, p, s2);
    assertEquals(m2, m1, `mask ${n} p ${p}`);
    assertEquals(xd2, xd1, `xd ${n} p ${p}`);
    assertEquals(s2, s1, `state ${n} p ${p}`);
    const dx1 = randomNormal(n, n + 1), dx2 = dx1.slice(), dxd = randomNormal(n, n + 2);
    dropoutBackwardRef(dx1, dxd, m1, n, p);
    k.dropoutBackward(dx2, dxd, m2, n, p);
    assertEquals(dx2, dx1, `dropout backward ${n} p ${p}`);
    const kept = m1.reduce((a, b) => a + b, 0);
    assert(n < 1000 || Math.abs(kept / n - (1 - p)) < 0.05, `kept ${kept} of ${n} at p ${p}`);
  }
  assertThrows(
    () => k.dropout(new Float32Array(2), new Uint8Array(2), new Float32Array(2), 2, 1, new Uint32Array(4)),
    RangeError,
  );
  assertThrows(
    () => k.dropout(new Float32Array(2), new Uint8Array(2), new Float32Array(2), 2, 0.5, new Uint32Array(3)),
    TypeError,
  );
});

Deno.test("rope() (WASM) matches ropeRef forward and backward, and backward undoes forward", () => {
  for (const [B, T, nHeads, hs] of [[1, 1, 1, 2], [2, 3, 3, 6], [1, 33, 2, 16], [3, 17, 5, 48]]) {
    const half = hs / 2, cos = new Float32Array(T * half), sin = cos.slice();
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < half; j++) {
        const a = t * Math.pow(10000, -(2 * j) / hs);
        cos[t * half + j] = Math.cos(a);
        sin[t * half + j] = Math.sin(a);
      }
    }
    const x = randomNormal(B * T * nHeads * hs, T + hs), want = x.slice(), got = x.slice();
    ropeRef(want, B, T, nHeads, hs, cos, sin, 1);
    k.rope(got, B, T, nHeads, hs, cos, sin, 1);
    close(got, want, 1e-6, `rope ${B}x${T}x${nHeads}x${hs}`);
    k.rope(got, B, T, nHeads, hs, cos, sin, -1);
    close(got, x, 1e-6, `rope⁻¹ ${B}x${T}x${nHeads}x${hs}`);
  }
  const f = (n: number) => new Float32Array(n);
  assertThrows(() => k.rope(f(6), 1, 2, 1, 3, f(2), f(2), 1), RangeError, "odd");
  assertThrows(() => k.rope(f(8), 1, 2, 1, 4, f(3), f(4), 1), RangeError, "cos has");
});

Deno.test("adamw() (WASM) gives adamwRef's parameters and moments bit for bit, with and without decay", () => {
  const f = Math.fround;
  for (const n of [1, 3, 4, 5, 33, 4099]) {
    for (const decay of [1, f(1 - 1e-3 * 0.1)]) {
      const p = randomNormal(n, n), g = randomNormal(n, n + 1, 1e-3), m = randomNormal(n, n + 2, 1e-4);
      const v = randomNormal(n, n + 3, 1e-4).map((x) => x * x);
      const c = {
        decay,
        beta1: f(0.9),
        oneMinusBeta1: f(1 - 0.9),
        beta2: f(0.999),
        oneMinusBeta2: f(1 - 0.999),
        negStepSize: f(-1e-3 / (1 - 0.9 ** 3)),
        bc2Sqrt: f(Math.sqrt(1 - 0.999 ** 3)),
        eps: f(1e-8),
      };
      const p1 = p.slice(), m1 = m.slice(), v1 = v.slice(), p2 = p.slice(), m2 = m.slice(), v2 = v.slice();
      adamwRef(p1, g, m1, v1, n, c);
      k.adamw(p2, g, m2, v2, n, c);
      assertEquals([p2, m2, v2], [p1, m1, v1], `n ${n} decay ${decay}`);
      assert(p1.some((x, i) => x !== p[i]), "the update moved nothing");
    }
  }
  const z = new Float32Array(2);
  const c = { decay: 0.1, beta1: 0, oneMinusBeta1: 0, beta2: 0, oneMinusBeta2: 0, negStepSize: 0, bc2Sqrt: 1, eps: 0 };
  assertThrows(() => k.adamw(z, z.slice(), z.slice(), z.slice(), 2, c), RangeError, "not an f32");
});
