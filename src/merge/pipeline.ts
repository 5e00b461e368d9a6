/**
 * The model pipelines as library calls: merge (base + LoRAs → GGUF / Hugging Face / pth output files), convert (any
 * readable base → one GGUF file) and quantizeGguf (a GGUF → a GGUF at another type). Files are read through the
 * caller's ModelFs and written by the caller (OutputFiles, a ByteSink), so this room stays pure;
 * src/commands/{merge,convert,quantize}.ts parse flags, print progress and write atomically.
 * see: src/merge/plan.ts (merge semantics), src/quant/quantize_plan.ts (type rules)
 */
import type { ByteSink, ByteSource } from "../core/byte_source.ts";
import { type DType, nBytesOf } from "../core/dtypes.ts";
import { UserError } from "../core/errors.ts";
import { readGguf } from "../formats/gguf.ts";
import { type GgufKv, ggufKv, ggufKvsOf, writeGguf } from "../formats/gguf_writer.ts";
import { LLAMA_FTYPE, type QuantTarget, quantTypeFor } from "../quant/quantize_plan.ts";
import { dequantizeRef } from "../quant/dequantize.ts";
import type { TensorInfo } from "../core/tensor.ts";
import { encodeF32, loadQuantizers, type RowQuantizers } from "./encode.ts";
import { type ModelFs, openBase, type OpenedBase, type OpenedLora, openLora } from "./open.ts";
import { checkTokenizerFits, MergeExecutor, type MergePlan, planMerge } from "./plan.ts";
import { MergePool, poolSizeFor } from "./pool.ts";
import { isReadableFloat, nElementsOf, rowsCols, sourceTensorFromInfo } from "./source_tensor.ts";
import { ggufOutput, huggingfaceOutput, type OutputFile, type OutputTokenizer, pthOutput } from "./write.ts";
import {
  chatTemplateOfTokenizerConfig,
  GGML_QUANTIZATION_VERSION,
  KEY_GENERAL_FILE_TYPE,
  KEY_GENERAL_QUANTIZATION_VERSION,
  KEY_TOKENIZER_CHAT_TEMPLATE,
  KEY_TOKENIZER_LIST,
  KEY_TOKENIZER_PREFIX,
} from "../formats/gguf_constants.ts";

/**
 * How the pipelines read tokenizer files. The caller supplies it (the tokenizer room is not merge's to import);
 * src/commands/_tokenizer_bridge.ts has the SentencePiece and llama2.c one.
 */
export interface VocabReader {
  /** Number of pieces of a SentencePiece tokenizer.model. */
  pieceCount(bytes: Uint8Array, path: string): number;
  /** tokenizer.ggml.* KVs for a tokenizer.model, as llama.cpp's converter writes them. */
  ggufKvs(bytes: Uint8Array, path: string): GgufKv[];
  /** tokenizer.ggml.* KVs for a llama2.c tokenizer.bin (convert only). */
  ggufKvsFromLlama2c(bytes: Uint8Array, vocabSize?: number): GgufKv[];
}

/** Progress hooks of a pipeline run. */
export interface PipelineProgress {
  /** Input bytes processed so far (an estimate spread over the output elements). */
  onInputBytes?: (n: number) => void;
  /** Awaited before each tensor (commands yield to the event loop so Ctrl+C is seen). */
  beforeTensor?: () => Promise<void>;
}

function needVocab(vocab: VocabReader | undefined, path: string): VocabReader {
  if (!vocab) throw new TypeError(`Cannot read tokenizer "${path}": no VocabReader was given`);
  return vocab;
}

/** Number of tokens in tokenizer.ggml.* KVs (the length of tokenizer.ggml.tokens), undefined when absent. */
export function vocabTokenCount(kvs: readonly GgufKv[] | undefined): number | undefined {
  const tokens = kvs?.find((kv) => kv.key === KEY_TOKENIZER_LIST);
  return Array.isArray(tokens?.value) ? tokens.value.length : undefined;
}

