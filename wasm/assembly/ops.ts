// Per-token kernels: RMSNorm, softmax, RoPE (LLaMA "normal" adjacent pairs), SiLU gate, attention for one query.
// see: src/kernels/scalar.ts (references), llama2.c run.c
import { exp1, exp4, h2f, h2f4, h2fKMant, h2fKMax, h2fKMul, h2fKSign, h2fKTop } from "./common";

// out = x / sqrt(mean(x²) + eps) * w, n floats (4-aligned); the sum of squares is accumulated in f64 as ggml does.
// out may alias x.
export function rmsNorm(x: usize, w: usize, out: usize, n: i32, eps: f32): void {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const v = v128.load(x + (<usize>j << 2));
    const lo = f64x2.promote_low_f32x4(v);
    const hi = f64x2.promote_low_f32x4(v128.shuffle<u32>(v, v, 2, 3, 0, 1));
    a0 = f64x2.relaxed_madd(lo, lo, a0);
    a1 = f64x2.relaxed_madd(hi, hi, a1);
  }
  const a = f64x2.add(a0, a1);
  let ss = f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1);
  for (; j < n; j++) {
    const v = <f64>load<f32>(x + (<usize>j << 2));
    ss += v * v;
  }
  const inv = <f32>(1.0 / Math.sqrt(ss / <f64>n + <f64>eps));
  const vi = f32x4.splat(inv);
  j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    v128.store(out + o, f32x4.mul(f32x4.mul(v128.load(x + o), vi), v128.load(w + o)));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(out + o, load<f32>(x + o) * inv * load<f32>(w + o));
  }
}

// In place: x = exp(x - max) / sum, n floats (4-aligned). Subtracting the max keeps exp() in range.
export function softmax(x: usize, n: i32): void {
  let m4 = f32x4.splat(-Infinity);
  let j = 0;
  for (; j + 4 <= n; j += 4) m4 = f32x4.pmax(m4, v128.load(x + (<usize>j << 2)));
  let mx: f32 = max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
  for (; j < n; j++) mx = max(mx, load<f32>(x + (<usize>j << 2)));
  const vm = f32x4.splat(mx);
  // the sum in f64: over a 49,953-entry vocabulary an f32 sum would lose ~1e-4 relative
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  j = 0;
  for (; j + 4 <= n; j += 4) {
    const p = x + (<usize>j << 2);
    const e = exp4(f32x4.sub(v128.load(p), vm));
    v128.store(p, e);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<u32>(e, e, 2, 3, 0, 1)));
  }
  const s01 = f64x2.add(s0, s1);
  let sum = f64x2.extract_lane(s01, 0) + f64x2.extract_lane(s01, 1);
  for (; j < n; j++) {
    const p = x + (<usize>j << 2);
    const e = exp1(load<f32>(p) - mx);
    store<f32>(p, e);
    sum += <f64>e;
  }
  const inv = f32x4.splat(<f32>(1.0 / sum));
  j = 0;
  for (; j + 4 <= n; j += 4) {
    const p = x + (<usize>j << 2);
    v128.store(p, f32x4.mul(v128.load(p), inv));
  }
  for (; j < n; j++) {
    const p = x + (<usize>j << 2);
    store<f32>(p, load<f32>(p) * f32x4.extract_lane(inv, 0));
  }
}

// In place RoPE on x (nHeads, headSize) f32 (4-aligned), headSize even: pair (2i, 2i+1) of every head rotates by
// pos * theta^(-2i/headSize). Angles, cos/sin and the rotation in f64 (the per-call cost is headSize/2 pow+cos+sin).
export function rope(x: usize, nHeads: i32, headSize: i32, pos: i32, theta: f64): void {
  const half = headSize >> 1;
  for (let i = 0; i < half; i++) {
    const angle = <f64>pos * Math.pow(theta, <f64>(-2 * i) / <f64>headSize);
    const c = Math.cos(angle), s = Math.sin(angle);
    for (let h = 0; h < nHeads; h++) {
      const p = x + ((<usize>(h * headSize + 2 * i)) << 2);
      const x0 = <f64>load<f32>(p), x1 = <f64>load<f32>(p, 4);
      store<f32>(p, <f32>(x0 * c - x1 * s));
      store<f32>(p, <f32>(x0 * s + x1 * c), 4);
    }
  }
}

