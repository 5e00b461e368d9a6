/**
 * The OpenAI-compatible server as a pure `Request → Response` function (no sockets; commands/serve.ts binds it):
 * routing, API-key check, bounded JSON bodies, the chat / completion / embedding endpoints over the Scheduler, and
 * Server-Sent Events streamed the way llama-server streams them:
 * 1. one `id` for every chunk of a response; the first chat chunk's delta carries `role: "assistant"`;
 * 2. content deltas, each whole characters only (the streaming decoder), stop strings never sent;
 * 3. a last chunk with an empty delta and `finish_reason` "stop" (EOS or a stop string) or "length";
 * 4. with `stream_options.include_usage`, a chunk with `choices: []` and `usage`;
 * 5. `data: [DONE]`.
 * Every failure is an OpenAI-shaped error (400/401/404/405/413/503, 500 without internals); the server keeps serving.
 * see: llama.cpp tools/server/server.cpp (to_json_oaicompat_chat_stream), OpenAI API reference (chat, completions,
 * embeddings, models), the seed's scripts/openai_server_demo (embeddings: mean of last hidden states, L2-normalised)
 */
import type { ChatTemplate } from "../chat/templates.ts";
import { chatTokenizer } from "../chat/chat_tokenizer.ts";
import type { Tokenizer } from "../tokenizer/mod.ts";
import { ApiError, badField, toApiError } from "./api_error.ts";
import { renderChat } from "./chat_prompt.ts";
import { type LogprobEntry, ReplyText } from "./reply_text.ts";
import {
  asObject,
  DEFAULT_SAMPLING,
  type GenerationParams,
  parseChatRequest,
  parseCompletionRequest,
  parseEmbeddingRequest,
  type SamplingDefaults,
} from "./request_params.ts";
import { RequestSampler } from "./request_sampler.ts";
import { type FinishReason, Scheduler, type SchedulerEngine } from "./scheduler.ts";

/** What the server needs from an engine (the project's Engine, loaded with `slots`, satisfies it). */
export interface ServeEngine extends SchedulerEngine {
  readonly tokenizer: Tokenizer;
  readonly config: { readonly vocabSize: number; readonly dim: number };
}

/** Server settings. */
export interface ServeOptions {
  engine: ServeEngine;
  /** The id /v1/models lists and responses carry. */
  modelId: string;
  template: ChatTemplate;
  /** When set, /v1/* needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Largest request body in bytes (413 beyond). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Requests that may wait for a slot (503 beyond). Default 64. */
  maxQueue?: number;
  /** Sampling defaults of requests that do not set a field. Default: llama-server's. */
  sampling?: SamplingDefaults;
  /** The chat page served at `/` (HTML). */
  page?: string;
  /** Told about 500s (the command logs them); the client only sees a fixed message. */
  onInternalError?: (error: unknown) => void;
}

/** A running server: its handler and its scheduler. */
export interface Server {
  handler(req: Request): Promise<Response>;
  readonly scheduler: Scheduler;
  close(): void;
}

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "authorization, content-type",
  "access-control-allow-methods": "GET, POST, OPTIONS",
};

/** Routes and the methods they answer. */
const ROUTES: Record<string, string> = {
  "/": "GET",
  "/index.html": "GET",
  "/health": "GET",
  "/v1/models": "GET",
  "/v1/chat/completions": "POST",
  "/v1/completions": "POST",
  "/v1/embeddings": "POST",
};

const enc = new TextEncoder();

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...CORS, ...headers },
  });
}

function errorResponse(e: ApiError, headers: Record<string, string> = {}): Response {
  return json(e.toJSON(), e.status, headers);
}

/** Compares two strings in time that depends only on their lengths. */
function sameKey(a: string, b: string): boolean {
  const x = enc.encode(a), y = enc.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    diff |= (x[i % (x.length || 1)] ?? 0) ^ (y[i % (y.length || 1)] ?? 0);
  }
  return diff === 0;
}

/** Reads a JSON body of at most `limit` bytes: 413 beyond, 400 when it is not UTF-8 JSON. */
async function readJson(req: Request, limit: number): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) {
    throw new ApiError(413, `The request body has ${declared} bytes; the limit is ${limit}`, "request_too_large");
  }
  const chunks: Uint8Array[] = [];
  let n = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > limit) {
        await reader.cancel().catch(() => {});
        throw new ApiError(413, `The request body is larger than the limit of ${limit} bytes`, "request_too_large");
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) bytes.set(c, o), o += c.length;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, "The request body is not valid UTF-8", "invalid_json");
  }
  if (text.trim() === "") throw new ApiError(400, "The request body is empty; expected a JSON object", "invalid_json");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `The request body is not valid JSON: ${(e as Error).message}`, "invalid_json");
  }
}

