// src/core/f16.ts
var f32 = new Float32Array(1);
var u32 = new Uint32Array(f32.buffer);
function f16ToF32Ref(h) {
  const sign = (h & 32768) << 16;
  const exp = h >> 10 & 31;
  let mant = h & 1023;
  if (exp === 0) {
    if (mant === 0) {
      u32[0] = sign;
      return f32[0];
    }
    const v = mant * 5960464477539063e-23;
    return sign ? -v : v;
  }
  if (exp === 31) {
    u32[0] = sign | 2139095040 | mant << 13;
    return f32[0];
  }
  mant <<= 13;
  u32[0] = sign | exp + 112 << 23 | mant;
  return f32[0];
}
function f32ToF16Ref(value) {
  f32[0] = value;
  const x = u32[0];
  const sign = x >>> 16 & 32768;
  const exp = x >>> 23 & 255;
  const mant = x & 8388607;
  if (exp === 255) {
    return sign | 31744 | (mant !== 0 ? 512 | mant >>> 13 : 0);
  }
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 31744;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 8388608;
    const shift = 14 - e;
    let half = m >>> shift;
    const rem2 = m & (1 << shift) - 1;
    const halfway = 1 << shift - 1;
    if (rem2 > halfway || rem2 === halfway && half & 1) half++;
    return sign | half;
  }
  let h = e << 10 | mant >>> 13;
  const rem = mant & 8191;
  if (rem > 4096 || rem === 4096 && h & 1) h++;
  return sign | h;
}
function bf16ToF32Ref(h) {
  u32[0] = (h & 65535) << 16;
  return f32[0];
}

// src/core/_check.ts
function rangeCheck(failed, message) {
  if (failed) throw new RangeError(message);
}

// src/core/dtypes.ts
var GGML_TYPE = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  BF16: 30
};
var QK4_0 = 32;
var QK8_0 = 32;
var QK_K = 256;
var TRAITS = {
  F32: {
    blockSize: 1,
    typeSize: 4
  },
  F16: {
    blockSize: 1,
    typeSize: 2
  },
  BF16: {
    blockSize: 1,
    typeSize: 2
  },
  F64: {
    blockSize: 1,
    typeSize: 8
  },
  I8: {
    blockSize: 1,
    typeSize: 1
  },
  U8: {
    blockSize: 1,
    typeSize: 1
  },
  BOOL: {
    blockSize: 1,
    typeSize: 1
  },
  I16: {
    blockSize: 1,
    typeSize: 2
  },
  I32: {
    blockSize: 1,
    typeSize: 4
  },
  I64: {
    blockSize: 1,
    typeSize: 8
  },
  Q4_0: {
    blockSize: 32,
    typeSize: 2 + 16
  },
  Q4_1: {
    blockSize: 32,
    typeSize: 2 + 2 + 16
  },
  Q5_0: {
    blockSize: 32,
    typeSize: 2 + 4 + 16
  },
  Q5_1: {
    blockSize: 32,
    typeSize: 2 + 2 + 4 + 16
  },
  Q8_0: {
    blockSize: 32,
    typeSize: 2 + 32
  },
  Q8_1: {
    blockSize: 32,
    typeSize: 4 + 4 + 32
  },
  Q2_K: {
    blockSize: 256,
    typeSize: 256 / 16 + 256 / 4 + 2 + 2
  },
  Q3_K: {
    blockSize: 256,
    typeSize: 256 / 8 + 256 / 4 + 12 + 2
  },
  Q4_K: {
    blockSize: 256,
    typeSize: 2 + 2 + 12 + 256 / 2
  },
  Q5_K: {
    blockSize: 256,
    typeSize: 2 + 2 + 12 + 256 / 8 + 256 / 2
  },
  Q6_K: {
    blockSize: 256,
    typeSize: 256 / 2 + 256 / 4 + 256 / 16 + 2
  },
  Q8_K: {
    blockSize: 256,
    typeSize: 4 + 256 + 2 * 256 / 16
  }
};
var BY_ID = new Map(Object.entries(GGML_TYPE).map(([k, v]) => [
  v,
  k
]));
function dtypeFromGgmlId(id) {
  return BY_ID.get(id);
}
function blockSizeOf(dtype) {
  return TRAITS[dtype].blockSize;
}
function isQuantized(dtype) {
  return TRAITS[dtype].blockSize > 1;
}
function nBytesOf(dtype, nElements) {
  const { blockSize, typeSize } = TRAITS[dtype];
  rangeCheck(!Number.isSafeInteger(nElements) || nElements < 0, `Cannot size tensor: element count ${nElements} is not a non-negative safe integer`);
  rangeCheck(nElements % blockSize !== 0, `Cannot size ${dtype} tensor: ${nElements} elements is not a multiple of the block size ${blockSize}`);
  const n = nElements / blockSize * typeSize;
  rangeCheck(!Number.isSafeInteger(n), `Cannot size tensor: ${n} bytes overflows`);
  return n;
}
function checkedProduct(shape) {
  let n = 1;
  for (const d0 of shape) {
    const d = typeof d0 === "bigint" ? Number(d0) : d0;
    if (!Number.isSafeInteger(d) || d < 0) return void 0;
    n *= d;
    if (!Number.isSafeInteger(n)) return void 0;
  }
  return n;
}

// src/quant/q4_0.ts
var BLOCK_Q4_0_BYTES = 18;
var fround = Math.fround;
function truncInt8(v) {
  if (!(Math.abs(v) < 2147483648)) return 0;
  return Math.trunc(v) << 24 >> 24;
}
function checkQuantShape(what, n, qk, nBytes, blockBytes) {
  if (n % qk !== 0) throw new RangeError(`Cannot ${what}: length ${n} is not a multiple of ${qk}`);
  const nb = n / qk;
  if (nBytes !== nb * blockBytes) {
    throw new RangeError(`Cannot ${what}: expected ${nb * blockBytes} bytes for ${n} values, got ${nBytes}`);
  }
  return nb;
}
function dequantizeRowQ4_0Ref(blocks, out) {
  const nb = checkQuantShape("dequantize Q4_0 row", out.length, QK4_0, blocks.length, BLOCK_Q4_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q4_0_BYTES;
    const d = f16ToF32Ref(blocks[o] | blocks[o + 1] << 8);
    for (let j = 0; j < QK4_0 / 2; j++) {
      const b = blocks[o + 2 + j];
      out[i * QK4_0 + j] = fround(((b & 15) - 8) * d);
      out[i * QK4_0 + QK4_0 / 2 + j] = fround(((b >>> 4) - 8) * d);
    }
  }
}

// src/quant/q8_0.ts
var BLOCK_Q8_0_BYTES = 34;
var fround2 = Math.fround;
function roundHalfAway(v) {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}
function quantizeRowQ8_0Ref(x, out) {
  const nb = checkQuantShape("quantize Q8_0 row", x.length, QK8_0, out.length, BLOCK_Q8_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const base = i * QK8_0;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(x[base + j]);
      amax = amax > a ? amax : a;
    }
    const d = fround2(amax / 127);
    const id = d ? fround2(1 / d) : 0;
    const h = f32ToF16Ref(d);
    const o = i * BLOCK_Q8_0_BYTES;
    out[o] = h & 255;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK8_0; j++) out[o + 2 + j] = truncInt8(roundHalfAway(fround2(x[base + j] * id))) & 255;
  }
}
function dequantizeRowQ8_0Ref(blocks, out) {
  const nb = checkQuantShape("dequantize Q8_0 row", out.length, QK8_0, blocks.length, BLOCK_Q8_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q8_0_BYTES;
    const d = f16ToF32Ref(blocks[o] | blocks[o + 1] << 8);
    for (let j = 0; j < QK8_0; j++) out[i * QK8_0 + j] = fround2((blocks[o + 2 + j] << 24 >> 24) * d);
  }
}

// src/kernels/scalar.ts
var fround3 = Math.fround;
function checkDim(what, name, v) {
  if (!Number.isInteger(v) || v <= 0) {
    throw new RangeError(`Cannot ${what}: ${name} must be a positive integer, got ${v}`);
  }
}
function resolveRows(what, nRows, r = {}) {
  const rowStart = r.rowStart ?? 0;
  const rowEnd = r.rowEnd ?? nRows;
  if (!Number.isInteger(rowStart) || !Number.isInteger(rowEnd) || rowStart < 0 || rowEnd > nRows || rowStart > rowEnd) {
    throw new RangeError(`Cannot ${what}: row range [${rowStart}, ${rowEnd}) is outside [0, ${nRows})`);
  }
  return [
    rowStart,
    rowEnd
  ];
}
function checkLength(what, name, arr, n) {
  if (arr.length !== n) throw new RangeError(`Cannot ${what}: ${name} has ${arr.length} elements, expected ${n}`);
}
function checkQuantMatmul(what, qk, blockBytes, w, x, y, nRows, nCols, batch) {
  checkDim(what, "nRows", nRows);
  checkDim(what, "nCols", nCols);
  checkDim(what, "batch", batch);
  if (nCols % qk !== 0) throw new RangeError(`Cannot ${what}: nCols ${nCols} is not a multiple of ${qk}`);
  const rowBytes = nCols / qk * blockBytes;
  checkLength(what, "weight bytes", w, nRows * rowBytes);
  checkLength(what, "x", x, batch * nCols);
  checkLength(what, "y", y, batch * nRows);
  return rowBytes;
}
function dotQ4_0Q8_0(w, wo, xq, nb) {
  let sum = 0;
  for (let b = 0; b < nb; b++) {
    const o = wo + b * BLOCK_Q4_0_BYTES;
    const xo = b * BLOCK_Q8_0_BYTES;
    let sumi = 0;
    for (let j = 0; j < QK4_0 / 2; j++) {
      const q = w[o + 2 + j];
      sumi += ((q & 15) - 8) * (xq[xo + 2 + j] << 24 >> 24);
      sumi += ((q >>> 4) - 8) * (xq[xo + 2 + j + 16] << 24 >> 24);
    }
    const dw = f16ToF32Ref(w[o] | w[o + 1] << 8);
    const dx = f16ToF32Ref(xq[xo] | xq[xo + 1] << 8);
    sum += fround3(fround3(sumi * dw) * dx);
  }
  return sum;
}
function matmulQ4_0Ref(w, x, y, nRows, nCols, batch, range = {}) {
  const what = "multiply Q4_0 matrix";
  const rowBytes = checkQuantMatmul(what, QK4_0, BLOCK_Q4_0_BYTES, w, x, y, nRows, nCols, batch);
  const [r0, r1] = resolveRows(what, nRows, range);
  const nb = nCols / QK4_0;
  const xq = new Uint8Array(nb * BLOCK_Q8_0_BYTES);
  for (let t = 0; t < batch; t++) {
    quantizeRowQ8_0Ref(x.subarray(t * nCols, (t + 1) * nCols), xq);
    for (let r = r0; r < r1; r++) y[t * nRows + r] = dotQ4_0Q8_0(w, r * rowBytes, xq, nb);
  }
}
function dotQ8_0Q8_0(w, wo, xq, nb) {
  let sum = 0;
  for (let b = 0; b < nb; b++) {
    const o = wo + b * BLOCK_Q8_0_BYTES;
    const xo = b * BLOCK_Q8_0_BYTES;
    let sumi = 0;
    for (let j = 0; j < QK8_0; j++) sumi += (w[o + 2 + j] << 24 >> 24) * (xq[xo + 2 + j] << 24 >> 24);
    const dw = f16ToF32Ref(w[o] | w[o + 1] << 8);
    const dx = f16ToF32Ref(xq[xo] | xq[xo + 1] << 8);
    sum += fround3(fround3(sumi * dw) * dx);
  }
  return sum;
}
function matmulQ8_0Ref(w, x, y, nRows, nCols, batch, range = {}) {
  const what = "multiply Q8_0 matrix";
  const rowBytes = checkQuantMatmul(what, QK8_0, BLOCK_Q8_0_BYTES, w, x, y, nRows, nCols, batch);
  const [r0, r1] = resolveRows(what, nRows, range);
  const nb = nCols / QK8_0;
  const xq = new Uint8Array(nb * BLOCK_Q8_0_BYTES);
  for (let t = 0; t < batch; t++) {
    quantizeRowQ8_0Ref(x.subarray(t * nCols, (t + 1) * nCols), xq);
    for (let r = r0; r < r1; r++) y[t * nRows + r] = dotQ8_0Q8_0(w, r * rowBytes, xq, nb);
  }
}
function checkFloatMatmul(what, w, x, y, nRows, nCols, batch) {
  checkDim(what, "nRows", nRows);
  checkDim(what, "nCols", nCols);
  checkDim(what, "batch", batch);
  checkLength(what, "w", w, nRows * nCols);
  checkLength(what, "x", x, batch * nCols);
  checkLength(what, "y", y, batch * nRows);
}
function matmulF16Ref(w, x, y, nRows, nCols, batch, range = {}) {
  const what = "multiply F16 matrix";
  checkFloatMatmul(what, w, x, y, nRows, nCols, batch);
  const [r0, r1] = resolveRows(what, nRows, range);
  for (let t = 0; t < batch; t++) {
    for (let r = r0; r < r1; r++) {
      let s = 0;
      for (let j = 0; j < nCols; j++) s += f16ToF32Ref(w[r * nCols + j]) * x[t * nCols + j];
      y[t * nRows + r] = s;
    }
  }
}
function matmulF32Ref(w, x, y, nRows, nCols, batch, range = {}) {
  const what = "multiply F32 matrix";
  checkFloatMatmul(what, w, x, y, nRows, nCols, batch);
  const [r0, r1] = resolveRows(what, nRows, range);
  for (let t = 0; t < batch; t++) {
    for (let r = r0; r < r1; r++) {
      let s = 0;
      for (let j = 0; j < nCols; j++) s += w[r * nCols + j] * x[t * nCols + j];
      y[t * nRows + r] = s;
    }
  }
}
function rmsNormRef(x, weight, out, eps) {
  checkDim("apply RMSNorm", "n", x.length);
  checkLength("apply RMSNorm", "weight", weight, x.length);
  checkLength("apply RMSNorm", "out", out, x.length);
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * inv * weight[i];
}
function softmaxRef(x) {
  checkDim("apply softmax", "n", x.length);
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  const e = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) sum += e[i] = Math.exp(x[i] - max);
  for (let i = 0; i < x.length; i++) x[i] = e[i] / sum;
}
function ropeRef(x, nHeads, headSize, pos, theta) {
  const what = "apply RoPE";
  checkDim(what, "nHeads", nHeads);
  checkDim(what, "headSize", headSize);
  if (headSize % 2 !== 0) throw new RangeError(`Cannot ${what}: headSize ${headSize} is odd`);
  if (!Number.isInteger(pos) || pos < 0) {
    throw new RangeError(`Cannot ${what}: pos ${pos} is not a non-negative integer`);
  }
  if (!(theta > 0)) throw new RangeError(`Cannot ${what}: theta ${theta} is not positive`);
  checkLength(what, "x", x, nHeads * headSize);
  for (let i = 0; i < headSize / 2; i++) {
    const angle = pos * Math.pow(theta, -2 * i / headSize);
    const c = Math.cos(angle), s = Math.sin(angle);
    for (let h = 0; h < nHeads; h++) {
      const o = h * headSize + 2 * i;
      const x0 = x[o], x1 = x[o + 1];
      x[o] = x0 * c - x1 * s;
      x[o + 1] = x0 * s + x1 * c;
    }
  }
}
function siluGateRef(gate, up, out) {
  checkDim("apply SiLU gate", "n", gate.length);
  checkLength("apply SiLU gate", "up", up, gate.length);
  checkLength("apply SiLU gate", "out", out, gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
}
function checkAttention(q, k, v, out, s) {
  const what = "compute attention";
  checkDim(what, "nHeads", s.nHeads);
  checkDim(what, "nKvHeads", s.nKvHeads);
  checkDim(what, "headSize", s.headSize);
  checkDim(what, "nPos", s.nPos);
  if (s.nHeads % s.nKvHeads !== 0) {
    throw new RangeError(`Cannot ${what}: nHeads ${s.nHeads} is not a multiple of nKvHeads ${s.nKvHeads}`);
  }
  const kvDim = s.nKvHeads * s.headSize;
  checkLength(what, "q", q, s.nHeads * s.headSize);
  checkLength(what, "out", out, s.nHeads * s.headSize);
  if (k.length < s.nPos * kvDim) {
    throw new RangeError(`Cannot ${what}: K cache has ${k.length} elements, needs ${s.nPos * kvDim}`);
  }
  if (v.length < s.nPos * kvDim) {
    throw new RangeError(`Cannot ${what}: V cache has ${v.length} elements, needs ${s.nPos * kvDim}`);
  }
  return [
    kvDim,
    s.nHeads / s.nKvHeads,
    s.scale ?? 1 / Math.sqrt(s.headSize)
  ];
}
function attentionRef(q, k, v, out, shape) {
  const [kvDim, group, scale] = checkAttention(q, k, v, out, shape);
  const { nHeads, headSize, nPos } = shape;
  const kf = k instanceof Uint16Array ? (i) => f16ToF32Ref(k[i]) : (i) => k[i];
  const vf = v instanceof Uint16Array ? (i) => f16ToF32Ref(v[i]) : (i) => v[i];
  const att = new Float32Array(nPos);
  for (let h = 0; h < nHeads; h++) {
    const kvo = Math.floor(h / group) * headSize;
    for (let t = 0; t < nPos; t++) {
      let s = 0;
      for (let i = 0; i < headSize; i++) s += q[h * headSize + i] * kf(t * kvDim + kvo + i);
      att[t] = s * scale;
    }
    softmaxRef(att);
    for (let i = 0; i < headSize; i++) {
      let s = 0;
      for (let t = 0; t < nPos; t++) s += att[t] * vf(t * kvDim + kvo + i);
      out[h * headSize + i] = s;
    }
  }
}
var Q4_0R_ROWS = 8;
var Q4_0R_GROUP_BLOCK_BYTES = 32 + 128;
function repackedQ4_0Bytes(nRows, nCols) {
  return Math.ceil(nRows / Q4_0R_ROWS) * (nCols / QK4_0) * Q4_0R_GROUP_BLOCK_BYTES;
}
var Q8_0R_ROWS = 4;
var Q8_0R_GROUP_BLOCK_BYTES = 16 + 128;
function repackedQ8_0Bytes(nRows, nCols) {
  return Math.ceil(nRows / Q8_0R_ROWS) * (nCols / QK8_0) * Q8_0R_GROUP_BLOCK_BYTES;
}

// src/kernels/wasm.ts
var KERNELS_WASM_URL = URL.canParse("../../wasm/build/kernels.wasm", import.meta.url) ? new URL("../../wasm/build/kernels.wasm", import.meta.url) : new URL("yangtuo:kernels.wasm");
var WASM_PAGE_BYTES = 65536;
var WASM_MAX_PAGES = 65536;
function q8ABytes(n) {
  return n + n / QK4_0 * 8;
}
function q4_0RScratchBytes(batch) {
  return 64 * Math.min(batch, 16);
}
function q8_0RScratchBytes(batch) {
  return 64 * Math.min(batch, 16);
}
var DOT_PROBE_BYTES = Math.max(repackedQ4_0Bytes(64, 2048), repackedQ8_0Bytes(64, 2048)) + 4096 + 2048 + 256 + 64;
function pickDotForm(raw, mem, fmt) {
  const nRows = 64, nCols = 2048;
  const w = Math.ceil(mem / 64) * 64;
  const act = w + (fmt === "Q4_0" ? repackedQ4_0Bytes(nRows, nCols) : repackedQ8_0Bytes(nRows, nCols));
  const y = act + q8AStride(nCols), scratch = y + 4 * nRows;
  const run = fmt === "Q4_0" ? (vnni2) => (vnni2 ? raw.matvecQ4_0RVnni : raw.matvecQ4_0R)(w, act, y, nCols, 0, nRows, scratch) : (vnni2) => (vnni2 ? raw.matvecQ8_0RVnni : raw.matvecQ8_0R)(w, act, y, nCols, 0, nRows);
  const time = (vnni2, n) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) run(vnni2);
    return performance.now() - t;
  };
  time(false, 300);
  time(true, 300);
  let i16 = Infinity, vnni = Infinity;
  for (let r = 0; r < 7; r++) {
    i16 = Math.min(i16, time(false, 40));
    vnni = Math.min(vnni, time(true, 40));
  }
  return vnni < 0.9 * i16 ? "vnni" : "i16";
}
function q8AStride(n) {
  return Math.ceil(q8ABytes(n) / 16) * 16;
}
var modulePromise;
function compileKernelsModule() {
  modulePromise ??= (async () => {
    const res = await fetch(KERNELS_WASM_URL);
    if (!res.ok) throw new Error(`Cannot load kernels: fetching ${KERNELS_WASM_URL} gave HTTP ${res.status}`);
    return await WebAssembly.compile(await res.arrayBuffer());
  })();
  return modulePromise;
}
function provideKernelsModule(module) {
  modulePromise = Promise.resolve(module);
}
async function loadWasmKernels(options = {}) {
  const module = options.module ?? await compileKernelsModule();
  return instantiateWasmKernels(module, options);
}
function instantiateWasmKernels(module, options = {}) {
  const memory = options.memory ?? new WebAssembly.Memory({
    initial: options.initialPages ?? 16,
    maximum: WASM_MAX_PAGES,
    shared: true
  });
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort: () => {
      }
    }
  });
  return new WasmKernels(memory, instance.exports, options.arenaStart);
}
var Arena = class {
  memory;
  base;
  #top;
  constructor(memory, base) {
    this.memory = memory;
    this.base = base;
    this.#top = base;
  }
  /** The next free byte. */
  get top() {
    return this.#top;
  }
  /** Reserves nBytes at a multiple of align (a power of two, default 16); returns the pointer. */
  alloc(nBytes, align = 16) {
    if (!Number.isInteger(nBytes) || nBytes < 0) throw new RangeError(`Cannot allocate: size ${nBytes} is invalid`);
    if (!(align > 0 && (align & align - 1) === 0)) {
      throw new RangeError(`Cannot allocate: alignment ${align} is not a power of two`);
    }
    const ptr = Math.ceil(this.#top / align) * align;
    this.ensure(ptr + nBytes);
    this.#top = ptr + nBytes;
    return ptr;
  }
  /** Grows the memory so bytes [0, end) exist. */
  ensure(end) {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / WASM_PAGE_BYTES);
    if (have / WASM_PAGE_BYTES + pages > WASM_MAX_PAGES) {
      throw new RangeError(`Cannot allocate: ${end} bytes exceed the 4 GiB WebAssembly memory`);
    }
    this.memory.grow(pages);
  }
  /** The current top, to pass to reset(). */
  mark() {
    return this.#top;
  }
  /** Frees everything allocated since mark. */
  reset(mark) {
    if (mark < this.base || mark > this.#top) throw new RangeError(`Cannot reset arena: mark ${mark} is not live`);
    this.#top = mark;
  }
  f32(ptr, n) {
    return new Float32Array(this.memory.buffer, ptr, n);
  }
  u8(ptr, n) {
    return new Uint8Array(this.memory.buffer, ptr, n);
  }
  i8(ptr, n) {
    return new Int8Array(this.memory.buffer, ptr, n);
  }
  u16(ptr, n) {
    return new Uint16Array(this.memory.buffer, ptr, n);
  }
  i32(ptr, n) {
    return new Int32Array(this.memory.buffer, ptr, n);
  }
  /** Allocates and copies `src` in; returns the pointer. */
  put(src, align = 16) {
    const ptr = this.alloc(src.byteLength, align);
    this.u8(ptr, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    return ptr;
  }
};
var WasmKernels = class {
  memory;
  raw;
  arena;
  constructor(memory, raw, arenaStart) {
    this.memory = memory;
    this.raw = raw;
    const base = Math.ceil(Math.max(raw.heapBase(), arenaStart ?? 0) / 64) * 64;
    this.arena = new Arena(memory, base);
  }
};

// src/core/byte_source.ts
var BytesSource = class {
  bytes;
  name;
  size;
  constructor(bytes, name) {
    this.bytes = bytes;
    this.name = name;
    this.size = bytes.length;
  }
  read(byteOffset, nBytes) {
    checkRange(this, byteOffset, nBytes);
    return this.bytes.subarray(byteOffset, byteOffset + nBytes);
  }
  readInto(byteOffset, dst) {
    checkRange(this, byteOffset, dst.length);
    dst.set(this.bytes.subarray(byteOffset, byteOffset + dst.length));
  }
};
function readFresh(src, byteOffset, nBytes) {
  const dst = new Uint8Array(nBytes);
  src.readInto(byteOffset, dst);
  return dst;
}
function checkRange(src, byteOffset, nBytes) {
  if (!Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(nBytes) || byteOffset < 0 || nBytes < 0 || byteOffset + nBytes > src.size) {
    throw new RangeError(`Cannot read ${nBytes} bytes at offset ${byteOffset}: source${src.name ? ` "${src.name}"` : ""} has ${src.size} bytes`);
  }
}

// src/core/errors.ts
var FormatError = class extends SyntaxError {
  format;
  offset;
  path;
  constructor(message, options) {
    const where = [
      options.path !== void 0 ? `in "${options.path}"` : "",
      options.offset !== void 0 ? `at byte ${options.offset}` : ""
    ].filter((s) => s).join(" ");
    super(where ? `${message} (${where})` : message, {
      cause: options.cause
    });
    this.name = "FormatError";
    this.format = options.format;
    this.offset = options.offset;
    this.path = options.path;
  }
};
var UnsupportedError = class extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "UnsupportedError";
  }
};
var UserError = class extends Error {
  hint;
  constructor(message, hint, options) {
    super(message, options);
    this.name = "UserError";
    this.hint = hint;
  }
};

