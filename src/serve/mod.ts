/**
 * The OpenAI-compatible server room: a pure `Request → Response` handler (handler.ts) over a continuous-batching
 * scheduler (scheduler.ts) on an engine with KV cache slots; request checking, chat prompts, sampling with
 * penalties and logprobs, and the streamed reply text. No sockets here: `deno task serve` binds it.
 *
 * @example
 * ```ts ignore
 * import { ALPACA } from "../chat/templates.ts";
 * import { loadEngine } from "../model/engine.ts";
 * import { createServer } from "./mod.ts";
 * const engine = await loadEngine("model-q4_0.gguf", { slots: 2, contextSize: 2048 });
 * const server = createServer({ engine, modelId: "model-q4_0", template: ALPACA });
 * const res = await server.handler(new Request("http://localhost/v1/models"));
 * ```
 * @module
 */
export * from "./api_error.ts";
export * from "./chat_prompt.ts";
export * from "./handler.ts";
export * from "./reply_text.ts";
export * from "./request_params.ts";
export * from "./request_sampler.ts";
export * from "./scheduler.ts";
