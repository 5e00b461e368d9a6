/**
 * One shard of the fast engine: a slice of every weight matrix in its own linear memory (q/k/v, the KV cache and
 * attention by key/value heads; ffn_gate/up and the classifier by rows; attn_output and ffn_down by the matching
 * columns, whose partial sums every shard reduces), and the per-layer forward over a batch of tokens. Shards exchange
 * activations through one SharedArrayBuffer and meet at a barrier twice per layer (four when a column split would
 * cut a quantization block and rows are split instead); SharedArrayBuffer + Atomics, no messages.
 * Shard 0 runs on the calling thread, the others in Workers (shard_worker.ts).
 * see: Megatron-LM tensor parallelism (row splits), llama2.c run.c (the per-layer order), engine.ts
 */
import { type DType, nBytesOf } from "../core/dtypes.ts";
import type { TensorInfo } from "../core/tensor.ts";
import type { LlamaConfig } from "./config.ts";
import { type CacheShape, type Kernels, type MatrixSlice, storedTypeOf } from "../kernels/kernels.ts";
import { LAYER_KINDS, type TensorKind, tensorName } from "./tensor_names.ts";
import { expectedShape } from "./weights.ts";

/** Which part of the model a shard owns: half-open ranges of heads and rows. */
export interface ShardPlan {
  shard: number;
  nShards: number;
  config: LlamaConfig;
  contextSize: number;
  kvType: "f16" | "f32";
  maxBatch: number;
  /** Keep every matrix as F32 (the reference numerics) instead of its fast stored type (storedTypeOf). */
  weightsF32?: boolean;
  /**
   * KV cache regions (sequences kept at once, each of contextSize positions): a forward runs in one region
   * (CTRL.SLOT) or, row by row, in the region and at the position CTRL rows give (CTRL.MULTI). Default 1.
   */
  nSlots?: number;
  /** Own key/value heads [kvHead0, kvHead1); the query heads that read them come along. */
  kvHead0: number;
  kvHead1: number;
  /** Own rows of attn_output and ffn_down (model dim). */
  dimRow0: number;
  dimRow1: number;
  /** Own rows of ffn_gate / ffn_up (hidden dim). */
  hidRow0: number;
  hidRow1: number;
  /** Own rows of the classifier (vocabulary). */
  vocabRow0: number;
  vocabRow1: number;
  /**
   * True: attn_output and ffn_down are split by columns (each shard's own heads / hidden rows), and their outputs
   * are partial sums reduced by every shard: 2 barriers per layer. False (a column boundary would cut a 32-block):
   * split by rows after gathering their inputs: 4 barriers per layer.
   */
  colSplit: boolean;
}

function split(n: number, parts: number, i: number, align = 1): [number, number] {
  const units = Math.ceil(n / align);
  const a = Math.floor((units * i) / parts) * align;
  const b = Math.min(n, Math.floor((units * (i + 1)) / parts) * align);
  return [Math.min(a, n), i === parts - 1 ? n : b];
}

/** What planShards() splits a model for. */
export interface PlanOptions {
  nShards: number;
  contextSize: number;
  kvType: "f16" | "f32";
  maxBatch: number;
  /** Quantization block of attn_output / ffn_down that a column split must not cut. Default 32. */
  columnBlock?: number;
  /** KV cache regions. Default 1. */
  nSlots?: number;
  /** Keep every matrix as F32. Default false. */
  weightsF32?: boolean;
}

/** Splits a model into `nShards` plans of (nearly) equal work. */
export function planShards(config: LlamaConfig, options: PlanOptions): ShardPlan[] {
  const { nShards, contextSize, kvType, maxBatch, columnBlock = 32, nSlots = 1, weightsF32 = false } = options;
  if (!Number.isInteger(nSlots) || nSlots < 1) throw new RangeError(`Cannot plan shards: slot count ${nSlots}`);
  if (!Number.isInteger(nShards) || nShards < 1) throw new RangeError(`Cannot plan shards: count ${nShards}`);
  const kvMul = config.nHeads / config.nKvHeads;
  // column splits must not cut a block (32 or 256 elements) of a quantized attn_output / ffn_down
  const hidAlign = Math.max(32, columnBlock);
  let colSplit = nShards > 1;
  for (let s = 0; s < nShards; s++) {
    const [h0, h1] = split(config.nKvHeads, nShards, s);
    const [f0, f1] = split(config.hiddenDim, nShards, s, hidAlign);
    for (const b of [h0 * kvMul * config.headSize, h1 * kvMul * config.headSize, f0, f1]) {
      if (b % columnBlock !== 0) colSplit = false;
    }
  }
  return Array.from({ length: nShards }, (_, s) => {
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
      colSplit,
    };
  });
}

