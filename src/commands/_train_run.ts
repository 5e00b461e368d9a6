/**
 * What `pretrain` and `sft` share: the seed's run_pt.sh / run_sft.sh flags in kebab-case, opening the base (a
 * GGUF directly, anything else — and any earlier --lora-model — through the merge room into an in-memory f32
 * GGUF), and the training loop: progress line, held-out loss every --eval-steps, loss.csv + loss.svg,
 * checkpoints every --save-steps and on Ctrl+C (exact resume with --resume), the PEFT folder written atomically.
 * see: the seed's scripts/training/run_pt.sh, run_sft.sh; transformers Trainer (logging/eval/save steps)
 */
import { BytesSink, BytesSource } from "../core/byte_source.ts";
import { FormatError, UsageError, UserError } from "../core/errors.ts";
import { readGguf } from "../formats/gguf.ts";
import { crc32 } from "../formats/zip.ts";
import { AtomicFileSink, FileSource } from "../io/mod.ts";
import { REF_QUANTIZERS } from "../merge/encode.ts";
import { type LoraAdapter, parseAdapterConfig } from "../merge/lora.ts";
import { openBase, openLora } from "../merge/open.ts";
import { MergeExecutor, planMerge } from "../merge/plan.ts";
import { ggufOutput } from "../merge/write.ts";
import { configFromGgufMetadata } from "../model/config.ts";
import { TensorTable } from "../model/weights.ts";
import {
  readSentencePieceModel,
  type Tokenizer,
  tokenizerFromGgufMetadata,
  tokenizerFromSentencePiece,
} from "../tokenizer/mod.ts";
import { type Checkpoint, readCheckpoint, writeCheckpoint } from "../train/checkpoint.ts";
import { ALPACA_SFT_CHAT_TEMPLATE, type DataCursor, DataOrder } from "../train/data.ts";
import { lossCsv, type LossRow, lossSvg } from "../train/loss_log.ts";
import { type AdapterFile, peftAdapterFiles } from "../train/peft_adapter.ts";
import {
  LORA_TARGETS,
  type LoraTarget,
  type SavedModule,
  SCHEDULE_TYPES,
  type ScheduleType,
  streamedTrainBase,
  type TrainBase,
  trainBaseFromTable,
  type TrainBatch,
  Trainer,
  type TrainerState,
  type TrainOptions,
} from "../train/mod.ts";
import type { TrainKernels } from "../kernels/train_kernels.ts";
import { floatFlag, intFlag, type Options } from "./_args.ts";
import { yieldToEventLoop } from "../core/event_loop.ts";
import { denoModelFs, prepareOutputDir, writeOutputFiles } from "./_model_fs.ts";
import { formatDuration, Progress } from "./_progress.ts";
import { sentencePieceCount } from "./_tokenizer_bridge.ts";

/** --stream-base auto streams a GGUF file's base when its layer matrices exceed this many bytes. */
export const STREAM_BASE_AUTO_BYTES = 2 ** 30;

/** The checkpoint file in --output-dir. */
export const CHECKPOINT_FILE = "trainer_state.ckpt";
/** Bumped when the checkpoint meta changes incompatibly. */
const CHECKPOINT_VERSION = 1;

