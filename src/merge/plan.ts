/**
 * The streaming merge plan: which bytes every output tensor is made of, checked before any work starts, then
 * computed one row block at a time. For a tensor W of the base and LoRAs L1…Ln (in the order given), as the
 * seed's merge_llama_with_chinese_lora(_low_mem).py does:
 *   1. vocabulary: embed_tokens / lm_head grow to each LoRA's tokenizer size in turn (new rows: vocab_resize.ts);
 *   2. a LoRA whose modules_to_save holds W replaces it wholesale (so only the last such LoRA matters);
 *   3. every later LoRA targeting W adds scaling·B·A (transposed with fan_in_fan_out), computed in f32
 *      (see addLoraDelta for the exact numerics), and the weight is held in fp16 between LoRAs for fp16 and bf16
 *      bases (the seed loads every base with torch_dtype=float16); f32 bases (GGUF F32, llama2.c) stay f32;
 *   4. q/k rows move between the base's RoPE layout, the LoRA's (always HF) and the output's (permute.ts).
 * Everything else is copied. See ../shared/data/seed/tests/merge_vectors.json for the golden formula.
 */
import type { DType } from "../core/dtypes.ts";
import { UserError } from "../core/errors.ts";
import type { LlamaConfig } from "../model/config.ts";
import { expectedShape, LAYER_KINDS, needsRopePermute, type TensorKind, tensorName } from "../model/tensor_names.ts";
import { type LoraAdapter, tensorKey } from "./lora.ts";
import { permuteRows, type RopeLayout, ropeRowMap } from "../formats/rope_permute.ts";
import { rowsCols, type SourceTensor } from "./source_tensor.ts";
import { describeVocabSize, initNewRow, RESIZE_SALT } from "./vocab_resize.ts";

/** A base checkpoint opened by any reader: its tensors by `tensorKey(kind, layer)`. */
export interface BaseCheckpoint {
  /** Where it came from, for messages. */
  label: string;
  format: "hf" | "meta" | "gguf" | "llama2c";
  /** Row layout of its q/k weights. */
  layout: RopeLayout;
  /** Dimensions; vocabSize = rows of the token embedding. */
  config: LlamaConfig;
  tensors: Map<string, SourceTensor>;
}

/** One LoRA's contribution to a tensor. */
export interface PlannedDelta {
  label: string;
  /** left (rows, r): B, or Aᵀ with fan_in_fan_out. */
  left: SourceTensor;
  /** right (r, cols): A, or Bᵀ with fan_in_fan_out (transposed on load). */
  right: SourceTensor;
  fanInFanOut: boolean;
  scaling: number;
}

/** How one output tensor is made. */
export interface PlannedTensor {
  key: string;
  kind: TensorKind;
  layer?: number;
  /** Final shape, row-major. */
  shape: number[];
  /** The matrix the deltas apply to: the base tensor, or the last modules_to_save replacement. */
  start: SourceTensor;
  /** q/k layout of `start` (a replacement is in HF layout). */
  startLayout: RopeLayout;
  /** Rows of `start`; rows from here to shape[0] are new vocabulary rows. */
  startRows: number;
  deltas: PlannedDelta[];
  /** Precision held between LoRAs: fp16 for fp16/bf16 bases (as the seed), undefined (f32) for f32 bases. */
  holdAs?: "F16" | "BF16";
}

/** A checked merge: the output config, tensors in canonical order, and warnings to show the user. */
export interface MergePlan {
  config: LlamaConfig;
  tensors: PlannedTensor[];
  warnings: string[];
}

/** Options of planMerge. */
export interface PlanOptions {
  /** Size of the tokenizer given with --tokenizer (the output's tokenizer), when any. */
  tokenizerSize?: number;
}

const fmt = (n: number) => n.toLocaleString("en-US");

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** A transposed view of a small 2-D SourceTensor (read whole; LoRA factors are rank × width). */
function transposed(t: SourceTensor): SourceTensor {
  const [rows, cols] = rowsCols(t.shape);
  let cache: Float32Array | undefined;
  return {
    name: `${t.name}ᵀ`,
    dtype: t.dtype,
    shape: [cols, rows],
    readRows(row0, nRows, dst = new Float32Array(nRows * rows)) {
      if (!cache) {
        const src = t.readRows(0, rows);
        cache = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) cache[c * rows + r] = src[r * cols + c];
      }
      const view = dst.subarray(0, nRows * rows);
      view.set(cache.subarray(row0 * rows, (row0 + nRows) * rows));
      return view;
    },
  };
}