/** The row range of `kind` that a plan owns. */
export function ownRows(p: ShardPlan, kind: TensorKind): [number, number] {
  const hs = p.config.headSize;
  const kvMul = p.config.nHeads / p.config.nKvHeads;
  switch (kind) {
    case "attn_q":
      return [p.kvHead0 * kvMul * hs, p.kvHead1 * kvMul * hs];
    case "attn_k":
    case "attn_v":
      return [p.kvHead0 * hs, p.kvHead1 * hs];
    case "attn_output":
    case "ffn_down":
      return p.colSplit ? [0, p.config.dim] : [p.dimRow0, p.dimRow1];
    case "ffn_gate":
    case "ffn_up":
      return [p.hidRow0, p.hidRow1];
    case "output":
      return [p.vocabRow0, p.vocabRow1];
    default:
      return [0, expectedShape(p.config, kind)[0]];
  }
}

/** The column range of `kind` that a plan owns (all columns unless split by columns). */
export function ownCols(p: ShardPlan, kind: TensorKind): [number, number] {
  const shape = expectedShape(p.config, kind);
  if (p.colSplit && kind === "attn_output") return ownRows(p, "attn_q");
  if (p.colSplit && kind === "ffn_down") return [p.hidRow0, p.hidRow1];
  return [0, shape[shape.length - 1]];
}

/** Bytes of the shared exchange buffer for a config and batch: x, att, proj (B, dim), hid (B, hidden), logits (B, vocab). */
export function exchangeLayout(c: LlamaConfig, maxBatch: number, nShards: number) {
  const f = 4;
  const xIn = 0;
  const att = xIn + maxBatch * c.dim * f;
  const proj = att + maxBatch * c.dim * f;
  const hid = proj + maxBatch * c.dim * f;
  const logits = hid + maxBatch * c.hiddenDim * f;
  // column-split partial sums: (shard, B, dim), one area for attention and one for the FFN
  const attnPartials = logits + maxBatch * c.vocabSize * f;
  const ffnPartials = attnPartials + nShards * maxBatch * c.dim * f;
  const nBytes = ffnPartials + nShards * maxBatch * c.dim * f;
  return { xIn, att, proj, hid, logits, attnPartials, ffnPartials, nBytes };
}

/**
 * The control protocol between the engine (engine.ts: the calling thread, which also runs shard 0) and its
 * shard workers (shard_worker.ts, which web/src/shard_worker.ts wraps for the browser), over one shared Int32Array
 * `ctrl` (controlInts(maxBatch) slots). Both sides call the functions below, so every slot is written here only.
 * 1. Post (runForward, setRow): the engine stores the batch — N_TOKENS, START_POS, WANT_LOGITS, SLOT, MULTI,
 *    WANT_HIDDEN and, for a MULTI batch, the (slot, position) pair of each row b at ctrl[ROWS + 2b],
 *    ctrl[ROWS + 2b + 1] — then OP = 1, and bumps COMMAND (Atomics.add + notify).
 * 2. Wake (waitForCommand): each worker waits on COMMAND changing, reads OP; 1 = run this batch, anything else =
 *    leave its loop.
 * 3. Run (runShards, Shard.steps, barrier): every shard (the engine's own included) reads the batch slots and runs
 *    the layers, meeting the others at barriers: ARRIVED counts arrivals; the last one resets it, bumps ROUND and
 *    notifies; the others spin, then Atomics.wait on ROUND.
 * 4. Fail (postFailure): a worker whose shard throws stores FAILED = 1 and notifies ROUND; the other shards throw
 *    at their next barrier, so the engine's forward returns the error and the engine closes.
 * 5. Exit (postExit): the engine stores OP = 2 and bumps COMMAND; the workers leave their loop.
 * Slots 12–15 are unused; READY is reserved (no side writes it today).
 */