/** What to merge and how to write it. */
export interface MergeOptions {
  baseModel: string;
  loraModels: string[];
  outputType: "gguf" | "huggingface" | "pth";
  /** Reads tokenizer files; required when a LoRA, the base or `tokenizer` brings a tokenizer.model. */
  vocab?: VocabReader;
  quant?: QuantTarget;
  tokenizer?: string;
  shards?: number;
  maxShardBytes?: number;
  /** Threads (the main thread + threads-1 workers); default 1 (no workers). */
  threads?: number;
  /** Library use only (tests): allow a GGUF without tokenizer.ggml.* KVs (llama.cpp cannot load it). */
  allowNoTokenizer?: boolean;
  /** Receives warnings as they arise (they are also in MergeJob.warnings). */
  onWarning?: (message: string) => void;
}

/** An opened and checked merge: its inputs, and the output files to write. */
export interface MergeJob {
  plan: MergePlan;
  /** Every input file (for checksums). */
  inputFiles: string[];
  inputBytes: number;
  warnings: string[];
  /**
   * The output files, each computing its tensors as it is written. Throws UserError when the output would have
   * no tokenizer or one that does not fit the embedding rows.
   */
  outputs(progress?: PipelineProgress): Promise<OutputFile[]>;
  /** Closes the inputs and the worker pool. */
  close(): void;
}

/**
 * Opens a base model and LoRAs through `fs` (headers only) and checks them against each other; throws UserError
 * (with a hint) for every problem found before any heavy work.
 *
 * @example
 * ```ts
 * import { BytesSink } from "../core/byte_source.ts";
 * import { writeGguf } from "../formats/gguf_writer.ts";
 * import { configToGgufKvs } from "../model/config.ts";
 * import { expectedShape, tensorName } from "../model/tensor_names.ts";
 * import { canonicalOrder, memoryModelFs, openMerge } from "./mod.ts";
 * // a constant 1-layer GGUF base, written out as a Hugging Face folder in memory (a real call names LoRA
 * // folders in `loraModels` and passes a VocabReader for their tokenizer.model)
 * const config = { dim: 32, hiddenDim: 64, nLayers: 1, nHeads: 2, nKvHeads: 2, headSize: 16, vocabSize: 40,
 *   contextLength: 64, normEps: 1e-6, ropeTheta: 10000 };
 * const tensors = canonicalOrder(1).map(({ kind, layer }) => {
 *   const shape = expectedShape(config, kind);
 *   const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5);
 *   return { name: tensorName("gguf", kind, layer), dtype: "F32" as const, shape, data: () => new Uint8Array(values.buffer) };
 * });
 * const base = new BytesSink();
 * await writeGguf(base, { metadata: configToGgufKvs(config, "const", 0), tensors });
 * const job = await openMerge(memoryModelFs({ "base.gguf": base.bytes() }), {
 *   baseModel: "base.gguf", loraModels: [], outputType: "huggingface",
 * });
 * try {
 *   for (const file of await job.outputs()) await file.write(new BytesSink()); // config.json, model.safetensors, …
 * } finally {
 *   job.close();
 * }
 * ```
 */
