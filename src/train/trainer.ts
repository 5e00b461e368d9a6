/**
 * The Trainer: builds the trainable model from a frozen base for one of the seed's recipes (full, stage 1 =
 * embeddings + lm_head only, LoRA (+ modules_to_save)), and runs optimizer steps as transformers' Trainer does:
 * gradient accumulation (each micro-batch's mean loss / steps), clip_grad_norm_, AdamW, LambdaLR schedule stepped
 * after the optimizer. State get/set gives an exact resume. Names are PEFT's, so the adapter writer saves them as is.
 * see: transformers trainer.py (_inner_training_loop), peft save_pretrained / get_peft_model_state_dict
 */
import { permuteMetaToHf } from "../formats/rope_permute.ts";
import type { FrozenType, FrozenWeight, TrainKernels } from "../kernels/train_kernels.ts";
import { scalarTrainKernels } from "../kernels/train_kernels.ts";
import type { LlamaConfig } from "../model/config.ts";
import { validateConfig } from "../model/config.ts";
import type { LlamaWeightsF32 } from "../model/llama.ts";
import { expectedShape, type TensorKind, tensorName } from "../model/tensor_names.ts";
import type { TensorTable } from "../model/weights.ts";
import { dequantizeToF32 } from "../model/weights.ts";
import { dequantizeRef } from "../quant/dequantize.ts";
import {
  kaimingUniformA,
  Linear,
  LORA_TARGETS,
  type LoraOptions,
  type LoraTarget,
  Param,
  TrainRng,
  validateLoraOptions,
} from "./lora.ts";
import { type TrainBatch, type TrainLayer, TrainModel } from "./model.ts";
import { AdamW, clipGradNorm, zeroGrads } from "./optimizer.ts";
import { lrLambda, SCHEDULE_TYPES, type ScheduleType, warmupSteps } from "./schedule.ts";

/** A frozen base in GGUF / Meta row layout: matrices in their file type, norms as f32. */
export interface TrainBase {
  config: LlamaConfig;
  /** tok_embd, output and the per-layer matrices; `output` is absent when tied (then tok_embd is the head). */
  matrix(kind: TensorKind, layer?: number): FrozenWeight;
  vector(kind: "attn_norm" | "ffn_norm" | "output_norm", layer?: number): Float32Array;
  tiedOutput: boolean;
}

/** GGUF dtypes a base keeps in their file type (others are dequantized to f32 once). */
export const FROZEN_TYPES: readonly string[] = ["F32", "F16", "Q8_0", "Q4_0"];

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Where a base's frozen matrices are placed (e.g. WasmTrainKernels.allocFrozenWeight: no second copy in JS). */
export type FrozenAllocator = (type: FrozenType, nOut: number, nIn: number) => FrozenWeight;

/**
 * A base from a model file's tensor table (GGUF via readGguf, llama2.c via readLlama2c); reads each matrix once,
 * on first use. With `alloc`, matrices the kernels multiply (not tok_embd, which is only gathered) are read
 * straight into the allocator's bytes.
 */
