/**
 * The engine: a GGUF model loaded for evaluation, with its tokenizer. loadEngine() (a file), loadEngineFromBytes()
 * and loadEngineFromBlob() (browser_engine.ts) read the header and the tokenizer; createEngine() builds the sharded
 * engine — shard 0 on the calling thread, shards 1.. in Workers (shard_worker.ts), each with its own kernels and
 * kernel memory (≤ 4 GiB) holding a row slice of every matrix and its heads of the KV cache, so models larger than
 * one WebAssembly memory run. One switch picks the kernels: "wasm" (SimdKernels, the default) or "scalar" (the
 * `…Ref` definitions); `useReference` runs the scalar ones on F32 weights, which is llama.ts's reference bit for
 * bit. Prompt tokens go through in batches (matrix-matrix kernels); the shards meet at SharedArrayBuffer barriers
 * (shard.ts: the control protocol).
 * see: shard.ts, shard_worker.ts, llama.ts, generate.ts (the one-shot completion loop)
 */
import { type ByteSource, BytesSource } from "../core/byte_source.ts";
import { blockSizeOf } from "../core/dtypes.ts";
import { FormatError, UserError } from "../core/errors.ts";
import type { TensorInfo } from "../core/tensor.ts";
import { readGguf } from "../formats/gguf.ts";
import { GGUF_MAGIC_STRING } from "../formats/gguf_constants.ts";
import { FileSource } from "../io/file_source.ts";
import { type KernelChoice, storedTypeOf } from "../kernels/kernels.ts";
import { createKernels, wasmMatrixBytes } from "../kernels/simd_kernels.ts";
import { type Tokenizer, tokenizerFromGgufMetadata } from "../tokenizer/mod.ts";
import { configFromGgufMetadata, type LlamaConfig } from "./config.ts";
import {
  controlInts,
  exchangeLayout,
  type ForwardCommand,
  planShards,
  postExit,
  runForward,
  setRow,
  Shard,
  type ShardPlan,
} from "./shard.ts";
import { GLOBAL_KINDS, LAYER_KINDS, tensorName } from "./tensor_names.ts";
import { expectedShape, TensorTable } from "./weights.ts";

export { generate, type GenerateOptions, type GenerateResult, type TokenPicker } from "./generate.ts";

const GGUF_MAGIC_BYTES = new TextEncoder().encode(GGUF_MAGIC_STRING);

/** Options of loadEngine(). */
export interface EngineOptions {
  /** Threads (= shards, at least as many as the memory needs). Default navigator.hardwareConcurrency. */
  threads?: number;
  /** KV cache positions. Default min(model context length, 2048). */
  contextSize?: number;
  /** KV cache element type. Default "f16". */
  kvType?: "f16" | "f32";
  /**
   * Run the reference numerics (slow; for checking): the scalar kernels (the `…Ref` definitions) on F32 weights with
   * an f32 KV cache, on one thread — the logits of llama.ts's LlamaReference, bit for bit. Overrides kernels,
   * kvType and threads.
   */
  useReference?: boolean;
  /** Called as weights load: tensors done of total. */
  onProgress?: (done: number, total: number) => void;
  /** Kernel implementation of the fast engine. Default "wasm". */
  kernels?: KernelChoice;
  /** Tokens per forward batch during prompt processing. Default 64. */
  maxBatch?: number;
  /** At least this many shards (more than threads: a thread runs several). Default: what memory needs. */
  minShards?: number;
  /**
   * KV cache regions of contextSize positions each, for sequences evaluated side by side (evalSlot/evalBatch).
   * eval() and evalAll() use region 0. Default 1.
   */
  slots?: number;
  /**
   * Starts one shard worker (shard_worker.ts's protocol). Default: a module Worker on shard_worker.ts; a browser
   * page passes workers made from its bundle.
   */
  spawnWorker?: () => Worker;
}

/** One row of a batched decode step: a token of the sequence in KV region `slot`, at position `pos`. */
export interface BatchRow {
  slot: number;
  token: number;
  pos: number;
}

