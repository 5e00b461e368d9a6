/**
 * AdamW exactly as torch.optim.AdamW (PyTorch 1.13, single-tensor path, amsgrad off, maximize off): decoupled
 * weight decay p ← p·(1 − lr·wd), then m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², and
 * p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε). Every intermediate is rounded to f32 as torch's f32 tensors.
 * Also global-norm clipping as torch.nn.utils.clip_grad_norm_ (norm 2).
 * see: torch/optim/adamw.py `_single_tensor_adamw`, torch/nn/utils/clip_grad.py
 */
import { scalarTrainKernels, type TrainKernels } from "../kernels/train_kernels.ts";
import type { Param } from "./lora.ts";

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Where the element-wise update runs (default scalarTrainKernels; every implementation gives the same bits). */
  kernels?: TrainKernels;
}

const f = Math.fround;

/** AdamW state for a fixed list of parameters: first and second moments and the step count. */
export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  /** Optimizer steps taken (torch's state["step"]). */
  step = 0;
  readonly #kernels: TrainKernels;

  constructor(readonly params: Param[], o: AdamWOptions = {}) {
    [this.beta1, this.beta2] = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0;
    this.#kernels = o.kernels ?? scalarTrainKernels;
    for (const [k, v] of [["beta1", this.beta1], ["beta2", this.beta2]] as const) {
      if (!(v >= 0 && v < 1)) throw new RangeError(`Cannot create AdamW: ${k} ${v} must be in [0, 1)`);
    }
    if (!(this.eps > 0)) throw new RangeError(`Cannot create AdamW: eps ${this.eps} must be positive`);
    if (!(this.weightDecay >= 0)) throw new RangeError(`Cannot create AdamW: weight decay ${this.weightDecay} < 0`);
    this.m = params.map((p) => new Float32Array(p.data.length));
    this.v = params.map((p) => new Float32Array(p.data.length));
  }

  /** One update at learning rate `lr` from each Param.grad (grads are left as they are). */
  update(lr: number): void {
    this.step++;
    const b1 = this.beta1, b2 = this.beta2;
    const bc1 = 1 - Math.pow(b1, this.step);
    const bc2 = 1 - Math.pow(b2, this.step);
    const stepSize = lr / bc1; // python floats (f64), as torch computes them
    const bc2Sqrt = Math.sqrt(bc2);
    const ob1 = f(1 - b1), ob2 = f(1 - b2), fb1 = f(b1), fb2 = f(b2), eps = f(this.eps);
    for (let pi = 0; pi < this.params.length; pi++) {
      const p = this.params[pi];
      this.#kernels.adamw(p.data, p.grad, this.m[pi], this.v[pi], p.data.length, {
        decay: p.decay ? f(1 - lr * this.weightDecay) : 1,
        beta1: fb1,
        oneMinusBeta1: ob1,
        beta2: fb2,
        oneMinusBeta2: ob2,
        negStepSize: f(-stepSize),
        bc2Sqrt: f(bc2Sqrt),
        eps,
      });
    }
  }
}

/** Sets every grad to zero. */
export function zeroGrads(params: Param[]): void {
  for (const p of params) p.grad.fill(0);
}

/**
 * clip_grad_norm_(params, maxNorm): total = ‖(‖g_p‖₂)_p‖₂; grads ×= min(1, maxNorm / (total + 1e-6)).
 * Returns the total norm before clipping. maxNorm ≤ 0 or Infinity only measures.
 */
export function clipGradNorm(params: Param[], maxNorm: number): number {
  let total = 0;
  for (const p of params) {
    let s = 0;
    const g = p.grad;
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
    const n = f(Math.sqrt(s));
    total += n * n;
  }
  const norm = f(Math.sqrt(total));
  if (maxNorm > 0 && Number.isFinite(maxNorm)) {
    const coef = Math.min(1, f(maxNorm / f(norm + 1e-6)));
    if (coef < 1) { for (const p of params) for (let i = 0; i < p.grad.length; i++) p.grad[i] = f(p.grad[i] * coef); }
  }
  return norm;
}
