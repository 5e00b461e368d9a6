/**
 * `serve`: the OpenAI-compatible HTTP server (llama.cpp `llama-server` style) with continuous batching over
 * --parallel KV cache slots, and the chat page at `/`. This file binds Deno.serve and parses flags; the handler is
 * the pure src/serve room.
 * see: src/serve/handler.ts, llama.cpp tools/server/README.md (flag names)
 */
import { UsageError, UserError } from "../core/errors.ts";
import { templateOfMetadata, TEMPLATES } from "../chat/templates.ts";
import { loadEngine } from "../model/engine.ts";
import { createServer, DEFAULT_SAMPLING } from "../serve/mod.ts";
import { floatFlag, intFlag, parseFlags } from "./_args.ts";
import {
  CONTEXT_FLAGS,
  parseSamplingFlags,
  resolveThreads,
  SAMPLING_FLAGS,
  withNegativeValues,
} from "./_sampling_flags.ts";
import { progressEnabled } from "./_progress.ts";

const USAGE = `usage: deno task serve -m MODEL.gguf [options]

An OpenAI-compatible API (POST /v1/chat/completions, /v1/completions, /v1/embeddings; GET /v1/models, /health)
and a chat page at /. Sequences of --parallel clients are decoded together in one batched forward; more clients
wait in a first-come queue (503 when it is full).

options:
  -m, --model PATH          GGUF model (f32 / f16 / q4_0 / q8_0)
      --host ADDR           listen address (default 127.0.0.1); anything but loopback needs --api-key
      --port N              listen port (default 8080)
  -np, --parallel N         slots: sequences generated at once (default 1)
  -c, --ctx-size N          total context, split evenly over the slots as llama-server does (default: each
                            slot gets min(the model's context length, 2048))
      --api-key KEY         require "Authorization: Bearer KEY" on /v1/*
      --template NAME       ${[...TEMPLATES.keys()].join(" | ")} (default: llama-2 for a Chinese-Alpaca-2
                            vocabulary or a GGUF chat template with [INST], else alpaca)
  -a, --alias NAME          model id in /v1/models and responses (default: the file name)
  -n, --n-predict N         most tokens per reply when a request sets no max_tokens; -1 = until EOS or the
                            context is full (default -1)
      --temp X              default temperature (default ${DEFAULT_SAMPLING.temperature})
      --top-k N             default top-k (default ${DEFAULT_SAMPLING.topK})
      --top-p X             default top-p (default ${DEFAULT_SAMPLING.topP})
      --repeat-penalty X    default repeat penalty (default ${DEFAULT_SAMPLING.repeatPenalty})
      --repeat-last-n N     window of the penalties (default ${DEFAULT_SAMPLING.repeatLastN})
      --presence-penalty X  default presence penalty (default 0)
      --frequency-penalty X default frequency penalty (default 0)
  -t, --threads N           threads / shards (default: all cores)
  -b, --batch-size N        most tokens per forward (prompt chunks, batched steps) (default 64)
      --max-queue N         requests that may wait for a slot (default 64)
      --max-body N          largest request body in bytes (default 1048576)
      --no-page             do not serve the chat page
  -h, --help                show this help

permissions: \`deno task serve\` grants network on loopback only, read (the model and the page; revoked once
loaded), no write, no subprocess. To listen elsewhere run it yourself with that address, e.g.
  deno run --allow-net=0.0.0.0:8080 --allow-read --allow-env=YANGTUO_DEBUG --no-prompt cli.ts serve \\
    -m MODEL --host 0.0.0.0 --api-key KEY`;