/** A loaded model ready to evaluate tokens (what createEngine() gives without a tokenizer). */
export interface EngineBase {
  readonly config: LlamaConfig;
  readonly contextSize: number;
  readonly metadata: Map<string, unknown>;
  /** Shards (weight slices, one memory each) the fast engine runs on (1 for the reference). */
  readonly nShards: number;
  /** Threads running them (the calling thread + Workers; ≤ nShards). */
  readonly nThreads: number;
  /**
   * Evaluates tokens at positions startPos..startPos+n-1 (overwriting the KV cache there); returns the logits of
   * the last token (length vocabSize).
   */
  eval(tokens: number[], startPos: number): Promise<Float32Array>;
  /** Like eval() but returns the logits after every token (n arrays of vocabSize), e.g. for perplexity. */
  evalAll(tokens: number[], startPos: number): Promise<Float32Array[]>;
  /** KV cache regions (sequences the engine keeps at once). */
  readonly slots: number;
  /** eval() in KV region `slot` (0 … slots-1): a prompt, or one token, of that sequence. */
  evalSlot(slot: number, tokens: number[], startPos: number): Promise<Float32Array>;
  /**
   * One forward over tokens of several sequences: row i is `rows[i].token` of the sequence in region
   * `rows[i].slot` at position `rows[i].pos` (the weights are read once for all rows: batched matmuls), e.g. one
   * decode token per generating sequence plus a chunk of a new prompt. A slot may appear in several rows at
   * increasing positions (its earlier positions must be in its cache or earlier in the batch). Returns the logits
   * of the last `nLogits` rows (default: all).
   */
  evalBatch(rows: BatchRow[], nLogits?: number): Promise<Float32Array[]>;
  /**
   * Evaluates tokens at positions startPos… in region `slot` and returns every token's final-normed hidden
   * state (n arrays of dim): the classifier's input, as Hugging Face's last hidden_states.
   */
  evalHidden(slot: number, tokens: number[], startPos: number): Promise<Float32Array[]>;
  close(): void;
}

/** A loaded model with its tokenizer, ready to evaluate tokens. */
export interface Engine extends EngineBase {
  readonly tokenizer: Tokenizer;
}

/** A model as a reader sees it, plus where workers can read it from. */
export interface EngineModel {
  metadata: Map<string, unknown>;
  tensors: TensorInfo[];
  source: ByteSource;
  /** The file path, for workers to open themselves… */
  path?: string;
  /** …or the whole file in memory (shared with the workers)… */
  bytes?: Uint8Array;
  /** …or a Blob (a browser File) the workers read their slices from. */
  blob?: Blob;
  /** The tokenizer the engine carries (an `Engine`); without one createEngine() gives an `EngineBase`. */
  tokenizer?: Tokenizer;
  /** Called once when the engine closes (e.g. closes `source`). */
  onClose?: () => void;
}

/** Where the workers read a model from, and what the engine carries besides (see EngineModel). */
export type ModelPlace = Omit<EngineModel, "metadata" | "tensors" | "source">;

/**
 * Loads a GGUF read through `source` (a file, memory or a Blob; `place` says where workers read it): checks the
 * magic, reads the header and the tokenizer (unless `place.tokenizer` is given) and starts the engine.
 */
export async function loadEngineFromSource(
  source: ByteSource,
  place: ModelPlace,
  options: EngineOptions = {},
): Promise<Engine> {
  const name = place.path ?? source.name ?? "model";
  const magic = source.size >= 4 ? source.read(0, 4) : new Uint8Array(0);
  if (!GGUF_MAGIC_BYTES.every((b, i) => magic[i] === b)) {
    throw new UserError(
      `Cannot load model "${name}": not a GGUF file`,
      "convert it first (`deno task convert`); llama2.c .bin checkpoints run with `generate --tokenizer tok.model`",
    );
  }
  let g;
  try {
    g = readGguf(source);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    throw new UserError(`Cannot load model "${name}": ${e.message}`, "the file is damaged or not a model", {
      cause: e,
    });
  }
  const metadata = g.metadata as Map<string, unknown>;
  let tokenizer: Tokenizer;
  try {
    tokenizer = place.tokenizer ?? tokenizerFromGgufMetadata(metadata);
  } catch (e) {
    throw new UserError(
      `Cannot load the tokenizer from "${name}": ${(e as Error).message}`,
      "the GGUF needs tokenizer.ggml.* keys; convert the model with `deno task convert` to embed them",
      { cause: e },
    );
  }
  return await createEngine({ ...place, metadata, tensors: g.tensors, source, tokenizer }, options);
}