function randomId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** The legacy completions logprobs shape. */
function legacyLogprobs(entries: LogprobEntry[], offset: number) {
  const text_offset: number[] = [];
  for (const e of entries) text_offset.push(offset), offset += e.token.length;
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top_logprobs.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

/**
 * Builds the server.
 *
 * @example
 * ```ts ignore
 * const engine = await loadEngine("model.gguf", { slots: 4 });
 * const server = createServer({ engine, modelId: "model", template: ALPACA });
 * Deno.serve({ hostname: "127.0.0.1", port: 8080 }, server.handler);
 * ```
 */
export function createServer(options: ServeOptions): Server {
  const engine = options.engine;
  const tok = engine.tokenizer;
  const chatTok = chatTokenizer(tok);
  const scheduler = new Scheduler(engine, { maxQueue: options.maxQueue ?? 64 });
  const limit = options.maxBodyBytes ?? 1 << 20;
  const defaults = options.sampling ?? DEFAULT_SAMPLING;
  const created0 = Math.floor(Date.now() / 1000);
  const eosIds = new Set(tok.eosId >= 0 ? [tok.eosId] : []);

  function checkIds(ids: number[], param: string): number[] {
    for (const t of ids) {
      if (t < 0 || t >= engine.config.vocabSize) {
        throw badField(param, `Token id ${t} is outside the vocabulary [0, ${engine.config.vocabSize})`);
      }
    }
    return ids;
  }

  function generation(kind: "chat" | "completion", params: GenerationParams, prompt: number[], req: Request) {
    const id = (kind === "chat" ? "chatcmpl-" : "cmpl-") + randomId();
    const created = Math.floor(Date.now() / 1000);
    const model = options.modelId;
    const seed = params.seed ?? Math.floor(Math.random() * 2 ** 32);
    const sampler = new RequestSampler(params, seed, prompt);
    const stop = kind === "chat" ? [...options.template.stopStrings, ...params.stop] : params.stop;
    const reply = new ReplyText(tok, {
      stop,
      continuation: kind === "completion",
      logprobs: params.logprobs,
      topLogprobs: params.topLogprobs,
    });
    const maxTokens = params.maxTokens ?? (defaults.maxTokens < 0 ? Infinity : defaults.maxTokens);
    const stopIds = params.ignoreEos ? new Set<number>() : eosIds;
    const abort = new AbortController();
    // a non-streamed request is cancelled by the request's signal (the client went away before the answer); a stream
    // by its body's cancel() (Deno cancels it when the client disconnects), which also holds with Deno.serve's
    // legacy signal that aborts once a response is delivered
    const onAbort = () => abort.abort();
    if (!params.stream) req.signal?.addEventListener("abort", onAbort, { once: true });
    let generated = 0;
    const usage = () => ({
      prompt_tokens: prompt.length,
      completion_tokens: generated,
      total_tokens: prompt.length + generated,
    });
    const finish = (r: FinishReason) => (r === "length" ? "length" : "stop");
    let textOffset = 0;
    const choice = (text: string, entries: LogprobEntry[], finishReason: string | null, role = false) => {
      if (kind === "chat") {
        const delta: Record<string, string> = role
          ? { role: "assistant", content: text }
          : text
          ? { content: text }
          : {};
        return {
          index: 0,
          delta,
          logprobs: params.logprobs && entries.length > 0 ? { content: entries } : null,
          finish_reason: finishReason,
        };
      }
      const lp = params.logprobs ? legacyLogprobs(entries, textOffset) : null;
      textOffset += text.length;
      return { index: 0, text, logprobs: lp, finish_reason: finishReason };
    };
    const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
      id,
      object,
      created,
      model,
      system_fingerprint: `yangtuo-${seed}`,
      choices,
      ...extra,
    });

    // what both the one-shot and the streaming job run; they differ in what they do with each token and the end
    const job = { prompt, maxTokens, stopIds, signal: abort.signal, sample: (l: Float32Array) => sampler.sample(l) };
    if (!params.stream) {
      return new Promise<Response>((resolve, reject) => {
        try {
          scheduler.submit({
            ...job,
            onToken(tid, logits) {
              generated++;
              reply.push(tid, logits);
              return !reply.stopped;
            },
            onEnd(reason, error) {
              req.signal?.removeEventListener("abort", onAbort);
              if (reason === "error") return resolve(fail(error));
              if (reason === "cancelled") {
                return resolve(errorResponse(new ApiError(503, "The request was cancelled", "cancelled")));
              }
              reply.finish();
              const entries = [...reply.logprobs];
              const c = kind === "chat"
                ? {
                  index: 0,
                  message: { role: "assistant", content: reply.text },
                  logprobs: params.logprobs ? { content: entries } : null,
                  finish_reason: finish(reason),
                }
                : {
                  index: 0,
                  text: reply.text,
                  logprobs: params.logprobs ? legacyLogprobs(entries, 0) : null,
                  finish_reason: finish(reason),
                };
              resolve(json({
                id,
                object: kind === "chat" ? "chat.completion" : "text_completion",
                created,
                model,
                system_fingerprint: `yangtuo-${seed}`,
                choices: [c],
                usage: usage(),
              }));
            },
          });
        } catch (e) {
          req.signal?.removeEventListener("abort", onAbort);
          reject(e);
        }
      });
    }

    // streaming: the stream exists before the job is queued, so a refusal (400/503) is still a plain JSON error
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let open = true;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      cancel() {
        open = false;
        abort.abort();
      },
    });
    const send = (data: unknown) => {
      if (!open) return;
      try {
        controller.enqueue(enc.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`));
      } catch {
        open = false;
        abort.abort();
      }
    };
    const close = () => {
      if (!open) return;
      open = false;
      try {
        controller.close();
      } catch { /* already closed by the client */ }
    };
    // the role comes first, in its own chunk, as llama-server and OpenAI send it
    if (kind === "chat") send(chunk([choice("", [], null, true)]));
    scheduler.submit({
      ...job,
      onToken(tid, logits) {
        generated++;
        const text = reply.push(tid, logits);
        const entries = params.logprobs ? reply.takeLogprobs() : [];
        if (text !== "" || entries.length > 0) send(chunk([choice(text, entries, null)]));
        return !reply.stopped && open;
      },
      onEnd(reason, error) {
        req.signal?.removeEventListener("abort", onAbort);
        if (reason === "cancelled") return close();
        if (reason === "error") {
          send(toApiError(error).toJSON());
          options.onInternalError?.(error);
          return close();
        }
        const tail = reply.finish();
        const entries = params.logprobs ? reply.takeLogprobs() : [];
        if (tail !== "" || entries.length > 0) send(chunk([choice(tail, entries, null)]));
        send(chunk([choice("", [], finish(reason))]));
        if (params.includeUsage) send(chunk([], { usage: usage() }));
        send("[DONE]");
        close();
      },
    });
    return Promise.resolve(
      new Response(body, {
        headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", ...CORS },
      }),
    );
  }

  function fail(e: unknown): Response {
    const err = toApiError(e);
    if (err.status === 500) options.onInternalError?.(e);
    return errorResponse(err);
  }

  async function embeddings(body: unknown, req: Request): Promise<Response> {
    const { inputs, base64 } = parseEmbeddingRequest(body);
    const token = inputs.map((x, i) =>
      typeof x === "string" ? tok.encode(x, { bos: true }) : checkIds(x, `input[${i}]`)
    );
    const data = [];
    let total = 0;
    for (let i = 0; i < token.length; i++) {
      const hidden = await scheduler.hidden(token[i], req.signal ?? new AbortController().signal);
      total += token[i].length;
      // mean over tokens, then L2-normalised (f64 sums)
      const dim = engine.config.dim;
      const mean = new Float64Array(dim);
      for (const h of hidden) for (let j = 0; j < dim; j++) mean[j] += h[j];
      let norm = 0;
      for (let j = 0; j < dim; j++) norm += (mean[j] / hidden.length) ** 2;
      norm = Math.sqrt(norm) || 1;
      const v = Float32Array.from(mean, (m) => m / hidden.length / norm);
      const embedding = base64 ? bytesToBase64(new Uint8Array(v.buffer)) : Array.from(v);
      data.push({ object: "embedding", index: i, embedding });
    }
    return json({
      object: "list",
      data,
      model: options.modelId,
      usage: { prompt_tokens: total, total_tokens: total },
    });
  }

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
    if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: CORS });
    const method = ROUTES[path];
    if (method === undefined) throw new ApiError(404, `No route ${req.method} ${path}`, "not_found");
    if (req.method !== method && !(method === "GET" && req.method === "HEAD")) {
      return errorResponse(
        new ApiError(405, `Method ${req.method} is not allowed on ${path}; use ${method}`, "method_not_allowed"),
        { allow: method },
      );
    }
    if (path === "/" || path === "/index.html") {
      if (options.page === undefined) throw new ApiError(404, "No chat page is served", "not_found");
      return new Response(options.page, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    if (path === "/health") {
      const s = scheduler.stats();
      return json({ status: "ok", slots_idle: s.slotsIdle, slots_processing: s.slotsProcessing, queued: s.queued });
    }
    if (options.apiKey !== undefined) {
      const auth = req.headers.get("authorization") ?? "";
      const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
      if (!m || !sameKey(m[1], options.apiKey)) {
        throw new ApiError(401, "Invalid API key: send Authorization: Bearer <key>", "invalid_api_key");
      }
    }
    if (path === "/v1/models") {
      return json({
        object: "list",
        data: [{ id: options.modelId, object: "model", created: created0, owned_by: "yangtuo" }],
      });
    }
    const body = await readJson(req, limit);
    if (path === "/v1/chat/completions") {
      const { params, messages } = parseChatRequest(body, defaults);
      return generation("chat", params, renderChat(options.template, chatTok, messages), req);
    }
    if (path === "/v1/completions") {
      const { params, prompt } = parseCompletionRequest(body, defaults);
      const ids = typeof prompt === "string" ? tok.encode(prompt, { bos: true }) : checkIds(prompt, "prompt");
      return generation("completion", params, ids, req);
    }
    asObject(body);
    return await embeddings(body, req);
  }

  return {
    scheduler,
    async handler(req: Request): Promise<Response> {
      try {
        return await route(req);
      } catch (e) {
        return fail(e);
      }
    },
    close: () => scheduler.close(),
  };
}

/** Standard base64 of bytes (what the openai SDK decodes for encoding_format "base64"). */
function bytesToBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
