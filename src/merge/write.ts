/**
 * Writing a merge plan: GGUF (llama.cpp names, Meta q/k layout, full llama.* metadata + embedded tokenizer, 1-D
 * tensors F32, weights at the quant target), Hugging Face (config.json, fp16 safetensors shards + index,
 * tokenizer files) or Meta pth (consolidated.0N.pth sharded as the seed's save_shards, params.json, tokenizer).
 * Every output is a list of OutputFiles; each tensor is computed when its writer reaches it.
 * see: llama.cpp convert_hf_to_gguf.py (metadata), transformers save_pretrained (shards, index), the seed script
 */
import type { ByteSink } from "../core/byte_source.ts";
import { type DType, nBytesOf } from "../core/dtypes.ts";
import { type GgufKv, ggufKv, writeGguf } from "../formats/gguf_writer.ts";
import { writePytorchCheckpoint } from "../formats/pytorch_writer.ts";
import { writeSafetensors } from "../formats/safetensors.ts";
import { configToGgufKvs, configToHfConfig } from "../model/config.ts";
import { tensorName } from "../model/tensor_names.ts";
import { LLAMA_FTYPE, type QuantTarget, quantTypeFor } from "../quant/quantize_plan.ts";
import { type EncodeOptions, tensorBytes, tensorColumnBytes } from "./encode.ts";
import { metaParamsFor, metaShardCount, metaShardOf } from "./meta_shards.ts";
import type { MergeExecutor, MergePlan, PlannedTensor } from "./plan.ts";
import type { MergePool } from "./pool.ts";
import type { RopeLayout } from "../formats/rope_permute.ts";
import { nElementsOf } from "./source_tensor.ts";
import { GGML_QUANTIZATION_VERSION, KEY_GENERAL_QUANTIZATION_VERSION } from "../formats/gguf_constants.ts";

/** A file of the output folder: relative path and a function writing its bytes. */
export interface OutputFile {
  path: string;
  /** Bytes this file will have, when known up front (disk-space check). */
  nBytes?: number;
  write(sink: ByteSink): void | Promise<void>;
}

/** A tokenizer to ship with the output. */
export interface OutputTokenizer {
  /** tokenizer.model bytes (HF / pth outputs). */
  modelBytes?: Uint8Array;
  /** tokenizer.ggml.* KVs (GGUF output). */
  ggufKvs?: GgufKv[];
  /** Extra files copied verbatim (special_tokens_map.json, tokenizer_config.json, …). */
  extraFiles?: { path: string; bytes: Uint8Array }[];
}

/** Options shared by every output type. */
export interface WriteOptions extends EncodeOptions {
  tokenizer?: OutputTokenizer;
  /** general.name (GGUF). */
  name?: string;
  /** Awaited before each tensor of GGUF/safetensors outputs (commands yield to the event loop so Ctrl+C is seen). */
  beforeTensor?: () => Promise<void>;
  /**
   * Workers that compute whole tensors instead of encode.ts tensorBytes on this thread (the same bytes). Used by
   * the GGUF and Hugging Face outputs (the pth writer is synchronous).
   */
  pool?: MergePool;
}

/** One output tensor: by the pool's workers when there is a pool, else here. */
async function outputTensor(
  exec: MergeExecutor,
  t: PlannedTensor,
  outLayout: RopeLayout,
  dtype: DType,
  opts: WriteOptions,
): Promise<Uint8Array> {
  await opts.beforeTensor?.();
  return opts.pool
    ? await opts.pool.tensorBytes(exec, t, outLayout, dtype, opts)
    : tensorBytes(exec, t, outLayout, dtype, opts);
}

const text = (s: string): OutputFile => ({ path: "", write: (sink) => sink.write(new TextEncoder().encode(s)) });
const textFile = (path: string, s: string): OutputFile => ({
  ...text(s),
  path,
  nBytes: new TextEncoder().encode(s).length,
});
const bytesFile = (path: string, b: Uint8Array): OutputFile => ({
  path,
  nBytes: b.length,
  write: (sink) => sink.write(b),
});

/** Estimated GGUF header bytes beyond tensor data (KVs, tensor infos, vocabulary). */
function ggufOverhead(plan: MergePlan, vocabKvs: number): number {
  return 4096 + plan.tensors.length * 96 + vocabKvs;
}

/** GGUF output: one file, `model.gguf` unless `fileName` is given. */
export function ggufOutput(
  plan: MergePlan,
  exec: MergeExecutor,
  target: QuantTarget,
  opts: WriteOptions & { fileName?: string } = {},
): OutputFile[] {
  const c = plan.config;
  const tensors = plan.tensors.map((t) => {
    const dtype = quantTypeFor(t.shape, target);
    return {
      name: tensorName("gguf", t.kind, t.layer),
      dtype,
      shape: t.shape,
      nBytes: nBytesOf(dtype, nElementsOf(t.shape)),
      data: () => outputTensor(exec, t, "meta", dtype, opts),
    };
  });
  const kvs = configToGgufKvs(c, opts.name ?? "yangtuo merge", LLAMA_FTYPE[target]);
  if (target === "Q4_0" || target === "Q8_0") {
    kvs.push(ggufKv.u32(KEY_GENERAL_QUANTIZATION_VERSION, GGML_QUANTIZATION_VERSION));
  }
  const vocab = opts.tokenizer?.ggufKvs ?? [];
  const vocabBytes = vocab.reduce((s, kv) => s + (Array.isArray(kv.value) ? kv.value.length * 16 : 64), 0);
  return [{
    path: opts.fileName ?? "model.gguf",
    nBytes: tensors.reduce((s, t) => s + t.nBytes + 32, 0) + ggufOverhead(plan, vocabBytes),
    write: (sink) => writeGguf(sink, { metadata: [...kvs, ...vocab], tensors }),
  }];
}

