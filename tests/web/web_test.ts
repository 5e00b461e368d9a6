/**
 * The browser page end to end in headless Debian `chromium`, driven over the DevTools protocol (_cdp.ts), served by
 * the same serveWeb() as `deno task web`. Oracle: `deno task generate --json` (the CLI in a subprocess) on the same
 * tiny model and prompt — greedy token ids must be equal, at 2 threads (cross-origin isolated) and at 1 thread (the
 * fallback without COOP/COEP). Also: a Chinese chat reply is rendered and screenshotted, and once the page has
 * loaded nothing is requested again (the browser is switched offline; CDP and the server both count requests).
 * Skips with a message when chromium is absent.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { serveWeb } from "../../src/commands/web.ts";
import { Browser, findChromium } from "./_cdp.ts";
import { writeZhModel } from "./_zh_model.ts";
import { generate, loadEngine } from "../../src/model/engine.ts";
import { Sampler } from "../../src/sampling/sampler.ts";

const CHROMIUM = findChromium();
const CLI = new URL("../../cli.ts", import.meta.url).pathname;
/** Where the screenshot of a Chinese reply is kept (outside the repo). */
export const SCREENSHOT = "/tmp/yangtuo-web/zh_reply.png";
const PROMPT = "你好，请介绍一下北京";
const N = 24;

if (!CHROMIUM) console.warn("tests/web: skipped: no chromium (apt install chromium, or set CHROMIUM=/path)");

async function cliGenerate(model: string, threads: number) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-sys=cpus,systemMemoryInfo",
      CLI,
      "generate",
      "-m",
      model,
      "-p",
      PROMPT,
      "--temp",
      "0",
      "-n",
      String(N),
      "-t",
      String(threads),
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assertEquals(out.code, 0, dec.decode(out.stderr));
  return JSON.parse(dec.decode(out.stdout)) as { prompt_ids: number[]; ids: number[]; text: string };
}

interface PageResult {
  prompt_ids: number[];
  ids: number[];
  text: string;
}

const opts = { ignore: !CHROMIUM, sanitizeResources: false, sanitizeOps: false };

Deno.test(
  "web page: greedy ids equal `generate` at 2 threads (and over 5 shards), a Chinese reply renders, nothing is fetched after load",
  opts,
  async () => {
    Deno.mkdirSync("/tmp/yangtuo-web", { recursive: true });
    const model = await writeZhModel(
      Deno.makeTempFileSync({ dir: "/tmp", prefix: "yangtuo-web-zh-", suffix: ".gguf" }),
    );
    const serverPaths: string[] = [];
    const server = serveWeb({ port: 0, onRequest: (_m, p) => serverPaths.push(p) });
    const browser = await Browser.launch(CHROMIUM!);
    try {
      browser.record();
      await browser.goto(server.url);
      await browser.waitFor("document.body.dataset.ready === '1'");
      assertStringIncludes(await browser.eval<string>("document.getElementById('notice').textContent"), "isolated");
      assert(await browser.eval<boolean>("crossOriginIsolated"), "the page must be cross-origin isolated");
      // the first load is over: from here on nothing may be requested, and the network is gone
      const seenBefore = browser.requests.length;
      const serverBefore = serverPaths.length;
      await browser.offline(true);

      await browser.setInputFiles("#file", [model]);
      await browser.waitFor("globalThis.yangtuo.info");
      const info = await browser.eval<{ nThreads: number; template: string }>("yangtuo.info");
      // a picked file loads on every core the browser reports (2 here), as `generate` defaults to all cores
      assertEquals(info.nThreads, await browser.eval<number>("navigator.hardwareConcurrency"));
      const page = await browser.eval<PageResult>(
        `yangtuo.generate(${JSON.stringify(PROMPT)}, { temp: 0, n: ${N} })`,
      );
      const cli = await cliGenerate(model, info.nThreads);
      assertEquals(page.prompt_ids, cli.prompt_ids);
      assertEquals(page.ids, cli.ids);
      assertEquals(page.text, cli.text);
      assertEquals(page.ids.length, N);

      // more shards than threads (as a model above 4 GiB gets): the same plan as in Deno gives the same ids
      await browser.eval(`yangtuo.load(document.getElementById('file').files[0], { threads: 2, minShards: 5 })`);
      assertEquals(await browser.eval<number>("yangtuo.info.nShards"), 5);
      const sharded = await browser.eval<PageResult>(
        `yangtuo.generate(${JSON.stringify(PROMPT)}, { temp: 0, n: ${N} })`,
      );
      const engine = await loadEngine(model, { threads: 2, minShards: 5 });
      try {
        assertEquals(engine.nShards, 5);
        const r = await generate(engine, new Sampler({ temperature: 0, repeatPenalty: 1.1 }), sharded.prompt_ids, {
          maxTokens: N,
        });
        assertEquals(sharded.ids, r.ids);
      } finally {
        engine.close();
      }

      // a chat turn through the UI, as a user types it
      await browser.eval(`document.getElementById('new-chat').click()`);
      await browser.eval(`(() => { const i = document.getElementById('input'); i.value = '用一句话介绍北京。'; })()`);
      await browser.eval(`document.getElementById('send').click()`);
      await browser.waitFor("document.querySelector('.msg.bot') && !document.getElementById('send').disabled", 120_000);
      const reply = await browser.eval<string>("document.querySelector('.msg.bot').textContent");
      assertMatch(reply, /[\u4e00-\u9fff]/, `the reply should be Chinese: ${reply}`);
      Deno.writeFileSync(SCREENSHOT, await browser.screenshot());

      // blob: URLs (the shard workers' code, already in memory) are not network requests
      const network = browser.requests.slice(seenBefore).filter((r) => !/^(blob|data):/.test(r.url));
      assertEquals(network, [], "network requests after the first load");
      assertEquals(serverPaths.slice(serverBefore), [], "requests that reached the server after the first load");
      assertEquals(browser.console.filter((l) => l.startsWith("exception")), []);
    } finally {
      await browser.close();
      await server.shutdown();
      Deno.removeSync(model);
    }
  },
);