/** Every (kind, layer) of a model, in GGUF/llama.cpp order: token_embd, blk.0 … blk.N-1, output_norm, output. */
export function canonicalOrder(nLayers: number): { kind: TensorKind; layer?: number }[] {
  const out: { kind: TensorKind; layer?: number }[] = [{ kind: "tok_embd" }];
  for (let l = 0; l < nLayers; l++) for (const kind of LAYER_KINDS) out.push({ kind, layer: l });
  out.push({ kind: "output_norm" }, { kind: "output" });
  return out;
}

/**
 * Chinese-Alpaca-Plus/Pro LoRAs: named so, or an Alpaca-vocabulary (49,954) adapter of rank ≥ 64 (the Plus/Pro
 * trainings; plain Chinese-Alpaca used r = 8).
 */
function looksAlpacaPlus(lora: LoraAdapter): boolean {
  const name = `${lora.label} ${lora.config.baseModelNameOrPath ?? ""}`.toLowerCase();
  return /alpaca[-_]?(plus|pro)/.test(name) || (lora.tokenizerSize === 49954 && lora.config.r >= 64);
}

/**
 * The one check that a tokenizer fits a model's embedding rows, used by merge, convert and anything else that pairs a
 * tokenizer with weights: a mismatch throws UserError naming both sizes and which tokenizer the weights belong with
 * (a tokenizer larger than the rows makes generation fail on the first id past them; a smaller one never emits the
 * model's last tokens and shifts nothing back). `what` opens the message ("Cannot convert: tokenizer.model").
 */
export function checkTokenizerFits(nTokens: number, nRows: number, what: string): void {
  if (nTokens === nRows) return;
  throw new UserError(
    `${what} has ${fmt(nTokens)} tokens but the model has ${fmt(nRows)} embedding rows`,
    `these weights belong with ${describeVocabSize(nRows)}, not ${describeVocabSize(nTokens)}: pass the tokenizer ` +
      "that came with them (a LoRA's merged vocabulary comes from the last LoRA)",
  );
}

/**
 * Checks the base and the LoRAs against each other and builds the plan. Throws UserError (with a hint) for
 * tokenizer/embedding size mismatches, shape mismatches, LoRA tensors the base lacks and adapters missing their
 * target modules; returns warnings for suspicious but valid input (an Alpaca-Plus LoRA without LLaMA-Plus).
 */