export async function openMerge(fs: ModelFs, o: MergeOptions): Promise<MergeJob> {
  const opened: { close(): void }[] = [];
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    o.onWarning?.(m);
  };
  let base: OpenedBase | undefined;
  let pool: MergePool | undefined;
  const close = () => {
    pool?.close();
    base?.close();
    opened.forEach((f) => f.close());
  };
  try {
    base = openBase(fs, o.baseModel);
    const loras: OpenedLora[] = [];
    for (const p of o.loraModels) {
      const tokenizerSize = (b: Uint8Array) => needVocab(o.vocab, p).pieceCount(b, `${p}/tokenizer.model`);
      loras.push(await openLora(fs, p, opened, { tokenizerSize }));
    }
    const tokPath = o.tokenizer ?? loras.at(-1)?.tokenizerPath ?? base.tokenizerPath;
    const tokBytes = tokPath ? fs.readBytes(tokPath) : undefined;
    const plan = planMerge(base, loras, {
      tokenizerSize: o.tokenizer && tokBytes
        ? needVocab(o.vocab, o.tokenizer).pieceCount(tokBytes, o.tokenizer)
        : undefined,
    });
    plan.warnings.forEach(warn);
    const b = base;
    const inputBytes = b.inputBytes + loras.reduce((s, l) => s + l.inputBytes, 0);
    return {
      plan,
      inputFiles: [...b.files, ...loras.flatMap((l) => l.files), ...(o.tokenizer ? [o.tokenizer] : [])],
      inputBytes,
      warnings,
      close,
      async outputs(progress = {}) {
        const outputType = o.outputType;
        const target = o.quant ?? "F16";
        const tokenizer: OutputTokenizer = {};
        if (tokBytes) {
          tokenizer.modelBytes = tokBytes;
          if (outputType === "gguf") tokenizer.ggufKvs = needVocab(o.vocab, tokPath!).ggufKvs(tokBytes, tokPath!);
          const dir = dirOf(tokPath!);
          tokenizer.extraFiles = ["special_tokens_map.json", "tokenizer_config.json"]
            .filter((n) => fs.kind(dir + n) === "file")
            .map((n) => ({ path: n, bytes: fs.readBytes(dir + n) }));
          const config = tokenizer.extraFiles.find((f) => f.path === "tokenizer_config.json");
          if (tokenizer.ggufKvs) tokenizer.ggufKvs.push(...chatTemplateKvs(config?.bytes));
        } else if (outputType === "gguf" && b.gguf) {
          tokenizer.ggufKvs = ggufKvsOf(b.gguf).filter((kv) => kv.key.startsWith(KEY_TOKENIZER_PREFIX));
        }
        if (outputType === "gguf" && !tokenizer.ggufKvs?.length && !o.allowNoTokenizer) {
          throw new UserError(
            "Cannot write GGUF: no tokenizer found (the LoRA folders and the base have no tokenizer.model)",
            "pass --tokenizer path/to/tokenizer.model (llama.cpp needs the vocabulary inside the GGUF)",
          );
        }
        const nTokens = vocabTokenCount(tokenizer.ggufKvs);
        if (nTokens !== undefined) {
          checkTokenizerFits(
            nTokens,
            plan.config.vocabSize,
            `Cannot write GGUF: tokenizer "${tokPath ?? o.baseModel}"`,
          );
        }
        const quantizers = await loadQuantizers();
        const exec = new MergeExecutor(plan);
        const workers = poolSizeFor(o.threads ?? 1);
        pool = workers > 0 ? new MergePool(workers) : undefined;
        const totalElements = plan.tensors.reduce((s, t) => s + nElementsOf(t.shape), 0);
        const passes = outputType === "pth" ? (o.shards ?? 1) : 1;
        const perElement = inputBytes / totalElements / passes;
        const common = {
          quantizers,
          tokenizer,
          onElements: (n: number) => progress.onInputBytes?.(n * perElement),
          name: "yangtuo merge",
          beforeTensor: progress.beforeTensor,
          pool,
        };
        const dtype = target === "F32" ? "F32" : "F16";
        return outputType === "gguf"
          ? ggufOutput(plan, exec, target, { ...common, fileName: `ggml-model-${target.toLowerCase()}.gguf` })
          : outputType === "huggingface"
          ? huggingfaceOutput(plan, exec, { ...common, maxShardBytes: o.maxShardBytes, dtype })
          : pthOutput(plan, exec, { ...common, shards: o.shards, dtype });
      },
    };
  } catch (e) {
    close();
    throw e;
  }
}

