/**
 * Which chat template a model asks for: Llama-2-chat (Chinese-Alpaca-2) when its GGUF carries a
 * `tokenizer.chat_template` in the [INST] style, else the seed's Alpaca (Chinese-Alpaca v1 GGUFs carry none).
 * see: ../../src/chat/templates.ts, gguf spec `tokenizer.chat_template`
 */
import { ALPACA, type ChatTemplate, LLAMA_2 } from "../../src/chat/templates.ts";

/** The GGUF metadata key of a model's (Jinja) chat template. */
export const GGUF_CHAT_TEMPLATE_KEY = "tokenizer.chat_template";

/** The template for a model's metadata. */
export function templateForModel(metadata: Map<string, unknown>): ChatTemplate {
  const t = metadata.get(GGUF_CHAT_TEMPLATE_KEY);
  return typeof t === "string" && t.includes("[INST]") ? LLAMA_2 : ALPACA;
}
