/**
 * The request bodies of the OpenAI-compatible endpoints, checked field by field: every field a client may send is
 * validated (type, range) and turns into a 400 naming the field; fields the server does not know are ignored, as
 * llama-server and OpenAI's own API ignore them. Only n = 1 is supported.
 * see: https://platform.openai.com/docs/api-reference/chat/create, llama.cpp tools/server/README.md (extra fields:
 * top_k, repeat_penalty, repeat_last_n, ignore_eos)
 */
import { badField } from "./api_error.ts";

/** Server-wide defaults of the sampling fields (set by the command's flags). */
export interface SamplingDefaults {
  temperature: number;
  topK: number;
  topP: number;
  repeatPenalty: number;
  repeatLastN: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** Most tokens per reply when a request gives no max_tokens; -1 = until EOS or the context is full. */
  maxTokens: number;
}

/** llama-server's defaults (tools/server/README.md): temp 0.8, top-k 40, top-p 0.95, no penalties. */
export const DEFAULT_SAMPLING: SamplingDefaults = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  repeatPenalty: 1,
  repeatLastN: 64,
  presencePenalty: 0,
  frequencyPenalty: 0,
  maxTokens: -1,
};

/** Everything that shapes one generation: the sampling fields, then these. */
export interface GenerationParams extends Omit<SamplingDefaults, "maxTokens"> {
  /** undefined: a fresh random seed. */
  seed: number | undefined;
  /** undefined: the server default. */
  maxTokens: number | undefined;
  stop: string[];
  /** Return the chosen tokens' log-probabilities. */
  logprobs: boolean;
  /** And this many most likely alternatives per position (0 … 20). */
  topLogprobs: number;
  stream: boolean;
  /** Send a usage chunk before [DONE]. */
  includeUsage: boolean;
  /** llama-server's `ignore_eos`: EOS is sampled like any token, so replies run to max_tokens (benchmarks). */
  ignoreEos: boolean;
}

/** A chat message after checking: text content only. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** Most messages, stop strings and inputs a request may hold. */
const MAX_MESSAGES = 4096;
const MAX_STOP = 16;
const MAX_INPUTS = 256;

type Body = Record<string, unknown>;

/** Checks that the parsed JSON body is an object. */
export function asObject(body: unknown): Body {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badField("body", "The request body must be a JSON object");
  }
  return body as Body;
}

