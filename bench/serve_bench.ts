/**
 * Server benchmark (opt-in: YANGTUO_BENCH_SERVE=1), loopback only, bounded in count and time, on the random
 * TinyLlama-1.1B-shaped Q4_0 model (the e2e bench's file, written once under /tmp):
 * 1. the batched forward alone: engine.evalBatch with 1, 2, 4 rows (tokens/s of the step), at 1 thread and at N;
 * 2. aggregate generated tok/s of 1, 2 and 4 concurrent streaming clients through HTTP + SSE on 4 slots
 *    (`ignore_eos`, fixed max_tokens), the 4-stream / 1-stream ratio (bar ≥ 2.5×), and time to first token p50/p99
 *    (the clients run in a Worker, _serve_bench_client.ts, so their reads are not starved by the forwards);
 * 3. 1,000 requests mixing valid, malformed and cancelled ones, 8 in flight: crashes (5xx or a dropped connection),
 *    leaked slots (/health after the run, and the next request still gets a slot), RSS and heap over the run.
 * Run: YANGTUO_BENCH_SERVE=1 deno run -A bench/serve_bench.ts   (YANGTUO_BENCH_SERVE_THREADS=N, default 2;
 * YANGTUO_BENCH_SERVE_MIXED=0 skips part 3)
 */
import { ALPACA } from "../src/chat/templates.ts";
import { type Engine, loadEngine } from "../src/model/engine.ts";
import { hostInfo } from "./_host.ts";
import { ensureBenchModel } from "./_bench_model.ts";
import { createServer } from "../src/serve/mod.ts";

const env = (k: string) => Deno.env.get(k);
const SLOTS = 4;
const CTX = 256; // per slot
const PROMPT = "Once upon a time, in a small village";
const N_GEN = 32; // tokens per stream in the throughput runs
const ROUNDS = 3; // runs per concurrency level
const N_MIXED = 1000;
const IN_FLIGHT = 8;
const DEADLINE_MS = 20 * 60_000; // the whole bench stops here, reporting what it has

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** `n` concurrent streaming clients, run in a Worker (their own event loop); wall time and per-stream results. */
function streams(url: string, n: number): Promise<{ wallMs: number; results: { ttftMs: number; tokens: number }[] }> {
  const w = new Worker(new URL("./_serve_bench_client.ts", import.meta.url).href, { type: "module" });
  return new Promise((resolve, reject) => {
    w.onmessage = (e) => {
      w.terminate();
      if (e.data.error) reject(new Error(e.data.error));
      else resolve(e.data);
    };
    w.onerror = (e) => {
      e.preventDefault();
      w.terminate();
      reject(new Error(e.message));
    };
    w.postMessage({ url, n, prompt: PROMPT, maxTokens: N_GEN });
  });
}

function mem() {
  const m = Deno.memoryUsage();
  return { rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 };
}