/**
 * Loads a GGUF model file: workers read their weight slices from `path` themselves.
 *
 * @example
 * ```ts ignore
 * const engine = await loadEngine("model-q4_0.gguf", { threads: 2, contextSize: 2048 });
 * const logits = await engine.eval(engine.tokenizer.encode("Hello", { bos: true }), 0);
 * engine.close();
 * ```
 */
export async function loadEngine(path: string, options: EngineOptions = {}): Promise<Engine> {
  let source: FileSource;
  try {
    source = new FileSource(path);
  } catch (e) {
    if ((e as Error).name === "NotFound") {
      throw new UserError(`Cannot open model "${path}": file not found`, "check the path given with -m", { cause: e });
    }
    if ((e as Error).name === "IsADirectory") {
      throw new UserError(`Cannot open model "${path}": it is a folder`, "pass the .gguf file inside it", { cause: e });
    }
    throw e;
  }
  try {
    return await loadEngineFromSource(source, { path, onClose: () => source.close() }, options);
  } catch (e) {
    source.close();
    throw e;
  }
}

/**
 * Loads a GGUF model held in memory (e.g. converted on the fly from a llama2.c checkpoint); `tokenizer` replaces
 * the one in its metadata.
 */
export async function loadEngineFromBytes(
  bytes: Uint8Array,
  options: EngineOptions = {},
  name = "model",
  tokenizer?: Tokenizer,
): Promise<Engine> {
  return await loadEngineFromSource(new BytesSource(bytes, name), { bytes, tokenizer }, options);
}

/** Usable bytes of one shard's memory: 4 GiB less room for scratch and allocator slack. */
const SHARD_BUDGET = 4 * 2 ** 30 - 256 * 2 ** 20;