function tokenizerFiles(tok: OutputTokenizer | undefined): OutputFile[] {
  const out: OutputFile[] = [];
  if (tok?.modelBytes) out.push(bytesFile("tokenizer.model", tok.modelBytes));
  for (const f of tok?.extraFiles ?? []) out.push(bytesFile(f.path, f.bytes));
  if (tok?.modelBytes && !tok.extraFiles?.some((f) => f.path === "special_tokens_map.json")) {
    out.push(
      textFile("special_tokens_map.json", JSON.stringify({ bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" })),
    );
  }
  if (tok?.modelBytes && !tok.extraFiles?.some((f) => f.path === "tokenizer_config.json")) {
    out.push(textFile(
      "tokenizer_config.json",
      JSON.stringify({
        add_bos_token: true,
        add_eos_token: false,
        model_max_length: 1000000000000000019884624838656,
        tokenizer_class: "LlamaTokenizer",
      }),
    ));
  }
  return out;
}

/**
 * Hugging Face output: fp16 safetensors split at `maxShardBytes` (default 5 GB, transformers' default) as
 * model-0000i-of-0000n.safetensors + model.safetensors.index.json (model.safetensors when one shard).
 */
export function huggingfaceOutput(
  plan: MergePlan,
  exec: MergeExecutor,
  opts: WriteOptions & { maxShardBytes?: number; dtype?: "F16" | "F32" | "BF16" } = {},
): OutputFile[] {
  const dtype: DType = opts.dtype ?? "F16";
  const max = opts.maxShardBytes ?? 5e9;
  // HF order: embed, layers, norm, lm_head (the plan's canonical order)
  const groups: PlannedTensor[][] = [[]];
  let size = 0;
  for (const t of plan.tensors) {
    const n = nBytesOf(dtype, nElementsOf(t.shape));
    if (size > 0 && size + n > max) {
      groups.push([]);
      size = 0;
    }
    groups.at(-1)!.push(t);
    size += n;
  }
  const n = groups.length;
  const weightMap: Record<string, string> = {};
  let total = 0;
  const files: OutputFile[] = groups.map((g, i) => {
    const name = n === 1
      ? "model.safetensors"
      : `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
    const tensors = g.map((t) => ({
      name: tensorName("hf", t.kind, t.layer),
      dtype,
      shape: t.shape,
      data: () => outputTensor(exec, t, "hf", dtype, opts),
    }));
    let bytes = 1024;
    for (const t of tensors) {
      weightMap[t.name] = name;
      const b = nBytesOf(dtype, nElementsOf(t.shape));
      total += b;
      bytes += b + 128;
    }
    return { path: name, nBytes: bytes, write: (sink: ByteSink) => writeSafetensors(sink, tensors, { format: "pt" }) };
  });
  if (n > 1) {
    files.push(
      textFile(
        "model.safetensors.index.json",
        JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
      ),
    );
  }
  const torchDtype = dtype === "F32" ? "float32" : dtype === "BF16" ? "bfloat16" : "float16";
  files.push(textFile("config.json", JSON.stringify(configToHfConfig(plan.config, torchDtype), null, 2)));
  files.push(textFile(
    "generation_config.json",
    JSON.stringify({ _from_model_config: true, bos_token_id: 1, eos_token_id: 2, pad_token_id: 0 }, null, 2),
  ));
  return [...files, ...tokenizerFiles(opts.tokenizer)];
}

/** Meta pth output: consolidated.0N.pth (N by model size as the seed, or `shards`), params.json, tokenizer. */
export function pthOutput(
  plan: MergePlan,
  exec: MergeExecutor,
  opts: WriteOptions & { shards?: number; dtype?: "F16" | "F32" | "BF16" } = {},
): OutputFile[] {
  const dtype = opts.dtype ?? "F16";
  const nShards = opts.shards ?? metaShardCount(plan.config.dim);
  const files: OutputFile[] = [];
  for (let s = 0; s < nShards; s++) {
    const name = `consolidated.${String(s).padStart(2, "0")}.pth`;
    let bytes = 4096;
    const tensors = plan.tensors.map((t) => {
      const { dim, start, size, shape } = metaShardOf(t.kind, t.shape, nShards, s);
      bytes += nBytesOf(dtype, nElementsOf(shape)) + 256;
      return {
        name: tensorName("meta", t.kind, t.layer),
        dtype,
        shape,
        write: (w: (b: Uint8Array) => void) => {
          if (dim === 1) w(tensorColumnBytes(exec, t, "meta", dtype, start, start + size, opts));
          else if (dim === 0) w(tensorBytes(exec, t, "meta", dtype, opts, start, start + size));
          else w(tensorBytes(exec, t, "meta", dtype, opts));
        },
      };
    });
    files.push({
      path: name,
      nBytes: bytes,
      write: (sink) => writePytorchCheckpoint(sink, tensors, { archiveName: name.replace(/\.pth$/, "") }),
    });
  }
  files.push(textFile("params.json", JSON.stringify(metaParamsFor(plan.config))));
  return [...files, ...tokenizerFiles(opts.tokenizer)];
}