/** Flags both commands take (defaults are the seed's run_pt.sh values; sft overrides some). */
export const TRAIN_FLAGS = {
  "base-model": { type: "string" },
  tokenizer: { type: "string" },
  data: { type: "string" },
  "output-dir": { type: "string" },
  "lora-rank": { type: "string" },
  "lora-alpha": { type: "string" },
  "lora-dropout": { type: "string" },
  trainable: { type: "string" },
  "modules-to-save": { type: "string" },
  "max-steps": { type: "string" },
  "num-train-epochs": { type: "string" },
  "per-device-train-batch-size": { type: "string" },
  "per-device-eval-batch-size": { type: "string" },
  "gradient-accumulation-steps": { type: "string" },
  "learning-rate": { type: "string" },
  "warmup-ratio": { type: "string" },
  "warmup-steps": { type: "string" },
  "lr-scheduler-type": { type: "string" },
  "weight-decay": { type: "string" },
  "max-grad-norm": { type: "string" },
  "validation-split-percentage": { type: "string" },
  "max-eval-samples": { type: "string" },
  "eval-steps": { type: "string" },
  "save-steps": { type: "string" },
  "logging-steps": { type: "string" },
  seed: { type: "string" },
  "save-format": { type: "string" },
  "save-dtype": { type: "string" },
  kernels: { type: "string" },
  threads: { type: "string", short: "t" },
  "gradient-checkpointing": { type: "boolean", default: false },
  "stream-base": { type: "string" },
  resume: { type: "boolean", default: false },
  force: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies Options;

/** The help text of the shared flags (each command adds its own lines above). */
export const TRAIN_FLAGS_HELP =
  `  --base-model PATH           GGUF (F32/F16/Q8_0/Q4_0; its embedded tokenizer is used), or anything
                              \`merge\` reads (HF folder, Meta folder, llama2.c .bin with --tokenizer)
  --tokenizer FILE            SentencePiece tokenizer.model (wins over the base's; shipped in the adapter);
                              a larger one resizes embed_tokens/lm_head as the seed's resize_token_embeddings
  --data FILE|DIR             training data (see above)
  --output-dir DIR            the PEFT folder to write (must be empty unless --force or --resume)
  --lora-rank N               LoRA r (default 8)
  --lora-alpha X              LoRA alpha (default 32; scaling = alpha / r)
  --lora-dropout P            dropout on the LoRA input (default 0.05)
  --trainable LIST            LoRA targets (default q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj)
  --modules-to-save LIST      trained in full and saved whole: embed_tokens,lm_head (default), or "none"
  --max-steps N               optimizer steps (default: --num-train-epochs over the data)
  --num-train-epochs N        epochs when --max-steps is not given (default 1)
  --per-device-train-batch-size N   sequences per micro-batch (default 1)
  --per-device-eval-batch-size N    sequences per held-out batch (default: the train batch size)
  --gradient-accumulation-steps N   micro-batches per optimizer step (default 8)
  --learning-rate X           peak learning rate
  --warmup-ratio X            warmup = ceil(max-steps · ratio) steps
  --warmup-steps N            warmup steps (wins over --warmup-ratio when > 0)
  --lr-scheduler-type T       cosine (default) | linear | constant | constant_with_warmup
  --weight-decay X            AdamW decoupled weight decay
  --max-grad-norm X           clip the global gradient norm (default 1.0; 0 = off)
  --validation-split-percentage P   held-out share: below 1 a fraction as the seed passes it (0.001 =
                              0.1 %), otherwise a percentage; rounded up to at least one example (default 0.05)
  --max-eval-samples N        at most N held-out examples per evaluation (default 256)
  --eval-steps N              held-out loss every N steps, and at the end (default 100)
  --save-steps N              checkpoint every N steps (default 200); Ctrl+C also saves one
  --logging-steps N           progress line every N steps (default 10)
  --seed N                    data split and order, LoRA init, dropout (default 42)
  --save-format LIST          bin,safetensors (default both)
  --save-dtype T              f32 (default: merging gives exactly the trained model) | f16
  --kernels K                 wasm (default when available) | scalar
  -t, --threads N             1 (default) or 2: a Worker computes half of each WASM product's rows
  --gradient-checkpointing    keep only each layer's input, recompute its activations in backward (same
                              numbers; ~1/3 more compute, far less memory at long blocks and many layers)
  --stream-base M             auto (default) | on | off: read the frozen base's layer matrices from the file
                              one layer at a time instead of holding them (same numbers; auto = a GGUF file
                              whose layer matrices exceed 1 GiB, e.g. a 7B Q4_0)
  --resume                    continue from --output-dir's checkpoint (same flags and data)
  --force                     write into a non-empty --output-dir
  -h, --help                  show this help`;

type Values = { [K in keyof typeof TRAIN_FLAGS]?: string | boolean };

const str = (v: Values, k: keyof typeof TRAIN_FLAGS) => v[k] as string | undefined;

/** Command-specific defaults. */
export interface TrainDefaults {
  learningRate: number;
  warmupRatio: number;
  weightDecay: number;
}

/** The parsed shared flags. */
export interface TrainFlags {
  baseModel: string;
  tokenizer?: string;
  data: string;
  outputDir: string;
  options: Omit<TrainOptions, "maxSteps" | "mode">;
  loraTargets: LoraTarget[];
  modulesToSave: SavedModule[];
  maxSteps?: number;
  epochs: number;
  batchSize: number;
  evalBatchSize: number;
  gradAccum: number;
  validation: number;
  maxEvalSamples: number;
  evalSteps: number;
  saveSteps: number;
  loggingSteps: number;
  seed: number;
  formats: ("bin" | "safetensors")[];
  dtype: "F32" | "F16";
  kernels: "wasm" | "scalar";
  threads: 1 | 2;
  /** --gradient-checkpointing: TrainOptions.recompute (not in identityOf: it does not change the numbers). */
  gradientCheckpointing: boolean;
  /** --stream-base (not in identityOf: it does not change the numbers). */
  streamBase: "auto" | "on" | "off";
  resume: boolean;
  force: boolean;
}

function list(v: string | undefined, fallback: string[]): string[] {
  if (v === undefined) return fallback;
  if (v.trim() === "none" || v.trim() === "") return [];
  return v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Parses the shared flags; UsageError (exit 2) names the bad flag. */
export function parseTrainFlags(v: Values, d: TrainDefaults): TrainFlags {
  const baseModel = str(v, "base-model"), data = str(v, "data"), outputDir = str(v, "output-dir");
  if (!baseModel) throw new UsageError("--base-model is required");
  if (!data) throw new UsageError("--data is required");
  if (!outputDir) throw new UsageError("--output-dir is required");
  const targets = list(str(v, "trainable"), [
    "q_proj",
    "v_proj",
    "k_proj",
    "o_proj",
    "gate_proj",
    "down_proj",
    "up_proj",
  ]);
  for (const t of targets) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) {
      throw new UsageError(`--trainable: "${t}" is not one of ${LORA_TARGETS.join(", ")}`);
    }
  }
  const modules = list(str(v, "modules-to-save"), ["embed_tokens", "lm_head"]);
  for (const m of modules) {
    if (m !== "embed_tokens" && m !== "lm_head") {
      throw new UsageError(`--modules-to-save: "${m}" is not embed_tokens or lm_head`);
    }
  }
  const num = (k: keyof typeof TRAIN_FLAGS, fallback: number, min: number, max = Infinity) => {
    const x = floatFlag(str(v, k), `--${k}`, fallback);
    if (!(x >= min && x <= max)) throw new UsageError(`--${k} must be in [${min}, ${max}], got ${x}`);
    return x;
  };
  const int = (k: keyof typeof TRAIN_FLAGS, fallback: number, min = 1) => intFlag(str(v, k), `--${k}`, fallback, min);
  const scheduler = str(v, "lr-scheduler-type") ?? "cosine";
  if (!(SCHEDULE_TYPES as readonly string[]).includes(scheduler)) {
    throw new UsageError(`--lr-scheduler-type must be one of ${SCHEDULE_TYPES.join(", ")}, got "${scheduler}"`);
  }
  const formats = list(str(v, "save-format"), ["bin", "safetensors"]);
  if (formats.length === 0 || formats.some((f) => f !== "bin" && f !== "safetensors")) {
    throw new UsageError(`--save-format takes bin and/or safetensors, got "${str(v, "save-format")}"`);
  }
  const dtype = (str(v, "save-dtype") ?? "f32").toUpperCase();
  if (dtype !== "F32" && dtype !== "F16") throw new UsageError(`--save-dtype must be f32 or f16, got "${dtype}"`);
  const kernels = str(v, "kernels") ?? "wasm";
  if (kernels !== "wasm" && kernels !== "scalar") throw new UsageError(`--kernels must be wasm or scalar`);
  const seed = int("seed", 42, 0);
  const threads = int("threads", 1);
  if (threads > 2) throw new UsageError(`--threads must be 1 or 2, got ${threads}`);
  if (threads === 2 && kernels === "scalar") throw new UsageError("--threads 2 needs the WASM kernels");
  const streamBase = str(v, "stream-base") ?? "auto";
  if (streamBase !== "auto" && streamBase !== "on" && streamBase !== "off") {
    throw new UsageError(`--stream-base must be auto, on or off, got "${streamBase}"`);
  }
  const batchSize = int("per-device-train-batch-size", 1);
  const r = int("lora-rank", 8);
  const maxSteps = str(v, "max-steps") === undefined ? undefined : int("max-steps", 1);
  const validation = num("validation-split-percentage", 0.05, 0, 99.999);
  return {
    baseModel,
    tokenizer: str(v, "tokenizer"),
    data,
    outputDir: outputDir.replace(/\/+$/, "") || "/",
    options: {
      lora: {
        r,
        alpha: num("lora-alpha", 32, -1e9, 1e9),
        dropout: num("lora-dropout", 0.05, 0, 0.999),
        targets: targets as LoraTarget[],
      },
      modulesToSave: modules as SavedModule[],
      lr: num("learning-rate", d.learningRate, 0, 10),
      schedule: scheduler as ScheduleType,
      warmupRatio: num("warmup-ratio", d.warmupRatio, 0, 1),
      warmupSteps: int("warmup-steps", 0, 0),
      weightDecay: num("weight-decay", d.weightDecay, 0, 10),
      maxGradNorm: num("max-grad-norm", 1, 0),
      seed,
    },
    loraTargets: targets as LoraTarget[],
    modulesToSave: modules as SavedModule[],
    maxSteps,
    epochs: int("num-train-epochs", 1),
    batchSize,
    evalBatchSize: int("per-device-eval-batch-size", batchSize),
    gradAccum: int("gradient-accumulation-steps", 8),
    validation,
    maxEvalSamples: int("max-eval-samples", 256),
    evalSteps: int("eval-steps", 100),
    saveSteps: int("save-steps", 200),
    loggingSteps: int("logging-steps", 10),
    seed,
    formats: formats as ("bin" | "safetensors")[],
    dtype,
    kernels,
    threads: threads as 1 | 2,
    gradientCheckpointing: v["gradient-checkpointing"] === true,
    streamBase,
    resume: v.resume === true,
    force: v.force === true,
  };
}

