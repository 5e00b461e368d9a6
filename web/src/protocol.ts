/**
 * Messages between the page (page.ts) and the engine host worker (host_worker.ts). Every request carries an id;
 * the worker answers with events of that id and ends with "done" or "error". "stop" and "reset" need no answer.
 */

/** Options of generate(): `deno task generate`'s flags and defaults (see GENERATE_DEFAULTS). */
export interface GenerateParams {
  /** Temperature; 0 = greedy. Default 0.8. */
  temp?: number;
  /** Tokens to generate. Default 128. */
  n?: number;
  /** RNG seed; negative = random. Default -1. */
  seed?: number;
  topK?: number;
  topP?: number;
  repeatPenalty?: number;
  repeatLastN?: number;
  /** Prepend BOS to the prompt. Default true. */
  bos?: boolean;
  /** Keep generating past EOS. Default false. */
  ignoreEos?: boolean;
}

/** The defaults of `deno task generate` (src/commands/generate.ts), so the page and the CLI agree. */
export const GENERATE_DEFAULTS = {
  temp: 0.8,
  n: 128,
  seed: -1,
  topK: 40,
  topP: 0.95,
  repeatPenalty: 1.1,
  repeatLastN: 64,
  bos: true,
  ignoreEos: false,
} as const;

/** The defaults of `deno task chat` (src/commands/chat.ts): the seed's `-c 2048 --temp 0.2 -n 256 --repeat_penalty 1.3`. */
export const CHAT_DEFAULTS = {
  temp: 0.2,
  n: 256,
  topK: 40,
  topP: 0.95,
  repeatPenalty: 1.3,
  repeatLastN: 64,
  contextSize: 2048,
} as const;

/** Options of load(). */
export interface LoadParams {
  /** Threads (shards); default: all cores when cross-origin isolated, else 1. */
  threads?: number;
  /** KV cache positions; default 2048 (chat's). */
  contextSize?: number;
  /** Chat template name ("alpaca", "llama-2"); default: from the model's metadata. */
  template?: string;
  /** At least this many shards (each its own ≤ 4 GiB memory); default: what the model needs, as in Deno. */
  minShards?: number;
}

/** What load() resolves to. */
export interface ModelInfo {
  name: string;
  nBytes: number;
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  contextSize: number;
  nThreads: number;
  nShards: number;
  template: string;
  loadMs: number;
}

/** What generate() resolves to. */
export interface GenerateResultMessage {
  /** The prompt's token ids (BOS included). */
  prompt_ids: number[];
  ids: number[];
  text: string;
  seed: number;
  promptMs: number;
  generateMs: number;
  stop: "eos" | "length" | "context" | "stopped";
}

/** What chat() resolves to. */
export interface ChatResultMessage {
  text: string;
  ids: number[];
  stop: string;
  nPromptTokens: number;
  promptMs: number;
  nGenerated: number;
  generateMs: number;
}

/** Page → worker. */
export type HostRequest =
  | { type: "init"; id: number; kernelsUrl: string; shardWorkerUrl: string }
  | { type: "load"; id: number; source: Blob | string; name?: string; params: LoadParams }
  | { type: "generate"; id: number; prompt: string; params: GenerateParams }
  | { type: "chat"; id: number; text: string }
  | { type: "reset"; id: number }
  | { type: "stop"; id: number };

/** Worker → page. */
export type HostEvent =
  | { type: "progress"; id: number; done: number; total: number }
  | { type: "text"; id: number; text: string }
  | { type: "done"; id: number; result: unknown }
  | { type: "error"; id: number; message: string; hint?: string };

/** What init resolves to. */
export interface HostInfo {
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
}