// src/core/blob_source.ts
function fileReaderSync() {
  const Ctor = globalThis.FileReaderSync;
  if (typeof Ctor !== "function") {
    throw new UnsupportedError("Cannot read a Blob synchronously: FileReaderSync exists only in dedicated workers");
  }
  const reader = new Ctor();
  return (blob) => reader.readAsArrayBuffer(blob);
}
var BlobSource = class {
  blob;
  name;
  size;
  #read;
  /** `read` defaults to the realm's FileReaderSync. */
  constructor(blob, name, read) {
    this.blob = blob;
    this.name = name;
    this.size = blob.size;
    this.#read = read ?? fileReaderSync();
  }
  read(byteOffset, nBytes) {
    return readFresh(this, byteOffset, nBytes);
  }
  readInto(byteOffset, dst) {
    checkRange(this, byteOffset, dst.length);
    if (dst.length === 0) return;
    const got = this.#read(this.blob.slice(byteOffset, byteOffset + dst.length));
    if (got.byteLength !== dst.length) {
      throw new RangeError(`Cannot read ${dst.length} bytes at offset ${byteOffset}: blob${this.name ? ` "${this.name}"` : ""} gave ${got.byteLength}`);
    }
    dst.set(new Uint8Array(got));
  }
};

// src/formats/byte_reader.ts
var UTF8 = new TextDecoder("utf-8", {
  fatal: true,
  ignoreBOM: true
});
var UTF8_LOSSY = new TextDecoder("utf-8", {
  ignoreBOM: true
});
var ByteReader = class {
  source;
  format;
  path;
  /** Exclusive end of the readable range. */
  end;
  /** Current absolute offset. */
  offset;
  #win = new Uint8Array(0);
  #winStart = 0;
  #view = new DataView(new ArrayBuffer(0));
  #windowBytes;
  #inMemory;
  constructor(source, options) {
    this.source = source instanceof Uint8Array ? new BytesSource(source) : source;
    this.format = options.format;
    this.path = options.path ?? this.source.name;
    this.offset = options.offset ?? 0;
    this.end = options.end ?? this.source.size;
    this.#windowBytes = options.windowBytes ?? 1 << 16;
    if (!Number.isSafeInteger(this.end) || this.end < 0 || this.end > this.source.size) {
      throw new RangeError(`Cannot create reader: end ${this.end} is outside the source (${this.source.size} bytes)`);
    }
    if (!Number.isSafeInteger(this.offset) || this.offset < 0 || this.offset > this.end) {
      throw new RangeError(`Cannot create reader: offset ${this.offset} is outside [0, ${this.end}]`);
    }
    this.#inMemory = this.source instanceof BytesSource;
    if (this.#inMemory) {
      this.#win = this.source.bytes.subarray(0, this.end);
      this.#view = new DataView(this.#win.buffer, this.#win.byteOffset, this.#win.byteLength);
    }
  }
  /** Bytes left before `end`. */
  get remaining() {
    return this.end - this.offset;
  }
  /** A FormatError for this reader's format and path, at `offset` (default: the cursor). */
  error(message, offset = this.offset, cause) {
    return new FormatError(message, {
      format: this.format,
      offset,
      path: this.path,
      cause
    });
  }
  /** Throws a FormatError unless `n` more bytes (for `what`) are available. */
  need(n, what) {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw this.error(`Cannot read ${what}: invalid length ${n}`);
    }
    if (n > this.end - this.offset) {
      throw this.error(`Cannot read ${what}: needs ${n} bytes but only ${this.end - this.offset} remain of ${this.end}`);
    }
  }
  /** Makes [offset, offset+n) addressable in the window; returns the window index of `offset`. */
  #at(n, what) {
    this.need(n, what);
    if (this.#inMemory) return this.offset;
    const rel = this.offset - this.#winStart;
    if (rel >= 0 && rel + n <= this.#win.length) return rel;
    const len = Math.min(Math.max(n, this.#windowBytes), this.end - this.offset);
    this.#win = this.#readSource(this.offset, len, what);
    this.#winStart = this.offset;
    this.#view = new DataView(this.#win.buffer, this.#win.byteOffset, this.#win.byteLength);
    return 0;
  }
  #readSource(offset, n, what) {
    try {
      return this.source.read(offset, n);
    } catch (e) {
      if (e instanceof RangeError) throw this.error(`Cannot read ${what}: ${e.message}`, offset, e);
      throw e;
    }
  }
  /** Moves the cursor to absolute `offset` (must be within [0, end]). */
  seek(offset) {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.end) {
      throw this.error(`Cannot seek to ${offset}: outside [0, ${this.end}]`);
    }
    this.offset = offset;
  }
  /** Advances the cursor by `n` bytes. */
  skip(n, what = "bytes") {
    this.need(n, what);
    this.offset += n;
  }
  /** An unsigned byte. `what` names the field in errors. */
  u8(what = "u8") {
    const i = this.#at(1, what);
    this.offset += 1;
    return this.#win[i];
  }
  /** A signed byte. `what` names the field in errors. */
  i8(what = "i8") {
    const i = this.#at(1, what);
    this.offset += 1;
    return this.#view.getInt8(i);
  }
  /** A little-endian u16. `what` names the field in errors. */
  u16(what = "u16") {
    const i = this.#at(2, what);
    this.offset += 2;
    return this.#view.getUint16(i, true);
  }
  /** A little-endian i16. `what` names the field in errors. */
  i16(what = "i16") {
    const i = this.#at(2, what);
    this.offset += 2;
    return this.#view.getInt16(i, true);
  }
  /** A little-endian u32. `what` names the field in errors. */
  u32(what = "u32") {
    const i = this.#at(4, what);
    this.offset += 4;
    return this.#view.getUint32(i, true);
  }
  /** A little-endian i32. `what` names the field in errors. */
  i32(what = "i32") {
    const i = this.#at(4, what);
    this.offset += 4;
    return this.#view.getInt32(i, true);
  }
  /** A little-endian u64, as bigint. `what` names the field in errors. */
  u64(what = "u64") {
    const i = this.#at(8, what);
    this.offset += 8;
    return this.#view.getBigUint64(i, true);
  }
  /** A little-endian i64, as bigint. `what` names the field in errors. */
  i64(what = "i64") {
    const i = this.#at(8, what);
    this.offset += 8;
    return this.#view.getBigInt64(i, true);
  }
  /** A u64 that must be a safe integer (a count, length or offset); FormatError otherwise. */
  u64Number(what = "u64") {
    const at = this.offset;
    const v = this.u64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.error(`Cannot read ${what}: ${v} exceeds 2^53 - 1`, at);
    return Number(v);
  }
  /** An i64 that must be a safe integer; FormatError otherwise. */
  i64Number(what = "i64") {
    const at = this.offset;
    const v = this.i64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw this.error(`Cannot read ${what}: ${v} is not a safe integer`, at);
    }
    return Number(v);
  }
  /** A little-endian IEEE f32. `what` names the field in errors. */
  f32(what = "f32") {
    const i = this.#at(4, what);
    this.offset += 4;
    return this.#view.getFloat32(i, true);
  }
  /** A little-endian IEEE f64. `what` names the field in errors. */
  f64(what = "f64") {
    const i = this.#at(8, what);
    this.offset += 8;
    return this.#view.getFloat64(i, true);
  }
  /** A u32/u64 count that must be ≤ `max` (e.g. remaining bytes / minimum item size). */
  checkCount(n, max, what, at = this.offset) {
    if (typeof n === "bigint" ? n > BigInt(max) : n > max) {
      throw this.error(`Cannot read ${what}: count ${n} exceeds the ${max} that fit in the file`, at);
    }
    return Number(n);
  }
  /**
   * `n` bytes at the cursor. The result may be a view into the source's memory (BytesSource) or the window; copy
   * it if you keep it past the next read.
   */
  bytes(n, what = "bytes") {
    if (this.#inMemory) {
      this.need(n, what);
      const out2 = this.#win.subarray(this.offset, this.offset + n);
      this.offset += n;
      return out2;
    }
    if (n <= this.#windowBytes) {
      const i = this.#at(n, what);
      this.offset += n;
      return this.#win.subarray(i, i + n);
    }
    this.need(n, what);
    const out = this.#readSource(this.offset, n, what);
    this.offset += n;
    return out;
  }
  /**
   * A UTF-8 string of `nBytes` bytes (at most `maxBytes`). With `lossy`, invalid UTF-8 becomes U+FFFD; otherwise
   * it is a FormatError.
   */
  string(nBytes, what = "string", { maxBytes = 1 << 24, lossy = false } = {}) {
    const at = this.offset;
    if (nBytes > maxBytes) throw this.error(`Cannot read ${what}: length ${nBytes} exceeds the limit ${maxBytes}`);
    const b = this.bytes(nBytes, what);
    if (lossy) return UTF8_LOSSY.decode(b);
    try {
      return UTF8.decode(b);
    } catch (e) {
      throw this.error(`Cannot read ${what}: invalid UTF-8`, at, e);
    }
  }
};

// src/formats/gguf_constants.ts
var GGUF_MAGIC = 1179993927;
var GGUF_MAGIC_STRING = "GGUF";
var GGUF_DEFAULT_ALIGNMENT = 32;
var GGML_MAX_DIMS = 4;
var GGUF_TYPE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12
};
var LLM_ARCH_LLAMA = "llama";
var KEY_GENERAL_ARCHITECTURE = "general.architecture";
var KEY_GENERAL_ALIGNMENT = "general.alignment";
var KEY_LLAMA_CONTEXT_LENGTH = "llama.context_length";
var KEY_LLAMA_EMBEDDING_LENGTH = "llama.embedding_length";
var KEY_LLAMA_BLOCK_COUNT = "llama.block_count";
var KEY_LLAMA_FEED_FORWARD_LENGTH = "llama.feed_forward_length";
var KEY_LLAMA_ROPE_FREQ_BASE = "llama.rope.freq_base";
var KEY_LLAMA_HEAD_COUNT = "llama.attention.head_count";
var KEY_LLAMA_HEAD_COUNT_KV = "llama.attention.head_count_kv";
var KEY_LLAMA_LAYERNORM_RMS_EPS = "llama.attention.layer_norm_rms_epsilon";
var KEY_LLAMA_VOCAB_SIZE = "llama.vocab_size";
var KEY_TOKENIZER_MODEL = "tokenizer.ggml.model";
var KEY_TOKENIZER_LIST = "tokenizer.ggml.tokens";
var KEY_TOKENIZER_SCORES = "tokenizer.ggml.scores";
var KEY_TOKENIZER_TOKEN_TYPE = "tokenizer.ggml.token_type";
var KEY_TOKENIZER_BOS_ID = "tokenizer.ggml.bos_token_id";
var KEY_TOKENIZER_EOS_ID = "tokenizer.ggml.eos_token_id";
var KEY_TOKENIZER_UNK_ID = "tokenizer.ggml.unknown_token_id";
var KEY_TOKENIZER_PAD_ID = "tokenizer.ggml.padding_token_id";
var KEY_TOKENIZER_ADD_BOS = "tokenizer.ggml.add_bos_token";
var KEY_TOKENIZER_ADD_EOS = "tokenizer.ggml.add_eos_token";
var KEY_TOKENIZER_CHAT_TEMPLATE = "tokenizer.chat_template";
var MAX_CHAT_TEMPLATE_CHARS = 1 << 16;

// src/formats/gguf.ts
var TYPE_NAMES = new Map(Object.entries(GGUF_TYPE).map(([k, v]) => [
  v,
  k
]));
function ggufTypeName(t) {
  return TYPE_NAMES.get(t) ?? `unknown(${t})`;
}
var MIN_KV_BYTES = 8 + 4 + 1;
var MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;
var MIN_ITEM_BYTES = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  8: 8,
  9: 12,
  10: 8,
  11: 8,
  12: 8
};
function readGguf(source, options = {}) {
  const maxNameBytes = options.maxNameBytes ?? 65535;
  const maxDepth = options.maxArrayDepth ?? 4;
  const r = new ByteReader(source, {
    format: "gguf"
  });
  const magic = r.u32("magic");
  if (magic !== GGUF_MAGIC) {
    throw r.error(`Cannot parse GGUF header: bad magic 0x${magic.toString(16).padStart(8, "0")}, expected "GGUF"`, 0);
  }
  const version = r.u32("version");
  if (version === 1) {
    throw new UnsupportedError("Cannot read GGUF v1 (pre-2023-08 files): re-convert the model with a newer llama.cpp");
  }
  if (version !== 2 && version !== 3) {
    if ((version & 65535) === 0 && version !== 0) {
      throw new UnsupportedError(`Cannot read big-endian GGUF (version field 0x${version.toString(16)})`);
    }
    throw r.error(`Cannot parse GGUF header: unknown version ${version}, expected 2 or 3`, 4);
  }
  const tensorCount = r.checkCount(r.u64("tensor count"), Math.floor(r.remaining / MIN_TENSOR_INFO_BYTES), "tensor count", 8);
  const kvCount = r.checkCount(r.u64("kv count"), Math.floor(r.remaining / MIN_KV_BYTES), "kv count", 16);
  const metadata = /* @__PURE__ */ new Map();
  const metadataTypes = /* @__PURE__ */ new Map();
  for (let i = 0; i < kvCount; i++) {
    const at = r.offset;
    const key = readString(r, `key of kv ${i}`, maxNameBytes, false);
    if (metadata.has(key)) throw r.error(`Cannot parse GGUF metadata: duplicate key "${key}"`, at);
    const typeAt = r.offset;
    const type = r.u32(`type of "${key}"`);
    if (!(type in MIN_ITEM_BYTES)) {
      throw r.error(`Cannot parse GGUF metadata: "${key}" has unknown type ${type}`, typeAt);
    }
    if (type === GGUF_TYPE.ARRAY) {
      const itemAt = r.offset;
      const itemType = r.u32(`item type of "${key}"`);
      if (!(itemType in MIN_ITEM_BYTES)) {
        throw r.error(`Cannot parse GGUF metadata: array "${key}" has unknown item type ${itemType}`, itemAt);
      }
      metadata.set(key, readArrayBody(r, itemType, key, 1, maxDepth));
      metadataTypes.set(key, {
        type,
        itemType
      });
    } else {
      metadata.set(key, readValue(r, type, key, 0, maxDepth));
      metadataTypes.set(key, {
        type
      });
    }
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get(KEY_GENERAL_ALIGNMENT);
  if (al !== void 0) {
    const t = metadataTypes.get(KEY_GENERAL_ALIGNMENT).type;
    if (typeof al !== "number" || !Number.isInteger(al) || t === GGUF_TYPE.BOOL) {
      throw r.error(`Cannot parse GGUF header: general.alignment has type ${ggufTypeName(t)}, expected UINT32`);
    }
    if (al <= 0 || al > 1 << 30 || (al & al - 1) !== 0) {
      throw r.error(`Cannot parse GGUF header: general.alignment ${al} is not a power of two`);
    }
    alignment = al;
  }
  const tensors = [];
  const names = /* @__PURE__ */ new Set();
  for (let i = 0; i < tensorCount; i++) {
    const at = r.offset;
    const name = readString(r, `name of tensor ${i}`, maxNameBytes, false);
    if (names.has(name)) throw r.error(`Cannot parse GGUF tensor infos: duplicate tensor name "${name}"`, at);
    names.add(name);
    const nDims = r.u32(`n_dims of "${name}"`);
    if (nDims > GGML_MAX_DIMS) {
      throw r.error(`Cannot parse GGUF tensor "${name}": n_dims ${nDims} exceeds ${GGML_MAX_DIMS}`, r.offset - 4);
    }
    const ne = [];
    for (let d = 0; d < nDims; d++) {
      const neAt = r.offset;
      const v = r.i64(`ne[${d}] of "${name}"`);
      if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw r.error(`Cannot parse GGUF tensor "${name}": ne[${d}] = ${v} is out of range`, neAt);
      }
      ne.push(Number(v));
    }
    const typeAt = r.offset;
    const typeId = r.u32(`type of "${name}"`);
    const dtype = dtypeFromGgmlId(typeId);
    if (dtype === void 0) {
      throw new UnsupportedError(`Cannot read GGUF tensor "${name}": ggml type ${typeId} is not supported (byte ${typeAt})`);
    }
    const relativeOffset = r.u64Number(`offset of "${name}"`);
    const nElements = checkedProduct(ne);
    if (nElements === void 0) {
      throw r.error(`Cannot parse GGUF tensor "${name}": element count of ne [${ne}] overflows`, at);
    }
    const nBytes = tensorBytes(r, dtype, ne, nElements, name, at);
    if (relativeOffset % alignment !== 0) {
      throw r.error(`Cannot parse GGUF tensor "${name}": data offset ${relativeOffset} is not a multiple of the alignment ${alignment}`, r.offset - 8);
    }
    tensors.push({
      name,
      dtype,
      shape: ne.slice().reverse(),
      ne,
      relativeOffset,
      byteOffset: relativeOffset,
      nBytes
    });
  }
  const headerEnd = r.offset;
  const dataOffset = Math.ceil(headerEnd / alignment) * alignment;
  const size = source.size;
  for (const t of tensors) {
    t.byteOffset = dataOffset + t.relativeOffset;
    if (t.byteOffset + t.nBytes > size) {
      throw r.error(`Cannot parse GGUF tensor "${t.name}": data [${t.byteOffset}, ${t.byteOffset + t.nBytes}) extends past the file end ${size}`, t.byteOffset);
    }
  }
  checkNoOverlap(tensors, (msg, off) => r.error(msg, off));
  return {
    version,
    metadata,
    metadataTypes,
    tensors,
    alignment,
    dataOffset
  };
}
function tensorBytes(r, dtype, ne, n, name, at) {
  const block = blockSizeOf(dtype);
  if (ne.length > 0 && ne[0] % block !== 0) {
    throw r.error(`Cannot parse GGUF tensor "${name}": ne[0] = ${ne[0]} is not a multiple of the ${dtype} block size ${block}`, at);
  }
  try {
    return nBytesOf(dtype, n);
  } catch (e) {
    throw r.error(`Cannot parse GGUF tensor "${name}": ${e.message}`, at, e);
  }
}
function checkNoOverlap(tensors, fail) {
  const sorted = tensors.filter((t) => t.nBytes > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1], cur = sorted[i];
    if (cur.byteOffset < prev.byteOffset + prev.nBytes) {
      throw fail(`Cannot use tensor "${cur.name}": its data at ${cur.byteOffset} overlaps "${prev.name}" [${prev.byteOffset}, ${prev.byteOffset + prev.nBytes})`, cur.byteOffset);
    }
  }
}
function readString(r, what, maxBytes, lossy) {
  const n = r.u64(`length of ${what}`);
  if (n > BigInt(r.remaining)) {
    throw r.error(`Cannot read ${what}: length ${n} exceeds the ${r.remaining} bytes left`, r.offset - 8);
  }
  return r.string(Number(n), what, {
    maxBytes,
    lossy
  });
}
function readValue(r, type, key, depth, maxDepth) {
  switch (type) {
    case GGUF_TYPE.UINT8:
      return r.u8(key);
    case GGUF_TYPE.INT8:
      return r.i8(key);
    case GGUF_TYPE.UINT16:
      return r.u16(key);
    case GGUF_TYPE.INT16:
      return r.i16(key);
    case GGUF_TYPE.UINT32:
      return r.u32(key);
    case GGUF_TYPE.INT32:
      return r.i32(key);
    case GGUF_TYPE.FLOAT32:
      return r.f32(key);
    case GGUF_TYPE.FLOAT64:
      return r.f64(key);
    case GGUF_TYPE.BOOL: {
      const at = r.offset;
      const b = r.u8(key);
      if (b > 1) throw r.error(`Cannot parse GGUF metadata: "${key}" has bool value ${b}`, at);
      return b === 1;
    }
    case GGUF_TYPE.STRING:
      return readString(r, `value of "${key}"`, Number.MAX_SAFE_INTEGER, true);
    case GGUF_TYPE.UINT64: {
      const v = r.u64(key);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case GGUF_TYPE.INT64: {
      const v = r.i64(key);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
    }
    case GGUF_TYPE.ARRAY: {
      const at = r.offset;
      const itemType = r.u32(`item type of "${key}"`);
      if (!(itemType in MIN_ITEM_BYTES)) {
        throw r.error(`Cannot parse GGUF metadata: array "${key}" has unknown item type ${itemType}`, at);
      }
      return readArrayBody(r, itemType, key, depth + 1, maxDepth);
    }
    default:
      throw r.error(`Cannot parse GGUF metadata: "${key}" has unknown type ${type}`);
  }
}
function readArrayBody(r, itemType, key, depth, maxDepth) {
  if (depth > maxDepth) throw r.error(`Cannot parse GGUF metadata: "${key}" nests arrays deeper than ${maxDepth}`);
  const at = r.offset;
  const count = r.checkCount(r.u64(`count of "${key}"`), Math.floor(r.remaining / MIN_ITEM_BYTES[itemType]), `array "${key}"`, at);
  const out = new Array(count);
  for (let i = 0; i < count; i++) out[i] = readValue(r, itemType, key, depth, maxDepth);
  return out;
}

// src/kernels/kernels.ts
function storedTypeOf(fileDtype, cols) {
  if (fileDtype === "F32" || fileDtype === "F16" || fileDtype === "Q4_0" || fileDtype === "Q8_0") return fileDtype;
  if (isQuantized(fileDtype) && cols % 32 === 0) return "Q8_0";
  return "F32";
}

// src/quant/k_quants.ts
var BLOCK_Q2_K_BYTES = 84;
var BLOCK_Q3_K_BYTES = 110;
var BLOCK_Q4_K_BYTES = 144;
var BLOCK_Q5_K_BYTES = 176;
var BLOCK_Q6_K_BYTES = 210;
var fround4 = Math.fround;
function f16At(b, o) {
  return f16ToF32Ref(b[o] | b[o + 1] << 8);
}
function dequantizeRowQ2_KRef(blocks, out) {
  const nb = checkQuantShape("dequantize Q2_K row", out.length, QK_K, blocks.length, BLOCK_Q2_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q2_K_BYTES;
    const d = f16At(blocks, o + 80), dmin = f16At(blocks, o + 82);
    let y = i * QK_K;
    let is = 0;
    for (let h = 0; h < 2; h++) {
      const q = o + 16 + 32 * h;
      for (let j = 0; j < 4; j++) {
        const shift = 2 * j;
        for (let half = 0; half < 2; half++) {
          const sc = blocks[o + is++];
          const dl = fround4(d * (sc & 15)), ml = fround4(dmin * (sc >> 4));
          for (let l = 0; l < 16; l++) {
            out[y++] = fround4(fround4(dl * (blocks[q + 16 * half + l] >> shift & 3)) - ml);
          }
        }
      }
    }
  }
}
function q3kScale(b, s, k) {
  const low = k < 8 ? b[s + k] & 15 : b[s + k - 8] >> 4;
  const high = b[s + 8 + k % 4] >> 2 * Math.floor(k / 4) & 3;
  return low | high << 4;
}
function dequantizeRowQ3_KRef(blocks, out) {
  const nb = checkQuantShape("dequantize Q3_K row", out.length, QK_K, blocks.length, BLOCK_Q3_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q3_K_BYTES;
    const d = f16At(blocks, o + 108);
    let y = i * QK_K;
    let is = 0;
    for (let h = 0; h < 2; h++) {
      const q = o + 32 + 32 * h;
      for (let j = 0; j < 4; j++) {
        const shift = 2 * j;
        const m = 1 << 4 * h + j;
        for (let half = 0; half < 2; half++) {
          const dl = fround4(d * (q3kScale(blocks, o + 96, is++) - 32));
          for (let l = 0; l < 16; l++) {
            const idx = 16 * half + l;
            const q3 = (blocks[q + idx] >> shift & 3) - (blocks[o + idx] & m ? 0 : 4);
            out[y++] = fround4(dl * q3);
          }
        }
      }
    }
  }
}
function scaleMinK4(b, s, k) {
  if (k < 4) return [
    b[s + k] & 63,
    b[s + k + 4] & 63
  ];
  return [
    b[s + k + 4] & 15 | b[s + k - 4] >> 6 << 4,
    b[s + k + 4] >> 4 | b[s + k] >> 6 << 4
  ];
}
function dequantizeRowQ4_KRef(blocks, out) {
  const nb = checkQuantShape("dequantize Q4_K row", out.length, QK_K, blocks.length, BLOCK_Q4_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q4_K_BYTES;
    const d = f16At(blocks, o), dmin = f16At(blocks, o + 2);
    let y = i * QK_K;
    for (let c = 0; c < 4; c++) {
      const q = o + 16 + 32 * c;
      const [sc1, m1] = scaleMinK4(blocks, o + 4, 2 * c);
      const [sc2, m2] = scaleMinK4(blocks, o + 4, 2 * c + 1);
      const d1 = fround4(d * sc1), mm1 = fround4(dmin * m1), d2 = fround4(d * sc2), mm2 = fround4(dmin * m2);
      for (let l = 0; l < 32; l++) out[y++] = fround4(fround4(d1 * (blocks[q + l] & 15)) - mm1);
      for (let l = 0; l < 32; l++) out[y++] = fround4(fround4(d2 * (blocks[q + l] >> 4)) - mm2);
    }
  }
}
function dequantizeRowQ5_KRef(blocks, out) {
  const nb = checkQuantShape("dequantize Q5_K row", out.length, QK_K, blocks.length, BLOCK_Q5_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q5_K_BYTES;
    const d = f16At(blocks, o), dmin = f16At(blocks, o + 2);
    let y = i * QK_K;
    for (let c = 0; c < 4; c++) {
      const q = o + 48 + 32 * c;
      const u1 = 1 << 2 * c, u2 = 2 << 2 * c;
      const [sc1, m1] = scaleMinK4(blocks, o + 4, 2 * c);
      const [sc2, m2] = scaleMinK4(blocks, o + 4, 2 * c + 1);
      const d1 = fround4(d * sc1), mm1 = fround4(dmin * m1), d2 = fround4(d * sc2), mm2 = fround4(dmin * m2);
      for (let l = 0; l < 32; l++) {
        const v = (blocks[q + l] & 15) + (blocks[o + 16 + l] & u1 ? 16 : 0);
        out[y++] = fround4(fround4(d1 * v) - mm1);
      }
      for (let l = 0; l < 32; l++) {
        const v = (blocks[q + l] >> 4) + (blocks[o + 16 + l] & u2 ? 16 : 0);
        out[y++] = fround4(fround4(d2 * v) - mm2);
      }
    }
  }
}
function dequantizeRowQ6_KRef(blocks, out) {
  const nb = checkQuantShape("dequantize Q6_K row", out.length, QK_K, blocks.length, BLOCK_Q6_K_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q6_K_BYTES;
    const d = f16At(blocks, o + 208);
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h, qh = o + 128 + 32 * h, sc = o + 192 + 8 * h;
      const y = i * QK_K + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const hb = blocks[qh + l];
        const q1 = (blocks[ql + l] & 15 | (hb & 3) << 4) - 32;
        const q2 = (blocks[ql + l + 32] & 15 | (hb >> 2 & 3) << 4) - 32;
        const q3 = (blocks[ql + l] >> 4 | (hb >> 4 & 3) << 4) - 32;
        const q4 = (blocks[ql + l + 32] >> 4 | (hb >> 6 & 3) << 4) - 32;
        const s = (k) => blocks[sc + is + k] << 24 >> 24;
        out[y + l] = fround4(fround4(d * s(0)) * q1);
        out[y + l + 32] = fround4(fround4(d * s(2)) * q2);
        out[y + l + 64] = fround4(fround4(d * s(4)) * q3);
        out[y + l + 96] = fround4(fround4(d * s(6)) * q4);
      }
    }
  }
}