export const CTRL = {
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
  ROWS: 16,
} as const;

/** A forward command: what the engine posts (protocol step 1) and every shard reads. */
export interface ForwardCommand {
  nTokens: number;
  startPos: number;
  /** How many of the batch's last rows want logits. */
  wantLogits: number;
  /** KV region of a single-sequence forward. */
  slot: number;
  /** Each row its own sequence at the (slot, position) set with setRow(). */
  multi: boolean;
  /** Final-normed hidden states instead of logits. */
  wantHidden: boolean;
}

/** Step 1 for a MULTI forward: row b is a token of the sequence in region `slot` at position `pos`. */
export function setRow(ctrl: Int32Array, b: number, slot: number, pos: number): void {
  ctrl[CTRL.ROWS + 2 * b] = slot;
  ctrl[CTRL.ROWS + 2 * b + 1] = pos;
}

/**
 * Steps 1 and 3 on the engine's thread: posts `command` (embeddings in exchange.xIn; for a MULTI batch the rows set
 * with setRow()) and runs this thread's shards with the workers'. Logits land in exchange.logits (hidden states in
 * exchange.proj). Throws when a shard failed.
 */
export function runForward(shards: Shard[], ctrl: Int32Array, nThreads: number, command: ForwardCommand): void {
  postForward(ctrl, command);
  runShards(shards, ctrl, nThreads);
}

/** Step 1: the engine posts a forward and wakes the workers. */
function postForward(ctrl: Int32Array, c: ForwardCommand): void {
  Atomics.store(ctrl, CTRL.N_TOKENS, c.nTokens);
  Atomics.store(ctrl, CTRL.START_POS, c.startPos);
  Atomics.store(ctrl, CTRL.WANT_LOGITS, c.wantLogits);
  Atomics.store(ctrl, CTRL.SLOT, c.slot);
  Atomics.store(ctrl, CTRL.MULTI, c.multi ? 1 : 0);
  Atomics.store(ctrl, CTRL.WANT_HIDDEN, c.wantHidden ? 1 : 0);
  postOp(ctrl, 1);
}

/** Step 5: the engine tells the workers to leave their loop. */
export function postExit(ctrl: Int32Array): void {
  postOp(ctrl, 2);
}

function postOp(ctrl: Int32Array, op: 1 | 2): void {
  Atomics.store(ctrl, CTRL.OP, op);
  Atomics.add(ctrl, CTRL.COMMAND, 1);
  Atomics.notify(ctrl, CTRL.COMMAND);
}

/**
 * Step 2, in a worker: waits until the command counter moves past `seen` (read it before saying ready, so no
 * command is missed); returns the new counter and whether the command is a forward.
 */
export function waitForCommand(ctrl: Int32Array, seen: number): { seen: number; forward: boolean } {
  while (Atomics.load(ctrl, CTRL.COMMAND) === seen) Atomics.wait(ctrl, CTRL.COMMAND, seen, 1000);
  return { seen: Atomics.load(ctrl, CTRL.COMMAND), forward: Atomics.load(ctrl, CTRL.OP) === 1 };
}

/** Step 4, in a worker whose shard threw: the other shards stop at their next barrier. */
export function postFailure(ctrl: Int32Array): void {
  Atomics.store(ctrl, CTRL.FAILED, 1);
  Atomics.notify(ctrl, CTRL.ROUND);
}

/** Int32 slots of the control array for batches of up to `maxBatch` rows. */
export function controlInts(maxBatch: number): number {
  return CTRL.ROWS + 2 * maxBatch;
}

/**
 * Spin this many times on the round counter before Atomics.wait: ~34 µs at ~14 ns a spin on the AMD EPYC of
 * bench/README.md (longer spins measured no faster there, and cost a loaded host dearly).
 */
const SPIN = 2000;