/** How to convert. */
export interface ConvertOptions {
  /** Reads tokenizer files; required when `tokenizer` is given or a tokenizer.model lies next to the input. */
  vocab?: VocabReader;
  outtype?: QuantTarget;
  /** tokenizer.model or llama2.c tokenizer.bin to embed (default: tokenizer.model next to the input). */
  tokenizer?: string;
  /** Threads (main + threads-1 workers); default 1 (no workers). */
  threads?: number;
  /** Library use (tests): allow a GGUF without a vocabulary. */
  allowNoTokenizer?: boolean;
}

/** An opened and checked conversion: one GGUF output file. */
export interface ConvertJob {
  inputBytes: number;
  /** The GGUF file, computing each tensor as it is written. */
  output(progress?: PipelineProgress): Promise<OutputFile>;
  close(): void;
}

/**
 * Opens `input` (HF folder, Meta folder, llama2.c .bin, GGUF) and its tokenizer through `fs` for conversion to
 * GGUF — the merge pipeline with no LoRA; throws UserError when no tokenizer is found or it does not fit.
 *
 * @example
 * ```ts
 * import { BytesSink } from "../core/byte_source.ts";
 * import { writeGguf } from "../formats/gguf_writer.ts";
 * import { configToGgufKvs } from "../model/config.ts";
 * import { expectedShape, tensorName } from "../model/tensor_names.ts";
 * import { canonicalOrder, memoryModelFs, openConvert } from "./mod.ts";
 * // an F32 GGUF of a constant 1-layer model, converted to Q8_0 in memory
 * const config = { dim: 32, hiddenDim: 64, nLayers: 1, nHeads: 2, nKvHeads: 2, headSize: 16, vocabSize: 40,
 *   contextLength: 64, normEps: 1e-6, ropeTheta: 10000 };
 * const tensors = canonicalOrder(1).map(({ kind, layer }) => {
 *   const shape = expectedShape(config, kind);
 *   const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5);
 *   return { name: tensorName("gguf", kind, layer), dtype: "F32" as const, shape, data: () => new Uint8Array(values.buffer) };
 * });
 * const f32 = new BytesSink();
 * await writeGguf(f32, { metadata: configToGgufKvs(config, "const", 0), tensors });
 * const job = openConvert(memoryModelFs({ "m.gguf": f32.bytes() }), "m.gguf", { outtype: "Q8_0", allowNoTokenizer: true });
 * try {
 *   const out = new BytesSink();
 *   await (await job.output()).write(out);
 * } finally {
 *   job.close();
 * }
 * ```
 */
export function openConvert(fs: ModelFs, input: string, o: ConvertOptions): ConvertJob {
  const target = o.outtype ?? "F16";
  const base = openBase(fs, input);
  let pool: MergePool | undefined;
  const close = () => {
    pool?.close();
    base.close();
  };
  try {
    let vocab: GgufKv[] | undefined;
    const tokPath = o.tokenizer ?? base.tokenizerPath;
    if (tokPath) {
      const bytes = fs.readBytes(tokPath);
      const reader = needVocab(o.vocab, tokPath);
      vocab = tokPath.endsWith(".bin") ? reader.ggufKvsFromLlama2c(bytes, base.config.vocabSize) : [
        ...reader.ggufKvs(bytes, tokPath),
        ...chatTemplateKvs(readIfFile(fs, `${dirOf(tokPath)}tokenizer_config.json`)),
      ];
    } else if (base.gguf) {
      vocab = ggufKvsOf(base.gguf).filter((kv) => kv.key.startsWith(KEY_TOKENIZER_PREFIX));
    }
    if (!vocab?.length && !o.allowNoTokenizer) {
      throw new UserError(
        `Cannot convert "${input}": no tokenizer found`,
        "pass --tokenizer path/to/tokenizer.model (or tokenizer.bin for llama2.c models)",
      );
    }
    const plan = planMerge(base, []);
    // the same check merge makes: a tokenizer that does not fit the embedding rows is refused before any writing
    const nTokens = vocabTokenCount(vocab);
    if (nTokens !== undefined) {
      checkTokenizerFits(nTokens, plan.config.vocabSize, `Cannot convert "${input}": tokenizer "${tokPath ?? input}"`);
    }
    return {
      inputBytes: base.inputBytes,
      close,
      async output(progress = {}) {
        const exec = new MergeExecutor(plan);
        const workers = poolSizeFor(o.threads ?? 1);
        pool = workers > 0 ? new MergePool(workers) : undefined;
        const total = plan.tensors.reduce((s, t) => s + nElementsOf(t.shape), 0);
        const [file] = ggufOutput(plan, exec, target, {
          quantizers: await loadQuantizers(),
          tokenizer: { ggufKvs: vocab },
          name: input.slice(input.lastIndexOf("/") + 1) || "model",
          onElements: (n) => progress.onInputBytes?.((n * base.inputBytes) / total),
          beforeTensor: progress.beforeTensor,
          pool,
        });
        return file;
      },
    };
  } catch (e) {
    close();
    throw e;
  }
}

