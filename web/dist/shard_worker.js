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

// src/kernels/kernels.ts
function storedTypeOf(fileDtype, cols) {
  if (fileDtype === "F32" || fileDtype === "F16" || fileDtype === "Q4_0" || fileDtype === "Q8_0") return fileDtype;
  if (isQuantized(fileDtype) && cols % 32 === 0) return "Q8_0";
  return "F32";
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

// src/core/errors.ts
var UnsupportedError = class extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "UnsupportedError";
  }
};

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

// src/model/shard.ts
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
function waitForCommand(ctrl, seen) {
  while (Atomics.load(ctrl, CTRL.COMMAND) === seen) Atomics.wait(ctrl, CTRL.COMMAND, seen, 1e3);
  return {
    seen: Atomics.load(ctrl, CTRL.COMMAND),
    forward: Atomics.load(ctrl, CTRL.OP) === 1
  };
}
function postFailure(ctrl) {
  Atomics.store(ctrl, CTRL.FAILED, 1);
  Atomics.notify(ctrl, CTRL.ROUND);
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
  constructor({ plan, kernels, tensors, readInto, exchange, control, onTensor }) {
    this.plan = plan;
    this.#k = kernels;
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
    const load = (kind, layer) => {
      const t = tensor(kind, layer);
      const [r0, r1] = ownRows(plan, kind);
      const [c0, c1] = ownCols(plan, kind);
      const fullCols = t.shape.length === 2 ? t.shape[1] : t.shape[0];
      const cols = c1 - c0;
      const rows = r1 - r0;
      if (t.shape.length === 1) {
        const ptr = kernels.alloc(cols * 4);
        kernels.loadRows(t.dtype, "F32", readBytes(readInto, t, 0, 1, fullCols), ptr, 1, cols);
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
      slice.ptr = kernels.allocMatrix(stored, rows, cols);
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
        kernels.loadMatrixRows(slice, t.dtype, bytes, r, n);
      }
      onTensor?.();
      return slice;
    };
    for (let l = 0; l < c.nLayers; l++) {
      const m = /* @__PURE__ */ new Map();
      for (const kind of LAYER_KINDS) m.set(kind, load(kind, l));
      this.#layers.push(m);
    }
    this.#outputNorm = load("output_norm");
    this.#output = load("output");
    const hs = c.headSize;
    const kvMul = c.nHeads / c.nKvHeads;
    this.#ownKv = (plan.kvHead1 - plan.kvHead0) * hs;
    this.#ownQ = this.#ownKv * kvMul;
    const f = 4;
    this.#x = kernels.alloc(B * c.dim * f);
    this.#xb = kernels.alloc(B * c.dim * f);
    this.#q = kernels.alloc(B * Math.max(1, this.#ownQ) * f);
    this.#kv = kernels.alloc(B * Math.max(1, this.#ownKv) * f);
    this.#att = kernels.alloc(B * Math.max(1, this.#ownQ) * f);
    this.#full = kernels.alloc(B * Math.max(c.dim, c.hiddenDim) * f);
    const maxRows = Math.max(this.#ownQ, plan.dimRow1 - plan.dimRow0, plan.hidRow1 - plan.hidRow0, 1);
    this.#rows = kernels.alloc(B * maxRows * f);
    this.#hb2 = kernels.alloc(B * Math.max(1, plan.hidRow1 - plan.hidRow0) * f);
    this.#logits = kernels.alloc(B * Math.max(1, plan.vocabRow1 - plan.vocabRow0) * f);
    const kvBytes = c.nLayers * (plan.nSlots ?? 1) * plan.contextSize * Math.max(1, this.#ownKv) * (plan.kvType === "f16" ? 2 : 4);
    this.#keyCache = kernels.alloc(kvBytes);
    this.#valueCache = kernels.alloc(kvBytes);
    kernels.scratch(B, Math.max(c.dim, c.hiddenDim));
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

// src/core/byte_source.ts
function readFresh(src, byteOffset, nBytes) {
  const dst = new Uint8Array(nBytes);
  src.readInto(byteOffset, dst);
  return dst;
}
function readFileAt(file, name, byteOffset, dst) {
  file.seekSync(byteOffset, 0);
  let done = 0;
  while (done < dst.length) {
    const n = file.readSync(dst.subarray(done));
    if (n === null || n === 0) throw new RangeError(`Cannot read "${name}": file ended at byte ${byteOffset + done}`);
    done += n;
  }
}
function checkRange(src, byteOffset, nBytes) {
  if (!Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(nBytes) || byteOffset < 0 || nBytes < 0 || byteOffset + nBytes > src.size) {
    throw new RangeError(`Cannot read ${nBytes} bytes at offset ${byteOffset}: source${src.name ? ` "${src.name}"` : ""} has ${src.size} bytes`);
  }
}

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

// src/model/shard_worker.ts
self.onmessage = async (e) => {
  const init = e.data;
  const ctrl = new Int32Array(init.control);
  const shards = [];
  let file;
  try {
    let readInto;
    if (init.path !== void 0) {
      const f = Deno.openSync(init.path, {
        read: true
      }), path = init.path;
      file = f;
      readInto = (off, dst) => readFileAt(f, path, off, dst);
    } else if (init.blob !== void 0) {
      const src = new BlobSource(init.blob);
      readInto = (off, dst) => src.readInto(off, dst);
    } else {
      const all = new Uint8Array(init.bytes);
      readInto = (off, dst) => dst.set(all.subarray(off, off + dst.length));
    }
    for (const plan of init.plans) {
      const kernels = await createKernels(init.kernels);
      const progress = () => self.postMessage({
        type: "progress"
      });
      const { tensors, exchange, control } = init;
      shards.push(new Shard({
        plan,
        kernels,
        tensors,
        readInto,
        exchange,
        control,
        onTensor: progress
      }));
    }
  } catch (err) {
    self.postMessage({
      type: "error",
      message: err.message
    });
    return;
  } finally {
    file?.close();
  }
  let seen = Atomics.load(ctrl, CTRL.COMMAND);
  self.postMessage({
    type: "ready",
    memoryBytes: shards.reduce((a, s) => a + s.memoryBytes, 0)
  });
  for (; ; ) {
    const command = waitForCommand(ctrl, seen);
    seen = command.seen;
    if (!command.forward) break;
    try {
      runShards(shards, ctrl, init.nThreads);
    } catch (err) {
      postFailure(ctrl);
      self.postMessage({
        type: "error",
        message: err.message
      });
    }
  }
  self.close();
};

// web/src/shard_worker.ts
var engineOnMessage = self.onmessage;
self.onmessage = (e) => {
  if (e.data?.type === "kernels") {
    provideKernelsModule(e.data.module);
    return;
  }
  engineOnMessage?.(e);
};
