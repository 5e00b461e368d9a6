/**
 * LlamaConfig: model dimensions in llama2.c's words, read from GGUF metadata, HF config.json or Meta params.json,
 * and written back as GGUF `llama.*` keys.
 * see: llama.cpp src/llama-model.cpp (LLM_KV names), transformers LlamaConfig, Meta llama/model.py ModelArgs
 */
import { type GgufKv, ggufKv } from "../formats/gguf_writer.ts";
import { parseMetaParams } from "../formats/meta.ts";
import {
  KEY_GENERAL_ARCHITECTURE,
  KEY_GENERAL_FILE_TYPE,
  KEY_GENERAL_NAME,
  KEY_LLAMA_BLOCK_COUNT,
  KEY_LLAMA_CONTEXT_LENGTH,
  KEY_LLAMA_EMBEDDING_LENGTH,
  KEY_LLAMA_FEED_FORWARD_LENGTH,
  KEY_LLAMA_HEAD_COUNT,
  KEY_LLAMA_HEAD_COUNT_KV,
  KEY_LLAMA_LAYERNORM_RMS_EPS,
  KEY_LLAMA_ROPE_DIMENSION_COUNT,
  KEY_LLAMA_ROPE_FREQ_BASE,
  KEY_LLAMA_VOCAB_SIZE,
  KEY_TOKENIZER_LIST,
  LLM_ARCH_LLAMA,
} from "../formats/gguf_constants.ts";

/** The dimensions of a LLaMA model. */
export interface LlamaConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** dim / nHeads */
  headSize: number;
  vocabSize: number;
  /** Training context length (llama.context_length). */
  contextLength: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** RoPE base frequency (rope.freq_base / rope_theta). */
  ropeTheta: number;
}

/** Checks a config's internal consistency; throws RangeError naming the bad field. */
export function validateConfig(c: LlamaConfig): LlamaConfig {
  const ints: (keyof LlamaConfig)[] = ["dim", "hiddenDim", "nLayers", "nHeads", "nKvHeads", "headSize", "vocabSize"];
  for (const k of ints) {
    const v = c[k];
    if (!Number.isSafeInteger(v) || v <= 0 || v > 1 << 24) {
      throw new RangeError(`Cannot use model config: ${k} is ${v}, expected a positive integer ≤ 2^24`);
    }
  }
  if (c.dim % c.nHeads !== 0) {
    throw new RangeError(`Cannot use model config: dim ${c.dim} is not divisible by nHeads ${c.nHeads}`);
  }
  if (c.headSize !== c.dim / c.nHeads) {
    throw new RangeError(`Cannot use model config: headSize ${c.headSize} != dim/nHeads`);
  }
  if (c.headSize % 2 !== 0) {
    throw new RangeError(`Cannot use model config: headSize ${c.headSize} is odd (RoPE rotates pairs)`);
  }
  if (c.nHeads % c.nKvHeads !== 0) {
    throw new RangeError(`Cannot use model config: nHeads ${c.nHeads} is not a multiple of nKvHeads ${c.nKvHeads}`);
  }
  if (!(c.normEps > 0 && c.normEps < 1)) {
    throw new RangeError(`Cannot use model config: normEps ${c.normEps} out of range`);
  }
  if (!(c.ropeTheta > 0)) throw new RangeError(`Cannot use model config: ropeTheta ${c.ropeTheta} out of range`);
  if (!Number.isSafeInteger(c.contextLength) || c.contextLength <= 0) {
    throw new RangeError(`Cannot use model config: contextLength ${c.contextLength} out of range`);
  }
  return c;
}

function num(meta: Map<string, unknown>, key: string, fallback?: number): number {
  const v = meta.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new RangeError(`Cannot read model config: GGUF key "${key}" is missing`);
  }
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    throw new RangeError(`Cannot read model config: GGUF key "${key}" is not a number`);
  }
  return n;
}

/**
 * Config from GGUF metadata (plain values as readGguf gives them). `vocabSize` comes from the token list or the
 * embedding shape when `llama.vocab_size` is absent (pass `vocabSizeHint`).
 */
export function configFromGgufMetadata(meta: Map<string, unknown>, vocabSizeHint?: number): LlamaConfig {
  const arch = meta.get(KEY_GENERAL_ARCHITECTURE);
  if (arch !== undefined && arch !== LLM_ARCH_LLAMA) {
    throw new RangeError(`Cannot read model config: architecture "${arch}" is not "llama"`);
  }
  const dim = num(meta, KEY_LLAMA_EMBEDDING_LENGTH);
  const nHeads = num(meta, KEY_LLAMA_HEAD_COUNT);
  const tokens = meta.get(KEY_TOKENIZER_LIST);
  const vocabSize = meta.has(KEY_LLAMA_VOCAB_SIZE)
    ? num(meta, KEY_LLAMA_VOCAB_SIZE)
    : vocabSizeHint ?? (Array.isArray(tokens) ? tokens.length : undefined);
  if (vocabSize === undefined) throw new RangeError("Cannot read model config: vocabulary size is unknown");
  return validateConfig({
    dim,
    hiddenDim: num(meta, KEY_LLAMA_FEED_FORWARD_LENGTH),
    nLayers: num(meta, KEY_LLAMA_BLOCK_COUNT),
    nHeads,
    nKvHeads: num(meta, KEY_LLAMA_HEAD_COUNT_KV, nHeads),
    headSize: dim / nHeads,
    vocabSize,
    contextLength: num(meta, KEY_LLAMA_CONTEXT_LENGTH, 2048),
    normEps: num(meta, KEY_LLAMA_LAYERNORM_RMS_EPS, 1e-5),
    ropeTheta: num(meta, KEY_LLAMA_ROPE_FREQ_BASE, 10000),
  });
}