/** The flags that change the trained numbers (a resume must repeat them). */
export function identityOf(f: TrainFlags): Record<string, unknown> {
  return {
    baseModel: f.baseModel,
    tokenizer: f.tokenizer ?? null,
    options: f.options,
    modulesToSave: f.modulesToSave,
    maxSteps: f.maxSteps ?? null,
    epochs: f.epochs,
    batchSize: f.batchSize,
    gradAccum: f.gradAccum,
    validation: f.validation,
    seed: f.seed,
    kernels: f.kernels,
  };
}

/** An opened base: the trainer's view, the tokenizer, and what the adapter folder ships. */
export interface OpenedTrainBase {
  base: TrainBase;
  tokenizer: Tokenizer;
  /** tokenizer.model bytes for the adapter folder, when we have a SentencePiece file. */
  tokenizerModel?: Uint8Array;
  warnings: string[];
  /** The base's tensor table (for --stream-base) and whether it is a file on disk (not merged in memory). */
  table?: TensorTable;
  onDisk?: boolean;
}

function isGgufFile(path: string): boolean {
  try {
    using src = new FileSource(path);
    const h = src.read(0, Math.min(4, src.size));
    return h.length === 4 && h[0] === 0x47 && h[1] === 0x47 && h[2] === 0x55 && h[3] === 0x46;
  } catch {
    return false;
  }
}