function num(b: Body, key: string, fallback: number, min: number, max: number): number {
  const v = b[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    throw badField(key, `'${key}' must be a number in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

function int(b: Body, key: string, min: number, max: number): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw badField(key, `'${key}' must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(b: Body, key: string): boolean {
  const v = b[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw badField(key, `'${key}' must be a boolean, got ${JSON.stringify(v)}`);
  return v;
}

function checkModel(b: Body): void {
  if (b.model !== undefined && b.model !== null && typeof b.model !== "string") {
    throw badField("model", "'model' must be a string");
  }
}

function stops(b: Body): string[] {
  const v = b.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length > MAX_STOP || !list.every((s) => typeof s === "string")) {
    throw badField("stop", `'stop' must be a string or an array of at most ${MAX_STOP} strings`);
  }
  return (list as string[]).filter((s) => s.length > 0);
}

/** The fields /v1/chat/completions and /v1/completions share. */
function generation(b: Body, d: SamplingDefaults): GenerationParams {
  checkModel(b);
  const n = int(b, "n", 1, 1 << 20);
  if (n !== undefined && n !== 1) throw badField("n", `Only n = 1 is supported, got ${n}`);
  if (b.stream_options !== undefined && b.stream_options !== null) {
    const so = b.stream_options;
    if (typeof so !== "object" || Array.isArray(so)) {
      throw badField("stream_options", "'stream_options' must be an object");
    }
  }
  const so = (b.stream_options ?? {}) as Body;
  const seed = int(b, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return {
    temperature: num(b, "temperature", d.temperature, 0, 100),
    topK: int(b, "top_k", 0, 1 << 24) ?? d.topK,
    topP: num(b, "top_p", d.topP, 0, 1),
    repeatPenalty: num(b, "repeat_penalty", d.repeatPenalty, 1e-6, 100),
    repeatLastN: int(b, "repeat_last_n", -1, 1 << 24) ?? d.repeatLastN,
    presencePenalty: num(b, "presence_penalty", d.presencePenalty, -2, 2),
    frequencyPenalty: num(b, "frequency_penalty", d.frequencyPenalty, -2, 2),
    seed,
    maxTokens: int(b, "max_completion_tokens", 1, Number.MAX_SAFE_INTEGER) ??
      int(b, "max_tokens", 1, Number.MAX_SAFE_INTEGER),
    stop: stops(b),
    logprobs: false,
    topLogprobs: 0,
    stream: bool(b, "stream"),
    includeUsage: bool(so, "include_usage"),
    ignoreEos: bool(b, "ignore_eos"),
  };
}

function messageText(content: unknown, i: number): string {
  if (typeof content === "string") return content;
  // content parts: only text parts are understood
  if (Array.isArray(content)) {
    let text = "";
    for (const part of content) {
      const p = part as Body;
      if (typeof p !== "object" || p === null || p.type !== "text" || typeof p.text !== "string") {
        throw badField(`messages[${i}].content`, "Only text content parts ({type: 'text', text}) are supported");
      }
      text += p.text;
    }
    return text;
  }
  throw badField(`messages[${i}].content`, `'messages[${i}].content' must be a string or an array of text parts`);
}

/** Checks a /v1/chat/completions body. */
export function parseChatRequest(
  body: unknown,
  d: SamplingDefaults,
): { params: GenerationParams; messages: ChatMessage[] } {
  const b = asObject(body);
  const params = generation(b, d);
  params.logprobs = bool(b, "logprobs");
  params.topLogprobs = int(b, "top_logprobs", 0, 20) ?? 0;
  if (params.topLogprobs > 0 && !params.logprobs) {
    throw badField("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  }
  const m = b.messages;
  if (!Array.isArray(m) || m.length === 0 || m.length > MAX_MESSAGES) {
    throw badField("messages", `'messages' must be a non-empty array of at most ${MAX_MESSAGES} messages`);
  }
  const messages = m.map((raw, i): ChatMessage => {
    const msg = raw as Body;
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
      throw badField(`messages[${i}]`, `'messages[${i}]' must be an object`);
    }
    let role = msg.role;
    if (role === "developer") role = "system";
    if (role !== "system" && role !== "user" && role !== "assistant") {
      throw badField(
        `messages[${i}].role`,
        `'messages[${i}].role' must be system, user or assistant, got ${JSON.stringify(msg.role)}`,
      );
    }
    return { role, content: messageText(msg.content, i) };
  });
  if (messages[messages.length - 1].role !== "user") {
    throw badField("messages", "The last message must come from the user");
  }
  return { params, messages };
}

/** Checks a /v1/completions body; the prompt is text or token ids. */
export function parseCompletionRequest(
  body: unknown,
  d: SamplingDefaults,
): { params: GenerationParams; prompt: string | number[] } {
  const b = asObject(body);
  const params = generation(b, d);
  const lp = int(b, "logprobs", 0, 20);
  params.logprobs = lp !== undefined;
  params.topLogprobs = lp ?? 0;
  if (b.echo === true) throw badField("echo", "'echo' is not supported");
  if (b.suffix !== undefined && b.suffix !== null) throw badField("suffix", "'suffix' is not supported");
  let p = b.prompt;
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === "string" || Array.isArray(p[0]))) p = p[0];
  if (typeof p === "string") return { params, prompt: p };
  if (Array.isArray(p) && p.length > 0 && p.every((t) => Number.isSafeInteger(t))) {
    return { params, prompt: p as number[] };
  }
  throw badField(
    "prompt",
    "'prompt' must be a string or an array of token ids (one prompt: n = 1 and batched prompts are not supported)",
  );
}

/** Checks a /v1/embeddings body. */
export function parseEmbeddingRequest(body: unknown): { inputs: (string | number[])[]; base64: boolean } {
  const b = asObject(body);
  checkModel(b);
  const fmt = b.encoding_format ?? "float";
  if (fmt !== "float" && fmt !== "base64") {
    throw badField("encoding_format", `'encoding_format' must be "float" or "base64", got ${JSON.stringify(fmt)}`);
  }
  const v = b.input;
  const isIds = (x: unknown) => Array.isArray(x) && x.length > 0 && x.every((t) => Number.isSafeInteger(t));
  let inputs: (string | number[])[];
  if (typeof v === "string") inputs = [v];
  else if (isIds(v)) inputs = [v as number[]];
  else if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string" || isIds(x))) inputs = v;
  else {
    throw badField("input", "'input' must be a string, an array of strings, or token ids (one array or several)");
  }
  if (inputs.length > MAX_INPUTS) {
    throw badField("input", `'input' holds ${inputs.length} items; at most ${MAX_INPUTS}`);
  }
  return { inputs, base64: fmt === "base64" };
}