// out = gate / (1 + exp(-gate)) * up, n floats (4-aligned); out may alias gate or up.
export function siluGate(gate: usize, up: usize, out: usize, n: i32): void {
  const one = f32x4.splat(1.0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const g = v128.load(gate + o);
    const sg = f32x4.div(g, f32x4.add(one, exp4(f32x4.neg(g))));
    v128.store(out + o, f32x4.mul(sg, v128.load(up + o)));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    const g = load<f32>(gate + o);
    store<f32>(out + o, g / (<f32>1.0 + exp1(-g)) * load<f32>(up + o));
  }
}

@inline function loadKV4(p: usize, i: i32, f16: bool, kMant: v128, kMul: v128, kMax: v128, kTop: v128, kSign: v128): v128 {
  return f16
    ? h2f4(i32x4.extend_low_i16x8_u(v128.load64_zero(p + (<usize>i << 1))), kMant, kMul, kMax, kTop, kSign)
    : v128.load(p + (<usize>i << 2));
}

@inline function loadKV1(p: usize, i: i32, f16: bool): f32 {
  return f16 ? h2f(<u32>load<u16>(p + (<usize>i << 1))) : load<f32>(p + (<usize>i << 2));
}

// One query position, all heads. q, out: (nHeads, headSize) f32; k, v caches: (nPos, nKvHeads, headSize), f16 bits
// when kvF16 != 0 (2-aligned) else f32 (4-aligned); att: nPos f32 scratch. Head h reads KV head
// h / (nHeads / nKvHeads). out must not alias q, k, v or att.
export function attention(
  q: usize, k: usize, v: usize, out: usize, att: usize,
  nHeads: i32, nKvHeads: i32, headSize: i32, nPos: i32, kvF16: i32, scale: f32,
): void {
  const f16 = kvF16 != 0;
  const es: usize = f16 ? 2 : 4;
  const z = nPos >>> 31; // 0, opaque to Binaryen (see h2f4)
  const kMant = h2fKMant(z), kMul = h2fKMul(z), kMax = h2fKMax(z), kTop = h2fKTop(z), kSign = h2fKSign(z);
  const kvDim = nKvHeads * headSize;
  const group = nHeads / nKvHeads;
  for (let h = 0; h < nHeads; h++) {
    const qh = q + (<usize>(h * headSize) << 2);
    const kvo = (h / group) * headSize;
    for (let t = 0; t < nPos; t++) {
      const kp = k + <usize>(t * kvDim + kvo) * es;
      let a = f32x4.splat(0);
      let i = 0;
      for (; i + 4 <= headSize; i += 4) a = f32x4.relaxed_madd(v128.load(qh + (<usize>i << 2)), loadKV4(kp, i, f16, kMant, kMul, kMax, kTop, kSign), a);
      const a2 = f32x4.add(a, v128.shuffle<u32>(a, a, 2, 3, 0, 1));
      let s = f32x4.extract_lane(a2, 0) + f32x4.extract_lane(a2, 1);
      for (; i < headSize; i++) s += load<f32>(qh + (<usize>i << 2)) * loadKV1(kp, i, f16);
      store<f32>(att + (<usize>t << 2), s * scale);
    }
    softmax(att, nPos);
    const oh = out + (<usize>(h * headSize) << 2);
    memory.fill(oh, 0, <usize>headSize << 2);
    for (let t = 0; t < nPos; t++) {
      const vp = v + <usize>(t * kvDim + kvo) * es;
      const p = load<f32>(att + (<usize>t << 2));
      const p4 = f32x4.splat(p);
      let i = 0;
      for (; i + 4 <= headSize; i += 4) {
        const o = oh + (<usize>i << 2);
        v128.store(o, f32x4.relaxed_madd(p4, loadKV4(vp, i, f16, kMant, kMul, kMax, kTop, kSign), v128.load(o)));
      }
      for (; i < headSize; i++) {
        const o = oh + (<usize>i << 2);
        store<f32>(o, load<f32>(o) + p * loadKV1(vp, i, f16));
      }
    }
  }
}