// src/quant/legacy_quants.ts
var QK4_1 = 32;
var QK5_0 = 32;
var QK5_1 = 32;
var BLOCK_Q4_1_BYTES = 20;
var BLOCK_Q5_0_BYTES = 22;
var BLOCK_Q5_1_BYTES = 24;
var fround5 = Math.fround;
function f16At2(b, o) {
  return f16ToF32Ref(b[o] | b[o + 1] << 8);
}
function u32At(b, o) {
  return (b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24) >>> 0;
}
function dequantizeRowQ4_1Ref(blocks, out) {
  const nb = checkQuantShape("dequantize Q4_1 row", out.length, QK4_1, blocks.length, BLOCK_Q4_1_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q4_1_BYTES;
    const d = f16At2(blocks, o), m = f16At2(blocks, o + 2);
    const y = i * QK4_1;
    for (let j = 0; j < 16; j++) {
      const q = blocks[o + 4 + j];
      out[y + j] = fround5(fround5((q & 15) * d) + m);
      out[y + j + 16] = fround5(fround5((q >> 4) * d) + m);
    }
  }
}
function dequantizeRowQ5_0Ref(blocks, out) {
  const nb = checkQuantShape("dequantize Q5_0 row", out.length, QK5_0, blocks.length, BLOCK_Q5_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q5_0_BYTES;
    const d = f16At2(blocks, o);
    const qh = u32At(blocks, o + 2);
    const y = i * QK5_0;
    for (let j = 0; j < 16; j++) {
      const q = blocks[o + 6 + j];
      const x0 = (q & 15 | (qh >>> j & 1) << 4) - 16;
      const x1 = (q >> 4 | (qh >>> j + 16 & 1) << 4) - 16;
      out[y + j] = fround5(x0 * d);
      out[y + j + 16] = fround5(x1 * d);
    }
  }
}
function dequantizeRowQ5_1Ref(blocks, out) {
  const nb = checkQuantShape("dequantize Q5_1 row", out.length, QK5_1, blocks.length, BLOCK_Q5_1_BYTES);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_Q5_1_BYTES;
    const d = f16At2(blocks, o), m = f16At2(blocks, o + 2);
    const qh = u32At(blocks, o + 4);
    const y = i * QK5_1;
    for (let j = 0; j < 16; j++) {
      const q = blocks[o + 8 + j];
      const x0 = q & 15 | (qh >>> j & 1) << 4;
      const x1 = q >> 4 | (qh >>> j + 16 & 1) << 4;
      out[y + j] = fround5(fround5(x0 * d) + m);
      out[y + j + 16] = fround5(fround5(x1 * d) + m);
    }
  }
}

// src/quant/dequantize.ts
var BLOCK_REFS = {
  Q4_0: dequantizeRowQ4_0Ref,
  Q4_1: dequantizeRowQ4_1Ref,
  Q5_0: dequantizeRowQ5_0Ref,
  Q5_1: dequantizeRowQ5_1Ref,
  Q8_0: dequantizeRowQ8_0Ref,
  Q2_K: dequantizeRowQ2_KRef,
  Q3_K: dequantizeRowQ3_KRef,
  Q4_K: dequantizeRowQ4_KRef,
  Q5_K: dequantizeRowQ5_KRef,
  Q6_K: dequantizeRowQ6_KRef
};
var DEQUANTIZABLE_DTYPES = [
  "F32",
  "F16",
  "BF16",
  "F64",
  "I8",
  "U8",
  "I16",
  "I32",
  ...Object.keys(BLOCK_REFS)
];
function dequantizeRef(dtype, bytes, nElements) {
  const need = nBytesOf(dtype, nElements);
  if (bytes.length !== need) {
    throw new RangeError(`Cannot dequantize ${nElements} ${dtype} values: expected ${need} bytes, got ${bytes.length}`);
  }
  const out = new Float32Array(nElements);
  const block = BLOCK_REFS[dtype];
  if (block) {
    block(bytes, out);
    return out;
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F32":
      for (let i = 0; i < nElements; i++) out[i] = v.getFloat32(4 * i, true);
      return out;
    case "F16":
      for (let i = 0; i < nElements; i++) out[i] = f16ToF32Ref(v.getUint16(2 * i, true));
      return out;
    case "BF16":
      for (let i = 0; i < nElements; i++) out[i] = bf16ToF32Ref(v.getUint16(2 * i, true));
      return out;
    case "F64":
      for (let i = 0; i < nElements; i++) out[i] = v.getFloat64(8 * i, true);
      return out;
    case "I8":
      for (let i = 0; i < nElements; i++) out[i] = v.getInt8(i);
      return out;
    case "U8":
      for (let i = 0; i < nElements; i++) out[i] = v.getUint8(i);
      return out;
    case "I16":
      for (let i = 0; i < nElements; i++) out[i] = v.getInt16(2 * i, true);
      return out;
    case "I32":
      for (let i = 0; i < nElements; i++) out[i] = v.getInt32(4 * i, true);
      return out;
  }
  throw new UnsupportedError(`Cannot dequantize ${dtype}: no reference dequantizer (block size ${blockSizeOf(dtype)})`);
}

