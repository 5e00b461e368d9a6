/**
 * Seeded generator of LLaMA checkpoints and PEFT LoRA adapters for tests, benches and the demo: any size up to the
 * real 7B shapes (dim 4096, 32 layers, hidden 11008, vocab 49,953), in GGUF, Hugging Face (.bin or safetensors,
 * sharded + index) and Meta (consolidated.0N.pth + params.json) layouts. Values are a pure function of
 * (seed, tensor, row), generated row block by row block straight into the project's own writers, so a 13 GB
 * checkpoint never sits in memory. The canonical values are Meta's layout; HF files hold q/k permuted (permute.ts).
 * Files are returned as `TinyFile`s (path + write(sink)); the caller decides where and how to write them.
 */
import type { ByteSink } from "../core/byte_source.ts";
import { type DType, nBytesOf } from "../core/dtypes.ts";
import { type GgufKv, ggufKv, writeGguf } from "../formats/gguf_writer.ts";
import { writePytorchCheckpoint } from "../formats/pytorch_writer.ts";
import { writeSafetensors } from "../formats/safetensors.ts";
import { configToGgufMetadata, configToHfConfig, type LlamaConfig } from "../model/config.ts";
import { expectedShape, HF_MODULE, needsRopePermute, type TensorKind, tensorName } from "../model/tensor_names.ts";
import { encodeF32 } from "./encode.ts";
import { metaParamsFor, metaShardCount, metaShardOf } from "./meta_shards.ts";
import { type RopeLayout, ropeRowMap } from "./permute.ts";
import { canonicalOrder } from "./plan.ts";
import { rowsCols, type SourceTensor } from "./source_tensor.ts";

/** Dimensions and seed of a generated model. */
export interface TinyModelSpec {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads?: number;
  vocabSize: number;
  seed?: number;
  contextLength?: number;
  normEps?: number;
}

/** A file to write: a path relative to the output folder and a function writing its bytes. */
export interface TinyFile {
  path: string;
  write(sink: ByteSink): void | Promise<void>;
}

/** The real 7B shape with the Chinese-LLaMA vocabulary. */
export const SPEC_7B: TinyModelSpec = {
  dim: 4096,
  hiddenDim: 11008,
  nLayers: 32,
  nHeads: 32,
  vocabSize: 49953,
  normEps: 1e-6,
};

/** The LlamaConfig of a spec. */
export function tinyConfig(s: TinyModelSpec): LlamaConfig {
  return {
    dim: s.dim,
    hiddenDim: s.hiddenDim,
    nLayers: s.nLayers,
    nHeads: s.nHeads,
    nKvHeads: s.nKvHeads ?? s.nHeads,
    headSize: s.dim / s.nHeads,
    vocabSize: s.vocabSize,
    contextLength: s.contextLength ?? 2048,
    normEps: s.normEps ?? 1e-6,
    ropeTheta: 10000,
  };
}

/** Shape of a tensor of a config (row-major). */
export function tinyShape(c: LlamaConfig, kind: TensorKind): number[] {
  return expectedShape(c, kind);
}

const KIND_IDS: Record<TensorKind, number> = {
  tok_embd: 1,
  attn_norm: 2,
  attn_q: 3,
  attn_k: 4,
  attn_v: 5,
  attn_output: 6,
  ffn_norm: 7,
  ffn_gate: 8,
  ffn_down: 9,
  ffn_up: 10,
  output_norm: 11,
  output: 12,
};

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Fills `dst` with uniform values in [-amp, amp) + offset, a pure function of the four seeds. */
export function seededRow(a: number, b: number, c: number, row: number, dst: Float32Array, amp: number, offset = 0) {
  let s = mix32(mix32(mix32(a ^ 0x3c6ef372) ^ b) ^ Math.imul(c, 0x9e3779b1)) ^ mix32(row + 0x1234567);
  // hot loop: xorshift32 (fast; the statistics of test weights do not matter beyond being varied)
  if (s === 0) s = 0x6d2b79f5;
  const k = (2 * amp) / 4294967296;
  for (let i = 0; i < dst.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    dst[i] = (s >>> 0) * k - amp + offset;
  }
}