function readTokenizerFile(path: string): { tok: Tokenizer; bytes: Uint8Array } {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot open tokenizer "${path}": file not found`, "check --tokenizer");
    }
    throw e;
  }
  try {
    return { tok: tokenizerFromSentencePiece(readSentencePieceModel(bytes)), bytes };
  } catch (e) {
    throw new UserError(
      `Cannot read tokenizer "${path}": ${(e as Error).message}`,
      "pass a SentencePiece tokenizer.model with --tokenizer",
    );
  }
}

/**
 * Opens `--base-model` (+ `--lora-model` adapters merged in order, as `merge` would). A GGUF without adapters is
 * used as is (its tensors keep their file type: Q4_0/Q8_0 stay quantized); anything else goes through the merge
 * room into an f32 GGUF in memory.
 */
export async function openTrainBase(
  path: string,
  loraModels: string[],
  tokenizerPath?: string,
): Promise<OpenedTrainBase> {
  const warnings: string[] = [];
  let kind: "file" | "dir" | undefined;
  try {
    kind = Deno.statSync(path).isDirectory ? "dir" : "file";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot open base model "${path}": not found`, "check --base-model");
    }
    throw e;
  }
  const given = tokenizerPath ? readTokenizerFile(tokenizerPath) : undefined;
  if (kind === "file" && loraModels.length === 0 && isGgufFile(path)) {
    const src = new FileSource(path);
    const rows = readGguf(src).tensors.find((t) => t.name === "token_embd.weight")?.shape[0];
    // a larger --tokenizer needs resized embeddings: that goes through the merge room below
    if (!given || rows === undefined || given.tok.vocabSize <= rows) return finish(src, given, warnings);
    src.close();
  }
  const opened: { close(): void }[] = [];
  const base = openBase(denoModelFs, path);
  try {
    const loras: LoraAdapter[] = loraModels.map((p) =>
      openLora(denoModelFs, p, opened, { tokenizerSize: (b) => sentencePieceCount(b, `${p}/tokenizer.model`) })
    );
    const current = loras.reduce((v, l) => l.tokenizerSize ?? v, base.config.vocabSize);
    if (given && given.tok.vocabSize > current) {
      // the seed's resize_token_embeddings: an adapter with no tensors whose tokenizer is larger makes the plan
      // append rows drawn exactly as `merge` draws them (merge/vocab_resize.ts), so base + adapter merges alike
      loras.push({
        label: `${tokenizerPath} (embedding resize)`,
        config: parseAdapterConfig({ peft_type: "LORA", r: 1, target_modules: [] }),
        pairs: new Map(),
        replacements: new Map(),
        tokenizerSize: given.tok.vocabSize,
      });
      warnings.push(
        `embed_tokens/lm_head resized from ${current} to ${given.tok.vocabSize} rows for "${tokenizerPath}" ` +
          "(new rows ~ N(0, 0.02²), as merge initializes them)",
      );
    }
    const plan = planMerge(base, loras, { tokenizerSize: loras.length ? given?.tok.vocabSize : undefined });
    warnings.push(...plan.warnings);
    const exec = new MergeExecutor(plan);
    const sink = new BytesSink();
    const [file] = ggufOutput(plan, exec, "F32", { quantizers: REF_QUANTIZERS, name: "yangtuo train base" });
    await file.write(sink);
    const source = new BytesSource(sink.bytes(), path);
    const tokPath = loras.findLast((l) => l.tokenizerPath)?.tokenizerPath ?? base.tokenizerPath;
    let tok: { tok: Tokenizer; bytes?: Uint8Array } | undefined = given ??
      (tokPath ? readTokenizerFile(tokPath) : undefined);
    if (!tok && base.gguf) {
      // a GGUF base's embedded vocabulary, when nothing else is given
      const fromGguf = tokenizerFromGgufMetadataSafe(base.gguf.metadata);
      if (fromGguf) tok = { tok: fromGguf };
    }
    return finish(source, tok, warnings);
  } finally {
    base.close();
    opened.forEach((f) => f.close());
  }
}

