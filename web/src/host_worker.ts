/**
 * The engine host: a dedicated worker that owns the model (a Blob read with FileReaderSync), shard 0 of the engine
 * (Atomics.wait is not allowed on a page's main thread) and the shard workers, and answers the page's requests
 * one at a time (protocol.ts). Everything it needs from the network (the kernels and the shard worker's code) is
 * fetched once by "init"; afterwards models come from Blobs and nothing is fetched.
 * see: ../../src/model/browser_engine.ts, page.ts
 */
/// <reference lib="deno.worker" />
import { provideKernelsModule } from "../../src/kernels/wasm.ts";
import { loadEngineFromBlob } from "../../src/model/browser_engine.ts";
import type { Engine } from "../../src/model/engine.ts";
import { generate } from "../../src/model/generate.ts";
import { Sampler } from "../../src/sampling/sampler.ts";
import { StreamingDecoder } from "../../src/tokenizer/streaming_decoder.ts";
import { ChatSession } from "../../src/chat/session.ts";
import { ALPACA, type ChatTemplate, getTemplate, templateOfMetadata } from "../../src/chat/templates.ts";
import {
  CHAT_DEFAULTS,
  type ChatResultMessage,
  GENERATE_DEFAULTS,
  type GenerateParams,
  type GenerateResultMessage,
  type HostEvent,
  type HostInfo,
  type HostRequest,
  type LoadParams,
  type ModelInfo,
} from "./protocol.ts";

let kernels: WebAssembly.Module | undefined;
let shardWorkerUrl = "";
let engine: Engine | undefined;
let session: ChatSession | undefined;
let template: ChatTemplate = ALPACA;
/** Aborts the running generate/chat request. */
let running: AbortController | undefined;

const post = (e: HostEvent) => self.postMessage(e);
const isolated = () => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;

/** A macrotask turn without timer clamping, so a "stop" message can be handled between tokens. */
const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();
function yieldTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(0);
  });
}

class Stopped extends Error {}

/**
 * Without cross-origin isolation `SharedArrayBuffer` is not a global, but a shared WebAssembly.Memory still gives
 * one: the one-thread engine needs it only for its control and exchange buffers.
 */
function ensureSharedArrayBuffer(): void {
  if (typeof SharedArrayBuffer !== "undefined") return;
  const make = function (nBytes: number) {
    const pages = Math.max(1, Math.ceil(nBytes / 65536));
    return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
  };
  (globalThis as Record<string, unknown>).SharedArrayBuffer = make;
}

async function init(kernelsUrl: string, shardUrl: string): Promise<HostInfo> {
  const res = await fetch(kernelsUrl);
  if (!res.ok) throw new Error(`Cannot load kernels: fetching ${kernelsUrl} gave HTTP ${res.status}`);
  kernels = await WebAssembly.compile(await res.arrayBuffer());
  provideKernelsModule(kernels);
  // the shard worker runs from a blob: URL, so starting one later fetches nothing
  const code = await fetch(shardUrl);
  if (!code.ok) throw new Error(`Cannot load the shard worker: fetching ${shardUrl} gave HTTP ${code.status}`);
  shardWorkerUrl = URL.createObjectURL(new Blob([await code.text()], { type: "text/javascript" }));
  ensureSharedArrayBuffer();
  return { crossOriginIsolated: isolated(), hardwareConcurrency: navigator.hardwareConcurrency };
}

function spawnShardWorker(): Worker {
  const w = new Worker(shardWorkerUrl, { type: "module" });
  w.postMessage({ type: "kernels", module: kernels });
  return w;
}

function newSession(): ChatSession {
  return new ChatSession(engine!, {
    template,
    maxNewTokens: CHAT_DEFAULTS.n,
    sampler: {
      temperature: CHAT_DEFAULTS.temp,
      topK: CHAT_DEFAULTS.topK,
      topP: CHAT_DEFAULTS.topP,
      repeatPenalty: CHAT_DEFAULTS.repeatPenalty,
      repeatLastN: CHAT_DEFAULTS.repeatLastN,
      seed: Math.floor(Math.random() * 2 ** 31),
    },
  });
}

async function load(id: number, source: Blob | string, name: string | undefined, p: LoadParams): Promise<ModelInfo> {
  if (!kernels) throw new Error("Cannot load a model: the engine is not initialised");
  session = undefined;
  engine?.close();
  engine = undefined;
  const t0 = performance.now();
  let blob: Blob;
  if (typeof source === "string") {
    const res = await fetch(source);
    if (!res.ok) throw new Error(`Cannot load model "${source}": HTTP ${res.status}`);
    blob = await res.blob();
    name ??= source;
  } else {
    blob = source;
    name ??= (source as File).name ?? "model";
  }
  const threads = p.threads ?? (isolated() ? navigator.hardwareConcurrency || 1 : 1);
  if (!isolated() && threads > 1) {
    throw new Error(
      `Cannot run ${threads} threads: the page is not cross-origin isolated (serve it with deno task web)`,
    );
  }
  let shown = -1;
  engine = await loadEngineFromBlob(blob, {
    threads,
    contextSize: p.contextSize,
    minShards: p.minShards,
    spawnWorker: spawnShardWorker,
    onProgress: (done, total) => {
      const pct = Math.floor((100 * done) / total);
      if (pct !== shown) post({ type: "progress", id, done, total });
      shown = pct;
    },
  }, name);
  template = p.template ? getTemplate(p.template) : templateOfMetadata(engine.metadata, engine.config.vocabSize);
  session = newSession();
  const c = engine.config;
  return {
    name,
    nBytes: blob.size,
    dim: c.dim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    vocabSize: c.vocabSize,
    contextSize: engine.contextSize,
    nThreads: engine.nThreads,
    nShards: engine.nShards,
    template: template.name,
    loadMs: performance.now() - t0,
  };
}

