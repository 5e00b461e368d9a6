/**
 * Chat messages → prompt tokens with a chat template (the same ones the terminal chat uses): system messages become
 * the preamble (the template's default when there are none), each user message a turn, each earlier assistant
 * message the reply the model would have written, ended by EOS as the terminal chat leaves it in its context.
 * The model's template is chosen from its metadata unless forced (chat/templates.ts templateOfMetadata: the GGUF
 * chat template, or a Chinese-LLaMA-2 vocabulary), Alpaca (-ins) otherwise.
 * see: src/chat/templates.ts, src/chat/session.ts, ymcui/Chinese-LLaMA-Alpaca-2 scripts/openai_server_demo
 */
import { type ChatTemplate, LLAMA_2, type TemplateTokenizer } from "../chat/templates.ts";
import type { ChatMessage } from "./request_params.ts";

/** Prompt tokens of a conversation whose last message is the user's (checked by parseChatRequest). */
export function renderChat(template: ChatTemplate, tok: TemplateTokenizer, messages: ChatMessage[]): number[] {
  const system = messages.filter((m) => m.role === "system").map((m) => m.content).join("\n");
  const ids = [
    ...template.preamble(
      tok,
      system === "" && !messages.some((m) => m.role === "system") ? template.defaultSystem : system,
    ),
  ];
  let turn = 0;
  for (const m of messages) {
    if (m.role === "user") ids.push(...template.turn(tok, m.content, turn++));
    else if (m.role === "assistant") {
      // Alpaca's reply follows "### Response:\n\n" with no space; Llama-2's follows "[/INST]" with one (the dummy
      // prefix the model itself writes as "▁…")
      const text = tok.encode(m.content, { bos: false, addDummyPrefix: template === LLAMA_2 });
      ids.push(...text, tok.eosId);
    }
  }
  return ids;
}