/**
 * A generated base tensor, in `layout` (q/k rows permuted for "hf"). Values: norms 1 ± 0.1, embeddings ±0.5,
 * linear weights ±1/√in (activations stay O(1) through the layers, so forward passes compare meaningfully).
 */
export function tinyTensor(
  spec: TinyModelSpec,
  kind: TensorKind,
  layer?: number,
  layout: RopeLayout = "meta",
): SourceTensor {
  const c = tinyConfig(spec);
  const shape = tinyShape(c, kind);
  const [rows, cols] = rowsCols(shape);
  const seed = spec.seed ?? 1;
  const norm = shape.length === 1;
  const amp = norm ? 0.1 : kind === "tok_embd" ? 0.5 : 1 / Math.sqrt(cols);
  const offset = norm ? 1 : 0;
  const rope = needsRopePermute(kind) && layout === "hf";
  const map = rope ? ropeRowMap(rows / c.headSize, c.headSize, "meta", "hf") : undefined;
  return {
    name: tensorName(layout === "hf" ? "hf" : "meta", kind, layer),
    dtype: "F32",
    shape,
    readRows(row0, nRows, dst = new Float32Array(nRows * cols)) {
      if (row0 < 0 || nRows < 0 || row0 + nRows > rows) throw new RangeError(`Cannot read rows of ${kind}`);
      for (let i = 0; i < nRows; i++) {
        const r = map ? map[row0 + i] : row0 + i;
        seededRow(seed, KIND_IDS[kind], layer ?? 0xffff, r, dst.subarray(i * cols, (i + 1) * cols), amp, offset);
      }
      return dst.subarray(0, nRows * cols);
    },
  };
}

/** Encodes rows [row0, row1) × columns [col0, col1) of a SourceTensor as `dtype`, streaming blocks to `write`. */
export function streamRows(
  t: SourceTensor,
  dtype: DType,
  write: (chunk: Uint8Array) => void,
  range: { row0?: number; row1?: number; col0?: number; col1?: number } = {},
  blockElements = 1 << 20,
): void {
  const [rows, cols] = rowsCols(t.shape);
  const { row0 = 0, row1 = rows, col0 = 0, col1 = cols } = range;
  const width = col1 - col0;
  const step = Math.max(1, Math.floor(blockElements / cols));
  const buf = new Float32Array(step * cols);
  const slice = width === cols ? undefined : new Float32Array(step * width);
  for (let r = row0; r < row1; r += step) {
    const n = Math.min(step, row1 - r);
    let x = t.readRows(r, n, buf);
    if (slice) {
      for (let i = 0; i < n; i++) slice.set(x.subarray(i * cols + col0, i * cols + col1), i * width);
      x = slice.subarray(0, n * width);
    }
    const out = new Uint8Array(nBytesOf(dtype, x.length));
    encodeF32(dtype, x, out);
    write(out);
  }
}

/** GGUF `llama.*` and general.* KVs for a config (typed as llama.cpp's converter writes them). */
export function llamaGgufKvs(c: LlamaConfig, name: string, fileType: number): GgufKv[] {
  const kvs: GgufKv[] = [
    ggufKv.string("general.architecture", "llama"),
    ggufKv.string("general.name", name),
  ];
  for (const [key, value] of configToGgufMetadata(c)) {
    const isFloat = key.endsWith("epsilon") || key.endsWith("freq_base");
    kvs.push(isFloat ? ggufKv.f32(key, value) : ggufKv.u32(key, value));
  }
  kvs.push(ggufKv.u32("general.file_type", fileType));
  return kvs;
}

/** Options of the base-model generators. */
export interface TinyBaseOptions {
  /** Storage dtype of 2-D weights (and of norms for HF/Meta; GGUF norms are always F32). Default F16. */
  dtype?: "F32" | "F16" | "BF16";
  /** GGUF: tokenizer KVs to embed (tokenizer.ggml.*). */
  vocab?: GgufKv[];
  /** GGUF file name (default model.gguf). */
  fileName?: string;
  /** HF: weight files (default safetensors) and number of shards (default 1). */
  hfFormat?: "safetensors" | "bin";
  shards?: number;
}