export function planMerge(base: BaseCheckpoint, loras: LoraAdapter[], opts: PlanOptions = {}): MergePlan {
  const c = base.config;
  const warnings: string[] = [];
  const baseVocab = c.vocabSize;
  // 1. base completeness and shapes
  for (const { kind, layer } of canonicalOrder(c.nLayers)) {
    const t = base.tensors.get(tensorKey(kind, layer));
    if (!t) {
      if (kind === "output" && base.tensors.has("tok_embd")) continue; // tied (llama2.c shared classifier)
      throw new UserError(
        `Cannot merge: the base model "${base.label}" has no ${tensorName("hf", kind, layer)}`,
        "pass a complete LLaMA checkpoint as --base-model",
      );
    }
    const want = expectedShape(c, kind, baseVocab);
    if (!sameShape(t.shape, want)) {
      throw new UserError(
        `Cannot merge: base tensor "${t.name}" has shape [${t.shape}], expected [${want}] from the model config`,
        "the checkpoint and its config (config.json / params.json) disagree",
      );
    }
  }
  // 2. vocabulary sizes through the LoRAs
  const vocabs: number[] = [];
  let vocab = baseVocab;
  loras.forEach((lora, i) => {
    const last = i === loras.length - 1;
    const embs = [lora.replacements.get("tok_embd"), lora.replacements.get("output")].filter((t) => t !== undefined);
    const size = lora.tokenizerSize ?? (last ? opts.tokenizerSize : undefined) ?? embs[0]?.shape[0] ?? vocab;
    const emb = embs.find((t) => t.shape[0] !== size);
    if (emb) {
      const rows = emb.shape[0];
      throw new UserError(
        `Cannot merge LoRA "${lora.label}": its embeddings have ${fmt(rows)} rows but its tokenizer has ${
          fmt(size)
        } tokens`,
        `this LoRA belongs with ${describeVocabSize(rows)}, not ${describeVocabSize(size)}: use the LLaMA ` +
          `tokenizer with Chinese-LLaMA LoRAs and the Alpaca tokenizer with Chinese-Alpaca LoRAs`,
      );
    }
    if (size < vocab) {
      throw new UserError(
        `Cannot merge LoRA "${lora.label}": its tokenizer has ${fmt(size)} tokens, fewer than the model's ${
          fmt(vocab)
        }`,
        i > 0
          ? "LoRAs are applied in the order given: put the LLaMA(-Plus) LoRA before the Alpaca(-Plus) one"
          : "this is not the intended use: check that the base model and the LoRA's tokenizer belong together",
      );
    }
    vocab = size;
    vocabs.push(size);
  });
  if (opts.tokenizerSize !== undefined) checkTokenizerFits(opts.tokenizerSize, vocab, "Cannot merge: --tokenizer");
  // 3. Alpaca-Plus/Pro needs LLaMA-Plus first (the seed's README/FAQ)
  if (loras.length > 0 && looksAlpacaPlus(loras[0])) {
    warnings.push(
      `"${
        loras[0].label
      }" looks like a Chinese-Alpaca-Plus/Pro LoRA, which was trained on top of Chinese-LLaMA-Plus: ` +
        "merge the LLaMA-Plus LoRA first (--lora-model llama-plus-lora,alpaca-plus-lora), or the result will be poor",
    );
  }
  // 4. every LoRA tensor must meet a base tensor of matching shape; every target module must have tensors
  for (const lora of loras) {
    const r = lora.config.r;
    const seenModules = new Set<string>();
    for (const [key, pair] of lora.pairs) {
      const [kind, layerStr] = key.split(".") as [TensorKind, string | undefined];
      const layer = layerStr === undefined ? undefined : Number(layerStr);
      const hfName = tensorName("hf", kind, layer);
      seenModules.add(hfName.split(".").at(-2)!);
      if (layer !== undefined && layer >= c.nLayers) {
        throw new UserError(
          `Cannot merge LoRA "${lora.label}": it adapts ${hfName} but the base model has only ${c.nLayers} layers`,
          "the LoRA was trained for a bigger model size: pick the LoRA that matches the base (7B/13B/33B)",
        );
      }
      if (kind === "tok_embd") {
        throw new UserError(`Cannot merge LoRA "${lora.label}": LoRA on embed_tokens is not supported`);
      }
      const want = expectedShape(c, kind, vocab);
      const [out, inn] = want;
      const [aR, aC] = rowsCols(pair.a.shape), [bR, bC] = rowsCols(pair.b.shape);
      const fan = lora.config.fanInFanOut;
      const okA = aR === r && aC === (fan ? out : inn);
      const okB = bC === r && bR === (fan ? inn : out);
      if (!okA || !okB) {
        throw new UserError(
          `Cannot merge LoRA "${lora.label}": ${hfName} has lora_A [${pair.a.shape}] and lora_B [${pair.b.shape}], ` +
            `expected [${r},${fan ? out : inn}] and [${fan ? inn : out},${r}] for a base weight [${want}] with r=${r}` +
            (fan ? " and fan_in_fan_out" : ""),
          "the LoRA does not belong to this base model size (or adapter_config.json's r is wrong)",
        );
      }
    }
    if (Array.isArray(lora.config.targetModules)) {
      for (const m of lora.config.targetModules) {
        if (!seenModules.has(m)) {
          throw new UserError(
            `Cannot merge LoRA "${lora.label}": adapter_config.json targets "${m}" but the adapter has no lora_A/lora_B for it`,
            "the adapter_model file is incomplete or belongs to another adapter_config.json",
          );
        }
      }
    }
    for (const [key, t] of lora.replacements) {
      const [kind, layerStr] = key.split(".") as [TensorKind, string | undefined];
      const layer = layerStr === undefined ? undefined : Number(layerStr);
      if (layer !== undefined && layer >= c.nLayers) {
        throw new UserError(
          `Cannot merge LoRA "${lora.label}": it replaces ${t.name} but the base has ${c.nLayers} layers`,
        );
      }
      const want = expectedShape(c, kind, kind === "tok_embd" || kind === "output" ? t.shape[0] : vocab);
      if (!sameShape(t.shape, want)) {
        throw new UserError(
          `Cannot merge LoRA "${lora.label}": modules_to_save tensor "${t.name}" has shape [${t.shape}], expected [${want}]`,
          "the LoRA does not belong to this base model size",
        );
      }
    }
  }
  // 5. the plan
  const tensors: PlannedTensor[] = [];
  const finalConfig: LlamaConfig = { ...c, vocabSize: vocab };
  let unreplacedNewRows = 0;
  for (const { kind, layer } of canonicalOrder(c.nLayers)) {
    const key = tensorKey(kind, layer);
    let start = base.tensors.get(key) ?? base.tensors.get("tok_embd")!;
    let startLayout: RopeLayout = base.layout;
    let lastReplace = -1;
    loras.forEach((lora, i) => {
      const rep = lora.replacements.get(key);
      if (rep) {
        start = rep;
        startLayout = "hf";
        lastReplace = i;
      }
    });
    const deltas: PlannedDelta[] = [];
    loras.forEach((lora, i) => {
      if (i <= lastReplace) return;
      const pair = lora.pairs.get(key);
      if (!pair) return;
      const fan = lora.config.fanInFanOut;
      deltas.push({
        label: lora.label,
        left: fan ? transposed(pair.a) : pair.b,
        right: fan ? transposed(pair.b) : pair.a,
        fanInFanOut: fan,
        scaling: lora.config.scaling,
      });
    });
    const shape = expectedShape(c, kind, vocab);
    const startRows = start.shape.length > 1 ? start.shape[0] : shape[0];
    if ((kind === "tok_embd" || kind === "output") && startRows < vocab) unreplacedNewRows = vocab - startRows;
    const baseDtype = (base.tensors.get(key) ?? start).dtype;
    tensors.push({
      key,
      kind,
      layer,
      shape,
      start,
      startLayout,
      startRows,
      deltas,
      holdAs: baseDtype === "F16" || baseDtype === "BF16" ? "F16" : undefined,
    });
  }
  if (unreplacedNewRows > 0) {
    warnings.push(
      `${fmt(unreplacedNewRows)} new vocabulary rows of embed_tokens/lm_head were initialised randomly ` +
        "(N(0, 0.02²), as resize_token_embeddings does) because no LoRA's modules_to_save replaces them",
    );
  }
  return { config: finalConfig, tensors, warnings };
}