/** ms per evalBatch step with 1, 2, 4 rows (each row its own slot, 12 steps after a warm-up). */
async function batchedForward(engine: Engine, threads: number, log: (s: string) => void): Promise<void> {
  const prompt = engine.tokenizer.encode(PROMPT, { bos: true });
  for (let s = 0; s < SLOTS; s++) await engine.evalSlot(s, prompt, 0);
  let oneRow = 0;
  for (const B of [1, 2, 4]) {
    const steps = 12;
    const rows = Array.from({ length: B }, (_, s) => ({ slot: s, token: 100 + s, pos: prompt.length }));
    await engine.evalBatch(rows); // warm
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await engine.evalBatch(rows.map((r) => ({ ...r, pos: r.pos + 1 + i })));
    const ms = (performance.now() - t0) / steps;
    const tps = (B / ms) * 1000;
    if (B === 1) oneRow = tps;
    log(`| ${threads} | ${B} | ${ms.toFixed(1)} | ${tps.toFixed(2)} | ${(tps / oneRow).toFixed(2)}× |`);
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const threads = Number(env("YANGTUO_BENCH_SERVE_THREADS") ?? "2");
  const path = await ensureBenchModel("tinyllama-1.1b");
  const engine = await loadEngine(path, { threads, contextSize: CTX, slots: SLOTS });
  const out: string[] = [
    `serve bench: random TinyLlama-1.1B-shaped Q4_0, ${SLOTS} slots of ${CTX}, ${threads} thread(s)`,
    hostInfo().line,
    "",
  ];
  const log = (s: string) => {
    out.push(s);
    console.error(s);
  };

  // 1. the batched forward alone, at 1 thread (no barriers: the kernels' own scaling) and at `threads`
  log("| threads | rows per forward (evalBatch) | ms per step | tokens/s | × 1 row |");
  log("| --- | --- | --- | --- | --- |");
  const one = await loadEngine(path, { threads: 1, contextSize: CTX, slots: SLOTS });
  try {
    await batchedForward(one, 1, log);
  } finally {
    one.close();
  }
  if (threads !== 1) await batchedForward(engine, threads, log);
  log("");

  const server = createServer({ engine, modelId: "tinyllama-1.1b-q4_0", template: ALPACA, maxQueue: 64 });
  const addr = Promise.withResolvers<Deno.NetAddr>();
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (a) => addr.resolve(a as Deno.NetAddr) },
    server.handler,
  );
  const url = `http://127.0.0.1:${(await addr.promise).port}`;
  try {
    // 2. concurrent streams through HTTP
    log(
      `| concurrent streams (${N_GEN} tokens each, ${ROUNDS} rounds) | aggregate tok/s | × 1 stream | TTFT p50 | TTFT p99 | mean batch |`,
    );
    log("| --- | --- | --- | --- | --- | --- |");
    let one = 0;
    const ratios: Record<number, number> = {};
    for (const n of [1, 2, 4]) {
      const ttft: number[] = [];
      let tokens = 0, ms = 0;
      const s0 = server.scheduler.stats();
      for (let r = 0; r < ROUNDS; r++) {
        const { wallMs, results } = await streams(url, n);
        ms += wallMs;
        for (const x of results) ttft.push(x.ttftMs), tokens += x.tokens;
      }
      const s1 = server.scheduler.stats();
      const agg = (tokens / ms) * 1000;
      if (n === 1) one = agg;
      ratios[n] = agg / one;
      log(
        `| ${n} | ${agg.toFixed(2)} | ${(agg / one).toFixed(2)}× | ${pct(ttft, 50).toFixed(0)} ms | ${
          pct(ttft, 99).toFixed(0)
        } ms | ${((s1.rows - s0.rows) / (s1.steps - s0.steps)).toFixed(2)} |`,
      );
    }
    log("");
    log(
      `4 streams / 1 stream aggregate: ${ratios[4].toFixed(2)}× (bar ≥ 2.5×: ${ratios[4] >= 2.5 ? "met" : "NOT met"})`,
    );
    log("");

    // 3. 1,000 mixed requests (a labelled block: YANGTUO_BENCH_SERVE_MIXED=0 leaves it)
    mixed: {
      if (env("YANGTUO_BENCH_SERVE_MIXED") === "0") break mixed;
      const kinds = [
        "valid",
        "stream-valid",
        "cancelled",
        "cancel-queued",
        "bad-json",
        "bad-field",
        "too-long",
        "404",
        "405",
        "413",
      ];
      const status = new Map<string, number>();
      let crashes = 0, done = 0;
      const samples: { at: number; rss: number; heap: number }[] = [{ at: 0, ...mem() }];
      const big = "x".repeat((1 << 20) + 10);
      const longPrompt = Array(CTX + 10).fill(100);
      const one_ = async (i: number) => {
        const kind = kinds[i % kinds.length];
        const post = (p: string, body: BodyInit, signal?: AbortSignal) =>
          fetch(`${url}${p}`, { method: "POST", body, signal });
        let res: Response | undefined;
        try {
          switch (kind) {
            case "valid":
              // an empty system prompt keeps the preamble to BOS: the run measures serving, not prompt reading
              res = await post(
                "/v1/chat/completions",
                JSON.stringify({
                  messages: [{ role: "system", content: "" }, { role: "user", content: `问题 ${i}` }],
                  max_tokens: 3,
                }),
              );
              break;
            case "stream-valid":
              res = await post("/v1/completions", JSON.stringify({ prompt: `p${i}`, max_tokens: 3, stream: true }));
              await res.text();
              break;
            case "cancelled": {
              const ac = new AbortController();
              res = await post(
                "/v1/completions",
                JSON.stringify({ prompt: `c${i}`, max_tokens: 64, stream: true, ignore_eos: true }),
                ac.signal,
              );
              const r = res.body!.getReader();
              await r.read();
              ac.abort();
              await r.cancel().catch(() => {});
              break;
            }
            case "cancel-queued": {
              const ac = new AbortController();
              setTimeout(() => ac.abort(), 1);
              res = await post("/v1/completions", JSON.stringify({ prompt: `q${i}`, max_tokens: 64 }), ac.signal).catch(
                () => undefined,
              );
              if (!res) status.set(`${kind} aborted`, (status.get(`${kind} aborted`) ?? 0) + 1);
              break;
            }
            case "bad-json":
              res = await post("/v1/chat/completions", "{oops");
              break;
            case "bad-field":
              res = await post(
                "/v1/chat/completions",
                JSON.stringify({ messages: [{ role: "user", content: "x" }], top_p: 7 }),
              );
              break;
            case "too-long":
              res = await post("/v1/completions", JSON.stringify({ prompt: longPrompt }));
              break;
            case "404":
              res = await fetch(`${url}/v1/engines`);
              break;
            case "405":
              res = await fetch(`${url}/v1/completions`, { method: "PUT" });
              break;
            case "413":
              res = await post("/v1/completions", big);
              break;
          }
          if (res && kind !== "cancelled" && kind !== "stream-valid" && !res.bodyUsed) await res.body?.cancel();
          if (res) {
            const key = `${kind} ${res.status}`;
            status.set(key, (status.get(key) ?? 0) + 1);
            if (res.status >= 500 && kind !== "cancel-queued") crashes++;
          }
        } catch (e) {
          if ((e as Error).name !== "AbortError") {
            crashes++;
            status.set(`${kind} ${(e as Error).name}`, (status.get(`${kind} ${(e as Error).name}`) ?? 0) + 1);
          } else status.set(`${kind} aborted`, (status.get(`${kind} aborted`) ?? 0) + 1);
        }
        if (++done % 250 === 0) {
          samples.push({ at: done, ...mem() });
          console.error(`mixed: ${done} done, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        }
      };
      const t0 = performance.now();
      let next = 0;
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        while (next < N_MIXED && performance.now() - started < DEADLINE_MS) await one_(next++);
      }));
      const mixedS = (performance.now() - t0) / 1000;
      // let cancelled sequences reach their next step, then check the slots
      await new Promise((r) => setTimeout(r, 2000));
      const health = await (await fetch(`${url}/health`)).json();
      const after = await fetch(`${url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ prompt: "still there?", max_tokens: 2 }),
      });
      await after.body?.cancel();
      log(
        `mixed run: ${done} requests in ${mixedS.toFixed(0)} s, ${IN_FLIGHT} in flight; crashes ${crashes}; ` +
          `after: ${JSON.stringify(health)}, next request HTTP ${after.status} (leaked slots: ${
            SLOTS - health.slots_idle
          })`,
      );
      log(`statuses: ${[...status].sort().map(([k, v]) => `${k}: ${v}`).join(", ")}`);
      log(
        `memory (MiB) at requests done: ${
          samples.map((s) => `${s.at}: rss ${s.rss.toFixed(0)} heap ${s.heap.toFixed(1)}`).join(" | ")
        }`,
      );
    }
  } finally {
    server.close();
    await http.shutdown();
    engine.close();
  }
  console.log(out.join("\n"));
}

if (env("YANGTUO_BENCH_SERVE") === "1") {
  await main();
  if (!import.meta.main) Deno.bench({ name: "serve (table printed above)", ignore: true }, () => {});
} else if (!import.meta.main) {
  Deno.bench({ name: "serve (set YANGTUO_BENCH_SERVE=1)", ignore: true }, () => {});
} else {
  console.error("set YANGTUO_BENCH_SERVE=1 to run");
}