/** A GGUF base model (llama.cpp names, Meta q/k layout). */
export function tinyGgufFiles(spec: TinyModelSpec, opts: TinyBaseOptions = {}): TinyFile[] {
  const c = tinyConfig(spec);
  const dtype = opts.dtype ?? "F16";
  const tensors = canonicalOrder(c.nLayers).map(({ kind, layer }) => {
    const t = tinyTensor(spec, kind, layer, "meta");
    const dt: DType = t.shape.length === 1 ? "F32" : dtype;
    return {
      name: tensorName("gguf", kind, layer),
      dtype: dt,
      shape: t.shape,
      data: () => {
        const chunks: Uint8Array[] = [];
        streamRows(t, dt, (b) => chunks.push(b));
        return concatBytes(chunks);
      },
    };
  });
  const fileType = dtype === "F32" ? 0 : dtype === "F16" ? 1 : 32;
  return [{
    path: opts.fileName ?? "model.gguf",
    write: (sink) =>
      writeGguf(sink, { metadata: [...llamaGgufKvs(c, "tiny", fileType), ...(opts.vocab ?? [])], tensors }),
  }];
}

function concatBytes(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const text = (s: string): TinyFile["write"] => (sink) => sink.write(new TextEncoder().encode(s));

/** A Meta checkpoint: consolidated.0N.pth (N = opts.shards, default by dim as the seed) + params.json. */
export function tinyMetaFiles(spec: TinyModelSpec, opts: TinyBaseOptions = {}): TinyFile[] {
  const c = tinyConfig(spec);
  const dtype = opts.dtype ?? "F16";
  const nShards = opts.shards ?? metaShardCount(c.dim);
  const files: TinyFile[] = [];
  for (let s = 0; s < nShards; s++) {
    const name = `consolidated.${String(s).padStart(2, "0")}.pth`;
    files.push({
      path: name,
      write: (sink) => {
        const tensors = canonicalOrder(c.nLayers).map(({ kind, layer }) => {
          const t = tinyTensor(spec, kind, layer, "meta");
          const { dim, start, size, shape } = metaShardOf(kind, t.shape, nShards, s);
          const range = dim === 0
            ? { row0: start, row1: start + size }
            : dim === 1
            ? { col0: start, col1: start + size }
            : {};
          return {
            name: tensorName("meta", kind, layer),
            dtype,
            shape,
            write: (w: (b: Uint8Array) => void) => streamRows(t, dtype, w, range),
          };
        });
        writePytorchCheckpoint(sink, tensors, { archiveName: name.replace(/\.pth$/, "") });
      },
    });
  }
  files.push({ path: "params.json", write: text(JSON.stringify(metaParamsFor(c))) });
  return files;
}

/** Hugging Face tensor order within a checkpoint: embed, layers, norm, lm_head. */
function hfTensors(spec: TinyModelSpec): { name: string; t: SourceTensor }[] {
  const c = tinyConfig(spec);
  return canonicalOrder(c.nLayers).map(({ kind, layer }) => ({
    name: tensorName("hf", kind, layer),
    t: tinyTensor(spec, kind, layer, "hf"),
  }));
}

/** Splits tensors into `n` shards of roughly equal bytes, keeping order. */
function shardTensors<T extends { t: SourceTensor }>(items: T[], n: number): T[][] {
  const sizes = items.map((x) => rowsCols(x.t.shape).reduce((a, b) => a * b, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  const out: T[][] = Array.from({ length: n }, () => []);
  let acc = 0;
  items.forEach((x, i) => {
    const s = Math.min(n - 1, Math.floor((acc / total) * n));
    out[s].push(x);
    acc += sizes[i];
  });
  return out.filter((s) => s.length > 0);
}

/** An HF checkpoint: config.json + pytorch_model*.bin (or model*.safetensors) + index when sharded. */
export function tinyHfFiles(spec: TinyModelSpec, opts: TinyBaseOptions = {}): TinyFile[] {
  const c = tinyConfig(spec);
  const dtype = opts.dtype ?? "F16";
  const format = opts.hfFormat ?? "safetensors";
  const shards = shardTensors(hfTensors(spec), opts.shards ?? 1);
  const files: TinyFile[] = [];
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((group, i) => {
    const n = shards.length;
    const stem = format === "bin" ? "pytorch_model" : "model";
    const ext = format === "bin" ? "bin" : "safetensors";
    const name = n === 1
      ? `${stem}.${ext}`
      : `${stem}-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.${ext}`;
    for (const { name: tn, t } of group) {
      weightMap[tn] = name;
      total += nBytesOf(dtype, rowsCols(t.shape).reduce((a, b) => a * b, 1));
    }
    files.push({
      path: name,
      write: async (sink) => {
        const tensors = group.map(({ name: tn, t }) => ({
          name: tn,
          dtype,
          shape: t.shape,
          write: (w: (b: Uint8Array) => void) => streamRows(t, dtype, w),
        }));
        if (format === "bin") writePytorchCheckpoint(sink, tensors, { archiveName: "archive" });
        else await writeSafetensorsFromStreams(sink, tensors);
      },
    });
  });
  if (shards.length > 1) {
    const index = format === "bin" ? "pytorch_model.bin.index.json" : "model.safetensors.index.json";
    files.push({
      path: index,
      write: text(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)),
    });
  }
  files.push({ path: "config.json", write: text(JSON.stringify(configToHfConfig(c, dtypeToTorch(dtype)), null, 2)) });
  return files;
}

/** torch_dtype string of a dtype. */
export function dtypeToTorch(d: DType): string {
  return d === "F32" ? "float32" : d === "BF16" ? "bfloat16" : "float16";
}

/** A streamed tensor for the safetensors writer. */
interface StreamTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  write(w: (b: Uint8Array) => void): void;
}

async function writeSafetensorsFromStreams(sink: ByteSink, tensors: StreamTensor[]): Promise<void> {
  await writeSafetensors(
    sink,
    tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      data: () => {
        const chunks: Uint8Array[] = [];
        t.write((b) => chunks.push(b));
        return concatBytes(chunks);
      },
    })),
    { format: "pt" },
  );
}

