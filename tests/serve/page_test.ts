/**
 * The chat page in headless Chromium (Debian `chromium` driven by puppeteer-core): type a Chinese question, watch
 * the reply stream in (its text grows while the page shows it streaming), press stop, and check that the server
 * freed the slot; then "new chat" empties the log. A screenshot is saved to /tmp/yangtuo-serve-page.png.
 * Skipped with a message when no Chromium is installed (YANGTUO_CHROMIUM overrides the path).
 */
/// <reference lib="dom" />
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { CHINESE_PIECES, startServer, writeServeModel } from "./_server.ts";
import { importTestPackage, PUPPETEER_NPM } from "../_npm.ts";

const CHROMIUM = Deno.env.get("YANGTUO_CHROMIUM") ?? "/usr/bin/chromium";
const SCREENSHOT = "/tmp/yangtuo-serve-page.png";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!hasChromium) console.warn(`page_test: skipped, no Chromium at ${CHROMIUM} (set YANGTUO_CHROMIUM)`);
// Typed loosely on purpose: its types would put the npm package into the checked module graph.
// deno-lint-ignore no-explicit-any
const puppeteer: any = hasChromium
  ? (await importTestPackage<{ default: unknown }>(PUPPETEER_NPM, "page_test"))?.default
  : undefined;

Deno.test({
  name: "the chat page streams a reply to a Chinese question, stops on the stop button, and starts a new chat",
  ignore: puppeteer === undefined,
  sanitizeResources: false, // puppeteer's pipes and sockets close after the test's last tick
  sanitizeOps: false,
  async fn() {
    const path = await writeServeModel();
    const srv = await startServer(path, { slots: 2, contextSize: 2048, slowNeverEnding: 15 });
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=zh-CN"],
    });
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 900, height: 640 });
      await page.goto(srv.url + "/", { waitUntil: "load" });
      await page.waitForFunction(() => document.getElementById("model")!.textContent === "tiny");
      await page.$eval("#maxTokens", (el: Element) => (el as HTMLInputElement).value = "1800");
      const question = "用一句话介绍北京，好吗？";
      await page.type("#input", question);
      await page.keyboard.press("Enter");
      // the question shows as typed (Chinese rendered as text)
      await page.waitForSelector(".msg.user");
      assertEquals(await page.$eval(".msg.user .text", (el: Element) => el.textContent), question);
      // the reply streams: its text grows while the bubble is marked as streaming
      await page.waitForFunction(() => {
        const b = document.querySelector(".msg.assistant");
        return b && b.classList.contains("streaming") && b.querySelector(".text")!.textContent!.length >= 3;
      });
      const early = await page.$eval(".msg.assistant .text", (el: Element) => el.textContent!.length);
      await page.waitForFunction(
        (n: number) => document.querySelector(".msg.assistant .text")!.textContent!.length > n,
        {},
        early,
      );
      // … until Chinese characters have streamed in too (a third of the model's pieces are Chinese)
      await page.waitForFunction(
        (pieces: string[]) =>
          [...document.querySelector(".msg.assistant .text")!.textContent!].some((c) => pieces.includes(c)),
        {},
        CHINESE_PIECES,
      );
      assert(
        await page.$eval(".msg.assistant", (el: Element) => el.classList.contains("streaming")),
        "still streaming",
      );
      assertEquals(await page.$eval("#stop", (el: Element) => (el as HTMLButtonElement).disabled), false);
      await page.click("#stop");
      await page.waitForSelector(".msg.assistant .meta");
      assertStringIncludes(
        await page.$eval(".msg.assistant .meta", (el: Element) => el.textContent!),
        "finish: stopped",
      );
      // whole Chinese characters in the reply, no replacement characters
      const reply = await page.$eval(".msg.assistant .text", (el: Element) => el.textContent!);
      assert([...reply].some((ch) => CHINESE_PIECES.includes(ch)), `Chinese in the reply: ${reply}`);
      assert(!reply.includes("\uFFFD"), reply);
      assertEquals(await page.$eval("#send", (el: Element) => (el as HTMLButtonElement).disabled), false);
      await page.screenshot({ path: SCREENSHOT });
      // the server let go of the sequence
      const t0 = performance.now();
      for (;;) {
        const h = await (await fetch(`${srv.url}/health`)).json();
        if (h.slots_idle === 2) break;
        assert(performance.now() - t0 < 5000, `slot still busy after stop: ${JSON.stringify(h)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await page.click("#newChat");
      assertEquals(await page.$$eval(".msg", (els: Element[]) => els.length), 0);
    } finally {
      await browser.close();
      await srv.close();
      Deno.removeSync(path);
    }
  },
});
