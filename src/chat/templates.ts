/**
 * Chat templates: how the preamble and each user turn become tokens, and which text ends a reply.
 * `alpaca` is the seed's `./main -ins -f prompts/alpaca.txt` (llama.cpp 3525899, 2023-03-31); `llama-2` is the
 * Llama-2-chat format the successor project (Chinese-Alpaca-2) uses.
 * see: llama.cpp examples/main/main.cpp @ 3525899 (inp_pfx / inp_sfx / n_keep), prompts/alpaca.txt
 */

import { ggufChatTemplate } from "../tokenizer/gguf_vocab.ts";

/** What a template needs from a tokenizer (the project's `Tokenizer` satisfies it). */
export interface TemplateTokenizer {
  /**
   * Token ids of `text`; `bos` prepends BOS. `addDummyPrefix: false` skips SentencePiece's leading "▁" (the
   * 2023 llama.cpp tokenizer never added it; its main.cpp put a space before the prompt by hand).
   */
  encode(text: string, options?: { bos?: boolean; eos?: boolean; addDummyPrefix?: boolean }): number[];
  readonly bosId: number;
  readonly eosId: number;
}

/** A conversation format. */
export interface ChatTemplate {
  readonly name: string;
  /** One line for `--help`. */
  readonly summary: string;
  /** The preamble used when no prompt file is given. */
  readonly defaultSystem: string;
  /** Tokens that open the conversation and stay in the context for ever (llama.cpp's `n_keep`). */
  preamble(tokenizer: TemplateTokenizer, system: string): number[];
  /** Tokens of user turn `index` (0-based), appended after the previous reply. */
  turn(tokenizer: TemplateTokenizer, user: string, index: number): number[];
  /** Text that ends a reply when the model writes it (besides EOS); it is neither shown nor kept. */
  readonly stopStrings: readonly string[];
}

/** The Alpaca preamble: llama.cpp's prompts/alpaca.txt without its final newline (`-f` drops it). */
export const ALPACA_SYSTEM =
  "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

/** llama.cpp's instruct-mode prefix; tokenized with BOS, as `::llama_tokenize(ctx, "…", true)` did. */
export const ALPACA_INSTRUCTION_PREFIX = "\n\n### Instruction:\n\n";
/** llama.cpp's instruct-mode suffix; tokenized without BOS. */
export const ALPACA_RESPONSE_SUFFIX = "\n\n### Response:\n\n";

/**
 * The seed's `-ins` mode, token for token:
 * 1. preamble: BOS + " " + prompt file (main.cpp inserted the space; our SentencePiece dummy prefix is that space);
 * 2. each turn: BOS "\n\n### Instruction:\n\n" + user text + "\n" (getline's line plus the '\n' main.cpp appended)
 *    + "\n\n### Response:\n\n", none of them with a dummy prefix;
 * 3. the reply stops at EOS or when the model starts the next "### Instruction:" itself.
 */
export const ALPACA: ChatTemplate = {
  name: "alpaca",
  summary: "Chinese-Alpaca v1 / llama.cpp -ins: ### Instruction / ### Response (default)",
  defaultSystem: ALPACA_SYSTEM,
  preamble(tok, system) {
    return system === "" ? [tok.bosId] : tok.encode(system, { bos: true });
  },
  turn(tok, user) {
    const raw = { bos: false, addDummyPrefix: false };
    return [
      ...tok.encode(ALPACA_INSTRUCTION_PREFIX, { bos: true, addDummyPrefix: false }),
      ...tok.encode(`${user}\n`, raw),
      ...tok.encode(ALPACA_RESPONSE_SUFFIX, raw),
    ];
  },
  stopStrings: ["### Instruction:"],
};

/** The Chinese-Alpaca-2 system prompt (its prompts/alpaca-2.txt). */
export const ALPACA_2_SYSTEM = "You are a helpful assistant. 你是一个乐于助人的助手。";

/**
 * Llama-2-chat, as Chinese-Alpaca-2 uses it:
 * `<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {reply}</s><s>[INST] {user} [/INST] …`.
 * The preamble ends inside the first [INST] so that it can stay in context when older turns are dropped.
 */
