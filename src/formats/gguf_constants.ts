/**
 * GGUF spec facts, each spelled once (as gguf-py's constants.py): the magic, version and alignment, the metadata
 * value types, and every metadata key name yangtuo reads or writes (`general.*`, `llama.*`, `tokenizer.ggml.*`).
 * Everything else imports these; a second literal spelling of a key is a bug waiting to happen.
 * see: ggml/docs/gguf.md (standardized key-value pairs), gguf-py/gguf/constants.py (Keys, GGUFValueType)
 */

/** `GGUF` read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
/** The magic as the 4 ASCII bytes at the start of the file. */
export const GGUF_MAGIC_STRING = "GGUF";
/** The version our writer emits. */
export const GGUF_VERSION = 3;
/** Alignment when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Magics (little-endian u32) of llama.cpp's pre-GGUF files, so readers can name what they refuse. */
export const LEGACY_GGML_MAGIC: Readonly<Record<number, string>> = {
  0x67676d6c: "ggml",
  0x67676d66: "ggmf",
  0x67676a74: "ggjt",
  0x67676c61: "ggla",
};
/** ggml's GGML_MAX_DIMS. */
export const GGML_MAX_DIMS = 4;
/** ggml's GGML_MAX_NAME: tensor names must be shorter than this many bytes for llama.cpp. */
export const GGML_MAX_NAME = 64;
/** `general.quantization_version` written with quantized tensors (ggml's GGML_QNT_VERSION). */
export const GGML_QUANTIZATION_VERSION = 2;

/** GGUF metadata value types (gguf_type). */
export const GGUF_TYPE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The architecture name of LLaMA models (`general.architecture`, and the prefix of its keys). */
export const LLM_ARCH_LLAMA = "llama";

// general.*
export const KEY_GENERAL_ARCHITECTURE = "general.architecture";
export const KEY_GENERAL_NAME = "general.name";
export const KEY_GENERAL_ALIGNMENT = "general.alignment";
export const KEY_GENERAL_FILE_TYPE = "general.file_type";
export const KEY_GENERAL_QUANTIZATION_VERSION = "general.quantization_version";

// llama.* (gguf-py's "{arch}.…" keys with arch = llama)
export const KEY_LLAMA_CONTEXT_LENGTH = "llama.context_length";
export const KEY_LLAMA_EMBEDDING_LENGTH = "llama.embedding_length";
export const KEY_LLAMA_BLOCK_COUNT = "llama.block_count";
export const KEY_LLAMA_FEED_FORWARD_LENGTH = "llama.feed_forward_length";
export const KEY_LLAMA_ROPE_DIMENSION_COUNT = "llama.rope.dimension_count";
export const KEY_LLAMA_ROPE_FREQ_BASE = "llama.rope.freq_base";
export const KEY_LLAMA_HEAD_COUNT = "llama.attention.head_count";
export const KEY_LLAMA_HEAD_COUNT_KV = "llama.attention.head_count_kv";
export const KEY_LLAMA_LAYERNORM_RMS_EPS = "llama.attention.layer_norm_rms_epsilon";
export const KEY_LLAMA_VOCAB_SIZE = "llama.vocab_size";

// tokenizer.ggml.*
/** Prefix of every tokenizer key. */
export const KEY_TOKENIZER_PREFIX = "tokenizer.";
export const KEY_TOKENIZER_MODEL = "tokenizer.ggml.model";
export const KEY_TOKENIZER_LIST = "tokenizer.ggml.tokens";
export const KEY_TOKENIZER_SCORES = "tokenizer.ggml.scores";
export const KEY_TOKENIZER_TOKEN_TYPE = "tokenizer.ggml.token_type";
export const KEY_TOKENIZER_BOS_ID = "tokenizer.ggml.bos_token_id";
export const KEY_TOKENIZER_EOS_ID = "tokenizer.ggml.eos_token_id";
export const KEY_TOKENIZER_UNK_ID = "tokenizer.ggml.unknown_token_id";
export const KEY_TOKENIZER_PAD_ID = "tokenizer.ggml.padding_token_id";
export const KEY_TOKENIZER_ADD_BOS = "tokenizer.ggml.add_bos_token";
export const KEY_TOKENIZER_ADD_EOS = "tokenizer.ggml.add_eos_token";
/** A Hugging Face (Jinja) chat template, from tokenizer_config.json's `chat_template`. */
export const KEY_TOKENIZER_CHAT_TEMPLATE = "tokenizer.chat_template";
/** Longest chat template read or written (characters; Hugging Face's templates are a few kB). */
export const MAX_CHAT_TEMPLATE_CHARS = 1 << 16;

/**
 * The chat template of a Hugging Face tokenizer_config.json: `chat_template` as a string, or from a list of
 * `{name, template}` the entry named "default" (as llama.cpp's converter reads it); undefined when there is none,
 * the file is not JSON, or the template is empty or longer than MAX_CHAT_TEMPLATE_CHARS.
 */
export function chatTemplateOfTokenizerConfig(json: Uint8Array): string | undefined {
  if (json.length > 16 * MAX_CHAT_TEMPLATE_CHARS) return undefined;
  let config: unknown;
  try {
    config = JSON.parse(new TextDecoder().decode(json));
  } catch {
    return undefined;
  }
  let t = (config as { chat_template?: unknown } | null)?.chat_template;
  if (Array.isArray(t)) t = t.find((e) => (e as { name?: unknown } | null)?.name === "default")?.template;
  return typeof t === "string" && t.length > 0 && t.length <= MAX_CHAT_TEMPLATE_CHARS ? t : undefined;
}