/** A generated LoRA adapter's settings. */
export interface TinyLoraSpec {
  r: number;
  alpha: number;
  fanInFanOut?: boolean;
  /** HF module names (q_proj, v_proj, …). */
  targetModules: string[];
  /** embed_tokens and/or lm_head: full matrices of `vocabSize` rows. */
  modulesToSave?: string[];
  /** Rows of the modules_to_save matrices (the LoRA's tokenizer size); default the base's vocab. */
  vocabSize?: number;
  seed: number;
  /** Storage dtype of the adapter tensors (default F16, as PEFT saves fp16 training runs). */
  dtype?: "F32" | "F16";
  /** adapter_model.bin (default) or adapter_model.safetensors. */
  format?: "bin" | "safetensors";
  /** Bytes of a tokenizer.model to ship in the folder. */
  tokenizerModel?: Uint8Array;
  /** Extra adapter_config.json fields. */
  configExtra?: Record<string, unknown>;
}

/** One adapter tensor, generated in memory (LoRA factors are rank × width; replacements stream by rows). */
export interface TinyLoraTensor {
  name: string;
  t: SourceTensor;
}

/** The tensors of a generated adapter, PEFT-named, in PEFT's save order. */
export function tinyLoraTensors(spec: TinyModelSpec, lora: TinyLoraSpec): TinyLoraTensor[] {
  const c = tinyConfig(spec);
  const out: TinyLoraTensor[] = [];
  const kinds = (Object.keys(HF_MODULE) as TensorKind[]).filter((k) => lora.targetModules.includes(HF_MODULE[k]));
  const fan = lora.fanInFanOut ?? false;
  for (let l = 0; l < c.nLayers; l++) {
    for (const kind of kinds) {
      const [o, i] = tinyShape(c, kind);
      const base = `base_model.model.${tensorName("hf", kind, l).replace(/\.weight$/, "")}`;
      const aShape = [lora.r, fan ? o : i], bShape = [fan ? i : o, lora.r];
      out.push({
        name: `${base}.lora_A.weight`,
        t: loraFactor(`${base}.lora_A.weight`, aShape, lora.seed, 2 * l, kind, 1 / Math.sqrt(aShape[1])),
      });
      out.push({
        name: `${base}.lora_B.weight`,
        t: loraFactor(`${base}.lora_B.weight`, bShape, lora.seed, 2 * l + 1, kind, 0.05),
      });
    }
  }
  const vocab = lora.vocabSize ?? c.vocabSize;
  for (const m of lora.modulesToSave ?? []) {
    const kind = m === "embed_tokens" ? "tok_embd" : m === "lm_head" ? "output" : undefined;
    if (!kind) throw new RangeError(`Cannot generate modules_to_save "${m}" (embed_tokens or lm_head only)`);
    const name = `base_model.model.${tensorName("hf", kind)}`;
    out.push({ name, t: loraFactor(name, [vocab, c.dim], lora.seed, 999, kind, 0.5) });
  }
  return out;
}