export const LLAMA_2: ChatTemplate = {
  name: "llama-2",
  summary: "Chinese-Alpaca-2 / Llama-2-chat: [INST] <<SYS>> … [/INST]",
  defaultSystem: ALPACA_2_SYSTEM,
  preamble(tok, system) {
    return tok.encode(`[INST] <<SYS>>\n${system}\n<</SYS>>\n\n`, { bos: true });
  },
  turn(tok, user, index) {
    if (index === 0) return tok.encode(`${user} [/INST]`, { bos: false, addDummyPrefix: false });
    return tok.encode(`[INST] ${user} [/INST]`, { bos: true });
  },
  stopStrings: ["[INST]"],
};

/**
 * The seed's SFT training prompt (scripts/training/build_dataset.py), whole: `<s>{system}\n\n### Instruction:\n
 * {user}\n\n### Response: ` — what models fine-tuned by `deno task sft` (e.g. yangtuo-poetry) saw in training.
 * The same text as train/data.ts ALPACA_PROMPT_TEMPLATE (chat may not import train; a test checks they agree).
 * Each turn is a fresh training-style prompt: BOS + system again after the previous reply.
 */
export const ALPACA_SFT: ChatTemplate = {
  name: "alpaca-sft",
  summary: "the seed's SFT training prompt (build_dataset.py): ### Instruction:\n… ### Response: (yangtuo-poetry)",
  defaultSystem: ALPACA_SYSTEM,
  preamble(tok) {
    return [tok.bosId];
  },
  turn(tok, user, index) {
    const text = `${ALPACA_SYSTEM}\n\n### Instruction:\n${user}\n\n### Response: `;
    return index === 0 ? tok.encode(text, { bos: false }) : tok.encode(text, { bos: true });
  },
  stopStrings: ["### Instruction:"],
};

/** Templates by name (`--template`); `alpaca-2` is an alias of `llama-2`. */
export const TEMPLATES: ReadonlyMap<string, ChatTemplate> = new Map([
  ["alpaca", ALPACA],
  ["llama-2", LLAMA_2],
  ["alpaca-2", LLAMA_2],
  ["alpaca-sft", ALPACA_SFT],
]);

/** The template called `name`; throws RangeError listing the known names. */
export function getTemplate(name: string): ChatTemplate {
  const t = TEMPLATES.get(name);
  if (!t) {
    throw new RangeError(`Cannot use chat template "${name}": expected one of ${[...TEMPLATES.keys()].join(", ")}`);
  }
  return t;
}

/**
 * The template a model asks for, from its Jinja chat template (GGUF `tokenizer.chat_template`, read by
 * tokenizer/gguf_vocab.ts ggufChatTemplate) and vocabulary size; undefined when they say nothing we know. Like
 * llama.cpp's `llm_chat_detect_template`, the Jinja text is recognised by what it writes, not rendered: `[INST]` is
 * Llama-2-chat; `### Instruction:` with `### Response: ` (a space, no newline: the seed's SFT prompt, which
 * `deno task sft` records in its adapter's tokenizer_config.json) is alpaca-sft; other `### Instruction:` text is
 * Alpaca. A Chinese-LLaMA-2 vocabulary (55,296 pieces) without a template is Llama-2-chat.
 */
export function templateForModel(chatTemplate: string | undefined, vocabSize?: number): ChatTemplate | undefined {
  if (chatTemplate !== undefined) {
    if (chatTemplate.includes("[INST]")) return LLAMA_2;
    if (chatTemplate.includes("### Instruction:")) return chatTemplate.includes("### Response: ") ? ALPACA_SFT : ALPACA;
  }
  if (vocabSize === CHINESE_LLAMA_2_VOCAB_SIZE) return LLAMA_2;
  return undefined;
}

/**
 * The template for a model's GGUF metadata and vocabulary size: the one templateForModel finds (from
 * `tokenizer.chat_template`), else the seed's Alpaca. What serve and the web page use when no template is forced.
 */
export function templateOfMetadata(metadata: ReadonlyMap<string, unknown>, vocabSize?: number): ChatTemplate {
  return templateForModel(ggufChatTemplate(metadata), vocabSize) ?? ALPACA;
}

/** The vocabulary size of the Chinese-LLaMA-2 / Chinese-Alpaca-2 tokenizer. */
export const CHINESE_LLAMA_2_VOCAB_SIZE = 55296;