/** Reads rows of any tensor a GGUF may hold that we can decode (F32/F16/BF16/Q4_0/Q8_0) as f32. */
function readRowsF32(src: ByteSource, info: TensorInfo, row0: number, nRows: number, dst: Float32Array): Float32Array {
  if (isReadableFloat(info.dtype)) return sourceTensorFromInfo(src, info).readRows(row0, nRows, dst);
  const [, cols] = rowsCols(info.shape);
  const rowBytes = nBytesOf(info.dtype, cols);
  const bytes = src.read(info.byteOffset + row0 * rowBytes, nRows * rowBytes);
  const out = dst.subarray(0, nRows * cols);
  if (info.dtype !== "Q4_0" && info.dtype !== "Q8_0") {
    throw new UserError(`Cannot quantize tensor "${info.name}": input type ${info.dtype} is not supported`);
  }
  out.set(dequantizeRef(info.dtype, bytes, nRows * cols));
  return out;
}

/** Options of quantizeGguf. */
export interface QuantizeOptions extends PipelineProgress {
  allowRequantize?: boolean;
  /** Row quantizers (default: the references; loadQuantizers() gives the WASM ones, byte-identical). */
  quantizers?: RowQuantizers;
  /** Threads (the main thread reads, threads-1 workers quantize; same bytes); default 1 (no workers). */
  threads?: number;
}

/**
 * Writes `src` (a GGUF) at `target` into `sink`, one tensor at a time (row blocks of ~1 Mi values): 2-D weights at
 * `target`, 1-D tensors F32 (llama.cpp --pure), tensors already at their type copied through.
 *
 * @example
 * ```ts
 * import { BytesSink, BytesSource } from "../core/byte_source.ts";
 * import { writeGguf } from "../formats/gguf_writer.ts";
 * import { loadQuantizers, quantizeGguf } from "./mod.ts";
 * const f32 = new BytesSink();
 * const w = new Float32Array(2 * 32).map((_, i) => Math.sin(i));
 * await writeGguf(f32, { metadata: [], tensors: [{ name: "w", dtype: "F32", shape: [2, 32], data: () => new Uint8Array(w.buffer) }] });
 * const q4 = new BytesSink();
 * const r = await quantizeGguf(new BytesSource(f32.bytes()), q4, "Q4_0", { quantizers: await loadQuantizers() });
 * if (r.types.get("Q4_0") !== 1) throw new Error("expected one Q4_0 tensor");
 * ```
 */