function tokenizerFromGgufMetadataSafe(meta: Map<string, unknown>): Tokenizer | undefined {
  if (!meta.has("tokenizer.ggml.tokens")) return undefined;
  return tokenizerFromGgufMetadata(meta);
}

function finish(
  source: FileSource | BytesSource,
  tok: { tok: Tokenizer; bytes?: Uint8Array } | undefined,
  warnings: string[],
): OpenedTrainBase {
  const gguf = readGguf(source);
  const embd = gguf.tensors.find((t) => t.name === "token_embd.weight");
  const config = configFromGgufMetadata(gguf.metadata, embd?.shape[0]);
  const table = new TensorTable({ metadata: gguf.metadata, tensors: gguf.tensors, source }, config);
  if (!tok) {
    const fromGguf = tokenizerFromGgufMetadataSafe(gguf.metadata);
    if (!fromGguf) {
      throw new UserError(
        `Cannot train: no tokenizer for "${source.name ?? "the base model"}"`,
        "pass the SentencePiece model with --tokenizer tokenizer.model",
      );
    }
    tok = { tok: fromGguf };
  }
  if (!tok.bytes) {
    warnings.push(
      "the adapter folder gets no tokenizer.model (the GGUF holds only its vocabulary): pass --tokenizer to ship one",
    );
  }
  if (tok.tok.vocabSize !== config.vocabSize) {
    throw new UserError(
      `Cannot train: the tokenizer has ${tok.tok.vocabSize} tokens but the model has ${config.vocabSize} embedding rows`,
      "use the tokenizer that belongs to the base model (resizing the embeddings is done by merging a LoRA " +
        "trained with the larger tokenizer)",
    );
  }
  return {
    base: trainBaseFromTable(table),
    tokenizer: tok.tok,
    tokenizerModel: tok.bytes,
    warnings,
    table,
    onDisk: source instanceof FileSource,
  };
}

/** Training data as the loop needs it. */
export interface TrainData {
  nTrain: number;
  /** Held-out examples (already capped by --max-eval-samples). */
  nEval: number;
  /** A micro-batch of train examples (indices into the train split). */
  trainBatch(indices: number[]): TrainBatch;
  /** Held-out batches of at most `batchSize` examples. */
  evalBatches(batchSize: number): TrainBatch[];
  /** A checksum of the tokenized data (a resume must see the same data). */
  fingerprint: number;
  /** One line describing the data (printed at start). */
  summary: string;
}

/** CRC-32 over int32 arrays (the data fingerprint). */
export function fingerprintOf(arrays: Iterable<Int32Array>): number {
  let c = 0;
  for (const a of arrays) c = crc32(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), c);
  return c;
}

/** The loop's settings beyond the flags. */
export interface LoopSetup {
  command: "pretrain" | "sft";
  mode: "stage1" | "lora";
  flags: TrainFlags;
  opened: OpenedTrainBase;
  data: TrainData;
  /** Flags that must be equal on --resume (everything that changes the trained numbers). */
  identity: Record<string, unknown>;
  /** The base_model_name_or_path written into adapter_config.json. */
  baseName: string;
}

function log(msg: string): void {
  console.error(msg);
}

async function loadKernels(
  which: "wasm" | "scalar",
  threads: 1 | 2,
  maxResidentBytes?: number,
): Promise<(TrainKernels & { close?: () => void }) | undefined> {
  if (which === "scalar") return undefined;
  try {
    const mod = await import("../kernels/train_wasm.ts");
    return await mod.createWasmTrainKernels({ threads, maxResidentBytes });
  } catch (e) {
    log(`warning: WASM training kernels unavailable (${(e as Error).message}); using the scalar references`);
    return undefined;
  }
}

function writeAtomic(path: string, fill: (sink: AtomicFileSink) => void): void {
  const sink = new AtomicFileSink(path);
  try {
    fill(sink);
    sink.commit();
  } catch (e) {
    sink.abort();
    throw e;
  }
}

const enc = new TextEncoder();