/**
 * Rounds every value of `x` to fp16 or bf16 precision (the storage the seed holds weights in), in place.
 * fp16: values in the normal range round to 10 mantissa bits (nearest even) with integer ops; subnormals,
 * overflow and NaN take Math.f16round.
 */
export function roundTo(dtype: "F16" | "BF16", x: Float32Array): void {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  if (dtype === "F16") {
    for (let i = 0; i < u.length; i++) {
      const v = u[i];
      const a = v & 0x7fffffff;
      // 2^-14 ≤ |x| < 65504: f16 normal range, the carry of the rounding may bump the exponent (still exact)
      if (a >= 0x38800000 && a < 0x477fe000) u[i] = ((v + 0xfff + ((v >>> 13) & 1)) & 0xffffe000) >>> 0;
      else x[i] = Math.f16round(x[i]);
    }
    return;
  }
  for (let i = 0; i < u.length; i++) {
    const v = u[i];
    if ((v & 0x7fffffff) > 0x7f800000) u[i] = (v | 0x400000) & 0xffff0000;
    else u[i] = ((v + 0x7fff + ((v >>> 16) & 1)) >>> 0) & 0xffff0000;
  }
}

/**
 * Adds scaling·(left·right) rows [row0, row0+nRows) to `w` (nRows, cols); left (rows, r), right (r, cols).
 * Numerics: each f32 product is exact in f64, the rank sum is taken in f64 and rounded to f32 once, then
 * ×scaling and the add are f32 operations — within one f32 rounding of torch's f32 `(B @ A) * scaling`
 * (whose sum order depends on the BLAS) and bit-identical to it on the seed's golden.
 * `acc` is scratch of at least `cols` values.
 */
