/**
 * The model every new user meets first: yangtuo-poetry, made by `deno task make-model` from babyllama105 and
 * 全唐詩 (see models/yangtuo-poetry/PROVENANCE.md). `chat` uses it when no -m is given and `demo` chats with it.
 */

/** The shipped folder, next to src/ (a file URL path, so it works from any working directory). */
export const DEFAULT_MODEL_DIR = new URL("../../models/yangtuo-poetry/", import.meta.url).pathname;
/** The GGUF chat and demo load (Q8_0: its held-out perplexity is closest to F32, see PROVENANCE.md). */
export const DEFAULT_MODEL_FILE = "yangtuo-poetry-q8_0.gguf";
/** The Q4_0 file made from it by `quantize --allow-requantize` (the demo re-makes it and compares). */
export const DEFAULT_MODEL_Q4_0_FILE = "yangtuo-poetry-q4_0.gguf";
/** Full path of the default model. */
export const DEFAULT_MODEL_PATH = `${DEFAULT_MODEL_DIR}${DEFAULT_MODEL_FILE}`;

/**
 * Chat settings for the default model: its SFT prompt (template alpaca-sft), its 256-token context, and no repeat
 * penalty (verse repeats "，" and "。" every few characters; the seed's 1.3 breaks the line structure).
 */
export const DEFAULT_MODEL_CHAT = {
  template: "alpaca-sft",
  contextSize: 256,
  maxNewTokens: 120,
  temperature: 0.5,
  topK: 40,
  topP: 0.95,
  repeatPenalty: 1.0,
  repeatLastN: 64,
} as const;

/** The Chinese request the demo sends (a title that is not in the training data's poem requests). */
export const DEFAULT_MODEL_DEMO_PROMPT = "寫一首題為《春夜》的五言絕句。";