/** Runs the whole training: returns the exit code (0, or 130 after Ctrl+C with a checkpoint saved). */
export async function runTraining(s: LoopSetup): Promise<number> {
  const { flags: f, data, opened } = s;
  opened.warnings.forEach((w) => log(`warning: ${w}`));
  const microPerStep = f.gradAccum;
  const stepsPerEpoch = Math.max(1, Math.ceil(Math.ceil(data.nTrain / f.batchSize) / microPerStep));
  const maxSteps = f.maxSteps ?? stepsPerEpoch * f.epochs;
  const options: TrainOptions = {
    ...f.options,
    mode: s.mode,
    lora: s.mode === "lora" ? f.options.lora : undefined,
    modulesToSave: f.modulesToSave,
    maxSteps,
    recompute: f.gradientCheckpointing,
  };
  if (s.mode === "stage1" && f.modulesToSave.length === 0) {
    throw new UserError("Cannot train stage 1: --modules-to-save is empty", "stage 1 trains embed_tokens,lm_head");
  }
  // --stream-base: the layer matrices come in per layer, and the WASM kernels keep no resident copy of them
  const layerBytes = opened.table?.file.tensors.filter((t) => t.name.startsWith("blk.") && t.shape.length === 2)
    .reduce((n, t) => n + t.nBytes, 0) ?? 0;
  const stream = opened.table !== undefined &&
    (f.streamBase === "on" ||
      (f.streamBase === "auto" && opened.onDisk === true && layerBytes > STREAM_BASE_AUTO_BYTES));
  if (stream) {
    s = { ...s, opened: { ...opened, base: streamedTrainBase(opened.table!) } };
    log(`base: ${(layerBytes / 2 ** 30).toFixed(2)} GiB of layer matrices streamed from the file one layer at a time`);
  }
  const kernels = await loadKernels(f.kernels, f.threads, stream ? 0 : undefined);
  try {
    return await trainLoop(s, options, maxSteps, kernels);
  } finally {
    kernels?.close?.();
  }
}