Deno.test(
  "web page: without COOP/COEP it says so and runs on one thread, ids equal `generate -t 1`",
  opts,
  async () => {
    const model = await writeZhModel(
      Deno.makeTempFileSync({ dir: "/tmp", prefix: "yangtuo-web-zh-", suffix: ".gguf" }),
    );
    const server = serveWeb({
      port: 0,
      model,
      omitHeaders: ["cross-origin-opener-policy", "cross-origin-embedder-policy"],
    });
    const browser = await Browser.launch(CHROMIUM!);
    try {
      browser.record();
      await browser.goto(server.url);
      await browser.waitFor("document.body.dataset.ready === '1'");
      assertEquals(await browser.eval<boolean>("crossOriginIsolated"), false);
      assertStringIncludes(await browser.eval<string>("document.getElementById('notice').textContent"), "one thread");
      // the served model opens with one click
      assertEquals(await browser.eval<boolean>("document.getElementById('open-served').hidden"), false);
      await browser.eval("document.getElementById('open-served').click()");
      await browser.waitFor("globalThis.yangtuo.info");
      assertEquals(await browser.eval<number>("yangtuo.info.nThreads"), 1);
      const page = await browser.eval<PageResult>(`yangtuo.generate(${JSON.stringify(PROMPT)}, { temp: 0, n: ${N} })`);
      const cli = await cliGenerate(model, 1);
      assertEquals(page.ids, cli.ids);
      assertEquals(page.text, cli.text);
      // a file that is not a model: the page says what is wrong
      const err = await browser.eval<string>(
        `yangtuo.load(new Blob(["not a model"]), {}).then(() => "loaded", (e) => e.message + " | " + e.hint)`,
      );
      assertStringIncludes(err, "not a GGUF file");
      assertStringIncludes(err, "deno task convert");
    } finally {
      await browser.close();
      await server.shutdown();
      Deno.removeSync(model);
    }
  },
);

Deno.test("web page: Stop ends a streaming reply and generate(), and the chat goes on afterwards", opts, async () => {
  const model = await writeZhModel(Deno.makeTempFileSync({ dir: "/tmp", prefix: "yangtuo-web-zh-", suffix: ".gguf" }));
  const server = serveWeb({ port: 0 });
  const browser = await Browser.launch(CHROMIUM!);
  try {
    browser.record();
    await browser.goto(server.url);
    await browser.waitFor("document.body.dataset.ready === '1'");
    await browser.setInputFiles("#file", [model]);
    await browser.waitFor("globalThis.yangtuo.info");
    // the Stop button, clicked while the reply streams
    await browser.eval(`document.getElementById('input').value = '讲一个很长的故事'`);
    await browser.eval(`document.getElementById('send').click()`);
    await browser.waitFor("document.querySelector('.msg.bot')?.textContent.length > 0");
    assertEquals(await browser.eval<boolean>("document.getElementById('stop').disabled"), false);
    await browser.eval(`document.getElementById('stop').click()`);
    await browser.waitFor("!document.getElementById('send').disabled");
    assertStringIncludes(await browser.eval<string>("document.getElementById('stats').textContent"), "(interrupted)");
    // the API: stop() during generate() returns the ids so far
    const stopped = await browser.eval<{ ids: number[]; stop: string }>(`(async () => {
      let first; const seen = new Promise((r) => first = r);
      const p = yangtuo.generate("你好", { temp: 0.8, n: 200, seed: 3, ignoreEos: true }, () => first());
      await seen; yangtuo.stop(); return await p; })()`);
    assertEquals(stopped.stop, "stopped");
    assert(stopped.ids.length >= 1 && stopped.ids.length < 200, `${stopped.ids.length} ids`);
    // options from page script are checked like the CLI's flags
    for (const bad of ["{ n: -1 }", "{ temp: NaN }", "{ seed: 1.5 }", "{ topP: '0.9' }"]) {
      const msg = await browser.eval<string>(`yangtuo.generate("你好", ${bad}).then(() => "ran", (e) => e.message)`);
      assertStringIncludes(msg, "Cannot generate", bad);
    }
    // and the next turn still runs to its end
    const next = await browser.eval<{ stop: string; nGenerated: number }>(`yangtuo.chat('再说一遍')`);
    assert(next.stop !== "interrupted", next.stop);
    assert(next.nGenerated > 0);
  } finally {
    await browser.close();
    await server.shutdown();
    Deno.removeSync(model);
  }
});