export function addLoraDelta(
  w: Float32Array,
  row0: number,
  nRows: number,
  cols: number,
  left: Float32Array,
  right: Float32Array,
  rank: number,
  scaling: number,
  acc: Float64Array = new Float64Array(cols),
): void {
  const fr = Math.fround;
  const s = fr(scaling);
  for (let i = 0; i < nRows; i++) {
    const lo = (row0 + i) * rank;
    const wo = i * cols;
    let k = 0;
    // hot loops: eight rank terms per pass over the row (rank 8 — the Chinese-LLaMA LoRAs — is one fused pass)
    for (; k + 8 <= rank; k += 8) {
      const b0 = left[lo + k], b1 = left[lo + k + 1], b2 = left[lo + k + 2], b3 = left[lo + k + 3];
      const b4 = left[lo + k + 4], b5 = left[lo + k + 5], b6 = left[lo + k + 6], b7 = left[lo + k + 7];
      const r0 = k * cols, r1 = r0 + cols, r2 = r1 + cols, r3 = r2 + cols;
      const r4 = r3 + cols, r5 = r4 + cols, r6 = r5 + cols, r7 = r6 + cols;
      const first = k === 0, last = k + 8 === rank;
      if (first && last) {
        for (let j = 0; j < cols; j++) {
          const a = b0 * right[r0 + j] + b1 * right[r1 + j] + b2 * right[r2 + j] + b3 * right[r3 + j] +
            b4 * right[r4 + j] + b5 * right[r5 + j] + b6 * right[r6 + j] + b7 * right[r7 + j];
          w[wo + j] = fr(w[wo + j] + fr(fr(a) * s));
        }
      } else {
        if (first) acc.fill(0, 0, cols);
        for (let j = 0; j < cols; j++) {
          acc[j] += b0 * right[r0 + j] + b1 * right[r1 + j] + b2 * right[r2 + j] + b3 * right[r3 + j] +
            b4 * right[r4 + j] + b5 * right[r5 + j] + b6 * right[r6 + j] + b7 * right[r7 + j];
        }
      }
    }
    if (rank === 8) continue; // written by the fused pass
    if (k === 0) acc.fill(0, 0, cols);
    for (; k < rank; k++) {
      const b = left[lo + k], r0 = k * cols;
      for (let j = 0; j < cols; j++) acc[j] += b * right[r0 + j];
    }
    for (let j = 0; j < cols; j++) w[wo + j] = fr(w[wo + j] + fr(fr(acc[j]) * s));
  }
}

/** One LoRA's factors for a tensor, as f32: left (rows, rank), right (rank, cols). */
export interface LoraFactors {
  left: Float32Array;
  right: Float32Array;
  rank: number;
}

/** Plain-data description of stage 2 for a block (see finishRows). */
export interface FinishSpec {
  row0: number;
  nRows: number;
  cols: number;
  /** One scaling per LoRA factor pair, in order. */
  scalings: number[];
  holdAs?: "F16" | "BF16";
  rope: boolean;
  headSize: number;
  layoutNow: RopeLayout;
  outLayout: RopeLayout;
}

/** Reorders each head's rows of `w` (nRows·cols) from one RoPE layout to another; `scratch.tmp` grows as needed. */
export function permuteHeads(
  w: Float32Array,
  cols: number,
  headSize: number,
  from: RopeLayout,
  to: RopeLayout,
  scratch: { tmp: Float32Array },
): void {
  if (from === to) return;
  if (scratch.tmp.length < w.length) scratch.tmp = new Float32Array(w.length);
  const tmp = scratch.tmp.subarray(0, w.length);
  tmp.set(w);
  permuteRows(tmp, cols, ropeRowMap(w.length / cols / headSize, headSize, from, to), w);
}

/**
 * Stage 2 (compute): adds every LoRA's delta to the block `w`, holding the base precision after each, then moves
 * q/k rows into the output layout. Pure: runs the same on the main thread and in workers.
 */
export function finishRows(
  w: Float32Array,
  spec: FinishSpec,
  factors: LoraFactors[],
  acc: Float64Array = new Float64Array(spec.cols),
  scratch: { tmp: Float32Array } = { tmp: new Float32Array(0) },
): void {
  const { row0, nRows, cols } = spec;
  factors.forEach((f, i) => {
    addLoraDelta(w, row0, nRows, cols, f.left, f.right, f.rank, spec.scalings[i], acc);
    if (spec.holdAs) roundTo(spec.holdAs, w);
  });
  if (spec.rope) permuteHeads(w, cols, spec.headSize, spec.layoutNow, spec.outLayout, scratch);
}

/** Computes blocks of planned tensors; holds the LoRA factors of the tensor in progress. */
export class MergeExecutor {
  #cacheKey = "";
  #factors: LoraFactors[] = [];
  #acc = new Float64Array(0);

  constructor(readonly plan: MergePlan) {}

  /** Row-block granularity of a tensor: whole heads for q/k (the permutation stays inside a head). */
  rowAlign(t: PlannedTensor): number {
    return needsRopePermute(t.kind) ? this.plan.config.headSize : 1;
  }