async function trainLoop(
  s: LoopSetup,
  options: TrainOptions,
  maxSteps: number,
  kernels: TrainKernels | undefined,
): Promise<number> {
  const { flags: f, data, opened } = s;
  const microPerStep = f.gradAccum;
  const trainer = new Trainer(opened.base, options, kernels);
  const identity = {
    version: CHECKPOINT_VERSION,
    command: s.command,
    mode: s.mode,
    fingerprint: data.fingerprint,
    ...s.identity,
  };
  const ckptPath = `${f.outputDir}/${CHECKPOINT_FILE}`;
  let cursor: DataCursor = { epoch: 0, position: 0 };
  let rows: LossRow[] = [];
  let elapsedBefore = 0;
  if (f.resume) {
    let src: FileSource;
    try {
      src = new FileSource(ckptPath);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new UserError(`Cannot resume: no checkpoint "${ckptPath}"`, "run without --resume to start afresh");
      }
      throw e;
    }
    let ckpt: Checkpoint;
    try {
      ckpt = readCheckpoint(src);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      throw new UserError(
        e.message,
        "the checkpoint is damaged: start afresh without --resume in an empty --output-dir",
      );
    } finally {
      src.close();
    }
    const meta = ckpt.meta as {
      identity: unknown;
      trainer: Omit<TrainerState, "tensors">;
      cursor: DataCursor;
      rows: LossRow[];
      elapsed: number;
    };
    const want = JSON.stringify(identity), got = JSON.stringify(meta.identity);
    if (want !== got) {
      throw new UserError(
        `Cannot resume from "${ckptPath}": it was made with other flags or data (saved ${got}, now ${want})`,
        "resume with the same flags and data, or start afresh in an empty --output-dir",
      );
    }
    try {
      trainer.setState({ ...meta.trainer, tensors: ckpt.tensors });
    } catch (e) {
      throw new UserError(`Cannot resume from "${ckptPath}": ${(e as Error).message}`, "start afresh");
    }
    cursor = meta.cursor;
    // JSON wrote NaN as null
    rows = meta.rows.map((r) => ({
      ...r,
      loss: r.loss ?? NaN,
      gradNorm: r.gradNorm ?? NaN,
      evalLoss: r.evalLoss === null ? NaN : r.evalLoss,
    }));
    elapsedBefore = meta.elapsed;
    log(`resumed from ${ckptPath} at step ${trainer.stepCount}/${maxSteps}`);
  } else {
    let hasCheckpoint = false;
    try {
      hasCheckpoint = Deno.statSync(ckptPath).isFile;
    } catch { /* none */ }
    if (hasCheckpoint && !f.force) {
      throw new UserError(
        `Cannot write to "${f.outputDir}": it holds the checkpoint of an unfinished run`,
        "add --resume to continue it, or --force to start afresh (the checkpoint is then replaced)",
      );
    }
    prepareOutputDir(f.outputDir, f.force);
  }
  const order = new DataOrder(data.nTrain, f.seed, cursor);
  const counts = trainer.parameterCounts();
  log(data.summary);
  log(
    `${s.command} (${
      s.mode === "stage1" ? "stage 1: embeddings only" : "LoRA"
    }): trainable params ${counts.trainable} ` +
      `|| all params ${counts.total} || trainable% ${(100 * counts.trainable / counts.total).toFixed(4)}; ` +
      `${maxSteps} steps of ${f.gradAccum} × ${f.batchSize} sequences; ${kernels ? "WASM" : "scalar"} kernels, ` +
      `${f.threads} thread(s)`,
  );

  // held-out loss: the mean over every labelled held-out position (HF's evaluate averages per-batch means; the two
  // agree for pretraining's equal-length blocks and differ slightly for SFT batches of unequal response lengths)
  const evaluate = (): number => {
    let sum = 0, n = 0;
    for (const b of data.evalBatches(f.evalBatchSize)) {
      const r = trainer.evalLoss(b);
      if (r.nTokens === 0) continue;
      sum += r.loss * r.nTokens;
      n += r.nTokens;
    }
    return n ? sum / n : NaN;
  };

  const saveCheckpoint = () => {
    const state = trainer.getState();
    const { tensors, ...rest } = state;
    writeAtomic(ckptPath, (sink) =>
      writeCheckpoint(sink, {
        meta: {
          identity,
          trainer: rest,
          cursor: order.cursor,
          rows,
          elapsed: elapsedBefore + (performance.now() - t0) / 1000,
        },
        tensors,
      }));
  };
  const writeLogs = () => {
    writeAtomic(`${f.outputDir}/loss.csv`, (sink) => sink.write(enc.encode(lossCsv(rows))));
    writeAtomic(
      `${f.outputDir}/loss.svg`,
      (sink) => sink.write(enc.encode(lossSvg(rows, { title: `${s.command} loss` }))),
    );
  };

  let interrupted = 0;
  const onSigint = () => {
    interrupted++;
    if (interrupted === 1) log("\ninterrupt: saving a checkpoint after this step (Ctrl+C again to quit without)");
    else {
      log("\ninterrupted: quit without a new checkpoint (the last saved one is intact)");
      Deno.exit(130);
    }
  };
  let listening = false;
  try {
    Deno.addSignalListener("SIGINT", onSigint);
    listening = true;
  } catch { /* no signals (e.g. Windows without a console) */ }
  const stopListening = () => {
    if (listening) Deno.removeSignalListener("SIGINT", onSigint);
    listening = false;
  };
  const t0 = performance.now();
  const startStep = trainer.stepCount;
  let tokensSeen = 0;
  try {
    if (startStep === 0 && rows.length === 0) {
      const ev = evaluate();
      rows.push({ step: 0, loss: NaN, lr: 0, gradNorm: NaN, tokens: 0, elapsed: 0, evalLoss: ev });
      log(`step 0/${maxSteps} held-out loss ${ev.toFixed(4)} ppl ${Math.exp(ev).toFixed(3)}`);
    }
    while (trainer.stepCount < maxSteps) {
      const micro: TrainBatch[] = [];
      for (let i = 0; i < microPerStep; i++) micro.push(data.trainBatch(order.next(f.batchSize)));
      const r = trainer.step(micro);
      tokensSeen += micro.reduce((n, b) => n + b.batch * b.seqLen, 0);
      const now = (performance.now() - t0) / 1000;
      const row: LossRow = {
        step: r.step,
        loss: r.loss,
        lr: r.lr,
        gradNorm: r.gradNorm,
        tokens: r.tokens,
        elapsed: elapsedBefore + now,
      };
      const last = r.step === maxSteps;
      if (r.step % f.evalSteps === 0 || last) row.evalLoss = evaluate();
      rows.push(row);
      if (r.step % f.loggingSteps === 0 || last || row.evalLoss !== undefined) {
        const perStep = now / (r.step - startStep);
        const ev = row.evalLoss === undefined
          ? ""
          : ` | held-out loss ${row.evalLoss.toFixed(4)} ppl ${Math.exp(row.evalLoss).toFixed(3)}`;
        log(
          `step ${r.step}/${maxSteps} loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(3)} ` +
            `grad-norm ${r.gradNorm.toFixed(3)} ${(tokensSeen / Math.max(now, 1e-9)).toFixed(0)} tok/s ` +
            `ETA ${formatDuration(perStep * (maxSteps - r.step))}${ev}`,
        );
      }
      if (r.step % f.saveSteps === 0 && !last) {
        saveCheckpoint();
        writeLogs();
      }
      await yieldToEventLoop();
      if (interrupted && !last) {
        saveCheckpoint();
        writeLogs();
        log(`interrupted: checkpoint saved at step ${r.step}; continue with the same command and --resume`);
        return 130;
      }
    }
    writeLogs();
    // a checkpoint at the final step first: Ctrl+C while the adapter is written (its staging files are removed)
    // then leaves a state that --resume turns into the adapter without training again
    saveCheckpoint();
    stopListening(); // from here writeOutputFiles' own handler removes the partial adapter on Ctrl+C
    const files: AdapterFile[] = peftAdapterFiles({
      config: { ...trainer.adapterConfig(s.baseName) },
      tensors: trainer.adapterTensors(),
      tokenizerModel: opened.tokenizerModel,
      specialTokens: specialTokensOf(opened.tokenizer),
      // the prompt an SFT model was trained with, for chat/serve/web to find after merge (pre-training has none)
      chatTemplate: s.command === "sft" ? ALPACA_SFT_CHAT_TEMPLATE : undefined,
    }, { formats: f.formats, dtype: f.dtype });
    await writeOutputFiles(f.outputDir, files);
    try {
      Deno.removeSync(ckptPath);
    } catch { /* never saved */ }
    const final = rows.at(-1)?.evalLoss;
    console.log(
      `wrote ${f.outputDir}: ${files.map((x) => x.path).join(", ")}, loss.csv, loss.svg` +
        (final === undefined ? "" : ` (held-out loss ${final.toFixed(4)}, ppl ${Math.exp(final).toFixed(3)})`),
    );
    return 0;
  } finally {
    stopListening();
  }
}