function requireEngine(): Engine {
  if (!engine) throw new Error("Cannot generate: no model is loaded (pick a .gguf first)");
  return engine;
}

/** `deno task generate` in the worker: same defaults, same prompt encoding, same loop (generate()). */
async function runGenerate(id: number, prompt: string, p: GenerateParams): Promise<GenerateResultMessage> {
  const e = requireEngine();
  const o = { ...GENERATE_DEFAULTS, ...p };
  checkParams(o);
  const seed = o.seed < 0 ? Math.floor(Math.random() * 2 ** 31) : o.seed;
  const sampler = new Sampler({
    temperature: o.temp,
    topK: o.topK,
    topP: o.topP,
    repeatPenalty: o.repeatPenalty,
    repeatLastN: o.repeatLastN,
    seed,
  });
  if (typeof prompt !== "string") throw new TypeError(`Cannot generate: the prompt must be a string`);
  const tok = e.tokenizer;
  const promptIds = prompt === "" ? (o.bos ? [tok.bosId] : []) : tok.encode(prompt, { bos: o.bos });
  const decoder = new StreamingDecoder(tok);
  const signal = running!.signal;
  const ids: number[] = [];
  // the chat session's KV cache is overwritten from position 0: start a new chat afterwards
  session = undefined;
  const stoppable = {
    contextSize: e.contextSize,
    tokenizer: tok,
    eval: async (tokens: number[], startPos: number) => {
      await yieldTurn();
      if (signal.aborted) throw new Stopped();
      return e.eval(tokens, startPos);
    },
  };
  try {
    const r = await generate(stoppable, sampler, promptIds, {
      maxTokens: o.n,
      stopAt: o.ignoreEos ? [] : undefined,
      onToken: (t) => {
        ids.push(t);
        const s = decoder.push(t);
        if (s) post({ type: "text", id, text: s });
      },
    });
    const rest = decoder.flush();
    if (rest) post({ type: "text", id, text: rest });
    const { promptMs, generateMs } = r;
    return { prompt_ids: promptIds, ids: r.ids, text: tok.decode(r.ids), seed, promptMs, generateMs, stop: r.stop };
  } catch (err) {
    if (!(err instanceof Stopped)) throw err;
    return { prompt_ids: promptIds, ids, text: tok.decode(ids), seed, promptMs: 0, generateMs: 0, stop: "stopped" };
  }
}

/** generate()'s options come from page script: the same checks as the CLI's flags. */
function checkParams(o: Required<GenerateParams>): void {
  const int = (v: unknown, name: string, min: number) => {
    if (!Number.isSafeInteger(v) || (v as number) < min) {
      throw new RangeError(`Cannot generate: ${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
  };
  const num = (v: unknown, name: string) => {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new RangeError(`Cannot generate: ${name} must be a finite number, got ${JSON.stringify(v)}`);
    }
  };
  int(o.n, "n", 0);
  int(o.seed, "seed", -1);
  int(o.topK, "topK", Number.MIN_SAFE_INTEGER); // ≤ 0 = off, as --top-k
  int(o.repeatLastN, "repeatLastN", -1);
  num(o.temp, "temp");
  num(o.topP, "topP");
  num(o.repeatPenalty, "repeatPenalty");
}

async function runChat(id: number, text: string): Promise<ChatResultMessage> {
  requireEngine();
  session ??= newSession();
  const r = await session.respond(text, {
    signal: running!.signal,
    onText: (s) => post({ type: "text", id, text: s }),
  });
  return {
    text: r.text,
    ids: r.tokenIds,
    stop: r.stopReason,
    nPromptTokens: r.nPromptTokens,
    promptMs: r.promptMs,
    nGenerated: r.nGenerated,
    generateMs: r.generateMs,
  };
}

/** One request at a time; "stop" and "reset" are handled at once (between tokens). */
let queue: Promise<void> = Promise.resolve();

self.onmessage = (ev: MessageEvent<HostRequest>) => {
  const m = ev.data;
  if (m.type === "stop") {
    running?.abort();
    return;
  }
  queue = queue.then(async () => {
    running = new AbortController();
    try {
      let result: unknown;
      if (m.type === "init") result = await init(m.kernelsUrl, m.shardWorkerUrl);
      else if (m.type === "load") result = await load(m.id, m.source, m.name, m.params);
      else if (m.type === "generate") result = await runGenerate(m.id, m.prompt, m.params);
      else if (m.type === "chat") result = await runChat(m.id, m.text);
      else if (m.type === "reset") {
        if (engine) session = newSession();
        result = null;
      }
      post({ type: "done", id: m.id, result });
    } catch (err) {
      const e = err as Error & { hint?: string };
      post({ type: "error", id: m.id, message: e.message ?? String(err), hint: e.hint });
    } finally {
      running = undefined;
    }
  });
};