function loraFactor(
  name: string,
  shape: number[],
  seed: number,
  slot: number,
  kind: TensorKind,
  amp: number,
): SourceTensor {
  const [rows, cols] = shape;
  return {
    name,
    dtype: "F32",
    shape,
    readRows(row0, nRows, dst = new Float32Array(nRows * cols)) {
      if (row0 < 0 || row0 + nRows > rows) throw new RangeError(`Cannot read rows of ${name}`);
      for (let i = 0; i < nRows; i++) {
        seededRow(
          seed + 0x51ed,
          KIND_IDS[kind] * 1000 + slot,
          7,
          row0 + i,
          dst.subarray(i * cols, (i + 1) * cols),
          amp,
        );
      }
      return dst.subarray(0, nRows * cols);
    },
  };
}

/** The adapter_config.json object of a generated LoRA. */
export function tinyAdapterConfig(lora: TinyLoraSpec): Record<string, unknown> {
  return {
    base_model_name_or_path: "tiny-llama",
    bias: "none",
    fan_in_fan_out: lora.fanInFanOut ?? false,
    inference_mode: true,
    lora_alpha: lora.alpha,
    lora_dropout: 0.05,
    modules_to_save: lora.modulesToSave ?? null,
    peft_type: "LORA",
    r: lora.r,
    target_modules: lora.targetModules,
    task_type: "CAUSAL_LM",
    ...lora.configExtra,
  };
}

/** A PEFT adapter folder: adapter_config.json, adapter_model.bin|.safetensors, tokenizer files. */
export function tinyLoraFiles(spec: TinyModelSpec, lora: TinyLoraSpec): TinyFile[] {
  const dtype = lora.dtype ?? "F16";
  const tensors = tinyLoraTensors(spec, lora).map(({ name, t }) => ({
    name,
    dtype,
    shape: t.shape,
    write: (w: (b: Uint8Array) => void) => streamRows(t, dtype, w),
  }));
  const files: TinyFile[] = [
    { path: "adapter_config.json", write: text(JSON.stringify(tinyAdapterConfig(lora), null, 2)) },
    lora.format === "safetensors"
      ? { path: "adapter_model.safetensors", write: (sink) => writeSafetensorsFromStreams(sink, tensors) }
      : {
        path: "adapter_model.bin",
        write: (sink) => writePytorchCheckpoint(sink, tensors, { archiveName: "archive" }),
      },
  ];
  if (lora.tokenizerModel) {
    const bytes = lora.tokenizerModel;
    files.push({ path: "tokenizer.model", write: (sink) => sink.write(bytes) });
    files.push({
      path: "special_tokens_map.json",
      write: text(JSON.stringify({ bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" })),
    });
  }
  return files;
}
