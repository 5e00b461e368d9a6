/**
 * Trainable parameters and the linear layer of a training step: a base weight that is either trainable f32 or
 * frozen in its file type (F32, F16, Q8_0, Q4_0 — dequantized on the fly by the kernels), plus an optional LoRA
 * adapter y += scaling · B·A·dropout(x) with PEFT's scaling alpha/r, A kaiming-uniform(a=√5) and B = 0.
 * see: peft tuners/lora/layer.py (Linear.forward, reset_lora_parameters), torch.nn.init.kaiming_uniform_
 */
import { type FrozenWeight, type TrainKernels, xoshiro128ss } from "../kernels/train_kernels.ts";

/** The modules a LoRA may wrap, in PEFT's (HF) names. */
export type LoraTarget = "q_proj" | "k_proj" | "v_proj" | "o_proj" | "gate_proj" | "up_proj" | "down_proj";
export const LORA_TARGETS: readonly LoraTarget[] = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
];

/** LoRA hyperparameters as PEFT's LoraConfig names them (r, lora_alpha, lora_dropout, target_modules). */
export interface LoraOptions {
  r: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
}

/** Checks LoRA options; throws RangeError naming the bad field. */
export function validateLoraOptions(o: LoraOptions): LoraOptions {
  if (!Number.isInteger(o.r) || o.r <= 0 || o.r > 4096) {
    throw new RangeError(`Cannot create LoRA: r is ${o.r}, expected an integer in [1, 4096]`);
  }
  if (!Number.isFinite(o.alpha) || o.alpha <= 0) {
    throw new RangeError(`Cannot create LoRA: alpha is ${o.alpha}, expected a positive number`);
  }
  if (!(o.dropout >= 0 && o.dropout < 1)) {
    throw new RangeError(`Cannot create LoRA: dropout is ${o.dropout}, expected a value in [0, 1)`);
  }
  if (o.targets.length === 0) throw new RangeError("Cannot create LoRA: no target modules");
  for (const t of o.targets) {
    if (!LORA_TARGETS.includes(t)) {
      throw new RangeError(`Cannot create LoRA: unknown target module "${t}", expected one of ${LORA_TARGETS}`);
    }
  }
  return o;
}

/**
 * A seeded 32-bit PRNG (xoshiro128**) whose whole state is four words, so a checkpoint can restore it exactly.
 * see: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (xoshiro128**)
 */