export async function quantizeGguf(
  src: ByteSource,
  sink: ByteSink,
  target: QuantTarget,
  opts: QuantizeOptions = {},
): Promise<{ tensors: number; types: Map<DType, number> }> {
  const file = readGguf(src);
  const types = new Map<DType, number>();
  const workers = poolSizeFor(opts.threads ?? 1);
  const pool = workers > 0 ? new MergePool(workers) : undefined;
  try {
    const tensors = file.tensors.map((info) => {
      let dtype = quantTypeFor(info.shape, target);
      if (!isReadableFloat(info.dtype)) {
        if (info.dtype === dtype) {
          // already at the target: copy the bytes through
        } else if (info.dtype !== "Q4_0" && info.dtype !== "Q8_0") {
          throw new UserError(`Cannot quantize "${info.name}": input type ${info.dtype} is not supported`);
        } else if (!opts.allowRequantize) {
          throw new UserError(
            `Cannot quantize "${info.name}": it is already ${info.dtype}`,
            "quantize from the f16/f32 GGUF instead (or pass --allow-requantize and accept the extra error)",
          );
        }
      }
      if (info.shape.length < 2) dtype = "F32";
      types.set(dtype, (types.get(dtype) ?? 0) + 1);
      return {
        name: info.name,
        dtype,
        shape: info.shape,
        data: async () => {
          await opts.beforeTensor?.();
          if (info.dtype === dtype) {
            opts.onInputBytes?.(info.nBytes);
            return src.read(info.byteOffset, info.nBytes);
          }
          const [rows, cols] = rowsCols(info.shape);
          const rowIn = info.nBytes / rows;
          if (pool) {
            return await pool.encodeTensor(
              rows,
              cols,
              dtype,
              (r, n, dst) => void readRowsF32(src, info, r, n, dst),
              (n) => opts.onInputBytes?.(n * rowIn),
            );
          }
          const out = new Uint8Array(nBytesOf(dtype, nElementsOf(info.shape)));
          const rowOut = nBytesOf(dtype, cols);
          const step = Math.max(1, Math.floor((1 << 20) / cols));
          const buf = new Float32Array(step * cols);
          for (let r = 0; r < rows; r += step) {
            const n = Math.min(step, rows - r);
            const x = readRowsF32(src, info, r, n, buf);
            encodeF32(dtype, x, out.subarray(r * rowOut, (r + n) * rowOut), opts.quantizers);
            opts.onInputBytes?.(n * rowIn);
          }
          return out;
        },
      };
    });
    const kvs = ggufKvsOf(file).filter((kv) =>
      kv.key !== KEY_GENERAL_FILE_TYPE && kv.key !== KEY_GENERAL_QUANTIZATION_VERSION
    );
    kvs.push(ggufKv.u32(KEY_GENERAL_FILE_TYPE, LLAMA_FTYPE[target]));
    if (target === "Q4_0" || target === "Q8_0") {
      kvs.push(ggufKv.u32(KEY_GENERAL_QUANTIZATION_VERSION, GGML_QUANTIZATION_VERSION));
    }
    await writeGguf(sink, { metadata: kvs, tensors, alignment: file.alignment });
    return { tensors: tensors.length, types };
  } finally {
    pool?.close();
  }
}

/**
 * `tokenizer.chat_template` from the bytes of the tokenizer_config.json beside a tokenizer (a fine-tuned model's
 * prompt, as llama.cpp's converter carries it); [] when there is none.
 */
function chatTemplateKvs(tokenizerConfig: Uint8Array | undefined): GgufKv[] {
  const t = tokenizerConfig && chatTemplateOfTokenizerConfig(tokenizerConfig);
  return t === undefined ? [] : [ggufKv.string(KEY_TOKENIZER_CHAT_TEMPLATE, t)];
}

/** The folder part of a path, with its final "/" ("" for a bare name). */
function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/") + 1);
}

/** The bytes of `path` when it is a file, else undefined. */
function readIfFile(fs: ModelFs, path: string): Uint8Array | undefined {
  return fs.kind(path) === "file" ? fs.readBytes(path) : undefined;
}