// src/kernels/scalar_kernels.ts
var PAGE = 65536;
var MAX_PAGES = 65536;
var KernelMemory = class {
  memory;
  #top;
  #f32;
  #u8;
  #u16;
  #f16;
  constructor(memory, base = 1024) {
    this.memory = memory ?? new WebAssembly.Memory({
      initial: 1,
      maximum: MAX_PAGES,
      shared: true
    });
    this.#top = base;
    this.#views();
  }
  #views() {
    const buf = this.memory.buffer;
    this.#f32 = new Float32Array(buf);
    this.#u8 = new Uint8Array(buf);
    this.#u16 = new Uint16Array(buf);
    this.#f16 = new Float16Array(buf);
  }
  get top() {
    return this.#top;
  }
  alloc(nBytes) {
    const ptr = Math.ceil(this.#top / 64) * 64;
    const end = ptr + Math.max(0, nBytes);
    if (end > MAX_PAGES * PAGE) {
      throw new RangeError(`Cannot allocate ${nBytes} bytes of kernel memory: a shard would need ${(end / 2 ** 30).toFixed(2)} GiB (limit 4 GiB per WebAssembly memory)`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const need = Math.ceil((end - have) / PAGE);
      const step = Math.min(MAX_PAGES - have / PAGE, Math.max(need, 1024));
      this.memory.grow(step);
      this.#views();
    }
    this.#top = end;
    return ptr;
  }
  // Only this allocator grows the memory, so the views are refreshed there and read without a check here
  // (reading `memory.buffer` of a shared memory makes a new SharedArrayBuffer object each time).
  get f32() {
    return this.#f32;
  }
  get u8() {
    return this.#u8;
  }
  get u16() {
    return this.#u16;
  }
  get f16() {
    return this.#f16;
  }
};
function convertRows(src, dst, bytes, nRows, cols) {
  if (src === dst) return bytes;
  const f = dequantizeRef(src, bytes, nRows * cols);
  if (dst === "F32") return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  if (dst === "F16") {
    const h = new Float16Array(f);
    return new Uint8Array(h.buffer);
  }
  if (dst === "Q8_0") {
    const out = new Uint8Array(nBytesOf("Q8_0", nRows * cols));
    quantizeRowQ8_0Ref(f, out);
    return out;
  }
  throw new RangeError(`Cannot convert ${src} rows to ${dst}`);
}
var ScalarKernels = class {
  mem;
  constructor(mem = new KernelMemory()) {
    this.mem = mem;
  }
  get memory() {
    return this.mem.memory;
  }
  get memoryBytes() {
    return this.mem.top;
  }
  alloc(nBytes) {
    return this.mem.alloc(nBytes);
  }
  allocMatrix(dtype, rows, cols) {
    return this.mem.alloc(nBytesOf(dtype, rows * cols));
  }
  scratch(_maxBatch, _maxCols) {
  }
  loadRows(srcDtype, _dst, bytes, ptr, rows, cols) {
    this.mem.f32.set(dequantizeRef(srcDtype, bytes, rows * cols), ptr / 4);
  }
  loadMatrixRows(slice, srcDtype, bytes, row0, nRows) {
    const rowBytes = nBytesOf(slice.dtype, slice.cols);
    const dst = slice.ptr + row0 * rowBytes;
    this.mem.u8.set(convertRows(srcDtype, slice.dtype, bytes, nRows, slice.cols), dst);
  }
  copyIn(src, srcIndex, dstPtr, n) {
    this.mem.f32.set(src.subarray(srcIndex, srcIndex + n), dstPtr / 4);
  }
  copyOut(src, B, cols, dst, dstIndex, dstStride) {
    for (let b = 0; b < B; b++) dst.set(this.#f32(src + 4 * b * cols, cols), dstIndex + b * dstStride);
  }
  /** n f32 values at ptr. */
  #f32(ptr, n) {
    return this.mem.f32.subarray(ptr / 4, ptr / 4 + n);
  }
  rmsNorm(x, weight, out, n, eps, B) {
    const w = this.#f32(weight, n);
    for (let b = 0; b < B; b++) rmsNormRef(this.#f32(x + 4 * b * n, n), w, this.#f32(out + 4 * b * n, n), eps);
  }
  matmul(w, x, y, B) {
    const { rows, cols, dtype } = w;
    if (rows === 0) return;
    const xs = this.#f32(x, B * cols), ys = this.#f32(y, B * rows);
    const wBytes = this.mem.u8.subarray(w.ptr, w.ptr + nBytesOf(dtype, rows * cols));
    if (dtype === "Q4_0") matmulQ4_0Ref(wBytes, xs, ys, rows, cols, B);
    else if (dtype === "Q8_0") matmulQ8_0Ref(wBytes, xs, ys, rows, cols, B);
    else if (dtype === "F16") {
      matmulF16Ref(this.mem.u16.subarray(w.ptr / 2, w.ptr / 2 + rows * cols), xs, ys, rows, cols, B);
    } else if (dtype === "F32") matmulF32Ref(this.#f32(w.ptr, rows * cols), xs, ys, rows, cols, B);
    else throw new RangeError(`Cannot multiply: weights stored as ${dtype} (kernels keep ${"F32/F16/Q4_0/Q8_0"})`);
  }
  rope(x, nHeads, headSize, pos, theta, B) {
    const width = nHeads * headSize;
    for (let b = 0; b < B; b++) ropeRef(this.#f32(x + 4 * b * width, width), nHeads, headSize, pos + b, theta);
  }
  storeKv(src, cache, B, width, pos, kvType) {
    const s = this.#f32(src, B * width);
    if (kvType === "f32") this.mem.f32.set(s, cache / 4 + pos * width);
    else this.mem.f16.set(s, cache / 2 + pos * width);
  }
  attention(q, k, v, out, shape, B, pos) {
    const { nHeads, nKvHeads, headSize, kvType } = shape;
    const width = nHeads * headSize, kvWidth = nKvHeads * headSize;
    for (let b = 0; b < B; b++) {
      const nPos = pos + b + 1, n = nPos * kvWidth;
      const kc = kvType === "f16" ? this.mem.u16.subarray(k / 2, k / 2 + n) : this.#f32(k, n);
      const vc = kvType === "f16" ? this.mem.u16.subarray(v / 2, v / 2 + n) : this.#f32(v, n);
      const o = this.#f32(out + 4 * b * width, width);
      attentionRef(this.#f32(q + 4 * b * width, width), kc, vc, o, {
        nHeads,
        nKvHeads,
        headSize,
        nPos
      });
    }
  }
  add(dst, src, n) {
    const f = this.mem.f32, d = dst / 4, s = src / 4;
    for (let i = 0; i < n; i++) f[d + i] += f[s + i];
  }
  addFrom(dst, src, srcIndex, n) {
    const f = this.mem.f32, d = dst / 4;
    for (let i = 0; i < n; i++) f[d + i] += src[srcIndex + i];
  }
  fill(dst, n, value) {
    this.mem.f32.fill(value, dst / 4, dst / 4 + n);
  }
  siluGate(gate, up, out, n) {
    siluGateRef(this.#f32(gate, n), this.#f32(up, n), this.#f32(out, n));
  }
};

// src/kernels/simd_kernels.ts
function wasmMatrixBytes(dtype, rows, cols) {
  if (dtype === "Q4_0") return repackedQ4_0Bytes(rows, cols);
  if (dtype === "Q8_0") return repackedQ8_0Bytes(rows, cols);
  return nBytesOf(dtype, rows * cols);
}
async function createKernels(choice = "wasm", module) {
  if (choice === "scalar") return new ScalarKernels();
  const k = await loadWasmKernels({
    module,
    initialPages: 16
  });
  return new SimdKernels(k.raw, new KernelMemory(k.memory, k.arena.base));
}
var STAGING_BYTES = 16 << 20;
var SimdKernels = class extends ScalarKernels {
  #raw;
  #staging = 0;
  #act = 0;
  #actStride = 0;
  #mmScratch = 0;
  #att = 0;
  #attLen = 0;
  #maxBatch = 0;
  // the Q4_0R / Q8_0R kernels in the form measured faster on this host (pickDotForm; identical results)
  #matvecQ4;
  #matmulQ4;
  #matvecQ8;
  #matmulQ8;
  #probe = 0;
  constructor(raw, mem) {
    super(mem);
    this.#raw = raw;
    this.#matvecQ4 = raw.matvecQ4_0R;
    this.#matmulQ4 = raw.matmulQ4_0R;
    this.#matvecQ8 = raw.matvecQ8_0R;
    this.#matmulQ8 = raw.matmulQ8_0R;
  }
  allocMatrix(dtype, rows, cols) {
    return this.mem.alloc(wasmMatrixBytes(dtype, rows, cols));
  }
  scratch(maxBatch, maxCols) {
    super.scratch(maxBatch, maxCols);
    this.#maxBatch = maxBatch;
    const cols32 = Math.ceil(maxCols / 32) * 32;
    this.#actStride = q8AStride(cols32);
    this.#act = this.mem.alloc(maxBatch * this.#actStride);
    this.#mmScratch = this.mem.alloc(Math.max(q4_0RScratchBytes(maxBatch), q8_0RScratchBytes(maxBatch)));
    if (this.#probe === 0) {
      this.#probe = this.mem.alloc(DOT_PROBE_BYTES);
      this.mem.u8.fill(0, this.#probe, this.#probe + DOT_PROBE_BYTES);
      const raw = this.#raw;
      if (pickDotForm(raw, this.#probe, "Q4_0") === "vnni") {
        this.#matvecQ4 = raw.matvecQ4_0RVnni;
        this.#matmulQ4 = raw.matmulQ4_0RVnni;
      }
      if (pickDotForm(raw, this.#probe, "Q8_0") === "vnni") {
        this.#matvecQ8 = raw.matvecQ8_0RVnni;
        this.#matmulQ8 = raw.matmulQ8_0RVnni;
      }
    }
  }
  loadMatrixRows(slice, srcDtype, bytes, row0, nRows) {
    const t = slice.dtype;
    if (t !== "Q4_0" && t !== "Q8_0") return super.loadMatrixRows(slice, srcDtype, bytes, row0, nRows);
    if (row0 % 8 !== 0) throw new RangeError(`Cannot repack ${t} rows: chunk start ${row0} is not a multiple of 8`);
    const cols = slice.cols;
    const std = convertRows(srcDtype, t, bytes, nRows, cols);
    if (this.#staging === 0) this.#staging = this.mem.alloc(STAGING_BYTES);
    const rowBytes = std.length / nRows;
    const run = Math.floor(STAGING_BYTES / rowBytes / 8) * 8;
    if (run === 0) throw new RangeError(`Cannot repack ${t} rows: a row of ${rowBytes} bytes`);
    for (let r = 0; r < nRows; r += run) {
      const n = Math.min(run, nRows - r);
      this.mem.u8.set(std.subarray(r * rowBytes, (r + n) * rowBytes), this.#staging);
      if (t === "Q4_0") this.#raw.repackQ4_0(this.#staging, slice.ptr + repackedQ4_0Bytes(row0 + r, cols), n, cols);
      else this.#raw.repackQ8_0(this.#staging, slice.ptr + repackedQ8_0Bytes(row0 + r, cols), n, cols);
    }
  }
  rmsNorm(x, weight, out, n, eps, B) {
    for (let b = 0; b < B; b++) this.#raw.rmsNorm(x + 4 * b * n, weight, out + 4 * b * n, n, eps);
  }
  matmul(w, xPtr, yPtr, B) {
    const raw = this.#raw, { rows, cols } = w;
    if (rows === 0) return;
    if (B > this.#maxBatch) throw new RangeError(`Cannot multiply: batch ${B} exceeds the scratch (${this.#maxBatch})`);
    switch (w.dtype) {
      case "F32":
        if (B === 1) raw.matvecF32(w.ptr, xPtr, yPtr, cols, 0, rows);
        else raw.matmulF32(w.ptr, xPtr, yPtr, cols, rows, B, 0, rows);
        return;
      case "F16":
        if (B === 1) raw.matvecF16(w.ptr, xPtr, yPtr, cols, 0, rows);
        else raw.matmulF16(w.ptr, xPtr, yPtr, cols, rows, B, 0, rows);
        return;
      case "Q4_0":
      case "Q8_0": {
        const stride = this.#actStride;
        for (let b = 0; b < B; b++) raw.quantizeQ8A(xPtr + 4 * b * cols, this.#act + b * stride, cols);
        if (w.dtype === "Q4_0") {
          if (B === 1) this.#matvecQ4(w.ptr, this.#act, yPtr, cols, 0, rows, this.#mmScratch);
          else this.#matmulQ4(w.ptr, this.#act, stride, yPtr, cols, rows, B, 0, rows, this.#mmScratch);
        } else {
          if (B === 1) this.#matvecQ8(w.ptr, this.#act, yPtr, cols, 0, rows);
          else this.#matmulQ8(w.ptr, this.#act, stride, yPtr, cols, rows, B, 0, rows, this.#mmScratch);
        }
        return;
      }
      default:
        return super.matmul(w, xPtr, yPtr, B);
    }
  }
  rope(x, nHeads, headSize, pos, theta, B) {
    const width = nHeads * headSize;
    for (let b = 0; b < B; b++) this.#raw.rope(x + 4 * b * width, nHeads, headSize, pos + b, theta);
  }
  storeKv(src, cache, B, width, pos, kvType) {
    if (kvType === "f16") this.#raw.f32ToF16Array(src, cache + 2 * pos * width, B * width);
    else super.storeKv(src, cache, B, width, pos, kvType);
  }
  attention(q, k, v, out, shape, B, pos) {
    if (this.#attLen < shape.contextSize) {
      this.#att = this.mem.alloc(4 * shape.contextSize);
      this.#attLen = shape.contextSize;
    }
    const { nHeads, nKvHeads, headSize } = shape;
    const width = nHeads * headSize, scale = 1 / Math.sqrt(headSize), f16 = shape.kvType === "f16" ? 1 : 0;
    for (let b = 0; b < B; b++) {
      const o = 4 * b * width;
      this.#raw.attention(q + o, k, v, out + o, this.#att, nHeads, nKvHeads, headSize, pos + b + 1, f16, scale);
    }
  }
  siluGate(gate, up, out, n) {
    this.#raw.siluGate(gate, up, out, n);
  }
};

// src/formats/protobuf.ts
var MAX_FIELD = (1 << 29) - 1;
var utf8 = new TextDecoder("utf-8", {
  fatal: true,
  ignoreBOM: true
});

// src/formats/sentencepiece_model.ts
var PIECE_NORMAL = 1;
var PIECE_UNKNOWN = 2;
var PIECE_CONTROL = 3;
var PIECE_USER_DEFINED = 4;
var PIECE_UNUSED = 5;
var PIECE_BYTE = 6;
var MAX_PIECES = 1 << 22;
var utf8Fatal = new TextDecoder("utf-8", {
  fatal: true,
  ignoreBOM: true
});

// src/tokenizer/bpe.ts
var MAX_PAIR_CACHE_BITS = 21;
var PairCache = class {
  #bits = 12;
  #l = new Int32Array(1 << 12).fill(-1);
  #r = new Int32Array(1 << 12);
  #v = new Int32Array(1 << 12);
  #size = 0;
  /** The cached value, or -2 when absent. */
  get(l, r) {
    const mask = (1 << this.#bits) - 1;
    let h = (Math.imul(l, 2654435761) ^ Math.imul(r, 2246822519)) >>> 32 - this.#bits;
    for (; ; ) {
      const k = this.#l[h];
      if (k === -1) return -2;
      if (k === l && this.#r[h] === r) return this.#v[h];
      h = h + 1 & mask;
    }
  }
  set(l, r, v) {
    if (2 * (this.#size + 1) > 1 << this.#bits) {
      if (this.#bits < MAX_PAIR_CACHE_BITS) this.#rehash(this.#bits + 1);
      else this.#clear();
    }
    const mask = (1 << this.#bits) - 1;
    let h = (Math.imul(l, 2654435761) ^ Math.imul(r, 2246822519)) >>> 32 - this.#bits;
    while (this.#l[h] !== -1) h = h + 1 & mask;
    this.#l[h] = l;
    this.#r[h] = r;
    this.#v[h] = v;
    this.#size++;
  }
  #clear() {
    this.#l.fill(-1);
    this.#size = 0;
  }
  #rehash(bits) {
    const [ol, or, ov] = [
      this.#l,
      this.#r,
      this.#v
    ];
    this.#bits = bits;
    this.#l = new Int32Array(1 << bits).fill(-1);
    this.#r = new Int32Array(1 << bits);
    this.#v = new Int32Array(1 << bits);
    this.#size = 0;
    for (let i = 0; i < ol.length; i++) if (ol[i] !== -1) this.set(ol[i], or[i], ov[i]);
  }
};
var Scratch = class {
  symStart = new Int32Array(256);
  symEnd = new Int32Array(256);
  prev = new Int32Array(256);
  next = new Int32Array(256);
  freeze = new Uint8Array(256);
  /** Symbol key: its vocab id when the text is a segmentable piece, else a synthetic id ≥ vocab size. */
  key = new Int32Array(256);
  // heap entries
  hScore = new Float64Array(256);
  hLeft = new Int32Array(256);
  hRight = new Int32Array(256);
  hMerged = new Int32Array(256);
  heap = new Int32Array(256);
  ensureSymbols(n) {
    if (n <= this.symStart.length) return;
    const cap = Math.max(n, this.symStart.length * 2);
    this.symStart = new Int32Array(cap);
    this.symEnd = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.freeze = new Uint8Array(cap);
    this.key = new Int32Array(cap);
  }
  ensureEntries(n) {
    if (n <= this.hScore.length) return;
    const cap = Math.max(n, this.hScore.length * 2);
    this.hScore = new Float64Array(cap);
    this.hLeft = new Int32Array(cap);
    this.hRight = new Int32Array(cap);
    this.hMerged = new Int32Array(cap);
    this.heap = new Int32Array(cap);
  }
};
var BpeModel = class {
  vocab;
  #userByFirst = /* @__PURE__ */ new Map();
  #scratch = new Scratch();
  /** Key of each single character (by code point): its piece id, or a synthetic id for non-pieces. */
  #charKey = /* @__PURE__ */ new Map();
  #keyText = [];
  /** Merge cache: (leftKey, rightKey) → merged piece id, or -1 when the concatenation is no piece. */
  #pairCache = new PairCache();
  /** Normal pieces whose text is also a reserved piece: PieceToId returns the reserved id for them. */
  #shadowed = /* @__PURE__ */ new Map();
  constructor(vocab) {
    this.vocab = vocab;
    for (const [p, id] of vocab.normalIds) {
      const r = vocab.reservedIds.get(p);
      if (r !== void 0) this.#shadowed.set(id, r);
    }
    for (const u of vocab.userDefined) {
      const c = u.codePointAt(0);
      const list = this.#userByFirst.get(c) ?? [];
      list.push(u);
      list.sort((a, b) => b.length - a.length);
      this.#userByFirst.set(c, list);
    }
  }
  #keyOfChar(s, i, len) {
    const cp = len === 2 ? s.codePointAt(i) : s.charCodeAt(i);
    let k = this.#charKey.get(cp);
    if (k === void 0) {
      const text = s.slice(i, i + len);
      k = this.vocab.normalIds.get(text);
      if (k === void 0) {
        k = this.vocab.size + this.#keyText.length;
        this.#keyText.push(text);
      }
      this.#charKey.set(cp, k);
    }
    return k;
  }
  #keyOfText(text) {
    const id = this.vocab.normalIds.get(text);
    if (id !== void 0) return id;
    const k = this.vocab.size + this.#keyText.length;
    this.#keyText.push(text);
    return k;
  }
  /** Merged piece id of two adjacent symbols (by key and text span), or -1. Cached by key pair. */
  #merge(lk, rk, s, a, b) {
    let m = this.#pairCache.get(lk, rk);
    if (m === -2) {
      m = this.vocab.normalIds.get(s.slice(a, b)) ?? -1;
      this.#pairCache.set(lk, rk, m);
    }
    return m;
  }
  /**
   * Segments normalized text `s[from, to)` and appends (id, start, end) triples to `out` (offsets into `s`).
   * Ids follow SentencePiece's PieceToId, so a character that is no piece comes out as the unknown id.
   */
  encode(s, from, to, out) {
    if (to <= from) return;
    const sc = this.#scratch;
    const vocab = this.vocab;
    const scores = vocab.scores;
    const hasUser = this.#userByFirst.size > 0;
    sc.ensureSymbols(to - from);
    let n = 0;
    for (let i = from; i < to; ) {
      let len = 1;
      let frozen = 0;
      let key = -1;
      const c = s.charCodeAt(i);
      if (c >= 55296 && c < 56320 && i + 1 < to) {
        const d = s.charCodeAt(i + 1);
        if (d >= 56320 && d < 57344) len = 2;
      }
      if (hasUser) {
        const list = this.#userByFirst.get(s.codePointAt(i));
        if (list) {
          for (const u of list) {
            if (u.length <= to - i && s.startsWith(u, i)) {
              len = u.length;
              frozen = 1;
              key = this.#keyOfText(u);
              break;
            }
          }
        }
      }
      if (key < 0) key = this.#keyOfChar(s, i, len);
      sc.symStart[n] = i;
      sc.symEnd[n] = i + len;
      sc.prev[n] = n - 1;
      sc.next[n] = i + len < to ? n + 1 : -1;
      sc.freeze[n] = frozen;
      sc.key[n] = key;
      n++;
      i += len;
    }
    sc.ensureEntries(3 * n);
    const symStart = sc.symStart, symEnd = sc.symEnd, prev = sc.prev, next = sc.next, freeze = sc.freeze;
    const keys = sc.key;
    const hScore = sc.hScore, hLeft = sc.hLeft, hRight = sc.hRight, hMerged = sc.hMerged, heap = sc.heap;
    let heapSize = 0;
    let nEntries = 0;
    const revMerge = vocab.hasUnused ? /* @__PURE__ */ new Map() : void 0;
    const before = (a, b) => {
      const sa = hScore[a], sb = hScore[b];
      return sa > sb || sa === sb && hLeft[a] < hLeft[b];
    };
    const push = (left, right) => {
      if (left < 0 || right < 0 || freeze[left] || freeze[right]) return;
      const a = symStart[left], b = symEnd[right];
      const id = this.#merge(keys[left], keys[right], s, a, b);
      if (id < 0) return;
      const e = nEntries++;
      hScore[e] = scores[id];
      hLeft[e] = left;
      hRight[e] = right;
      hMerged[e] = id;
      if (revMerge && vocab.isUnused(id)) {
        revMerge.set(vocab.pieces[id], [
          s.slice(a, symEnd[left]),
          s.slice(symStart[right], b)
        ]);
      }
      let i = heapSize++;
      while (i > 0) {
        const p = i - 1 >> 1;
        if (!before(e, heap[p])) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = e;
    };
    const pop = () => {
      const top = heap[0];
      const last = heap[--heapSize];
      let i = 0;
      for (; ; ) {
        const l = 2 * i + 1;
        if (l >= heapSize) break;
        const r = l + 1;
        const c = r < heapSize && before(heap[r], heap[l]) ? r : l;
        if (!before(heap[c], last)) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = last;
      return top;
    };
    for (let i = 1; i < n; i++) push(i - 1, i);
    while (heapSize > 0) {
      const e = pop();
      const l = hLeft[e], r = hRight[e];
      const ll = symEnd[l] - symStart[l], rl = symEnd[r] - symStart[r];
      const merged = hMerged[e];
      if (ll === 0 || rl === 0 || ll + rl !== vocab.pieces[merged].length) continue;
      symEnd[l] = symEnd[r];
      keys[l] = merged;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      symEnd[r] = symStart[r];
      push(prev[l], l);
      push(l, next[l]);
    }
    for (let i = 0; i !== -1; i = next[i]) {
      const a = symStart[i], b = symEnd[i];
      if (revMerge) this.#resegment(s.slice(a, b), a, revMerge, out);
      else out.push(this.#outputId(keys[i]), a, b);
    }
  }
  /** SentencePiece's PieceToId of a symbol's text: reserved pieces win, non-pieces are unknown. */
  #outputId(k) {
    const vocab = this.vocab;
    if (k < vocab.size) return this.#shadowed.get(k) ?? k;
    return vocab.pieceToId(this.#keyText[k - vocab.size]);
  }
  #resegment(w, start, revMerge, out) {
    const id = this.vocab.pieceToId(w);
    const split2 = this.vocab.isUnused(id) ? revMerge.get(w) : void 0;
    if (!split2) {
      out.push(id, start, start + w.length);
      return;
    }
    this.#resegment(split2[0], start, revMerge, out);
    this.#resegment(split2[1], start + split2[0].length, revMerge, out);
  }
};

// src/tokenizer/utf8.ts
var REPLACEMENT_CHARACTER = "\uFFFD";
var encoder = new TextEncoder();
function utf8Encode(s) {
  return encoder.encode(s);
}
function isTrail(b) {
  return (b & 192) === 128;
}
function validCodepoint(c) {
  return c < 55296 || c >= 57344 && c <= 1114111;
}
function decodeUtf8Char(bytes, pos, end) {
  const b0 = bytes[pos];
  const len = end - pos;
  if (b0 < 128) return b0;
  if (len >= 2 && (b0 & 224) === 192) {
    const b1 = bytes[pos + 1];
    const cp = (b0 & 31) << 6 | b1 & 63;
    if (isTrail(b1) && cp >= 128 && validCodepoint(cp)) return cp;
  } else if (len >= 3 && (b0 & 240) === 224) {
    const b1 = bytes[pos + 1], b2 = bytes[pos + 2];
    const cp = (b0 & 15) << 12 | (b1 & 63) << 6 | b2 & 63;
    if (isTrail(b1) && isTrail(b2) && cp >= 2048 && validCodepoint(cp)) return cp;
  } else if (len >= 4 && (b0 & 248) === 240) {
    const b1 = bytes[pos + 1], b2 = bytes[pos + 2], b3 = bytes[pos + 3];
    const cp = (b0 & 7) << 18 | (b1 & 63) << 12 | (b2 & 63) << 6 | b3 & 63;
    if (isTrail(b1) && isTrail(b2) && isTrail(b3) && cp >= 65536 && validCodepoint(cp)) return cp;
  }
  return -1;
}
function utf8Length(cp) {
  return cp < 128 ? 1 : cp < 2048 ? 2 : cp < 65536 ? 3 : 4;
}
function expectedUtf8Length(b) {
  if (b < 192) return 1;
  if (b < 224) return 2;
  if (b < 240) return 3;
  if (b < 248) return 4;
  return 1;
}
function decodeBytesLikeSentencePiece(bytes, start = 0, end = bytes.length) {
  return decodeUtf8Run(bytes, start, end).text;
}
function decodeUtf8Run(bytes, start, end, stopAt) {
  let out = "";
  let pos = start;
  while (pos < end) {
    if (stopAt?.(pos)) break;
    const cp = decodeUtf8Char(bytes, pos, end);
    if (cp < 0) {
      out += REPLACEMENT_CHARACTER;
      pos += 1;
    } else {
      out += String.fromCodePoint(cp);
      pos += utf8Length(cp);
    }
  }
  return {
    text: out,
    pos
  };
}

// src/tokenizer/normalizer.ts
var SPACE_SYMBOL = "\u2581";
var SPACE_BYTES = utf8Encode(SPACE_SYMBOL);
var REPLACEMENT_BYTES = utf8Encode("\uFFFD");
var decoder = new TextDecoder("utf-8", {
  ignoreBOM: true
});
var Normalizer = class {
  options;
  #userDefined;
  constructor(options) {
    this.options = options;
    this.#userDefined = (options.userDefined ?? []).map(utf8Encode).sort((a, b) => b.length - a.length);
  }
  /** Normalizes `text` (empty in, empty out). */
  normalize(text) {
    if (text.length === 0) return "";
    const cm = this.options.charsmap;
    if (this.#userDefined.length === 0) {
      if (!cm) return this.#normalizeIdentity(text);
      if (text.isWellFormed()) {
        const s = this.#normalizeString(text, cm);
        if (s !== void 0) return s;
      }
    }
    return this.#normalizeBytes(utf8Encode(text));
  }
  /**
   * The reference: SentencePiece's algorithm on UTF-8 bytes, step for step (normalize() takes a path on the string
   * itself when it can, with the same result).
   */
  normalizeRef(text) {
    if (text.length === 0) return "";
    if (!this.options.charsmap && this.#userDefined.length === 0) return this.#normalizeIdentity(text);
    return this.#normalizeBytes(utf8Encode(text));
  }
  /**
   * #normalizeBytes on a well-formed string without user-defined symbols, with no UTF-8 round trip: characters no
   * rule can match at are copied in runs, the others go through the charsmap's string match. Undefined when a rule
   * cannot be applied on the string (see PrecompiledCharsmap.matchString).
   */
  #normalizeString(text, cm) {
    const o = this.options;
    const end = text.length;
    const box = {
      text: ""
    };
    let pos = 0;
    if (o.removeExtraWhitespaces) {
      while (pos < end) {
        const n = stringStep(text, pos, cm, box);
        if (n < 0) return void 0;
        if (box.text !== " ") break;
        pos += n;
      }
    }
    if (pos >= end) return "";
    const sp = o.escapeWhitespaces ? SPACE_SYMBOL : " ";
    const parts = !o.treatWhitespaceAsSuffix && o.addDummyPrefix ? [
      sp
    ] : [];
    let isPrevSpace = o.removeExtraWhitespaces;
    let run = pos;
    while (pos < end) {
      const e = cm.passThroughRun(text, pos);
      if (e > pos) {
        pos = e;
        isPrevSpace = false;
        continue;
      }
      if (run < pos) parts.push(text.slice(run, pos));
      const n = stringStep(text, pos, cm, box);
      if (n < 0) return void 0;
      const r = box.text;
      let k = 0;
      while (isPrevSpace && k < r.length && r.charCodeAt(k) === 32) k++;
      if (k < r.length) {
        const piece = k > 0 ? r.slice(k) : r;
        parts.push(o.escapeWhitespaces ? piece.replaceAll(" ", SPACE_SYMBOL) : piece);
        isPrevSpace = r.charCodeAt(r.length - 1) === 32;
      }
      pos += n;
      run = pos;
      if (!o.removeExtraWhitespaces) isPrevSpace = false;
    }
    if (run < end) parts.push(run === 0 ? text : text.slice(run, end));
    return this.#finish(parts.join(""), sp);
  }
  /** The identity normalizer on JS strings: only the whitespace rules apply. */
  #normalizeIdentity(text) {
    const o = this.options;
    let s = text.isWellFormed() ? text : text.toWellFormed();
    if (o.removeExtraWhitespaces) {
      let i = 0;
      while (i < s.length && s.charCodeAt(i) === 32) i++;
      s = s.slice(i).replace(/ {2,}/g, " ");
      if (s.length === 0) return "";
    }
    if (o.escapeWhitespaces) s = s.replaceAll(" ", SPACE_SYMBOL);
    const sp = o.escapeWhitespaces ? SPACE_SYMBOL : " ";
    if (o.addDummyPrefix && !o.treatWhitespaceAsSuffix) s = sp + s;
    return this.#finish(s, sp);
  }
  /**
   * The end of both string paths: trailing spaces stripped (with removeExtraWhitespaces; '▁' that were in the input
   * too, as SentencePiece does), then the suffix dummy.
   */
  #finish(s, sp) {
    const o = this.options;
    if (o.removeExtraWhitespaces) {
      let e = s.length;
      while (e > 0 && s[e - 1] === sp) e--;
      s = s.slice(0, e);
    }
    return o.treatWhitespaceAsSuffix && o.addDummyPrefix ? s + sp : s;
  }
  /** One normalization step at `pos`: returns [replacement bytes, input bytes consumed]. */
  #prefix(bytes, pos, box) {
    const end = bytes.length;
    for (const u of this.#userDefined) {
      if (u.length <= end - pos && startsWith(bytes, pos, u)) return [
        u,
        u.length
      ];
    }
    const cm = this.options.charsmap;
    if (cm) {
      const n = cm.match(bytes, pos, end, box);
      if (n > 0) return [
        box.replacement,
        n
      ];
    }
    const cp = decodeUtf8Char(bytes, pos, end);
    if (cp < 0) return [
      REPLACEMENT_BYTES,
      1
    ];
    const len = utf8Length(cp);
    return [
      bytes.subarray(pos, pos + len),
      len
    ];
  }
  #normalizeBytes(bytes) {
    const o = this.options;
    const box = {
      replacement: new Uint8Array(0)
    };
    let pos = 0;
    if (o.removeExtraWhitespaces) {
      while (pos < bytes.length) {
        const [r, n] = this.#prefix(bytes, pos, box);
        if (!(r.length === 1 && r[0] === 32)) break;
        pos += n;
      }
    }
    if (pos >= bytes.length) return "";
    const out = new ByteBuffer(bytes.length * 3 + 8);
    const addWs = () => o.escapeWhitespaces ? out.push(SPACE_BYTES) : out.pushByte(32);
    if (!o.treatWhitespaceAsSuffix && o.addDummyPrefix) addWs();
    let isPrevSpace = o.removeExtraWhitespaces;
    const end = bytes.length;
    const cm = this.options.charsmap;
    const hasUser = this.#userDefined.length > 0;
    while (pos < end) {
      let src, rs, re, n;
      let m = 0;
      if (hasUser) {
        for (const u of this.#userDefined) {
          if (u.length <= end - pos && startsWith(bytes, pos, u)) {
            m = u.length;
            break;
          }
        }
      }
      if (m > 0) {
        src = bytes, rs = pos, re = pos + m, n = m;
      } else if (cm && (m = cm.match(bytes, pos, end, box)) > 0) {
        src = box.replacement, rs = 0, re = src.length, n = m;
      } else {
        const cp = decodeUtf8Char(bytes, pos, end);
        if (cp < 0) src = REPLACEMENT_BYTES, rs = 0, re = 3, n = 1;
        else src = bytes, rs = pos, re = pos + utf8Length(cp), n = re - pos;
      }
      let k = rs;
      while (isPrevSpace && k < re && src[k] === 32) k++;
      if (k < re) {
        for (let j = k; j < re; j++) {
          if (o.escapeWhitespaces && src[j] === 32) out.push(SPACE_BYTES);
          else out.pushByte(src[j]);
        }
        isPrevSpace = src[re - 1] === 32;
      }
      pos += n;
      if (!o.removeExtraWhitespaces) isPrevSpace = false;
    }
    if (o.removeExtraWhitespaces) {
      const sp = o.escapeWhitespaces ? SPACE_BYTES : new Uint8Array([
        32
      ]);
      while (out.length >= sp.length && startsWith(out.bytes, out.length - sp.length, sp)) out.length -= sp.length;
    }
    if (o.treatWhitespaceAsSuffix && o.addDummyPrefix) addWs();
    return decoder.decode(out.bytes.subarray(0, out.length));
  }
};
function stringStep(text, pos, cm, out) {
  const n = cm.matchString(text, pos, out);
  if (n !== 0) return n;
  const w = text.codePointAt(pos) > 65535 ? 2 : 1;
  out.text = text.slice(pos, pos + w);
  return w;
}
function startsWith(bytes, pos, prefix) {
  if (pos < 0 || pos + prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[pos + i] !== prefix[i]) return false;
  return true;
}
var ByteBuffer = class {
  bytes;
  length = 0;
  constructor(cap) {
    this.bytes = new Uint8Array(cap);
  }
  #grow(extra) {
    if (this.length + extra <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }
  pushByte(b) {
    this.#grow(1);
    this.bytes[this.length++] = b;
  }
  push(b) {
    this.#grow(b.length);
    this.bytes.set(b, this.length);
    this.length += b.length;
  }
};

// src/tokenizer/precompiled_charsmap.ts
var LITTLE_ENDIAN = new Uint8Array(new Uint32Array([
  1
]).buffer)[0] === 1;
var fatalUtf8 = new TextDecoder("utf-8", {
  fatal: true,
  ignoreBOM: true
});

// src/tokenizer/unigram.ts
var UNK_PENALTY = 10;
var FLT_MAX = 34028234663852886e22;
var FLT_MIN = 11754943508222875e-54;
var CodeUnitTrie = class {
  #bits;
  #keyNode;
  #keyUnit;
  #child;
  value;
  constructor(entries, totalUnits) {
    this.#bits = Math.max(4, Math.ceil(Math.log2(2 * totalUnits + 2)));
    const cap = 1 << this.#bits;
    this.#keyNode = new Int32Array(cap).fill(-1);
    this.#keyUnit = new Int32Array(cap);
    this.#child = new Int32Array(cap);
    const values = [
      -1
    ];
    for (const [piece, id] of entries) {
      let node = 0;
      for (let i = 0; i < piece.length; i++) {
        const u = piece.charCodeAt(i);
        let next = this.child(node, u);
        if (next < 0) {
          next = values.length;
          values.push(-1);
          this.#insert(node, u, next);
        }
        node = next;
      }
      values[node] = id;
    }
    this.value = Int32Array.from(values);
  }
  #slot(node, unit) {
    return (Math.imul(node, 2654435761) ^ Math.imul(unit + 1, 2246822519)) >>> 32 - this.#bits;
  }
  #insert(node, unit, child) {
    const mask = (1 << this.#bits) - 1;
    let h = this.#slot(node, unit);
    while (this.#keyNode[h] !== -1) h = h + 1 & mask;
    this.#keyNode[h] = node;
    this.#keyUnit[h] = unit;
    this.#child[h] = child;
  }
  /** The child of `node` along code unit `unit`, or -1. */
  child(node, unit) {
    const mask = (1 << this.#bits) - 1;
    let h = this.#slot(node, unit);
    for (; ; ) {
      const k = this.#keyNode[h];
      if (k === -1) return -1;
      if (k === node && this.#keyUnit[h] === unit) return this.#child[h];
      h = h + 1 & mask;
    }
  }
};
var UnigramModel = class {
  vocab;
  minScore;
  maxScore;
  #trie;
  /** UTF-8 byte length per user-defined id (their score depends on it). */
  #userBytes = /* @__PURE__ */ new Map();
  constructor(vocab) {
    this.vocab = vocab;
    let min = FLT_MAX, max = FLT_MIN;
    for (let i = 0; i < vocab.size; i++) {
      if (vocab.types[i] === PIECE_NORMAL) {
        min = Math.min(min, vocab.scores[i]);
        max = Math.max(max, vocab.scores[i]);
      }
    }
    this.minScore = min;
    this.maxScore = max;
    let units = 0;
    for (const [p, id] of vocab.normalIds) {
      units += p.length;
      if (vocab.isUserDefined(id)) this.#userBytes.set(id, utf8Encode(p).length);
    }
    this.#trie = new CodeUnitTrie(vocab.normalIds, units);
  }
  /** Segments normalized `s[from, to)`; appends (id, start, end) triples to `out`. */
  encode(s, from, to, out) {
    if (to <= from) return;
    const vocab = this.vocab;
    const size = to - from;
    const unkScore = Math.fround(this.minScore - UNK_PENALTY);
    const bestScore = new Float32Array(size + 1);
    const bestStart = new Int32Array(size + 1).fill(-1);
    const bestId = new Int32Array(size + 1).fill(-1);
    for (let start = 0; start < size; ) {
      const till = bestScore[start];
      const c = s.charCodeAt(from + start);
      const mblen = c >= 55296 && c < 56320 && start + 1 < size ? 2 : 1;
      let hasSingle = false;
      const trie = this.#trie;
      let node = 0;
      for (let len = 1; start + len <= size; len++) {
        node = trie.child(node, s.charCodeAt(from + start + len - 1));
        if (node < 0) break;
        const id = trie.value[node];
        if (id < 0 || vocab.isUnused(id)) continue;
        const end = start + len;
        const score = vocab.isUserDefined(id) ? Math.fround(this.#userBytes.get(id) * this.maxScore) - 0.1 : vocab.scores[id];
        const cand = score + till;
        if (bestStart[end] === -1 || cand > bestScore[end]) {
          bestScore[end] = cand;
          bestStart[end] = start;
          bestId[end] = id;
        }
        if (len === mblen) hasSingle = true;
      }
      if (!hasSingle) {
        const end = start + mblen;
        const cand = Math.fround(unkScore + till);
        if (bestStart[end] === -1 || cand > bestScore[end]) {
          bestScore[end] = cand;
          bestStart[end] = start;
          bestId[end] = vocab.unkId;
        }
      }
      start += mblen;
    }
    const rev = [];
    for (let end = size; end > 0; ) {
      const start = bestStart[end];
      rev.push(bestId[end], from + start, from + end);
      end = start;
    }
    for (let i = rev.length - 3; i >= 0; i -= 3) out.push(rev[i], rev[i + 1], rev[i + 2]);
  }
};

// src/tokenizer/vocab.ts
function byteToPiece(b) {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}
function pieceToByte(piece) {
  if (piece.length !== 6 || !piece.startsWith("<0x") || piece[5] !== ">") return -1;
  const hex = piece.slice(3, 5);
  if (!/^[0-9A-F]{2}$/.test(hex)) return -1;
  return parseInt(hex, 16);
}
var Vocab = class {
  pieces;
  /** float32 scores (kept as float32 so sums and ties match SentencePiece). */
  scores;
  /** Piece types (1 NORMAL … 6 BYTE; 0 from GGUF is read as NORMAL). */
  types;
  /** NORMAL, USER_DEFINED and UNUSED pieces: the ones segmentation can produce. */
  normalIds = /* @__PURE__ */ new Map();
  /** UNKNOWN, CONTROL and BYTE pieces. */
  reservedIds = /* @__PURE__ */ new Map();
  unkId;
  userDefined = [];
  hasUnused;
  /** id of `<0xXX>` for each byte (PieceToId semantics: unk when missing). */
  byteIds = new Int32Array(256);
  /**
   * @param byteFallback whether BYTE pieces are allowed and all 256 required (SentencePiece's rule)
   * @param format name for error messages ("sentencepiece" or "gguf")
   */
  constructor(pieces, scores, types, byteFallback, format) {
    const fail = (msg) => {
      throw new FormatError(`Cannot build vocabulary: ${msg}`, {
        format
      });
    };
    if (pieces.length === 0) fail("no pieces");
    if (scores.length !== pieces.length || types.length !== pieces.length) {
      fail(`${pieces.length} pieces but ${scores.length} scores and ${types.length} types`);
    }
    this.pieces = pieces;
    this.scores = scores;
    this.types = types;
    let unk = -1;
    let unused = false;
    const bytesFound = new Uint8Array(256);
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      let t = types[i];
      if (t === 0) t = types[i] = PIECE_NORMAL;
      if (t < PIECE_NORMAL || t > PIECE_BYTE) fail(`piece ${i} "${p}" has unknown type ${t}`);
      if (p.length === 0) fail(`piece ${i} is empty`);
      const normal = t === PIECE_NORMAL || t === PIECE_USER_DEFINED || t === PIECE_UNUSED;
      const map = normal ? this.normalIds : this.reservedIds;
      if (map.has(p)) fail(`piece ${i} "${p}" is already defined as id ${map.get(p)}`);
      map.set(p, i);
      if (t === PIECE_USER_DEFINED) this.userDefined.push(p);
      if (t === PIECE_UNUSED) unused = true;
      if (t === PIECE_UNKNOWN) {
        if (unk >= 0) fail(`a second unknown piece at id ${i} (first at ${unk})`);
        unk = i;
      }
      if (t === PIECE_BYTE) {
        if (!byteFallback) fail(`byte piece ${i} "${p}" found although byte_fallback is false`);
        const b = pieceToByte(p);
        if (b < 0) fail(`byte piece ${i} "${p}" is not of the form <0xXX>`);
        bytesFound[b] = 1;
      }
    }
    if (unk < 0) fail("no unknown piece (type UNKNOWN)");
    if (byteFallback && bytesFound.includes(0)) fail("byte_fallback is true but not all 256 byte pieces exist");
    this.unkId = unk;
    this.hasUnused = unused;
    for (let b = 0; b < 256; b++) this.byteIds[b] = this.pieceToId(byteToPiece(b));
  }
  get size() {
    return this.pieces.length;
  }
  /** SentencePiece's PieceToId: reserved pieces first, then normal ones, else the unknown id. */
  pieceToId(piece) {
    return this.reservedIds.get(piece) ?? this.normalIds.get(piece) ?? this.unkId;
  }
  /** The id of `piece`, or undefined when it is not in the vocabulary. */
  idOf(piece) {
    return this.reservedIds.get(piece) ?? this.normalIds.get(piece);
  }
  isControl(id) {
    return this.types[id] === PIECE_CONTROL;
  }
  isUnknown(id) {
    return this.types[id] === PIECE_UNKNOWN;
  }
  isByte(id) {
    return this.types[id] === PIECE_BYTE;
  }
  isUnused(id) {
    return this.types[id] === PIECE_UNUSED;
  }
  isUserDefined(id) {
    return this.types[id] === PIECE_USER_DEFINED;
  }
};

// src/tokenizer/tokenizer.ts
var DEFAULT_UNK_SURFACE = " \u2047 ";
var MAX_CACHED_SEGMENT = 64;
var MAX_CACHE = 1 << 16;
var Tokenizer = class {
  vocab;
  model;
  normalizer;
  byteFallback;
  bosId;
  eosId;
  unkId;
  /** -1 when the model has no padding piece. */
  padId;
  addBos;
  addEos;
  unkSurface;
  /** Decoding drops the leading '▁' of the first piece (add_dummy_prefix or remove_extra_whitespaces). */
  stripsLeadingSpace;
  #bpe;
  #unigram;
  /** Set when segments split at "x▁" boundaries can be encoded independently (see #canSplit). */
  #cache;
  constructor(parts) {
    this.vocab = parts.vocab;
    this.model = parts.model;
    this.normalizer = parts.normalizer;
    this.byteFallback = parts.byteFallback;
    this.bosId = parts.bosId;
    this.eosId = parts.eosId;
    this.unkId = parts.vocab.unkId;
    this.padId = parts.padId;
    this.addBos = parts.addBos;
    this.addEos = parts.addEos;
    this.unkSurface = parts.unkSurface;
    const o = parts.normalizer.options;
    this.stripsLeadingSpace = o.addDummyPrefix || o.removeExtraWhitespaces;
    if (parts.model === "bpe") this.#bpe = new BpeModel(parts.vocab);
    else this.#unigram = new UnigramModel(parts.vocab);
    if (this.#canSplit()) this.#cache = /* @__PURE__ */ new Map();
  }
  /**
   * BPE segments of the normalized text separated before each '▁' that follows another character are
   * independent — merges never cross them — when no segmentable piece contains "x▁" (x ≠ '▁'), byte fallback is
   * on (so unknown pieces are not merged across segments) and no piece is UNUSED (whose resegmentation table is
   * per call). Then each segment can be encoded alone and cached; the result is identical.
   */
  #canSplit() {
    if (this.model !== "bpe" || !this.byteFallback || this.vocab.hasUnused) return false;
    const inner = new RegExp(`[^${SPACE_SYMBOL}]${SPACE_SYMBOL}`);
    for (const p of this.vocab.normalIds.keys()) if (inner.test(p)) return false;
    return true;
  }
  get vocabSize() {
    return this.vocab.size;
  }
  /** The piece text of `id` (RangeError when out of range). */
  pieceOf(id) {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.size) {
      throw new RangeError(`Cannot look up token id ${id}: vocabulary has ${this.vocab.size} pieces`);
    }
    return this.vocab.pieces[id];
  }
  /** The id of a piece, or undefined when the vocabulary lacks it. */
  idOf(piece) {
    return this.vocab.idOf(piece);
  }
  /** Text → normalized text (with '▁'), as SentencePiece's normalizer. */
  normalize(text) {
    return this.normalizer.normalize(text);
  }
  /**
   * Text → ids. Without BOS/EOS this equals SentencePiece's `encode(text)`; with BOS (the default for LLaMA) it
   * equals llama.cpp's and Hugging Face LlamaTokenizer's output.
   */
  encode(text, options = {}) {
    const ids = [];
    if ((options.bos ?? this.addBos) && this.bosId >= 0) ids.push(this.bosId);
    const s = this.normalizer.normalize(text);
    if (this.#cache) this.#encodeSegments(s, ids);
    else {
      const triples = [];
      this.#segment(s, 0, s.length, triples);
      this.#emit(s, triples, ids);
    }
    if ((options.eos ?? this.addEos) && this.eosId >= 0) ids.push(this.eosId);
    return ids;
  }
  /** Ids → their pieces (for display). */
  encodeAsPieces(text, options = {}) {
    return this.encode(text, options).map((id) => this.vocab.pieces[id]);
  }
  #segment(s, from, to, triples) {
    if (this.#bpe) this.#bpe.encode(s, from, to, triples);
    else this.#unigram.encode(s, from, to, triples);
  }
  #encodeSegments(s, ids) {
    const cache = this.#cache;
    const triples = [];
    let start = 0;
    while (start < s.length) {
      let end = start;
      for (; ; ) {
        end = s.indexOf(SPACE_SYMBOL, end + 1);
        if (end < 0) {
          end = s.length;
          break;
        }
        if (s.charCodeAt(end - 1) !== 9601) break;
      }
      if (end - start <= MAX_CACHED_SEGMENT) {
        const seg = s.slice(start, end);
        let hit = cache.get(seg);
        if (!hit) {
          hit = [];
          triples.length = 0;
          this.#segment(s, start, end, triples);
          this.#emit(s, triples, hit);
          if (cache.size >= MAX_CACHE) cache.clear();
          cache.set(seg, hit);
        }
        for (let i = 0; i < hit.length; i++) ids.push(hit[i]);
      } else {
        triples.length = 0;
        this.#segment(s, start, end, triples);
        this.#emit(s, triples, ids);
      }
      start = end;
    }
  }
  /** Model output → ids: byte fallback for unknown pieces, or one unknown id per run of unknown pieces. */
  #emit(s, triples, ids) {
    const vocab = this.vocab;
    let prevUnk = false;
    for (let i = 0; i < triples.length; i += 3) {
      const id = triples[i];
      const unk = vocab.isUnknown(id);
      if (unk && this.byteFallback) {
        for (const b of utf8Encode(s.slice(triples[i + 1], triples[i + 2]))) ids.push(vocab.byteIds[b]);
      } else if (!(unk && prevUnk)) {
        ids.push(id);
      }
      prevUnk = unk;
    }
  }
  /**
   * Ids → text exactly as SentencePiece's DecodeIds: control pieces vanish, `<unk>` becomes the unknown surface,
   * runs of byte pieces are decoded as UTF-8 (each invalid byte → U+FFFD), '▁' → ' ', and the first piece's
   * leading '▁' (the dummy prefix) is dropped.
   */
  decode(ids) {
    let text = "";
    let isBosWs = true;
    let bosWsSeen = false;
    const bytes = [];
    for (let i = 0; i < ids.length; i++) {
      const id0 = ids[i];
      const piece = this.pieceOf(id0);
      const id = this.vocab.pieceToId(piece);
      if (this.vocab.isByte(id)) {
        bytes.push(pieceToByte(piece));
        continue;
      }
      if (bytes.length) {
        text += decodeBytesLikeSentencePiece(Uint8Array.from(bytes));
        bytes.length = 0;
      }
      if (bosWsSeen || text !== "") isBosWs = false;
      const [surface, seen] = this.decodePiece(piece, id, isBosWs);
      bosWsSeen = seen;
      text += surface;
    }
    if (bytes.length) text += decodeBytesLikeSentencePiece(Uint8Array.from(bytes));
    return text;
  }
  /**
   * The surface of one non-byte piece, and whether it consumed the dummy-prefix space. Shared by decode and
   * StreamingDecoder.
   */
  decodePiece(piece, id, isBosWs) {
    const vocab = this.vocab;
    if (vocab.isControl(id)) return [
      "",
      false
    ];
    if (vocab.isUnknown(id)) return [
      piece === vocab.pieces[id] ? this.unkSurface : piece,
      false
    ];
    let seen = false;
    if (isBosWs && this.stripsLeadingSpace && piece.startsWith(SPACE_SYMBOL)) {
      piece = piece.slice(1);
      seen = !this.normalizer.options.removeExtraWhitespaces;
    }
    return [
      piece.replaceAll(SPACE_SYMBOL, " "),
      seen
    ];
  }
};
function tokenizerFromGgufMetadata(meta) {
  const get = (k) => meta.get(`tokenizer.ggml.${k}`);
  const fail = (msg) => {
    throw new FormatError(`Cannot build a tokenizer from GGUF metadata: ${msg}`, {
      format: "gguf"
    });
  };
  const kind = get("model");
  if (kind === void 0) fail(`"tokenizer.ggml.model" is missing`);
  if (kind !== "llama") {
    throw new UnsupportedError(`Cannot build a tokenizer for tokenizer.ggml.model "${String(kind)}": only "llama" (SentencePiece) is supported`);
  }
  const tokens = get("tokens");
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== "string")) {
    fail(`"tokenizer.ggml.tokens" must be an array of strings`);
  }
  const pieces = tokens;
  const n = pieces.length;
  const numbers = (k, fallback) => {
    const v = get(k);
    if (v === void 0) return new Array(n).fill(fallback);
    if (!(Array.isArray(v) || ArrayBuffer.isView(v)) || v.length !== n) {
      fail(`"tokenizer.ggml.${k}" must be an array of ${n} numbers`);
    }
    return v;
  };
  const scores = Float32Array.from(numbers("scores", 0));
  const rawTypes = numbers("token_type", PIECE_NORMAL);
  const types = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const t = Number(rawTypes[i]);
    if (!Number.isInteger(t) || t < 0 || t > 6) fail(`token ${i} has unknown token_type ${rawTypes[i]}`);
    types[i] = t;
  }
  const id = (k) => {
    const v = get(k);
    if (v === void 0) return void 0;
    const x = Number(v);
    if (!Number.isInteger(x)) fail(`"tokenizer.ggml.${k}" is not an integer`);
    return x >= 0 && x < n ? x : -1;
  };
  const unk = id("unknown_token_id") ?? (types.includes(PIECE_UNKNOWN) ? void 0 : 0);
  if (unk !== void 0 && unk >= 0) {
    for (let i = 0; i < n; i++) if (types[i] === PIECE_UNKNOWN) types[i] = PIECE_CONTROL;
    types[unk] = PIECE_UNKNOWN;
  }
  const byteFallback = types.includes(PIECE_BYTE);
  const vocab = new Vocab(pieces, scores, types, byteFallback, "gguf");
  const bool = (k, fallback) => {
    const v = get(k);
    return v === void 0 ? fallback : Boolean(v);
  };
  const normalizer = new Normalizer({
    addDummyPrefix: bool("add_space_prefix", true),
    removeExtraWhitespaces: bool("remove_extra_whitespaces", false),
    escapeWhitespaces: true,
    treatWhitespaceAsSuffix: false,
    userDefined: vocab.userDefined
  });
  const bosId = id("bos_token_id") ?? vocab.idOf("<s>") ?? -1;
  return new Tokenizer({
    vocab,
    model: "bpe",
    normalizer,
    byteFallback,
    bosId,
    eosId: id("eos_token_id") ?? vocab.idOf("</s>") ?? -1,
    padId: id("padding_token_id") ?? -1,
    addBos: bool("add_bos_token", true) && bosId >= 0,
    addEos: bool("add_eos_token", false),
    unkSurface: DEFAULT_UNK_SURFACE
  });
}

// src/tokenizer/streaming_decoder.ts
var StreamingDecoder = class {
  tokenizer;
  #isBosWs;
  #bosWsSeen = false;
  #textEmpty;
  #pending = [];
  constructor(tokenizer, options = {}) {
    this.tokenizer = tokenizer;
    this.#isBosWs = !options.continuation;
    this.#textEmpty = !options.continuation;
  }
  /** Adds one id; returns the text that is final now (possibly ""). */
  push(id) {
    const tok = this.tokenizer;
    const piece = tok.pieceOf(id);
    const rid = tok.vocab.pieceToId(piece);
    if (tok.vocab.isByte(rid)) {
      this.#pending.push(pieceToByte(piece));
      return this.#note(this.#drain(false));
    }
    let out = this.#note(this.#drain(true));
    if (this.#bosWsSeen || !this.#textEmpty) this.#isBosWs = false;
    const [surface, seen] = tok.decodePiece(piece, rid, this.#isBosWs);
    this.#bosWsSeen = seen;
    out += this.#note(surface);
    return out;
  }
  /** Ends the stream: returns held-back bytes decoded (each byte of an incomplete character → U+FFFD). */
  flush() {
    return this.#note(this.#drain(true));
  }
  /** Resets to the start state. */
  reset(options = {}) {
    this.#isBosWs = !options.continuation;
    this.#textEmpty = !options.continuation;
    this.#bosWsSeen = false;
    this.#pending = [];
  }
  #note(s) {
    if (s !== "") this.#textEmpty = false;
    return s;
  }
  /**
   * Decodes pending bytes from the front. Unless `final`, stops at a lead byte whose character is not complete
   * yet but could still be valid; the result for each position only depends on the bytes of its own character,
   * so waiting gives the same text as decoding the whole run at once.
   */
  #drain(final) {
    const p = this.#pending;
    if (p.length === 0) return "";
    const bytes = Uint8Array.from(p);
    const end = bytes.length;
    const waitAt = (pos2) => end - pos2 < expectedUtf8Length(bytes[pos2]) && couldComplete(bytes, pos2, end);
    const { text, pos } = decodeUtf8Run(bytes, 0, end, final ? void 0 : waitAt);
    this.#pending = p.slice(pos);
    return text;
  }
};
function couldComplete(bytes, pos, end) {
  for (let i = pos + 1; i < end; i++) if ((bytes[i] & 192) !== 128) return false;
  return true;
}

// src/tokenizer/gguf_vocab.ts
var GGUF_VOCAB_VALUE_TYPES = {
  [KEY_TOKENIZER_MODEL]: "STRING",
  [KEY_TOKENIZER_LIST]: "ARRAY<STRING>",
  [KEY_TOKENIZER_SCORES]: "ARRAY<FLOAT32>",
  [KEY_TOKENIZER_TOKEN_TYPE]: "ARRAY<INT32>",
  [KEY_TOKENIZER_BOS_ID]: "UINT32",
  [KEY_TOKENIZER_EOS_ID]: "UINT32",
  [KEY_TOKENIZER_UNK_ID]: "UINT32",
  [KEY_TOKENIZER_PAD_ID]: "UINT32",
  [KEY_TOKENIZER_ADD_BOS]: "BOOL",
  [KEY_TOKENIZER_ADD_EOS]: "BOOL"
};
function ggufChatTemplate(meta) {
  const t = meta.get(KEY_TOKENIZER_CHAT_TEMPLATE);
  return typeof t === "string" && t.length <= MAX_CHAT_TEMPLATE_CHARS ? t : void 0;
}

// src/formats/byte_writer.ts
var UTF82 = new TextEncoder();

// src/formats/gguf_writer.ts
var UTF83 = new TextEncoder();

// src/model/config.ts
function validateConfig(c) {
  const ints = [
    "dim",
    "hiddenDim",
    "nLayers",
    "nHeads",
    "nKvHeads",
    "headSize",
    "vocabSize"
  ];
  for (const k of ints) {
    const v = c[k];
    if (!Number.isSafeInteger(v) || v <= 0 || v > 1 << 24) {
      throw new RangeError(`Cannot use model config: ${k} is ${v}, expected a positive integer \u2264 2^24`);
    }
  }
  if (c.dim % c.nHeads !== 0) {
    throw new RangeError(`Cannot use model config: dim ${c.dim} is not divisible by nHeads ${c.nHeads}`);
  }
  if (c.headSize !== c.dim / c.nHeads) {
    throw new RangeError(`Cannot use model config: headSize ${c.headSize} != dim/nHeads`);
  }
  if (c.headSize % 2 !== 0) {
    throw new RangeError(`Cannot use model config: headSize ${c.headSize} is odd (RoPE rotates pairs)`);
  }
  if (c.nHeads % c.nKvHeads !== 0) {
    throw new RangeError(`Cannot use model config: nHeads ${c.nHeads} is not a multiple of nKvHeads ${c.nKvHeads}`);
  }
  if (!(c.normEps > 0 && c.normEps < 1)) {
    throw new RangeError(`Cannot use model config: normEps ${c.normEps} out of range`);
  }
  if (!(c.ropeTheta > 0)) throw new RangeError(`Cannot use model config: ropeTheta ${c.ropeTheta} out of range`);
  if (!Number.isSafeInteger(c.contextLength) || c.contextLength <= 0) {
    throw new RangeError(`Cannot use model config: contextLength ${c.contextLength} out of range`);
  }
  return c;
}
function num(meta, key, fallback) {
  const v = meta.get(key);
  if (v === void 0) {
    if (fallback !== void 0) return fallback;
    throw new RangeError(`Cannot read model config: GGUF key "${key}" is missing`);
  }
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    throw new RangeError(`Cannot read model config: GGUF key "${key}" is not a number`);
  }
  return n;
}
function configFromGgufMetadata(meta, vocabSizeHint) {
  const arch = meta.get(KEY_GENERAL_ARCHITECTURE);
  if (arch !== void 0 && arch !== LLM_ARCH_LLAMA) {
    throw new RangeError(`Cannot read model config: architecture "${arch}" is not "llama"`);
  }
  const dim = num(meta, KEY_LLAMA_EMBEDDING_LENGTH);
  const nHeads = num(meta, KEY_LLAMA_HEAD_COUNT);
  const tokens = meta.get(KEY_TOKENIZER_LIST);
  const vocabSize = meta.has(KEY_LLAMA_VOCAB_SIZE) ? num(meta, KEY_LLAMA_VOCAB_SIZE) : vocabSizeHint ?? (Array.isArray(tokens) ? tokens.length : void 0);
  if (vocabSize === void 0) throw new RangeError("Cannot read model config: vocabulary size is unknown");
  return validateConfig({
    dim,
    hiddenDim: num(meta, KEY_LLAMA_FEED_FORWARD_LENGTH),
    nLayers: num(meta, KEY_LLAMA_BLOCK_COUNT),
    nHeads,
    nKvHeads: num(meta, KEY_LLAMA_HEAD_COUNT_KV, nHeads),
    headSize: dim / nHeads,
    vocabSize,
    contextLength: num(meta, KEY_LLAMA_CONTEXT_LENGTH, 2048),
    normEps: num(meta, KEY_LLAMA_LAYERNORM_RMS_EPS, 1e-5),
    ropeTheta: num(meta, KEY_LLAMA_ROPE_FREQ_BASE, 1e4)
  });
}

// src/model/tensor_names.ts
var LAYER_KINDS = [
  "attn_norm",
  "attn_q",
  "attn_k",
  "attn_v",
  "attn_output",
  "ffn_norm",
  "ffn_gate",
  "ffn_down",
  "ffn_up"
];
var GLOBAL_KINDS = [
  "tok_embd",
  "output_norm",
  "output"
];
var NAMES = {
  tok_embd: {
    gguf: "token_embd.weight",
    hf: "model.embed_tokens.weight",
    meta: "tok_embeddings.weight"
  },
  attn_norm: {
    gguf: "blk.{L}.attn_norm.weight",
    hf: "model.layers.{L}.input_layernorm.weight",
    meta: "layers.{L}.attention_norm.weight"
  },
  attn_q: {
    gguf: "blk.{L}.attn_q.weight",
    hf: "model.layers.{L}.self_attn.q_proj.weight",
    meta: "layers.{L}.attention.wq.weight"
  },
  attn_k: {
    gguf: "blk.{L}.attn_k.weight",
    hf: "model.layers.{L}.self_attn.k_proj.weight",
    meta: "layers.{L}.attention.wk.weight"
  },
  attn_v: {
    gguf: "blk.{L}.attn_v.weight",
    hf: "model.layers.{L}.self_attn.v_proj.weight",
    meta: "layers.{L}.attention.wv.weight"
  },
  attn_output: {
    gguf: "blk.{L}.attn_output.weight",
    hf: "model.layers.{L}.self_attn.o_proj.weight",
    meta: "layers.{L}.attention.wo.weight"
  },
  ffn_norm: {
    gguf: "blk.{L}.ffn_norm.weight",
    hf: "model.layers.{L}.post_attention_layernorm.weight",
    meta: "layers.{L}.ffn_norm.weight"
  },
  ffn_gate: {
    gguf: "blk.{L}.ffn_gate.weight",
    hf: "model.layers.{L}.mlp.gate_proj.weight",
    meta: "layers.{L}.feed_forward.w1.weight"
  },
  ffn_down: {
    gguf: "blk.{L}.ffn_down.weight",
    hf: "model.layers.{L}.mlp.down_proj.weight",
    meta: "layers.{L}.feed_forward.w2.weight"
  },
  ffn_up: {
    gguf: "blk.{L}.ffn_up.weight",
    hf: "model.layers.{L}.mlp.up_proj.weight",
    meta: "layers.{L}.feed_forward.w3.weight"
  },
  output_norm: {
    gguf: "output_norm.weight",
    hf: "model.norm.weight",
    meta: "norm.weight"
  },
  output: {
    gguf: "output.weight",
    hf: "lm_head.weight",
    meta: "output.weight"
  }
};
function tensorName(scheme, kind, layer) {
  const pattern = NAMES[kind][scheme];
  if (pattern.includes("{L}")) {
    if (layer === void 0 || !Number.isInteger(layer) || layer < 0) {
      throw new RangeError(`Cannot name "${kind}": a layer index is required, got ${layer}`);
    }
    return pattern.replace("{L}", String(layer));
  }
  return pattern;
}
var PARSERS = {
  gguf: [],
  hf: [],
  meta: []
};
for (const kind of Object.keys(NAMES)) {
  for (const scheme of [
    "gguf",
    "hf",
    "meta"
  ]) {
    const src = "^" + NAMES[kind][scheme].replace(/\./g, "\\.").replace("{L}", "(\\d+)") + "$";
    PARSERS[scheme].push({
      re: new RegExp(src),
      kind
    });
  }
}
function expectedShape(c, kind, vocabSize = c.vocabSize) {
  const kvDim = c.nKvHeads * c.headSize;
  switch (kind) {
    case "tok_embd":
    case "output":
      return [
        vocabSize,
        c.dim
      ];
    case "attn_norm":
    case "ffn_norm":
    case "output_norm":
      return [
        c.dim
      ];
    case "attn_q":
    case "attn_output":
      return [
        c.dim,
        c.dim
      ];
    case "attn_k":
    case "attn_v":
      return [
        kvDim,
        c.dim
      ];
    case "ffn_gate":
    case "ffn_up":
      return [
        c.hiddenDim,
        c.dim
      ];
    case "ffn_down":
      return [
        c.dim,
        c.hiddenDim
      ];
  }
}

// src/model/weights.ts
var TensorTable = class {
  file;
  config;
  #byName;
  constructor(file, config) {
    this.file = file;
    this.config = config;
    this.#byName = /* @__PURE__ */ new Map();
    for (const t of file.tensors) this.#byName.set(t.name, t);
  }
  /** True when the model has its own `output.weight` (false: tied to the embedding). */
  get hasOutput() {
    return this.#byName.has(tensorName("gguf", "output"));
  }
  /** The tensor of `kind` (at `layer`), shape-checked. Throws FormatError when missing or misshapen. */
  info(kind, layer) {
    const name = tensorName("gguf", kind, layer);
    let t = this.#byName.get(name);
    if (!t && kind === "output") t = this.#byName.get(tensorName("gguf", "tok_embd"));
    const path = this.file.source.name;
    if (!t) throw new FormatError(`Cannot load model: tensor "${name}" is missing`, {
      format: "gguf",
      path
    });
    const want = expectedShape(this.config, kind);
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new FormatError(`Cannot load model: tensor "${t.name}" has shape [${t.shape}], expected [${want}] from the config`, {
        format: "gguf",
        path
      });
    }
    return t;
  }
  /** Reads a whole tensor as f32. */
  f32(kind, layer) {
    const t = this.info(kind, layer);
    const n = t.shape.reduce((a, b) => a * b, 1);
    return dequantizeToF32(t.dtype, this.file.source.read(t.byteOffset, t.nBytes), n);
  }
  /** Reads rows [row0, row0+nRows) of a matrix tensor as f32 (rows are whole blocks: every row is). */
  rowsF32(kind, layer, row0, nRows) {
    const t = this.info(kind, layer);
    const cols = t.shape[t.shape.length - 1];
    const rowBytes = nBytesOf(t.dtype, cols);
    const bytes = this.file.source.read(t.byteOffset + row0 * rowBytes, nRows * rowBytes);
    return dequantizeToF32(t.dtype, bytes, nRows * cols);
  }
};
function dequantizeToF32(dtype, bytes, n) {
  const need = nBytesOf(dtype, n);
  if (bytes.length < need) throw new RangeError(`Cannot dequantize ${n} ${dtype} values: got ${bytes.length} bytes`);
  if (!DEQUANTIZABLE_DTYPES.includes(dtype)) {
    throw new UnsupportedError(`Cannot load tensor type ${dtype}: yangtuo has no dequantizer for it`);
  }
  return dequantizeRef(dtype, bytes.subarray(0, need), n);
}

// src/model/shard.ts
function split(n, parts, i, align = 1) {
  const units = Math.ceil(n / align);
  const a = Math.floor(units * i / parts) * align;
  const b = Math.min(n, Math.floor(units * (i + 1) / parts) * align);
  return [
    Math.min(a, n),
    i === parts - 1 ? n : b
  ];
}
function planShards(config, options) {
  const { nShards, contextSize, kvType, maxBatch, columnBlock = 32, nSlots = 1, weightsF32 = false } = options;
  if (!Number.isInteger(nSlots) || nSlots < 1) throw new RangeError(`Cannot plan shards: slot count ${nSlots}`);
  if (!Number.isInteger(nShards) || nShards < 1) throw new RangeError(`Cannot plan shards: count ${nShards}`);
  const kvMul = config.nHeads / config.nKvHeads;
  const hidAlign = Math.max(32, columnBlock);
  let colSplit = nShards > 1;
  for (let s = 0; s < nShards; s++) {
    const [h0, h1] = split(config.nKvHeads, nShards, s);
    const [f0, f1] = split(config.hiddenDim, nShards, s, hidAlign);
    for (const b of [
      h0 * kvMul * config.headSize,
      h1 * kvMul * config.headSize,
      f0,
      f1
    ]) {
      if (b % columnBlock !== 0) colSplit = false;
    }
  }
  return Array.from({
    length: nShards
  }, (_, s) => {
    const [kvHead0, kvHead1] = split(config.nKvHeads, nShards, s);
    const [dimRow0, dimRow1] = split(config.dim, nShards, s, 16);
    const [hidRow0, hidRow1] = split(config.hiddenDim, nShards, s, hidAlign);
    const [vocabRow0, vocabRow1] = split(config.vocabSize, nShards, s, 16);
    return {
      shard: s,
      nShards,
      config,
      contextSize,
      kvType,
      maxBatch,
      weightsF32,
      nSlots,
      kvHead0,
      kvHead1,
      dimRow0,
      dimRow1,
      hidRow0,
      hidRow1,
      vocabRow0,
      vocabRow1,
      colSplit
    };
  });
}
function ownRows(p, kind) {
  const hs = p.config.headSize;
  const kvMul = p.config.nHeads / p.config.nKvHeads;
  switch (kind) {
    case "attn_q":
      return [
        p.kvHead0 * kvMul * hs,
        p.kvHead1 * kvMul * hs
      ];
    case "attn_k":
    case "attn_v":
      return [
        p.kvHead0 * hs,
        p.kvHead1 * hs
      ];
    case "attn_output":
    case "ffn_down":
      return p.colSplit ? [
        0,
        p.config.dim
      ] : [
        p.dimRow0,
        p.dimRow1
      ];
    case "ffn_gate":
    case "ffn_up":
      return [
        p.hidRow0,
        p.hidRow1
      ];
    case "output":
      return [
        p.vocabRow0,
        p.vocabRow1
      ];
    default:
      return [
        0,
        expectedShape(p.config, kind)[0]
      ];
  }
}
function ownCols(p, kind) {
  const shape = expectedShape(p.config, kind);
  if (p.colSplit && kind === "attn_output") return ownRows(p, "attn_q");
  if (p.colSplit && kind === "ffn_down") return [
    p.hidRow0,
    p.hidRow1
  ];
  return [
    0,
    shape[shape.length - 1]
  ];
}
function exchangeLayout(c, maxBatch, nShards) {
  const f = 4;
  const xIn = 0;
  const att = xIn + maxBatch * c.dim * f;
  const proj = att + maxBatch * c.dim * f;
  const hid = proj + maxBatch * c.dim * f;
  const logits = hid + maxBatch * c.hiddenDim * f;
  const attnPartials = logits + maxBatch * c.vocabSize * f;
  const ffnPartials = attnPartials + nShards * maxBatch * c.dim * f;
  const nBytes = ffnPartials + nShards * maxBatch * c.dim * f;
  return {
    xIn,
    att,
    proj,
    hid,
    logits,
    attnPartials,
    ffnPartials,
    nBytes
  };
}
var CTRL = {
  /** Barrier: threads arrived in the current round. */
  ARRIVED: 0,
  /** Barrier: round counter (waiters Atomics.wait on it). */
  ROUND: 1,
  /** Command counter: bumped by shard 0 to start a forward; workers Atomics.wait on it. */
  COMMAND: 2,
  /** Command: 1 = forward, 2 = exit. */
  OP: 3,
  N_TOKENS: 4,
  START_POS: 5,
  /** How many of the batch's last rows want logits (0, 1 … N_TOKENS). */
  WANT_LOGITS: 6,
  /** Set by a shard that failed; the others stop at the next barrier. */
  FAILED: 7,
  /** Workers that finished loading. */
  READY: 8,
  /** KV cache region of a single-sequence forward (0 … nSlots-1). */
  SLOT: 9,
  /** 1: row b is its own sequence, in region ctrl[ROWS + 2b] at position ctrl[ROWS + 2b + 1] (one token each). */
  MULTI: 10,
  /** 1: instead of logits, every row's final-normed hidden state (B, dim) lands in exchange.proj (shard 0). */
  WANT_HIDDEN: 11,
  SIZE: 16,
  /** Start of the (slot, position) pairs of a MULTI forward: 2 * maxBatch ints after the fixed slots. */
  ROWS: 16
};
function setRow(ctrl, b, slot, pos) {
  ctrl[CTRL.ROWS + 2 * b] = slot;
  ctrl[CTRL.ROWS + 2 * b + 1] = pos;
}
function runForward(shards, ctrl, nThreads, command) {
  postForward(ctrl, command);
  runShards(shards, ctrl, nThreads);
}
function postForward(ctrl, c) {
  Atomics.store(ctrl, CTRL.N_TOKENS, c.nTokens);
  Atomics.store(ctrl, CTRL.START_POS, c.startPos);
  Atomics.store(ctrl, CTRL.WANT_LOGITS, c.wantLogits);
  Atomics.store(ctrl, CTRL.SLOT, c.slot);
  Atomics.store(ctrl, CTRL.MULTI, c.multi ? 1 : 0);
  Atomics.store(ctrl, CTRL.WANT_HIDDEN, c.wantHidden ? 1 : 0);
  postOp(ctrl, 1);
}
function postExit(ctrl) {
  postOp(ctrl, 2);
}
function postOp(ctrl, op) {
  Atomics.store(ctrl, CTRL.OP, op);
  Atomics.add(ctrl, CTRL.COMMAND, 1);
  Atomics.notify(ctrl, CTRL.COMMAND);
}
function controlInts(maxBatch) {
  return CTRL.ROWS + 2 * maxBatch;
}
var SPIN = 2e3;
function barrier(ctrl, n) {
  if (n === 1) return;
  const round = Atomics.load(ctrl, CTRL.ROUND);
  if (Atomics.add(ctrl, CTRL.ARRIVED, 1) === n - 1) {
    Atomics.store(ctrl, CTRL.ARRIVED, 0);
    Atomics.add(ctrl, CTRL.ROUND, 1);
    Atomics.notify(ctrl, CTRL.ROUND);
  } else {
    let spins = 0;
    while (Atomics.load(ctrl, CTRL.ROUND) === round) {
      if (Atomics.load(ctrl, CTRL.FAILED) !== 0) break;
      if (++spins > SPIN) Atomics.wait(ctrl, CTRL.ROUND, round, 50);
    }
  }
  if (Atomics.load(ctrl, CTRL.FAILED) !== 0) throw new Error("Cannot run model: another shard failed");
}
function runShards(shards, ctrl, nThreads) {
  const gens = shards.map((s) => s.steps());
  for (; ; ) {
    let done = false;
    for (const g of gens) done = g.next().done === true;
    if (done) return;
    barrier(ctrl, nThreads);
  }
}
var Shard = class {
  plan;
  #k;
  #ctrl;
  #ex;
  #exF32;
  #layers = [];
  #outputNorm = 0;
  #output;
  // scratch pointers (f32 unless noted)
  #x;
  #xb;
  #q;
  #kv;
  #att;
  #full;
  #rows;
  #hb2;
  #logits;
  #keyCache;
  #valueCache;
  #ownQ;
  #ownKv;
  constructor({ plan, kernels: kernels2, tensors, readInto, exchange, control, onTensor }) {
    this.plan = plan;
    this.#k = kernels2;
    this.#ctrl = new Int32Array(control);
    this.#ex = exchangeLayout(plan.config, plan.maxBatch, plan.nShards);
    this.#exF32 = new Float32Array(exchange);
    const c = plan.config;
    const B = plan.maxBatch;
    const byName = new Map(tensors.map((t) => [
      t.name,
      t
    ]));
    const tensor = (kind, layer) => {
      let t = byName.get(tensorName("gguf", kind, layer));
      if (!t && kind === "output") t = byName.get(tensorName("gguf", "tok_embd"));
      if (!t) throw new RangeError(`Cannot load shard: tensor "${tensorName("gguf", kind, layer)}" is missing`);
      return t;
    };
    const load2 = (kind, layer) => {
      const t = tensor(kind, layer);
      const [r0, r1] = ownRows(plan, kind);
      const [c0, c1] = ownCols(plan, kind);
      const fullCols = t.shape.length === 2 ? t.shape[1] : t.shape[0];
      const cols = c1 - c0;
      const rows = r1 - r0;
      if (t.shape.length === 1) {
        const ptr = kernels2.alloc(cols * 4);
        kernels2.loadRows(t.dtype, "F32", readBytes(readInto, t, 0, 1, fullCols), ptr, 1, cols);
        onTensor?.();
        return ptr;
      }
      const stored = plan.weightsF32 ? "F32" : storedTypeOf(t.dtype, cols);
      const slice = {
        dtype: stored,
        rows,
        cols,
        ptr: 0
      };
      slice.ptr = kernels2.allocMatrix(stored, rows, cols);
      if (cols === 0 || rows === 0) {
        onTensor?.();
        return slice;
      }
      const rowBytes = nBytesOf(t.dtype, fullCols);
      const chunk = Math.max(8, Math.floor((16 << 20) / rowBytes / 8) * 8);
      for (let r = 0; r < rows; r += chunk) {
        const n = Math.min(chunk, rows - r);
        let bytes = readBytes(readInto, t, r0 + r, n, fullCols);
        if (cols !== fullCols) bytes = columnSlice(bytes, t.dtype, n, fullCols, c0, c1);
        kernels2.loadMatrixRows(slice, t.dtype, bytes, r, n);
      }
      onTensor?.();
      return slice;
    };
    for (let l = 0; l < c.nLayers; l++) {
      const m = /* @__PURE__ */ new Map();
      for (const kind of LAYER_KINDS) m.set(kind, load2(kind, l));
      this.#layers.push(m);
    }
    this.#outputNorm = load2("output_norm");
    this.#output = load2("output");
    const hs = c.headSize;
    const kvMul = c.nHeads / c.nKvHeads;
    this.#ownKv = (plan.kvHead1 - plan.kvHead0) * hs;
    this.#ownQ = this.#ownKv * kvMul;
    const f = 4;
    this.#x = kernels2.alloc(B * c.dim * f);
    this.#xb = kernels2.alloc(B * c.dim * f);
    this.#q = kernels2.alloc(B * Math.max(1, this.#ownQ) * f);
    this.#kv = kernels2.alloc(B * Math.max(1, this.#ownKv) * f);
    this.#att = kernels2.alloc(B * Math.max(1, this.#ownQ) * f);
    this.#full = kernels2.alloc(B * Math.max(c.dim, c.hiddenDim) * f);
    const maxRows = Math.max(this.#ownQ, plan.dimRow1 - plan.dimRow0, plan.hidRow1 - plan.hidRow0, 1);
    this.#rows = kernels2.alloc(B * maxRows * f);
    this.#hb2 = kernels2.alloc(B * Math.max(1, plan.hidRow1 - plan.hidRow0) * f);
    this.#logits = kernels2.alloc(B * Math.max(1, plan.vocabRow1 - plan.vocabRow0) * f);
    const kvBytes = c.nLayers * (plan.nSlots ?? 1) * plan.contextSize * Math.max(1, this.#ownKv) * (plan.kvType === "f16" ? 2 : 4);
    this.#keyCache = kernels2.alloc(kvBytes);
    this.#valueCache = kernels2.alloc(kvBytes);
    kernels2.scratch(B, Math.max(c.dim, c.hiddenDim));
  }
  /** Bytes of kernel memory in use. */
  get memoryBytes() {
    return this.#k.memoryBytes;
  }
  /**
   * The forward pass as steps: each `yield` is a point where every shard must have finished the step before any
   * continues (a barrier), so one thread can run several shards (runShards) when memory needs more shards than
   * there are threads.
   */
  *steps() {
    const p = this.plan, c = p.config, k = this.#k, ctrl = this.#ctrl;
    const n = p.nShards;
    const B = Atomics.load(ctrl, CTRL.N_TOKENS);
    const startPos = Atomics.load(ctrl, CTRL.START_POS);
    const nLogits = Math.min(B, Atomics.load(ctrl, CTRL.WANT_LOGITS));
    const multi = Atomics.load(ctrl, CTRL.MULTI) === 1;
    const wantHidden = Atomics.load(ctrl, CTRL.WANT_HIDDEN) === 1;
    const el = p.kvType === "f16" ? 2 : 4;
    const regionBytes = p.contextSize * this.#ownKv * el;
    const slotOf = multi ? (b) => ctrl[CTRL.ROWS + 2 * b] : () => Atomics.load(ctrl, CTRL.SLOT);
    const posOf = (b) => ctrl[CTRL.ROWS + 2 * b + 1];
    const dim = c.dim, hidden = c.hiddenDim, hs = c.headSize;
    const ex = this.#ex, exF = this.#exF32;
    const ownQ = this.#ownQ, ownKv = this.#ownKv;
    const [h0, h1] = [
      p.hidRow0,
      p.hidRow1
    ];
    const q0 = p.kvHead0 * (c.nHeads / c.nKvHeads) * hs;
    const ops = {
      nHeads: ownQ / hs,
      nKvHeads: ownKv / hs,
      headSize: hs,
      contextSize: p.contextSize,
      kvType: p.kvType
    };
    k.copyIn(exF, ex.xIn / 4, this.#x, B * dim);
    const slot = (area) => area / 4 + p.shard * p.maxBatch * dim;
    for (let l = 0; l < c.nLayers; l++) {
      const w = this.#layers[l];
      k.rmsNorm(this.#x, w.get("attn_norm"), this.#xb, dim, c.normEps, B);
      if (ownKv > 0 && !multi) {
        const kvLayer = (l * (p.nSlots ?? 1) + slotOf(0)) * regionBytes;
        k.matmul(w.get("attn_q"), this.#xb, this.#q, B);
        k.rope(this.#q, ops.nHeads, hs, startPos, c.ropeTheta, B);
        k.matmul(w.get("attn_k"), this.#xb, this.#kv, B);
        k.rope(this.#kv, ops.nKvHeads, hs, startPos, c.ropeTheta, B);
        k.storeKv(this.#kv, this.#keyCache + kvLayer, B, ownKv, startPos, p.kvType);
        k.matmul(w.get("attn_v"), this.#xb, this.#kv, B);
        k.storeKv(this.#kv, this.#valueCache + kvLayer, B, ownKv, startPos, p.kvType);
        k.attention(this.#q, this.#keyCache + kvLayer, this.#valueCache + kvLayer, this.#att, ops, B, startPos);
      } else if (ownKv > 0) {
        k.matmul(w.get("attn_q"), this.#xb, this.#q, B);
        k.matmul(w.get("attn_k"), this.#xb, this.#kv, B);
        for (let b = 0; b < B; b++) {
          const kvLayer = (l * (p.nSlots ?? 1) + slotOf(b)) * regionBytes, pos = posOf(b);
          k.rope(this.#q + b * ownQ * 4, ops.nHeads, hs, pos, c.ropeTheta, 1);
          k.rope(this.#kv + b * ownKv * 4, ops.nKvHeads, hs, pos, c.ropeTheta, 1);
          k.storeKv(this.#kv + b * ownKv * 4, this.#keyCache + kvLayer, 1, ownKv, pos, p.kvType);
        }
        k.matmul(w.get("attn_v"), this.#xb, this.#kv, B);
        for (let b = 0; b < B; b++) {
          const kvLayer = (l * (p.nSlots ?? 1) + slotOf(b)) * regionBytes, pos = posOf(b);
          k.storeKv(this.#kv + b * ownKv * 4, this.#valueCache + kvLayer, 1, ownKv, pos, p.kvType);
          const q = this.#q + b * ownQ * 4, out = this.#att + b * ownQ * 4;
          k.attention(q, this.#keyCache + kvLayer, this.#valueCache + kvLayer, out, ops, 1, pos);
        }
      }
      if (p.colSplit) {
        if (ownKv > 0) k.matmul(w.get("attn_output"), this.#att, this.#full, B);
        else k.fill(this.#full, B * dim, 0);
        k.copyOut(this.#full, B, dim, exF, slot(ex.attnPartials), dim);
        yield;
        for (let s = 0; s < n; s++) k.addFrom(this.#x, exF, ex.attnPartials / 4 + s * p.maxBatch * dim, B * dim);
        k.rmsNorm(this.#x, w.get("ffn_norm"), this.#xb, dim, c.normEps, B);
        if (h1 > h0) {
          k.matmul(w.get("ffn_gate"), this.#xb, this.#rows, B);
          k.matmul(w.get("ffn_up"), this.#xb, this.#hb2, B);
          k.siluGate(this.#rows, this.#hb2, this.#rows, B * (h1 - h0));
          k.matmul(w.get("ffn_down"), this.#rows, this.#full, B);
        } else k.fill(this.#full, B * dim, 0);
        k.copyOut(this.#full, B, dim, exF, slot(ex.ffnPartials), dim);
        yield;
        for (let s = 0; s < n; s++) k.addFrom(this.#x, exF, ex.ffnPartials / 4 + s * p.maxBatch * dim, B * dim);
        continue;
      }
      if (ownKv > 0) k.copyOut(this.#att, B, ownQ, exF, ex.att / 4 + q0, dim);
      yield;
      this.#projectOwnRows(w.get("attn_output"), ex.att, dim, B);
      yield;
      this.#addProj(B);
      k.rmsNorm(this.#x, w.get("ffn_norm"), this.#xb, dim, c.normEps, B);
      if (h1 > h0) {
        k.matmul(w.get("ffn_gate"), this.#xb, this.#rows, B);
        k.matmul(w.get("ffn_up"), this.#xb, this.#hb2, B);
        k.siluGate(this.#rows, this.#hb2, this.#rows, B * (h1 - h0));
        k.copyOut(this.#rows, B, h1 - h0, exF, ex.hid / 4 + h0, hidden);
      }
      yield;
      this.#projectOwnRows(w.get("ffn_down"), ex.hid, hidden, B);
      yield;
      this.#addProj(B);
    }
    if (wantHidden) {
      if (p.shard === 0) {
        k.rmsNorm(this.#x, this.#outputNorm, this.#xb, dim, c.normEps, B);
        k.copyOut(this.#xb, B, dim, exF, ex.proj / 4, dim);
      }
    } else if (nLogits > 0) {
      const first = this.#x + (B - nLogits) * dim * 4;
      k.rmsNorm(first, this.#outputNorm, this.#xb, dim, c.normEps, nLogits);
      const v0 = p.vocabRow0, v1 = p.vocabRow1;
      if (v1 > v0) {
        k.matmul(this.#output, this.#xb, this.#logits, nLogits);
        k.copyOut(this.#logits, nLogits, v1 - v0, exF, ex.logits / 4 + v0, c.vocabSize);
      }
    }
    yield;
  }
  /** Own rows of W (rows, nIn) @ the gathered exchange area (B, nIn) -> exchange.proj[:, dimRow0:dimRow1]. */
  #projectOwnRows(w, area, nIn, B) {
    const k = this.#k, { dimRow0, dimRow1, config } = this.plan;
    k.copyIn(this.#exF32, area / 4, this.#full, B * nIn);
    if (dimRow1 > dimRow0) {
      k.matmul(w, this.#full, this.#rows, B);
      k.copyOut(this.#rows, B, dimRow1 - dimRow0, this.#exF32, this.#ex.proj / 4 + dimRow0, config.dim);
    }
  }
  /** x (B, dim) += exchange.proj (B, dim), the rows every shard wrote. */
  #addProj(B) {
    const n = B * this.plan.config.dim;
    this.#k.copyIn(this.#exF32, this.#ex.proj / 4, this.#full, n);
    this.#k.add(this.#x, this.#full, n);
  }
};
function columnSlice(bytes, dtype, nRows, cols, c0, c1) {
  const rowBytes = nBytesOf(dtype, cols);
  const b0 = nBytesOf(dtype, c0), b1 = nBytesOf(dtype, c1);
  const out = new Uint8Array(nRows * (b1 - b0));
  for (let r = 0; r < nRows; r++) out.set(bytes.subarray(r * rowBytes + b0, r * rowBytes + b1), r * (b1 - b0));
  return out;
}
function readBytes(readInto, t, row0, nRows, cols) {
  const rowBytes = nBytesOf(t.dtype, cols);
  if ((row0 + nRows) * rowBytes > t.nBytes) {
    throw new RangeError(`Cannot read rows ${row0}..${row0 + nRows} of "${t.name}": tensor has ${t.nBytes} bytes`);
  }
  const dst = new Uint8Array(nRows * rowBytes);
  readInto(t.byteOffset + row0 * rowBytes, dst);
  return dst;
}

// src/model/generate.ts
async function generate(engine2, sampler, promptIds, options) {
  if (promptIds.length === 0) throw new RangeError("Cannot generate: the prompt has no tokens");
  if (promptIds.length >= engine2.contextSize) {
    throw new UserError(`Cannot generate: the prompt has ${promptIds.length} tokens, the context holds ${engine2.contextSize}`, "shorten the prompt or raise -c");
  }
  const eos = engine2.tokenizer.eosId;
  const stops = new Set(options.stopAt ?? (eos !== void 0 && eos >= 0 ? [
    eos
  ] : []));
  sampler.accept?.(promptIds);
  let t0 = performance.now();
  let logits = await engine2.eval(promptIds, 0);
  const promptMs = performance.now() - t0;
  t0 = performance.now();
  const ids = [];
  let pos = promptIds.length;
  let stop = "length";
  while (ids.length < options.maxTokens) {
    const id = sampler.sample(logits);
    if (stops.has(id)) {
      stop = "eos";
      break;
    }
    ids.push(id);
    options.onToken?.(id);
    if (ids.length >= options.maxTokens) break;
    if (pos >= engine2.contextSize) {
      stop = "context";
      break;
    }
    logits = await engine2.eval([
      id
    ], pos++);
  }
  return {
    ids,
    promptMs,
    generateMs: performance.now() - t0,
    stop
  };
}

// src/model/engine.ts
var GGUF_MAGIC_BYTES = new TextEncoder().encode(GGUF_MAGIC_STRING);
async function loadEngineFromSource(source, place, options = {}) {
  const name = place.path ?? source.name ?? "model";
  const magic = source.size >= 4 ? source.read(0, 4) : new Uint8Array(0);
  if (!GGUF_MAGIC_BYTES.every((b, i) => magic[i] === b)) {
    throw new UserError(`Cannot load model "${name}": not a GGUF file`, "convert it first (`deno task convert`); llama2.c .bin checkpoints run with `generate --tokenizer tok.model`");
  }
  let g;
  try {
    g = readGguf(source);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    throw new UserError(`Cannot load model "${name}": ${e.message}`, "the file is damaged or not a model", {
      cause: e
    });
  }
  const metadata = g.metadata;
  let tokenizer;
  try {
    tokenizer = place.tokenizer ?? tokenizerFromGgufMetadata(metadata);
  } catch (e) {
    throw new UserError(`Cannot load the tokenizer from "${name}": ${e.message}`, "the GGUF needs tokenizer.ggml.* keys; convert the model with `deno task convert` to embed them", {
      cause: e
    });
  }
  return await createEngine({
    ...place,
    metadata,
    tensors: g.tensors,
    source,
    tokenizer
  }, options);
}
var SHARD_BUDGET = 4 * 2 ** 30 - 256 * 2 ** 20;
function engineBytes(table, contextSize, kvType, slots = 1, weightsF32 = false) {
  const c = table.config;
  let n = 0;
  for (const kind of [
    ...LAYER_KINDS,
    ...GLOBAL_KINDS
  ]) {
    if (kind === "tok_embd") continue;
    const layers = LAYER_KINDS.includes(kind) ? c.nLayers : 1;
    for (let l = 0; l < layers; l++) {
      const t = table.info(kind, LAYER_KINDS.includes(kind) ? l : void 0);
      const shape = expectedShape(c, kind);
      const cols = shape[shape.length - 1];
      const rows = shape.length === 2 ? shape[0] : 1;
      const stored = weightsF32 ? "F32" : storedTypeOf(t.dtype, cols);
      n += shape.length === 2 ? wasmMatrixBytes(stored, rows, cols) : cols * 4;
    }
  }
  const kvDim = c.nKvHeads * c.headSize;
  n += 2 * c.nLayers * slots * contextSize * kvDim * (kvType === "f16" ? 2 : 4);
  return n;
}
function defaultThreads() {
  const n = typeof navigator !== "undefined" ? navigator.hardwareConcurrency : 1;
  return Number.isInteger(n) && n > 0 ? n : 1;
}
async function createEngine(model, options = {}) {
  const embd = model.tensors.find((t) => t.name === tensorName("gguf", "tok_embd"));
  const config = configFromGgufMetadata(model.metadata, embd?.shape[0]);
  const table = new TensorTable(model, config);
  const contextSize = options.contextSize ?? Math.min(config.contextLength, 2048);
  if (!Number.isSafeInteger(contextSize) || contextSize <= 0) {
    throw new RangeError(`Cannot load model: context size ${contextSize} must be a positive integer`);
  }
  const weightsF32 = options.useReference === true;
  const kvType = weightsF32 ? "f32" : options.kvType ?? "f16";
  const slots = options.slots ?? 1;
  if (!Number.isSafeInteger(slots) || slots < 1 || slots > 256) {
    throw new RangeError(`Cannot load model: slot count ${slots} must be an integer in [1, 256]`);
  }
  const threads = weightsF32 ? 1 : options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`Cannot load model: threads ${threads}`);
  const need = engineBytes(table, contextSize, kvType, slots, weightsF32);
  const nShards = Math.max(threads, options.minShards ?? 1, Math.ceil(need * 1.1 / SHARD_BUDGET));
  const nThreads = threads;
  const shardsOf = (t) => plans.filter((p) => p.shard % nThreads === t);
  const maxBatch = options.maxBatch ?? 64;
  let columnBlock = 1;
  for (let l = 0; l < config.nLayers; l++) {
    for (const kind of [
      "attn_output",
      "ffn_down"
    ]) {
      const t = table.info(kind, l);
      columnBlock = Math.max(columnBlock, blockSizeOf(t.dtype), storedTypeOf(t.dtype, t.shape[1]) === "F32" ? 1 : 32);
    }
  }
  const plans = planShards(config, {
    nShards,
    contextSize,
    kvType,
    maxBatch,
    columnBlock,
    nSlots: slots,
    weightsF32
  });
  const layout = exchangeLayout(config, maxBatch, nShards);
  const exchange = new SharedArrayBuffer(layout.nBytes);
  const control = new SharedArrayBuffer(controlInts(maxBatch) * 4);
  const ctrl = new Int32Array(control);
  const exF32 = new Float32Array(exchange);
  const kernels2 = weightsF32 ? "scalar" : options.kernels ?? "wasm";
  const perShard = config.nLayers * LAYER_KINDS.length + 2;
  const total = perShard * nShards;
  let done = 0;
  const progress = () => options.onProgress?.(++done, total);
  let shared;
  if (model.path === void 0 && model.blob === void 0) {
    if (!model.bytes) throw new TypeError("Cannot load model: neither a path, a blob nor the bytes were given");
    if (nThreads > 1) {
      shared = new SharedArrayBuffer(model.bytes.length);
      new Uint8Array(shared).set(model.bytes);
    }
  }
  const workers = [];
  const ready = [];
  const failures = [];
  for (let s = 1; s < nThreads; s++) {
    const w = options.spawnWorker?.() ?? new Worker(new URL("./shard_worker.ts", import.meta.url).href, {
      type: "module"
    });
    workers.push(w);
    ready.push(new Promise((resolve, reject) => {
      w.onmessage = (e) => {
        if (e.data.type === "progress") progress();
        else if (e.data.type === "ready") resolve();
        else if (e.data.type === "error") {
          failures.push(e.data.message ?? "unknown error");
          reject(new Error(`Cannot run model: thread ${s} failed: ${e.data.message}`));
        }
      };
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`Cannot run model: thread ${s} worker failed: ${e.message}`));
      };
    }));
    w.postMessage({
      plans: shardsOf(s),
      nThreads,
      tensors: model.tensors,
      path: model.path,
      blob: model.blob,
      bytes: shared,
      exchange,
      control,
      kernels: kernels2
    });
  }
  const closeWorkers = () => {
    postExit(ctrl);
    for (const w of workers) w.terminate();
  };
  const own = [];
  try {
    for (const plan of shardsOf(0)) {
      const readInto = (off, dst) => model.source.readInto(off, dst);
      const k = await createKernels(kernels2);
      own.push(new Shard({
        plan,
        kernels: k,
        tensors: model.tensors,
        readInto,
        exchange,
        control,
        onTensor: progress
      }));
    }
    await Promise.all(ready);
  } catch (e) {
    closeWorkers();
    throw e;
  }
  return new ShardedEngine({
    model,
    config,
    contextSize,
    table,
    own,
    plans,
    nThreads,
    exF32,
    ctrl,
    layout,
    closeWorkers
  });
}
function checkSlot(slot, slots) {
  if (!Number.isInteger(slot) || slot < 0 || slot >= slots) {
    throw new RangeError(`Cannot evaluate in slot ${slot}: the engine has ${slots} slot(s)`);
  }
}
function checkRows(rows, slots, contextSize, vocabSize, nLogits) {
  if (!Array.isArray(rows) || rows.length === 0) throw new RangeError("Cannot evaluate a batch: no rows");
  if (!Number.isInteger(nLogits) || nLogits < 0 || nLogits > rows.length) {
    throw new RangeError(`Cannot evaluate a batch: logits of ${nLogits} rows asked, the batch has ${rows.length}`);
  }
  const last = /* @__PURE__ */ new Map();
  for (const r of rows) {
    checkSlot(r.slot, slots);
    checkEval([
      r.token
    ], r.pos, contextSize, vocabSize);
    const prev = last.get(r.slot);
    if (prev !== void 0 && r.pos <= prev) {
      throw new RangeError(`Cannot evaluate a batch: slot ${r.slot} has position ${r.pos} after ${prev}`);
    }
    last.set(r.slot, r.pos);
  }
}
function checkEval(tokens, startPos, contextSize, vocabSize) {
  if (!Array.isArray(tokens) || tokens.length === 0) throw new RangeError("Cannot evaluate: no tokens");
  if (!Number.isInteger(startPos) || startPos < 0 || startPos + tokens.length > contextSize) {
    throw new RangeError(`Cannot evaluate ${tokens.length} tokens at position ${startPos}: the context holds ${contextSize}`);
  }
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw new RangeError(`Cannot evaluate: token ${t} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}
var ShardedEngine = class {
  #closed = false;
  config;
  contextSize;
  metadata;
  tokenizer;
  nShards;
  nThreads;
  slots;
  table;
  own;
  plans;
  exF32;
  ctrl;
  layout;
  #closeWorkers;
  #onClose;
  constructor(p) {
    ({ config: this.config, contextSize: this.contextSize, table: this.table, own: this.own } = p);
    ({ plans: this.plans, nThreads: this.nThreads, exF32: this.exF32, ctrl: this.ctrl, layout: this.layout } = p);
    this.metadata = p.model.metadata;
    this.tokenizer = p.model.tokenizer;
    this.#closeWorkers = p.closeWorkers;
    this.#onClose = p.model.onClose;
    this.nShards = p.plans.length;
    this.slots = p.plans[0].nSlots ?? 1;
  }
  async eval(tokens, startPos) {
    const all = await this.#run(tokens, startPos, false);
    return all[all.length - 1];
  }
  evalAll(tokens, startPos) {
    return this.#run(tokens, startPos, true);
  }
  async evalSlot(slot, tokens, startPos) {
    const all = await this.#run(tokens, startPos, false, slot);
    return all[all.length - 1];
  }
  evalHidden(slot, tokens, startPos) {
    return this.#run(tokens, startPos, true, slot, true);
  }
  evalBatch(rows, nLogits = rows.length) {
    if (this.#closed) return Promise.reject(new Error("Cannot evaluate: the engine is closed"));
    try {
      checkRows(rows, this.slots, this.contextSize, this.config.vocabSize, nLogits);
    } catch (e) {
      return Promise.reject(e);
    }
    const out = [];
    const { vocabSize } = this.config;
    const B = this.plans[0].maxBatch;
    const ctrl = this.ctrl;
    for (let i = 0; i < rows.length; i += B) {
      const n = Math.min(B, rows.length - i);
      for (let b = 0; b < n; b++) {
        const r = rows[i + b];
        this.#embed(b, r.token);
        setRow(ctrl, b, r.slot, r.pos);
      }
      const m = Math.max(0, Math.min(n, i + n - (rows.length - nLogits)));
      const failed = this.#forward({
        nTokens: n,
        startPos: 0,
        wantLogits: m,
        slot: 0,
        multi: true,
        wantHidden: false
      });
      if (failed) return Promise.reject(failed);
      const l = this.layout.logits / 4;
      for (let r = 0; r < m; r++) out.push(this.exF32.slice(l + r * vocabSize, l + (r + 1) * vocabSize));
    }
    return Promise.resolve(out);
  }
  /** Row b of exchange.xIn (B, dim) = the token's tok_embd row, dequantized from the file. */
  #embed(b, token) {
    const dim = this.config.dim;
    this.exF32.set(this.table.rowsF32("tok_embd", void 0, token, 1), this.layout.xIn / 4 + b * dim);
  }
  /** Posts one forward command and runs shard 0's part; returns the error when a shard failed (engine closed). */
  #forward(command) {
    try {
      runForward(this.own, this.ctrl, this.nThreads, command);
    } catch (e) {
      this.close();
      return e;
    }
    return void 0;
  }
  #run(tokens, startPos, all, slot = 0, hidden = false) {
    if (this.#closed) return Promise.reject(new Error("Cannot evaluate: the engine is closed"));
    try {
      checkSlot(slot, this.slots);
      checkEval(tokens, startPos, this.contextSize, this.config.vocabSize);
    } catch (e) {
      return Promise.reject(e);
    }
    const out = [];
    const { dim, vocabSize } = this.config;
    const B = this.plans[0].maxBatch;
    for (let i = 0; i < tokens.length; i += B) {
      const n = Math.min(B, tokens.length - i);
      for (let b = 0; b < n; b++) this.#embed(b, tokens[i + b]);
      const wantLogits = all ? n : i + n === tokens.length ? 1 : 0;
      const command = {
        nTokens: n,
        startPos: startPos + i,
        wantLogits,
        slot,
        multi: false,
        wantHidden: hidden
      };
      const failed = this.#forward(command);
      if (failed) return Promise.reject(failed);
      if (hidden) {
        const h = this.layout.proj / 4;
        for (let r = 0; r < n; r++) out.push(this.exF32.slice(h + r * dim, h + (r + 1) * dim));
        continue;
      }
      const l = this.layout.logits / 4;
      for (let r = 0; r < wantLogits; r++) out.push(this.exF32.slice(l + r * vocabSize, l + (r + 1) * vocabSize));
    }
    return Promise.resolve(out);
  }
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeWorkers();
    this.#onClose?.();
  }
};

// src/model/browser_engine.ts
function loadEngineFromBlob(blob, options = {}, name = blob.name ?? "model", read) {
  return loadEngineFromSource(new BlobSource(blob, name, read), {
    blob
  }, options);
}

// src/core/mt19937.ts
var N = 624;
var M = 397;
var MATRIX_A = 2567483615;
var UPPER_MASK = 2147483648;
var LOWER_MASK = 2147483647;
var Mt19937 = class {
  #mt = new Uint32Array(N);
  #i = N;
  /** Seeds like `std::mt19937(seed)`; the seed is taken modulo 2^32. */
  constructor(seed = 5489) {
    const mt = this.#mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ mt[i - 1] >>> 30;
      mt[i] = Math.imul(1812433253, prev) + i >>> 0;
    }
  }
  /** The next 32-bit output as an unsigned integer. */
  nextU32() {
    const mt = this.#mt;
    if (this.#i >= N) {
      for (let k = 0; k < N; k++) {
        const y2 = mt[k] & UPPER_MASK | mt[(k + 1) % N] & LOWER_MASK;
        mt[k] = mt[(k + M) % N] ^ y2 >>> 1 ^ (y2 & 1 ? MATRIX_A : 0);
      }
      this.#i = 0;
    }
    let y = mt[this.#i++];
    y ^= y >>> 11;
    y ^= y << 7 & 2636928640;
    y ^= y << 15 & 4022730752;
    y ^= y >>> 18;
    return y >>> 0;
  }
  /** A float uniform in [0, 1) with 53 random bits (two outputs, as `std::generate_canonical<double, 53>`). */
  nextFloat() {
    const lo = this.nextU32();
    const hi = this.nextU32();
    return (lo + hi * 4294967296) / 18446744073709552e3;
  }
  /** uniform_int_distribution<uint64_t>(0, range - 1)(*this) for 1 ≤ range ≤ 2^32 - 1. */
  uniformBelow(range) {
    if (!(range >= 1 && range <= 4294967295)) throw new RangeError(`Cannot draw below ${range}: out of range`);
    let [hi, lo] = mul32(this.nextU32(), range);
    if (lo < range) {
      const threshold = (4294967296 - range) % range;
      while (lo < threshold) [hi, lo] = mul32(this.nextU32(), range);
    }
    return hi;
  }
};
function mul32(a, b) {
  const aHi = a >>> 16, aLo = a & 65535;
  const p1 = aHi * b;
  const p0 = aLo * b;
  const low = p1 % 65536 * 65536 + p0;
  const hi = Math.floor(p1 / 65536) + Math.floor(low / 4294967296);
  return [
    hi >>> 0,
    low % 4294967296
  ];
}

// src/sampling/sampler.ts
var DEFAULT_SAMPLER_OPTIONS = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  repeatPenalty: 1.1,
  repeatLastN: 64,
  seed: 42
};
function argmax(values) {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > bestV) {
      bestV = values[i];
      best = i;
    }
  }
  return best;
}
function applyRepeatPenalty(logits, recent, penalty) {
  if (penalty === 1) return;
  const seen = /* @__PURE__ */ new Set();
  for (const t of recent) {
    if (t < 0 || t >= logits.length || seen.has(t)) continue;
    seen.add(t);
    const l = logits[t];
    logits[t] = l <= 0 ? l * penalty : l / penalty;
  }
}
function softmax(cands, temperature = 1) {
  const max = cands[0].logit;
  let sum = 0;
  for (const c of cands) {
    c.p = Math.exp((c.logit - max) / temperature);
    sum += c.p;
  }
  for (const c of cands) c.p /= sum;
}
function allCandidates(l) {
  const cands = [];
  for (let i = 0; i < l.length; i++) if (l[i] > -Infinity) cands.push({
    id: i,
    logit: l[i],
    p: 0
  });
  return cands.sort((a, b) => b.logit - a.logit || a.id - b.id);
}
function topK(l, k) {
  const ids = new Int32Array(k);
  const vals = new Float32Array(k);
  let size = 0;
  const less = (a, b) => vals[a] < vals[b] || vals[a] === vals[b] && ids[a] > ids[b];
  const swap = (a, b) => {
    const ti = ids[a], tv = vals[a];
    ids[a] = ids[b], vals[a] = vals[b];
    ids[b] = ti, vals[b] = tv;
  };
  const down = (i) => {
    for (; ; ) {
      const a = 2 * i + 1, b = a + 1;
      let m = i;
      if (a < size && less(a, m)) m = a;
      if (b < size && less(b, m)) m = b;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };
  for (let i = 0; i < l.length; i++) {
    const v = l[i];
    if (!(v > -Infinity)) continue;
    if (size < k) {
      ids[size] = i, vals[size] = v;
      for (let j = size++; j > 0; ) {
        const parent = j - 1 >> 1;
        if (!less(j, parent)) break;
        swap(j, parent);
        j = parent;
      }
    } else if (v > vals[0]) {
      ids[0] = i, vals[0] = v;
      down(0);
    }
  }
  const out = [];
  for (let i = 0; i < size; i++) out.push({
    id: ids[i],
    logit: vals[i],
    p: 0
  });
  return out.sort((a, b) => b.logit - a.logit || a.id - b.id);
}
var Sampler = class {
  options;
  #rng;
  #history = [];
  constructor(options = {}) {
    const o = {
      ...DEFAULT_SAMPLER_OPTIONS
    };
    for (const [k, v] of Object.entries(options)) if (v !== void 0) o[k] = v;
    for (const [k, v] of Object.entries(o)) {
      if (typeof v !== "number" || Number.isNaN(v)) throw new TypeError(`Cannot create sampler: ${k} is ${v}`);
    }
    if (o.repeatPenalty <= 0) {
      throw new RangeError(`Cannot create sampler: repeatPenalty ${o.repeatPenalty} must be > 0`);
    }
    this.options = o;
    this.#rng = new Mt19937(o.seed);
  }
  /** Records tokens already in the context (the prompt) for the repeat penalty. */
  accept(tokens) {
    for (const t of tokens) this.#history.push(t);
    const keep = Math.max(this.options.repeatLastN, 0) || 0;
    const cap = this.options.repeatLastN < 0 ? 1 << 20 : keep;
    if (this.#history.length > cap) this.#history.splice(0, this.#history.length - cap);
  }
  /** Forgets the remembered tokens (new conversation). */
  reset() {
    this.#history = [];
  }
  /** The tokens the repeat penalty currently looks at. */
  get recent() {
    return this.#history;
  }
  /**
   * Picks a token from `logits` (not modified; a copy is penalised) and records it. Order: repeat penalty, then
   * greedy if temperature ≤ 0, else top-k, top-p (on the untempered softmax, as llama.cpp), temperature, draw.
   */
  sample(logits) {
    const id = this.pick(logits);
    this.accept([
      id
    ]);
    return id;
  }
  /** Like sample() but does not record the token. */
  pick(logits) {
    const o = this.options;
    const l = logits.slice();
    if (o.repeatLastN !== 0) applyRepeatPenalty(l, this.#history, o.repeatPenalty);
    if (o.temperature <= 0) return argmax(l);
    let cands = o.topK > 0 && o.topK < l.length ? topK(l, o.topK) : allCandidates(l);
    if (cands.length === 0) return argmax(l);
    if (o.topP < 1) {
      softmax(cands);
      let cum2 = 0;
      let last = cands.length;
      for (let i = 0; i < cands.length; i++) {
        cum2 += cands[i].p;
        if (cum2 >= o.topP) {
          last = i + 1;
          break;
        }
      }
      cands = cands.slice(0, Math.max(1, last));
    }
    softmax(cands, o.temperature);
    const u = this.#rng.nextFloat();
    let cum = 0;
    for (const c of cands) {
      cum += c.p;
      if (u < cum) return c.id;
    }
    return cands[cands.length - 1].id;
  }
};

// src/chat/templates.ts
var ALPACA_SYSTEM = "Below is an instruction that describes a task. Write a response that appropriately completes the request.";
var ALPACA_INSTRUCTION_PREFIX = "\n\n### Instruction:\n\n";
var ALPACA_RESPONSE_SUFFIX = "\n\n### Response:\n\n";
var ALPACA = {
  name: "alpaca",
  summary: "Chinese-Alpaca v1 / llama.cpp -ins: ### Instruction / ### Response (default)",
  defaultSystem: ALPACA_SYSTEM,
  preamble(tok, system) {
    return system === "" ? [
      tok.bosId
    ] : tok.encode(system, {
      bos: true
    });
  },
  turn(tok, user) {
    const raw = {
      bos: false,
      addDummyPrefix: false
    };
    return [
      ...tok.encode(ALPACA_INSTRUCTION_PREFIX, {
        bos: true,
        addDummyPrefix: false
      }),
      ...tok.encode(`${user}
`, raw),
      ...tok.encode(ALPACA_RESPONSE_SUFFIX, raw)
    ];
  },
  stopStrings: [
    "### Instruction:"
  ]
};
var ALPACA_2_SYSTEM = "You are a helpful assistant. \u4F60\u662F\u4E00\u4E2A\u4E50\u4E8E\u52A9\u4EBA\u7684\u52A9\u624B\u3002";
var LLAMA_2 = {
  name: "llama-2",
  summary: "Chinese-Alpaca-2 / Llama-2-chat: [INST] <<SYS>> \u2026 [/INST]",
  defaultSystem: ALPACA_2_SYSTEM,
  preamble(tok, system) {
    return tok.encode(`[INST] <<SYS>>
${system}
<</SYS>>

`, {
      bos: true
    });
  },
  turn(tok, user, index) {
    if (index === 0) return tok.encode(`${user} [/INST]`, {
      bos: false,
      addDummyPrefix: false
    });
    return tok.encode(`[INST] ${user} [/INST]`, {
      bos: true
    });
  },
  stopStrings: [
    "[INST]"
  ]
};
var ALPACA_SFT = {
  name: "alpaca-sft",
  summary: "the seed's SFT training prompt (build_dataset.py): ### Instruction:\n\u2026 ### Response: (yangtuo-poetry)",
  defaultSystem: ALPACA_SYSTEM,
  preamble(tok) {
    return [
      tok.bosId
    ];
  },
  turn(tok, user, index) {
    const text = `${ALPACA_SYSTEM}

### Instruction:
${user}

### Response: `;
    return index === 0 ? tok.encode(text, {
      bos: false
    }) : tok.encode(text, {
      bos: true
    });
  },
  stopStrings: [
    "### Instruction:"
  ]
};
var TEMPLATES = /* @__PURE__ */ new Map([
  [
    "alpaca",
    ALPACA
  ],
  [
    "llama-2",
    LLAMA_2
  ],
  [
    "alpaca-2",
    LLAMA_2
  ],
  [
    "alpaca-sft",
    ALPACA_SFT
  ]
]);
function getTemplate(name) {
  const t = TEMPLATES.get(name);
  if (!t) {
    throw new RangeError(`Cannot use chat template "${name}": expected one of ${[
      ...TEMPLATES.keys()
    ].join(", ")}`);
  }
  return t;
}
function templateForModel(chatTemplate, vocabSize) {
  if (chatTemplate !== void 0) {
    if (chatTemplate.includes("[INST]")) return LLAMA_2;
    if (chatTemplate.includes("### Instruction:")) return chatTemplate.includes("### Response: ") ? ALPACA_SFT : ALPACA;
  }
  if (vocabSize === CHINESE_LLAMA_2_VOCAB_SIZE) return LLAMA_2;
  return void 0;
}
function templateOfMetadata(metadata, vocabSize) {
  return templateForModel(ggufChatTemplate(metadata), vocabSize) ?? ALPACA;
}
var CHINESE_LLAMA_2_VOCAB_SIZE = 55296;

// src/chat/stop_filter.ts
var StopStringFilter = class {
  stopStrings;
  #held = "";
  #emitted = 0;
  #stopped = false;
  constructor(stopStrings) {
    this.stopStrings = stopStrings.filter((s) => s.length > 0);
  }
  /** True once a stop string was seen. */
  get stopped() {
    return this.#stopped;
  }
  /** Number of UTF-16 code units shown so far (the reply's visible length). */
  get emittedLength() {
    return this.#emitted;
  }
  /** Adds streamed text; returns what can be shown now. */
  push(text) {
    if (this.#stopped) return {
      text: "",
      stopped: true
    };
    const buf = this.#held + text;
    let cut = -1;
    for (const s of this.stopStrings) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.#stopped = true;
      this.#held = "";
      return this.#emit(buf.slice(0, cut), true);
    }
    const keep = this.#heldTail(buf);
    this.#held = buf.slice(buf.length - keep);
    return this.#emit(buf.slice(0, buf.length - keep), false);
  }
  /** Ends the stream: returns the held-back text (a stop string's beginning that never completed). */
  flush() {
    const t = this.#held;
    this.#held = "";
    return this.#emit(t, this.#stopped).text;
  }
  #emit(text, stopped) {
    this.#emitted += text.length;
    return {
      text,
      stopped
    };
  }
  /** Length of the longest suffix of `buf` that is a proper prefix of a stop string. */
  #heldTail(buf) {
    let best = 0;
    for (const s of this.stopStrings) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
};

// src/chat/chat_tokenizer.ts
function chatTokenizer(tokenizer) {
  const o = tokenizer.normalizer.options;
  const raw = o.addDummyPrefix ? new Tokenizer({
    vocab: tokenizer.vocab,
    model: tokenizer.model,
    normalizer: new Normalizer({
      ...o,
      addDummyPrefix: false
    }),
    byteFallback: tokenizer.byteFallback,
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    padId: tokenizer.padId,
    addBos: tokenizer.addBos,
    addEos: tokenizer.addEos,
    unkSurface: tokenizer.unkSurface
  }) : tokenizer;
  return {
    tokenizer,
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    encode(text, options = {}) {
      const t = options.addDummyPrefix === false ? raw : tokenizer;
      return t.encode(text, {
        bos: options.bos ?? false,
        eos: options.eos ?? false
      });
    },
    decode: (ids) => tokenizer.decode(ids)
  };
}
function replyDecoder(tokenizer) {
  return new StreamingDecoder(tokenizer);
}

// src/core/event_loop.ts
function yieldToEventLoop() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

// src/chat/session.ts
var YIELD_EVERY_MS = 30;
var ChatSession = class {
  engine;
  /** The tokenizer the templates use (the project's Tokenizer gets the no-dummy-prefix encoding, chatTokenizer()). */
  tokenizer;
  template;
  system;
  maxNewTokens;
  sampler;
  batchSize;
  ignoreEos;
  #createDecoder;
  #preamble;
  #tokens;
  #evaluated = 0;
  #logits = null;
  #turn = 0;
  #lastYield = 0;
  #stats = {
    turns: 0,
    promptTokens: 0,
    promptMs: 0,
    generatedTokens: 0,
    generateMs: 0,
    evaluatedTokens: 0,
    contextShifts: 0
  };
  constructor(engine2, options) {
    this.engine = engine2;
    this.template = options.template ?? ALPACA;
    this.system = options.system ?? this.template.defaultSystem;
    this.maxNewTokens = options.maxNewTokens ?? 256;
    this.sampler = options.sampler instanceof Sampler ? options.sampler : new Sampler(options.sampler ?? {});
    this.ignoreEos = options.ignoreEos ?? false;
    const tok = engine2.tokenizer;
    this.tokenizer = tok instanceof Tokenizer ? chatTokenizer(tok) : tok;
    if (options.createDecoder) this.#createDecoder = options.createDecoder;
    else if (tok instanceof Tokenizer) this.#createDecoder = () => replyDecoder(tok);
    else throw new TypeError("Cannot start chat: createDecoder is required for a tokenizer that is not a Tokenizer");
    this.#preamble = this.template.preamble(this.tokenizer, this.system);
    const ctx = engine2.contextSize;
    if (this.#preamble.length > ctx - 4) {
      throw new RangeError(`Cannot start chat: the preamble is ${this.#preamble.length} tokens but the context holds ${ctx} (need \u2264 ${ctx - 4})`);
    }
    const batch = options.batchSize ?? 64;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`Cannot start chat: batchSize ${batch} < 1`);
    this.batchSize = Math.max(1, Math.min(batch, Math.floor((ctx - this.#preamble.length) / 2)));
    this.#tokens = [
      ...this.#preamble
    ];
    this.sampler.accept(this.#preamble);
  }
  /** The tokens kept for ever (llama.cpp's n_keep). */
  get preambleTokens() {
    return this.#preamble;
  }
  /** The conversation as the model sees it: preamble, then the most recent turns and replies. */
  get contextTokens() {
    return this.#tokens;
  }
  /** How many of `contextTokens` are in the engine's KV cache (positions 0 … evaluated-1). */
  get evaluated() {
    return this.#evaluated;
  }
  /** Counters since the session started. */
  get stats() {
    return this.#stats;
  }
  /** Evaluates the preamble now (otherwise the first respond() does it). */
  async start(signal) {
    if (this.#evaluated >= this.#tokens.length) return;
    const t0 = performance.now();
    const before = this.#stats.evaluatedTokens;
    await this.#sync(signal);
    this.#stats.promptTokens += this.#stats.evaluatedTokens - before;
    this.#stats.promptMs += performance.now() - t0;
  }
  /** Forgets the conversation but keeps the preamble (already in the KV cache, so it is not evaluated again). */
  reset() {
    this.#tokens = [
      ...this.#preamble
    ];
    this.#evaluated = Math.min(this.#evaluated, this.#preamble.length);
    this.#logits = null;
    this.#turn = 0;
    this.sampler.reset();
    this.sampler.accept(this.#preamble);
  }
  /** Adds the user's turn and streams the model's reply. */
  async respond(user, options = {}) {
    const { onText, signal } = options;
    const tok = this.tokenizer;
    const turn = this.template.turn(tok, user, this.#turn++);
    this.#stats.turns++;
    this.#tokens.push(...turn);
    this.sampler.accept(turn);
    const reply = {
      text: "",
      tokenIds: [],
      stopReason: "interrupted",
      nPromptTokens: 0,
      promptMs: 0,
      nGenerated: 0,
      generateMs: 0
    };
    const emit = (s) => {
      if (s === "") return;
      reply.text += s;
      onText?.(s);
    };
    const t0 = performance.now();
    const before = this.#stats.evaluatedTokens;
    let logits = await this.#sync(signal);
    reply.promptMs = performance.now() - t0;
    reply.nPromptTokens = this.#stats.evaluatedTokens - before;
    this.#stats.promptTokens += reply.nPromptTokens;
    this.#stats.promptMs += reply.promptMs;
    if (logits === null) return reply;
    const t1 = performance.now();
    const decoder2 = this.#createDecoder(this.engine.tokenizer);
    const filter = new StopStringFilter(this.template.stopStrings);
    const rawEnd = [];
    const shown = [];
    let raw = 0;
    let stop = "length";
    while (this.maxNewTokens < 0 || reply.tokenIds.length < this.maxNewTokens) {
      if (this.ignoreEos) {
        logits = logits.slice();
        logits[tok.eosId] = -Infinity;
      }
      const id = this.sampler.sample(logits);
      reply.tokenIds.push(id);
      this.#tokens.push(id);
      if (id === tok.eosId) {
        stop = "eos";
        break;
      }
      const piece = decoder2.push(id);
      raw += piece.length;
      rawEnd.push(raw);
      shown.push(piece.length > 0);
      const chunk = filter.push(piece);
      emit(chunk.text);
      if (chunk.stopped) {
        stop = "stop-string";
        this.#dropStopString(filter.emittedLength, rawEnd, shown);
        break;
      }
      if (signal?.aborted) {
        stop = "interrupted";
        break;
      }
      const next = await this.#sync(signal);
      if (next === null) {
        stop = "interrupted";
        break;
      }
      logits = next;
    }
    if (stop !== "stop-string") {
      emit(filter.push(decoder2.flush()).text);
      emit(filter.flush());
    }
    reply.stopReason = stop;
    reply.nGenerated = reply.tokenIds.length;
    reply.generateMs = performance.now() - t1;
    this.#stats.generatedTokens += reply.nGenerated;
    this.#stats.generateMs += reply.generateMs;
    return reply;
  }
  /**
   * Removes the stop string's tokens from the context: keeps generated tokens up to the last one that completed
   * text lying wholly before the stop string, so the next turn's own prefix follows cleanly. The dropped tokens
   * are the newest ones, always at the end of the context (a shift only removes older tokens).
   */
  #dropStopString(visible, rawEnd, shown) {
    let keep = 0;
    for (let i = 0; i < rawEnd.length; i++) if (shown[i] && rawEnd[i] <= visible) keep = i + 1;
    const drop = Math.min(rawEnd.length - keep, this.#tokens.length - this.#preamble.length);
    this.#tokens.length -= drop;
    if (this.#evaluated > this.#tokens.length) this.#evaluated = this.#tokens.length;
    this.#logits = null;
  }
  /**
   * Evaluates every queued token, shifting the context when it would overflow; returns the logits after the last
   * token, or null when `signal` fired between batches (what was evaluated stays evaluated).
   */
  async #sync(signal) {
    const ctx = this.engine.contextSize;
    const nKeep = this.#preamble.length;
    while (this.#evaluated < this.#tokens.length) {
      if (performance.now() - this.#lastYield > YIELD_EVERY_MS) {
        await yieldToEventLoop();
        this.#lastYield = performance.now();
      }
      if (signal?.aborted) return null;
      let n = Math.min(this.batchSize, this.#tokens.length - this.#evaluated);
      if (this.#evaluated + n > ctx) {
        const nLeft = this.#evaluated - nKeep;
        const kept = Math.floor(nLeft / 2);
        this.#tokens.splice(nKeep, nLeft - kept);
        this.#evaluated = nKeep;
        n += kept;
        this.#stats.contextShifts++;
      }
      const start = this.#evaluated;
      this.#logits = await this.engine.eval(this.#tokens.slice(start, start + n), start);
      this.#evaluated = start + n;
      this.#stats.evaluatedTokens += n;
    }
    return this.#logits;
  }
};

// web/src/protocol.ts
var GENERATE_DEFAULTS = {
  temp: 0.8,
  n: 128,
  seed: -1,
  topK: 40,
  topP: 0.95,
  repeatPenalty: 1.1,
  repeatLastN: 64,
  bos: true,
  ignoreEos: false
};
var CHAT_DEFAULTS = {
  temp: 0.2,
  n: 256,
  topK: 40,
  topP: 0.95,
  repeatPenalty: 1.3,
  repeatLastN: 64,
  contextSize: 2048
};

// web/src/host_worker.ts
var kernels;
var shardWorkerUrl = "";
var engine;
var session;
var template = ALPACA;
var running;
var post = (e) => self.postMessage(e);
var isolated = () => globalThis.crossOriginIsolated === true;
var channel = new MessageChannel();
var waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();
function yieldTurn() {
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(0);
  });
}
var Stopped = class extends Error {
};
function ensureSharedArrayBuffer() {
  if (typeof SharedArrayBuffer !== "undefined") return;
  const make = function(nBytes) {
    const pages = Math.max(1, Math.ceil(nBytes / 65536));
    return new WebAssembly.Memory({
      initial: pages,
      maximum: pages,
      shared: true
    }).buffer;
  };
  globalThis.SharedArrayBuffer = make;
}
async function init(kernelsUrl, shardUrl) {
  const res = await fetch(kernelsUrl);
  if (!res.ok) throw new Error(`Cannot load kernels: fetching ${kernelsUrl} gave HTTP ${res.status}`);
  kernels = await WebAssembly.compile(await res.arrayBuffer());
  provideKernelsModule(kernels);
  const code = await fetch(shardUrl);
  if (!code.ok) throw new Error(`Cannot load the shard worker: fetching ${shardUrl} gave HTTP ${code.status}`);
  shardWorkerUrl = URL.createObjectURL(new Blob([
    await code.text()
  ], {
    type: "text/javascript"
  }));
  ensureSharedArrayBuffer();
  return {
    crossOriginIsolated: isolated(),
    hardwareConcurrency: navigator.hardwareConcurrency
  };
}
function spawnShardWorker() {
  const w = new Worker(shardWorkerUrl, {
    type: "module"
  });
  w.postMessage({
    type: "kernels",
    module: kernels
  });
  return w;
}
function newSession() {
  return new ChatSession(engine, {
    template,
    maxNewTokens: CHAT_DEFAULTS.n,
    sampler: {
      temperature: CHAT_DEFAULTS.temp,
      topK: CHAT_DEFAULTS.topK,
      topP: CHAT_DEFAULTS.topP,
      repeatPenalty: CHAT_DEFAULTS.repeatPenalty,
      repeatLastN: CHAT_DEFAULTS.repeatLastN,
      seed: Math.floor(Math.random() * 2 ** 31)
    }
  });
}
async function load(id, source, name, p) {
  if (!kernels) throw new Error("Cannot load a model: the engine is not initialised");
  session = void 0;
  engine?.close();
  engine = void 0;
  const t0 = performance.now();
  let blob;
  if (typeof source === "string") {
    const res = await fetch(source);
    if (!res.ok) throw new Error(`Cannot load model "${source}": HTTP ${res.status}`);
    blob = await res.blob();
    name ??= source;
  } else {
    blob = source;
    name ??= source.name ?? "model";
  }
  const threads = p.threads ?? (isolated() ? navigator.hardwareConcurrency || 1 : 1);
  if (!isolated() && threads > 1) {
    throw new Error(`Cannot run ${threads} threads: the page is not cross-origin isolated (serve it with deno task web)`);
  }
  let shown = -1;
  engine = await loadEngineFromBlob(blob, {
    threads,
    contextSize: p.contextSize,
    minShards: p.minShards,
    spawnWorker: spawnShardWorker,
    onProgress: (done, total) => {
      const pct = Math.floor(100 * done / total);
      if (pct !== shown) post({
        type: "progress",
        id,
        done,
        total
      });
      shown = pct;
    }
  }, name);
  template = p.template ? getTemplate(p.template) : templateOfMetadata(engine.metadata, engine.config.vocabSize);
  session = newSession();
  const c = engine.config;
  return {
    name,
    nBytes: blob.size,
    dim: c.dim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    vocabSize: c.vocabSize,
    contextSize: engine.contextSize,
    nThreads: engine.nThreads,
    nShards: engine.nShards,
    template: template.name,
    loadMs: performance.now() - t0
  };
}
function requireEngine() {
  if (!engine) throw new Error("Cannot generate: no model is loaded (pick a .gguf first)");
  return engine;
}
async function runGenerate(id, prompt, p) {
  const e = requireEngine();
  const o = {
    ...GENERATE_DEFAULTS,
    ...p
  };
  checkParams(o);
  const seed = o.seed < 0 ? Math.floor(Math.random() * 2 ** 31) : o.seed;
  const sampler = new Sampler({
    temperature: o.temp,
    topK: o.topK,
    topP: o.topP,
    repeatPenalty: o.repeatPenalty,
    repeatLastN: o.repeatLastN,
    seed
  });
  if (typeof prompt !== "string") throw new TypeError(`Cannot generate: the prompt must be a string`);
  const tok = e.tokenizer;
  const promptIds = prompt === "" ? o.bos ? [
    tok.bosId
  ] : [] : tok.encode(prompt, {
    bos: o.bos
  });
  const decoder2 = new StreamingDecoder(tok);
  const signal = running.signal;
  const ids = [];
  session = void 0;
  const stoppable = {
    contextSize: e.contextSize,
    tokenizer: tok,
    eval: async (tokens, startPos) => {
      await yieldTurn();
      if (signal.aborted) throw new Stopped();
      return e.eval(tokens, startPos);
    }
  };
  try {
    const r = await generate(stoppable, sampler, promptIds, {
      maxTokens: o.n,
      stopAt: o.ignoreEos ? [] : void 0,
      onToken: (t) => {
        ids.push(t);
        const s = decoder2.push(t);
        if (s) post({
          type: "text",
          id,
          text: s
        });
      }
    });
    const rest = decoder2.flush();
    if (rest) post({
      type: "text",
      id,
      text: rest
    });
    const { promptMs, generateMs } = r;
    return {
      prompt_ids: promptIds,
      ids: r.ids,
      text: tok.decode(r.ids),
      seed,
      promptMs,
      generateMs,
      stop: r.stop
    };
  } catch (err) {
    if (!(err instanceof Stopped)) throw err;
    return {
      prompt_ids: promptIds,
      ids,
      text: tok.decode(ids),
      seed,
      promptMs: 0,
      generateMs: 0,
      stop: "stopped"
    };
  }
}
function checkParams(o) {
  const int = (v, name, min) => {
    if (!Number.isSafeInteger(v) || v < min) {
      throw new RangeError(`Cannot generate: ${name} must be an integer \u2265 ${min}, got ${JSON.stringify(v)}`);
    }
  };
  const num2 = (v, name) => {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new RangeError(`Cannot generate: ${name} must be a finite number, got ${JSON.stringify(v)}`);
    }
  };
  int(o.n, "n", 0);
  int(o.seed, "seed", -1);
  int(o.topK, "topK", Number.MIN_SAFE_INTEGER);
  int(o.repeatLastN, "repeatLastN", -1);
  num2(o.temp, "temp");
  num2(o.topP, "topP");
  num2(o.repeatPenalty, "repeatPenalty");
}
async function runChat(id, text) {
  requireEngine();
  session ??= newSession();
  const r = await session.respond(text, {
    signal: running.signal,
    onText: (s) => post({
      type: "text",
      id,
      text: s
    })
  });
  return {
    text: r.text,
    ids: r.tokenIds,
    stop: r.stopReason,
    nPromptTokens: r.nPromptTokens,
    promptMs: r.promptMs,
    nGenerated: r.nGenerated,
    generateMs: r.generateMs
  };
}
var queue = Promise.resolve();
self.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === "stop") {
    running?.abort();
    return;
  }
  queue = queue.then(async () => {
    running = new AbortController();
    try {
      let result;
      if (m.type === "init") result = await init(m.kernelsUrl, m.shardWorkerUrl);
      else if (m.type === "load") result = await load(m.id, m.source, m.name, m.params);
      else if (m.type === "generate") result = await runGenerate(m.id, m.prompt, m.params);
      else if (m.type === "chat") result = await runChat(m.id, m.text);
      else if (m.type === "reset") {
        if (engine) session = newSession();
        result = null;
      }
      post({
        type: "done",
        id: m.id,
        result
      });
    } catch (err) {
      const e = err;
      post({
        type: "error",
        id: m.id,
        message: e.message ?? String(err),
        hint: e.hint
      });
    } finally {
      running = void 0;
    }
  });
};