/** A reusable barrier over the control array for `n` threads. Throws when another shard failed. */
export function barrier(ctrl: Int32Array, n: number): void {
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

/**
 * Runs the current forward command on the shards this thread hosts, step by step, meeting the other threads
 * (`nThreads` in all) at a barrier after each step.
 */
export function runShards(shards: Shard[], ctrl: Int32Array, nThreads: number): void {
  const gens = shards.map((s) => s.steps());
  for (;;) {
    let done = false;
    for (const g of gens) done = g.next().done === true;
    if (done) return;
    barrier(ctrl, nThreads);
  }
}

/** Reads `nBytes` at an absolute file offset into `dst` (FileSource.readInto or a memory copy). */
export type ReadInto = (byteOffset: number, dst: Uint8Array) => void;

/** What a Shard is built from. */
export interface ShardInputs {
  plan: ShardPlan;
  /** Its own kernels (and memory). */
  kernels: Kernels;
  /** The model's tensors (GGUF names, file offsets). */
  tensors: TensorInfo[];
  /** Reads the model file at an offset (this thread's own way of reading it). */
  readInto: ReadInto;
  /** The exchange buffer (exchangeLayout) and the control slots (CTRL), shared by every shard. */
  exchange: SharedArrayBuffer;
  control: SharedArrayBuffer;
  /** Called after each tensor is loaded (progress). */
  onTensor?: () => void;
}

/** A shard's weights, caches and scratch in its kernel memory, and its part of the forward pass. */
export class Shard {
  readonly plan: ShardPlan;
  readonly #k: Kernels;
  readonly #ctrl: Int32Array;
  readonly #ex: ReturnType<typeof exchangeLayout>;
  readonly #exF32: Float32Array;
  readonly #layers: Map<TensorKind, MatrixSlice | number>[] = [];
  #outputNorm = 0;
  #output!: MatrixSlice;
  // scratch pointers (f32 unless noted)
  readonly #x: number; // (B, dim) residual stream, full width on every shard
  readonly #xb: number; // (B, dim) normed input
  readonly #q: number; // (B, ownQ)
  readonly #kv: number; // (B, ownKv) k, then v
  readonly #att: number; // (B, ownQ) attention output of own heads
  readonly #full: number; // (B, max(dim, hidden)) a gathered exchange buffer
  readonly #rows: number; // (B, max own rows) matmul output
  readonly #hb2: number; // (B, ownHid)
  readonly #logits: number; // (B, ownVocab) classifier output
  readonly #keyCache: number; // (layer, ctx, ownKv) f16 or f32
  readonly #valueCache: number;
  readonly #ownQ: number;
  readonly #ownKv: number;

  constructor({ plan, kernels, tensors, readInto, exchange, control, onTensor }: ShardInputs) {
    this.plan = plan;
    this.#k = kernels;
    this.#ctrl = new Int32Array(control);
    this.#ex = exchangeLayout(plan.config, plan.maxBatch, plan.nShards);
    this.#exF32 = new Float32Array(exchange);
    const c = plan.config;
    const B = plan.maxBatch;
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const tensor = (kind: TensorKind, layer?: number): TensorInfo => {
      let t = byName.get(tensorName("gguf", kind, layer));
      if (!t && kind === "output") t = byName.get(tensorName("gguf", "tok_embd"));
      if (!t) throw new RangeError(`Cannot load shard: tensor "${tensorName("gguf", kind, layer)}" is missing`);
      return t;
    };
    const load = (kind: TensorKind, layer?: number): MatrixSlice | number => {
      const t = tensor(kind, layer);
      const [r0, r1] = ownRows(plan, kind);
      const [c0, c1] = ownCols(plan, kind);
      const fullCols = t.shape.length === 2 ? t.shape[1] : t.shape[0];
      const cols = c1 - c0;
      const rows = r1 - r0;
      if (t.shape.length === 1) {
        // a norm weight: always f32 (the kernels take f32 gains)
        const ptr = kernels.alloc(cols * 4);
        kernels.loadRows(t.dtype, "F32", readBytes(readInto, t, 0, 1, fullCols), ptr, 1, cols);
        onTensor?.();
        return ptr;
      }
      const stored = plan.weightsF32 ? "F32" : storedTypeOf(t.dtype, cols);
      const slice: MatrixSlice = { dtype: stored, rows, cols, ptr: 0 };
      slice.ptr = kernels.allocMatrix(stored, rows, cols);
      // read in chunks of ≤ 16 MiB so a 7B classifier slice does not need a second full-size copy
      if (cols === 0 || rows === 0) {
        onTensor?.();
        return slice;
      }
      const rowBytes = nBytesOf(t.dtype, fullCols);
      // chunks are whole 8-row groups (the repacked Q4_0 layout's unit)
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
      const m = new Map<TensorKind, MatrixSlice | number>();
      for (const kind of LAYER_KINDS) m.set(kind, load(kind, l));
      this.#layers.push(m);
    }
    this.#outputNorm = load("output_norm") as number;
    this.#output = load("output") as MatrixSlice;

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
    const kvBytes = c.nLayers * (plan.nSlots ?? 1) * plan.contextSize * Math.max(1, this.#ownKv) *
      (plan.kvType === "f16" ? 2 : 4);
    this.#keyCache = kernels.alloc(kvBytes);
    this.#valueCache = kernels.alloc(kvBytes);
    kernels.scratch(B, Math.max(c.dim, c.hiddenDim));
  }

  /** Bytes of kernel memory in use. */
  get memoryBytes(): number {
    return this.#k.memoryBytes;
  }

  /**
   * The forward pass as steps: each `yield` is a point where every shard must have finished the step before any
   * continues (a barrier), so one thread can run several shards (runShards) when memory needs more shards than
   * there are threads.
   */
  *steps(): Generator<void, void, void> {
    const p = this.plan, c = p.config, k = this.#k, ctrl = this.#ctrl;
    const n = p.nShards;
    const B = Atomics.load(ctrl, CTRL.N_TOKENS);
    const startPos = Atomics.load(ctrl, CTRL.START_POS);
    const nLogits = Math.min(B, Atomics.load(ctrl, CTRL.WANT_LOGITS));
    const multi = Atomics.load(ctrl, CTRL.MULTI) === 1;
    const wantHidden = Atomics.load(ctrl, CTRL.WANT_HIDDEN) === 1;
    const el = p.kvType === "f16" ? 2 : 4;
    // bytes of one region of one layer's cache (ctx, ownKv); layer l's regions follow each other
    const regionBytes = p.contextSize * this.#ownKv * el;
    const slotOf = multi ? (b: number) => ctrl[CTRL.ROWS + 2 * b] : () => Atomics.load(ctrl, CTRL.SLOT);
    const posOf = (b: number) => ctrl[CTRL.ROWS + 2 * b + 1];
    const dim = c.dim, hidden = c.hiddenDim, hs = c.headSize;
    const ex = this.#ex, exF = this.#exF32;
    const ownQ = this.#ownQ, ownKv = this.#ownKv;
    const [h0, h1] = [p.hidRow0, p.hidRow1];
    const q0 = p.kvHead0 * (c.nHeads / c.nKvHeads) * hs;
    const ops: CacheShape = {
      nHeads: ownQ / hs,
      nKvHeads: ownKv / hs,
      headSize: hs,
      contextSize: p.contextSize,
      kvType: p.kvType,
    };

    // x (B, dim) <- the embeddings shard 0 wrote
    k.copyIn(exF, ex.xIn / 4, this.#x, B * dim);
    const slot = (area: number) => area / 4 + p.shard * p.maxBatch * dim; // this shard's (B, dim) partials
    for (let l = 0; l < c.nLayers; l++) {
      const w = this.#layers[l];
      // 1. attention for own heads: xb = rmsnorm(x); q,k,v rows; RoPE; cache; attention -> att (B, ownQ)
      k.rmsNorm(this.#x, w.get("attn_norm") as number, this.#xb, dim, c.normEps, B);
      if (ownKv > 0 && !multi) {
        const kvLayer = (l * (p.nSlots ?? 1) + slotOf(0)) * regionBytes;
        k.matmul(w.get("attn_q") as MatrixSlice, this.#xb, this.#q, B); // (ownQ, dim) @ (B, dim) -> (B, ownQ)
        k.rope(this.#q, ops.nHeads, hs, startPos, c.ropeTheta, B);
        k.matmul(w.get("attn_k") as MatrixSlice, this.#xb, this.#kv, B); // (ownKv, dim) @ (B, dim) -> (B, ownKv)
        k.rope(this.#kv, ops.nKvHeads, hs, startPos, c.ropeTheta, B);
        k.storeKv(this.#kv, this.#keyCache + kvLayer, B, ownKv, startPos, p.kvType);
        k.matmul(w.get("attn_v") as MatrixSlice, this.#xb, this.#kv, B);
        k.storeKv(this.#kv, this.#valueCache + kvLayer, B, ownKv, startPos, p.kvType);
        k.attention(this.#q, this.#keyCache + kvLayer, this.#valueCache + kvLayer, this.#att, ops, B, startPos);
      } else if (ownKv > 0) {
        // B sequences, one token each: the projections are one batched matmul (the prompt path's kernel); RoPE,
        // the cache write and attention run per row in that row's region at that row's position
        k.matmul(w.get("attn_q") as MatrixSlice, this.#xb, this.#q, B); // (ownQ, dim) @ (B, dim) -> (B, ownQ)
        k.matmul(w.get("attn_k") as MatrixSlice, this.#xb, this.#kv, B); // (ownKv, dim) @ (B, dim) -> (B, ownKv)
        for (let b = 0; b < B; b++) {
          const kvLayer = (l * (p.nSlots ?? 1) + slotOf(b)) * regionBytes, pos = posOf(b);
          k.rope(this.#q + b * ownQ * 4, ops.nHeads, hs, pos, c.ropeTheta, 1);
          k.rope(this.#kv + b * ownKv * 4, ops.nKvHeads, hs, pos, c.ropeTheta, 1);
          k.storeKv(this.#kv + b * ownKv * 4, this.#keyCache + kvLayer, 1, ownKv, pos, p.kvType);
        }
        k.matmul(w.get("attn_v") as MatrixSlice, this.#xb, this.#kv, B);
        for (let b = 0; b < B; b++) {
          const kvLayer = (l * (p.nSlots ?? 1) + slotOf(b)) * regionBytes, pos = posOf(b);
          k.storeKv(this.#kv + b * ownKv * 4, this.#valueCache + kvLayer, 1, ownKv, pos, p.kvType);
          const q = this.#q + b * ownQ * 4, out = this.#att + b * ownQ * 4;
          k.attention(q, this.#keyCache + kvLayer, this.#valueCache + kvLayer, out, ops, 1, pos);
        }
      }
      if (p.colSplit) {
        // 2. own columns of Wo: (dim, ownQ) @ att (B, ownQ) -> a partial sum (B, dim); x += Σ partials
        if (ownKv > 0) k.matmul(w.get("attn_output") as MatrixSlice, this.#att, this.#full, B);
        else k.fill(this.#full, B * dim, 0);
        k.copyOut(this.#full, B, dim, exF, slot(ex.attnPartials), dim);
        yield;
        for (let s = 0; s < n; s++) k.addFrom(this.#x, exF, ex.attnPartials / 4 + s * p.maxBatch * dim, B * dim);
        // 3. FFN on own hidden rows, then own columns of W2: (dim, ownHid) @ hid (B, ownHid) -> partial (B, dim)
        k.rmsNorm(this.#x, w.get("ffn_norm") as number, this.#xb, dim, c.normEps, B);
        if (h1 > h0) {
          k.matmul(w.get("ffn_gate") as MatrixSlice, this.#xb, this.#rows, B); // (ownHid, dim) -> (B, ownHid)
          k.matmul(w.get("ffn_up") as MatrixSlice, this.#xb, this.#hb2, B);
          k.siluGate(this.#rows, this.#hb2, this.#rows, B * (h1 - h0));
          k.matmul(w.get("ffn_down") as MatrixSlice, this.#rows, this.#full, B);
        } else k.fill(this.#full, B * dim, 0);
        k.copyOut(this.#full, B, dim, exF, slot(ex.ffnPartials), dim);
        yield;
        for (let s = 0; s < n; s++) k.addFrom(this.#x, exF, ex.ffnPartials / 4 + s * p.maxBatch * dim, B * dim);
        continue;
      }
      if (ownKv > 0) k.copyOut(this.#att, B, ownQ, exF, ex.att / 4 + q0, dim);
      yield;
      // 2. output projection, own rows of Wo: (rows, dim) @ att (B, dim) -> exchange.proj[:, d0:d1]
      this.#projectOwnRows(w.get("attn_output") as MatrixSlice, ex.att, dim, B);
      yield;
      // 3. x += proj; xb = rmsnorm(x); own hidden rows of silu(W1·xb) ⊙ (W3·xb) -> exchange.hid
      this.#addProj(B);
      k.rmsNorm(this.#x, w.get("ffn_norm") as number, this.#xb, dim, c.normEps, B);
      if (h1 > h0) {
        k.matmul(w.get("ffn_gate") as MatrixSlice, this.#xb, this.#rows, B); // (ownHid, dim) -> (B, ownHid)
        k.matmul(w.get("ffn_up") as MatrixSlice, this.#xb, this.#hb2, B);
        k.siluGate(this.#rows, this.#hb2, this.#rows, B * (h1 - h0));
        k.copyOut(this.#rows, B, h1 - h0, exF, ex.hid / 4 + h0, hidden);
      }
      yield;
      // 4. own rows of W2: (rows, hidden) @ hid (B, hidden) -> exchange.proj[:, d0:d1]
      this.#projectOwnRows(w.get("ffn_down") as MatrixSlice, ex.hid, hidden, B);
      yield;
      this.#addProj(B);
    }
    if (wantHidden) {
      // every row's final-normed hidden state (B, dim) -> exchange.proj (every shard holds the full x; shard 0 writes)
      if (p.shard === 0) {
        k.rmsNorm(this.#x, this.#outputNorm, this.#xb, dim, c.normEps, B);
        k.copyOut(this.#xb, B, dim, exF, ex.proj / 4, dim);
      }
    } else if (nLogits > 0) {
      // final norm of the last nLogits rows, own classifier rows: (ownVocab, dim) @ x (m, dim) -> exchange.logits
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
  #projectOwnRows(w: MatrixSlice, area: number, nIn: number, B: number): void {
    const k = this.#k, { dimRow0, dimRow1, config } = this.plan;
    k.copyIn(this.#exF32, area / 4, this.#full, B * nIn);
    if (dimRow1 > dimRow0) {
      k.matmul(w, this.#full, this.#rows, B);
      k.copyOut(this.#rows, B, dimRow1 - dimRow0, this.#exF32, this.#ex.proj / 4 + dimRow0, config.dim);
    }
  }

  /** x (B, dim) += exchange.proj (B, dim), the rows every shard wrote. */
  #addProj(B: number): void {
    const n = B * this.plan.config.dim;
    this.#k.copyIn(this.#exF32, this.#ex.proj / 4, this.#full, n);
    this.#k.add(this.#x, this.#full, n);
  }
}

/** Columns [c0, c1) of `nRows` rows of `cols` values (c0, c1 on block boundaries for block types). */
function columnSlice(bytes: Uint8Array, dtype: DType, nRows: number, cols: number, c0: number, c1: number): Uint8Array {
  const rowBytes = nBytesOf(dtype, cols);
  const b0 = nBytesOf(dtype, c0), b1 = nBytesOf(dtype, c1);
  const out = new Uint8Array(nRows * (b1 - b0));
  for (let r = 0; r < nRows; r++) out.set(bytes.subarray(r * rowBytes + b0, r * rowBytes + b1), r * (b1 - b0));
  return out;
}

function readBytes(readInto: ReadInto, t: TensorInfo, row0: number, nRows: number, cols: number): Uint8Array {
  const rowBytes = nBytesOf(t.dtype, cols);
  if ((row0 + nRows) * rowBytes > t.nBytes) {
    throw new RangeError(`Cannot read rows ${row0}..${row0 + nRows} of "${t.name}": tensor has ${t.nBytes} bytes`);
  }
  const dst = new Uint8Array(nRows * rowBytes);
  readInto(t.byteOffset + row0 * rowBytes, dst);
  return dst;
}