  /** A block height near `targetElements` elements, a multiple of rowAlign. */
  blockRows(t: PlannedTensor, targetElements = 1 << 20): number {
    const [rows, cols] = rowsCols(t.shape);
    const align = this.rowAlign(t);
    const n = Math.max(align, Math.floor(targetElements / cols / align) * align);
    return Math.min(rows, n);
  }

  #loadFactors(t: PlannedTensor): void {
    if (this.#cacheKey === t.key) return;
    this.#factors = t.deltas.map((d) => {
      const [lr, rank] = rowsCols(d.left.shape);
      return { left: d.left.readRows(0, lr), right: d.right.readRows(0, rank), rank };
    });
    this.#cacheKey = t.key;
  }

  /**
   * Computes rows [row0, row0+nRows) of the merged tensor in `outLayout` into `dst` (nRows·cols f32).
   * For q/k, row0 and nRows must be multiples of headSize. Equals startRows() then finishRows().
   */
  computeRows(t: PlannedTensor, outLayout: RopeLayout, row0: number, nRows: number, dst: Float32Array): Float32Array {
    const w = dst.subarray(0, nRows * rowsCols(t.shape)[1]);
    const layoutNow = this.startRows(t, row0, nRows, w);
    const cols = rowsCols(t.shape)[1];
    if (this.#acc.length < cols) this.#acc = new Float64Array(cols);
    const spec = this.finishSpec(t, row0, nRows, layoutNow, outLayout);
    finishRows(w, spec, this.factorsOf(t), this.#acc, this.#scratchBox);
    return w;
  }

  /**
   * Stage 1 (I/O): the starting rows — base or replacement, new vocabulary rows past its end, held at the base
   * precision — permuted into the LoRA's (HF) layout when deltas follow. Returns the layout `w` is now in.
   */
  startRows(t: PlannedTensor, row0: number, nRows: number, w: Float32Array): RopeLayout {
    const [rows, cols] = rowsCols(t.shape);
    if (row0 < 0 || nRows < 0 || row0 + nRows > rows) {
      throw new RangeError(`Cannot compute rows ${row0}..${row0 + nRows} of "${t.key}": it has ${rows} rows`);
    }
    const rope = needsRopePermute(t.kind);
    const hs = this.plan.config.headSize;
    if (rope && (row0 % hs !== 0 || nRows % hs !== 0)) {
      throw new RangeError(`Cannot compute rows of "${t.key}": block ${row0}+${nRows} is not head-aligned (${hs})`);
    }
    const have = Math.max(0, Math.min(nRows, t.startRows - row0));
    if (have > 0) t.start.readRows(row0, have, w);
    for (let i = have; i < nRows; i++) {
      const salt = t.kind === "output" ? RESIZE_SALT.output : RESIZE_SALT.tok_embd;
      initNewRow(salt, row0 + i, w.subarray(i * cols, (i + 1) * cols));
    }
    if (t.holdAs && have < nRows) roundTo(t.holdAs, w.subarray(have * cols, nRows * cols));
    if (rope && t.deltas.length > 0 && t.startLayout !== "hf") {
      permuteHeads(w.subarray(0, nRows * cols), cols, hs, t.startLayout, "hf", this.#scratchBox);
      return "hf";
    }
    return t.startLayout;
  }

  /** What finishRows needs besides the factors (plain data: it crosses to workers). */
  finishSpec(t: PlannedTensor, row0: number, nRows: number, layoutNow: RopeLayout, outLayout: RopeLayout): FinishSpec {
    return {
      row0,
      nRows,
      cols: rowsCols(t.shape)[1],
      scalings: t.deltas.map((d) => d.scaling),
      holdAs: t.holdAs,
      rope: needsRopePermute(t.kind),
      headSize: this.plan.config.headSize,
      layoutNow,
      outLayout,
    };
  }

  /** The LoRA factors of `t` as f32 (left (rows, r), right (r, cols)), read once per tensor. */
  factorsOf(t: PlannedTensor): LoraFactors[] {
    if (t.deltas.length === 0) return [];
    this.#loadFactors(t);
    return this.#factors;
  }

  #scratchBox = { tmp: new Float32Array(0) };
}

/** The dtype of the merge result before output encoding (for messages). */
export function describeHold(t: PlannedTensor): DType {
  return t.holdAs ?? "F32";
}
