/**
 * Which chat template a model asks for: the one its GGUF metadata names (`tokenizer.chat_template`, recognised by
 * src/chat/templates.ts templateForModel as the terminal chat and the server do), else the seed's Alpaca
 * (Chinese-Alpaca v1 GGUFs carry none).
 * see: ../../src/chat/templates.ts, gguf spec `tokenizer.chat_template`
 */
import { ALPACA, type ChatTemplate, templateForModel as fromChatTemplate } from "../../src/chat/templates.ts";
import { ggufChatTemplate } from "../../src/tokenizer/mod.ts";

/** The template for a model's metadata (and vocabulary size: Chinese-LLaMA-2's means Llama-2-chat). */
export function templateForModel(metadata: Map<string, unknown>, vocabSize?: number): ChatTemplate {
  return fromChatTemplate(ggufChatTemplate(metadata), vocabSize) ?? ALPACA;
}
