/**
 * Browser vs Deno benchmark (opt-in: YANGTUO_BENCH_WEB=1): prompt processing (pp) and generation (tg) tok/s of the
 * same engine in headless Debian `chromium` (the page of `deno task web`, driven over CDP, model picked as a File)
 * and in Deno, on the random TinyLlama-1.1B-shaped Q4_0 model of bench/e2e_bench.ts, at 1 and 2 threads, in the same
 * run and interleaved (Deno, Chromium, Deno, Chromium…; YANGTUO_BENCH_WEB_REPS pairs, default 6), so the ratio
 * holds on a shared, noisy host. Both sides run the same generate() loop on the same prompt text (greedy, EOS
 * ignored); their greedy ids must be equal before any number is printed.
 * Bars (issue 17): Chromium ≥ 0.9× Deno; Chromium ≥ 5× wllama's 1.9 / 3.5 tok/s generation at 1 / 2 threads
 * (measured on this host class in headless Chromium; see bench/README.md).
 * Run: YANGTUO_BENCH_WEB=1 deno run -A bench/web_bench.ts
 */
import { hostInfo } from "./_host.ts";
import { readGguf } from "../src/formats/gguf.ts";
import { FileSource } from "../src/io/file_source.ts";
import { tokenizerFromGgufMetadata } from "../src/tokenizer/mod.ts";
import { type Engine, generate, loadEngine } from "../src/model/engine.ts";
import { ensureBenchModel } from "./_bench_model.ts";
import { Sampler } from "../src/sampling/sampler.ts";
import { serveWeb } from "../src/commands/web.ts";
import { Browser, findChromium } from "../tests/web/_cdp.ts";