/** GGUF `llama.*` metadata for a config (values as JS numbers; the writer picks u32/f32). */
export function configToGgufMetadata(c: LlamaConfig): [string, number][] {
  return [
    [KEY_LLAMA_CONTEXT_LENGTH, c.contextLength],
    [KEY_LLAMA_EMBEDDING_LENGTH, c.dim],
    [KEY_LLAMA_BLOCK_COUNT, c.nLayers],
    [KEY_LLAMA_FEED_FORWARD_LENGTH, c.hiddenDim],
    [KEY_LLAMA_ROPE_DIMENSION_COUNT, c.headSize],
    [KEY_LLAMA_HEAD_COUNT, c.nHeads],
    [KEY_LLAMA_HEAD_COUNT_KV, c.nKvHeads],
    [KEY_LLAMA_LAYERNORM_RMS_EPS, c.normEps],
    [KEY_LLAMA_ROPE_FREQ_BASE, c.ropeTheta],
    [KEY_LLAMA_VOCAB_SIZE, c.vocabSize],
  ];
}

/**
 * The GGUF header KVs of a LLaMA model, typed and ordered as llama.cpp's converter writes them:
 * general.architecture, general.name, the `llama.*` dimensions (epsilon and freq_base F32, the rest U32), then
 * general.file_type when given. The one writer of config → GGUF KVs (merge, convert, llama2.c import, fixtures).
 */
export function configToGgufKvs(c: LlamaConfig, name: string, fileType?: number): GgufKv[] {
  const kvs: GgufKv[] = [
    ggufKv.string(KEY_GENERAL_ARCHITECTURE, LLM_ARCH_LLAMA),
    ggufKv.string(KEY_GENERAL_NAME, name),
  ];
  for (const [key, value] of configToGgufMetadata(c)) {
    const isFloat = key === KEY_LLAMA_LAYERNORM_RMS_EPS || key === KEY_LLAMA_ROPE_FREQ_BASE;
    kvs.push(isFloat ? ggufKv.f32(key, value) : ggufKv.u32(key, value));
  }
  if (fileType !== undefined) kvs.push(ggufKv.u32(KEY_GENERAL_FILE_TYPE, fileType));
  return kvs;
}

/** Config from a Hugging Face `config.json` object (LlamaForCausalLM). */
export function configFromHfConfig(json: Record<string, unknown>): LlamaConfig {
  const get = (k: string, fallback?: number): number => {
    const v = json[k];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new RangeError(`Cannot read config.json: "${k}" is missing`);
    }
    if (typeof v !== "number") throw new RangeError(`Cannot read config.json: "${k}" is not a number`);
    return v;
  };
  const dim = get("hidden_size");
  const nHeads = get("num_attention_heads");
  return validateConfig({
    dim,
    hiddenDim: get("intermediate_size"),
    nLayers: get("num_hidden_layers"),
    nHeads,
    nKvHeads: get("num_key_value_heads", nHeads),
    headSize: dim / nHeads,
    vocabSize: get("vocab_size"),
    contextLength: get("max_position_embeddings", 2048),
    normEps: get("rms_norm_eps", 1e-6),
    ropeTheta: get("rope_theta", 10000),
  });
}

/** A Hugging Face `config.json` object for a config (LlamaForCausalLM, float16). */
export function configToHfConfig(c: LlamaConfig, torchDtype = "float16"): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
    hidden_size: c.dim,
    initializer_range: 0.02,
    intermediate_size: c.hiddenDim,
    max_position_embeddings: c.contextLength,
    model_type: "llama",
    num_attention_heads: c.nHeads,
    num_hidden_layers: c.nLayers,
    num_key_value_heads: c.nKvHeads,
    pad_token_id: 0,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: false,
    torch_dtype: torchDtype,
    use_cache: true,
    vocab_size: c.vocabSize,
  };
}

/**
 * Config from a Meta `params.json` (text, bytes or parsed object; validated by formats/meta.ts parseMetaParams,
 * which throws FormatError); vocab_size is -1 there, so the vocabulary size is given separately.
 */
export function configFromMetaParams(
  params: string | Uint8Array | Record<string, unknown>,
  vocabSize: number,
  path?: string,
): LlamaConfig {
  const p = parseMetaParams(params, path);
  return validateConfig({
    dim: p.dim,
    hiddenDim: p.hiddenDim,
    nLayers: p.nLayers,
    nHeads: p.nHeads,
    nKvHeads: p.nKvHeads,
    headSize: p.dim / p.nHeads,
    vocabSize,
    contextLength: p.maxSeqLen ?? 2048,
    normEps: p.normEps,
    ropeTheta: p.ropeTheta,
  });
}

/** A Meta `params.json` object for a config. */
export function configToMetaParams(c: LlamaConfig, multipleOf = 256): Record<string, unknown> {
  return {
    dim: c.dim,
    multiple_of: multipleOf,
    n_heads: c.nHeads,
    n_layers: c.nLayers,
    norm_eps: c.normEps,
    vocab_size: -1,
  };
}