/** Loopback addresses: the only ones served without an API key. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Runs `serve`. */
export async function run(args: string[]): Promise<number> {
  // llama-server's short flag with two letters
  args = args.map((a) => (a === "-np" ? "--parallel" : a));
  // the shared sampling/context table (same spellings and ranges as generate and chat; the seed is per request)
  const { seed: _perRequest, ...sampling_flags } = SAMPLING_FLAGS;
  const FLAGS = {
    ...sampling_flags,
    ...CONTEXT_FLAGS,
    model: { type: "string", short: "m" },
    host: { type: "string" },
    port: { type: "string" },
    parallel: { type: "string" },
    "api-key": { type: "string" },
    template: { type: "string" },
    alias: { type: "string", short: "a" },
    "presence-penalty": { type: "string" },
    "frequency-penalty": { type: "string" },
    "batch-size": { type: "string", short: "b" },
    "max-queue": { type: "string" },
    "max-body": { type: "string" },
    page: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  } as const;
  const { values: v, positionals } = parseFlags(withNegativeValues(args, FLAGS), FLAGS);
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (typeof v.model !== "string") throw new UsageError("no model given: pass -m MODEL.gguf");
  const host = v.host ?? "127.0.0.1";
  const port = intFlag(v.port, "--port", 8080, 0);
  if (port > 65535) throw new UsageError(`--port expects an integer in [0, 65535], got "${v.port}"`);
  const apiKey = v["api-key"];
  if (apiKey !== undefined && apiKey.trim() === "") throw new UsageError("--api-key must not be empty");
  if (!isLoopback(host) && apiKey === undefined) {
    throw new UserError(
      `Cannot listen on "${host}" without an API key: anyone who can reach it could use the model`,
      "pass --api-key KEY (clients send Authorization: Bearer KEY), or listen on 127.0.0.1",
    );
  }
  const parallel = intFlag(v.parallel, "--parallel", 1, 1);
  if (parallel > 64) throw new UsageError(`--parallel expects at most 64, got ${parallel}`);
  const shared = parseSamplingFlags(v, {
    contextSize: 2048,
    maxNewTokens: DEFAULT_SAMPLING.maxTokens,
    temperature: DEFAULT_SAMPLING.temperature,
    topK: DEFAULT_SAMPLING.topK,
    topP: DEFAULT_SAMPLING.topP,
    repeatPenalty: DEFAULT_SAMPLING.repeatPenalty,
    repeatLastN: DEFAULT_SAMPLING.repeatLastN,
  });
  // -c is the total, split over the slots (llama-server); without it each slot gets the engine's default context
  const total = shared.contextSize;
  const perSlot = total === undefined ? undefined : Math.floor(total / parallel);
  if (perSlot !== undefined && perSlot < 8) {
    throw new UsageError(`--ctx-size ${total} leaves ${perSlot} positions per slot; give at least 8`);
  }
  if (v.template !== undefined && !TEMPLATES.has(v.template)) {
    throw new UsageError(`--template expects one of ${[...TEMPLATES.keys()].join(", ")}, got "${v.template}"`);
  }
  const sampling = {
    temperature: shared.temperature,
    topK: shared.topK,
    topP: shared.topP,
    repeatPenalty: shared.repeatPenalty,
    repeatLastN: shared.repeatLastN,
    presencePenalty: floatFlag(v["presence-penalty"], "--presence-penalty", 0),
    frequencyPenalty: floatFlag(v["frequency-penalty"], "--frequency-penalty", 0),
    maxTokens: shared.maxNewTokens,
  };
  // capped at the cores (said when capping); the engine also never runs more threads than shards
  const threads = shared.threads === undefined
    ? undefined
    : resolveThreads(shared.threads, navigator.hardwareConcurrency, Infinity, (m) => console.error(`note: ${m}`));
  const maxBatch = intFlag(v["batch-size"], "--batch-size", 64, 1);
  const maxQueue = intFlag(v["max-queue"], "--max-queue", 64, 0);
  const maxBodyBytes = intFlag(v["max-body"], "--max-body", 1 << 20, 1024);

  let page: string | undefined;
  if (v.page !== false) page = await Deno.readTextFile(new URL("../serve/static/index.html", import.meta.url));
  const enc = new TextEncoder();
  let shown = -1;
  const onProgress = progressEnabled()
    ? (done: number, all: number) => {
      const pct = Math.floor((100 * done) / all);
      if (pct === shown) return;
      shown = pct;
      Deno.stderr.writeSync(enc.encode(`\rloading weights ${pct}%${done === all ? "\r\x1b[K" : ""}`));
    }
    : undefined;
  const engine = await loadEngine(v.model, {
    threads,
    contextSize: perSlot,
    slots: parallel,
    maxBatch,
    onProgress,
  });
  // everything is read: from here on the server can read no file at all
  try {
    Deno.permissions.revokeSync({ name: "read" });
  } catch { /* not granted as a whole (run by hand with scoped read): keep going */ }
  const template = v.template !== undefined
    ? TEMPLATES.get(v.template)!
    : templateOfMetadata(engine.metadata, engine.config.vocabSize);
  const modelId = v.alias ?? v.model.split(/[\\/]/).pop()!;
  const server = createServer({
    engine,
    modelId,
    template,
    apiKey,
    maxQueue,
    maxBodyBytes,
    sampling,
    page,
    onInternalError: (e) => console.error(`error: ${(e as Error)?.message ?? String(e)}`),
  });
  let httpServer: Deno.HttpServer;
  try {
    const listening = Promise.withResolvers<Deno.NetAddr>();
    httpServer = Deno.serve({
      hostname: host,
      port,
      onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
      onError: (e) => {
        console.error(`error: ${(e as Error)?.message ?? String(e)}`);
        return new Response(JSON.stringify({ error: { message: "Internal server error", type: "server_error" } }), {
          status: 500,
          headers: { "content-type": "application/json" },
        });
      },
    }, server.handler);
    const addr = await Promise.race([listening.promise, httpServer.finished.then(() => null)]);
    if (addr) {
      const c = engine.config;
      const shownHost = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
      console.error(
        `model ${modelId}: dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize}; ${parallel} slot(s) of ` +
          `${engine.contextSize} tokens; template ${template.name}; ${engine.nThreads} thread(s)` +
          (apiKey !== undefined ? "; API key required" : ""),
      );
      console.error(`listening on http://${shownHost}:${addr.port}`);
    }
  } catch (e) {
    engine.close();
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new UserError(
        `Cannot listen on ${host}:${port}: no network permission for it`,
        "`deno task serve` may listen on loopback only; for another address run deno run --allow-net=HOST:PORT … cli.ts serve (see --help)",
      );
    }
    if (e instanceof Deno.errors.AddrInUse) {
      throw new UserError(`Cannot listen on ${host}:${port}: the address is in use`, "pick another --port");
    }
    throw e;
  }
  const stop = () => {
    console.error("shutting down");
    server.close();
    httpServer.shutdown();
  };
  Deno.addSignalListener("SIGINT", stop);
  try {
    await httpServer.finished;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    engine.close();
  }
  return 0;
}