export class TrainRng {
  readonly #s = new Uint32Array(4);
  constructor(seed: number) {
    // splitmix32 expands the seed into the four state words (never all zero)
    let z = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
      this.#s[i] = (t ^ (t >>> 16)) >>> 0;
    }
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }
  /** The next 32-bit output. */
  nextU32(): number {
    return xoshiro128ss(this.#s);
  }
  /** The live state words (TrainKernels.dropout advances them in place). */
  get words(): Uint32Array {
    return this.#s;
  }
  /** A float uniform in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextU32() / 4294967296;
  }
  get state(): number[] {
    return Array.from(this.#s);
  }
  set state(words: number[]) {
    if (words.length !== 4 || words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new RangeError("Cannot restore RNG state: expected four uint32 words");
    }
    this.#s.set(words);
  }
}

/**
 * PEFT's lora_A init: kaiming_uniform_(a=√5) on (r, nIn) gives bound = gain·√(3/fan_in) with gain = √(2/(1+5)),
 * i.e. U(−1/√nIn, 1/√nIn).
 */
export function kaimingUniformA(rng: TrainRng, r: number, nIn: number): Float32Array {
  const bound = 1 / Math.sqrt(nIn);
  const a = new Float32Array(r * nIn);
  for (let i = 0; i < a.length; i++) a[i] = (2 * rng.nextFloat() - 1) * bound;
  return a;
}

/** A named tensor the optimizer updates; `grad` accumulates over micro-batches until the optimizer zeroes it. */
export class Param {
  readonly grad: Float32Array;
  constructor(
    /** The name it is saved under (PEFT key, or HF name in full mode). */
    readonly name: string,
    readonly shape: number[],
    readonly data: Float32Array,
    /** Whether AdamW's weight decay applies (matrices yes, norm vectors no). */
    readonly decay = true,
  ) {
    if (data.length !== shape.reduce((a, b) => a * b, 1)) {
      throw new RangeError(`Cannot create parameter "${name}": ${data.length} values for shape [${shape}]`);
    }
    this.grad = new Float32Array(data.length);
  }
}

/** A LoRA pair on one linear: A (r, nIn), B (nOut, r). */
export interface LoraWeights {
  a: Param;
  b: Param;
  r: number;
  scaling: number;
  dropout: number;
}

/** Grows a scratch buffer to at least n floats (reallocating through the kernels only when too small). */
function grow(k: TrainKernels, buf: Float32Array, n: number): Float32Array {
  return buf.length >= n ? buf : k.allocF32(n);
}

/**
 * y = x Wᵀ (+ scaling · (dropout(x) Aᵀ) Bᵀ) over `rows` rows: X (rows, nIn), W (nOut, nIn), Y (rows, nOut).
 * The weight is trainable f32 (`weight`), frozen f32 (`frozenF32`) or frozen in a quantized file type (`frozen`).
 * Forward keeps dropout(x) and s·(dropout(x) Aᵀ) for backward (one batch in flight per layer).
 */
export class Linear {
  lora?: LoraWeights;
  #xd: Float32Array = new Float32Array(0); // (rows, nIn) dropout(x) when dropout > 0 in training
  #mask = new Uint8Array(0); // (rows, nIn) kept positions
  #su: Float32Array = new Float32Array(0); // (rows, r) scaling · xd Aᵀ
  #tmp: Float32Array = new Float32Array(0); // (rows, r) scratch
  #bt: Float32Array = new Float32Array(0); // (r, nOut) Bᵀ
  #dropped = false;

  constructor(
    readonly nIn: number,
    readonly nOut: number,
    readonly base: { weight: Param } | { frozenF32: Float32Array } | { frozen: FrozenWeight },
  ) {}

  /** The trainable weight, when there is one. */
  get weight(): Param | undefined {
    return "weight" in this.base ? this.base.weight : undefined;
  }

  /** Y (rows, nOut) = X Wᵀ (+ LoRA). Overwrites y. `rng` given = training (dropout active). */
  forward(k: TrainKernels, y: Float32Array, x: Float32Array, rows: number, rng?: TrainRng): void {
    const { nIn, nOut } = this;
    const b = this.base;
    // exact-length views: buffers may be sized for more rows (the kernels check lengths)
    y = y.subarray(0, rows * nOut);
    x = x.subarray(0, rows * nIn);
    if ("weight" in b) k.matmulF32(y, x, b.weight.data, rows, nIn, nOut);
    else if ("frozenF32" in b) k.matmulF32(y, x, b.frozenF32, rows, nIn, nOut);
    else k.matmulFrozen(y, x, b.frozen, rows);
    const lo = this.lora;
    if (!lo) return;
    const n = rows * nIn;
    let xd = x;
    this.#dropped = rng !== undefined && lo.dropout > 0;
    if (this.#dropped) {
      this.#xd = grow(k, this.#xd, n);
      if (this.#mask.length < n) this.#mask = new Uint8Array(n);
      xd = this.#xd.subarray(0, n);
      k.dropout(xd, this.#mask.subarray(0, n), x, n, lo.dropout, rng!.words);
    }
    const r = lo.r;
    this.#su = grow(k, this.#su, rows * r);
    const su = this.#su.subarray(0, rows * r);
    k.matmulF32(su, xd, lo.a.data, rows, nIn, r); // (rows, nIn) @ A (r, nIn)ᵀ -> (rows, r)
    for (let i = 0; i < rows * r; i++) su[i] *= lo.scaling;
    // y (rows, nOut) += su (rows, r) @ Bᵀ: the accumulating product dX += dY W with W = Bᵀ (r, nOut)
    this.#bt = grow(k, this.#bt, r * nOut);
    const bt = this.#bt.subarray(0, r * nOut), bd = lo.b.data;
    for (let o = 0; o < nOut; o++) for (let j = 0; j < r; j++) bt[j * nOut + o] = bd[o * r + j];
    k.matmulF32BackwardInput(y, su, bt, rows, nOut, r);
  }

  /**
   * Backward of the last forward: dW += dYᵀ X when trainable, LoRA grads, and dX += dY W (+ LoRA path) when `dx`
   * is given. `x` is the same input the forward saw.
   */
  backward(k: TrainKernels, dx: Float32Array | undefined, dy: Float32Array, x: Float32Array, rows: number): void {
    const { nIn, nOut } = this;
    const b = this.base;
    dy = dy.subarray(0, rows * nOut);
    x = x.subarray(0, rows * nIn);
    dx = dx?.subarray(0, rows * nIn);
    if ("weight" in b) k.matmulF32BackwardWeight(b.weight.grad, dy, x, rows, nIn, nOut);
    if (dx) {
      if ("weight" in b) k.matmulF32BackwardInput(dx, dy, b.weight.data, rows, nIn, nOut);
      else if ("frozenF32" in b) k.matmulF32BackwardInput(dx, dy, b.frozenF32, rows, nIn, nOut);
      else k.matmulFrozenBackwardInput(dx, dy, b.frozen, rows);
    }
    const lo = this.lora;
    if (!lo) return;
    const r = lo.r;
    k.matmulF32BackwardWeight(lo.b.grad, dy, this.#su.subarray(0, rows * r), rows, r, nOut); // dB += dYᵀ (s·u)
    this.#tmp = grow(k, this.#tmp, rows * r);
    const du = this.#tmp.subarray(0, rows * r); // (rows, r) = s · dY B
    du.fill(0);
    k.matmulF32BackwardInput(du, dy, lo.b.data, rows, r, nOut);
    for (let i = 0; i < rows * r; i++) du[i] *= lo.scaling;
    const xd = this.#dropped ? this.#xd.subarray(0, rows * nIn) : x;
    k.matmulF32BackwardWeight(lo.a.grad, du, xd, rows, nIn, r); // dA += duᵀ xd
    if (!dx) return;
    if (!this.#dropped) {
      k.matmulF32BackwardInput(dx, du, lo.a.data, rows, nIn, r); // dX += du A
      return;
    }
    // dX += (du A) ⊙ mask / keep: the product goes to a scratch row block first
    const n = rows * nIn;
    const dxd = this.#xd.subarray(0, n); // xd is no longer needed: reuse it for du A
    dxd.fill(0);
    k.matmulF32BackwardInput(dxd, du, lo.a.data, rows, nIn, r);
    k.dropoutBackward(dx, dxd, this.#mask.subarray(0, n), n, lo.dropout);
  }
}