const env = (k: string) => Deno.env.get(k);
const N_GEN = 32;
const CTX = 512;
const REPS = Number(env("YANGTUO_BENCH_WEB_REPS") ?? 6);
/** wllama's generation tok/s at 1 / 2 threads on the same model shape (issue 17). */
const WLLAMA_TG: Record<number, number> = { 1: 1.9, 2: 3.5 };
/** wllama rerun in the same run (llama.cpp compiled to WASM, from npm; YANGTUO_BENCH_NO_WLLAMA=1 skips it). */
const WLLAMA_VERSION = "3.13.0";
const WLLAMA_DIR = "/tmp/yangtuo-wllama";
const WLLAMA_PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import { Wllama } from "./esm/index.js";
globalThis.runWllama = async (threads, prompt, nGen, ctx) => {
  const w = new Wllama({ default: "./esm/wasm/wllama.wasm" }, { suppressNativeLog: true });
  // loadModelFromUrl, wllama's documented path (its loadModel([blob]) of this 620 MB file fails in 3.13.0:
  // "Invalid typed array length: 1163217991", i.e. the bytes "GGUF" read as a length)
  const params = { n_threads: threads, n_ctx: ctx, n_batch: 512, n_gpu_layers: 0, useCache: false };
  await w.loadModelFromUrl(location.origin + "/model.gguf", params);
  // byte tokens banned: a lone byte is invalid UTF-8, which wllama 3.13.0 cannot put in its JSON reply (the
  // random model emits them; the run then dies with "Invalid typed array length")
  const logit_bias = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [String(3 + i), -100]));
  const r = await w.createCompletion({ prompt, max_tokens: nGen, temperature: 0, ignore_eos: true, logit_bias });
  await w.exit();
  return r.timings;
};
document.body.dataset.ready = "1";
</script><body></body>`;

/** Installs wllama under /tmp (once) and writes its bench page; returns the folder to serve, or undefined. */
function ensureWllama(): string | undefined {
  const root = `${WLLAMA_DIR}/node_modules/@wllama/wllama/`;
  try {
    Deno.statSync(`${root}esm/wasm/wllama.wasm`);
  } catch {
    Deno.mkdirSync(WLLAMA_DIR, { recursive: true });
    Deno.writeTextFileSync(`${WLLAMA_DIR}/package.json`, JSON.stringify({ private: true }));
    const r = new Deno.Command("npm", {
      args: ["install", "--no-audit", "--no-fund", `@wllama/wllama@${WLLAMA_VERSION}`],
      cwd: WLLAMA_DIR,
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!r.success) {
      console.error(`wllama unavailable: npm install failed:\n${new TextDecoder().decode(r.stderr)}`);
      return undefined;
    }
  }
  Deno.writeTextFileSync(`${root}yangtuo_bench.html`, WLLAMA_PAGE);
  return root;
}

interface WllamaTimings {
  prompt_n: number;
  prompt_per_second: number;
  predicted_n: number;
  predicted_per_second: number;
}

interface Run {
  pp: number;
  tg: number;
  ids: number[];
  nPrompt: number;
}

const SAMPLING = { temp: 0, n: N_GEN, ignoreEos: true, repeatPenalty: 1, seed: 1 };

function rates(r: { prompt_ids: number[]; ids: number[]; promptMs: number; generateMs: number }): Run {
  return {
    pp: (r.prompt_ids.length / r.promptMs) * 1000,
    // as `generate` reports it: the first token comes from the prompt's logits
    tg: ((r.ids.length - 1) / r.generateMs) * 1000,
    ids: r.ids,
    nPrompt: r.prompt_ids.length,
  };
}

async function runDeno(engine: Engine, prompt: string): Promise<Run> {
  const promptIds = engine.tokenizer.encode(prompt, { bos: true });
  const sampler = new Sampler({ temperature: 0, repeatPenalty: 1, seed: 1 });
  const r = await generate(engine, sampler, promptIds, { maxTokens: N_GEN, stopAt: [] });
  return rates({ prompt_ids: promptIds, ...r });
}

async function runChromium(b: Browser, prompt: string): Promise<Run> {
  const r = await b.eval<{ prompt_ids: number[]; ids: number[]; promptMs: number; generateMs: number }>(
    `yangtuo.generate(${JSON.stringify(prompt)}, ${JSON.stringify(SAMPLING)})`,
  );
  return rates(r);
}

/** One wllama run (it loads the model itself each time); undefined when it fails. */
async function runWllama(b: Browser, threads: number, prompt: string): Promise<{ pp: number; tg: number } | undefined> {
  try {
    const t = await b.eval<WllamaTimings>(`runWllama(${threads}, ${JSON.stringify(prompt)}, ${N_GEN}, ${CTX})`);
    if (t.predicted_n < N_GEN) console.error(`wllama generated ${t.predicted_n} tokens`);
    console.error(
      `threads ${threads} wllama: pp ${t.prompt_per_second.toFixed(1)} tg ${t.predicted_per_second.toFixed(2)} tok/s`,
    );
    return { pp: t.prompt_per_second, tg: t.predicted_per_second };
  } catch (e) {
    console.error(`wllama failed: ${(e as Error).message.slice(0, 300)}\n${b.console.slice(-8).join("\n")}`);
    return undefined;
  }
}

async function main(): Promise<void> {
  const chromium = findChromium();
  if (!chromium) {
    console.error("web bench skipped: no chromium (apt install chromium, or set CHROMIUM=/path)");
    return;
  }
  const model = await ensureBenchModel("tinyllama-1.1b");
  // a 64-piece prompt of the random vocabulary ("▁a b ▁c d …"), the same text on both sides
  const prompt = (() => {
    using src = new FileSource(model);
    const tok = tokenizerFromGgufMetadata(readGguf(src).metadata as Map<string, unknown>);
    return tok.decode(Array.from({ length: 64 }, (_, i) => 300 + i));
  })();

  const server = serveWeb({ port: 0 });
  const wllamaRoot = env("YANGTUO_BENCH_NO_WLLAMA") === "1" ? undefined : ensureWllama();
  // wllama's page needs eval-free CSP relaxations of its own: serve it without our CSP
  const wllamaServer = wllamaRoot
    ? serveWeb({ port: 0, root: wllamaRoot, model, omitHeaders: ["content-security-policy"] })
    : undefined;
  const browser = await Browser.launch(chromium);
  const wllamaBrowser = wllamaServer ? await Browser.launch(chromium) : undefined;
  const version = (await browser.send<{ product: string }>("Browser.getVersion", {}, "")).product;
  const rows: string[] = [];
  try {
    await browser.goto(server.url);
    await browser.waitFor("document.body.dataset.ready === '1'");
    if (!(await browser.eval<boolean>("crossOriginIsolated"))) throw new Error("the page is not cross-origin isolated");
    // the model as a user's File (read in place), through a file input of our own so the UI does not load it too
    await browser.eval(
      `document.body.append(Object.assign(document.createElement("input"), { type: "file", id: "bench-file" }))`,
    );
    await browser.setInputFiles("#bench-file", [model]);
    if (wllamaBrowser) {
      wllamaBrowser.record();
      await wllamaBrowser.goto(`${wllamaServer!.url}yangtuo_bench.html`);
      await wllamaBrowser.waitFor("document.body.dataset.ready === '1'");
    }
    // wllama first, before any of our engines is loaded: in 3.13.0 its load of this model failed every time it
    // ran while they were (the "GGUF" magic read back as a length: a failed allocation inside its heap)
    const wllama = new Map<number, { pp: number; tg: number } | undefined>();
    for (const threads of [1, 2]) {
      wllama.set(threads, wllamaBrowser ? await runWllama(wllamaBrowser, threads, prompt) : undefined);
    }
    for (const threads of [1, 2]) {
      // both engines stay loaded; the runs alternate (D W, W D, …) so background load hits both sides alike
      const denoEngine = await loadEngine(model, { threads, contextSize: CTX });
      await browser.eval(
        `yangtuo.load(document.getElementById('bench-file').files[0], { threads: ${threads}, contextSize: ${CTX} })`,
      );
      const pairs: { d: Run; w: Run }[] = [];
      try {
        for (let rep = 0; rep < REPS; rep++) {
          let d: Run, w: Run;
          if (rep % 2 === 0) {
            d = await runDeno(denoEngine, prompt);
            w = await runChromium(browser, prompt);
          } else {
            w = await runChromium(browser, prompt);
            d = await runDeno(denoEngine, prompt);
          }
          if (JSON.stringify(d.ids) !== JSON.stringify(w.ids)) {
            throw new Error(`greedy ids differ at ${threads} threads: Deno ${d.ids} vs Chromium ${w.ids}`);
          }
          pairs.push({ d, w });
          console.error(
            `threads ${threads} rep ${rep + 1}: pp Deno ${d.pp.toFixed(1)} Chromium ${w.pp.toFixed(1)}; ` +
              `tg Deno ${d.tg.toFixed(2)} Chromium ${w.tg.toFixed(2)} tok/s`,
          );
        }
      } finally {
        denoEngine.close();
      }
      const wl = wllama.get(threads);
      const best = (f: (p: { d: Run; w: Run }) => number) => Math.max(...pairs.map(f));
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
      const x = (r: number) => `${r.toFixed(2)}×`;
      const ppRatio = median(pairs.map((p) => p.w.pp / p.d.pp));
      const tgRatio = median(pairs.map((p) => p.w.tg / p.d.tg));
      const bestWebTg = best((p) => p.w.tg);
      rows.push(
        `| 1.1B Q4_0 | ${threads} | ${pairs[0].d.nPrompt} | ${best((p) => p.d.pp).toFixed(1)} | ${
          best((p) => p.w.pp).toFixed(1)
        } | ${x(ppRatio)} | ${best((p) => p.d.tg).toFixed(2)} | ${bestWebTg.toFixed(2)} | ${x(tgRatio)} | ${
          wl ? `${wl.pp.toFixed(1)} / ${wl.tg.toFixed(2)}` : "n/a"
        } | ${wl ? `${x(best((p) => p.w.pp) / wl.pp)} / ${x(bestWebTg / wl.tg)}` : "n/a"} | ${WLLAMA_TG[threads]} (${
          x(bestWebTg / WLLAMA_TG[threads])
        }) | ${pairs.length}×${N_GEN} |`,
      );
    }
  } finally {
    await browser.close();
    await wllamaBrowser?.close();
    await server.shutdown();
    await wllamaServer?.shutdown();
  }
  console.log(
    [
      `yangtuo in ${version} (headless, page of \`deno task web\`) vs Deno ${Deno.version.deno}. Both engines loaded side ` +
      `by side, ${REPS} runs each alternating; tok/s are the best run, ratios the median of the paired (back-to-back) runs`,
      hostInfo().line,
      "",
      `wllama: @wllama/wllama@${WLLAMA_VERSION} (llama.cpp in WASM) in the same Chromium build, same file, same prompt text`,
      "",
      "| model | threads | prompt tokens | pp Deno | pp Chromium | pp Chromium / Deno | tg Deno | tg Chromium | tg Chromium / Deno | wllama pp / tg (this run) | Chromium / wllama pp / tg | tg wllama in the issue (Chromium / it) | greedy ids Deno = Chromium (runs × tokens) |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
      ...rows,
    ].join("\n"),
  );
}

if (env("YANGTUO_BENCH_WEB") === "1") {
  await main();
  if (!import.meta.main) Deno.bench({ name: "web engine (table printed above)", ignore: true }, () => {});
} else if (!import.meta.main) {
  Deno.bench({ name: "web engine vs Deno (set YANGTUO_BENCH_WEB=1)", ignore: true }, () => {});
} else {
  console.error("set YANGTUO_BENCH_WEB=1 to run");
}