function specialTokensOf(tok: Tokenizer): { bos: string; eos: string; unk: string; pad?: string } {
  const piece = (id: number, fallback: string) => (id >= 0 && id < tok.vocabSize ? tok.pieceOf(id) : fallback);
  const out: { bos: string; eos: string; unk: string; pad?: string } = {
    bos: piece(tok.bosId, "<s>"),
    eos: piece(tok.eosId, "</s>"),
    unk: piece(tok.unkId, "<unk>"),
  };
  if (tok.padId >= 0 && tok.padId < tok.vocabSize) out.pad = tok.pieceOf(tok.padId);
  return out;
}

/**
 * The data files of --data: the file itself, or a folder's `*.txt` / `*.jsonl` files in name order (the seed's
 * --dataset_dir globs `*.txt`). Throws UserError when there are none or together they exceed `maxBytes`.
 */
export function listDataFiles(path: string, maxBytes: number, pattern = /\.(txt|jsonl)$/i): string[] {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`Cannot read data "${path}": not found`, "check --data");
    throw e;
  }
  const files = st.isDirectory
    ? [...Deno.readDirSync(path)].filter((e) => e.isFile && pattern.test(e.name)).map((e) => `${path}/${e.name}`)
      .sort()
    : [path];
  if (files.length === 0) {
    throw new UserError(`Cannot read data "${path}": the folder has no .txt or .jsonl files`, "check --data");
  }
  const total = files.reduce((n, f) => n + Deno.statSync(f).size, 0);
  if (total > maxBytes) {
    throw new UserError(
      `Cannot read data "${path}": ${total} bytes exceeds the limit of ${maxBytes}`,
      "use less data per run",
    );
  }
  return files;
}

/**
 * A "tokenize" progress bar (terminal only) over texts: returns the onProgress callback the data functions take
 * (called with the number of texts done) and a finish function. Units are UTF-16 characters, shown like bytes.
 */
export function tokenizeProgress(texts: readonly string[]): { onProgress: (done: number) => void; finish: () => void } {
  let total = 0;
  for (const t of texts) total += t.length;
  const bar = new Progress("tokenize", total);
  let i = 0;
  return {
    onProgress(done) {
      let n = 0;
      for (; i < done && i < texts.length; i++) n += texts[i].length;
      bar.add(n);
    },
    finish: () => bar.finish(),
  };
}

/** Reads a data file with a size limit and a clear error. */
export function readDataFile(path: string, maxBytes: number): Uint8Array {
  let size: number;
  try {
    const st = Deno.statSync(path);
    if (st.isDirectory) {
      throw new UserError(`Cannot read data "${path}": it is a folder`, "pass one data file with --data");
    }
    size = st.size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`Cannot read data "${path}": file not found`, "check --data");
    }
    throw e;
  }
  if (size > maxBytes) {
    throw new UserError(`Cannot read data "${path}": ${size} bytes exceeds the limit of ${maxBytes}`, "split the file");
  }
  return Deno.readFileSync(path);
}

/** Revokes what training never needs (network, subprocesses, FFI); reads and writes stay as the task grants. */
export async function dropUnneededPermissions(): Promise<void> {
  for (const name of ["net", "run", "ffi"] as const) {
    try {
      await Deno.permissions.revoke({ name });
    } catch { /* not supported */ }
  }
}