/** Bytes the engine keeps in kernel memory for a model (weights as stored + KV cache), excluding tok_embd. */
export function engineBytes(
  table: TensorTable,
  contextSize: number,
  kvType: "f16" | "f32",
  slots = 1,
  weightsF32 = false,
): number {
  const c = table.config;
  let n = 0;
  for (const kind of [...LAYER_KINDS, ...GLOBAL_KINDS]) {
    if (kind === "tok_embd") continue;
    const layers = LAYER_KINDS.includes(kind) ? c.nLayers : 1;
    for (let l = 0; l < layers; l++) {
      const t = table.info(kind, LAYER_KINDS.includes(kind) ? l : undefined);
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

function defaultThreads(): number {
  const n = typeof navigator !== "undefined" ? navigator.hardwareConcurrency : 1;
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** Builds an engine over a model (shards load in parallel; resolves when all are ready). */
export function createEngine(model: EngineModel & { tokenizer: Tokenizer }, options?: EngineOptions): Promise<Engine>;
export function createEngine(model: EngineModel, options?: EngineOptions): Promise<EngineBase>;
export async function createEngine(model: EngineModel, options: EngineOptions = {}): Promise<EngineBase> {
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
  // a shard per thread, more when the weights + KV cache do not fit in that many 4 GiB memories (then a thread
  // runs several shards step by step: shard s lives on thread s % nThreads)
  const nShards = Math.max(threads, options.minShards ?? 1, Math.ceil((need * 1.1) / SHARD_BUDGET));
  const nThreads = threads;
  const shardsOf = (t: number) => plans.filter((p) => p.shard % nThreads === t);
  const maxBatch = options.maxBatch ?? 64;
  // column splits of attn_output / ffn_down must not cut a block of the file's type (read before converting)
  let columnBlock = 1;
  for (let l = 0; l < config.nLayers; l++) {
    for (const kind of ["attn_output", "ffn_down"] as const) {
      const t = table.info(kind, l);
      columnBlock = Math.max(columnBlock, blockSizeOf(t.dtype), storedTypeOf(t.dtype, t.shape[1]) === "F32" ? 1 : 32);
    }
  }
  const plans = planShards(config, { nShards, contextSize, kvType, maxBatch, columnBlock, nSlots: slots, weightsF32 });
  const layout = exchangeLayout(config, maxBatch, nShards);
  const exchange = new SharedArrayBuffer(layout.nBytes);
  const control = new SharedArrayBuffer(controlInts(maxBatch) * 4);
  const ctrl = new Int32Array(control);
  const exF32 = new Float32Array(exchange);
  const kernels = weightsF32 ? "scalar" : options.kernels ?? "wasm";
  const perShard = config.nLayers * LAYER_KINDS.length + 2;
  const total = perShard * nShards;
  let done = 0;
  const progress = () => options.onProgress?.(++done, total);

  // workers first, so they read their slices while this thread reads shard 0's
  let shared: SharedArrayBuffer | undefined;
  if (model.path === undefined && model.blob === undefined) {
    if (!model.bytes) throw new TypeError("Cannot load model: neither a path, a blob nor the bytes were given");
    if (nThreads > 1) {
      shared = new SharedArrayBuffer(model.bytes.length);
      new Uint8Array(shared).set(model.bytes);
    }
  }
  const workers: Worker[] = [];
  const ready: Promise<void>[] = [];
  const failures: string[] = [];
  for (let s = 1; s < nThreads; s++) {
    const w = options.spawnWorker?.() ??
      new Worker(new URL("./shard_worker.ts", import.meta.url).href, { type: "module" });
    workers.push(w);
    ready.push(
      new Promise<void>((resolve, reject) => {
        w.onmessage = (e: MessageEvent<{ type: string; message?: string }>) => {
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
      }),
    );
    w.postMessage({
      plans: shardsOf(s),
      nThreads,
      tensors: model.tensors,
      path: model.path,
      blob: model.blob,
      bytes: shared,
      exchange,
      control,
      kernels,
    });
  }
  const closeWorkers = () => {
    postExit(ctrl);
    for (const w of workers) w.terminate();
  };
  const own: Shard[] = [];
  try {
    for (const plan of shardsOf(0)) {
      const readInto = (off: number, dst: Uint8Array) => model.source.readInto(off, dst);
      const k = await createKernels(kernels);
      own.push(
        new Shard({ plan, kernels: k, tensors: model.tensors, readInto, exchange, control, onTensor: progress }),
      );
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
    closeWorkers,
  });
}

function checkSlot(slot: number, slots: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= slots) {
    throw new RangeError(`Cannot evaluate in slot ${slot}: the engine has ${slots} slot(s)`);
  }
}

function checkRows(rows: BatchRow[], slots: number, contextSize: number, vocabSize: number, nLogits: number): void {
  if (!Array.isArray(rows) || rows.length === 0) throw new RangeError("Cannot evaluate a batch: no rows");
  if (!Number.isInteger(nLogits) || nLogits < 0 || nLogits > rows.length) {
    throw new RangeError(`Cannot evaluate a batch: logits of ${nLogits} rows asked, the batch has ${rows.length}`);
  }
  const last = new Map<number, number>();
  for (const r of rows) {
    checkSlot(r.slot, slots);
    checkEval([r.token], r.pos, contextSize, vocabSize);
    const prev = last.get(r.slot);
    if (prev !== undefined && r.pos <= prev) {
      throw new RangeError(`Cannot evaluate a batch: slot ${r.slot} has position ${r.pos} after ${prev}`);
    }
    last.set(r.slot, r.pos);
  }
}

function checkEval(tokens: number[], startPos: number, contextSize: number, vocabSize: number): void {
  if (!Array.isArray(tokens) || tokens.length === 0) throw new RangeError("Cannot evaluate: no tokens");
  if (!Number.isInteger(startPos) || startPos < 0 || startPos + tokens.length > contextSize) {
    throw new RangeError(
      `Cannot evaluate ${tokens.length} tokens at position ${startPos}: the context holds ${contextSize}`,
    );
  }
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw new RangeError(`Cannot evaluate: token ${t} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}

/** What createEngine() hands the sharded engine once every shard has loaded. */
interface ShardedEngineParts {
  model: EngineModel;
  config: LlamaConfig;
  contextSize: number;
  /** The model's tensors (tok_embd rows are read from here for each token). */
  table: TensorTable;
  /** The shards this thread runs (the others run in the workers). */
  own: Shard[];
  plans: ShardPlan[];
  nThreads: number;
  /** The exchange SharedArrayBuffer as f32, laid out as `layout` says. */
  exF32: Float32Array;
  /** The control slots (shard.ts CTRL). */
  ctrl: Int32Array;
  layout: ReturnType<typeof exchangeLayout>;
  /** Tells the workers to exit and terminates them. */
  closeWorkers: () => void;
}

/** The fast engine: shard 0 on this thread, the others in workers, driven through the control slots. */
class ShardedEngine implements EngineBase {
  #closed = false;
  readonly config: LlamaConfig;
  readonly contextSize: number;
  readonly metadata: Map<string, unknown>;
  readonly tokenizer?: Tokenizer;
  readonly nShards: number;
  readonly nThreads: number;
  readonly slots: number;
  readonly table: TensorTable;
  readonly own: Shard[];
  readonly plans: ShardPlan[];
  readonly exF32: Float32Array;
  readonly ctrl: Int32Array;
  readonly layout: ReturnType<typeof exchangeLayout>;
  readonly #closeWorkers: () => void;
  readonly #onClose?: () => void;

  constructor(p: ShardedEngineParts) {
    ({ config: this.config, contextSize: this.contextSize, table: this.table, own: this.own } = p);
    ({ plans: this.plans, nThreads: this.nThreads, exF32: this.exF32, ctrl: this.ctrl, layout: this.layout } = p);
    this.metadata = p.model.metadata;
    this.tokenizer = p.model.tokenizer;
    this.#closeWorkers = p.closeWorkers;
    this.#onClose = p.model.onClose;
    this.nShards = p.plans.length;
    this.slots = p.plans[0].nSlots ?? 1;
  }

  async eval(tokens: number[], startPos: number): Promise<Float32Array> {
    const all = await this.#run(tokens, startPos, false);
    return all[all.length - 1];
  }

  evalAll(tokens: number[], startPos: number): Promise<Float32Array[]> {
    return this.#run(tokens, startPos, true);
  }

  async evalSlot(slot: number, tokens: number[], startPos: number): Promise<Float32Array> {
    const all = await this.#run(tokens, startPos, false, slot);
    return all[all.length - 1];
  }

  evalHidden(slot: number, tokens: number[], startPos: number): Promise<Float32Array[]> {
    return this.#run(tokens, startPos, true, slot, true);
  }

  evalBatch(rows: BatchRow[], nLogits = rows.length): Promise<Float32Array[]> {
    if (this.#closed) return Promise.reject(new Error("Cannot evaluate: the engine is closed"));
    try {
      checkRows(rows, this.slots, this.contextSize, this.config.vocabSize, nLogits);
    } catch (e) {
      return Promise.reject(e);
    }
    const out: Float32Array[] = [];
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
      // rows of this chunk among the last nLogits: its last m rows (the shards compute logits for those only)
      const m = Math.max(0, Math.min(n, i + n - (rows.length - nLogits)));
      const failed = this.#forward({ nTokens: n, startPos: 0, wantLogits: m, slot: 0, multi: true, wantHidden: false });
      if (failed) return Promise.reject(failed);
      const l = this.layout.logits / 4;
      for (let r = 0; r < m; r++) out.push(this.exF32.slice(l + r * vocabSize, l + (r + 1) * vocabSize));
    }
    return Promise.resolve(out);
  }

  /** Row b of exchange.xIn (B, dim) = the token's tok_embd row, dequantized from the file. */
  #embed(b: number, token: number): void {
    const dim = this.config.dim;
    this.exF32.set(this.table.rowsF32("tok_embd", undefined, token, 1), this.layout.xIn / 4 + b * dim);
  }

  /** Posts one forward command and runs shard 0's part; returns the error when a shard failed (engine closed). */
  #forward(command: ForwardCommand): unknown {
    try {
      runForward(this.own, this.ctrl, this.nThreads, command);
    } catch (e) {
      this.close();
      return e;
    }
    return undefined;
  }

  #run(tokens: number[], startPos: number, all: boolean, slot = 0, hidden = false): Promise<Float32Array[]> {
    if (this.#closed) return Promise.reject(new Error("Cannot evaluate: the engine is closed"));
    try {
      checkSlot(slot, this.slots);
      checkEval(tokens, startPos, this.contextSize, this.config.vocabSize);
    } catch (e) {
      return Promise.reject(e);
    }
    const out: Float32Array[] = [];
    const { dim, vocabSize } = this.config;
    const B = this.plans[0].maxBatch;
    for (let i = 0; i < tokens.length; i += B) {
      const n = Math.min(B, tokens.length - i);
      for (let b = 0; b < n; b++) this.#embed(b, tokens[i + b]);
      const wantLogits = all ? n : i + n === tokens.length ? 1 : 0;
      const command = { nTokens: n, startPos: startPos + i, wantLogits, slot, multi: false, wantHidden: hidden };
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

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeWorkers();
    this.#onClose?.();
  }
}
