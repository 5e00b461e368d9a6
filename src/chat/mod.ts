/**
 * chat: the seed's `./main -ins` as a library — Alpaca / Llama-2 templates, a multi-turn ChatSession with
 * llama.cpp's context swap and streaming (whole characters, stop strings hidden), and the terminal loop.
 *
 * @example
 * ```ts ignore
 * import { ChatSession, runRepl } from "./mod.ts";
 * import { loadEngine } from "../model/engine.ts";
 * const engine = await loadEngine("ggml-model-q4_0.gguf", { contextSize: 2048 });
 * const session = new ChatSession(engine, { sampler: { temperature: 0.2, repeatPenalty: 1.3 } });
 * const reply = await session.respond("用一句话介绍北京。", { onText: (s) => console.log(s) });
 * await runRepl(session, { color: true }); // or: chat in the terminal
 * ```
 */
export * from "./templates.ts";
export * from "./chat_tokenizer.ts";
export * from "./stop_filter.ts";
export * from "./session.ts";
export * from "./repl.ts";