export function trainBaseFromTable(table: TensorTable, alloc?: FrozenAllocator): TrainBase {
  const c = validateConfig(table.config);
  const cache = new Map<string, FrozenWeight>();
  const matrix = (kind: TensorKind, layer?: number): FrozenWeight => {
    const key = `${kind}.${layer}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const t = table.info(kind, layer);
    const [nOut, nIn] = t.shape;
    let w: FrozenWeight;
    if (FROZEN_TYPES.includes(t.dtype) && alloc && kind !== "tok_embd") {
      w = alloc(t.dtype as FrozenType, nOut, nIn);
      if (w.bytes.length !== t.nBytes || w.nOut !== nOut || w.nIn !== nIn) {
        throw new RangeError(`Cannot place tensor "${t.name}": the allocator gave ${w.bytes.length} bytes`);
      }
      table.file.source.readInto(t.byteOffset, w.bytes);
    } else if (FROZEN_TYPES.includes(t.dtype)) {
      w = { type: t.dtype as FrozenType, bytes: table.file.source.read(t.byteOffset, t.nBytes), nOut, nIn };
    } else {
      w = { type: "F32", bytes: f32Bytes(table.f32(kind, layer)), nOut, nIn };
    }
    cache.set(key, w);
    return w;
  };
  return {
    config: c,
    matrix,
    vector: (kind, layer) => table.f32(kind, layer),
    tiedOutput: !table.hasOutput,
  };
}

/** A base from f32 weights (e.g. a base already merged with earlier adapters); arrays are used, not copied. */
export function trainBaseFromF32(config: LlamaConfig, w: LlamaWeightsF32): TrainBase {
  const c = validateConfig(config);
  const arrays: Record<string, Float32Array | Float32Array[]> = {
    tok_embd: w.tokEmbd,
    output: w.output,
    attn_q: w.attnQ,
    attn_k: w.attnK,
    attn_v: w.attnV,
    attn_output: w.attnOutput,
    ffn_gate: w.ffnGate,
    ffn_up: w.ffnUp,
    ffn_down: w.ffnDown,
  };
  return {
    config: c,
    matrix(kind, layer) {
      const src = arrays[kind];
      if (!src) throw new RangeError(`Cannot read base matrix "${kind}": not a matrix`);
      const shape = expectedShape(c, kind);
      const a = Array.isArray(src) ? src[layer ?? -1] : src;
      if (!a || a.length !== shape[0] * shape[1]) {
        throw new RangeError(`Cannot read base matrix "${kind}" at layer ${layer}: missing or misshapen`);
      }
      return { type: "F32", bytes: f32Bytes(a), nOut: shape[0], nIn: shape[1] };
    },
    vector(kind, layer) {
      const a = kind === "output_norm" ? w.outputNorm : kind === "attn_norm" ? w.attnNorm[layer!] : w.ffnNorm[layer!];
      if (!a || a.length !== c.dim) throw new RangeError(`Cannot read base vector "${kind}" at layer ${layer}`);
      return a;
    },
    tiedOutput: w.output === w.tokEmbd,
  };
}

/** The training recipe: full fine-tuning, the seed's stage 1, or LoRA (stage 2 and SFT). */
export type TrainMode = "full" | "stage1" | "lora";
/** PEFT modules_to_save names we support. */
export type SavedModule = "embed_tokens" | "lm_head";

export interface TrainOptions {
  mode: TrainMode;
  lora?: LoraOptions;
  /** Default: both for stage1, none for lora (ignored in full mode: everything trains). */
  modulesToSave?: SavedModule[];
  lr: number;
  /** Default "linear" (transformers' default). */
  schedule?: ScheduleType;
  maxSteps: number;
  warmupRatio?: number;
  warmupSteps?: number;
  weightDecay?: number;
  /** Default 1.0; 0 or Infinity: no clipping. */
  maxGradNorm?: number;
  adamBetas?: [number, number];
  adamEps?: number;
  /** LoRA A init and dropout masks. Default 42. */
  seed?: number;
  /**
   * Keep only each layer's input and recompute its activations in backward (activation checkpointing: memory
   * of one layer's activations instead of all, ~1 extra forward). Bit-identical results. Default false.
   */
  recompute?: boolean;
}

/** What one optimizer step did. */
export interface StepResult {
  /** Optimizer steps done after this one. */
  step: number;
  /** Mean of the micro-batches' mean losses. */
  loss: number;
  /** The learning rate this step used. */
  lr: number;
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** Labelled positions over all micro-batches. */
  tokens: number;
}

/** A named tensor for the adapter writer (PEFT names, HF row layout). */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Everything needed to continue training exactly. */
export interface TrainerState {
  step: number;
  rng: number[];
  options: TrainOptions;
  /** "param/<name>", "adam_m/<name>", "adam_v/<name>" in the trainer's (GGUF) layout. */
  tensors: { name: string; data: Float32Array }[];
}

const PEFT_PREFIX = "base_model.model.";

/** The f32 values of a frozen matrix (a fresh array). */
function frozenToF32(w: FrozenWeight): Float32Array {
  if (w.type === "F32") return dequantizeToF32("F32", w.bytes, w.nOut * w.nIn);
  return dequantizeRef(w.type, w.bytes, w.nOut * w.nIn);
}

/**
 * A frozen Linear over the weight in its file type (F32 too): the kernels may keep it resident (the WASM ones copy
 * it into their memory once instead of per call).
 */
function frozenLinear(w: FrozenWeight): Linear {
  return new Linear(w.nIn, w.nOut, { frozen: w });
}

/**
 * Trains a LLaMA base with one recipe.
 *
 * @example
 * ```ts ignore
 * const trainer = new Trainer(trainBaseFromTable(table), { mode: "lora", lora: { r: 8, alpha: 32, dropout: 0.05,
 *   targets: ["q_proj", "v_proj"] }, modulesToSave: ["embed_tokens", "lm_head"], lr: 1e-4, maxSteps: 100 });
 * const { loss, lr, gradNorm } = trainer.step([batch]);
 * ```
 */
export class Trainer {
  readonly config: LlamaConfig;
  readonly options: Readonly<TrainOptions>;
  readonly model: TrainModel;
  /** Trainable parameters in optimizer order. */
  readonly params: Param[];
  readonly optimizer: AdamW;
  readonly warmup: number;
  readonly rng: TrainRng;
  readonly #baseCount: number;
  /** Names of LoRA B params whose rows are q/k heads: [nHeads] for the Meta→HF permutation on save. */
  readonly #ropeRows = new Map<string, number>();

  constructor(readonly base: TrainBase, options: TrainOptions, kernels: TrainKernels = scalarTrainKernels) {
    const c = this.config = validateConfig(base.config);
    this.options = options = checkOptions(options);
    const mode = options.mode;
    const seed = options.seed ?? 42;
    this.rng = new TrainRng(seed);
    const saved = new Set(mode === "full" ? ["embed_tokens", "lm_head"] : options.modulesToSave ?? []);
    const full = mode === "full";
    const params: Param[] = [];
    const hfName = (kind: TensorKind, layer?: number) => tensorName("hf", kind, layer);
    const savedName = (kind: TensorKind) => full ? hfName(kind) : PEFT_PREFIX + hfName(kind);

    const embFrozen = base.matrix("tok_embd");
    let tokEmbd: Param | FrozenWeight = embFrozen;
    if (saved.has("embed_tokens")) {
      tokEmbd = new Param(savedName("tok_embd"), [c.vocabSize, c.dim], frozenToF32(embFrozen));
      params.push(tokEmbd);
    }
    const vec = (kind: "attn_norm" | "ffn_norm" | "output_norm", layer?: number) => {
      const p = new Param(hfName(kind, layer), [c.dim], Float32Array.from(base.vector(kind, layer)), false);
      if (full) params.push(p);
      return p;
    };
    const targets = new Set(mode === "lora" ? options.lora!.targets : []);
    const layers: TrainLayer[] = [];
    for (let l = 0; l < c.nLayers; l++) {
      const lin = (kind: TensorKind, target: LoraTarget): Linear => {
        const w = base.matrix(kind, l);
        if (full) {
          const p = new Param(hfName(kind, l), [w.nOut, w.nIn], frozenToF32(w));
          params.push(p);
          return new Linear(w.nIn, w.nOut, { weight: p });
        }
        const linear = frozenLinear(w);
        if (targets.has(target)) {
          const lo = options.lora!;
          const stem = PEFT_PREFIX + hfName(kind, l).replace(/\.weight$/, "");
          const a = new Param(`${stem}.lora_A.weight`, [lo.r, w.nIn], kaimingUniformA(this.rng, lo.r, w.nIn));
          const b = new Param(`${stem}.lora_B.weight`, [w.nOut, lo.r], new Float32Array(w.nOut * lo.r));
          linear.lora = { a, b, r: lo.r, scaling: lo.alpha / lo.r, dropout: lo.dropout };
          params.push(a, b);
          if (kind === "attn_q") this.#ropeRows.set(b.name, c.nHeads);
          if (kind === "attn_k") this.#ropeRows.set(b.name, c.nKvHeads);
        }
        return linear;
      };
      const attnNorm = vec("attn_norm", l);
      const q = lin("attn_q", "q_proj"), k = lin("attn_k", "k_proj"), v = lin("attn_v", "v_proj");
      const o = lin("attn_output", "o_proj");
      const ffnNorm = vec("ffn_norm", l);
      const gate = lin("ffn_gate", "gate_proj"), down = lin("ffn_down", "down_proj"), up = lin("ffn_up", "up_proj");
      layers.push({ attnNorm, q, k, v, o, ffnNorm, gate, up, down });
    }
    const outputNorm = vec("output_norm");
    const headFrozen = base.tiedOutput ? embFrozen : base.matrix("output");
    let output: Linear;
    if (saved.has("lm_head")) {
      // a tied base's head starts as a copy of the embedding and trains separately (as PEFT's modules_to_save)
      const p = new Param(savedName("output"), [c.vocabSize, c.dim], frozenToF32(headFrozen));
      params.push(p);
      output = new Linear(c.dim, c.vocabSize, { weight: p });
    } else {
      output = frozenLinear(headFrozen);
    }
    // base parameter count: every matrix and norm once (a tied head counts once)
    const kvDim = c.nKvHeads * c.headSize;
    const perLayer = 2 * c.dim + 2 * c.dim * c.dim + 2 * kvDim * c.dim + 3 * c.dim * c.hiddenDim;
    this.#baseCount = c.nLayers * perLayer + c.dim + c.vocabSize * c.dim * (base.tiedOutput ? 1 : 2);
    this.params = params;
    this.model = new TrainModel(
      c,
      { tokEmbd, layers, outputNorm, output, trainNorms: full },
      kernels,
      options.recompute ?? false,
    );
    this.optimizer = new AdamW(params, {
      kernels,
      betas: options.adamBetas,
      eps: options.adamEps,
      weightDecay: options.weightDecay ?? 0,
    });
    this.warmup = warmupSteps(options.maxSteps, options.warmupRatio ?? 0, options.warmupSteps ?? 0);
  }

  /** Optimizer steps done. */
  get stepCount(): number {
    return this.optimizer.step;
  }

  /** The learning rate the next step will use. */
  get nextLr(): number {
    const o = this.options;
    return o.lr * lrLambda(o.schedule ?? "linear", this.optimizer.step, this.warmup, o.maxSteps);
  }

  /** One optimizer step over `microBatches` (gradient accumulation over all of them). */
  step(microBatches: TrainBatch[]): StepResult {
    if (microBatches.length === 0) throw new RangeError("Cannot train: a step needs at least one micro-batch");
    zeroGrads(this.params);
    const g = microBatches.length;
    let lossSum = 0, counted = 0, tokens = 0;
    for (const mb of microBatches) {
      const loss = this.model.forward(mb, this.rng);
      if (this.model.nTargets === 0) continue; // no labelled position: contributes nothing (HF would give NaN)
      this.model.backward(1 / g);
      lossSum += loss;
      counted++;
      tokens += this.model.nTargets;
    }
    const gradNorm = clipGradNorm(this.params, this.options.maxGradNorm ?? 1);
    const lr = this.nextLr;
    this.optimizer.update(lr);
    return { step: this.optimizer.step, loss: counted ? lossSum / counted : NaN, lr, gradNorm, tokens };
  }

  /** Loss and gradients of one batch without an update (grads are zeroed first; no dropout unless `train`). */
  lossAndGrads(batch: TrainBatch, train = false): number {
    zeroGrads(this.params);
    const loss = this.model.forward(batch, train ? this.rng : undefined);
    this.model.backward(1);
    return loss;
  }

  /** Mean cross-entropy of a batch in eval mode (no dropout, no gradients). */
  evalLoss(batch: TrainBatch): { loss: number; nTokens: number } {
    const loss = this.model.forward(batch);
    return { loss, nTokens: this.model.nTargets };
  }

  /** Trainable and total parameter counts (total = base + LoRA; a modules_to_save copy is not counted twice). */
  parameterCounts(): { trainable: number; total: number } {
    let trainable = 0, lora = 0;
    for (const p of this.params) {
      trainable += p.data.length;
      if (/\.lora_[AB]\.weight$/.test(p.name)) lora += p.data.length;
    }
    return { trainable, total: this.#baseCount + lora };
  }

  /** The trainable tensors under PEFT's names, q/k LoRA B rows permuted to HF's rotate-half layout (copies). */
  adapterTensors(): NamedTensor[] {
    return this.params.map((p) => {
      const heads = this.#ropeRows.get(p.name);
      const data = heads === undefined ? p.data.slice() : permuteMetaToHf(p.data, heads, p.shape[1]);
      return { name: p.name, shape: p.shape.slice(), data };
    });
  }

  /** adapter_config.json for the adapter (PEFT LoraConfig fields, as the seed's released LoRAs carry them). */
  adapterConfig(baseModelNameOrPath: string | null = null): Record<string, unknown> {
    const o = this.options;
    return {
      base_model_name_or_path: baseModelNameOrPath,
      bias: "none",
      enable_lora: null,
      fan_in_fan_out: false,
      inference_mode: true,
      lora_alpha: o.lora?.alpha ?? 32,
      lora_dropout: o.lora?.dropout ?? 0,
      merge_weights: false,
      modules_to_save: o.mode === "lora" || o.mode === "stage1" ? [...(o.modulesToSave ?? [])] : null,
      peft_type: "LORA",
      r: o.lora?.r ?? 8,
      target_modules: o.mode === "lora" ? [...o.lora!.targets] : [],
      task_type: "CAUSAL_LM",
    };
  }

  /** A copy of everything a resume needs. */
  getState(): TrainerState {
    const tensors: { name: string; data: Float32Array }[] = [];
    this.params.forEach((p, i) => {
      tensors.push({ name: `param/${p.name}`, data: p.data.slice() });
      tensors.push({ name: `adam_m/${p.name}`, data: this.optimizer.m[i].slice() });
      tensors.push({ name: `adam_v/${p.name}`, data: this.optimizer.v[i].slice() });
    });
    return { step: this.optimizer.step, rng: this.rng.state, options: structuredClone(this.options), tensors };
  }

  /** Restores a state from getState() of a trainer built with the same base and options. */
  setState(state: TrainerState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new RangeError(`Cannot restore trainer: step ${state.step} is not a non-negative integer`);
    }
    const a = JSON.stringify(canonical(state.options)), b = JSON.stringify(canonical(this.options));
    if (a !== b) throw new RangeError(`Cannot restore trainer: options differ (saved ${a}, now ${b})`);
    const byName = new Map(state.tensors.map((t) => [t.name, t.data]));
    if (byName.size !== 3 * this.params.length) {
      throw new RangeError(`Cannot restore trainer: ${byName.size} tensors, expected ${3 * this.params.length}`);
    }
    const get = (name: string, n: number) => {
      const d = byName.get(name);
      if (!d) throw new RangeError(`Cannot restore trainer: tensor "${name}" is missing`);
      if (d.length !== n) {
        throw new RangeError(`Cannot restore trainer: "${name}" has ${d.length} values, expected ${n}`);
      }
      return d;
    };
    const checked = this.params.map((p) => [
      get(`param/${p.name}`, p.data.length),
      get(`adam_m/${p.name}`, p.data.length),
      get(`adam_v/${p.name}`, p.data.length),
    ]);
    this.rng.state = state.rng;
    this.params.forEach((p, i) => {
      p.data.set(checked[i][0]);
      this.optimizer.m[i].set(checked[i][1]);
      this.optimizer.v[i].set(checked[i][2]);
    });
    this.optimizer.step = state.step;
  }
}

function canonical(o: unknown): unknown {
  if (Array.isArray(o)) return o.map(canonical);
  if (o && typeof o === "object") {
    return Object.fromEntries(
      Object.entries(o as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([x], [y]) => x < y ? -1 : 1)
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return o;
}

/** Validates options; throws RangeError naming the bad field. */
export function checkOptions(o: TrainOptions): TrainOptions {
  if (!["full", "stage1", "lora"].includes(o.mode)) {
    throw new RangeError(`Cannot train: mode "${o.mode}" is not one of full, stage1, lora`);
  }
  if (o.mode === "lora") {
    if (!o.lora) throw new RangeError("Cannot train: mode lora needs lora options (r, alpha, dropout, targets)");
    validateLoraOptions(o.lora);
  }
  for (const m of o.modulesToSave ?? []) {
    if (m !== "embed_tokens" && m !== "lm_head") {
      throw new RangeError(`Cannot train: modules_to_save "${m}" is not embed_tokens or lm_head`);
    }
  }
  if (o.mode === "stage1" && o.modulesToSave === undefined) o = { ...o, modulesToSave: ["embed_tokens", "lm_head"] };
  if (o.mode === "stage1" && o.modulesToSave!.length === 0) {
    throw new RangeError("Cannot train: stage 1 with no modules_to_save has nothing to train");
  }
  if (!(o.lr >= 0 && Number.isFinite(o.lr))) throw new RangeError(`Cannot train: learning rate ${o.lr} invalid`);
  if (!Number.isInteger(o.maxSteps) || o.maxSteps <= 0) {
    throw new RangeError(`Cannot train: max steps ${o.maxSteps} must be a positive integer`);
  }
  if (o.schedule !== undefined && !SCHEDULE_TYPES.includes(o.schedule)) {
    throw new RangeError(`Cannot train: scheduler "${o.schedule}" is not one of ${SCHEDULE_TYPES}`);
  }
  if (o.maxGradNorm !== undefined && !(o.maxGradNorm >= 0)) {
    throw new RangeError(`Cannot train: max grad norm ${o.maxGradNorm} must be ≥ 0`);
  }
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new RangeError(`Cannot train: seed ${o.seed} invalid`);
  return o;
}

export { LORA_TARGETS };
